"""Judge roles: what a judge is asked to do, how its answer is read, and what the fake judge answers.

`content` (one 0/1 decision per key point) and `style` (a 0–4 grade) are AnyCapEval's roles. A
benchmark's scorer module registers its own roles (e.g. MIA-Bench's component grader) with
`register_role` when it is imported, so every judge reads every role's answers the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..types import AnyCapError, JudgeRequest
from .parse import parse_content, parse_style


@dataclass(frozen=True)
class Role:
    name: str
    parse: Callable[[str, JudgeRequest], Any]  # raw answer -> value; raises JudgeAnswerError
    fake_answer: Callable[[JudgeRequest, bool], str]  # the answer of fake:perfect (True) / fake:zero (False)
    placeholders: tuple[str, ...] = ()  # what a prompt template for this role must contain, as {name}
    sees_media: bool = False  # default for whether the judge is shown the media (a task may override)
    # the JSON schema that pins a valid answer exactly, for servers with structured output (None: free text)
    schema: Callable[[JudgeRequest], dict[str, Any]] | None = None


ROLES: dict[str, Role] = {}


def register_role(role: Role) -> Role:
    ROLES[role.name] = role
    return role


def get_role(name: str) -> Role:
    if name not in ROLES:
        import anycapeval.scorers  # noqa: F401  (benchmark scorers register their roles on import)
    if name not in ROLES:
        raise AnyCapError(f"unknown judge role '{name}'; known: {', '.join(sorted(ROLES))}")
    return ROLES[name]


def parse_for(request: JudgeRequest, raw: str) -> Any:
    return get_role(request.role).parse(raw, request)


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


register_role(Role("content", lambda raw, r: parse_content(raw, len(r.key_points)), _fake_content,
                   placeholders=("key_points", "answer"), schema=_content_schema))
register_role(Role("style", lambda raw, r: parse_style(raw),
                   lambda r, hit: json.dumps({"score": 3 if hit else 0, "reason": "fake"}),
                   placeholders=("caption_type", "reference", "output"), sees_media=True, schema=_style_schema))
