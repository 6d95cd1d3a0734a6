"""Correlation statistics with bootstrap confidence intervals, vectorised over resamples.

A bootstrap resample is a vector of multiplicities w (how often each row was drawn), so every
statistic is written as a function of (x, y, w): Pearson as a weighted Pearson; Spearman as the
weighted Pearson of the average ranks the resample would have (duplicated rows become ties); Kendall
from P − Q = ½ Σᵢⱼ wᵢ wⱼ sign(xᵢ−xⱼ) sign(yᵢ−yⱼ) and the tie counts of the resample. With w = 1 they are
the ordinary statistics (the tests check them against scipy, including on expanded resamples), and
1000 resamples cost a few matrix products instead of 1000 calls. τ-c follows Stuart: 2(P−Q) /
(N² (m−1)/m), m = the smaller number of distinct values; τ-b: (P−Q) / √((n₀−n₁)(n₀−n₂)).

Rows can be resampled in clusters (e.g. all captions of one THumB image together), which respects
that captions of the same image are not independent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..stats import N_RESAMPLES, SEED, ci

STATISTICS = ("pearson", "spearman", "kendall_tau_b", "kendall_tau_c")
_BLOCK = 1024  # rows of the sign matrix built at a time (memory: _BLOCK × n floats)


def _as_weights(w: np.ndarray | None, n: int) -> np.ndarray:
    return np.ones((1, n)) if w is None else np.atleast_2d(np.asarray(w, dtype=float))


def _weighted_pearson(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x, y: (n,) or (B, n); w: (B, n)."""
    total = w.sum(1)
    mx, my = (w * x).sum(1) / total, (w * y).sum(1) / total
    dx, dy = x - mx[:, None], y - my[:, None]
    cov, vx, vy = (w * dx * dy).sum(1), (w * dx * dx).sum(1), (w * dy * dy).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(cov / np.sqrt(vx * vy))


def _group_weights(values: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(inverse index of each row's distinct value, (B, k) total weight of each distinct value)."""
    _, inverse = np.unique(values, return_inverse=True)
    k = int(inverse.max()) + 1
    grouped = np.zeros((w.shape[0], k))
    np.add.at(grouped.T, inverse, w.T)
    return inverse, grouped


def _ranks(values: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Average ranks (1-based) of every row in each weighted resample: (B, n)."""
    inverse, grouped = _group_weights(values, w)
    below = np.cumsum(grouped, axis=1) - grouped
    return (below + (grouped + 1) / 2)[:, inverse]


def pearson(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    return _weighted_pearson(np.asarray(x, float), np.asarray(y, float), _as_weights(w, len(x)))


def spearman(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    weights = _as_weights(w, len(x))
    return _weighted_pearson(_ranks(np.asarray(x), weights), _ranks(np.asarray(y), weights), weights)


def _kendall_parts(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
    """(P − Q, total weight N, x-tied pairs, y-tied pairs, distinct x, distinct y) per resample."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ws = np.zeros_like(w)
    for start in range(0, len(x), _BLOCK):
        stop = min(start + _BLOCK, len(x))
        block = np.sign(x[start:stop, None] - x[None, :]) * np.sign(y[start:stop, None] - y[None, :])
        ws[:, start:stop] = w @ block.T
    p_minus_q = 0.5 * (ws * w).sum(1)
    total = w.sum(1)
    _, gx = _group_weights(x, w)
    _, gy = _group_weights(y, w)
    return (p_minus_q, total, (gx * (gx - 1) / 2).sum(1), (gy * (gy - 1) / 2).sum(1),
            (gx > 0).sum(1), (gy > 0).sum(1))


def kendall_tau_b(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    pq, total, tx, ty, _, _ = _kendall_parts(x, y, _as_weights(w, len(x)))
    pairs = total * (total - 1) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(pq / np.sqrt((pairs - tx) * (pairs - ty)))


def kendall_tau_c(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    pq, total, _, _, dx, dy = _kendall_parts(x, y, _as_weights(w, len(x)))
    m = np.minimum(dx, dy).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(2 * pq / (total ** 2 * (m - 1) / m))


FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {
    "pearson": pearson, "spearman": spearman, "kendall_tau_b": kendall_tau_b, "kendall_tau_c": kendall_tau_c}


def resample_weights(n: int, clusters: Sequence[object] | None = None, n_resamples: int = N_RESAMPLES,
                     seed: int = SEED) -> np.ndarray:
    """(n_resamples, n) multiplicities of a bootstrap over rows, or over clusters of rows."""
    rng = np.random.default_rng(seed)
    if clusters is None:
        return np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(n_resamples)]).astype(float)
    _, index = np.unique(np.asarray([str(c) for c in clusters]), return_inverse=True)
    k = int(index.max()) + 1
    drawn = np.stack([np.bincount(rng.integers(0, k, k), minlength=k) for _ in range(n_resamples)])
    return drawn[:, index].astype(float)


def correlations(x: Sequence[float], y: Sequence[float], clusters: Sequence[object] | None = None,
                 n_resamples: int = N_RESAMPLES, seed: int = SEED,
                 statistics: Sequence[str] = STATISTICS) -> dict[str, dict[str, object]]:
    """Each statistic's value and bootstrap 95 % percentile interval: {name: {"value", "ci", "n"}}."""
    xa, ya = np.asarray(x, float), np.asarray(y, float)
    if xa.shape != ya.shape:
        raise ValueError(f"{len(xa)} metric values but {len(ya)} human values")
    keep = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[keep], ya[keep]
    cl = None if clusters is None else [c for c, k in zip(clusters, keep) if k]
    out: dict[str, dict[str, object]] = {}
    if len(xa) < 3:
        return {name: {"value": None, "ci": [None, None], "n": int(len(xa))} for name in statistics}
    weights = resample_weights(len(xa), cl, n_resamples, seed)
    for name in statistics:
        value = float(FUNCTIONS[name](xa, ya)[0])
        replicates = FUNCTIONS[name](xa, ya, weights)
        out[name] = {"value": value if np.isfinite(value) else None,
                     "ci": ci(replicates) if np.isfinite(value) else [None, None], "n": int(len(xa))}
    return out


def pairwise_accuracy(score_1: Sequence[float], score_2: Sequence[float], vote_sum: Sequence[float],
                      facets: Sequence[str]) -> dict[str, dict[str, float | int]]:
    """FENSE protocol: a pair counts when sign(metric(c1) − metric(c2)) equals the sign of the vote sum;
    pairs with a zero vote sum (ties) are left out; a metric tie counts as wrong. Per facet and total."""
    out: dict[str, dict[str, float | int]] = {}
    groups: dict[str, list[bool]] = {}
    metric_ties: dict[str, int] = {}
    for s1, s2, votes, facet in zip(score_1, score_2, vote_sum, facets):
        if votes == 0:
            continue
        if not (np.isfinite(s1) and np.isfinite(s2)):
            continue
        correct = bool(np.sign(s1 - s2) == np.sign(votes))
        for key in (facet, "total"):
            groups.setdefault(key, []).append(correct)
            metric_ties[key] = metric_ties.get(key, 0) + int(s1 == s2)
    for key, hits in groups.items():
        out[key] = {"accuracy": 100.0 * sum(hits) / len(hits), "n": len(hits), "metric_ties": metric_ties[key]}
    return out
