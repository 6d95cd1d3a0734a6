"""The Python API: `evaluate(...)` runs exactly what `anycapeval run` runs; `load_run(dir)` reads a
finished run directory. Both return `Results`, whose frames are built from the run directory's
own files (summary.json, scores.jsonl), so a frame and the CLI's tables never disagree.

    import anycapeval
    r = anycapeval.evaluate(model="reference", tasks="demo")
    r.to_pandas()        # one row per (task, dimension, metric): value, ci_low, ci_high, n, ...
    r.scores_frame()     # one row per scored item
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .types import AnyCapError

if TYPE_CHECKING:
    import pandas as pd

COUNT_COLUMNS = ("n", "n_judge_error", "n_generation_error", "n_skipped")
AVERAGE = "average"  # the dimension label of a task's own row in to_pandas()


@dataclass
class Results:
    """A finished run: its directory, `summary` (the summary.json dict), the exit code the CLI would
    return (0, or 3 when too many judgments failed) and the run's warnings."""

    run_dir: Path
    summary: dict[str, Any]
    exit_code: int = 0
    messages: list[str] = field(default_factory=list)

    def to_pandas(self) -> pd.DataFrame:
        """One row per (task, dimension, metric) with value, ci_low, ci_high and the counts; each task's
        own row has dimension "average". Pivot it for a paper-style table:
        `df[df.metric == "kpd"].pivot(index="task", columns="dimension", values="value")`."""
        import pandas as pd

        rows = []
        for task, entry in self.summary["tasks"].items():
            parts = [*entry["dimensions"].items(), (AVERAGE, entry["average"])]
            for dimension, cell in parts:
                for metric, value in cell.items():
                    if not (isinstance(value, dict) and "value" in value):
                        continue
                    low, high = value.get("ci") or (None, None)
                    rows.append({"task": task, "dimension": dimension, "metric": metric, "value": value["value"],
                                 "ci_low": low, "ci_high": high, **{c: cell.get(c) for c in COUNT_COLUMNS},
                                 "judge": entry.get("judge"), "system": self.summary.get("system")})
        columns = ["task", "dimension", "metric", "value", "ci_low", "ci_high", *COUNT_COLUMNS, "judge", "system"]
        frame = pd.DataFrame(rows, columns=columns)
        return frame.astype({"value": float, "ci_low": float, "ci_high": float})

    def scores_frame(self) -> pd.DataFrame:
        """One row per item of scores.jsonl: task, item_id, dimension, status, error, system, judge, ...,
        and each of the item's metrics as its own column (nested values stay objects)."""
        import pandas as pd

        from .files import read_jsonl

        path = self.run_dir / "scores.jsonl"
        if not path.is_file():
            raise AnyCapError(f"{path} not found: is {self.run_dir} a finished run directory?")
        rows = []
        for _, row in read_jsonl(path):
            metrics = row.get("metrics") or {}
            rows.append({**{k: v for k, v in row.items() if k != "metrics"}, **metrics})
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        return f"Results(run_dir={str(self.run_dir)!r}, tasks={list(self.summary.get('tasks', {}))})"


def evaluate(model: str, tasks: str | list[str], judge: str | None = None, **options: Any) -> Results:
    """Run `model` on `tasks` and judge the captions, as `anycapeval run` does. `options` are the
    fields of `anycapeval.runner.RunOptions` (data_dir, media_dir, output, limit, judge_base_url,
    judge_concurrency, protocol, cache_path, model_args, ...), spelled as in Python. A run that
    exceeds max_judge_error_rate still returns its Results (check `exit_code`)."""
    from .runner import RunOptions

    if not isinstance(tasks, str):
        tasks = ",".join(tasks)
    for key in ("output", "cache_path"):
        if options.get(key) is not None:
            options[key] = Path(options[key])
    try:
        run_options = RunOptions(model=model, tasks=tasks, judge=judge, **options)
    except TypeError as exc:  # an unknown keyword: name the ones that exist
        import dataclasses

        known = ", ".join(f.name for f in dataclasses.fields(RunOptions) if f.name not in ("model", "tasks", "judge"))
        raise AnyCapError(f"evaluate(): {exc}; the options are: {known}") from None
    if not run_options.command:
        run_options.command = ["anycapeval.evaluate", f"model={model}", f"tasks={tasks}"]
    return run_results(run_options)


def run_results(options: Any) -> Results:
    """The one path from RunOptions to Results, shared by `evaluate()` and `anycapeval run|score`."""
    from .runner import run

    result = run(options)
    return Results(Path(result.run_dir), result.summary, result.exit_code, list(result.messages))


def load_run(run_dir: str | Path) -> Results:
    """Results of a finished run directory (one `anycapeval run`, `score`, `merge` or `evaluate` wrote)."""
    run_dir = Path(run_dir)
    path = run_dir / "summary.json"
    if not path.is_file():
        raise AnyCapError(f"{path} not found: pass a finished run directory (anycapeval run ... --output DIR)")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise AnyCapError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); re-run the command that wrote it") \
            from None
    if not isinstance(summary, dict) or not isinstance(summary.get("tasks"), dict):
        raise AnyCapError(f"{path}: no 'tasks' object; is {run_dir} an anycapeval run directory?")
    exit_code = 0
    errors = summary.get("judge_errors") or {}
    if errors.get("n") and errors.get("rate", 0) > errors.get("max_allowed_rate", 0):
        exit_code = 3
    return Results(run_dir, summary, exit_code, [])
