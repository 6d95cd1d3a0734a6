"""`anycapeval leaderboard RUN_DIR... --output DIR`: the paper's tables from run directories."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

DESCRIPTION = """Build a leaderboard from finished run directories (made by `anycapeval run`/`score`): one table per
task with the dimensions as columns (the paper's order and abbreviations) and Avg, every value with its
95 % bootstrap CI and item count, each row's judge snapshot, prompt hash and error counts. Refined systems
(a `base` in their manifest) get a delta row against their base run with a paired bootstrap test. Rows
judged with a different judge, prompt, protocol or task version are ranked separately and marked.
The paper's numbers (references/paper_*.csv) are shown beside rows whose label is a paper system name
(e.g. --label 'GPT-4o=runs/gpt4o', --label 'GPT-4o +ACM-8B=runs/gpt4o-acm8b') or whose system spec
matches references/paper_systems.csv. Writes leaderboard.md, leaderboard.csv and leaderboard.html
(self-contained, with a bar chart and a radar chart per task)."""

EPILOG = """examples:
  anycapeval leaderboard runs/ --output board
  anycapeval leaderboard runs/gpt4o runs/gpt4o-acm --label 'GPT-4o=runs/gpt4o' --output board --no-html"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("leaderboard", help="tables (md, csv, html with plots) from run directories",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR",
                   help="run directories, or folders holding them (e.g. runs/)")
    p.add_argument("--output", type=Path, default=Path("leaderboard"),
                   help="folder for leaderboard.md, .csv and .html (default ./leaderboard)")
    p.add_argument("--label", action="append", metavar="NAME=RUN_DIR",
                   help="row name for a run (repeatable); a paper system name links the paper's numbers")
    p.add_argument("--resamples", type=int, default=None,
                   help="paired bootstrap resamples (default: the same as the runs' CIs, 1000)")
    p.add_argument("--seed", type=int, default=None, help="paired bootstrap seed (default: the runs' seed)")
    p.add_argument("--no-paper", action="store_true", help="leave out the paper's published numbers")
    p.add_argument("--no-html", action="store_true", help="write only the markdown and CSV (no matplotlib)")
    p.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from ..stats import N_RESAMPLES, SEED
    from ..types import AnyCapError
    from .files import build
    from .load import parse_labels
    from .paired import AVG
    from .render_md import num

    if args.resamples is not None and args.resamples < 1:
        raise AnyCapError("--resamples must be at least 1")
    console, out = Console(stderr=True), Console()
    with Progress(console=console, transient=True) as progress:
        step = progress.add_task("building tables", total=None)

        def on_table(name: str, total: int) -> None:
            progress.update(step, total=total, description=f"table {name}")
            progress.advance(step)

        board = build(args.runs, args.output, parse_labels(args.label),
                      N_RESAMPLES if args.resamples is None else args.resamples,
                      SEED if args.seed is None else args.seed, with_paper=not args.no_paper,
                      html=not args.no_html, on_table=on_table)
    summary = Table(title=f"leaderboard: {len(board.runs)} runs, {len(board.tables)} tables", title_justify="left")
    for col in ("task", "metric", "rows", "setups", "best (Avg)", "refined vs base"):
        summary.add_column(col)
    for table in board.tables:
        best = next((r for r in table.rows if r.rank == 1), None)
        best_text = f"{best.label} {num(best.cells[AVG].value, table.columns[0].digits)}" if best else "–"
        deltas = [r.cells[AVG] for r in table.rows if r.base_row is not None]
        sig = sum(1 for c in deltas if c.paired is not None and c.paired.significant)
        summary.add_row(table.task, table.main, str(len(table.rows)),
                        ("[yellow]" + ", ".join(table.setups) + " (not comparable)[/yellow]") if table.mixed_setups
                        else "1", best_text, f"{len(deltas)} ({sig} significant)" if deltas else "–")
    out.print(summary)
    console.print("wrote " + ", ".join(str(f) for f in board.files))
    return 0
