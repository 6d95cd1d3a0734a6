"""Paired bootstrap of a refined system against its base, over the items both scored.

The two runs' items are resampled together (the same item ids in both replicates), independently
within each dimension (stratified), and every metric is recomputed from the scorer's own `Ratio`
definitions with the same arithmetic as the summary: per dimension Σnum/Σden × scale, task level the
mean of the dimensions ("macro") or the pooled ratio ("micro"). The resample count and seed are those
of `anycapeval.stats`, so a leaderboard is reproducible.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..scorers import SCORERS, get_scorer
from ..scorers.aggregate import Ratio, ratio_values
from ..stats import N_RESAMPLES, SEED, bootstrap_groups, ci
from ..types import OK

AVG = "Avg"
MIN_SHARED = 2  # items both runs scored, per cell, for a test


@dataclass(frozen=True)
class Paired:
    """Refined minus base on the shared items, for one (column, metric)."""

    delta: float | None
    ci: tuple[float | None, float | None]
    p_value: float | None
    n_shared: int

    @property
    def significant(self) -> bool:
        low, high = self.ci
        return low is not None and high is not None and (low > 0 or high < 0)


def ratios_for(task: dict[str, Any]) -> dict[str, Ratio]:
    """The scorer's ratios for a summary task entry; empty for scorers this install does not know or
    whose metrics are not ratios of per-item sums (then no paired test is made)."""
    if task["scorer"] not in SCORERS:
        return {}
    return get_scorer(task["scorer"], task.get("protocol", "default"), task.get("modality", "")).ratios()


def _p_value(replicates: np.ndarray) -> float | None:
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return None
    return float(min(1.0, 2 * min((finite <= 0).mean(), (finite >= 0).mean())))


def paired_bootstrap(refined: list[dict[str, Any]], base: list[dict[str, Any]], ratios: dict[str, Ratio],
                     n_resamples: int = N_RESAMPLES, seed: int = SEED) -> dict[tuple[str, str], Paired]:
    """{(column, metric): Paired} where column is a dimension name or "Avg" (the task level)."""
    if not ratios:
        return {}
    base_ok = {(r["dimension"], str(r["item_id"])): r["metrics"] for r in base if r["status"] == OK}
    by_dim: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for row in refined:
        key = (row["dimension"], str(row["item_id"]))
        if row["status"] == OK and key in base_ok:
            by_dim.setdefault(row["dimension"], []).append((row["metrics"], base_ok[key]))
    if not by_dim:
        return {}
    k = len(ratios)
    groups: dict[str, list[np.ndarray]] = {}
    for dim, pairs in by_dim.items():
        cols = []
        for side in (0, 1):  # refined columns first, then base: the same rows, so the same resample
            for r in ratios.values():
                cols.append(np.array([r.num(p[side]) for p in pairs], dtype=float))
                cols.append(np.array([r.den(p[side]) for p in pairs], dtype=float))
        groups[dim] = cols
    sums = bootstrap_groups(groups, lambda s: s, n_resamples, seed)
    points = {d: np.array([c.sum() for c in cols]) for d, cols in groups.items()}

    def values(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return ratio_values(s[..., :2 * k], ratios), ratio_values(s[..., 2 * k:], ratios)

    out: dict[tuple[str, str], Paired] = {}
    per_dim_point, per_dim_reps = {}, {}
    for dim in groups:
        (pr, pb), (rr, rb) = values(points[dim]), values(sums[dim])
        per_dim_point[dim], per_dim_reps[dim] = (pr, pb), (rr, rb)
        for j, name in enumerate(ratios):
            out[(dim, name)] = _paired(pr[j] - pb[j], rr[:, j] - rb[:, j], len(by_dim[dim]))
    n_all = sum(len(p) for p in by_dim.values())
    dims = list(groups)
    pooled_point = values(np.sum([points[d] for d in dims], axis=0))
    pooled_reps = values(np.sum([sums[d] for d in dims], axis=0))
    for j, (name, r) in enumerate(ratios.items()):
        if r.average == "micro":
            out[(AVG, name)] = _paired(pooled_point[0][j] - pooled_point[1][j],
                                       pooled_reps[0][:, j] - pooled_reps[1][:, j], n_all)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a dimension without a value is left out
            point = [np.nanmean([per_dim_point[d][side][j] for d in dims]) for side in (0, 1)]
            reps = [np.nanmean(np.stack([per_dim_reps[d][side][:, j] for d in dims], axis=1), axis=1)
                    for side in (0, 1)]
        out[(AVG, name)] = _paired(point[0] - point[1], reps[0] - reps[1], n_all)
    return out


def _paired(delta: float, replicates: np.ndarray, n: int) -> Paired:
    value = float(delta) if np.isfinite(delta) else None
    if n < MIN_SHARED:  # one item resamples to itself: a zero-width CI that would claim significance
        return Paired(value, (None, None), None, n)
    low, high = ci(replicates)
    return Paired(value, (low, high), _p_value(replicates), n)
