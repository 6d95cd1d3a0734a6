"""The scorer contract, and what the AnyCapEval scorers share: failure accounting, the length rule.

A scorer turns (item, prediction) into judge requests — in rounds, so a later request may depend on
earlier answers (VidCapBench asks an answerer, then a matcher) — scores each item from its
judgments, and aggregates a task. A scorer lists the judge roles it asks as data (`judge_roles`), so
the registry can check a task file's judges and a judge can read any role's answer from the request;
a scorer whose `judge_roles` is empty needs no judge.
"""

from __future__ import annotations

from typing import Any

from ..prompts import Template
from ..text import ConstraintParseError, LengthConstraint, count_words, count_words_v1, parse_length_constraint
from ..types import (
    GENERATION_ERROR,
    JUDGE_ERROR,
    OK,
    SKIPPED,
    Item,
    JudgeRequest,
    Judgment,
    Prediction,
    Role,
    Score,
    Status,
)
from .aggregate import Ratio, RatioColumns, aggregate_columns

# Share of items meeting their length constraint; items whose constraint could not be read
# (length_ok None) count in neither numerator nor denominator.
LENGTH_COMPLIANCE = Ratio(lambda m: 1.0 if m["length_ok"] else 0.0, lambda m: 0.0 if m["length_ok"] is None else 1.0)


class ScoreList:
    """A task's scores as the runner produces them, for `result` at the end: the default keeps every
    Score and calls the scorer's `aggregate` (fine for benchmarks of a few thousand items)."""

    def __init__(self, scorer: ScorerBase):
        self.scorer = scorer
        self.scores: list[Score] = []

    def add(self, score: Score) -> None:
        self.scores.append(score)

    def result(self, dims_order: list[str]) -> dict[str, Any]:
        return self.scorer.aggregate(self.scores, dims_order)


class RatioTally(ScoreList):
    """A RatioScorer's tally: only the ratio columns are kept (RatioColumns), so memory per item is a
    few numbers, not a Score."""

    scorer: RatioScorer

    def __init__(self, scorer: RatioScorer):
        super().__init__(scorer)
        self.columns = RatioColumns(scorer.ratios())
        self.unparsed: set[str] = set()

    def add(self, score: Score) -> None:
        self.columns.add(score)
        if score.status == OK and score.metrics["length_ok"] is None:
            self.unparsed.add(score.metrics["constraint"])

    def result(self, dims_order: list[str]) -> dict[str, Any]:
        return self.scorer.finish(aggregate_columns(self.columns, dims_order), sorted(self.unparsed))


class ScorerBase:
    name = ""
    judge_roles: tuple[Role, ...] = ()  # the roles this scorer asks, each configured by the task's `judge` list
    roles: tuple[str, ...] = ()  # their names, in the same order (set from judge_roles)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.roles = tuple(role.name for role in cls.judge_roles)

    @classmethod
    def role(cls, name: str) -> Role:
        return next(role for role in cls.judge_roles if role.name == name)

    def __init__(self, protocol: str = "default", modality: str = "", options: dict[str, Any] | None = None):
        if protocol not in ("default", "anycap_v1"):
            raise ValueError(f"unknown protocol {protocol!r} (default, anycap_v1)")
        self.protocol = protocol
        self.modality = modality
        self.options = dict(options or {})
        self.v1 = protocol == "anycap_v1"

    def requests(self, item: Item, prediction: Prediction, templates: dict[str, Template],
                 judgments: list[Judgment]) -> list[JudgeRequest]:
        """The next judge requests for this item, given its judgments so far ([] in the first round);
        [] when it needs no more. The default: one request for the scorer's single role."""
        if judgments or not self.roles:
            return []
        return [self.request(item, prediction, templates[self.roles[0]])]

    def skip_reason(self, item: Item, prediction: Prediction) -> str:
        """Why this item is not judged at all ('' = judge it)."""
        if self.v1 and "None" in prediction.caption:
            return "anycap_v1: the official scripts skip any caption containing 'None'"
        return ""

    def request(self, item: Item, prediction: Prediction, template: Template) -> JudgeRequest:
        raise NotImplementedError

    def length_check(self, item: Item, caption: str, words: int | None = None) -> tuple[bool | None, str]:
        """(passes?, description). None = the constraint could not be read: reported, never
        silently passed — except under anycap_v1, where the official scripts pass it. `words`: the
        caption's words, counted as the protocol counts them, when the caller has counted them already."""
        try:
            constraint: LengthConstraint = parse_length_constraint(item.length_constraint)
        except ConstraintParseError as exc:
            return (True if self.v1 else None), f"unparsed: {exc}"
        if words is None or constraint.unit != "words":
            return constraint.check(caption, v1=self.v1), constraint.describe()
        return constraint.accepts(words), constraint.describe()

    def count_words(self, caption: str) -> int:
        """The caption's words, as this protocol counts them."""
        return count_words_v1(caption) if self.v1 else count_words(caption)

    def unscored(self, item: Item, prediction: Prediction, judgments: list[Judgment]) -> Score | None:
        """A Score for an item that does not count (generation/judge failure, skip), else None."""
        def make(status: Status, error: str) -> Score:
            return Score(item.task, item.id, item.dimension, status, error=error)

        if prediction.status != OK:
            return make(GENERATION_ERROR, prediction.error)
        reason = self.skip_reason(item, prediction)
        if reason:
            return make(SKIPPED, reason)
        if self.roles:
            if not judgments:
                return make(JUDGE_ERROR, "no judgment")
            failed = [j for j in judgments if j.status != OK]
            if failed:
                return make(JUDGE_ERROR, failed[0].error)
        return None

    def score(self, item: Item, prediction: Prediction, judgments: list[Judgment]) -> Score:
        raise NotImplementedError

    def ratios(self) -> dict[str, Ratio]:
        """The per-item ratio behind each metric of `aggregate` (the leaderboard's paired bootstrap
        recomputes them on resampled items); empty when the metrics are not ratios of per-item sums."""
        return {}

    def aggregate(self, scores: list[Score], dims_order: list[str]) -> dict[str, Any]:
        raise NotImplementedError

    def tally(self) -> ScoreList:
        """Where the runner puts each Score of a task; `.result(dims_order)` is the aggregate."""
        return ScoreList(self)


class RatioScorer(ScorerBase):
    """A scorer whose metrics are ratios over its scored items (`ratios()`: KPD, style), aggregated
    with bootstrap CIs plus the length constraints that could not be read. The runner keeps only the
    ratio columns (RatioTally), and `aggregate` takes the same path, so both give the same numbers."""

    def tally(self) -> RatioTally:
        return RatioTally(self)

    def aggregate(self, scores: list[Score], dims_order: list[str]) -> dict[str, Any]:
        tally = self.tally()
        for score in scores:
            tally.add(score)
        return tally.result(dims_order)

    def finish(self, result: dict[str, Any], unparsed: list[str]) -> dict[str, Any]:
        """The last touches to `aggregate_columns`' result."""
        result["average"]["unparsed_constraints"] = unparsed
        return result
