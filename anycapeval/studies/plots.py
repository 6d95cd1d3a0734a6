"""PNG plots for the studies (matplotlib, Agg backend, imported only when a plot is drawn)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_rated(values: dict[str, list[float]], human: Sequence[float], target: str, output: Path) -> list[Path]:
    """One scatter panel per metric: metric score (x) against the human score (y), with jitter on y
    because human scores are coarse."""
    plt = _pyplot()
    names = list(values)
    cols = min(3, len(names))
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
    rng = np.random.default_rng(0)
    h = np.asarray(human, float)
    for ax, name in zip(axes.flat, names):
        x = np.asarray(values[name], float)
        ok = np.isfinite(x)
        ax.scatter(x[ok], h[ok] + rng.uniform(-0.08, 0.08, ok.sum()), s=6, alpha=0.35)
        ax.set_xlabel(name)
        ax.set_ylabel(target)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    return [_save(plt, fig, output / "scatter.png")]


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_pairs(results: dict[str, Any], output: Path) -> list[Path]:
    """Grouped bars: pairwise accuracy per facet for each metric."""
    plt = _pyplot()
    facets = ["HC", "HI", "HM", "MM", "total"]
    names = list(results)
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(8, 4))
    for i, name in enumerate(names):
        acc = results[name]["pairwise_accuracy"]
        ax.bar(np.arange(len(facets)) + i * width, [acc.get(f, np.nan) for f in facets], width, label=name)
    ax.set_xticks(np.arange(len(facets)) + width * (len(names) - 1) / 2, facets)
    ax.set_ylim(40, 100)
    ax.set_ylabel("pairwise accuracy (%)")
    ax.legend(fontsize=7, ncol=2)
    return [_save(plt, fig, output / "pairwise_accuracy.png")]


def plot_kpd(words: Sequence[float], recall: Sequence[float], kpd: Sequence[float], output: Path) -> list[Path]:
    """Key-point recall and per-item KPD against caption length (paper Fig. 3b's question)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, y, label in ((axes[0], recall, "key-point recall"), (axes[1], kpd, "KPD (100 × matched / words)")):
        ax.scatter(words, y, s=8, alpha=0.4)
        ax.set_xlabel("caption length (words)")
        ax.set_ylabel(label)
    return [_save(plt, fig, output / "kpd_vs_length.png")]
