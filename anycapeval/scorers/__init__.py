"""Scorers: build judge requests for an (item, prediction), score one item, aggregate a task."""

from __future__ import annotations

from typing import Any

from ..types import AnyCapError, Role
from .base import ScorerBase
from .kpd import KPDScorer
from .mia import MIAScorer
from .reference_metrics import ReferenceMetricsScorer
from .style import StyleRubricScorer
from .vidcap import VidCapScorer

PROTOCOLS = ("default", "anycap_v1")
SCORERS: dict[str, type[ScorerBase]] = {"kpd": KPDScorer, "style_rubric": StyleRubricScorer, "mia": MIAScorer,
                                     "vidcap_qa": VidCapScorer, "reference_metrics": ReferenceMetricsScorer}


def get_scorer(name: str, protocol: str = "default", modality: str = "",
               options: dict[str, Any] | None = None) -> ScorerBase:
    if name not in SCORERS:
        raise AnyCapError(f"unknown scorer '{name}' (known: {', '.join(SCORERS)})")
    return SCORERS[name](protocol, modality, options)


def all_roles() -> dict[str, Role]:
    """Every judge role some scorer asks, by name (what a task file's `judge.role` may say)."""
    return {role.name: role for scorer in SCORERS.values() for role in scorer.judge_roles}
