"""A leaderboard over 20 run directories: how long `anycapeval leaderboard` takes, end to end.

Builds, in a temp folder, 20 finished runs with the real CLI (`anycapeval run --judge fake:perfect`):
10 base systems (predictions files: the reference captions cut to 40-100 % of their words, a few
items left out so there are generation errors) and 10 refined systems, one over each base (captions
cut less; `base` written into their manifest as a refined run records it). Five runs carry paper names
(`--label`), so the paper's numbers are looked up too. Data: the AnyCapEval release texts in
../shared/data/anycapeval (6 tasks, 1134 items per run) when present, else the demo tasks (48 items).

Then times `anycapeval leaderboard RUN_DIR x20 --output DIR` in a fresh process (interpreter start,
imports, loading, 60 paired bootstraps of 1000 resamples, markdown, CSV, HTML with 12 figures), three
times, and once in-process stage by stage. Target: < 5 s wall per build.

    python benchmarks/leaderboard_20.py [--data auto|anycapeval|demo] [--repeat 3] [--json-out PATH] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "anycapeval"
TARGET_S = 5.0
N_BASES = 10
PAPER_LABELS = {0: "GPT-4o", 1: "InternVL2.5-8B", 2: "Qwen2.5-VL-7B"}  # base index -> paper name
ACM_LABELS = {0: "GPT-4o +ACM-8B", 1: "InternVL2.5-8B +ACM-2B"}  # refined over these bases


def references(data: str) -> list[tuple[str, str, str]]:
    """(task, id, reference caption) for every item of the chosen tasks."""
    from anycapeval.data import load_items
    from anycapeval.registry import resolve_tasks

    group, data_dir = ("anycapeval", str(SHARED)) if data == "anycapeval" else ("demo", None)
    return [(t.name, i.id, i.reference) for t in resolve_tasks(group) for i in load_items(t, data_dir)]


def cut(text: str, share: float) -> str:
    words = text.split()
    return " ".join(words[:max(3, int(len(words) * share))])


def write_predictions(path: Path, refs: list[tuple[str, str, str]], share: float, skip_every: int) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for k, (task, item_id, ref) in enumerate(refs):
            if skip_every and k % skip_every == 0:
                continue  # a generation error in the run
            fh.write(json.dumps({"id": item_id, "task": task, "caption": cut(ref, share)}) + "\n")


def make_runs(work: Path, data: str) -> tuple[list[Path], list[str]]:
    refs = references(data)
    group, extra = ("anycapeval", ["--data-dir", str(SHARED)]) if data == "anycapeval" else ("demo", [])
    env = {**os.environ, "ANYCAPEVAL_CACHE_DIR": str(work / "cache")}
    runs, labels = [], []
    for b in range(N_BASES):
        for kind in ("base", "refined"):
            name = f"{kind}{b:02d}"
            share = 0.4 + 0.05 * b + (0.15 if kind == "refined" else 0.0)
            write_predictions(work / f"{name}.jsonl", refs, min(share, 1.0), 0 if kind == "refined" else 97 + b)
            out = work / "runs" / name
            result = subprocess.run([sys.executable, "-m", "anycapeval.cli", "run", "--model",
                                     f"predictions:{work / f'{name}.jsonl'}", "--tasks", group, "--judge",
                                     "fake:perfect", "--output", str(out), *extra],
                                    capture_output=True, text=True, env=env, timeout=600)
            if result.returncode != 0:
                raise SystemExit(f"run {name} failed:\n{result.stderr[-3000:]}")
            if kind == "refined":  # what a refined run records: the base system's spec
                manifest = json.loads((out / "manifest.json").read_text())
                manifest["base"] = f"predictions:base{b:02d}.jsonl"
                (out / "manifest.json").write_text(json.dumps(manifest))
                if b in ACM_LABELS:
                    labels.append(f"{ACM_LABELS[b]}={out}")
            elif b in PAPER_LABELS:
                labels.append(f"{PAPER_LABELS[b]}={out}")
            runs.append(out)
    return runs, labels


def timed_cli(runs: list[Path], labels: list[str], out: Path) -> float:
    args = [sys.executable, "-m", "anycapeval.cli", "leaderboard", *map(str, runs), "--output", str(out)]
    for label in labels:
        args += ["--label", label]
    start = time.perf_counter()
    result = subprocess.run(args, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"leaderboard failed:\n{result.stderr[-3000:]}")
    return wall


def stages(runs: list[Path], labels: list[str], out: Path) -> dict[str, float]:
    """The same build in-process, stage by stage (imports are already warm here)."""
    from anycapeval.leaderboard.load import load_runs, parse_labels
    from anycapeval.leaderboard.render_csv import render_csv
    from anycapeval.leaderboard.render_html import render_html
    from anycapeval.leaderboard.render_md import render_markdown
    from anycapeval.leaderboard.tables import build_tables

    t = [time.perf_counter()]
    loaded = load_runs(runs, parse_labels(labels))
    t.append(time.perf_counter())
    tables = build_tables(loaded)
    t.append(time.perf_counter())
    text = render_markdown(tables, loaded) + render_csv(tables)
    t.append(time.perf_counter())
    page = render_html(tables, loaded)
    t.append(time.perf_counter())
    out.mkdir(parents=True, exist_ok=True)
    (out / "stages.html").write_text(page)
    names = ("load_s", "tables_and_paired_bootstrap_s", "markdown_csv_s", "html_and_plots_s")
    result = {n: t[i + 1] - t[i] for i, n in enumerate(names)}
    result["rows"] = sum(len(tb.rows) for tb in tables)
    result["paired_tests"] = sum(1 for tb in tables for r in tb.rows if r.base_row is not None)
    result["markdown_chars"] = len(text)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=("auto", "anycapeval", "demo"), default="auto")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--keep", type=Path, help="work in this new folder and keep it")
    args = parser.parse_args()
    data = args.data if args.data != "auto" else ("anycapeval" if SHARED.is_dir() else "demo")
    work = args.keep or Path(tempfile.mkdtemp(prefix="anycap-lb20-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        start = time.perf_counter()
        runs, labels = make_runs(work, data)
        make_s = time.perf_counter() - start
        walls = [timed_cli(runs, labels, work / f"board{i}") for i in range(args.repeat)]
        detail = stages(runs, labels, work / "stages")
        items = sum(1 for _ in (runs[0] / "scores.jsonl").open())
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    result: dict[str, Any] = {
        "benchmark": "leaderboard_20", "data": data, "runs": len(runs), "items_per_run": items,
        "python": platform.python_version(), "cpus": os.cpu_count(), "make_runs_s": make_s,
        "target_s": TARGET_S, "cli_wall_s": walls, "cli_wall_median_s": statistics.median(walls),
        "cli_wall_best_s": min(walls), "in_process": detail, "met": statistics.median(walls) < TARGET_S,
    }
    print(f"{len(runs)} runs ({data}, {items} items each, made in {make_s:.1f} s); "
          f"`anycapeval leaderboard` wall: median {result['cli_wall_median_s']:.2f} s, best "
          f"{result['cli_wall_best_s']:.2f} s over {len(walls)} (target < {TARGET_S:.0f} s)")
    print("in-process: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                                     for k, v in detail.items()))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
