"""Quick checks that the loopback OpenAI server works with the real ``openai`` client."""

from __future__ import annotations

import asyncio
import time

import openai
import pytest

# pytest's default "prepend" import mode puts tests/ (no __init__.py) on sys.path
from loopback_server import LoopbackServer, Reply, Script

MSG = [{"role": "user", "content": "Rate this answer from 1 to 5."}]


def _client(srv: LoopbackServer, **kw: object) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key="test", base_url=srv.base_url, max_retries=0, **kw)  # type: ignore[arg-type]


async def _ask(client: openai.AsyncOpenAI, model: str = "judge-x") -> str | None:
    resp = await client.chat.completions.create(model=model, messages=MSG)  # type: ignore[arg-type]
    return resp.choices[0].message.content


def test_basic_completion() -> None:
    with LoopbackServer(lambda body: "score: 4") as srv:
        async def main() -> openai.types.chat.ChatCompletion:
            async with _client(srv) as c:
                return await c.chat.completions.create(model="judge-x", messages=MSG)  # type: ignore[arg-type]

        resp = asyncio.run(main())
        assert resp.choices[0].message.content == "score: 4"
        assert resp.choices[0].message.role == "assistant"
        assert resp.choices[0].finish_reason == "stop"
        assert resp.model == "judge-x"
        u = resp.usage
        assert u is not None and u.prompt_tokens > 0 and u.completion_tokens > 0
        assert u.total_tokens == u.prompt_tokens + u.completion_tokens
        assert srv.request_count == 1 and srv.requests[0]["messages"] == MSG

        async def models() -> list[str]:
            async with _client(srv) as c:
                return [m.id async for m in c.models.list()]

        assert asyncio.run(models()) == ["loopback-model"]


def test_concurrency_and_stats() -> None:
    with LoopbackServer(latency_s=0.2) as srv:
        async def main() -> list[str | None]:
            async with _client(srv) as c:
                return await asyncio.gather(*(_ask(c) for _ in range(200)))

        t0 = time.perf_counter()
        out = asyncio.run(main())
        elapsed = time.perf_counter() - t0
        assert out == ["ok"] * 200
        assert elapsed < 1.6, elapsed
        assert srv.request_count == 200 and srv.max_in_flight >= 150 and srv.in_flight == 0
        srv.reset_stats()
        assert srv.request_count == 0 and srv.requests == [] and srv.max_in_flight == 0


def test_fail_first_then_success() -> None:
    with LoopbackServer(lambda body: "fine", fail_first=[429, 500]) as srv:
        async def main() -> None:
            async with _client(srv) as c:
                with pytest.raises(openai.RateLimitError) as e429:
                    await _ask(c)
                assert e429.value.response.headers["retry-after"] == "0"
                with pytest.raises(openai.InternalServerError):
                    await _ask(c)
                assert await _ask(c) == "fine"

        asyncio.run(main())
        assert srv.request_count == 3


def test_script_and_reply_options() -> None:
    script = Script([Reply(status=400, content="bad judge prompt"), Reply(content="slow", delay_s=0.1)],
                    then=lambda body: "after")
    with LoopbackServer(script) as srv:
        async def main() -> None:
            async with _client(srv) as c:
                with pytest.raises(openai.BadRequestError, match="bad judge prompt"):
                    await _ask(c)
                t0 = time.perf_counter()
                assert await _ask(c) == "slow"
                assert time.perf_counter() - t0 >= 0.1
                assert await _ask(c) == "after"

        asyncio.run(main())


def test_malformed_body_raises() -> None:
    with LoopbackServer(lambda body: Reply(raw_body=b'{"choices": [trunc')) as srv:
        async def main() -> None:
            async with _client(srv) as c:
                with pytest.raises((ValueError, openai.APIError)):
                    await _ask(c)

        asyncio.run(main())


def test_stops_after_max_lifetime() -> None:
    srv = LoopbackServer(max_lifetime_s=0.3).start()
    assert srv.running
    time.sleep(0.8)
    assert not srv.running

    async def main() -> None:
        async with _client(srv) as c:
            with pytest.raises(openai.APIConnectionError):
                await _ask(c)

    asyncio.run(main())
    srv.stop()


def test_max_requests_closes() -> None:
    with LoopbackServer(max_requests=1) as srv:
        async def main() -> None:
            async with _client(srv) as c:
                assert await _ask(c) == "ok"
                with pytest.raises(openai.APIConnectionError):
                    await _ask(c)

        asyncio.run(main())
        time.sleep(0.1)
        assert not srv.running
