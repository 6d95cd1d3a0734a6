"""Bounded fake of the OpenAI Chat Completions API (stdlib only) for tests and benchmarks.

``LoopbackServer`` is a real HTTP/1.1 server (asyncio streams, keep-alive) on 127.0.0.1:<ephemeral>
in a background thread with its own event loop. Routes: POST /v1/chat/completions, GET /v1/models
("/v1" optional). A responder (sync or async: ``fixed_responder``, ``Script`` or your own) maps the
parsed JSON body to the assistant text or a ``Reply``; non-200 replies are OpenAI-style error JSON::

    with LoopbackServer(lambda body: '{"score": 4}', latency_s=0.05, fail_first=[429]) as srv:
        client = openai.AsyncOpenAI(api_key="test", base_url=srv.base_url, max_retries=0)
        ...  # 1st call raises RateLimitError (retry-after: 0), later calls get '{"score": 4}'
        assert srv.request_count == 2 and srv.max_in_flight >= 1

Thread-safe stats: requests, records, request_count, in_flight, max_in_flight, reset_stats(). The server
stops by itself after ``max_lifetime_s`` and shuts down once more than ``max_requests`` requests arrived.

A responder that needs more than the body (path, query string, headers) calls ``current_request()``
while it runs; ``records`` keeps the same ``Request`` objects for the test to inspect afterwards::

    def by_deployment(body: dict) -> str:
        return "azure" if current_request().path.startswith("/openai/") else "openai"

Subclasses (see ``strict_openai.StrictOpenAI``) override ``_dispatch`` and reuse ``_tracked`` (stats and
``current_request``), ``_render`` (Reply -> HTTP) and ``_error_reply``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.client import responses
from typing import Any
from urllib.parse import parse_qsl


@dataclass
class Reply:
    """What the server sends for one chat request."""

    content: str = ""  # assistant text (200) or error message (non-200)
    status: int = 200
    raw_body: bytes | None = None  # sent verbatim (with `status`) instead of a well-formed body
    delay_s: float = 0.0  # extra latency on top of the server's latency_s
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    """One HTTP request as the server saw it."""

    method: str
    path: str  # without the query string
    query: dict[str, str]  # decoded query parameters (last one wins when repeated)
    headers: dict[str, str]  # names lower-cased
    raw_body: bytes = b""
    body: Any = None  # parsed JSON, or None when the body is not JSON
    query_string: str = ""  # as sent, still percent-encoded


_current_request: contextvars.ContextVar[Request] = contextvars.ContextVar("loopback_current_request")


def current_request() -> Request:
    """The request being answered; only valid inside a responder (or a StrictOpenAI answer callback)."""
    try:
        return _current_request.get()
    except LookupError:
        raise RuntimeError("current_request() is only available while a request is being answered") from None


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"{}")
    except ValueError:
        return None


ReplyLike = str | Reply
Responder = Callable[[dict], ReplyLike | Awaitable[ReplyLike]]


def fixed_responder(text: str = "ok") -> Responder:
    """A responder that answers every request with the same assistant text."""
    return lambda body: text


class Script:
    """A responder that replays ``steps`` (str or Reply) in order, then defers to ``then``."""

    def __init__(self, steps: Iterable[ReplyLike], then: Responder | None = None) -> None:
        self._steps: deque[ReplyLike] = deque(steps)
        self._then = then or fixed_responder()

    def __call__(self, body: dict) -> ReplyLike | Awaitable[ReplyLike]:
        return self._steps.popleft() if self._steps else self._then(body)


_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                403: "permission_error", 404: "not_found_error", 429: "rate_limit_error"}


def _tokens(text: str) -> int:
    return max(1, len(text) // 4) if text else 0


class LoopbackServer:
    """Fake OpenAI endpoint on 127.0.0.1; use ``start()``/``stop()`` or ``with``."""

    def __init__(self, responder: Responder | None = None, *, latency_s: float = 0.0,
                 fail_first: Iterable[int] = (), model_id: str = "loopback-model",
                 max_lifetime_s: float = 300.0, max_requests: int = 1_000_000) -> None:
        self.responder: Responder = responder or fixed_responder()  # may be swapped while running
        self.latency_s = latency_s  # may be changed while running
        self.model_id, self.max_lifetime_s, self.max_requests = model_id, max_lifetime_s, max_requests
        self.port: int | None = None
        self._fail_plan: deque[int] = deque(fail_first)  # consumed once; reset_stats does not re-arm
        self._lock = threading.Lock()
        self._requests: list[dict] = []
        self._records: list[Request] = []
        self._request_count = self._in_flight = self._max_in_flight = self._total = 0
        self._ids = itertools.count(1)
        self._ready, self._done = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._conns: set[asyncio.Task] = set()

    # thread-safe instrumentation snapshots
    requests = property(lambda self: self._stat("_requests"), doc="parsed bodies, arrival order")
    records = property(lambda self: self._stat("_records"), doc="full Request objects, arrival order")
    request_count = property(lambda self: self._stat("_request_count"), doc="chat requests seen")
    in_flight = property(lambda self: self._stat("_in_flight"), doc="chat requests being handled")
    max_in_flight = property(lambda self: self._stat("_max_in_flight"), doc="peak of in_flight")

    def _stat(self, name: str) -> Any:
        with self._lock:
            value = getattr(self, name)
            return list(value) if isinstance(value, list) else value

    def reset_stats(self) -> None:
        with self._lock:
            self._requests, self._records, self._request_count = [], [], 0
            self._max_in_flight = self._in_flight

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def running(self) -> bool:
        return self._ready.is_set() and not self._done.is_set()

    def start(self, timeout: float = 10.0) -> LoopbackServer:
        if self._thread is not None:
            raise RuntimeError("LoopbackServer can only be started once")
        self._thread = threading.Thread(target=self._run, name="loopback-openai", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self.port is None:
            raise RuntimeError("loopback server failed to start (see thread traceback)")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop_event is not None and not self._done.is_set():
            with contextlib.suppress(RuntimeError):  # the loop may have just closed
                self._loop.call_soon_threadsafe(self._stop_event.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main())
        finally:
            self._done.set()
            self._ready.set()
            loop.close()

    async def _main(self) -> None:
        self._stop_event = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=4096)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), self.max_lifetime_s)
        server.close()
        for task in list(self._conns):
            task.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)
        await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conns.add(task := asyncio.current_task())  # type: ignore[arg-type]
        try:
            while True:
                lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                method, target, version = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip()
                           for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
                self._total += 1  # only touched on the loop thread
                over_limit = self._total > self.max_requests
                if over_limit:
                    self._stop_event.set()  # type: ignore[union-attr]
                if over_limit or "chunked" in headers.get("transfer-encoding", ""):
                    break  # refuse: just close the connection
                raw = await reader.readexactly(int(headers.get("content-length", "0")))
                path, _, query_string = target.partition("?")
                request = Request(method, path, dict(parse_qsl(query_string, keep_blank_values=True)), headers,
                                  raw, _parse_json(raw), query_string)
                status, extra, payload = await self._dispatch(request)
                keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
                out = {"content-type": "application/json", "content-length": str(len(payload)),
                       "connection": "keep-alive" if keep else "close", **extra}
                head = "".join(f"{k}: {v}\r\n" for k, v in out.items())
                reason = responses.get(status, "Unknown")
                writer.write(f"HTTP/1.1 {status} {reason}\r\n{head}\r\n".encode("latin-1") + payload)
                await writer.drain()
                if not keep:
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError,
                asyncio.CancelledError):  # client left / sent garbage / shutdown: drop the connection
            pass
        finally:
            self._conns.discard(task)  # type: ignore[arg-type]
            writer.close()

    async def _dispatch(self, request: Request) -> tuple[int, dict, bytes]:
        method, path, body = request.method, request.path, request.body
        if method == "GET" and path in ("/v1/models", "/models"):
            data = [{"id": self.model_id, "object": "model", "created": 0, "owned_by": "loopback"}]
            return 200, {}, json.dumps({"object": "list", "data": data}).encode()
        if method != "POST" or path not in ("/v1/chat/completions", "/chat/completions"):
            return self._error_reply(Reply(status=404, content=f"no route {method} {path}"))
        if not isinstance(body, dict):
            return self._error_reply(Reply(status=400, content="request body is not a JSON object"))
        with self._tracked(request):
            if self.latency_s > 0:
                await asyncio.sleep(self.latency_s)
            reply: Any = self._planned_failure()
            if reply is None:
                try:
                    reply = self.responder(body)
                    if inspect.isawaitable(reply):
                        reply = await reply
                except Exception as e:  # noqa: BLE001 - report responder bugs as HTTP 500
                    reply = Reply(status=500, content=f"responder raised {e!r}")
            return await self._render(body, reply)

    @contextlib.contextmanager
    def _tracked(self, request: Request) -> Iterator[None]:
        """Count and record one chat request while it is handled; expose it through ``current_request()``."""
        with self._lock:
            self._requests.append(request.body)
            self._records.append(request)
            self._request_count += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        token = _current_request.set(request)
        try:
            yield
        finally:
            _current_request.reset(token)
            with self._lock:
                self._in_flight -= 1

    def _planned_failure(self) -> Reply | None:
        """The next status of ``fail_first`` as a Reply, or None once the plan is used up."""
        return Reply(status=self._fail_plan.popleft()) if self._fail_plan else None

    async def _render(self, body: dict, reply: ReplyLike) -> tuple[int, dict, bytes]:
        if isinstance(reply, str):
            reply = Reply(content=reply)
        if reply.delay_s > 0:
            await asyncio.sleep(reply.delay_s)
        if reply.raw_body is not None:
            return reply.status, dict(reply.headers), reply.raw_body
        if reply.status != 200:
            return self._error_reply(reply)
        return 200, dict(reply.headers), self._completion(body, reply.content)

    def _completion(self, body: dict, text: str) -> bytes:
        p, c = _tokens(json.dumps(body.get("messages", ""), ensure_ascii=False)), _tokens(text)
        return json.dumps({
            "id": f"chatcmpl-loopback-{next(self._ids)}", "object": "chat.completion",
            "created": int(time.time()), "model": body.get("model", self.model_id),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
        }).encode()

    @staticmethod
    def _error_reply(reply: Reply) -> tuple[int, dict, bytes]:
        status = reply.status
        headers = {"retry-after": "0", **reply.headers} if status == 429 else dict(reply.headers)
        err = {"message": reply.content or f"simulated {status} {responses.get(status, '')}",
               "type": _ERROR_TYPES.get(status, "server_error" if status >= 500 else "api_error"),
               "code": "rate_limit_exceeded" if status == 429 else str(status)}
        return status, headers, json.dumps({"error": err}).encode()
