"""leaderboard.csv: one tidy row per (task, run, column) with full-precision numbers, for pandas or R.

Values are written as they are in summary.json (no rounding), so the CSV is the exact record and the
markdown/HTML are its rounded views.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from .tables import Table, judge_label, task_cost

FIELDS = ["task", "modality", "aspect", "scorer", "column", "column_kind", "metric", "system", "system_spec",
          "base", "base_spec", "run_dir", "setup", "rank", "judge", "judge_is_approximation", "prompt_hash",
          "protocol", "task_version", "value", "ci_low", "ci_high", "n", "n_judge_error", "n_generation_error",
          "n_skipped", "delta", "relative_gain", "delta_ci_low", "delta_ci_high", "p_value", "significant",
          "n_shared", "paper_system", "paper_value", "paper_diff", "paper_source", "cost_usd"]


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def render_csv(tables: list[Table]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for record in records(tables):
        writer.writerow({k: _fmt(v) for k, v in record.items()})
    return buf.getvalue()


def records(tables: list[Table]) -> Iterator[dict[str, Any]]:
    """One dict per (task, run, column), keyed by FIELDS: the CSV's rows and the DataFrame's."""
    for table in tables:
        for row in table.rows:
            for col in table.columns:
                cell = row.cells[col.key]
                paired = cell.paired
                record = {
                    "task": table.task, "modality": table.modality, "aspect": table.aspect, "scorer": table.scorer,
                    "column": col.key, "column_kind": col.kind, "metric": col.metric, "system": row.label,
                    "system_spec": row.run.system, "base": row.base_row.label if row.base_row else "",
                    "base_spec": row.run.base, "run_dir": str(row.run.path), "setup": row.setup, "rank": row.rank,
                    "judge": judge_label(row.task),
                    "judge_is_approximation": bool(row.task.get("judge_is_approximation")),
                    "prompt_hash": row.task["prompt_hash"], "protocol": row.task.get("protocol"),
                    "task_version": row.task.get("task_version"), "value": cell.value, "ci_low": cell.ci[0],
                    "ci_high": cell.ci[1], **cell.counts, "delta": cell.delta, "relative_gain": cell.relative,
                    "delta_ci_low": paired.ci[0] if paired else None, "delta_ci_high": paired.ci[1] if paired else None,
                    "p_value": paired.p_value if paired else None,
                    "significant": paired.significant if paired else None,
                    "n_shared": paired.n_shared if paired else None, "paper_system": row.paper_name,
                    "paper_value": cell.paper.value if cell.paper else None, "paper_diff": cell.paper_diff,
                    "paper_source": cell.paper.source if cell.paper else None,
                    "cost_usd": task_cost(row.task),
                }
                yield record
