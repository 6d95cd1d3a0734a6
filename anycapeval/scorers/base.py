"""What the two AnyCapEval scorers share: request building, failure accounting, the length rule."""

from __future__ import annotations

from typing import Any

from ..prompts import Template
from ..text import ConstraintParseError, LengthConstraint, parse_length_constraint
from ..types import GENERATION_ERROR, JUDGE_ERROR, OK, Item, JudgeRequest, Judgment, Prediction, Score
from .aggregate import Ratio

SKIPPED = "skipped"

# Share of items meeting their length constraint; items whose constraint could not be read
# (length_ok None) count in neither numerator nor denominator.
LENGTH_COMPLIANCE = Ratio(lambda m: 1.0 if m["length_ok"] else 0.0, lambda m: 0.0 if m["length_ok"] is None else 1.0)


def unparsed_constraints(scores: list[Score]) -> list[str]:
    return sorted({s.metrics["constraint"] for s in scores if s.status == OK and s.metrics["length_ok"] is None})


class ScorerBase:
    name = ""
    role = ""

    def __init__(self, protocol: str = "default", modality: str = ""):
        if protocol not in ("default", "anycap_v1"):
            raise ValueError(f"unknown protocol {protocol!r} (default, anycap_v1)")
        self.protocol = protocol
        self.modality = modality
        self.v1 = protocol == "anycap_v1"

    def skip_reason(self, item: Item, prediction: Prediction) -> str:
        """Why this item is not judged at all ('' = judge it)."""
        if self.v1 and "None" in prediction.caption:
            return "anycap_v1: the official scripts skip any caption containing 'None'"
        return ""

    def request(self, item: Item, prediction: Prediction, template: Template) -> JudgeRequest:
        raise NotImplementedError

    def length_check(self, item: Item, caption: str) -> tuple[bool | None, str]:
        """(passes?, description). None = the constraint could not be read: reported, never
        silently passed — except under anycap_v1, where the official scripts pass it."""
        try:
            constraint: LengthConstraint = parse_length_constraint(item.length_constraint)
        except ConstraintParseError as exc:
            return (True if self.v1 else None), f"unparsed: {exc}"
        return constraint.check(caption, v1=self.v1), constraint.describe()

    def unscored(self, item: Item, prediction: Prediction, judgment: Judgment | None) -> Score | None:
        """A Score for an item that does not count (generation/judge failure, skip), else None."""
        def make(status: str, error: str) -> Score:
            return Score(item.task, item.id, item.dimension, status, error=error)

        if prediction.status != OK:
            return make(GENERATION_ERROR, prediction.error)
        reason = self.skip_reason(item, prediction)
        if reason:
            return make(SKIPPED, reason)
        if judgment is None or judgment.status != OK:
            return make(JUDGE_ERROR, judgment.error if judgment else "no judgment")
        return None

    def score(self, item: Item, prediction: Prediction, judgment: Judgment | None) -> Score:
        raise NotImplementedError

    def aggregate(self, scores: list[Score], dims_order: list[str]) -> dict[str, Any]:
        raise NotImplementedError
