"""Sending many judge requests for a study: batched where the judge batches (offline), otherwise a
bounded pool of workers; through the SQLite cache when one is given (correlation runs re-use every
judgment), around it when not (judge checks need fresh calls)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..judges import JudgeBase
from ..media import media_hash
from ..store import Cache, content_key
from ..types import OK, JudgeRequest, Judgment

console = Console(stderr=True)


def request_key(judge: JudgeBase, request: JudgeRequest) -> str:
    """The runner's cache key for a judgment (same judge identity, role, prompt and media)."""
    media = media_hash(request.media_path) if request.media_path else None
    return content_key("judgment", judge.identity, request.role, request.prompt, media)


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=True)


async def _judge_all(judge: JudgeBase, requests: Sequence[JudgeRequest], concurrency: int,
                     progress: Progress, label: str) -> list[Judgment]:
    bar = progress.add_task(label, total=len(requests))
    out: list[Judgment | None] = [None] * len(requests)
    if judge.batch_size:
        size = judge.batch_size
        for start in range(0, len(requests), size):
            for i, judgment in enumerate(await judge.judge_batch(list(requests[start:start + size])), start):
                out[i] = judgment
            progress.advance(bar, min(size, len(requests) - start))
    else:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(len(requests)):
            queue.put_nowait(i)

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                out[i] = await judge.judge(requests[i])
                progress.advance(bar)

        await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(requests))))))
    await judge.aclose()  # the client is bound to this event loop
    return [j for j in out if j is not None]


def judge_requests(judge: JudgeBase, requests: Sequence[JudgeRequest], *, cache: Cache | None = None,
                   concurrency: int = 16, label: str = "judge") -> list[Judgment]:
    """Judgments in request order. With a cache: cached ones are re-used and new successes stored."""
    keys = [request_key(judge, r) for r in requests] if cache is not None else []
    found: dict[str, Judgment] = {}
    if cache is not None:
        found = {k: Judgment(**v) for k, v in cache.get_many(list(dict.fromkeys(keys))).items()}
    todo = [i for i in range(len(requests)) if cache is None or keys[i] not in found]
    unique: dict[str, int] = {}
    if cache is not None:  # the same request twice is judged once
        for i in todo:
            unique.setdefault(keys[i], i)
        todo = list(unique.values())
    with progress_bar() as progress:
        fresh = asyncio.run(_judge_all(judge, [requests[i] for i in todo], concurrency, progress, label))
    if cache is None:
        return fresh
    for i, judgment in zip(todo, fresh):
        found[keys[i]] = judgment
        if judgment.status == OK:
            cache.put(keys[i], "judgment", judgment.to_dict())
    return [found[k] for k in keys]
