"""Scorers: build judge requests for an (item, prediction), score one item, aggregate a task."""

from __future__ import annotations

from .kpd import KPDScorer
from .style import StyleRubricScorer

PROTOCOLS = ("default", "anycap_v1")
SCORERS = {"kpd": KPDScorer, "style_rubric": StyleRubricScorer}


def get_scorer(name: str, protocol: str = "default", modality: str = "") -> KPDScorer | StyleRubricScorer:
    return SCORERS[name](protocol, modality)
