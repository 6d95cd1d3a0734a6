"""ACM end to end: `anycapeval acm train` on the shared ACD sample (loss falls, resumable), the
`acm refine` command, `anycapeval run --model acm:DIR --base predictions:FILE`, and a tiny model that
learns to leave already-correct captions alone."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import SHARED_DATA, cli_env

ACD = SHARED_DATA / "acd"
needs_acd = pytest.mark.skipif(not ACD.is_dir(), reason="shared ACD sample not present")


def cli(*args: str, cache: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "anycapeval.cli", *args], capture_output=True, text=True,
                          env=cli_env(cache), timeout=timeout)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """30 steps of tiny.yaml on the shared ACD sample, through the CLI."""
    if not ACD.is_dir():
        pytest.skip("shared ACD sample not present")
    out = tmp_path_factory.mktemp("acm") / "run"
    cache = tmp_path_factory.getbasetemp() / "anycapeval-cache"
    result = cli("acm", "train", "--config", "tiny", "--data", str(ACD), "--max-steps", "30", "--output", str(out),
                 cache=cache)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "text-only" in result.stdout + result.stderr
    return out


@pytest.mark.slow
@needs_acd
def test_train_cli_loss_falls_and_state_is_standard(trained):
    state = json.loads((trained / "trainer_state.json").read_text())
    assert state["global_step"] == 30
    losses = [(e["step"], e["loss"]) for e in state["log_history"] if "loss" in e]
    assert losses[0][0] == 1 and losses[-1][0] == 30
    assert losses[-1][1] < losses[0][1] - 0.5, losses  # measured: 6.95 -> 6.06
    assert all(b[1] <= a[1] + 0.05 for a, b in zip(losses, losses[1:])), losses  # falling throughout
    data = json.loads((trained / "acm_data.json").read_text())
    assert data["media"]["text_only"] is True
    assert data["mixed"] == {"uncontrolled": 800, "correct": 800, "hallucinated": 400}  # 2:2:1 of 2000
    saved = json.loads((trained / "acm_config.json").read_text())
    assert saved["data"]["media"]["text_only"] is True  # the checkpoint says it never saw media
    assert saved["acm"]["model"]["lm"]["config"]["model_type"] == "qwen2"
    assert {p.name for p in trained.glob("checkpoint-*")} == {"checkpoint-20", "checkpoint-30"}


@pytest.mark.slow
@needs_acd
def test_resume_continues_from_last_checkpoint(trained, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    result = cli("acm", "train", "--config", "tiny", "--data", str(ACD), "--max-steps", "35", "--output", str(run),
                 "--resume", cache=tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-3000:]
    state = json.loads((run / "trainer_state.json").read_text())
    assert state["global_step"] == 35
    steps = [e["step"] for e in state["log_history"] if "loss" in e]
    assert steps[:7] == [1, 5, 10, 15, 20, 25, 30] and steps[-1] == 35  # history carried over, not restarted


def demo_predictions(path: Path) -> list:
    from anycapeval.data import load_items
    from anycapeval.registry import resolve_tasks

    items = [i for t in resolve_tasks("demo") for i in load_items(t)]
    path.write_text("\n".join(json.dumps({"id": i.id, "task": i.task, "caption": f"A draft about {i.reference}"})
                              for i in items), encoding="utf-8")
    return items


@pytest.mark.slow
@needs_acd
def test_refine_cli_with_tasks_and_with_instructions(trained, tmp_path):
    items = demo_predictions(tmp_path / "preds.jsonl")
    out = tmp_path / "refined.jsonl"
    result = cli("acm", "refine", "--checkpoint", str(trained), "--predictions", str(tmp_path / "preds.jsonl"),
                 "--tasks", "demo", "--output", str(out), "--model-args", "batch_size=4,max_new_tokens=12",
                 cache=tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert Counter(r["task"] for r in rows) == Counter(i.task for i in items)
    assert all(r["caption"] and r["base_caption"].startswith("A draft about") for r in rows)

    own = tmp_path / "own.jsonl"
    own.write_text("\n".join(json.dumps({"id": n, "caption": "A cat.", "instruction": "Be brief."})
                             for n in range(3)), encoding="utf-8")
    result = cli("acm", "refine", "--checkpoint", str(trained), "--predictions", str(own), "--output",
                 str(tmp_path / "own_out.jsonl"), "--model-args", "max_new_tokens=8", cache=tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-3000:]
    assert len((tmp_path / "own_out.jsonl").read_text().splitlines()) == 3

    own.write_text(json.dumps({"id": 1, "caption": "A cat."}), encoding="utf-8")  # no instruction, no --tasks
    result = cli("acm", "refine", "--checkpoint", str(trained), "--predictions", str(own), "--output",
                 str(tmp_path / "x.jsonl"), cache=tmp_path / "cache")
    assert result.returncode == 2 and "instruction" in result.stderr and f"{own}:1" in result.stderr
    assert not (tmp_path / "x.jsonl").exists()


@pytest.mark.slow
@needs_acd
def test_run_with_acm_over_a_predictions_base(trained, tmp_path):
    demo_predictions(tmp_path / "preds.jsonl")
    run_dir = tmp_path / "run"
    args = ["run", "--model", f"acm:{trained}", "--base", f"predictions:{tmp_path / 'preds.jsonl'}", "--tasks", "demo",
            "--model-args", "batch_size=8,max_new_tokens=12", "--output", str(run_dir), "--judge", "fake:perfect"]
    result = cli(*args, cache=tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    text = json.dumps(manifest)
    assert f"acm:{trained}" in text
    assert manifest["base"] == "predictions:preds.jsonl"
    predictions = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    assert predictions and all(p["system"] == f"acm:{trained}" for p in predictions)
    assert all(p["status"] == "ok" and p["caption"] for p in predictions)
    # a re-run takes every refinement from the cache
    again = cli(*args, cache=tmp_path / "cache")
    assert again.returncode == 0
    assert [json.loads(line)["caption"] for line in (run_dir / "predictions.jsonl").read_text().splitlines()] == \
        [p["caption"] for p in predictions]


@pytest.mark.slow
@needs_acd
def test_tiny_model_leaves_correct_captions_alone(tmp_path):
    """Trained only on already-correct samples (real ACD instructions; drafts of two of the 30 most
    common ACD words, so a from-scratch model learns to copy within a CPU test), it returns held-out
    drafts (word pairs never seen in training) unchanged."""
    from anycapeval.acm.config import load_config
    from anycapeval.acm.data import read_triplets
    from anycapeval.acm.refine import Refiner, RefineRequest
    from anycapeval.acm.train import train

    triplets, _ = read_triplets(ACD)
    correct = [t for t in triplets if t.kind == "correct"][:4000]
    words = [w for w, _ in Counter(w for t in correct for w in t.target.lower().split() if w.isalpha()).most_common(30)]
    rng = random.Random(0)
    held = {" ".join(rng.sample(words, 2)).capitalize() + "." for _ in range(40)}
    rows = []
    for t in correct[40:]:
        draft = " ".join(rng.sample(words, 2)).capitalize() + "."
        if draft not in held:
            rows.append({"instruction": t.instruction, "draft": draft, "target": draft, "kind": "correct"})
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    config = load_config("tiny")
    config = config.model_copy(update={
        "data": config.data.model_copy(update={"num_samples": None, "ratio": {"correct": 1}}),
        "train": config.train.model_copy(update={"learning_rate": 3e-3, "max_length": 160, "save_steps": 10_000,
                                                 "per_device_batch_size": 32, "epochs": 100})})
    train(config, tmp_path / "train.jsonl", tmp_path / "model", max_steps=400, progress=False)
    refiner = Refiner(tmp_path / "model", max_new_tokens=16, batch_size=20)
    instructions = [t.instruction for t in correct[:len(held)]]
    drafts = sorted(held)
    out = refiner.refine([RefineRequest(q, d) for q, d in zip(instructions, drafts)])
    unchanged = sum(a == d for a, d in zip(out, drafts)) / len(drafts)
    print(f"held-out drafts returned unchanged: {unchanged:.0%} of {len(drafts)}")
    assert unchanged >= 0.8, list(zip(drafts, out))[:5]
