"""Run directories in, leaderboard.md / .csv / .html out (each file written whole, atomically)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..stats import N_RESAMPLES, SEED
from ..store import write_atomic
from .load import Run, load_runs
from .render_csv import render_csv
from .render_md import render_markdown
from .tables import Table, build_table, task_names


@dataclass
class Leaderboard:
    runs: list[Run]
    tables: list[Table]
    files: list[Path]


def build(paths: list[Path], output: Path, labels: dict[Path, str] | None = None, n_resamples: int = N_RESAMPLES,
          seed: int = SEED, with_paper: bool = True, html: bool = True,
          on_table: Callable[[str, int], None] | None = None) -> Leaderboard:
    """`on_table(task, n_tables)` is called before each table is built (for a progress bar)."""
    runs = load_runs(paths, labels)
    names = task_names(runs)
    tables = []
    for name in names:
        if on_table is not None:
            on_table(name, len(names))
        tables.append(build_table(name, runs, n_resamples, seed, with_paper))
    output.mkdir(parents=True, exist_ok=True)
    files = [output / "leaderboard.md", output / "leaderboard.csv"]
    write_atomic(files[0], render_markdown(tables, runs))
    write_atomic(files[1], render_csv(tables))
    if html:
        from .render_html import render_html

        files.append(output / "leaderboard.html")
        write_atomic(files[2], render_html(tables, runs))
    return Leaderboard(runs, tables, files)
