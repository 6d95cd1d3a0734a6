"""When and how long to wait before asking a server again, and how many requests to keep in flight.

The server's own words win: `x-should-retry`, then `retry-after-ms`, then `retry-after` (seconds or an
HTTP date), as the OpenAI SDK reads them; otherwise exponential back-off with jitter, never more than
30 s. `AdaptiveLimiter` starts at the configured concurrency, halves it on a rate-limit reply, narrows
it to what `x-ratelimit-remaining-*` says is left, and grows back by one after a window of successes.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Mapping
from typing import Any

MAX_DELAY_S = 30.0


def _headers(exc: Any) -> Mapping[str, str]:
    response = getattr(exc, "response", None)
    return response.headers if response is not None else {}


def retry_after_s(exc: Any) -> float | None:
    """The delay a server asked for in an error reply, in seconds (capped), or None."""
    headers = _headers(exc)
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return min(max(float(value) / scale, 0.0), MAX_DELAY_S)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            when = email.utils.parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        return min(max(when - time.time(), 0.0), MAX_DELAY_S)
    return None


def server_says_retry(exc: Any) -> bool | None:
    """`x-should-retry: true|false` when the server sent it, else None (decide by status)."""
    value = str(_headers(exc).get("x-should-retry", "")).strip().lower()
    return {"true": True, "false": False}.get(value)


def transient_status(status: int) -> bool:
    """A reply status worth asking again after a wait: timeout, conflict, rate limit, server error."""
    return status in (408, 409, 429) or status >= 500


def is_transient(exc: Any) -> bool:
    """Whether an error reply is worth asking again: the server's `x-should-retry`, else its status."""
    says = server_says_retry(exc)
    return transient_status(exc.status_code) if says is None else says


async def back_off(attempt: int, base_s: float, retry_after: float | None) -> None:
    """Wait before attempt `attempt + 1`."""
    if retry_after is not None:
        await asyncio.sleep(retry_after)
        return
    await asyncio.sleep(min(base_s * 2 ** (attempt - 1), MAX_DELAY_S) * (0.5 + random.random() / 2))


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    try:
        return int(headers[name])
    except (KeyError, ValueError, TypeError):
        return None


class AdaptiveLimiter:
    """An async context manager that bounds requests in flight by a limit that adapts to the server."""

    def __init__(self, limit: int):
        self.ceiling = self.limit = max(1, limit)
        self.in_flight = 0
        self.lowest = self.limit  # the narrowest the limit got (recorded in the manifest)
        self.rate_limited = 0  # 429 rate-limit replies seen
        self._successes = 0
        self._tokens_per_request = 0.0  # running mean, to turn remaining tokens into remaining requests
        self._cond: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        if self._cond is None:  # created on first use, inside the running loop
            self._cond = asyncio.Condition()
        return self._cond

    async def __aenter__(self) -> AdaptiveLimiter:
        cond = self._condition()
        async with cond:
            await cond.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1
        return self

    async def __aexit__(self, *exc: object) -> None:
        cond = self._condition()
        async with cond:
            self.in_flight -= 1
            cond.notify_all()

    def _set(self, limit: int) -> None:
        # No wake-up needed when the limit grows: a waiter waits only while requests are in flight, and
        # each one that ends re-checks every waiter against the new limit.
        self.limit = max(1, min(self.ceiling, limit))
        self.lowest = min(self.lowest, self.limit)

    def on_rate_limited(self) -> None:
        self.rate_limited += 1
        self._successes = 0
        self._set(self.limit // 2)

    def on_success(self, headers: Mapping[str, str], tokens: int) -> None:
        """Read what the server says is left in its window; otherwise grow by one per window of successes."""
        if tokens:
            self._tokens_per_request += (tokens - self._tokens_per_request) / 8 if self._tokens_per_request else tokens
        room = [n for n in (_int_header(headers, "x-ratelimit-remaining-requests"),) if n is not None]
        remaining_tokens = _int_header(headers, "x-ratelimit-remaining-tokens")
        if remaining_tokens is not None and self._tokens_per_request:
            room.append(int(remaining_tokens // self._tokens_per_request))
        if room and min(room) < self.limit:
            self._successes = 0
            self._set(min(room))
            return
        self._successes += 1
        if self._successes >= self.limit and self.limit < self.ceiling:
            self._successes = 0
            self._set(self.limit + 1)
