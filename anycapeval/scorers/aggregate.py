"""Turning per-item scores into per-dimension and task-level metrics with bootstrap CIs.

Every metric here is a ratio of sums over a dimension's scored items, Σnum / Σden × scale: KPD is
Σ matched / Σ words × 100 (a ratio of means), a mean score is Σ score / Σ 1. The task level is either
the plain mean of the dimensions' values ("macro") or the same ratio over all items pooled ("micro").
"""

from __future__ import annotations

import warnings
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..stats import bootstrap_groups, metric
from ..types import GENERATION_ERROR, JUDGE_ERROR, OK, Score


@dataclass(frozen=True)
class Ratio:
    num: Callable[[dict[str, Any]], float]
    den: Callable[[dict[str, Any]], float]
    scale: float = 1.0
    average: str = "macro"  # "macro": mean of dimension values; "micro": pooled over all items


STATUS_CODES = {OK: 0, JUDGE_ERROR: 1, GENERATION_ERROR: 2}  # anything else (skipped): 3
_NAN = float("nan")


class RatioColumns:
    """What `aggregate` reads of a task's scores, kept compactly as they are produced: each score's
    dimension and status, and each scored item's num/den per ratio (8 bytes a number), so a task of
    a million items aggregates from arrays instead of a million Score objects."""

    def __init__(self, ratios: dict[str, Ratio]):
        self.ratios = ratios
        self.dims: dict[str, int] = {}  # dimension -> code, in the order first seen
        self.dim_codes = array("i")
        self.status_codes = array("b")
        self.values = [array("d") for _ in range(2 * len(ratios))]  # scored (OK) items only, in order
        fns = [f for r in ratios.values() for f in (r.num, r.den)]
        self._appends = [(column.append, fn) for column, fn in zip(self.values, fns)]

    def add(self, score: Score) -> None:
        code = self.dims.setdefault(score.dimension, len(self.dims))
        self.dim_codes.append(code)
        status = STATUS_CODES.get(score.status, 3)
        self.status_codes.append(status)
        if status == 0:
            metrics = score.metrics
            for append, fn in self._appends:
                value = fn(metrics)
                append(_NAN if value is None else value)

    def __len__(self) -> int:
        return len(self.status_codes)


def _counts(status: np.ndarray) -> dict[str, int]:
    n, judge, generation = (int(np.count_nonzero(status == c)) for c in range(3))
    return {"n": n, "n_judge_error": judge, "n_generation_error": generation,
            "n_skipped": len(status) - n - judge - generation}


def ratio_values(sums: np.ndarray, ratios: dict[str, Ratio]) -> np.ndarray:
    """(…, 2k) sums -> (…, k) ratio values; a zero denominator gives NaN (no value)."""
    num, den = sums[..., 0:2 * len(ratios):2], sums[..., 1:2 * len(ratios):2]
    scale = np.array([r.scale for r in ratios.values()])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1) * scale, np.nan)


def counts(scores: Sequence[Score]) -> dict[str, int]:
    return _counts(np.array([STATUS_CODES.get(s.status, 3) for s in scores], dtype=np.int8))


def aggregate_columns(columns: RatioColumns, dims_order: Sequence[str]) -> dict[str, Any]:
    """Per-dimension and task metrics with bootstrap CIs. Dimensions come in `dims_order`, then any
    other in the order first seen; each dimension's scored items in item order, pooled dimension by
    dimension for the micro average (the layout the bootstrap's seeded stream was fixed on)."""
    ratios = columns.ratios
    status = np.frombuffer(columns.status_codes, dtype=np.int8) if len(columns) else np.zeros(0, np.int8)
    dim_codes = np.frombuffer(columns.dim_codes, dtype=np.int32) if len(columns) else np.zeros(0, np.int32)
    ok = status == 0
    ok_dims = dim_codes[ok]
    cols = [np.frombuffer(v, dtype=float) if len(v) else np.zeros(0) for v in columns.values]
    order = [d for d in dict.fromkeys(dims_order) if d in columns.dims]
    order += [d for d in columns.dims if d not in order]
    status_by_dim = {d: status[dim_codes == columns.dims[d]] for d in order}
    groups: dict[str, Sequence[np.ndarray]] = {}
    for d in order:
        rows = ok_dims == columns.dims[d]
        groups[d] = [c[rows] for c in cols]
    if any(r.average == "micro" for r in ratios.values()):  # last, so the dimensions' draws are the same without it
        groups["__micro__"] = [np.concatenate([groups[d][j] for d in order]) if order else np.zeros(0)
                               for j in range(len(cols))]
    reps = bootstrap_groups(groups, lambda sums: ratio_values(sums, ratios))

    dimensions: dict[str, Any] = {}
    point: dict[str, np.ndarray] = {}
    for d in order:
        sums = np.array([c.sum() for c in groups[d]])
        point[d] = ratio_values(sums, ratios)
        entry: dict[str, Any] = {name: metric(point[d][j], reps[d][:, j]) for j, name in enumerate(ratios)}
        entry.update(_counts(status_by_dim[d]))
        dimensions[d] = entry

    average: dict[str, Any] = {}
    dim_names = order
    for j, (name, r) in enumerate(ratios.items()):
        if r.average == "micro":
            micro_point = ratio_values(np.array([c.sum() for c in groups["__micro__"]]), ratios)
            average[name] = metric(micro_point[j], reps["__micro__"][:, j])
            continue
        values = np.array([point[d][j] for d in dim_names]) if dim_names else np.array([np.nan])
        rep_matrix = np.stack([reps[d][:, j] for d in dim_names], axis=1) if dim_names else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN replicates: no value, not an error
            value = float(np.nanmean(values)) if np.isfinite(values).any() else None
            rep = np.nanmean(rep_matrix, axis=1) if rep_matrix is not None else None
        average[name] = metric(value, rep)
    average.update(_counts(status))
    average["dimensions_averaged"] = [d for d in dim_names if d in dimensions]
    return {"dimensions": dimensions, "average": average}
