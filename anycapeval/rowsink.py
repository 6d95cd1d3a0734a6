"""The run directory's row files, streamed: rows go to temporary files as the runner makes them and
are renamed into place only when the whole run is done, so the run holds no row in memory and
nothing in the run directory is ever half-written (store.write_jsonl_atomic, row by row).

Judgment rows are written round by round within a task (every first-round row of the task, then
every second-round row, ...), whatever chunks the runner works in: later rounds wait in their own
temporary files until the task ends. `RowTally` keeps the counts the summary needs from the rows
(served snapshots, media sent, cost), merged in the same row order, so they equal what the full
row lists would give.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from .cost import CostTally
from .store import jsonl_line
from .types import JUDGE_ERROR

FILES = ("predictions", "judgments", "scores")


class JsonlSink:
    """Rows appended to `.NAME.XXXX.tmp` beside `path`; `commit` renames it to `path` (atomic),
    `discard` removes it."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        self.tmp = Path(tmp)
        self.fh: IO[str] = os.fdopen(fd, "w", encoding="utf-8", buffering=1 << 20)

    def write(self, rows: Iterable[dict[str, Any]], tail: dict[str, Any] | None = None) -> None:
        """Each row, followed by the fields of `tail` when given (what every row of a task ends with: its
        provenance), as if written {**row, **tail}; the tail is encoded once. Rows and tail share no key."""
        if not tail:
            self.fh.writelines(map(jsonl_line, rows))
            return
        end = ", " + jsonl_line(tail)[1:]  # '"key": value, ...}\n'
        for row in rows:
            if row.keys() & tail.keys():
                raise ValueError(f"row fields {sorted(row.keys() & tail.keys())} are also in the tail")
            self.fh.write(jsonl_line(row)[:-2] + end if row else jsonl_line(tail))

    def append_file(self, other: JsonlSink) -> None:
        """Copy another sink's rows after this one's, and discard it."""
        other.fh.flush()
        with other.tmp.open(encoding="utf-8") as fh:
            shutil.copyfileobj(fh, self.fh, 1 << 20)
        other.discard()

    def commit(self) -> None:
        self.fh.close()
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        self.fh.close()
        self.tmp.unlink(missing_ok=True)


class RunRows:
    """predictions.jsonl, judgments.jsonl and scores.jsonl of one run directory, being written."""

    def __init__(self, run_dir: Path):
        for name in FILES:  # what a killed run left behind (it never reached its rename)
            for stale in run_dir.glob(f".{name}.jsonl.*.tmp"):
                stale.unlink(missing_ok=True)
        self.sinks = {name: JsonlSink(run_dir / f"{name}.jsonl") for name in FILES}
        self.later_rounds: dict[int, JsonlSink] = {}  # this task's judgment rows of round >= 1
        self.run_dir = run_dir

    def predictions(self, rows: Iterable[dict[str, Any]], tail: dict[str, Any] | None = None) -> None:
        self.sinks["predictions"].write(rows, tail)

    def scores(self, rows: Iterable[dict[str, Any]], tail: dict[str, Any] | None = None) -> None:
        self.sinks["scores"].write(rows, tail)

    def judgments(self, round_no: int, rows: list[dict[str, Any]]) -> None:
        """Judgment rows of one round of a chunk of the current task."""
        if round_no == 0:
            sink = self.sinks["judgments"]
        elif round_no in self.later_rounds:
            sink = self.later_rounds[round_no]
        else:
            sink = self.later_rounds[round_no] = JsonlSink(self.run_dir / f"judgments.jsonl.round{round_no}")
        sink.write(rows)

    def end_task(self) -> None:
        for round_no in sorted(self.later_rounds):
            self.sinks["judgments"].append_file(self.later_rounds[round_no])
        self.later_rounds = {}

    def commit(self) -> None:
        self.end_task()
        for sink in self.sinks.values():
            sink.commit()

    def discard(self) -> None:
        for sink in [*self.later_rounds.values(), *self.sinks.values()]:
            sink.discard()


def by_round(rows: list[dict[str, Any]]) -> Iterable[tuple[int, list[dict[str, Any]]]]:
    """(round, its rows) for rows already in round order, as judge_rounds returns them."""
    start = 0
    while start < len(rows):
        round_no = rows[start].get("round", 0)
        stop = start
        while stop < len(rows) and rows[stop].get("round", 0) == round_no:
            stop += 1
        yield round_no, rows[start:stop]
        start = stop


class RowTally:
    """What the summary reads from rows, without the rows: per role and spec the served snapshots,
    per kind the media a judge saw, the usage to price, failures and text-only judgments."""

    def __init__(self) -> None:
        self.served: dict[str, dict[str, Counter[str]]] = {"system": {}, "judge": {}}  # role -> spec -> snapshot
        self.served_any: Counter[str] = Counter()  # judge snapshot -> count, whichever spec
        self.media_seen: Counter[str] = Counter()
        self.cost = CostTally()
        self.predictions = self.generation_failed = 0
        self.judgments = self.judge_failed = self.text_only = 0

    def serve(self, role: str, rows: Iterable[dict[str, Any]]) -> None:
        """Count the snapshots that answered `role`'s rows (the rows name their spec by `role`)."""
        by_spec = self.served[role]
        for row in rows:
            served = row.get("served_model")
            if served:
                by_spec.setdefault(row[role], Counter())[served] += 1

    def add_predictions(self, rows: list[dict[str, Any]]) -> None:
        self.serve("system", rows)
        self.cost.add("systems", rows)
        self.predictions += len(rows)
        self.generation_failed += sum(row["status"] != "ok" for row in rows)

    def add_judgments(self, rows: list[dict[str, Any]]) -> None:
        self.serve("judge", rows)
        self.cost.add("judges", rows)
        media_seen, served_any = self.media_seen, self.served_any
        for row in rows:
            media_seen[row["media_sent"]] += 1
            served = row.get("served_model")
            if served:
                served_any[served] += 1
            if row["status"] == JUDGE_ERROR:
                self.judge_failed += 1
            if row["notes"] and any("judged text-only" in n for n in row["notes"]):
                self.text_only += 1
        self.judgments += len(rows)

    def merge(self, other: RowTally) -> None:
        """Add `other`'s rows as if they came after this tally's."""
        for role, by_spec in other.served.items():
            for spec, counts in by_spec.items():
                self.served[role].setdefault(spec, Counter()).update(counts)
        self.media_seen.update(other.media_seen)
        self.served_any.update(other.served_any)
        self.cost.merge(other.cost)
        self.predictions += other.predictions
        self.generation_failed += other.generation_failed
        self.judgments += other.judgments
        self.judge_failed += other.judge_failed
        self.text_only += other.text_only

    def served_models(self) -> dict[str, dict[str, dict[str, int]]]:
        """{"system"|"judge": {spec: {served snapshot: count}}} for the rows an API model answered."""
        return {role: {spec: dict(counts) for spec, counts in by_spec.items()}
                for role, by_spec in self.served.items() if by_spec}


def served_models(prediction_rows: Iterable[dict[str, Any]],
                  judgment_rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, dict[str, int]]]:
    """RowTally.served_models over whole row lists (`anycapeval merge`)."""
    tally = RowTally()
    tally.serve("system", prediction_rows)
    tally.serve("judge", judgment_rows)
    return tally.served_models()


class OneBarPerStage:
    """A rich Progress for a task run in chunks: `add_task` with a description already shown grows
    that bar instead of adding another, so each stage of a task keeps one bar whatever the chunking;
    an absolute `update(completed=)` counts from where the bar stood when the chunk began. `advance`
    is passed on to rich at most every FLUSH_S seconds (rich redraws 10 times a second; a call into it
    per item was ~2 µs of each item's ~100); `flush` passes on what is left, as every other call does
    first."""

    FLUSH_S = 0.1

    def __init__(self, progress: Any):
        self.progress = progress
        self.bars: dict[str, Any] = {}
        self.base: dict[Any, float] = {}  # bar -> items completed before the current chunk
        self.pending: dict[Any, float] = {}  # bar -> advances not yet passed on
        self.flush_at = 0.0

    def add_task(self, description: str, total: float | None = None, completed: float = 0, **kwargs: Any) -> Any:
        self.flush()
        bar = self.bars.get(description)
        if bar is None:
            bar = self.bars[description] = self.progress.add_task(description, total=total, completed=completed,
                                                                  **kwargs)
            self.base[bar] = 0
            return bar
        task = next(t for t in self.progress.tasks if t.id == bar)
        self.base[bar] = task.completed
        self.progress.update(bar, total=(task.total or 0) + (total or 0), completed=task.completed + completed)
        return bar

    def update(self, task_id: Any, *, completed: float | None = None, **kwargs: Any) -> None:
        self.flush()
        if completed is not None:
            completed += self.base.get(task_id, 0)
        self.progress.update(task_id, completed=completed, **kwargs)

    def advance(self, task_id: Any, advance: float = 1) -> None:
        self.pending[task_id] = self.pending.get(task_id, 0) + advance
        if time.monotonic() >= self.flush_at:
            self.flush()

    def flush(self) -> None:
        for bar, n in self.pending.items():
            self.progress.advance(bar, n)
        self.pending.clear()
        self.flush_at = time.monotonic() + self.FLUSH_S

    def __getattr__(self, name: str) -> Any:  # tasks, console, ... as the Progress itself
        self.flush()
        return getattr(self.progress, name)


@contextmanager
def bulk_gc() -> Iterator[None]:
    """For the run's loop over chunks of a million items: what exists now (the items, the systems,
    the judges) is frozen out of the cyclic collector's scans, and young collections run every
    1,000,000 net allocations instead of every 700. A chunk of CHUNK_ITEMS items holds ~400,000 objects
    at its peak and frees them when it ends, so a cached chunk is never scanned (at 100,000 each chunk
    was scanned ~4 times: ~7 % of a warm run's CPU time); the collector stays on, so cycles made while
    judging are still freed, after at most ~1M new objects (~150 MB). Its settings are restored on the way
    out. Without any of this, the collector's scans of the long-lived items took ~40 % of a 100k-item
    run's CPU time."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(1_000_000, 50, 50)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
