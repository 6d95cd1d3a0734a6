"""Content score: Key-Point Density (KPD), key-point recall and length compliance (docs/design.md, "Scoring").

Per item: matched = key points the judge marked as correctly mentioned; one is taken off (not below
zero) when the caption breaks its length constraint. Per dimension: KPD = 100 × mean(matched after
penalty) / mean(word count), a ratio of means. Task average: plain mean of the dimensions.
"""

from __future__ import annotations

from typing import Any

from ..judges.roles import CONTENT
from ..prompts import Template, format_key_points
from ..types import OK, Item, JudgeRequest, Judgment, Prediction, Score
from .aggregate import Ratio
from .base import LENGTH_COMPLIANCE, RatioScorer


class KPDScorer(RatioScorer):
    name = "kpd"
    judge_roles = (CONTENT,)

    def skip_reason(self, item: Item, prediction: Prediction) -> str:
        if not item.key_points:
            return "item has no key points"  # e.g. AnyCapEval audio id 27
        return super().skip_reason(item, prediction)

    def request(self, item: Item, prediction: Prediction, template: Template) -> JudgeRequest:
        prompt = template.render(key_points=format_key_points(item.key_points), answer=prediction.caption,
                                 instruction=item.instruction, length_constraint=item.length_constraint)
        # The content judge reads only the key points and the caption, never the media.
        return JudgeRequest(role=CONTENT.name, rules=CONTENT, prompt=prompt, caption=prediction.caption,
                            key_points=item.key_points, reference=item.reference,
                            instruction_type=item.instruction_type, modality=item.modality)

    def score(self, item: Item, prediction: Prediction, judgments: list[Judgment]) -> Score:
        failed = self.unscored(item, prediction, judgments)
        if failed:
            return failed
        judgment = judgments[0]
        decisions = list(judgment.value)
        if len(decisions) != len(item.key_points):  # the judge layer validates this; never score a mismatch
            raise ValueError(f"{item.task}/{item.id}: {len(decisions)} decisions for {len(item.key_points)} key points")
        matched = sum(decisions)
        words = self.count_words(prediction.caption)
        length_ok, constraint = self.length_check(item, prediction.caption, words)
        penalized = max(matched - 1, 0) if length_ok is False else matched
        return Score(item.task, item.id, item.dimension, OK, metrics={
            "matched": matched, "matched_after_penalty": penalized, "key_points": len(item.key_points),
            "words": words, "length_ok": length_ok, "constraint": constraint,
        })

    def ratios(self) -> dict[str, Ratio]:
        ratios = {
            "kpd": Ratio(lambda m: m["matched_after_penalty"], lambda m: m["words"], scale=100.0),
            "keypoint_recall": Ratio(lambda m: m["matched_after_penalty"], lambda m: m["key_points"]),
            "length_compliance": LENGTH_COMPLIANCE,
        }
        if self.v1:
            # The official overall recall pools all items and, for image and audio, ignores the
            # penalty; its per-dimension lines are post-penalty like ours.
            key = "matched_after_penalty" if self.modality == "video" else "matched"
            ratios["overall_recall"] = Ratio(lambda m: m[key], lambda m: m["key_points"], average="micro")
        return ratios

    def finish(self, result: dict[str, Any], unparsed: list[str]) -> dict[str, Any]:
        if self.v1:
            result["average"]["keypoint_recall"] = result["average"].pop("overall_recall")
            for entry in result["dimensions"].values():
                entry.pop("overall_recall")
        return super().finish(result, unparsed)
