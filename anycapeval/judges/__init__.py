"""Judges: `async judge(request) -> Judgment`, plus `identity` (what makes two judgments
interchangeable, for the cache) and `spec` (the label in every result row).

Specs: `openai:<model-snapshot>` (any OpenAI-compatible server), `offline` (the default: an
approximation on the CPU), `fake:perfect|zero|fail` (tests).
"""

from __future__ import annotations

from typing import Any, Protocol

from ..types import AnyCapError, JudgeRequest, Judgment


class Judge(Protocol):
    spec: str
    approximation: bool
    supports_media: bool

    @property
    def identity(self) -> dict[str, Any]: ...

    def settings(self) -> dict[str, Any]: ...

    async def judge(self, request: JudgeRequest) -> Judgment: ...


def make_judge(spec: str | None, *, base_url: str | None = None, key_file: str | None = None,
               concurrency: int = 16, **options: Any) -> Judge:
    kind, _, arg = (spec or "offline").partition(":")
    if kind == "offline":
        from .offline import OfflineJudge

        return OfflineJudge()
    if kind == "fake":
        from .fake import FakeJudge

        return FakeJudge(arg or "perfect")
    if kind == "openai":
        if not arg:
            raise AnyCapError("--judge openai:<model> needs a model snapshot, e.g. openai:gpt-4o-2024-08-06")
        from .openai_judge import OpenAIJudge, read_api_key

        return OpenAIJudge(arg, base_url=base_url, api_key=read_api_key(key_file, base_url),
                           concurrency=concurrency, **options)
    raise AnyCapError(f"unknown judge '{spec}': use openai:<model>, offline, or fake:perfect|zero|fail")
