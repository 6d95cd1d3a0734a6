"""MIA-Bench: does a response follow each weighted component of a multi-part image instruction?

The judge grades every component against its weight (the weights of an item sum to 10, except items
241 = [4, 2, 2] and 247 = [4, 4], which sum to 8) and states the total. An answer with a missing or
extra component, a component above its weight, or a total that is not the sum of the components is a
parse error (retried, then a judge_error), never a score. Per item: total / weight sum × 100, so a
perfect answer is 100 on every item. Per component type (describe, mention, length_limit, ...): the
mean over all components of that type of score / weight × 100. Task: the mean item total (0–100).

Images: `--media-dir` (matched by `image_name`, the URL's file name or `<index>.<ext>`), then the
`datasets` copy of MIA-Bench at the task's pinned revision, cached (mia_images.py); otherwise
`media_path=None` (the judge then sees text only, with a warning).
"""

from __future__ import annotations

import json
import math
import re
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..data import media_index
from ..judges.parse import JudgeAnswerError, extract_json
from ..judges.roles import Role, object_schema, register_role
from ..prompts import Template
from ..stats import SEED, bootstrap_groups, metric
from ..types import OK, AnyCapError, InputError, Item, JudgeRequest, Judgment, Prediction, Score
from .aggregate import Ratio, counts
from .base import ScorerBase
from .mia_images import DatasetUnavailable, dataset_images

DATA_FILE = "instruction_benchmark_all.json"
ROLE = "mia_component"
TOLERANCE = 1e-6
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")

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


register_role(Role(ROLE, lambda raw, r: parse_mia(raw, r.extra["weights"]), _fake,
                   placeholders=("instruction", "components", "response"), sees_media=True, schema=_schema))


# -- reading the benchmark ----------------------------------------------------------------------------

def _find_data_file(task: Any, data_dir: str | None) -> Path:
    name = task.config.data_file or DATA_FILE
    if not data_dir:
        raise AnyCapError(f"task {task.name}: pass --data-dir, the folder holding {name} (the MIA-Bench release)")
    root = Path(data_dir).expanduser()
    if root.is_file():
        return root
    if (root / name).is_file():
        return root / name
    found = sorted(root.rglob(name)) if root.is_dir() else []
    if not found:
        raise AnyCapError(f"task {task.name}: {name} not found under {root}")
    return found[0]


def _url_name(url: str) -> str:
    return Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name


def _local_names(index: int, record: dict[str, Any]) -> list[str]:
    names = [str(record["image_name"])] if record.get("image_name") else []
    names.append(_url_name(record["image"]))
    names += [f"{index}{suffix}" for suffix in IMAGE_SUFFIXES]
    return [n for n in names if n]


def resolve_images(records: list[dict[str, Any]], media_dir: str | None,
                   options: dict[str, Any]) -> list[Path | None]:
    """`--media-dir` files first (by image_name, the URL's file name or `<index>.<ext>`); the rest from
    the `datasets` copy of MIA-Bench (mia_images.py). Without either, None: judged text-only."""
    local = media_index(Path(media_dir).resolve(), "image") if media_dir else {}
    paths: list[Path | None] = [next((local[n] for n in _local_names(i, r) if n in local), None)
                                for i, r in enumerate(records)]
    if all(paths) or not options.get("hf_dataset", True):
        return paths
    try:
        from_dataset = dataset_images(records, options)
    except DatasetUnavailable:
        return paths
    return [p or d for p, d in zip(paths, from_dataset)]


def _check(record: Any, where: str) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise InputError(where, "<record>", "expected a JSON object")
    for name, kind in (("image", str), ("instruction", str), ("components", list), ("component_weight", list),
                       ("component_type", list)):
        if not isinstance(record.get(name), kind):
            raise InputError(where, name, f"missing or not a {kind.__name__}")
    n = len(record["components"])
    if n == 0:
        raise InputError(where, "components", "empty")
    for name in ("component_weight", "component_type"):
        if len(record[name]) != n:
            raise InputError(where, name, f"{len(record[name])} entries for {n} components")
    weights = record["component_weight"]
    if not all(isinstance(w, (int, float)) and not isinstance(w, bool) and w > 0 for w in weights):
        raise InputError(where, "component_weight", f"weights must be positive numbers, got {weights}")
    return record


def load_mia_items(task: Any, data_dir: str | None, media_dir: str | None) -> list[Item]:
    path = _find_data_file(task, data_dir)
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}", "<file>", f"not valid JSON ({exc.msg})") from None
    if not isinstance(records, list):
        raise InputError(str(path), "<file>", "expected a JSON array of instructions")
    records = [_check(r, f"{path}[{i}]") for i, r in enumerate(records)]
    options = task.config.options
    images = resolve_images(records, media_dir, options)
    items = []
    for index, (record, image) in enumerate(zip(records, images)):
        weights = [float(w) for w in record["component_weight"]]
        items.append(Item(
            task=task.name, id=str(index), modality="image", instruction=record["instruction"], reference="",
            instruction_type=str(record.get("type", "")), dimension="all", length_constraint="",
            media=record["image"], media_path=image, source=f"{path}[{index}]",
            extra={"components": [str(c) for c in record["components"]], "weights": weights,
                   "types": [str(t) for t in record["component_type"]]},
        ))
    return items


# -- scoring ------------------------------------------------------------------------------------------

def format_components(components: list[str], weights: list[float], types: list[str]) -> str:
    return "\n".join(f"{i}. ({t}; worth {w:g} points) {c}"
                     for i, (c, w, t) in enumerate(zip(components, weights, types), 1))


class MIAScorer(ScorerBase):
    name = "mia"
    roles = (ROLE,)
    load_items = staticmethod(load_mia_items)

    def skip_reason(self, item: Item, prediction: Prediction) -> str:
        return ""  # anycap_v1's "None" rule belongs to the AnyCapEval scripts, not to MIA-Bench

    def request(self, item: Item, prediction: Prediction, template: Template) -> JudgeRequest:
        weights = item.extra["weights"]
        prompt = template.render(instruction=item.instruction, response=prediction.caption,
                                 components=format_components(item.extra["components"], weights, item.extra["types"]),
                                 max_total=f"{sum(weights):g}")
        return JudgeRequest(role=ROLE, prompt=prompt, caption=prediction.caption, media_path=item.media_path,
                            instruction_type=item.instruction_type, modality="image", extra={"weights": weights})

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
