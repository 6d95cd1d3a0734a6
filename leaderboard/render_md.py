"""leaderboard.md: the paper's tables as markdown, with CIs, counts, setups, deltas and paper numbers.

The cell texts are built here and reused by the HTML page, so both show the same digits.
"""

from __future__ import annotations

from .load import Run
from .paired import AVG
from .tables import Cell, Column, Row, Table, judge_label, task_cost

SIGNIFICANCE = ("`*` the paired bootstrap 95 % CI of the difference (over the items both runs scored, "
                "resampled within each dimension) excludes 0.")


def num(value: float | None, digits: int, sign: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def value_text(cell: Cell, col: Column, with_n: bool = True) -> str:
    """`3.25 [2.91, 3.60] n=30`: value, 95 % bootstrap CI, scored items (and failures, if any)."""
    if cell.value is None:
        text = "–"
    else:
        text = num(cell.value, col.digits)
        if cell.ci[0] is not None:
            text += f" [{num(cell.ci[0], col.digits)}, {num(cell.ci[1], col.digits)}]"
    if with_n and col.kind != "extra":
        text += f" n={cell.counts['n']}"
        failed = cell.counts["n_judge_error"] + cell.counts["n_generation_error"]
        if failed:
            text += f" (+{failed} failed)"
    return text


def delta_parts(cell: Cell, col: Column) -> list[str]:
    """[`+1.22*`, `[+0.80, +1.60]`, `+42.2%`, notes...]: refined minus base (`*` = significant), its paired
    CI, the relative gain, then why a test is missing or differs."""
    if cell.delta is None:
        return ["–"]
    parts = [num(cell.delta, col.digits, sign=True)]
    notes = []
    if cell.paired is None:
        notes.append("(no paired test)")
    else:
        parts[0] += "*" if cell.paired.significant else ""
        low, high = cell.paired.ci
        if low is not None:
            parts.append(f"[{num(low, col.digits, True)}, {num(high, col.digits, True)}]")
        else:
            notes.append(f"(no test: {cell.paired.n_shared} shared item{'s' if cell.paired.n_shared != 1 else ''})")
        shared = cell.paired.delta
        if shared is not None and num(shared, col.digits) != num(cell.delta, col.digits):
            # some items failed in one run only: the test (and its CI) is on the items both scored
            notes.append(f"(shared items: {num(shared, col.digits, True)})")
    if cell.relative is not None:
        parts.append(f"{cell.relative * 100:+.1f}%")
    return parts + notes


def delta_text(cell: Cell, col: Column) -> str:
    return " ".join(delta_parts(cell, col))


def paper_text(cell: Cell, col: Column) -> str:
    """`1.55 (diff +0.12)`: the paper's number and ours minus it."""
    if cell.paper is None:
        return ""
    text = num(cell.paper.value, col.digits)
    if cell.paper_diff is not None:
        text += f" (diff {num(cell.paper_diff, col.digits, sign=True)})"
    return text


def rank_text(table: Table, row: Row) -> str:
    if row.rank is None:
        return "–"
    return f"{row.setup}{row.rank}" if table.mixed_setups else str(row.rank)


def setup_text(setup: dict[str, object]) -> str:
    approx = " (OFFLINE APPROXIMATION, not the benchmark's LLM judge)" if setup["judge_is_approximation"] else ""
    paper = (f" (NOT the paper's judge, {setup['paper_judge']}: do not compare with the paper's numbers)"
             if setup.get("paper_judge") else "")
    return (f"judge `{setup['judge']}`{approx}{paper}, prompt `{setup['prompt_hash']}`, "
            f"protocol `{setup['protocol']}`, task v{setup['task_version']}")


def header(table: Table) -> list[str]:
    return ["#", "system", "base", *(c.label for c in table.columns), "n", "judge err", "gen err", "skipped",
            "judge", "prompt", "cost"]


def row_cells(table: Table, row: Row) -> list[str]:
    counts = row.counts()
    base = row.base_row.label if row.base_row is not None else (row.run.base or "")
    return [rank_text(table, row), row.label, base, *(value_text(row.cells[c.key], c) for c in table.columns),
            str(counts["n"]), str(counts["n_judge_error"]), str(counts["n_generation_error"]), str(counts["n_skipped"]),
            judge_label(row.task), str(row.task["prompt_hash"]), cost_text(task_cost(row.task))]


def cost_text(value: float | None) -> str:
    return "–" if value is None else f"${value:,.4f}"


def delta_cells(table: Table, row: Row) -> list[str]:
    assert row.base_row is not None
    paired = row.cells[AVG].paired
    n = paired.n_shared if paired is not None else None
    what = f"↳ Δ vs {row.base_row.label}" + (f" (paired, {n} shared items)" if n is not None else "")
    return ["", what, "", *(delta_text(row.cells[c.key], c) for c in table.columns), "", "", "", "", "", ""]


def paper_cells(table: Table, row: Row) -> list[str]:
    return ["", f"↳ paper: {row.paper_name}", "", *(paper_text(row.cells[c.key], c) for c in table.columns),
            "", "", "", "", "", ""]


def has_paper(row: Row) -> bool:
    return any(c.paper is not None for c in row.cells.values())


def table_notes(table: Table) -> list[str]:
    notes = []
    if table.mixed_setups:
        notes.append("**Mixed setups: rows with different letters were judged with a different judge, prompt, "
                     "protocol or task version; they are ranked separately and are not comparable.**")
    for letter, setup in table.setups.items():
        notes.append(f"{'Setup ' + letter + ': ' if table.mixed_setups else ''}{setup_text(setup)}.")
    notes += [f"{r.label}: {r.base_note}." for r in table.rows if r.base_note]
    return notes


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def render_markdown(tables: list[Table], runs: list[Run]) -> str:
    lines = ["# anycapeval leaderboard", "",
             "Values are `value [95 % bootstrap CI] n=<items scored>`; failed items (judge or generation errors) "
             "are excluded from every value and counted. Refined systems show a `↳ Δ` row: difference to their "
             "base, its paired bootstrap CI and the relative gain. " + SIGNIFICANCE +
             " `↳ paper` rows give the published number and `diff` = ours − paper.", "",
             "## Runs", "", _md_row(["system", "spec", "base", "run directory", "git revision", "finished"]),
             "|---|---|---|---|---|---|"]
    for run in runs:
        revision = str(run.manifest.get("git_revision") or "")[:12]
        lines.append(_md_row([run.label, f"`{run.system}`", f"`{run.base}`" if run.base else "", str(run.path),
                              revision, str(run.manifest.get("finished_at", ""))]))
    lines.append("")
    for table in tables:
        head = header(table)
        lines += [f"## {table.title}", "", *(f"> {n}" for n in table_notes(table)), "", _md_row(head),
                  "|" + "---|" * len(head)]
        for row in table.rows:
            lines.append(_md_row(row_cells(table, row)))
            if row.base_row is not None:
                lines.append(_md_row(delta_cells(table, row)))
            if has_paper(row):
                lines.append(_md_row(paper_cells(table, row)))
        lines.append("")
    if any(has_paper(r) for t in tables for r in t.rows):
        lines += ["Paper numbers: `references/paper_*.csv` (transcribed from arXiv 2507.12841). The paper's video "
                  "Avg averages all 8 content dimensions (and Thm for style) although its table shows fewer; its "
                  "image style Avg is not the plain mean of the columns shown.", ""]
    return "\n".join(lines)
