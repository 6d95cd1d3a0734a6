"""Reading judge answers. Anything that is not exactly one valid decision per key point (content) or
one whole number 0–4 (style) is a JudgeAnswerError — a retry, then a judge_error, never a score.

Accepted content forms:
  ours:     {"decisions": [{"key_point": 1, "score": 1, "reason": "..."}, ...]}
  official: {"caption_evaluation": {"key_points_scores": {"key_point_1": 1, ...}, "total_score": n, ...}}
  schema:   {"key_point_1": 1, "key_point_2": 0, ...}  (what structured output asks for)
Accepted style form (ours and official): {"score": n, "reason": "..."}
JSON may be wrapped in a markdown fence or surrounded by prose.
"""

from __future__ import annotations

import json
import re
from typing import Any


class JudgeAnswerError(ValueError):
    pass


_FENCE_RE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def extract_json(raw: str) -> dict[str, Any]:
    text = raw.strip()
    fenced = _FENCE_RE.search(text)
    candidates = [fenced.group(1)] if fenced else []
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        candidates.append(text[start:end + 1])
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    raise JudgeAnswerError("no JSON object in the judge's answer")


def _binary(value: Any, where: str) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return int(value)
    if isinstance(value, str) and value.strip() in ("0", "1"):
        return int(value.strip())
    raise JudgeAnswerError(f"{where}: expected 0 or 1, got {value!r}")


def _trailing_int(key: str) -> int | None:
    m = re.search(r"(\d+)\s*$", key)
    return int(m.group(1)) if m else None


def _numbered(scores: dict[str, Any], where: str) -> list[int]:
    """0/1 decisions from keys numbered 1..n (in number order when every key ends in a number)."""
    keys = list(scores)
    numbers = [_trailing_int(k) for k in keys]
    if all(n is not None for n in numbers):
        if sorted(numbers) != list(range(1, len(keys) + 1)):  # type: ignore[type-var]
            raise JudgeAnswerError(f"{where} keys are not numbered 1..{len(keys)}: {keys}")
        keys = [k for _, k in sorted(zip(numbers, keys))]  # type: ignore[type-var]
    return [_binary(scores[k], f"{where}.{k}") for k in keys]


def parse_content(raw: str, n_key_points: int) -> list[int]:
    data = extract_json(raw)
    if "decisions" in data:
        entries = data["decisions"]
        if not isinstance(entries, list):
            raise JudgeAnswerError("'decisions' must be a list")
        decisions = []
        for i, entry in enumerate(entries, 1):
            if isinstance(entry, dict):
                if "key_point" in entry and entry["key_point"] != i and str(entry["key_point"]) != str(i):
                    raise JudgeAnswerError(f"decision {i} is numbered {entry['key_point']!r}: out of order")
                if "score" not in entry:
                    raise JudgeAnswerError(f"decision {i} has no 'score'")
                decisions.append(_binary(entry["score"], f"decision {i}"))
            else:
                decisions.append(_binary(entry, f"decision {i}"))
    elif isinstance(data.get("caption_evaluation"), dict):
        evaluation = data["caption_evaluation"]
        scores = evaluation.get("key_points_scores")
        if not isinstance(scores, dict):
            raise JudgeAnswerError("'caption_evaluation.key_points_scores' must be an object")
        decisions = _numbered(scores, "key_points_scores")
        total = evaluation.get("total_score")
        if total is not None and (not isinstance(total, (int, float)) or total != sum(decisions)):
            raise JudgeAnswerError(f"total_score {total!r} is not the sum of the key-point scores ({sum(decisions)})")
    elif data and all(re.fullmatch(r"key_point_\d+", k) for k in data):
        decisions = _numbered(data, "answer")
    else:
        raise JudgeAnswerError("expected 'decisions', 'caption_evaluation' or 'key_point_N' keys in the judge's answer")
    if len(decisions) != n_key_points:
        raise JudgeAnswerError(f"{len(decisions)} decisions for {n_key_points} key points")
    return decisions


def parse_style(raw: str) -> int:
    data = extract_json(raw)
    if "score" not in data:
        raise JudgeAnswerError("no 'score' in the judge's answer")
    value = data["score"]
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise JudgeAnswerError(f"score must be a whole number, got {value!r}")
    if not 0 <= value <= 4:
        raise JudgeAnswerError(f"score {value} is outside 0-4")
    return int(value)


def parse_answer(role: str, raw: str, n_key_points: int) -> Any:
    return parse_content(raw, n_key_points) if role == "content" else parse_style(raw)
