"""A deterministic judge for tests and benchmarks: `fake:perfect` (every key point matched, style 3),
`fake:zero` (nothing matched, style 0) or `fake:fail` (every call fails). Its answers go through the
same parser as a real judge's."""

from __future__ import annotations

from typing import Any

from ..types import JUDGE_ERROR, OK, JudgeRequest, Judgment
from .base import JudgeBase

MODES = ("perfect", "zero", "fail")


class FakeJudge(JudgeBase):
    approximation = False
    supports_media = False
    batch_size = 1024

    def __init__(self, mode: str):
        if mode not in MODES:
            raise ValueError(f"fake judge mode must be one of {', '.join(MODES)}")
        self.mode = mode
        self.spec = f"fake:{mode}"
        self.calls = 0

    @property
    def identity(self) -> dict[str, Any]:
        return {"kind": "fake", "mode": self.mode}

    def settings(self) -> dict[str, Any]:
        return dict(self.identity)

    def _one(self, request: JudgeRequest) -> Judgment:
        self.calls += 1
        if self.mode == "fail":
            return Judgment(JUDGE_ERROR, self.spec, error="fake judge: configured to fail")
        role = request.rules
        if role is None:
            raise ValueError(f"a {request.role} request without its role's rules (JudgeRequest.rules)")
        raw = role.fake_answer(request, self.mode == "perfect")
        return Judgment(OK, self.spec, raw=raw, value=role.parse(raw, request))

    async def judge_batch(self, requests: list[JudgeRequest]) -> list[Judgment]:
        return [self._one(r) for r in requests]

    async def judge(self, request: JudgeRequest) -> Judgment:
        return self._one(request)
