"""Back-off shared by the OpenAI-compatible judge and system: honour a server's `retry-after`,
otherwise exponential with jitter, never more than 30 s between attempts."""

from __future__ import annotations

import asyncio
import random
from typing import Any

MAX_DELAY_S = 30.0


def retry_after_s(exc: Any) -> float | None:
    """The `retry-after` header of an API status error, in seconds (capped), if it has a usable one."""
    response = getattr(exc, "response", None)
    header = response.headers.get("retry-after") if response is not None else None
    try:
        return min(float(header), MAX_DELAY_S) if header is not None else None
    except ValueError:
        return None


async def back_off(attempt: int, base_s: float, retry_after: float | None) -> None:
    """Wait before attempt `attempt + 1`."""
    if retry_after is not None:
        await asyncio.sleep(retry_after)
        return
    await asyncio.sleep(min(base_s * 2 ** (attempt - 1), MAX_DELAY_S) * (0.5 + random.random() / 2))
