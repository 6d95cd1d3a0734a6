"""Scorers: build judge requests for an (item, prediction), score one item, aggregate a task."""

from __future__ import annotations

from .base import ScorerBase
from .kpd import KPDScorer
from .style import StyleRubricScorer

PROTOCOLS = ("default", "anycap_v1")
SCORERS: dict[str, type[ScorerBase]] = {"kpd": KPDScorer, "style_rubric": StyleRubricScorer}


def get_scorer(name: str, protocol: str = "default", modality: str = "") -> ScorerBase:
    return SCORERS[name](protocol, modality)
