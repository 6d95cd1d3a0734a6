"""The OpenAI Batch API, for judges (`--judge-batch`) and `openai:` systems (`--model-args batch=true`).

Requests not in the cache become JSONL lines (`custom_id` = the cache key, the body exactly as the
chat client would send it online), split to the API's limits, uploaded (purpose `batch`) and submitted
(`/v1/chat/completions`, 24 h). Each batch id, its state and the keys it covers live in the cache's
SQLite file (tables `batches`, `batch_keys`), so a killed run, re-run with the same command, polls the
same batches instead of submitting new ones. Finished batches' output and error files are read back:
each answer is read exactly as an online reply (`ChatClient.read_completion`, the caller's parser).

Lines that failed (an HTTP error, an unreadable answer) follow the retry rules: online (the default,
the chat client's full retries) or in follow-up batches (`retry="batch"`, up to the client's
max_attempts rounds; a truncated answer or a 4xx is not re-sent). Lines a batch never ran because it
expired, was cancelled or failed are the caller's errors ("batch <id> expired; re-run to resubmit"),
never scores and never cached, so a re-run resubmits just those.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Generic, Protocol, TypeVar

from rich.progress import Progress

from .batch_table import BatchTable
from .chat import ChatClient, ChatFatalError, _server_words
from .retry import back_off, is_transient, retry_after_s, transient_status
from .store import Cache
from .types import OK

MAX_REQUESTS = 50_000  # per batch (OpenAI's limit); tests lower these
MAX_FILE_BYTES = 200 * 1024 * 1024  # per input file
ENDPOINT = "/v1/chat/completions"
WINDOW = "24h"
TERMINAL = ("completed", "failed", "expired", "cancelled")
RETRY_MODES = ("online", "batch")
UNRUN_CODES = ("batch_expired", "batch_cancelled")  # an error-file line for a request the batch never ran


def poll_seconds() -> float:
    """Seconds between polls of a batch (ANYCAPEVAL_BATCH_POLL_S, default 30)."""
    return float(os.environ.get("ANYCAPEVAL_BATCH_POLL_S", "30"))


class Outcome(Protocol):  # a Judgment or a Prediction
    @property
    def status(self) -> str: ...

    @property
    def error(self) -> str: ...


T = TypeVar("T", bound=Outcome)


@dataclass
class Work(Generic[T]):
    """One request: its cache key (the line's custom_id), its body (built only when a batch file is
    written, so a run never holds every request's media at once), and how its answer becomes a result."""

    key: str
    body: Callable[[], dict[str, Any]]  # raises Unsendable with the result when the request cannot be built
    read: Callable[[dict[str, Any], str], T]  # (chat completion, batch id) -> result, read as online
    fail: Callable[[str, str], T]  # (error, batch id) -> the caller's error result
    online: Callable[[str], Awaitable[T]]  # (why the line failed) -> the result of asking online


class Unsendable(Exception):
    """The request cannot be built (e.g. its media is unreadable); `result` is its error result."""

    def __init__(self, result: Any):
        super().__init__(getattr(result, "error", str(result)))
        self.result = result


@dataclass
class Line:
    """What one batch did with one request."""

    batch_id: str
    completion: dict[str, Any] | None = None
    error: str = ""
    unrun: bool = False  # the batch ended (expired, cancelled, failed) before running it
    resend: bool = True  # worth sending again
    result: Any = None  # the result already known (a request that could not be built)


def split(lines: Iterable[tuple[str, bytes]]) -> Iterator[list[tuple[str, bytes]]]:
    """Consecutive groups of at most MAX_REQUESTS lines and MAX_FILE_BYTES bytes, made as they are
    consumed (one group's lines in memory at a time)."""
    group: list[tuple[str, bytes]] = []
    size = 0
    for key, data in lines:
        if group and (len(group) >= MAX_REQUESTS or size + len(data) > MAX_FILE_BYTES):
            yield group
            group, size = [], 0
        group.append((key, data))
        size += len(data)
    if group:
        yield group


async def run_part(part: Any, todo: list[tuple[str, Any]], done: Callable[[str, Any], None], cache: Cache, *,
                   retry: str, progress: Progress, label: str, say: Callable[[str], None]) -> None:
    """A judge's requests or a system's items through batches: `part.batch_work(key, subject)` gives a
    Work, or the subject's result at once (e.g. unreadable media); `part.batch_client` is the server."""
    works = []
    for key, subject in todo:
        made = part.batch_work(key, subject)
        if isinstance(made, Work):
            works.append(made)
        else:
            done(key, made)
    if works:
        await run(part.batch_client, cache, works, done, retry=retry, progress=progress, label=label, say=say)


async def generate_part(system: Any, items: list[Any], keys: dict[int, str], done: Callable[[int, Any], None],
                        cache: Cache, progress: Progress) -> None:
    """The generation stage's items {index: cache key} through batches; one line per distinct key."""
    by_key: dict[str, list[int]] = {}
    for n, key in keys.items():
        by_key.setdefault(key, []).append(n)

    def done_key(key: str, prediction: Any) -> None:
        for n in by_key[key]:
            done(n, replace(prediction, task=items[n].task, item_id=items[n].id))

    await run_part(system, [(key, items[ns[0]]) for key, ns in by_key.items()], done_key, cache,
                   retry=system.batch_retry, progress=progress, label=f"generate {items[0].task}",
                   say=lambda message: progress.console.print(f"[yellow]warning:[/yellow] {message}"))


async def run(chat: ChatClient, cache: Cache, works: list[Work[T]], done: Callable[[str, T], None], *,
              retry: str, progress: Progress, label: str, say: Callable[[str], None]) -> None:
    """Every work's result goes to `done` once: from a batch, from the retry rules, or as an error."""
    if retry not in RETRY_MODES:
        raise ValueError(f"batch retry must be one of {RETRY_MODES}, not {retry!r}")
    table = BatchTable(cache)
    pending = {w.key: w for w in works}
    for round_no in range(1, (chat.max_attempts if retry == "batch" else 1) + 1):
        lines, batch_ids = await _through_batches(chat, table, pending, progress, label, say)
        resend: dict[str, str] = {}
        for key, line in lines.items():
            work = pending[key]
            if line.result is not None:
                done(key, line.result)
                continue
            if line.completion is not None:
                result = work.read(line.completion, line.batch_id)
                if result.status == OK or retry == "batch" and (round_no == chat.max_attempts
                                                               or result.error.startswith("truncated")):
                    done(key, result)
                    continue
                line.error = result.error
            if line.unrun or retry == "batch" and (not line.resend or round_no == chat.max_attempts):
                done(key, work.fail(line.error, line.batch_id))
            else:
                resend[key] = line.error
        for batch_id in batch_ids:  # read back and taken: a re-run will not poll them again
            table.mark_merged(batch_id)
        pending = {key: pending[key] for key in resend}
        if retry == "online" and pending:
            await _online(list(pending.values()), resend, done, chat.limiter.ceiling)
            return
        if not pending:
            return


async def _online(works: list[Work[T]], why: dict[str, str], done: Callable[[str, T], None], width: int) -> None:
    gate = asyncio.Semaphore(max(1, width))

    async def ask(work: Work[T]) -> None:
        async with gate:
            done(work.key, await work.online(why[work.key]))

    await asyncio.gather(*(ask(w) for w in works))


async def _through_batches(chat: ChatClient, table: BatchTable, pending: dict[str, Work[T]], progress: Progress,
                           label: str, say: Callable[[str], None]) -> tuple[dict[str, Line], list[str]]:
    """Resume the open batches that cover pending keys, submit the rest, wait, read back every line."""
    server = chat.base_url or "https://api.openai.com/v1"
    covering = table.open_batches(server, list(pending))
    covered = set().union(*covering.values()) if covering else set()
    if covering:
        progress.console.print(f"{label}: resuming {len(covering)} batch(es) submitted earlier: "
                               f"{', '.join(sorted(covering))}")
    lines: dict[str, Line] = {}

    def encoded() -> Iterator[tuple[str, bytes]]:
        for key, work in pending.items():
            if key in covered:
                continue
            try:
                body = work.body()
            except Unsendable as exc:
                lines[key] = Line("", result=exc.result)
                continue
            data = (json.dumps({"custom_id": key, "method": "POST", "url": ENDPOINT, "body": body},
                               ensure_ascii=False) + "\n").encode()
            if len(data) > MAX_FILE_BYTES:
                lines[key] = Line("", error=f"the request is {len(data)} bytes, over a batch file's "
                                  f"{MAX_FILE_BYTES}", resend=False)
            else:
                yield key, data

    for group in split(encoded()):
        file = await _api(chat, "upload a batch file", chat.client.files.create,
                          file=("anycapeval-batch.jsonl", b"".join(d for _, d in group)), purpose="batch")
        batch = await _api(chat, "create a batch", chat.client.batches.create, input_file_id=file.id,
                           endpoint=ENDPOINT, completion_window=WINDOW, metadata={"anycapeval": label[:500]})
        table.add(batch, server, chat.model, [k for k, _ in group])
        covering[batch.id] = {k for k, _ in group}
        progress.console.print(f"{label}: submitted batch {batch.id} ({len(group)} requests)")
    finished = await _poll(chat, table, covering, progress, label)
    for batch_id, batch in finished.items():
        for key, line in (await _read_back(chat, batch_id, batch, covering[batch_id])).items():
            if key not in lines or lines[key].completion is None:
                lines[key] = line
        if batch is not None and batch.status != "completed":
            say(f"{label}: batch {batch_id} ended {batch.status}"
                + ("".join(f"; {e.message}" for e in (batch.errors.data or [])[:3]) if batch.errors else ""))
    return lines, list(finished)


async def _poll(chat: ChatClient, table: BatchTable, covering: dict[str, set[str]], progress: Progress,
                label: str) -> dict[str, Any]:
    """Poll until every batch is in a terminal state; {id: batch object, or None when the server lost it}."""
    if not covering:
        return {}
    total = sum(len(k) for k in covering.values())
    bar = progress.add_task(f"batch {label}", total=total)
    finished: dict[str, Any] = {}
    while True:
        states: Counter[str] = Counter()
        ran = 0
        for batch_id in covering:
            if batch_id not in finished:
                try:
                    batch = await _api(chat, f"poll batch {batch_id}", chat.client.batches.retrieve, batch_id)
                except ChatFatalError as exc:
                    if "HTTP 404" not in str(exc):
                        raise
                    table.update(batch_id, "lost", merged=True)
                    finished[batch_id] = None
                    continue
                table.update(batch_id, batch.status, output=batch.output_file_id, error=batch.error_file_id)
                if batch.status in TERMINAL:
                    finished[batch_id] = batch
                covering_batch = batch
            else:
                covering_batch = finished[batch_id]
            if covering_batch is not None:
                states[covering_batch.status] += 1
                counts = covering_batch.request_counts
                ran += (counts.completed + counts.failed) if counts else 0
        progress.update(bar, completed=min(ran, total), description=f"batch {label}: "
                        + ", ".join(f"{n} {state}" for state, n in sorted(states.items())))
        if len(finished) == len(covering):
            return finished
        await asyncio.sleep(poll_seconds())


async def _read_back(chat: ChatClient, batch_id: str, batch: Any, keys: set[str]) -> dict[str, Line]:
    """Each covered key's line from the output and error files; keys without one were never run."""
    out: dict[str, Line] = {}
    for file_id in (batch.output_file_id, batch.error_file_id) if batch is not None else ():
        if not file_id:
            continue
        content = await _api(chat, f"read file {file_id} of batch {batch_id}", chat.client.files.content, file_id)
        for text in content.text.splitlines():
            line = _line(batch_id, text)
            if line is not None and line[0] in keys:
                out[line[0]] = line[1]
    status = "lost (the server does not know it)" if batch is None else batch.status
    for key in keys - set(out):
        if batch is not None and status == "completed":
            out[key] = Line(batch_id, error=f"batch {batch_id} completed without a line for this request")
        else:
            out[key] = Line(batch_id, error=f"batch {batch_id} {status}; re-run to resubmit", unrun=True)
    return out


def _line(batch_id: str, text: str) -> tuple[str, Line] | None:
    try:
        record = json.loads(text)
        key = record["custom_id"]
    except (ValueError, KeyError, TypeError):
        return None  # a line that names no request cannot be given to one; that request counts as not run
    error, response = record.get("error"), record.get("response")
    if error:
        code, message = error.get("code") or "", error.get("message") or ""
        if code in UNRUN_CODES:
            return key, Line(batch_id, error=f"batch {batch_id} {code.removeprefix('batch_')}; re-run to resubmit "
                             f"({message})", unrun=True)
        return key, Line(batch_id, error=f"batch line failed: {code}: {message}")
    status = (response or {}).get("status_code")
    body = (response or {}).get("body")
    if status == 200 and isinstance(body, dict):
        return key, Line(batch_id, completion=body)
    inner = body.get("error", body) if isinstance(body, dict) else body
    words = inner.get("message") if isinstance(inner, dict) and inner.get("message") else str(inner)[:300]
    resend = not isinstance(status, int) or transient_status(status)
    return key, Line(batch_id, error=f"HTTP {status}: {words}", resend=resend)


async def _api(chat: ChatClient, what: str, call: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
    """One Files/Batches call with the chat client's retry rules: transient errors waited out, the rest
    stop the run with the server's words."""
    openai = chat._openai
    for attempt in range(1, chat.max_attempts + 1):
        try:
            return await call(*args, **kwargs)
        except openai.APIStatusError as exc:
            if not is_transient(exc) or attempt == chat.max_attempts:
                raise ChatFatalError(f"{chat.label} at {chat.base_url or 'api.openai.com'}: cannot {what}: HTTP "
                                     f"{exc.status_code}: {_server_words(exc)}") from None
            await back_off(attempt, chat.retry_base_s, retry_after_s(exc))
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            if attempt == chat.max_attempts:
                raise ChatFatalError(f"{chat.label}: cannot {what}: {type(exc).__name__}: {exc}") from None
            await back_off(attempt, chat.retry_base_s, None)
    raise AssertionError("unreachable")
