"""VidCapBench (QA format): how much of a video's gold QA can be answered from the caption alone.

Two judge roles, each with its own prompt and cache keys: the *answerer* answers every question of the
video reading only the caption; the *matcher* grades that answer against the gold one: 2 complete and
right, 1 partly right without contradiction, 0 not mentioned, -1 contradicts. Over a set of questions
(A, B, C, D = how many got 2, 1, 0, -1):

    accuracy    = 100·A / (A+B+C+D)          precision = 100·(A+B) / (A+B+D)
    coverage    = 100·(A+B+D) / (A+B+C+D)    conciseness = accuracy·100 / mean caption length

Caption length is counted in words by default; `options.length_unit: t5` with `options.tokenizer`
(a local tokenizer folder, e.g. flan-t5-base) counts T5 tokens like the official tool (EOS included).
Reported overall (all questions pooled) and per category (aesthetics, content, motion, physics) and
sub-category; a category's mean length is over the captions that have a question in it. A video with
an empty QA list is skipped (counted in `n_skipped`, not in any length). One failed judgment makes the
whole video a judge_error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..judges.parse import JudgeAnswerError, extract_json
from ..judges.roles import object_schema
from ..prompts import Template
from ..stats import SEED, bootstrap_groups, metric
from ..text import count_words
from ..types import OK, AnyCapError, Item, JudgeRequest, Judgment, Prediction, Role, Score
from .aggregate import Ratio, counts
from .base import ScorerBase

ANSWERER, MATCHER = "vidcap_answerer", "vidcap_matcher"
CATEGORIES = {  # the official grouping of the 16 sub-categories
    "aesthetics": ("cinematography", "composition", "lighting", "color", "style"),
    "content": ("background", "subjects", "events"),
    "motion": ("attribute changes", "object motion", "body movements", "environmental motion",
               "spatiotemporal transformations"),
    "physics": ("spatial relationships", "counter intuitive", "common sense"),
}
CATEGORY_OF = {sub: cat for cat, subs in CATEGORIES.items() for sub in subs}
GRADES = (2, 1, 0, -1)
METRICS = ("accuracy", "precision", "coverage", "conciseness")
DEFAULT_CAPTION_PROMPT = "Describe the video in detail."

# -- judge roles --------------------------------------------------------------------------------------


def parse_answerer(raw: str) -> str:
    """The answerer's short answer: {"answer": "..."} or, from a server without JSON mode, plain text."""
    try:
        data: dict[str, Any] | None = extract_json(raw)
    except JudgeAnswerError:
        data = None
    if data is not None:
        answer = data.get("answer")
        if not isinstance(answer, str) or not answer.strip():
            raise JudgeAnswerError("expected a non-empty string in 'answer'")
        return answer.strip()
    text = raw.strip()
    if not text or text.startswith("{"):
        raise JudgeAnswerError("empty or broken answer")
    return text


_GRADE_RE = re.compile(r"score\s*[:=]?\s*(-?\d+)", re.I)


def parse_grade(raw: str) -> int:
    """One grade in {2, 1, 0, -1}: {"score": n, ...} first, then a lone 'score: n' in text."""
    try:
        data: dict[str, Any] | None = extract_json(raw)
    except JudgeAnswerError:
        data = None
    if data is not None:
        if "score" not in data:
            raise JudgeAnswerError("no 'score' in the matcher's answer")
        value = data["score"]
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            value = int(value)
    else:
        found = {int(m.group(1)) for m in _GRADE_RE.finditer(raw)}
        if len(found) != 1:
            raise JudgeAnswerError(f"expected one 'score: n' in the matcher's answer, found {sorted(found) or 'none'}")
        value = found.pop()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value not in GRADES:
        raise JudgeAnswerError(f"score must be one of 2, 1, 0, -1, got {value!r}")
    return int(value)


ANSWERER_ROLE = Role(ANSWERER, lambda raw, r: parse_answerer(raw),
                     lambda r, hit: json.dumps({"answer": r.extra["gold"] if hit else "The description does not say."}),
                     placeholders=("caption", "question"),
                     schema=lambda r: object_schema("answer", {"answer": {"type": "string"}}))
MATCHER_ROLE = Role(MATCHER, lambda raw, r: parse_grade(raw),
                    lambda r, hit: json.dumps({"score": 2 if hit else 0, "analysis": "fake"}),
                    placeholders=("question", "answer", "prediction"),
                    schema=lambda r: object_schema("match_grade", {
                        "analysis": {"type": "string"}, "score": {"type": "integer", "enum": [2, 1, 0, -1]}}))

# -- scoring ------------------------------------------------------------------------------------------


def qa_metrics(sums: np.ndarray) -> np.ndarray:
    """(..., 6) sums of [A, B, C, D, caption length, captions] -> (..., 4) accuracy, precision, coverage,
    conciseness; NaN where a denominator is zero."""
    a, b, c, d, length, n = (sums[..., i] for i in range(6))
    total = a + b + c + d
    with np.errstate(divide="ignore", invalid="ignore"):
        accuracy = np.where(total > 0, 100 * a / total, np.nan)
        precision = np.where(a + b + d > 0, 100 * (a + b) / (a + b + d), np.nan)
        coverage = np.where(total > 0, 100 * (a + b + d) / total, np.nan)
        conciseness = np.where(length > 0, accuracy * 100 / (length / n), np.nan)
    return np.stack([accuracy, precision, coverage, conciseness], axis=-1)


class VidCapScorer(ScorerBase):
    name = "vidcap_qa"
    judge_roles = (ANSWERER_ROLE, MATCHER_ROLE)

    def __init__(self, protocol: str = "default", modality: str = "", options: dict[str, Any] | None = None):
        super().__init__(protocol, modality, options)
        self.length_unit = str(self.options.get("length_unit", "words"))
        if self.length_unit not in ("words", "t5"):
            raise AnyCapError(f"vidcap_qa: options.length_unit must be words or t5, got {self.length_unit!r}")
        self._tokenizer: Any = None

    def skip_reason(self, item: Item, prediction: Prediction) -> str:
        return "" if item.extra["qa"] else "the video has no QA pairs"

    def requests(self, item: Item, prediction: Prediction, templates: dict[str, Template],
                 judgments: list[Judgment]) -> list[JudgeRequest]:
        qa = item.extra["qa"]
        if not judgments:  # round 1: answer every question from the caption
            return [JudgeRequest(role=ANSWERER, rules=ANSWERER_ROLE, caption=prediction.caption, modality="video",
                                 prompt=templates[ANSWERER].render(caption=prediction.caption, question=q["question"]),
                                 extra={"gold": q["answer"]}) for q in qa]
        if len(judgments) == len(qa):  # round 2: grade each answer against the gold one
            return [JudgeRequest(role=MATCHER, rules=MATCHER_ROLE, caption=prediction.caption, modality="video",
                                 reference=q["answer"],
                                 prompt=templates[MATCHER].render(question=q["question"], answer=q["answer"],
                                                                  prediction=str(j.value)))
                    for q, j in zip(qa, judgments)]
        return []

    def length(self, caption: str) -> int:
        if self.length_unit == "words":
            return count_words(caption)
        if self._tokenizer is None:
            source = self.options.get("tokenizer")
            if not source:
                raise AnyCapError("vidcap_qa: options.length_unit t5 needs options.tokenizer (a local folder with a "
                                  "T5 tokenizer, e.g. flan-t5-base)")
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=True)
        return len(self._tokenizer(caption)["input_ids"])  # EOS included, as the official count

    def score(self, item: Item, prediction: Prediction, judgments: list[Judgment]) -> Score:
        qa = item.extra["qa"]
        failed = self.unscored(item, prediction, judgments)
        if failed:  # keep the categories, so each column counts its failed videos
            failed.metrics.update(categories=[q["category"] for q in qa],
                                  sub_categories=[q["sub_category"] for q in qa])
            return failed
        if len(judgments) != 2 * len(qa):
            raise ValueError(f"{item.task}/{item.id}: {len(judgments)} judgments for {len(qa)} questions")
        return Score(item.task, item.id, item.dimension, OK, metrics={
            "grades": [int(j.value) for j in judgments[len(qa):]],
            "answers": [str(j.value) for j in judgments[:len(qa)]],
            "categories": [q["category"] for q in qa], "sub_categories": [q["sub_category"] for q in qa],
            "length": self.length(prediction.caption), "length_unit": self.length_unit,
        })

    def ratios(self) -> dict[str, Ratio]:
        def share(grades: tuple[int, ...]) -> Any:
            return lambda m: float(sum(g in grades for g in m["grades"]))

        return {"accuracy": Ratio(share((2,)), lambda m: len(m["grades"]), 100.0, "micro"),
                "precision": Ratio(share((2, 1)), share((2, 1, -1)), 100.0, "micro"),
                "coverage": Ratio(share((2, 1, -1)), lambda m: len(m["grades"]), 100.0, "micro")}

    def aggregate(self, scores: list[Score], dims_order: list[str]) -> dict[str, Any]:
        ok = [s for s in scores if s.status == OK]

        def columns(key: str | None, field: str) -> list[np.ndarray]:
            rows = []
            for s in ok:
                grades = [g for g, c in zip(s.metrics["grades"], s.metrics[field]) if key is None or c == key]
                if grades:
                    rows.append([*(grades.count(g) for g in GRADES), s.metrics["length"], 1])
            return list(np.array(rows, dtype=float).reshape(-1, 6).T)

        def present(field: str) -> list[str]:
            return sorted({c for s in scores for c in s.metrics.get(field, [])})

        cats = [c for c in dims_order if c in present("categories")] + \
            [c for c in present("categories") if c not in dims_order]
        subs = [s for c in CATEGORIES.values() for s in c if s in present("sub_categories")]
        groups = {("categories", c): columns(c, "categories") for c in cats}
        groups.update({("sub_categories", s): columns(s, "sub_categories") for s in subs})
        groups[("all", "")] = columns(None, "categories")
        keyed: dict[str, Sequence[np.ndarray]] = {f"{f}:{k}": cols for (f, k), cols in groups.items()}
        reps = bootstrap_groups(keyed, qa_metrics, seed=SEED)

        def entry(field: str, key: str, rows: list[Score]) -> dict[str, Any]:
            cols = keyed[f"{field}:{key}"]
            point = qa_metrics(np.array([c.sum() for c in cols]))
            out: dict[str, Any] = {m: metric(point[j], reps[f"{field}:{key}"][:, j]) for j, m in enumerate(METRICS)}
            out["n_questions"] = int(sum(cols[i].sum() for i in range(4)))
            out["grades"] = {str(g): int(cols[i].sum()) for i, g in enumerate(GRADES)}
            out.update(counts(rows))
            return out

        def having(field: str, key: str) -> list[Score]:
            return [s for s in scores if key in s.metrics.get(field, [])]

        average = entry("all", "", scores)
        average["length_unit"] = self.length_unit
        return {"dimensions": {c: entry("categories", c, having("categories", c)) for c in cats},
                "average": average, "main_metric": "accuracy",
                "sub_categories": {s: entry("sub_categories", s, having("sub_categories", s)) for s in subs}}
