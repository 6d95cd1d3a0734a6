"""What the runner may ask of any judge, with the default for each optional ability.

A judge subclasses JudgeBase and overrides what it has: the runner reads these attributes directly
and never probes for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..types import JudgeRequest, Judgment


class JudgeBase:
    spec: str  # the label in every result row, e.g. "openai:gpt-4o-2024-08-06"
    approximation: bool = False  # an approximation of the paper's judge (marked in every summary)
    supports_media: bool = False  # can be shown the image / video frames / audio
    model: str | None = None  # API judges: the model, whose announced shutdown date is warned about
    roles: tuple[str, ...] | None = None  # the judge roles it can act as; None: any role
    batch_size: int | None = None  # None: one request per `judge` call, many in flight; N: `judge_batch` of N
    notes: Sequence[str] = ()  # warnings about how it was set up, shown once and kept in the summary
    batch_api: bool = False  # can go through the OpenAI Batch API (--judge-batch): `batch_work`, `batch_client`
    batch_client: Any = None  # the ChatClient whose server takes the batches

    @property
    def identity(self) -> dict[str, Any]:
        """What makes two judgments interchangeable (part of every judgment's cache key)."""
        return {"spec": self.spec}

    def settings(self) -> dict[str, Any]:
        """Recorded in the run's manifest."""
        return dict(self.identity)

    async def judge(self, request: JudgeRequest) -> Judgment:
        raise NotImplementedError

    async def judge_batch(self, requests: list[JudgeRequest]) -> list[Judgment]:
        """Judgments in request order; called with `batch_size` requests when that is set."""
        return [await self.judge(r) for r in requests]

    def batch_work(self, key: str, request: JudgeRequest) -> Any:
        """An `anycapeval.batch.Work` for this request, or its Judgment at once (when batch_api)."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release clients bound to the event loop; called once when the run ends."""

