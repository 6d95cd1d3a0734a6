"""`anycapeval correlate`: how well metrics agree with human judgments.

Rated captions (THumB, CSV): sample-level Pearson, Spearman, Kendall τ-b and τ-c of metric vs human
score, each with a bootstrap 95 % interval (resampling groups — THumB images — when the file has
them), plus the system-level correlation of per-system means when there are three systems or more.
Pairwise votes (FENSE): the share of non-tied pairs whose order the metric gets right, per facet and
in total. Output: `correlation.json`, `correlation.md` and PNG plots in the output folder.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..stats import N_RESAMPLES
from ..store import write_atomic, write_json_atomic
from .human import Pair, Rated, parse_columns, read_csv, read_fense, read_thumb
from .metrics import NGRAM, JudgeConfig, score
from .stats import correlations, kendall_tau_b, pearson, spearman

STAT_LABELS = {"pearson": "Pearson", "spearman": "Spearman", "kendall_tau_b": "Kendall τ-b",
               "kendall_tau_c": "Kendall τ-c"}


def read_human(path: Path, fmt: str, columns: str | None, target: str) -> list[Rated] | list[Pair]:
    if fmt == "thumb":
        return read_thumb(path, target)
    if fmt == "fense":
        return read_fense(path)
    return read_csv(path, parse_columns(columns))


def system_level(rows: Sequence[Rated], values: Sequence[float]) -> dict[str, Any] | None:
    """Correlation of per-system mean metric with per-system mean human score (None: < 3 systems)."""
    systems = sorted({r.system for r in rows if r.system})
    if len(systems) < 3:
        return None
    metric, human = [], []
    for name in systems:
        pick = [(v, r.human) for v, r in zip(values, rows) if r.system == name and np.isfinite(v)]
        metric.append(float(np.mean([p[0] for p in pick])))
        human.append(float(np.mean([p[1] for p in pick])))
    m, h = np.asarray(metric), np.asarray(human)
    return {"n_systems": len(systems), "pearson": float(pearson(m, h)[0]), "spearman": float(spearman(m, h)[0]),
            "kendall_tau_b": float(kendall_tau_b(m, h)[0]),
            "systems": {s: {"metric": a, "human": b} for s, a, b in zip(systems, metric, human)}}


def study_rated(rows: Sequence[Rated], metrics: Sequence[str], judge: JudgeConfig | None,
                n_resamples: int) -> tuple[dict[str, Any], dict[str, list[float]]]:
    human = [r.human for r in rows]
    clusters = [r.group for r in rows] if all(r.group for r in rows) else None
    results: dict[str, Any] = {}
    values: dict[str, list[float]] = {}
    for metric in metrics:
        start = time.perf_counter()
        scores, failed = score(metric, [r.candidate for r in rows], [r.references for r in rows], judge)
        values[metric] = scores
        results[metric] = {**correlations(scores, human, clusters, n_resamples), "n_judge_error": failed,
                           "system_level": system_level(rows, scores), "seconds": time.perf_counter() - start}
    return results, values


def study_pairs(pairs: Sequence[Pair], metrics: Sequence[str], judge: JudgeConfig | None) -> dict[str, Any]:
    from .stats import pairwise_accuracy

    results: dict[str, Any] = {}
    for metric in metrics:
        start = time.perf_counter()
        loo = metric in NGRAM  # FENSE protocol: MM n-gram scores average the five leave-one-out sets
        units: dict[tuple[str, tuple[str, ...]], int] = {}
        plan: list[tuple[list[int], list[int]]] = []
        for p in pairs:
            sides = []
            for which, caption in ((1, p.caption_1), (2, p.caption_2)):
                sides.append([units.setdefault((caption, refs), len(units)) for refs in p.reference_sets(which, loo)])
            plan.append((sides[0], sides[1]))
        keys = list(units)
        scores, failed = score(metric, [k[0] for k in keys], [k[1] for k in keys], judge)
        arr = np.asarray(scores, float)
        s1 = [float(arr[a].mean()) for a, _ in plan]
        s2 = [float(arr[b].mean()) for _, b in plan]
        accuracy = pairwise_accuracy(s1, s2, [p.vote_sum for p in pairs], [p.facet for p in pairs])
        results[metric] = {"pairwise_accuracy": {k: round(v["accuracy"], 2) for k, v in accuracy.items()},
                           "pairs_scored": {k: v["n"] for k, v in accuracy.items()},
                           "metric_ties": {k: v["metric_ties"] for k, v in accuracy.items()},
                           "n_judge_error": failed, "seconds": time.perf_counter() - start}
    return results


def markdown(study: dict[str, Any], results: dict[str, Any]) -> str:
    lines = [f"# Metric agreement with human judgments: `{Path(study['human_file']).name}`", "",
             f"format `{study['format']}`, {study['n']} {study['unit']}; {study['note']}", ""]
    if study["kind"] == "rated":
        cols = list(STAT_LABELS)
        lines += ["| metric | " + " | ".join(STAT_LABELS[c] + " [95 % CI]" for c in cols) + " | system-level τ-b |",
                  "|---|" + "---:|" * (len(cols) + 1)]
        for metric, r in results.items():
            cells = []
            for c in cols:
                v = r[c]
                cells.append("–" if v["value"] is None else
                             f"{v['value']:.3f} [{v['ci'][0]:.3f}, {v['ci'][1]:.3f}]")
            sl = r["system_level"]
            cells.append("–" if sl is None else f"{sl['kendall_tau_b']:.2f} ({sl['n_systems']} systems)")
            lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    else:
        facets = ["HC", "HI", "HM", "MM", "total"]
        lines += ["| metric | " + " | ".join(facets) + " |", "|---|" + "---:|" * len(facets)]
        for metric, r in results.items():
            acc = r["pairwise_accuracy"]
            lines.append(f"| {metric} | " + " | ".join(f"{acc[f]:.1f}" if f in acc else "–" for f in facets) + " |")
        lines += ["", "Pairwise accuracy (%) over pairs with a non-zero vote sum; a metric tie counts as wrong."]
    return "\n".join(lines) + "\n"


def run_correlate(human_path: Path, fmt: str, metrics: Sequence[str], output: Path, *, columns: str | None = None,
                  target: str = "human_score", judge: JudgeConfig | None = None,
                  n_resamples: int = N_RESAMPLES) -> dict[str, Any]:
    from .plots import plot_pairs, plot_rated

    data = read_human(human_path, fmt, columns, target)
    study: dict[str, Any] = {"human_file": str(human_path), "format": fmt, "n": len(data),
                             "judge": judge.spec if judge else None, "metrics": list(metrics)}
    if data and isinstance(data[0], Rated):
        rows = [r for r in data if isinstance(r, Rated)]
        results, values = study_rated(rows, metrics, judge, n_resamples)
        resampled = "groups (images)" if all(r.group for r in rows) else "rows"
        study.update(kind="rated", unit="rated captions", target=target, n_resamples=n_resamples,
                     note=f"sample-level correlation with `{target}`; bootstrap over {resampled}, "
                     f"{n_resamples} resamples, percentile 95 % intervals")
        plots = plot_rated(values, [r.human for r in rows], target, output)
    else:
        pairs = [p for p in data if isinstance(p, Pair)]
        results = study_pairs(pairs, metrics, judge)
        study.update(kind="pairs", unit="judged pairs", n_tied=sum(p.vote_sum == 0 for p in pairs),
                     note="FENSE protocol (ties excluded; HC leave-self-out references, HI/HM references minus "
                     "caption 1, MM all references, n-gram metrics averaged over the leave-one-out sets)")
        plots = plot_pairs(results, output)
    study["plots"] = [p.name for p in plots]
    write_json_atomic(output / "correlation.json", {"study": study, **results})
    write_atomic(output / "correlation.md", markdown(study, results))
    return {"study": study, **results}
