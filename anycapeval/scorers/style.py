"""Style score: the judge's 0–4 rubric grade against the reference caption, with the caps in code.

Caps (docs/design.md, "Scoring"): for `brief` and `detail`, a caption whose word count is outside ±30 % of the
reference's cannot score above 1; a caption that breaks its length constraint is capped at 1. Per
dimension: mean score. Task average: mean of dimensions (anycap_v1: mean over all items, and only the
length cap, since the official code leaves the ±30 % rule to the prompt).
"""

from __future__ import annotations

from ..judges.roles import STYLE
from ..prompts import Template
from ..text import count_words, within_reference_band
from ..types import OK, Item, JudgeRequest, Judgment, Prediction, Score
from .aggregate import Ratio
from .base import LENGTH_COMPLIANCE, RatioScorer

BAND_TYPES = ("brief", "detail")
CAP = 1


class StyleRubricScorer(RatioScorer):
    name = "style_rubric"
    judge_roles = (STYLE,)

    def request(self, item: Item, prediction: Prediction, template: Template) -> JudgeRequest:
        prompt = template.render(caption_type=item.instruction_type, reference=item.reference,
                                 output=prediction.caption, instruction=item.instruction,
                                 length_constraint=item.length_constraint)
        return JudgeRequest(role=STYLE.name, rules=STYLE, prompt=prompt, caption=prediction.caption,
                            reference=item.reference,
                            instruction_type=item.instruction_type, media_path=item.media_path,
                            modality=item.modality)

    def score(self, item: Item, prediction: Prediction, judgments: list[Judgment]) -> Score:
        failed = self.unscored(item, prediction, judgments)
        if failed:
            return failed
        judgment = judgments[0]
        raw = int(judgment.value)
        words = self.count_words(prediction.caption)
        length_ok, constraint = self.length_check(item, prediction.caption, words)
        in_band = True
        if not self.v1 and item.instruction_type in BAND_TYPES:
            in_band = within_reference_band(prediction.caption, item.reference)
        capped = min(raw, CAP) if (length_ok is False or not in_band) else raw
        return Score(item.task, item.id, item.dimension, OK, metrics={
            "judge_score": raw, "style_score": capped, "length_ok": length_ok, "constraint": constraint,
            "within_reference_band": in_band, "words": words, "reference_words": count_words(item.reference),
        })

    def ratios(self) -> dict[str, Ratio]:
        average = "micro" if self.v1 else "macro"
        return {
            "style_score": Ratio(lambda m: m["style_score"], lambda m: 1.0, average=average),
            "judge_score_uncapped": Ratio(lambda m: m["judge_score"], lambda m: 1.0, average=average),
            "length_compliance": LENGTH_COMPLIANCE,
        }
