"""Figures for the HTML page, as base64 PNG so the page needs no other file and no network.

matplotlib is imported inside the functions (Agg canvas, no pyplot state), so `anycapeval --help` and
the markdown/CSV outputs never pay for it.
"""

from __future__ import annotations

import base64
import io
import math
from typing import Any

from .paired import AVG
from .tables import Row, Table

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#17becf"]
DPI = 90


def _png(fig: Any) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)  # fixed margins: "tight" bounding boxes cost a second draw
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _short(text: str, width: int = 34) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def bar_chart(table: Table) -> str:
    """Horizontal bars of each row's Avg with its 95 % CI as whiskers; the paper's number as a diamond.
    Colour = setup (rows of different setups are not comparable); hatched = a refined system."""
    from matplotlib.figure import Figure

    rows = [r for r in table.rows if r.cells[AVG].value is not None]
    height = 1.1 + 0.28 * max(len(rows), 1)
    fig = Figure(figsize=(7.0, height))
    fig.subplots_adjust(left=0.38, right=0.97, top=1 - 0.35 / height, bottom=0.6 / height)
    ax = fig.add_subplot()
    letters = list(table.setups)
    values = [float(r.cells[AVG].value or 0.0) for r in rows]
    cis = [r.cells[AVG].ci for r in rows]
    lows = [v - low if low is not None else 0.0 for v, (low, _) in zip(values, cis)]
    highs = [high - v if high is not None else 0.0 for v, (_, high) in zip(values, cis)]
    bars = ax.barh(range(len(rows)), values, xerr=[lows, highs], capsize=3, edgecolor="white", alpha=0.85,
                   color=[COLORS[letters.index(r.setup) % len(COLORS)] for r in rows],
                   error_kw={"elinewidth": 1, "ecolor": "#222"})
    for bar, row in zip(bars, rows):
        if row.base_row is not None:
            bar.set_hatch("//")
    paper = [(found.value, i) for i, r in enumerate(rows) if (found := r.cells[AVG].paper) is not None]
    if paper:
        ax.plot([p[0] for p in paper], [p[1] for p in paper], marker="D", color="black", markersize=5,
                linestyle="none")
    ax.set_yticks(range(len(rows)), [_short(f"{r.setup + ' ' if table.mixed_setups else ''}{r.label}") for r in rows],
                  fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"Avg {table.main} (95 % CI; hatched = refined; ◆ = paper)", fontsize=8)
    ax.set_title(table.task, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def radar_chart(table: Table, limit: int = 10) -> str | None:
    """One polygon per system over the task's dimensions (as the paper's Fig. 3c); None with < 3 dimensions.
    At most `limit` systems of the most common setup, the best first, so the figure stays readable."""
    from matplotlib.figure import Figure

    dims = [c for c in table.columns if c.kind == "dim"]
    setup = next(iter(table.setups))  # the most common setup: other setups are not comparable with it
    rows: list[Row] = sorted((r for r in table.rows if r.setup == setup and
                              any(r.cells[c.key].value is not None for c in dims)),
                             key=lambda r: r.rank or math.inf)[:limit]
    if len(dims) < 3 or not rows:
        return None
    angles = [2 * math.pi * i / len(dims) for i in range(len(dims))]
    fig = Figure(figsize=(7.0, 4.4))
    ax = fig.add_axes((0.06, 0.08, 0.5, 0.8), projection="polar")
    for i, row in enumerate(rows):
        values = [row.cells[c.key].value or 0.0 for c in dims]
        ax.plot([*angles, angles[0]], [*values, values[0]], color=COLORS[i % len(COLORS)], linewidth=1.5,
                linestyle="--" if row.base_row is None and any(r.base_row is row for r in rows) else "-",
                label=_short(row.label, 40))
        ax.fill([*angles, angles[0]], [*values, values[0]], color=COLORS[i % len(COLORS)], alpha=0.08)
    ax.set_xticks(angles, [c.label for c in dims])
    ax.tick_params(labelsize=8)
    only = f" (setup {setup} only)" if table.mixed_setups else ""
    fig.suptitle(f"{table.task}: {table.main} per dimension{only}", fontsize=10)
    fig.legend(*ax.get_legend_handles_labels(), loc="center left", bbox_to_anchor=(0.64, 0.5), fontsize=7,
               frameon=False, title="dashed = base of a refined row", title_fontsize=7)
    return _png(fig)
