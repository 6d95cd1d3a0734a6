"""MIA-Bench: does a response follow each weighted component of a multi-part image instruction?

The judge grades every component against its weight (the weights of an item sum to 10, except items
241 = [4, 2, 2] and 247 = [4, 4], which sum to 8) and states the total. An answer with a missing or
extra component, a component above its weight, or a total that is not the sum of the components is a
parse error (retried, then a judge_error), never a score. Per item: total / weight sum × 100, so a
perfect answer is 100 on every item. Per component type (describe, mention, length_limit, ...): the
mean over all components of that type of score / weight × 100. Task: the mean item total (0–100).

The items are read by `readers/mia.py`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..judges.parse import JudgeAnswerError, extract_json
from ..judges.roles import object_schema
from ..prompts import Template
from ..stats import SEED, bootstrap_groups, metric
from ..types import OK, Item, JudgeRequest, Judgment, Prediction, Role, Score
from .aggregate import Ratio, counts
from .base import ScorerBase

ROLE = "mia_component"
TOLERANCE = 1e-6

# -- reading the judge --------------------------------------------------------------------------------

_NUM = r"(\d+(?:\.\d+)?)"
_COMPONENT_RE = re.compile(rf"component\s*#?\s*(\d+)\s*(?:\([^)]*\))?\s*[:=]\s*{_NUM}\s*/\s*{_NUM}", re.I)
_TOTAL_RE = re.compile(rf"total(?:\s+score)?\s*[:=]\s*{_NUM}(?:\s*/\s*{_NUM})?", re.I)


def _number(value: Any, where: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise JudgeAnswerError(f"{where}: expected a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise JudgeAnswerError(f"{where}: expected a number, got {value!r}")
    return float(value)


def _from_json(data: dict[str, Any]) -> tuple[dict[int, tuple[float, float | None]], Any, Any]:
    """{component: (score, stated maximum)}, the total and its stated maximum, from our JSON schema."""
    entries = data["components"]
    if not isinstance(entries, list):
        raise JudgeAnswerError("'components' must be a list")
    found: dict[int, tuple[float, float | None]] = {}
    for pos, entry in enumerate(entries, 1):
        if isinstance(entry, dict):
            index = int(_number(entry.get("component", pos), f"component {pos} number"))
            if "score" not in entry:
                raise JudgeAnswerError(f"component {index} has no 'score'")
            limit = entry.get("max", entry.get("weight"))
            found_limit = None if limit is None else _number(limit, f"component {index} max")
            value = (_number(entry["score"], f"component {index} score"), found_limit)
        else:
            index, value = pos, (_number(entry, f"component {pos} score"), None)
        if index in found:
            raise JudgeAnswerError(f"component {index} is graded twice")
        found[index] = value
    return found, data.get("total", data.get("total_score")), data.get("max_total")


def _from_flat(data: dict[str, Any]) -> tuple[dict[int, tuple[float, float | None]], Any, Any]:
    """The same from the structured-output schema: {"component_1": x, ..., "total": z}."""
    found: dict[int, tuple[float, float | None]] = {
        int(k.rsplit("_", 1)[1]): (_number(v, k), None) for k, v in data.items() if re.fullmatch(r"component_\d+", k)}
    return found, data.get("total"), None


def _from_text(raw: str) -> tuple[dict[int, tuple[float, float | None]], Any, Any]:
    """The same from the official text form: 'score of component k: x/y, ..., total score: z/10'."""
    found: dict[int, tuple[float, float | None]] = {}
    for m in _COMPONENT_RE.finditer(raw):
        index, value = int(m.group(1)), (float(m.group(2)), float(m.group(3)))
        if index in found and found[index] != value:  # the explanation may repeat a grade, never change it
            raise JudgeAnswerError(f"component {index} is given two different grades")
        found[index] = value
    if not found:
        raise JudgeAnswerError("no JSON 'components' and no 'component k: x/y' grades in the judge's answer")
    totals = {(float(m.group(1)), None if m.group(2) is None else float(m.group(2))) for m in _TOTAL_RE.finditer(raw)}
    if len({t for t, _ in totals}) > 1:
        raise JudgeAnswerError(f"several different totals: {sorted(t for t, _ in totals)}")
    total, total_max = next(iter(totals)) if totals else (None, None)
    return found, total, total_max


def parse_mia(raw: str, weights: list[float]) -> list[float]:
    """One score per component, in order, each within 0..weight; the stated total must be their sum."""
    n = len(weights)
    try:
        data: dict[str, Any] | None = extract_json(raw)
    except JudgeAnswerError:
        data = None
    if data is not None and "components" in data:
        found, total, total_den = _from_json(data)
    elif data is not None and any(re.fullmatch(r"component_\d+", k) for k in data):
        found, total, total_den = _from_flat(data)
    else:
        found, total, total_den = _from_text(raw)
    missing = [k for k in range(1, n + 1) if k not in found]
    extra = sorted(k for k in found if not 1 <= k <= n)
    if missing or extra:
        raise JudgeAnswerError(f"expected grades for components 1..{n}; missing {missing}, unexpected {extra}")
    scores = []
    for k in range(1, n + 1):
        value, limit = found[k]
        weight = weights[k - 1]
        if limit is not None and abs(limit - weight) > TOLERANCE:
            raise JudgeAnswerError(f"component {k} is graded out of {limit:g}, but its weight is {weight:g}")
        if not -TOLERANCE <= value <= weight + TOLERANCE:
            raise JudgeAnswerError(f"component {k} got {value:g}, outside 0..{weight:g}")
        scores.append(value)
    if total is None:
        raise JudgeAnswerError("no total score")
    total = _number(total, "total")
    if abs(total - sum(scores)) > TOLERANCE:
        raise JudgeAnswerError(f"total {total:g} is not the sum of the component scores ({sum(scores):g})")
    if total_den is not None:
        den = _number(total_den, "total's maximum")
        if abs(den - sum(weights)) > TOLERANCE and abs(den - 10) > TOLERANCE:
            raise JudgeAnswerError(f"total is out of {den:g}, but the weights sum to {sum(weights):g}")
    return scores


def _fake(request: JudgeRequest, hit: bool) -> str:
    weights = request.extra["weights"]
    scores = [w if hit else 0 for w in weights]
    return json.dumps({"components": [{"component": i, "score": s, "max": w, "reason": "fake"}
                                      for i, (s, w) in enumerate(zip(scores, weights), 1)],
                       "total": sum(scores), "max_total": sum(weights)})


def _schema(request: JudgeRequest) -> dict[str, Any]:
    """Each component's grade within 0..its weight, then the total."""
    grades = {f"component_{i}": {"type": "number", "minimum": 0, "maximum": w}
              for i, w in enumerate(request.extra["weights"], 1)}
    return object_schema("mia_component_grades", {"explanation": {"type": "string"}, **grades,
                                                  "total": {"type": "number"}})


COMPONENT_GRADER = Role(ROLE, lambda raw, r: parse_mia(raw, r.extra["weights"]), _fake,
                        placeholders=("instruction", "components", "response"), sees_media=True, schema=_schema)


# -- scoring ------------------------------------------------------------------------------------------

def format_components(components: list[str], weights: list[float], types: list[str]) -> str:
    return "\n".join(f"{i}. ({t}; worth {w:g} points) {c}"
                     for i, (c, w, t) in enumerate(zip(components, weights, types), 1))


class MIAScorer(ScorerBase):
    name = "mia"
    judge_roles = (COMPONENT_GRADER,)

    def skip_reason(self, item: Item, prediction: Prediction) -> str:
        return ""  # anycap_v1's "None" rule belongs to the AnyCapEval scripts, not to MIA-Bench

    def request(self, item: Item, prediction: Prediction, template: Template) -> JudgeRequest:
        weights = item.extra["weights"]
        prompt = template.render(instruction=item.instruction, response=prediction.caption,
                                 components=format_components(item.extra["components"], weights, item.extra["types"]),
                                 max_total=f"{sum(weights):g}")
        return JudgeRequest(role=ROLE, rules=COMPONENT_GRADER, prompt=prompt, caption=prediction.caption,
                            media_path=item.media_path, instruction_type=item.instruction_type, modality="image",
                            extra={"weights": weights})

    def score(self, item: Item, prediction: Prediction, judgments: list[Judgment]) -> Score:
        failed = self.unscored(item, prediction, judgments)
        if failed:  # keep the component types, so each type's column counts its failed items
            failed.metrics["types"] = list(item.extra["types"])
            return failed
        weights, scores = item.extra["weights"], [float(s) for s in judgments[0].value]
        if len(scores) != len(weights):  # the parser checks this; never score a mismatch
            raise ValueError(f"{item.task}/{item.id}: {len(scores)} grades for {len(weights)} components")
        return Score(item.task, item.id, item.dimension, OK, metrics={
            "types": list(item.extra["types"]), "total": sum(scores), "max_total": sum(weights),
            "total_pct": 100 * sum(scores) / sum(weights),
            "components": [{"type": t, "score": s, "weight": w, "pct": 100 * s / w}
                           for t, s, w in zip(item.extra["types"], scores, weights)],
        })

    def ratios(self) -> dict[str, Ratio]:
        return {"score": Ratio(lambda m: m["total_pct"], lambda m: 1.0, average="micro")}

    def aggregate(self, scores: list[Score], dims_order: list[str]) -> dict[str, Any]:
        ok = [s for s in scores if s.status == OK]
        present = {t for s in scores for t in s.metrics.get("types", [])}
        types = [t for t in dims_order if t in present] + sorted(present - set(dims_order))
        groups: dict[str, Sequence[np.ndarray]] = {}
        for t in types:  # per item: the sum of its components' pct of this type, and how many there are
            rows = [[c["pct"] for c in s.metrics["components"] if c["type"] == t] for s in ok]
            groups[t] = [np.array([sum(r) for r in rows if r]), np.array([len(r) for r in rows if r], dtype=float)]
        groups["__total__"] = [np.array([s.metrics["total_pct"] for s in ok]), np.ones(len(ok))]
        with np.errstate(divide="ignore", invalid="ignore"):
            reps = bootstrap_groups(groups, lambda sums: sums[:, 0] / sums[:, 1], seed=SEED)
            points = {g: cols[0].sum() / cols[1].sum() if cols[1].sum() else None for g, cols in groups.items()}
        dimensions = {t: {"score": metric(points[t], reps[t]), **counts([s for s in scores if t in s.metrics["types"]]),
                          "n_components": int(groups[t][1].sum())} for t in types}
        average = {"score": metric(points["__total__"], reps["__total__"]), **counts(scores)}
        return {"dimensions": dimensions, "average": average, "main_metric": "score",
                "benchmark_protocol": self.options.get("protocol", "")}
