"""Agreement statistics between two judges: raw agreement, Cohen's κ, quadratic-weighted κ, ±1
agreement on grades, and Kendall τ-b between two rankings. Plain numpy, written out as the
textbook formulas; None where a statistic is undefined (e.g. κ when both judges gave one
constant answer: chance agreement is then 1 and κ is 0/0)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _pair(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"two equally long 1-d sequences needed, got shapes {x.shape} and {y.shape}")
    return x, y


def raw_agreement(a: Sequence[float], b: Sequence[float]) -> float | None:
    x, y = _pair(a, b)
    return float((x == y).mean()) if len(x) else None


def within(a: Sequence[float], b: Sequence[float], tolerance: float) -> float | None:
    """Share of pairs whose grades differ by at most `tolerance` (1 for "±1 agreement")."""
    x, y = _pair(a, b)
    return float((np.abs(x - y) <= tolerance + 1e-9).mean()) if len(x) else None


def weighted_kappa(a: Sequence[float], b: Sequence[float], categories: Sequence[float] | None = None,
                   weights: str = "quadratic") -> float | None:
    """Cohen's κ over `categories` (default: the values seen) with disagreement weights: "none" (plain κ,
    every disagreement weighs 1), "linear" |i−j| or "quadratic" (i−j)², on the categories' ranks.
    κ = 1 − Σ w·observed / Σ w·expected, expected from the two judges' marginals."""
    x, y = _pair(a, b)
    if not len(x):
        return None
    cats = sorted(set(categories) if categories is not None else set(x) | set(y))
    index = {c: i for i, c in enumerate(cats)}
    k = len(cats)
    observed = np.zeros((k, k))
    for u, v in zip(x, y):
        observed[index[u], index[v]] += 1
    observed /= observed.sum()
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    i, j = np.indices((k, k))
    w = {"none": (i != j).astype(float), "linear": np.abs(i - j).astype(float),
         "quadratic": ((i - j) ** 2).astype(float)}[weights]
    disagreement_by_chance = float((w * expected).sum())
    if disagreement_by_chance == 0:
        return None
    return 1.0 - float((w * observed).sum()) / disagreement_by_chance


def cohen_kappa(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Unweighted Cohen's κ = (p_o − p_e) / (1 − p_e)."""
    return weighted_kappa(a, b, weights="none")


def kendall_tau_b(a: Sequence[float], b: Sequence[float]) -> float | None:
    """τ-b = (concordant − discordant) / √((n0 − ties in a)(n0 − ties in b)), n0 = n(n−1)/2 pairs."""
    x, y = _pair(a, b)
    n = len(x)
    if n < 2:
        return None
    i, j = np.triu_indices(n, k=1)
    dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    n0 = len(i)
    denominator = np.sqrt((n0 - int((dx == 0).sum())) * (n0 - int((dy == 0).sum())))
    if denominator == 0:
        return None
    return float((dx * dy).sum() / denominator)
