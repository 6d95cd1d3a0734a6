"""ACM throughput: training tokens/s and refinement captions/s for a config.

Trains `--steps` optimizer steps of the config on the data (ACD folder or triplet JSONL) with the real
trainer (`anycapeval.acm.train.train`: HF Trainer, mixing, collation), then refines `--refine` held-out
drafts from the same data with the saved checkpoint (`Refiner`, batched greedy decoding). Reports:

  train_tokens_per_s       input tokens the Trainer counted (num_input_tokens_seen, padding included)
                           over its train_runtime, first step's warm-up included
  train_target_tokens_s    learned tokens (labels != -100) per second over the same time
  refine_captions_per_s    refined captions per second (model already loaded; batch and max_new_tokens
                           from the config's `generate` section unless given)
  refine_new_tokens_per_s  generated tokens per second

    python benchmarks/acm_throughput.py --config tiny --data ../shared/data/acd \
        --json-out benchmarks/results/acm_throughput_tiny_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="tiny", help="ACM YAML or shipped config name (tiny)")
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "acd"))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--refine", type=int, default=64, help="drafts to refine")
    parser.add_argument("--batch-size", type=int, help="refinement batch size (default: config)")
    parser.add_argument("--max-new-tokens", type=int, help="default: config")
    parser.add_argument("--device", help="auto (default), cpu, cuda")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()

    import torch
    from anycapeval.acm.config import load_config
    from anycapeval.acm.data import ACMDataset, mix, read_triplets
    from anycapeval.acm.refine import Refiner, RefineRequest
    from anycapeval.acm.train import train

    config = load_config(args.config)
    load_before = os.getloadavg()[0]  # a shared machine: other processes change these numbers a lot
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model"
        result = train(config, args.data, out, max_steps=args.steps, progress=False)
        refiner = Refiner(out, device=args.device, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
        triplets, _ = read_triplets(args.data, config.data.include_direct)
        mixed, _ = mix(triplets, config.data)
        used = config.train.per_device_batch_size * config.train.gradient_accumulation_steps * args.steps
        trained_on = ACMDataset([(t, None) for t in mixed[:used]], refiner.tokenizer, None, {},
                                config.train.max_length)
        target_tokens = sum(sum(1 for x in trained_on[i]["labels"] if x != -100) for i in range(len(trained_on)))
        held = mixed[-args.refine:]
        requests = [RefineRequest(t.instruction, t.draft) for t in held]
        refiner.refine(requests[:refiner.batch_size])  # warm-up
        start = time.perf_counter()
        captions = refiner.refine(requests)
        elapsed = time.perf_counter() - start
        new_tokens = sum(len(refiner.tokenizer(c, add_special_tokens=False)["input_ids"]) + 1
                         for c in captions if isinstance(c, str))

    row = {
        "config": config.name, "data": args.data, "steps": result.steps, "device": str(refiner.device),
        "torch_threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "batch_size_train": config.train.per_device_batch_size, "max_length": config.train.max_length,
        "train_runtime_s": round(result.train_runtime_s, 2), "train_input_tokens": result.tokens_seen,
        "train_tokens_per_s": round(result.tokens_seen / result.train_runtime_s, 1),
        "train_target_tokens_per_s": round(target_tokens / result.train_runtime_s, 1),
        "loss_first": result.losses[0][1], "loss_last": result.losses[-1][1],
        "refine_items": len(requests), "refine_batch_size": refiner.batch_size,
        "refine_max_new_tokens": refiner.max_new_tokens, "refine_s": round(elapsed, 2),
        "refine_captions_per_s": round(len(requests) / elapsed, 2),
        "refine_new_tokens_per_s": round(new_tokens / elapsed, 1),
        "load_average_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    for key, value in row.items():
        print(f"{key:28s} {value}")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(row, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
