"""`acm:<checkpoint>` over a base system: the base captions, refined by ACM
(docs/design.md, "ACM, the refiner as a system").

The runner builds it as `ACMSystem(checkpoint, base, model_args)`. A base failure stays a failure
(generation_error naming the base); an empty refinement is a generation_error too, never a score.
Weights load on the first refinement, so a fully cached re-run never touches them.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from ..media import MediaError
from ..systems.base import SystemBase
from ..types import GENERATION_ERROR, OK, AnyCapError, Item, Prediction
from .refine import Refiner, RefineRequest, parse_model_args

log = logging.getLogger("anycapeval.acm")


class ACMSystem(SystemBase):
    cacheable = True
    # The runner's cache key is (identity, instruction, media hash): the media hash stands in for the
    # item, so the base caption it refines is pinned by the base's identity (or its file's content).
    needs_media = True

    def __init__(self, checkpoint: str, base: SystemBase, args: dict[str, str]):
        from .model import CONFIG_FILE

        self.checkpoint = checkpoint
        self.base: SystemBase = base
        self.spec = f"acm:{checkpoint}"
        self.base_spec: str = base.spec
        self.options = parse_model_args(args)
        if not (Path(checkpoint) / CONFIG_FILE).is_file():
            raise AnyCapError(f"acm:{checkpoint}: not an ACM checkpoint (no {CONFIG_FILE} in {checkpoint})")
        self.batch_size: int = self.options.get("batch_size", 8)
        self._refiner: Refiner | None = None
        self._lock = asyncio.Lock()  # one refinement at a time on the model

    @property
    def identity(self) -> dict[str, Any]:
        """What makes two refinements interchangeable: the weights' content, the decoding settings and
        the base (a predictions file by its content, since its name says nothing about its captions)."""
        from ..media import media_hash
        from .model import WEIGHTS_FILE

        base_file = getattr(self.base, "path", None)
        return {"kind": "acm", "checkpoint": str(Path(self.checkpoint).resolve()),
                "weights": media_hash(Path(self.checkpoint) / WEIGHTS_FILE),
                "max_new_tokens": self.options.get("max_new_tokens"), "dtype": self.options.get("dtype"),
                "base": self.base.identity or self.base_spec,
                "base_file": media_hash(base_file) if isinstance(base_file, Path) and base_file.is_file() else None}

    def settings(self) -> dict[str, Any]:
        return {**self.identity, "device": self.options.get("device"), "batch_size": self.batch_size}

    def _refine(self, requests: list[RefineRequest]) -> list[str | MediaError]:
        if self._refiner is None:
            self._refiner = Refiner(self.checkpoint, **self.options)
        before = self._refiner.text_only
        captions = self._refiner.refine(requests)
        if self._refiner.text_only > before:
            log.warning("acm: %d item(s) refined text-only (this checkpoint has no encoder for their modality)",
                        self._refiner.text_only - before)
        return captions

    def _finish(self, item: Item, base: Prediction, caption: str | MediaError | None) -> Prediction:
        if base.status != OK:
            return Prediction(item.task, item.id, self.spec, "", GENERATION_ERROR,
                              f"base {self.base_spec}: {base.error or base.status}")
        if isinstance(caption, MediaError):
            return Prediction(item.task, item.id, self.spec, "", GENERATION_ERROR, str(caption))
        if not caption:
            return Prediction(item.task, item.id, self.spec, "", GENERATION_ERROR, "ACM returned an empty caption")
        return Prediction(item.task, item.id, self.spec, caption, OK)

    async def generate(self, item: Item) -> Prediction:
        return (await self.generate_batch([item]))[0]

    async def generate_batch(self, items: list[Item]) -> list[Prediction]:
        base_batch = getattr(self.base, "generate_batch", None)
        bases: list[Prediction] = list(await base_batch(items)) if base_batch is not None else \
            list(await asyncio.gather(*(self.base.generate(i) for i in items)))
        todo = [(n, i, b) for n, (i, b) in enumerate(zip(items, bases)) if b.status == OK]
        requests = [RefineRequest(i.instruction, b.caption, i.modality, i.media_path) for _, i, b in todo]
        refined: dict[int, str | MediaError] = {}
        if requests:
            async with self._lock:
                captions = await asyncio.to_thread(self._refine, requests)
            refined = {n: c for (n, _, _), c in zip(todo, captions)}
        return [self._finish(i, b, refined.get(n)) for n, (i, b) in enumerate(zip(items, bases))]
