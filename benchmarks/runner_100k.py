"""The whole runner on a synthetic 100,000-item content task: a cold pass, then a warm one.

Builds, in a temp folder, a task in the official AnyCapEval JSONL layout (image content: `id`,
`image`, `conversations` human/gpt, `restriction` [type, "The generated caption's length needs to be
10 to 20 words."], three `key_point`s; the four image-content instruction types in turn), a task YAML
next to a copy of the shipped `tasks/prompts/`, and points the registry at that folder (by replacing
`anycapeval.registry.tasks_dir`). Then runs

    anycapeval.runner.run(RunOptions(model="reference", tasks=NAME, data_dir=TMP/data,
                                     judge="fake:perfect", cache_path=TMP/cache.sqlite, output=TMP/runN))

twice, each in a fresh subprocess (this script with --pass), so that the peak resident set
(getrusage(RUSAGE_SELF).ru_maxrss) is per pass: `cold` judges every item and fills the cache, `warm`
takes every judgment from the cache (the judge must not be called at all). Checks that both
summary.json files (and scores.jsonl) are equal. Targets: peak RSS < 1 GB per pass, warm pass < 60 s;
with --items 1000000 (the million-item mode): peak RSS < 1.5 GB per pass, cold < 200 s, warm < 100 s.

    python benchmarks/runner_100k.py [--items 100000] [--json-out PATH] [--keep DIR] [--profile]
    python benchmarks/runner_100k.py --items 1000000 --json-out benchmarks/results/runner_1m.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TASK = "bench_image_content_100k"
DATA_FILE = f"{TASK}.jsonl"
TYPES = ("multi_class_position", "multi_class_appearance", "instance", "perspective")
CONSTRAINT = "The generated caption's length needs to be 10 to 20 words."
TARGET_RSS_MB = 1024
TARGET_WARM_S = 60.0
MILLION = 1_000_000  # --items at or above this: the million-item targets
TARGETS_1M = {"peak_rss_mb": 1536, "cold_wall_s": 200.0, "warm_wall_s": 100.0}
TASK_YAML = f"""\
name: {TASK}
version: "bench-1"
description: synthetic image content task for benchmarks/runner_100k.py
dataset: anycapeval
modality: image
aspect: content
data_file: {DATA_FILE}
scorer: kpd
judge:
  role: content
  snapshot: gpt-4o-2024-08-06
  prompt: prompts/anycapeval_content.txt
dimensions:
  multi_class_position: IPos
  multi_class_appearance: IApp
  instance: Ins
  perspective: Per
"""

COLOURS = ("red", "blue", "green", "yellow", "white", "black", "orange", "purple")
THINGS = ("kite", "bicycle", "dog", "umbrella", "boat", "lamp", "guitar", "teapot", "bench", "horse")
PLACES = ("field", "harbour", "kitchen", "street", "garden", "station", "beach", "library")


def build(work: Path, n: int) -> None:
    """Data (official layout), the task YAML and a copy of the shipped prompts."""
    from anycapeval.task_config import tasks_dir

    data = work / "data" / "image"
    data.mkdir(parents=True)
    with (data / DATA_FILE).open("w", encoding="utf-8") as fh:
        for i in range(n):
            c, t, p = COLOURS[i % 8], THINGS[(i // 8) % 10], PLACES[(i // 80) % 8]
            ref = (f"A {c} {t} rests near the {p} while item {i} waits quietly beside it in soft light."
                   if i % 3 else f"A {c} {t} in the {p}, item {i}, photographed from a low angle at dusk.")
            fh.write(json.dumps({
                "id": i, "image": f"bench_{i:06d}.jpg",
                "conversations": [{"from": "human", "value": f"<image>\nDescribe the {t} (item {i})."},
                                  {"from": "gpt", "value": ref}],
                "restriction": [TYPES[i % 4], CONSTRAINT],
                "key_point": [f"The {t} is {c}.", f"The scene is a {p}.", f"It is item {i}."],
            }) + "\n")
    tasks = work / "tasks"
    tasks.mkdir()
    (tasks / f"{TASK}.yaml").write_text(TASK_YAML, encoding="utf-8")
    shutil.copytree(tasks_dir() / "prompts", tasks / "prompts")


def one_pass(work: Path, name: str, out: Path, profile: bool) -> dict[str, Any]:
    """Runs in the child process: one anycapeval.runner.run(), timed, with its peak RSS."""
    t_import = time.perf_counter()
    import anycapeval.registry as registry
    import anycapeval.runner as runner_mod
    from anycapeval.runner import RunOptions, run

    registry.tasks_dir = lambda: work / "tasks"  # type: ignore[assignment]  # the registry reads it at call time
    registry._load_all.cache_clear()
    judges: list[Any] = []
    real_make_judge = runner_mod.make_judge

    def make_judge(*args: Any, **kwargs: Any) -> Any:  # keep a handle on the judge to count its calls
        judges.append(real_make_judge(*args, **kwargs))
        return judges[-1]

    runner_mod.make_judge = make_judge  # type: ignore[assignment]
    options = RunOptions(model="reference", tasks=TASK, data_dir=str(work / "data"), judge="fake:perfect",
                         cache_path=work / "cache.sqlite", output=work / name)
    import_s = time.perf_counter() - t_import
    t0 = time.perf_counter()
    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        result = profiler.runcall(run, options)
        profiler.dump_stats(str(out.with_suffix(".prof")))
        with out.with_suffix(".prof.txt").open("w") as fh:
            pstats.Stats(profiler, stream=fh).sort_stats("tottime").print_stats(40)
            pstats.Stats(profiler, stream=fh).sort_stats("cumulative").print_stats(60)
    else:
        result = run(options)
    wall = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"pass": name, "wall_s": wall, "import_s": import_s, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_mb": usage.ru_maxrss / 1024, "exit_code": result.exit_code,
            "judge_calls": sum(getattr(j, "calls", 0) for j in judges), "run_dir": str(result.run_dir),
            "n_scored": result.summary["tasks"][TASK]["average"]["n"], "profiled": profile,
            "load_avg_at_end": os.getloadavg()}


def child(args: argparse.Namespace) -> int:
    out = Path(args.result)
    os.environ["ANYCAPEVAL_CACHE_DIR"] = str(Path(args.workdir) / "home-cache")
    out.write_text(json.dumps(one_pass(Path(args.workdir), args.pass_name, out, args.profile)) + "\n")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000, help="items in the synthetic task")
    parser.add_argument("--json-out", type=Path, help="also write the results here as JSON")
    parser.add_argument("--keep", type=Path, help="work in this (new) folder and keep it, instead of a temp one")
    parser.add_argument("--profile", action="store_true", help="run each pass under cProfile (slower); "
                        "writes pass-*.prof and pass-*.prof.txt into the work folder (use with --keep)")
    parser.add_argument("--pass", dest="pass_name", help=argparse.SUPPRESS)  # child mode
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pass_name:
        return child(args)

    if args.keep:
        args.keep.mkdir(parents=True)
        work, cleanup = args.keep.resolve(), None
    else:
        cleanup = tempfile.TemporaryDirectory(prefix="anycap-100k-")
        work = Path(cleanup.name)
    try:
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        build(work, args.items)
        build_s = time.perf_counter() - t0
        data_mb = (work / "data" / "image" / DATA_FILE).stat().st_size / 2**20
        print(f"built {args.items} items ({data_mb:.1f} MB JSONL) in {build_s:.1f} s under {work}", file=sys.stderr)
        passes = []
        for name in ("run1", "run2"):
            result = work / f"pass-{name}.json"
            cmd = [sys.executable, str(Path(__file__).resolve()), "--pass", name, "--workdir", str(work),
                   "--result", str(result)] + (["--profile"] if args.profile else [])
            t = time.perf_counter()
            proc = subprocess.run(cmd)
            if proc.returncode != 0:
                print(f"pass {name} failed (exit {proc.returncode})", file=sys.stderr)
                return 2
            row = json.loads(result.read_text())
            row["process_wall_s"] = time.perf_counter() - t
            row["kind"] = "cold" if name == "run1" else "warm"
            passes.append(row)
        s1, s2 = (json.loads((work / p["pass"] / "summary.json").read_text()) for p in passes)
        scores_equal = (work / "run1" / "scores.jsonl").read_bytes() == (work / "run2" / "scores.jsonl").read_bytes()
        cache_mb = sum(f.stat().st_size for f in work.glob("cache.sqlite*")) / 2**20
    finally:
        if cleanup is not None:
            cleanup.cleanup()

    cold, warm = passes
    checks = {
        "summaries_equal": s1 == s2,
        "scores_equal": scores_equal,
        "all_items_scored": cold["n_scored"] == warm["n_scored"] == args.items,
        "cold_judged_every_item": cold["judge_calls"] == args.items,
        "warm_judged_nothing": warm["judge_calls"] == 0,
        "exit_codes_zero": cold["exit_code"] == warm["exit_code"] == 0,
    }
    if args.items >= MILLION:
        limits = TARGETS_1M
        targets = {
            "peak_rss_under_1.5gb": all(p["peak_rss_mb"] < limits["peak_rss_mb"] for p in passes),
            "cold_under_200s": cold["wall_s"] < limits["cold_wall_s"],
            "warm_under_100s": warm["wall_s"] < limits["warm_wall_s"],
        }
    else:
        limits = {"peak_rss_mb": TARGET_RSS_MB, "warm_wall_s": TARGET_WARM_S}
        targets = {
            "peak_rss_under_1gb": all(p["peak_rss_mb"] < TARGET_RSS_MB for p in passes),
            "warm_under_60s": warm["wall_s"] < TARGET_WARM_S,
        }
    print(f"\nrunner on {args.items} content items (fake:perfect judge, SQLite cache {cache_mb:.0f} MB)"
          + ("  [under cProfile: times inflated]" if args.profile else ""))
    print(f"{'pass':<6}{'run() wall s':>14}{'process wall s':>16}{'cpu s':>8}{'peak RSS MB':>13}"
          f"{'judge calls':>13}{'scored':>9}")
    for p in passes:
        print(f"{p['kind']:<6}{p['wall_s']:>14.1f}{p['process_wall_s']:>16.1f}{p['cpu_s']:>8.1f}"
              f"{p['peak_rss_mb']:>13.0f}{p['judge_calls']:>13d}{p['n_scored']:>9d}")
    for name, ok in {**checks, **targets}.items():
        print(f"  {name:<26} {'PASS' if ok else 'FAIL'}")
    passed = all(checks.values()) and all(targets.values())
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps({
            "benchmark": "runner_100k", "items": args.items, "python": platform.python_version(),
            "cpus": os.cpu_count(), "build_s": build_s, "data_mb": data_mb, "cache_mb": cache_mb,
            "load_before": load_before, "load_after": os.getloadavg(), "targets": limits, "passes": passes,
            "checks": checks, "target_results": targets, "passed": passed}, indent=2) + "\n")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
