"""What the runner may ask of any system under test, with the default for each optional ability.

A system subclasses SystemBase and overrides what it has; the generation stage and the runner read
these attributes directly and never probe for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..types import Item, Prediction


class SystemBase:
    spec: str  # the label in every result row, e.g. "openai:gpt-4o-2024-08-06"
    cacheable: bool = True  # worth caching generations (a model call), or instant (a file, the reference)
    needs_media: bool = True  # its captions depend on the media (then the media's hash is in the cache key)
    batch_size: int | None = None  # None: one item per `generate` call, many in flight; N: `generate_batch` of N
    concurrency: int | None = None  # items in flight at most; None: --generation-concurrency
    base: SystemBase | None = None  # acm: the system whose captions it refines
    base_spec: str | None = None
    notes: Sequence[str] = ()  # warnings about how it was set up, shown once and kept in the summary
    batch_api: bool = False  # generates through the OpenAI Batch API: `batch_work`, `batch_client`, `batch_retry`
    batch_client: Any = None  # the ChatClient whose server takes the batches
    batch_retry: str = "online"  # failed batch lines: asked online, or in follow-up batches ("batch")

    @property
    def identity(self) -> dict[str, Any] | None:
        """What makes two generations interchangeable (the cache key); None: the spec (and base spec) do."""
        return None

    def settings(self) -> dict[str, Any] | None:
        """Recorded in the run's manifest; None: nothing beyond the spec."""
        return None

    async def generate(self, item: Item) -> Prediction:
        raise NotImplementedError

    async def generate_batch(self, items: list[Item]) -> list[Prediction]:
        """Predictions in item order; called with `batch_size` items when that is set."""
        return [await self.generate(item) for item in items]

    def batch_work(self, key: str, item: Item) -> Any:
        """An `anycapeval.batch.Work` for this item, or its Prediction at once (when batch_api)."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release clients and models bound to the event loop; called once when the run ends."""
