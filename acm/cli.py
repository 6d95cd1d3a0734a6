"""`anycapeval acm train|refine`: train an ACM refiner on ACD triplets, refine a predictions file.

torch and transformers load inside the handlers only, so `anycapeval --help` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from ..types import AnyCapError

TRAIN_EPILOG = """examples:
  anycapeval acm train --config tiny --data ../shared/data/acd --max-steps 30 --output runs/acm-tiny
  anycapeval acm train --config my_0p5b.yaml --data ./ACD --media-dir ./ACD_media --output runs/acm-0p5b --resume
  accelerate launch --num_processes 8 -m anycapeval.cli acm train --config my.yaml --data ./ACD --output out

--data is an ACD folder (the released AnyCapDataset layout, caption_data/<folder>/...) or our triplet
JSONL (a file or a folder of *.jsonl; see docs). Without media files training runs text-only and says so.
"""
REFINE_EPILOG = """examples:
  anycapeval acm refine --checkpoint runs/acm-tiny --predictions caps.jsonl --tasks demo --output refined.jsonl
  anycapeval acm refine --checkpoint runs/acm-tiny --predictions caps_with_instructions.jsonl --output refined.jsonl

Instructions come from --tasks (items matched by id, as in `anycapeval run --model predictions:FILE`) or,
without --tasks, from an `instruction` field on every line. The output is this project's predictions
JSONL ({"id", "task", "caption", "base_caption"}), ready for `anycapeval score --predictions`.
"""


def register(subparsers: Any) -> None:
    acm = subparsers.add_parser("acm", help="train the ACM caption refiner or refine captions with it",
                                description="ACM (AnyCapModel): a refiner that rewrites a base model's caption "
                                "to follow the instruction (docs/design.md).")
    sub = acm.add_subparsers(dest="acm_command", required=True)

    train = sub.add_parser("train", help="train ACM on ACD triplets with the Hugging Face Trainer",
                           epilog=TRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("--config", required=True, help="YAML config, or a shipped one by name: tiny, base_0p5b")
    train.add_argument("--data", required=True, help="ACD folder or triplet JSONL file/folder")
    train.add_argument("--output", required=True, type=Path, help="output folder (checkpoints, final model, logs)")
    train.add_argument("--max-steps", type=int, help="stop after N optimizer steps (overrides the epochs)")
    train.add_argument("--resume", action="store_true", help="continue from the last checkpoint-N/ in --output")
    train.add_argument("--media-dir", help="folder with the media files named in the data (default: data.media_dir)")
    train.add_argument("--num-samples", type=int, help="mix this many samples (default: data.num_samples)")
    train.set_defaults(handler=cmd_train)

    refine = sub.add_parser("refine", help="refine the captions of a predictions file",
                            epilog=REFINE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    refine.add_argument("--checkpoint", required=True, help="an ACM checkpoint folder (acm train --output)")
    refine.add_argument("--predictions", required=True, type=Path,
                        help="JSONL {id, caption[, task][, instruction]} or an official AnyCap generation file")
    refine.add_argument("--output", required=True, type=Path, help="refined predictions JSONL")
    refine.add_argument("--tasks", help="tasks whose items the predictions belong to (gives the instructions)")
    refine.add_argument("--data-dir", help="folder with the official AnyCapEval files (as for `anycapeval run`)")
    refine.add_argument("--media-dir", help="where the media files are, if not under --data-dir")
    refine.add_argument("--model-args", default="", help="device=auto|cpu|cuda, dtype=auto|float32|bfloat16, "
                        "batch_size (config), max_new_tokens (config); e.g. device=cuda,batch_size=16")
    refine.set_defaults(handler=cmd_refine)


def _console() -> Any:
    from ..cli import console

    return console


def _log_to_console() -> None:
    """Data warnings (e.g. text-only training) go to the terminal."""
    from rich.logging import RichHandler

    logger = logging.getLogger("anycapeval.acm")
    if not logger.handlers:
        logger.addHandler(RichHandler(console=_console(), show_time=False, show_path=False))
        logger.setLevel(logging.INFO)


def cmd_train(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ..cli import out
    from .config import load_config
    from .train import train

    _log_to_console()
    config = load_config(args.config)
    data = config.data.model_copy(update={k: v for k, v in (("media_dir", args.media_dir),
                                                              ("num_samples", args.num_samples)) if v is not None})
    config = config.model_copy(update={"data": data})
    result = train(config, args.data, args.output, max_steps=args.max_steps, resume=args.resume)
    table = Table(title=f"ACM training: {config.name}")
    table.add_column("step", justify="right")
    table.add_column("loss", justify="right")
    for step, loss in result.losses:
        table.add_row(str(step), f"{loss:.4f}")
    out.print(table)
    rate = result.tokens_seen / result.train_runtime_s if result.train_runtime_s else 0.0
    media = "text-only" if result.text_only else "with media"
    out.print(f"{result.steps} steps on {result.samples} mixed samples ({media}), {result.train_runtime_s:.1f} s, "
              f"{rate:.0f} tokens/s; model in [bold]{result.output}[/bold]")
    return 0


def _extra_fields(path: Path) -> dict[str, dict[str, Any]]:
    """Raw JSONL lines by `file:line`: our own predictions format carries `instruction` and `media`
    beside the caption, which the generic importers do not keep."""
    from ..files import read_jsonl

    with path.open(encoding="utf-8") as fh:
        if fh.read(4096).lstrip().startswith("["):
            return {}
    try:
        return {f"{path}:{lineno}": record for lineno, record in read_jsonl(path)}
    except AnyCapError:  # one JSON document (lm-eval samples): the importer reads it
        return {}


def _requests_from_file(path: Path) -> list[tuple[dict[str, Any], Any]]:
    """Lines carrying their own instruction: (output row, RefineRequest). Media named on a line is
    used when the file exists (its kind from the suffix); otherwise refinement is text-only."""
    from ..files import MEDIA_SUFFIXES
    from ..systems.importers import read_predictions
    from ..types import InputError
    from .refine import RefineRequest

    extra = _extra_fields(path)
    rows = []
    for record in read_predictions(path)[1]:
        raw = extra.get(record.where, {})
        instruction = record.instruction or raw.get("instruction")
        if not isinstance(instruction, str) or not instruction.strip():
            raise InputError(record.where, "instruction", "missing: pass --tasks (and --data-dir) so instructions "
                             "come from the task items, or add an 'instruction' to every line")
        named = record.media or raw.get("media")
        media = Path(named) if isinstance(named, str) and Path(named).is_file() else None
        modality = next((m for m, suffixes in MEDIA_SUFFIXES.items() if media and media.suffix.lower() in suffixes),
                        None)
        request = RefineRequest(instruction, record.caption, modality, media if modality else None)
        rows.append(({"id": record.item_id or record.where, "task": record.task, "base_caption": record.caption},
                     request))
    return rows


def cmd_refine(args: argparse.Namespace) -> int:
    import asyncio

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..cli import out
    from ..store import write_jsonl_atomic
    from ..systems import parse_model_args as split_model_args
    from ..types import OK
    from .refine import Refiner, parse_model_args

    _log_to_console()
    model_args = split_model_args(args.model_args)
    options = parse_model_args(model_args)
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    errors: list[str] = []  # failed items are left out of the output (scoring then reports them as missing)
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    if args.tasks:
        from ..data import load_items
        from ..registry import resolve_tasks
        from ..systems.predictions import PredictionsSystem
        from .system import ACMSystem

        items = [i for t in resolve_tasks(args.tasks) for i in load_items(t, args.data_dir, args.media_dir)]
        all_ids: dict[str, set[str]] = {}
        for item in items:
            all_ids.setdefault(item.task, set()).add(item.id)
        base = PredictionsSystem(args.predictions, items, all_ids)
        items = [i for i in items if (i.task, i.id) in base.captions]
        system = ACMSystem(args.checkpoint, base, model_args)
        with Progress(*columns, console=_console()) as progress:
            bar = progress.add_task("refine", total=len(items))
            for start in range(0, len(items), system.batch_size):
                chunk = items[start:start + system.batch_size]
                for item, pred in zip(chunk, asyncio.run(system.generate_batch(chunk))):
                    if pred.status != OK:
                        errors.append(f"{item.task} id {item.id}: {pred.error}")
                        continue
                    rows.append({"id": item.id, "task": item.task, "caption": pred.caption,
                                 "base_caption": base.captions[(item.task, item.id)]})
                progress.advance(bar, len(chunk))
    else:
        pairs = _requests_from_file(args.predictions)
        refiner = Refiner(args.checkpoint, **options)
        with Progress(*columns, console=_console()) as progress:
            bar = progress.add_task("refine", total=len(pairs))
            for start in range(0, len(pairs), refiner.batch_size):
                batch = pairs[start:start + refiner.batch_size]
                for (row, _), caption in zip(batch, refiner.refine([r for _, r in batch])):
                    if isinstance(caption, str) and caption:
                        rows.append({**row, "caption": caption})
                    else:
                        errors.append(f"id {row['id']}: {caption or 'ACM returned an empty caption'}")
                progress.advance(bar, len(batch))
    write_jsonl_atomic(args.output, [{k: v for k, v in r.items() if v is not None} for r in rows])
    elapsed = time.perf_counter() - started
    changed = sum(r["caption"] != r["base_caption"] for r in rows)
    for error in errors[:10]:
        _console().print(f"[red]not refined:[/red] {error}")
    out.print(f"refined {len(rows)} of {len(rows) + len(errors)} captions ({changed} changed, {len(errors)} failed "
              f"and left out) in {elapsed:.1f} s -> [bold]{args.output}[/bold]")
    return 1 if errors else 0
