"""The leaderboard model: one table per task, systems as rows, the task's dimensions and metrics as columns.

Renderers (markdown, CSV, HTML) only format what is decided here. Every value comes from a run's
summary.json; the base deltas' confidence intervals and significance come from the paired bootstrap over
the two runs' scores.jsonl. Rows whose judge snapshot, prompt, protocol or task version differ get
different setup letters and are ranked separately, never together.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..report import COUNTS
from ..stats import N_RESAMPLES, SEED
from . import paper
from .load import Run
from .paired import AVG, Paired, paired_bootstrap, ratios_for

MAIN_METRIC = {"kpd": "kpd", "style_rubric": "style_score"}
METRIC_LABELS = {"kpd": "KPD", "style_score": "style (0-4)", "keypoint_recall": "recall",
                 "judge_score_uncapped": "uncapped", "length_compliance": "len ok"}
KNOWN_DIGITS = {"kpd": 2, "style_score": 2, "judge_score_uncapped": 2, "keypoint_recall": 3, "length_compliance": 3}
MODALITY_ORDER = {"image": 0, "video": 1, "audio": 2}
ASPECT_ORDER = {"content": 0, "style": 1}


@dataclass(frozen=True)
class Column:
    key: str  # dimension name, "Avg", or an average metric's name
    metric: str  # the summary metric shown in this column
    label: str
    kind: str  # "dim" | "avg" | "extra"
    digits: int


@dataclass
class Cell:
    value: float | None
    ci: tuple[float | None, float | None]
    counts: dict[str, int]
    delta: float | None = None  # refined minus base, from the two summaries
    relative: float | None = None  # delta / base value
    paired: Paired | None = None
    paper: paper.PaperValue | None = None

    @property
    def paper_diff(self) -> float | None:
        if self.paper is None or self.value is None:
            return None
        return self.value - self.paper.value


@dataclass
class Row:
    run: Run
    task_name: str
    task: dict[str, Any]
    cells: dict[str, Cell]
    setup: str = ""
    rank: int | None = None
    base_row: Row | None = None
    base_note: str = ""  # why a refined row shows no delta
    paper_name: str | None = None

    @property
    def label(self) -> str:
        return self.run.label

    def counts(self) -> dict[str, int]:
        return {c: int(self.task["average"].get(c, 0)) for c in COUNTS}


@dataclass
class Table:
    task: str
    modality: str
    aspect: str
    scorer: str
    main: str
    columns: list[Column]
    rows: list[Row]
    setups: dict[str, dict[str, Any]] = field(default_factory=dict)  # letter -> judge, prompt_hash, ...

    @property
    def title(self) -> str:
        what = " · ".join(x for x in (self.modality, self.aspect) if x)
        return f"{self.task} ({what}, {METRIC_LABELS.get(self.main, self.main)})" if what else self.task

    @property
    def mixed_setups(self) -> bool:
        return len(self.setups) > 1


def main_metric(task: dict[str, Any]) -> str:
    """The metric a task is ranked by: declared by the summary, known for the AnyCapEval scorers, else the
    first metric of its average (so a new scorer renders without code here)."""
    if task.get("main_metric"):
        return str(task["main_metric"])
    if task["scorer"] in MAIN_METRIC:
        return MAIN_METRIC[task["scorer"]]
    metrics = _metrics(task["average"])
    return metrics[0] if metrics else ""


def _metrics(entry: dict[str, Any]) -> list[str]:
    return [k for k, v in entry.items() if isinstance(v, dict) and "value" in v]


def _setup_key(task: dict[str, Any]) -> tuple[str, ...]:
    return (str(task["judge"]), str(task["prompt_hash"]), str(task.get("protocol", "")),
            str(task.get("task_version", "")))


def _digits(metric: str, values: list[float]) -> int:
    if metric in KNOWN_DIGITS:
        return KNOWN_DIGITS[metric]
    return 1 if values and max(abs(v) for v in values) >= 10 else 3


def _task_order(name: str, task: dict[str, Any]) -> tuple[Any, ...]:
    modality, aspect = task.get("modality", ""), task.get("aspect", "")
    family = "_".join(p for p in name.split("_") if p not in (modality, aspect))
    return (family, MODALITY_ORDER.get(modality, 9), ASPECT_ORDER.get(aspect, 9), name)


def _dimension_order(name: str, runs_tasks: list[dict[str, Any]]) -> list[str]:
    """The task file's column order (the paper's) when the task is installed, then any other dimension
    in the order the runs list them."""
    from ..registry import all_tasks

    order: list[str] = []
    known = all_tasks().get(name)
    if known is not None:
        order = list(known.config.dimensions.values())
    seen = set(order)
    present = {d for t in runs_tasks for d in t["dimensions"]}
    for t in runs_tasks:
        for d in t["dimensions"]:
            if d not in seen:
                order.append(d)
                seen.add(d)
    return [d for d in order if d in present]


def _columns(name: str, tasks: list[dict[str, Any]], main: str) -> list[Column]:
    dims = _dimension_order(name, tasks)
    extras: list[str] = []
    for t in tasks:
        extras += [m for m in _metrics(t["average"]) if m != main and m not in extras]

    def values(metric: str, entries: list[dict[str, Any]]) -> list[float]:
        return [e[metric]["value"] for e in entries if isinstance(e.get(metric), dict)
                and isinstance(e[metric].get("value"), (int, float))]

    all_entries = [e for t in tasks for e in (t["average"], *t["dimensions"].values())]
    main_digits = _digits(main, values(main, all_entries))
    cols = [Column(d, main, d, "dim", main_digits) for d in dims]
    cols.append(Column(AVG, main, AVG, "avg", main_digits))
    averages = [t["average"] for t in tasks]
    cols += [Column(m, m, METRIC_LABELS.get(m, m), "extra", _digits(m, values(m, averages))) for m in extras]
    return cols


def _cell(entry: dict[str, Any] | None, metric: str, counts_from: dict[str, Any]) -> Cell:
    found = entry.get(metric) if entry else None
    value = found.get("value") if isinstance(found, dict) else None
    low, high = (found.get("ci") or [None, None]) if isinstance(found, dict) else (None, None)
    return Cell(value, (low, high), {c: int(counts_from.get(c, 0)) for c in COUNTS})


def _row(run: Run, name: str, columns: list[Column]) -> Row:
    task = run.tasks[name]
    cells: dict[str, Cell] = {}
    for col in columns:
        if col.kind == "dim":
            entry = task["dimensions"].get(col.key)
            cells[col.key] = _cell(entry, col.metric, entry or {})
        else:
            cells[col.key] = _cell(task["average"], col.metric, task["average"])
    return Row(run, name, task, cells)


def _link_bases(rows: list[Row]) -> None:
    """A refined row's base is the row (same task) whose system is its manifest's `base`, judged the same way."""
    for row in rows:
        if row.run.base is None:
            continue
        candidates = [r for r in rows if r.run.system == row.run.base and r is not row]
        same = [r for r in candidates if _setup_key(r.task) == _setup_key(row.task)]
        if same:
            row.base_row = same[0]
        elif candidates:
            row.base_note = f"base {row.run.base} was judged differently (setup {candidates[0].setup}): no delta"
        else:
            row.base_note = f"base {row.run.base} is not among the runs: no delta"


def _deltas(row: Row, columns: list[Column], n_resamples: int, seed: int) -> None:
    base = row.base_row
    assert base is not None
    ratios = ratios_for(row.task)
    tests = paired_bootstrap(row.run.scores(row.task_name), base.run.scores(row.task_name), ratios,
                             n_resamples, seed) if ratios else {}
    for col in columns:
        mine, theirs = row.cells[col.key], base.cells[col.key]
        if mine.value is None or theirs.value is None:
            continue
        mine.delta = mine.value - theirs.value
        mine.relative = mine.delta / theirs.value if theirs.value else None
        key = (col.key if col.kind == "dim" else AVG, col.metric)
        mine.paired = tests.get(key)


def _rank_and_order(rows: list[Row]) -> list[Row]:
    def score(row: Row) -> float:
        value = row.cells[AVG].value
        return -math.inf if value is None else value

    for letter in {r.setup for r in rows}:
        ranked = sorted((r for r in rows if r.setup == letter), key=score, reverse=True)
        for i, r in enumerate(ranked, 1):
            r.rank = i if score(r) > -math.inf else None
    # Paper layout: a base, then its refined rows right below it; families by the base's score.
    roots = [r for r in rows if r.base_row is None]
    ordered: list[Row] = []
    for root in sorted(roots, key=lambda r: (r.setup, -score(r))):
        ordered.append(root)
        ordered += sorted((r for r in rows if r.base_row is root), key=score, reverse=True)
    return ordered


def build_table(name: str, runs: list[Run], n_resamples: int = N_RESAMPLES, seed: int = SEED,
                with_paper: bool = True) -> Table:
    having = [r for r in runs if name in r.tasks]
    tasks = [r.tasks[name] for r in having]
    first = tasks[0]
    main = main_metric(first)
    columns = _columns(name, tasks, main)
    rows = [_row(r, name, columns) for r in having]
    keys = Counter(_setup_key(t) for t in tasks)
    order = sorted(keys, key=lambda k: (-keys[k], [_setup_key(t) for t in tasks].index(k)))
    letters = {k: chr(ord("A") + i) if i < 26 else f"S{i}" for i, k in enumerate(order)}
    setups = {}
    for row in rows:
        row.setup = letters[_setup_key(row.task)]
        setups[row.setup] = {"judge": judge_label(row.task), "paper_judge": row.task.get("paper_judge"),
                             "prompt_hash": row.task["prompt_hash"],
                             "protocol": row.task.get("protocol", ""), "task_version": row.task.get("task_version", ""),
                             "judge_is_approximation": bool(row.task.get("judge_is_approximation"))}
    _link_bases(rows)
    for row in rows:
        if row.base_row is not None:
            _deltas(row, columns, n_resamples, seed)
    if with_paper:
        _attach_paper(name, rows, columns)
    return Table(name, str(first.get("modality", "")), str(first.get("aspect", "")), str(first["scorer"]), main,
                 columns, _rank_and_order(rows), dict(sorted(setups.items())))


def task_cost(task: dict[str, Any]) -> float | None:
    """USD the task's API calls cost (system + judges) as its summary recorded it; None when unpriced."""
    cost = task.get("cost") or {}
    return cost.get("usd")


def judge_label(task: dict[str, Any]) -> str:
    """The judge spec, with the dated snapshot(s) that actually answered when the spec named an alias:
    `openai:gpt-4o-mini → gpt-4o-mini-2024-07-18`."""
    label = str(task["judge"])
    served = [m for m in task.get("served_judge") or {} if not label.endswith(f":{m}")]
    return f"{label} → {', '.join(served)}" if served else label


def _attach_paper(name: str, rows: list[Row], columns: list[Column]) -> None:
    for row in sorted(rows, key=lambda r: r.run.base is not None):  # bases first: refined rows use their name
        base_name = None
        if row.run.base is not None:
            base_name = row.base_row.paper_name if row.base_row is not None else None
            base_name = base_name or paper.name_for_spec(row.run.base)
        row.paper_name = paper.paper_name(row.label, row.run.system, base_name)
        if row.paper_name is not None:
            for col in columns:
                row.cells[col.key].paper = paper.lookup(name, row.paper_name, col.key)


def task_names(runs: list[Run]) -> list[str]:
    """Every task of any run, AnyCapEval-style families together: image, video, audio; content, style."""
    names: dict[str, dict[str, Any]] = {}
    for run in runs:
        for name, task in run.tasks.items():
            names.setdefault(name, task)
    return sorted(names, key=lambda n: _task_order(n, names[n]))


def build_tables(runs: list[Run], n_resamples: int = N_RESAMPLES, seed: int = SEED,
                 with_paper: bool = True) -> list[Table]:
    return [build_table(n, runs, n_resamples, seed, with_paper) for n in task_names(runs)]
