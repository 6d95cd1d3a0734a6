"""Bootstrap confidence intervals for the aggregates the scorers report.

Every aggregate is a function of per-group sums (a ratio of means is sum(a)/sum(b) within a group,
a plain mean is sum(a)/n), so resampling only ever needs per-replicate sums. Groups (dimensions) are
resampled independently, which is the stratified bootstrap the task average calls for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

N_RESAMPLES = 1000
SEED = 20250717
_CHUNK_CELLS = 4_000_000  # resample in chunks so 100k-item tasks stay within a few tens of MB


def resampled_sums(columns: Sequence[np.ndarray], rng: np.random.Generator, n_resamples: int) -> np.ndarray:
    """Sums of each column over `n_resamples` bootstrap resamples of the rows: shape (n_resamples, k)."""
    data = np.column_stack([np.asarray(c, dtype=float) for c in columns])
    n = len(data)
    out = np.empty((n_resamples, data.shape[1]))
    if n == 0:
        out.fill(np.nan)
        return out
    step = max(1, _CHUNK_CELLS // n)
    # Row indices as int32 below 2**31: numpy draws any range under 2**32 as 32-bit values whatever the
    # dtype, so the stream is the same as with int64, made ~4x faster and in half the memory.
    dtype = np.int32 if n < 2**31 else np.int64
    # Reused (no fresh pages per chunk), and float: `counts @ data` casts integer counts to float before the
    # same matrix product anyway, so the sums are the same, without a cast of the whole chunk each time.
    counts = np.empty((min(step, n_resamples), n))
    for start in range(0, n_resamples, step):
        stop = min(n_resamples, start + step)
        # One draw for the whole chunk: the same random stream as one draw per resample, without the loop.
        draws = rng.integers(0, n, (stop - start, n), dtype=dtype)
        for row in range(stop - start):  # per resample: counts of n cells, not one of (stop - start) * n
            counts[row] = np.bincount(draws[row], minlength=n)
        np.matmul(counts[:stop - start], data, out=out[start:stop])
    return out


def ci(replicates: np.ndarray, level: float = 0.95) -> list[float | None]:
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return [None, None]
    tail = (1 - level) / 2 * 100
    return [float(np.percentile(finite, tail)), float(np.percentile(finite, 100 - tail))]


def bootstrap_groups(
    groups: Mapping[str, Sequence[np.ndarray]],
    statistic: Callable[[np.ndarray], np.ndarray],
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> dict[str, np.ndarray]:
    """For each group, `statistic(sums)` over bootstrap replicates, where `sums` has shape
    (n_resamples, k): the resampled sums of the group's k columns."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, columns in groups.items():
        sums = resampled_sums(columns, rng, n_resamples)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[name] = statistic(sums)
    return out


def metric(value: float | None, replicates: np.ndarray | None) -> dict[str, object]:
    value = None if value is None or not np.isfinite(value) else float(value)
    return {"value": value, "ci": ci(replicates) if replicates is not None and value is not None else [None, None]}
