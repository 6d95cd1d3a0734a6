"""`anycapeval systems` (the system kinds and their --model-args) and `anycapeval merge` (join shard runs)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

out = Console()
err = Console(stderr=True)


def cmd_systems(args: argparse.Namespace) -> int:
    from . import KINDS

    table = Table(title="systems (anycapeval run --model SPEC [--model-args K=V,...])", show_lines=True)
    for col in ("spec", "what it is", "--model-args"):
        table.add_column(col)
    for kind in KINDS:
        table.add_row(kind.syntax, kind.summary, "\n".join(f"{k}: {v}" for k, v in kind.args.items()) or "–")
    out.print(table)
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from ..merge import merge_runs
    from ..report import print_summary

    summary = merge_runs(list(args.run_dirs), args.output)
    print_summary(summary, out)
    err.print(f"merged {len(args.run_dirs)} shards into [bold]{args.output}[/bold]")
    return 0


def register(subparsers: Any) -> None:
    systems = subparsers.add_parser("systems", help="list the system kinds and their --model-args",
                                    description="The systems `run --model` accepts, with their settings.")
    systems.set_defaults(handler=cmd_systems)
    merge = subparsers.add_parser(
        "merge", help="join the run directories of --shard K/N runs into one run",
        description="Join shard runs (`anycapeval run ... --shard K/N`, K = 1..N) into one run directory whose "
        "summary.json equals an unsharded run's: rows are put back in item order and every aggregate and CI is "
        "recomputed by the task's scorer. Refuses shards of different runs, and missing or duplicate shards.")
    merge.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="the shard run directories")
    merge.add_argument("--output", type=Path, required=True, help="the merged run directory to write")
    merge.set_defaults(handler=cmd_merge)
