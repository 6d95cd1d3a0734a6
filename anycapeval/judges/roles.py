"""AnyCapEval's judge roles, `content` (one 0/1 decision per key point) and `style` (a 0–4 grade),
and the strict JSON schema helper every role's structured-output schema is built with.

A benchmark's scorer defines its own roles next to it (e.g. MIA-Bench's component grader); every
scorer lists its roles as data (`judge_roles`), and every request carries its role (`rules`).
"""

from __future__ import annotations

import json
from typing import Any

from ..types import JudgeRequest, Role
from .parse import parse_content, parse_style


def _fake_content(request: JudgeRequest, hit: bool) -> str:
    decisions = [{"key_point": i, "score": int(hit)} for i in range(1, len(request.key_points) + 1)]
    return json.dumps({"decisions": decisions})


def object_schema(title: str, properties: dict[str, Any]) -> dict[str, Any]:
    """A strict JSON schema: every property required, nothing else allowed (OpenAI's strict mode rules)."""
    return {"title": title, "type": "object", "properties": properties, "required": list(properties),
            "additionalProperties": False}


def _content_schema(request: JudgeRequest) -> dict[str, Any]:
    decision = {"type": "integer", "enum": [0, 1]}
    return object_schema("key_point_decisions", {f"key_point_{i}": decision
                                                 for i in range(1, len(request.key_points) + 1)})


def _style_schema(request: JudgeRequest) -> dict[str, Any]:
    return object_schema("style_grade", {"reason": {"type": "string"},
                                         "score": {"type": "integer", "enum": [0, 1, 2, 3, 4]}})


CONTENT = Role("content", lambda raw, r: parse_content(raw, len(r.key_points)), _fake_content,
               placeholders=("key_points", "answer"), schema=_content_schema)
STYLE = Role("style", lambda raw, r: parse_style(raw),
             lambda r, hit: json.dumps({"score": 3 if hit else 0, "reason": "fake"}),
             placeholders=("caption_type", "reference", "output"), sees_media=True, schema=_style_schema)
