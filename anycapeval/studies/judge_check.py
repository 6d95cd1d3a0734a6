"""`anycapeval judge-check`: is a judge stable, self-consistent and free of length bias?

On each task's reference captions (the `reference` system), with the task's own scorer and prompt:
1. Repeatability: the same requests judged K times with fresh calls (no cache; the OpenAI-compatible
   judge gets seed S, S+1, ...): share of items whose answer is identical in every repeat, the mean
   per-item standard deviation of the score (content: matched key points; style: grade), and the
   share of judgments that failed because the answer could not be read (parse failures).
2. Self-consistency (content tasks): key-point recall of each reference against its own key points
   (should be ~1) and against the key points of another item of the same dimension about different
   media (should be ~0). The other item is the one half-way round the dimension's item list, moving
   on until the media differ, so the pairing is fixed.
3. Length bias (style tasks): the grade shift when the reference is replaced by a longer paraphrase
   with the same meaning, built by fixed rules (`longer_paraphrase`): an "In this image/video/audio
   clip," opener and a table of wordier equivalents ("next to" → "right next to", "near" → "close
   to", ...). The raw judge grade is compared, before the scorer's length caps.
Style requests are sent text-only (the check is about the judge's reading of texts).
"""

from __future__ import annotations

import re
import statistics
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..data import load_items
from ..judges import make_judge
from ..prompts import Template, load_template
from ..registry import resolve_tasks
from ..scorers import get_scorer
from ..store import write_atomic, write_json_atomic
from ..task_config import Task, prompt_path
from ..types import OK, AnyCapError, Item, JudgeRequest, Judgment, Prediction
from .judging import judge_requests

# Wordier phrasings with the same meaning (whole words, case kept for the first letter).
_EXPANSIONS = (("next to", "right next to"), ("near", "close to"), ("many", "a great many"), ("big", "large in size"),
               ("small", "small in size"), ("while", "at the same time as"), ("shows", "clearly shows"),
               ("there is", "there can be seen"), ("there are", "there can be seen"), ("appears", "seems to appear"),
               ("also", "in addition also"), ("very", "really very"))
_OPENER = {"image": "In this image,", "video": "In this video,", "audio": "In this audio clip,"}


def longer_paraphrase(caption: str, modality: str) -> str:
    """A deterministic, longer rewording of `caption` that says the same thing."""
    text = caption.strip()
    for short, long in _EXPANSIONS:
        text = re.sub(rf"\b{short}\b", long, text)
        text = re.sub(rf"\b{short.capitalize()}\b", long.capitalize(), text)
    opener = _OPENER.get(modality, "In this piece of media,")
    return f"{opener} {text[:1].lower()}{text[1:]}" if text else opener


def other_items(items: list[Item]) -> dict[str, Item]:
    """For each item, another item of the same dimension about different media (see module docstring)."""
    by_dim: dict[str, list[Item]] = {}
    for item in items:
        by_dim.setdefault(item.dimension, []).append(item)
    out = {}
    for group in by_dim.values():
        n = len(group)
        for i, item in enumerate(group):
            for step in range(n // 2, n // 2 + n):
                candidate = group[(i + step) % n]
                if candidate.id != item.id and (candidate.media != item.media or candidate.media is None):
                    out[item.id] = candidate
                    break
    return out


def _value(judgment: Judgment) -> float | None:
    if judgment.status != OK:
        return None
    return float(sum(judgment.value)) if isinstance(judgment.value, list) else float(judgment.value)


def _parse_failure(judgment: Judgment) -> bool:
    return judgment.status != OK and "invalid answer" in judgment.error


class Checker:
    def __init__(self, judge_spec: str, repeats: int, seed: int, judge_args: dict[str, Any]):
        self.spec, self.repeats, self.seed, self.args = judge_spec, repeats, seed, judge_args

    def judge(self, requests: list[JudgeRequest], repeat: int, label: str) -> list[Judgment]:
        options = dict(self.args.get("options", {}))
        if self.spec.startswith("openai"):
            options["seed"] = self.seed + repeat
        judge = make_judge(self.spec, base_url=self.args.get("base_url"), key_file=self.args.get("key_file"),
                           concurrency=self.args.get("concurrency", 16), **options)
        return judge_requests(judge, requests, cache=None, concurrency=self.args.get("concurrency", 16), label=label)

    def check_task(self, task: Task, items: list[Item]) -> dict[str, Any]:
        cfg = task.config
        scorer = get_scorer(cfg.scorer, "default", cfg.modality)
        if len(scorer.roles) != 1 or scorer.roles[0] not in ("content", "style"):
            raise AnyCapError(f"task {task.name}: judge-check covers the AnyCapEval content and style judges only")
        role = scorer.roles[0]
        template = load_template(role, prompt_path(task, role), scorer.role(role).placeholders)
        items = [i for i in items if role != "content" or i.key_points]

        def build(item: Item, caption: str, key_from: Item | None = None) -> JudgeRequest:
            source = replace(item, key_points=key_from.key_points) if key_from is not None else item
            request = scorer.request(source, Prediction(task.name, item.id, "reference", caption), template)
            return replace(request, media_path=None)

        base = [build(i, i.reference) for i in items]
        runs = [self.judge(base, k, f"{task.name} repeat {k + 1}/{self.repeats}") for k in range(self.repeats)]
        out: dict[str, Any] = {"role": role, "n_items": len(items), "repeats": self.repeats,
                               **self.repeatability(runs)}
        if role == "content":
            out["self_consistency"] = self.self_consistency(task, items, runs[0], template, build)
        else:
            out["length_bias"] = self.length_bias(task, items, runs[0], build)
        return out

    def repeatability(self, runs: list[list[Judgment]]) -> dict[str, Any]:
        n = len(runs[0])
        all_judgments = [j for run in runs for j in run]
        identical, spreads = 0, []
        for i in range(n):
            answers = [run[i].value if run[i].status == OK else None for run in runs]
            identical += all(a is not None and a == answers[0] for a in answers)
            values = [v for v in (_value(run[i]) for run in runs) if v is not None]
            if len(values) >= 2:
                spreads.append(statistics.pstdev(values))
        return {"agreement": identical / n if n else None,
                "score_std_mean": float(np.mean(spreads)) if spreads else None,
                "judge_error_rate": sum(j.status != OK for j in all_judgments) / len(all_judgments),
                "parse_failure_rate": sum(_parse_failure(j) for j in all_judgments) / len(all_judgments)}

    def self_consistency(self, task: Task, items: list[Item], own: list[Judgment], template: Template,
                         build: Any) -> dict[str, Any]:
        others = other_items(items)
        paired = [i for i in items if i.id in others]
        crossed = self.judge([build(others[i.id], others[i.id].reference, key_from=i) for i in paired], 0,
                             f"{task.name} other references")
        own_by_id = {i.id: j for i, j in zip(items, own)}

        def recall(pairs: list[tuple[Item, Judgment]]) -> float | None:
            ok = [(i, j) for i, j in pairs if j.status == OK]
            total = sum(len(i.key_points) for i, _ in ok)
            return sum(sum(j.value) for _, j in ok) / total if total else None

        return {"own_reference_recall": recall([(i, own_by_id[i.id]) for i in items]),
                "other_reference_recall": recall(list(zip(paired, crossed))), "n_pairs": len(paired)}

    def length_bias(self, task: Task, items: list[Item], original: list[Judgment], build: Any) -> dict[str, Any]:
        longer = [longer_paraphrase(i.reference, i.modality) for i in items]
        judged = self.judge([build(i, text) for i, text in zip(items, longer)], 0, f"{task.name} paraphrases")
        shifts = [float(b.value) - float(a.value) for a, b in zip(original, judged) if a.status == OK and
                  b.status == OK]
        growth = [len(t.split()) / max(len(i.reference.split()), 1) for i, t in zip(items, longer)]
        return {"mean_grade_shift": float(np.mean(shifts)) if shifts else None,
                "share_higher": float(np.mean([s > 0 for s in shifts])) if shifts else None,
                "share_lower": float(np.mean([s < 0 for s in shifts])) if shifts else None,
                "mean_length_ratio": float(np.mean(growth)) if growth else None, "n": len(shifts)}


def run_judge_check(tasks: str, judge_spec: str, output: Path, *, repeats: int = 3, seed: int = 1234,
                    data_dir: str | None = None, limit: int | None = None,
                    judge_args: dict[str, Any] | None = None) -> dict[str, Any]:
    if repeats < 1:
        raise AnyCapError("--repeats must be at least 1")
    checker = Checker(judge_spec, repeats, seed, judge_args or {})
    result: dict[str, Any] = {"judge": judge_spec, "repeats": repeats, "seed": seed, "tasks": {}}
    for task in resolve_tasks(tasks):
        items = load_items(task, data_dir)[:limit] if limit else load_items(task, data_dir)
        result["tasks"][task.name] = checker.check_task(task, items)
    write_json_atomic(output / "judge_check.json", result)
    write_atomic(output / "judge_check.md", markdown(result))
    return result


def _fmt(value: Any, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(result: dict[str, Any]) -> str:
    lines = [f"# Judge check: `{result['judge']}`, {result['repeats']} repeats", "",
             "| task | items | agreement | score std | parse failures | judge errors | own recall | other recall "
             "| length shift (ratio) |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, t in result["tasks"].items():
        sc, lb = t.get("self_consistency", {}), t.get("length_bias", {})
        shift = f"{_fmt(lb.get('mean_grade_shift'), 2)} ({_fmt(lb.get('mean_length_ratio'), 2)}×)" if lb else "–"
        lines.append(f"| {name} | {t['n_items']} | {_fmt(t['agreement'])} | {_fmt(t['score_std_mean'])} | "
                     f"{_fmt(t['parse_failure_rate'])} | {_fmt(t['judge_error_rate'])} | "
                     f"{_fmt(sc.get('own_reference_recall'))} | {_fmt(sc.get('other_reference_recall'))} | {shift} |")
    return "\n".join(lines) + "\n"
