"""Human-readable views of summary.json: markdown (summary.md) and rich tables (the terminal)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

METRICS = {  # key: (markdown label, terminal label, digits)
    "kpd": ("KPD", "KPD", 2), "keypoint_recall": ("key-point recall", "recall", 3),
    "style_score": ("style score (0-4)", "style", 2), "judge_score_uncapped": ("judge score before caps", "raw", 2),
    "length_compliance": ("length compliance", "len ok", 3),
}
COUNTS = ("n", "n_judge_error", "n_generation_error", "n_skipped")


def _cell(entry: dict[str, Any] | None, digits: int) -> str:
    if not entry or entry.get("value") is None:
        return "–"
    text = f"{entry['value']:.{digits}f}"
    low, high = entry.get("ci", [None, None])
    if low is not None:
        text += f" ({low:.{digits}f}–{high:.{digits}f})"
    return text


def _rows(task: dict[str, Any], terse: bool = False) -> tuple[list[str], list[list[str]]]:
    """One row per dimension plus Avg; columns: counts, then each metric with its 95 % CI."""
    metrics = [k for k in METRICS if k in task["average"]]
    metrics += [k for k, v in task["average"].items() if k not in METRICS and isinstance(v, dict) and "value" in v]
    labels = [str(METRICS.get(k, (k, k))[1 if terse else 0]) for k in metrics]
    counts = ["err j/g/s"] if terse else ["judge err", "gen err", "skipped"]
    rows = []
    for name, entry in [*task["dimensions"].items(), ("Avg", task["average"])]:
        errs = [str(entry[c]) for c in COUNTS[1:]]
        rows.append([name, str(entry["n"]), *(["/".join(errs)] if terse else errs),
                     *(_cell(entry.get(k), int(METRICS.get(k, (k, k, 3))[2])) for k in metrics)])
    return ["dim", "n", *counts, *labels], rows


def _banner(summary: dict[str, Any]) -> str:
    approx = [t["judge"] for t in summary["tasks"].values() if t.get("judge_is_approximation")]
    if approx:
        return (f"Judge {approx[0]} is the OFFLINE APPROXIMATION (sentence similarity), not the benchmark's "
                "LLM judge: use these numbers for smoke tests and relative checks, not for papers.")
    return ""


def served_lines(summary: dict[str, Any]) -> list[str]:
    """`judge openai:gpt-4o-mini → gpt-4o-mini-2024-07-18 × 340`: what actually answered, per spec."""
    return [f"{role} {spec} → " + ", ".join(f"{model} × {n}" for model, n in snapshots.items())
            for role, by_spec in summary.get("served_models", {}).items() for spec, snapshots in by_spec.items()]


def cost_lines(cost: dict[str, Any] | None) -> list[str]:
    """`judge openai:gpt-4o-mini: 16 requests, 5,210 prompt (0 cached) + 410 completion (0 reasoning) tokens,
    $0.0010`: the tokens each API model reported and their price (`no price` for an unknown model)."""
    if not cost:
        return []
    lines = []
    for group, label in (("systems", "system"), ("judges", "judge")):
        for spec, e in cost.get(group, {}).items():
            price = "no price" if e.get("usd") is None else f"${e['usd']:,.4f}"
            lines.append(f"{label} {spec}: {e['requests']} requests, {e['prompt_tokens']:,} prompt "
                         f"({e['cached_tokens']:,} cached) + {e['completion_tokens']:,} completion "
                         f"({e['reasoning_tokens']:,} reasoning) tokens, {price}")
    return lines


def cost_note(cost: dict[str, Any]) -> str:
    prices = cost.get("prices", {})
    return (f"priced with {prices.get('file', 'references/prices.json')} (read {prices.get('date', '?')}); "
            "cached prompt tokens at the cached-input rate")


def summary_markdown(summary: dict[str, Any]) -> str:
    lines = [f"# anycapeval results: {summary['system']}", ""]
    banner = _banner(summary)
    if banner:
        lines += [f"> **{banner}**", ""]
    errors = summary.get("judge_errors", {})
    lines += [f"Protocol `{summary['protocol']}`. Judge errors: {errors.get('n', 0)} of {errors.get('of', 0)} "
              "(excluded from every score). Values with 95 % bootstrap CIs.", ""]
    served = served_lines(summary)
    if served:
        lines += ["Served model snapshots: " + "; ".join(f"`{line}`" for line in served) + ".", ""]
    costs = cost_lines(summary.get("cost"))
    if costs:
        total = summary["cost"].get("usd")
        lines += ["Tokens and cost (" + cost_note(summary["cost"]) + "; total "
                  + ("no price" if total is None else f"${total:,.4f}") + "):", "",
                  *(f"- {line}" for line in costs), ""]
    for name, task in summary["tasks"].items():
        header, rows = _rows(task)
        lines += [f"## {name} (v{task['task_version']})", "",
                  f"Judge `{task['judge']}`, prompt `{task['prompt_hash']}`, scorer `{task['scorer']}`.", "",
                  "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        if task["average"].get("unparsed_constraints"):
            lines += ["", "Unparsed length constraints (no penalty, excluded from compliance): "
                      + "; ".join(task["average"]["unparsed_constraints"])]
        lines.append("")
    return "\n".join(lines)


def print_summary(summary: dict[str, Any], console: Console) -> None:
    for name, task in summary["tasks"].items():
        header, rows = _rows(task, terse=True)
        table = Table(title=f"{name}  ·  judge {task['judge']}  ·  prompt {task['prompt_hash']}", title_justify="left")
        for i, col in enumerate(header):
            table.add_column(col, justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    for line in served_lines(summary):
        console.print(f"served: {line}")
    for line in cost_lines(summary.get("cost")):
        console.print(f"cost: {line}")
    if cost_lines(summary.get("cost")):
        console.print(f"cost: {cost_note(summary['cost'])}")
    banner = _banner(summary)
    if banner:
        console.print(f"[yellow]{banner}[/yellow]")
