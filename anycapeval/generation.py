"""The generation stage: captions from a system, in item order, cached as each completes.

A cacheable system's caption is keyed by the system's identity, the instruction and the media's
content hash, so a re-run asks for nothing and a killed run resumes with the unfinished items. A
missing or unreadable media file is that item's `generation_error`, never the run's.
"""

from __future__ import annotations

import asyncio

from rich.progress import Progress

from . import batch
from .media import MediaError, media_hash
from .store import Cache, content_key
from .systems import SystemBase
from .types import GENERATION_ERROR, OK, AnyCapError, Item, Prediction

# provenance kept with a cached caption (batch_id: made through the Batch API, so priced at its rate)
SERVED = ("served_model", "system_fingerprint", "finish_reason", "batch_id")


def generation_key(system: SystemBase, item: Item) -> str:
    """Cache key: the system's identity + the instruction + the media's content hash. Raises
    MediaError when the system needs the media and it is absent."""
    needs_media = system.needs_media
    if item.media_path is None and needs_media:
        raise MediaError(item.media, "not found (pass --media-dir DIR or --media-dir "
                         f"{item.modality}=DIR)")
    identity = system.identity or {"spec": system.spec, "base": system.base_spec}
    media = media_hash(item.media_path) if item.media_path is not None and needs_media else None
    return content_key("generation", identity, item.instruction, media)


async def generate(system: SystemBase, items: list[Item], cache: Cache, progress: Progress,
                   concurrency: int) -> list[Prediction]:
    """Predictions in item order. Cacheable systems' captions come from the cache when there, and
    each new one is cached as it completes, so a killed run resumes where it stopped."""
    bar = progress.add_task(f"generate {items[0].task if items else ''}", total=len(items))
    out: dict[int, Prediction] = {}
    keys: dict[int, str] = {}
    if system.cacheable:
        for n, item in enumerate(items):
            try:
                keys[n] = generation_key(system, item)
            except MediaError as exc:
                out[n] = Prediction(item.task, item.id, system.spec, "", GENERATION_ERROR, str(exc))
        cached = cache.get_many(list(dict.fromkeys(keys.values())))
        for n, key in keys.items():
            if key in cached:
                hit = cached[key]
                out[n] = Prediction(items[n].task, items[n].id, system.spec, hit["caption"], OK,
                                    usage=hit.get("usage", {}), **{k: hit.get(k, "") for k in SERVED})
    todo = [n for n in range(len(items)) if n not in out]
    progress.update(bar, completed=len(out))

    def done(n: int, prediction: Prediction) -> None:
        out[n] = prediction
        if n in keys and prediction.status == OK:
            cache.put(keys[n], "generation", {"caption": prediction.caption, "usage": prediction.usage,
                                              **{k: getattr(prediction, k) for k in SERVED}})
        progress.advance(bar)

    async def one(n: int) -> Prediction:
        try:
            return await system.generate(items[n])
        except MediaError as exc:  # a system that let its media error escape: still this item's failure
            return Prediction(items[n].task, items[n].id, system.spec, "", GENERATION_ERROR, str(exc))

    if system.batch_api and todo:  # the OpenAI Batch API (anycapeval.batch)
        await batch.generate_part(system, items, {n: keys[n] for n in todo}, done, cache, progress)
    elif system.batch_size:
        size = max(1, int(system.batch_size))
        for start in range(0, len(todo), size):
            chunk = todo[start:start + size]
            for n, prediction in zip(chunk, await system.generate_batch([items[n] for n in chunk])):
                done(n, prediction)
    else:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in todo:
            queue.put_nowait(n)

        async def worker() -> None:
            while not queue.empty():
                n = queue.get_nowait()
                done(n, await one(n))

        width = system.concurrency or concurrency
        await asyncio.gather(*(worker() for _ in range(min(width, len(todo)) or 1)))
    return [out[n] for n in range(len(items))]


def shard_block(total: int, shard: tuple[int, int] | None) -> tuple[int, int, int]:
    """(start, stop, total) of the k-th of n contiguous, near-equal blocks of a task's items.
    Contiguous blocks keep the item order, so merged shards bootstrap exactly like one run."""
    if shard is None:
        return 0, total, total
    k, n = shard
    if not 1 <= k <= n:
        raise AnyCapError(f"--shard {k}/{n}: K must be between 1 and N")
    if n > total:
        raise AnyCapError(f"--shard {k}/{n}: a task has only {total} items; use at most {total} shards")
    return (k - 1) * total // n, k * total // n, total
