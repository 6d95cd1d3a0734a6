"""leaderboard.html: one self-contained page (inline CSS, figures as base64 PNG; opens offline).

Each cell shows the value, its CI and n; hovering shows the counts and the judge provenance of that cell.
"""

from __future__ import annotations

from html import escape

from . import plots
from .load import Run
from .render_md import (
    SIGNIFICANCE,
    cost_text,
    delta_parts,
    has_paper,
    header,
    num,
    paper_text,
    rank_text,
    table_notes,
    value_text,
)
from .tables import Cell, Column, Row, Table, judge_label, task_cost

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px;color:#1d1d1f;background:#fff}
h1{font-size:22px;margin:0 0 6px} h2{font-size:17px;margin:28px 0 6px;border-bottom:1px solid #ddd;padding-bottom:3px}
p.lead{max-width:1100px;font-size:13px;color:#444}
table{border-collapse:collapse;font-size:12px;margin:6px 0}
th,td{border:1px solid #d0d7de;padding:3px 6px;text-align:right;white-space:nowrap}
th{background:#f3f5f7} td.sys,th.sys{text-align:left}
tr.delta td{background:#f6fbf6;font-size:11px}
tr.paper td{background:#f7f7f9;color:#555;font-style:italic;font-size:11px}
span.ci{color:#777;font-size:10px;margin-left:3px} span.n{color:#999;font-size:10px;margin-left:3px}
.up{color:#11702b;font-weight:600} .down{color:#b3261e;font-weight:600}
.note{font-size:12px;color:#555;margin:2px 0} .warn{color:#8a4b00;font-weight:600}
.wide{overflow-x:auto} .figs img{border:1px solid #eee}
.figs{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
"""


def _value_td(cell: Cell, col: Column, row: Row) -> str:
    tip = (f"{col.metric} {value_text(cell, col)}; judge errors {cell.counts['n_judge_error']}, generation errors "
           f"{cell.counts['n_generation_error']}, skipped {cell.counts['n_skipped']}; judge {judge_label(row.task)}, "
           f"prompt {row.task['prompt_hash']}, protocol {row.task.get('protocol', '')}")
    if cell.value is None:
        return f'<td title="{escape(tip)}">–</td>'
    inner = f"{num(cell.value, col.digits)}"
    if cell.ci[0] is not None:
        inner += f'<span class="ci">[{num(cell.ci[0], col.digits)}, {num(cell.ci[1], col.digits)}]</span>'
    if col.kind != "extra":
        inner += f'<span class="n">n={cell.counts["n"]}</span>'
    return f'<td title="{escape(tip)}">{inner}</td>'


def _delta_td(cell: Cell, col: Column) -> str:
    parts = delta_parts(cell, col)
    text = escape(parts[0]) + "".join(f'<span class="ci">{escape(p)}</span>' if p.startswith("[") else
                                      f"<br>{escape(p)}" for p in parts[1:])
    if cell.paired is not None and cell.paired.significant and cell.delta is not None:
        return f'<td class="{"up" if cell.delta > 0 else "down"}">{text}</td>'
    return f"<td>{text}</td>"


def _table_html(table: Table) -> str:
    head = header(table)
    out = [f'<h2 id="{escape(table.task)}">{escape(table.title)}</h2>']
    for note in table_notes(table):
        cls = "note warn" if note.startswith("**") else "note"
        out.append(f'<p class="{cls}">{escape(note.strip("*").replace("`", ""))}</p>')
    ths = "".join(f'<th class="{"sys" if i in (1, 2) else ""}">{escape(h)}</th>' for i, h in enumerate(head))
    out.append(f'<div class="wide"><table><thead><tr>{ths}</tr></thead><tbody>')
    for row in table.rows:
        counts = row.counts()
        base = row.base_row.label if row.base_row is not None else (row.run.base or "")
        cells = [f"<td>{escape(rank_text(table, row))}</td>", f'<td class="sys">{escape(row.label)}</td>',
                 f'<td class="sys">{escape(base)}</td>', *(_value_td(row.cells[c.key], c, row) for c in table.columns),
                 *(f"<td>{counts[k]}</td>" for k in ("n", "n_judge_error", "n_generation_error", "n_skipped")),
                 f"<td>{escape(judge_label(row.task))}</td>", f"<td>{escape(str(row.task['prompt_hash']))}</td>",
                 f"<td>{escape(cost_text(task_cost(row.task)))}</td>"]
        out.append("<tr>" + "".join(cells) + "</tr>")
        pad = "<td></td>" * 6
        if row.base_row is not None:
            out.append(f'<tr class="delta"><td></td><td class="sys">↳ Δ vs {escape(row.base_row.label)}</td><td></td>'
                       + "".join(_delta_td(row.cells[c.key], c) for c in table.columns) + pad + "</tr>")
        if has_paper(row):
            name = escape(str(row.paper_name))
            out.append(f'<tr class="paper"><td></td><td class="sys">↳ paper: {name}</td><td></td>'
                       + "".join(f"<td>{escape(paper_text(row.cells[c.key], c))}</td>" for c in table.columns)
                       + pad + "</tr>")
    out.append("</tbody></table></div>")
    figs = [plots.bar_chart(table)]
    radar = plots.radar_chart(table)
    if radar:
        figs.append(radar)
    out.append('<div class="figs">' + "".join(
        f'<img alt="{escape(table.task)} figure" src="data:image/png;base64,{f}">' for f in figs) + "</div>")
    return "\n".join(out)


def render_html(tables: list[Table], runs: list[Run]) -> str:
    run_rows = "".join(
        f'<tr><td class="sys">{escape(r.label)}</td><td class="sys">{escape(r.system)}</td>'
        f'<td class="sys">{escape(r.base or "")}</td><td class="sys">{escape(str(r.path))}</td>'
        f'<td class="sys">{escape(str(r.manifest.get("git_revision") or "")[:12])}</td></tr>' for r in runs)
    toc = " · ".join(f'<a href="#{escape(t.task)}">{escape(t.task)}</a>' for t in tables)
    body = "\n".join(_table_html(t) for t in tables)
    lead = ("Cells: value [95 % bootstrap CI] n = items scored (hover for failures and judge provenance). "
            "↳ Δ rows: refined minus base, paired bootstrap CI and relative gain; "
            + SIGNIFICANCE.replace("`", "") + " ↳ paper rows: published number (diff = ours − paper).")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>anycapeval leaderboard</title>'
            f"<style>{CSS}</style></head><body>\n<h1>anycapeval leaderboard</h1>\n"
            f'<p class="lead">{escape(lead)}</p>\n<p class="note">{toc}</p>\n'
            f'<table><thead><tr><th class="sys">system</th><th class="sys">spec</th><th class="sys">base</th>'
            f'<th class="sys">run directory</th><th class="sys">git revision</th></tr></thead><tbody>{run_rows}'
            f"</tbody></table>\n{body}\n</body></html>\n")
