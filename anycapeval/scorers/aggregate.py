"""Turning per-item scores into per-dimension and task-level metrics with bootstrap CIs.

Every metric here is a ratio of sums over a dimension's scored items, Σnum / Σden × scale: KPD is
Σ matched / Σ words × 100 (a ratio of means), a mean score is Σ score / Σ 1. The task level is either
the plain mean of the dimensions' values ("macro") or the same ratio over all items pooled ("micro").
"""

from __future__ import annotations

import warnings
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


def _columns(rows: Sequence[Score], ratios: dict[str, Ratio]) -> list[np.ndarray]:
    cols = []
    for r in ratios.values():
        cols.append(np.array([r.num(s.metrics) for s in rows], dtype=float))
        cols.append(np.array([r.den(s.metrics) for s in rows], dtype=float))
    return cols


def ratio_values(sums: np.ndarray, ratios: dict[str, Ratio]) -> np.ndarray:
    """(…, 2k) sums -> (…, k) ratio values; a zero denominator gives NaN (no value)."""
    num, den = sums[..., 0:2 * len(ratios):2], sums[..., 1:2 * len(ratios):2]
    scale = np.array([r.scale for r in ratios.values()])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1) * scale, np.nan)


def counts(scores: Sequence[Score]) -> dict[str, int]:
    status = [s.status for s in scores]
    return {
        "n": status.count(OK),
        "n_judge_error": status.count(JUDGE_ERROR),
        "n_generation_error": status.count(GENERATION_ERROR),
        "n_skipped": len(status) - status.count(OK) - status.count(JUDGE_ERROR) - status.count(GENERATION_ERROR),
    }


def aggregate(scores: Sequence[Score], dims_order: Sequence[str], ratios: dict[str, Ratio]) -> dict[str, Any]:
    by_dim: dict[str, list[Score]] = {d: [] for d in dims_order}
    for s in scores:
        by_dim.setdefault(s.dimension, []).append(s)
    by_dim = {d: rows for d, rows in by_dim.items() if rows}
    ok_rows = {d: [s for s in rows if s.status == OK] for d, rows in by_dim.items()}

    groups: dict[str, Sequence[np.ndarray]] = {d: _columns(rows, ratios) for d, rows in ok_rows.items()}
    pooled = [s for rows in ok_rows.values() for s in rows]
    groups["__micro__"] = _columns(pooled, ratios)
    reps = bootstrap_groups(groups, lambda sums: ratio_values(sums, ratios))

    dimensions: dict[str, Any] = {}
    point: dict[str, np.ndarray] = {}
    for d in ok_rows:
        sums = np.array([c.sum() for c in groups[d]])
        point[d] = ratio_values(sums, ratios)
        entry: dict[str, Any] = {name: metric(point[d][j], reps[d][:, j]) for j, name in enumerate(ratios)}
        entry.update(counts(by_dim[d]))
        dimensions[d] = entry

    average: dict[str, Any] = {}
    micro_point = ratio_values(np.array([c.sum() for c in groups["__micro__"]]), ratios)
    dim_names = list(ok_rows)
    for j, (name, r) in enumerate(ratios.items()):
        if r.average == "micro":
            average[name] = metric(micro_point[j], reps["__micro__"][:, j])
            continue
        values = np.array([point[d][j] for d in dim_names]) if dim_names else np.array([np.nan])
        rep_matrix = np.stack([reps[d][:, j] for d in dim_names], axis=1) if dim_names else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN replicates: no value, not an error
            value = float(np.nanmean(values)) if np.isfinite(values).any() else None
            rep = np.nanmean(rep_matrix, axis=1) if rep_matrix is not None else None
        average[name] = metric(value, rep)
    average.update(counts(scores))
    average["dimensions_averaged"] = [d for d in dim_names if d in dimensions]
    return {"dimensions": dimensions, "average": average}
