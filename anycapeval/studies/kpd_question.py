"""The KPD question (paper Fig. 3b): does Key-Point Density track how informative a caption is better
than the raw count of matched key points or the caption length?

From any AnyCapEval content run directory (`scores.jsonl`: metrics `matched`, `matched_after_penalty`,
`key_points`, `words`) it relates key-point recall and per-item KPD (100 × matched after penalty /
words) to caption length. Given a CSV of per-item human counts of information, it correlates the raw
matched count, the length and the per-item KPD with those counts (the paper reports r = 0.284 for the
raw count and r = 0.521 for length).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from ..files import read_jsonl
from ..stats import N_RESAMPLES
from ..store import write_atomic, write_json_atomic
from ..types import OK, AnyCapError, InputError
from .stats import correlations


def read_scores(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "scores.jsonl"
    if not path.is_file():
        raise AnyCapError(f"{run_dir}: no scores.jsonl (pass a run directory of `anycapeval run`)")
    rows = []
    for _, row in read_jsonl(path):
        m = row.get("metrics") or {}
        if row.get("status") != OK or "matched" not in m:
            continue  # style items, failures and skips say nothing about key points
        words = m.get("words") or 0
        rows.append({"task": row.get("task", ""), "item_id": str(row.get("item_id")), "matched": m["matched"],
                     "matched_after_penalty": m["matched_after_penalty"], "key_points": m["key_points"],
                     "words": words, "recall": m["matched_after_penalty"] / m["key_points"] if m["key_points"] else
                     float("nan"), "kpd": 100.0 * m["matched_after_penalty"] / words if words else float("nan")})
    if not rows:
        raise AnyCapError(f"{path}: no scored content items (KPD needs a content task's run)")
    return rows


def read_counts(path: Path, id_column: str, count_column: str, task_column: str | None) -> dict[tuple[str, str], float]:
    try:
        fh = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise AnyCapError(f"cannot read {path}: {exc.strerror}") from None
    out: dict[tuple[str, str], float] = {}
    with fh:
        reader = csv.DictReader(fh)
        for col in filter(None, (id_column, count_column, task_column)):
            if col not in (reader.fieldnames or []):
                raise InputError(f"{path}:1", col, f"no such column (columns: {', '.join(reader.fieldnames or [])})")
        for lineno, row in enumerate(reader, 2):
            try:
                value = float(row[count_column])
            except ValueError:
                raise InputError(f"{path}:{lineno}", count_column, f"not a number: {row[count_column]!r}") from None
            out[(row[task_column] if task_column else "", row[id_column])] = value
    return out


def run_kpd_study(run_dir: Path, output: Path, counts: Path | None = None, id_column: str = "id",
                  count_column: str = "human_count", task_column: str | None = None,
                  n_resamples: int = N_RESAMPLES) -> dict[str, Any]:
    from .plots import plot_kpd

    rows = read_scores(run_dir)
    words = [r["words"] for r in rows]
    result: dict[str, Any] = {"run": str(run_dir), "n_items": len(rows),
                              "recall_vs_length": correlations([r["recall"] for r in rows], words,
                                                               n_resamples=n_resamples),
                              "kpd_vs_length": correlations([r["kpd"] for r in rows], words, n_resamples=n_resamples)}
    if counts is not None:
        human = read_counts(counts, id_column, count_column, task_column)
        joined = [(r, human[(r["task"] if task_column else "", r["item_id"])]) for r in rows
                  if (r["task"] if task_column else "", r["item_id"]) in human]
        if len(joined) < 3:
            raise AnyCapError(f"{counts}: only {len(joined)} of its ids match scored items of {run_dir}")
        h = [c for _, c in joined]
        result["human_counts"] = {"file": str(counts), "n_matched_items": len(joined), **{
            name: correlations([r[key] for r, _ in joined], h, n_resamples=n_resamples)
            for name, key in (("raw_matched", "matched"), ("length", "words"), ("kpd", "kpd"))}}
    plot_kpd(words, [r["recall"] for r in rows], [r["kpd"] for r in rows], output)
    write_json_atomic(output / "kpd_study.json", result)
    lines = ["# The KPD question", "", f"run `{run_dir}`, {len(rows)} scored content items", "",
             "| relation | Pearson | Spearman |", "|---|---:|---:|"]
    pairs = [("key-point recall vs length", result["recall_vs_length"]), ("KPD vs length", result["kpd_vs_length"])]
    if "human_counts" in result:
        pairs += [(f"{name} vs human count", result["human_counts"][name]) for name in ("raw_matched", "length", "kpd")]
    for label, stats in pairs:
        cells = [f"{stats[s]['value']:.3f}" if stats[s]["value"] is not None else "–" for s in ("pearson", "spearman")]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "Paper (Fig. 3b): raw key-point count r = 0.284, length r = 0.521 with human information counts."]
    write_atomic(output / "kpd_study.md", "\n".join(lines) + "\n")
    return result
