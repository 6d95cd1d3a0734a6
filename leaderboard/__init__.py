"""Leaderboards from run directories: markdown, CSV and a self-contained HTML page with plots
(`files.build`, the `anycapeval leaderboard` command), or a pandas DataFrame (`build`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def build(runs: Any, labels: dict[str, str] | None = None, with_paper: bool = True) -> pd.DataFrame:
    """The leaderboard as a DataFrame, one row per (task, run, column) with the same fields and values as
    leaderboard.csv (CIs, ranks, Δ against the base with its paired test, the paper's numbers).

    `runs`: run directories (or folders of them, or `Results`); `labels`: {run directory: row name}."""
    import pandas as pd

    from ..stats import N_RESAMPLES, SEED
    from .load import load_runs
    from .render_csv import FIELDS, records
    from .tables import build_table, task_names

    if isinstance(runs, (str, Path)) or hasattr(runs, "run_dir"):
        runs = [runs]
    paths = [Path(getattr(r, "run_dir", r)) for r in runs]
    loaded = load_runs(paths, {Path(k).resolve(): v for k, v in (labels or {}).items()})
    tables = [build_table(name, loaded, N_RESAMPLES, SEED, with_paper) for name in task_names(loaded)]
    return pd.DataFrame(list(records(tables)), columns=FIELDS)
