"""The strict OpenAI stand-in refuses what the real API refuses, checked with the real ``openai`` SDK."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
import urllib.error
import urllib.request
import wave
from collections.abc import Callable
from typing import Any, Literal

import openai
import pydantic
import pytest

# pytest's default "prepend" import mode puts tests/ (no __init__.py) on sys.path
from loopback_server import LoopbackServer, current_request
from strict_openai import DEFAULT, KNOWN_MODELS, StrictOpenAI, format_duration, schema_answer

MSG = [{"role": "user", "content": "Rate the caption from 1 to 5."}]
LIFETIME_S = 30.0  # every server in this file stops by itself after this


def _server(**kw: Any) -> StrictOpenAI:
    return StrictOpenAI(max_lifetime_s=LIFETIME_S, **kw)


def _client(srv: StrictOpenAI, key: str = "sk-test", **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=srv.base_url, max_retries=0, timeout=10, **kw)


def _ask(client: openai.OpenAI, model: str = "gpt-4o", **kw: Any) -> Any:
    return client.chat.completions.create(model=model, messages=kw.pop("messages", MSG), **kw)


def _refused(error: type[openai.APIStatusError], call: Callable[[], object], **expected: Any) -> Any:
    """Run ``call``, expect ``error`` with the given code / param / type; returns the exception."""
    with pytest.raises(error) as info:
        call()
    for name, value in expected.items():
        assert getattr(info.value, name) == value, (name, info.value)
    return info.value


def _post(url: str, body: dict, headers: dict[str, str]) -> tuple[int, dict]:
    """A bare HTTP POST (no SDK), for requests the SDK would never send."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json", **headers})
    try:
        with opener.open(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _wav_b64() -> str:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(b"\x00\x00" * 16_000)  # one second of silence
    return base64.b64encode(buf.getvalue()).decode()


PNG_URL = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32).decode()
AUDIO_PART = {"type": "input_audio", "input_audio": {"data": _wav_b64(), "format": "wav"}}
IMAGE_PART = {"type": "image_url", "image_url": {"url": PNG_URL}}


def _user(*parts: dict) -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": "Describe this."}, *parts]}]


def _json_schema(schema: dict, name: str = "judgement", strict: bool = True) -> dict:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": strict}}


def _obj(props: dict, **extra: Any) -> dict:
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False, **extra}


# ---------------------------------------------------------------------------------- 1. models
def test_models_aliases_snapshots_fingerprints_usage() -> None:
    aliases = {"gpt-4o": "gpt-4o-2024-08-06", "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
               "gpt-5-mini": "gpt-5-mini-2025-08-07", "gpt-5": "gpt-5-2025-08-07", "o4-mini": "o4-mini-2025-04-16",
               "o3": "o3-2025-04-16", "gpt-audio": "gpt-audio-2025-08-28",
               "gpt-4o-audio-preview": "gpt-4o-audio-preview-2025-06-03"}
    with _server() as srv:
        client = _client(srv)
        for alias, snapshot in aliases.items():
            resp = _ask(client, alias)
            assert resp.model == snapshot
            assert resp.system_fingerprint == KNOWN_MODELS[snapshot].fingerprint
            assert resp.system_fingerprint.startswith("fp_")
            u = resp.usage
            assert u.total_tokens == u.prompt_tokens + u.completion_tokens and u.prompt_tokens > 0
            reasoning = u.completion_tokens_details.reasoning_tokens
            assert (reasoning > 0) == KNOWN_MODELS[snapshot].reasoning, alias
        for snapshot in ("gpt-4o-2024-08-06", "gpt-4o-2024-11-20", "gpt-4o-mini-2024-07-18",
                         "gpt-5-mini-2025-08-07", "gpt-audio-2025-08-28"):
            assert _ask(client, snapshot).model == snapshot
        fp = {_ask(client, m).system_fingerprint for m in ("gpt-4o-2024-08-06", "gpt-4o-2024-11-20", "gpt-4o")}
        assert len(fp) == 2  # stable per snapshot, different between snapshots
        err = _refused(openai.NotFoundError, lambda: _ask(client, "gpt-4o-2099-01-01"), code="model_not_found")
        assert "gpt-4o-2099-01-01" in err.message
        listed = {m.id for m in client.models.list()}
        assert {"gpt-4o", "gpt-4o-2024-08-06", "o3", "gpt-audio-2025-08-28"} <= listed

    two = ["gpt-4o-2024-08-06", "gpt-4o-2024-11-20"]
    with _server(aliases={"gpt-4o": two}) as srv:  # one alias, two snapshots, in turn
        client = _client(srv)
        seen = [(r.model, r.system_fingerprint) for r in (_ask(client) for _ in range(4))]
        assert [m for m, _ in seen] == two * 2
        assert seen[0][1] != seen[1][1] and seen[0] == seen[2]


# ------------------------------------------------------------------------------ 2. reasoning
def test_reasoning_models_parameters_and_token_budget() -> None:
    with _server(answer=lambda body: None if "long" not in str(body) else "a" * 100) as srv:
        client = _client(srv)
        err = _refused(openai.BadRequestError, lambda: _ask(client, "gpt-5-mini", max_tokens=50),
                       code="unsupported_parameter", param="max_tokens", type="invalid_request_error")
        assert "max_completion_tokens" in err.message
        _refused(openai.BadRequestError, lambda: _ask(client, "o3", temperature=0), code="unsupported_value",
                 param="temperature")
        _refused(openai.BadRequestError, lambda: _ask(client, "o4-mini", top_p=0.5), code="unsupported_value",
                 param="top_p")
        _refused(openai.BadRequestError, lambda: _ask(client, "gpt-4o", reasoning_effort="low"),
                 code="unsupported_parameter", param="reasoning_effort")
        _refused(openai.BadRequestError, lambda: _ask(client, "gpt-5", reasoning_effort="extreme"),
                 code="unsupported_value", param="reasoning_effort")
        _refused(openai.BadRequestError, lambda: _ask(client, "o3", reasoning_effort="minimal"),  # gpt-5 only
                 code="unsupported_value", param="reasoning_effort")
        _refused(openai.BadRequestError, lambda: _ask(client, "gpt-4o", max_tokens=20_000),  # over 16384
                 code="invalid_value", param="max_tokens")
        assert _ask(client, "o3", temperature=1).choices[0].message.content == "ok"  # the default is fine
        for model in ("gpt-4o", "gpt-4o-mini", "gpt-5-mini", "o3", "gpt-audio"):
            assert _ask(client, model, max_completion_tokens=2000).choices[0].finish_reason == "stop"

        for effort, tokens in {"minimal": 64, "low": 256, "medium": 512, "high": 1024}.items():
            u = _ask(client, "gpt-5-mini", reasoning_effort=effort).usage
            assert u.completion_tokens_details.reasoning_tokens == tokens and u.completion_tokens == tokens + 1
        assert _ask(client, "o4-mini").usage.completion_tokens_details.reasoning_tokens == 512  # medium default

        starved = _ask(client, "gpt-5-mini", max_completion_tokens=100)  # reasoning eats the whole budget
        assert starved.choices[0].message.content == "" and starved.choices[0].finish_reason == "length"
        assert starved.usage.completion_tokens == 100 == starved.usage.completion_tokens_details.reasoning_tokens
        long_msg = [{"role": "user", "content": "long please"}]
        cut = _ask(client, "gpt-5-mini", messages=long_msg, reasoning_effort="minimal", max_completion_tokens=66)
        assert cut.choices[0].message.content == "a" * 8 and cut.choices[0].finish_reason == "length"
        cut = _ask(client, "gpt-4o", messages=long_msg, max_tokens=10)
        assert cut.choices[0].message.content == "a" * 40 and cut.choices[0].finish_reason == "length"
        assert cut.usage.completion_tokens == 10
        whole = _ask(client, "gpt-4o", messages=long_msg, max_completion_tokens=25)
        assert whole.choices[0].message.content == "a" * 100 and whole.choices[0].finish_reason == "stop"


# ---------------------------------------------------------------------------------- 3. media
def test_media_parts_and_audio_models() -> None:
    with _server() as srv:
        client = _client(srv)
        err = _refused(openai.BadRequestError, lambda: _ask(client, "gpt-4o", messages=_user(AUDIO_PART)),
                       param="messages", type="invalid_request_error")
        assert "audio" in err.message
        resp = _ask(client, "gpt-audio", messages=_user(AUDIO_PART))
        assert resp.model == "gpt-audio-2025-08-28" and resp.usage.prompt_tokens_details.audio_tokens == 10
        assert _ask(client, "gpt-4o-audio-preview", messages=_user(AUDIO_PART)).choices[0].message.content == "ok"
        _refused(openai.BadRequestError, lambda: _ask(client, "gpt-4o-audio-preview", messages=_user(IMAGE_PART)),
                 param="messages")
        for fmt in (_json_schema(_obj({"score": {"type": "integer"}})), {"type": "json_object"}):
            err = _refused(openai.BadRequestError, lambda fmt=fmt: _ask(
                client, "gpt-audio", messages=_user(AUDIO_PART) + [{"role": "user", "content": "json"}],
                response_format=fmt), param="response_format")
            assert "structured output" in err.message
        assert _ask(client, "gpt-4o", messages=_user(IMAGE_PART)).usage.prompt_tokens > 85
        http_image = {"type": "image_url", "image_url": {"url": "https://example.org/cat.jpg", "detail": "low"}}
        assert _ask(client, "gpt-4o-mini", messages=_user(http_image)).choices[0].message.content == "ok"

        malformed = {
            "messages[0].content[1].text": {"type": "text"},
            "messages[0].content[1].type": {"type": "video_url", "video_url": {"url": "https://x/v.mp4"}},
            "messages[0].content[1].image_url.url": {"type": "image_url", "image_url": {"url": "file:///cat.png"}},
            "messages[0].content[1].input_audio.format": {"type": "input_audio",
                                                          "input_audio": {"data": _wav_b64(), "format": "ogg"}},
            "messages[0].content[1].input_audio.data": {"type": "input_audio",
                                                        "input_audio": {"data": "not base64!", "format": "wav"}},
        }
        for param, part in malformed.items():
            _refused(openai.BadRequestError, lambda part=part: _ask(client, "gpt-audio", messages=_user(part)),
                     param=param)
        not_png = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + _wav_b64()}}
        _refused(openai.BadRequestError, lambda: _ask(client, "gpt-4o", messages=_user(not_png)),
                 code="invalid_image_format")


# ------------------------------------------------------------------------------ 4. JSON mode
class _Point(pydantic.BaseModel):
    key_point: int
    verdict: Literal["yes", "no"]


class _Judgement(pydantic.BaseModel):
    points: list[_Point]
    note: str | None


def test_json_mode_strict_schemas_and_generated_answers() -> None:
    judge = _obj({
        "decisions": {"type": "array", "minItems": 3, "items": _obj({
            "key_point": {"type": "integer", "minimum": 1, "maximum": 10},
            "score": {"type": "integer", "enum": [0, 1]},
            "reason": {"type": "string", "description": "one sentence"}})},
        "verdict": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "confident": {"type": "boolean"}})
    with _server() as srv:
        client = _client(srv)
        _refused(openai.BadRequestError, lambda: _ask(client, response_format={"type": "json_object"}),
                 param="messages", type="invalid_request_error")
        ok = _ask(client, messages=[{"role": "user", "content": "Reply in JSON."}],
                  response_format={"type": "json_object"})
        assert isinstance(json.loads(ok.choices[0].message.content), dict)

        no_additional = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
        not_all_required = {**_obj({"a": {"type": "string"}, "b": {"type": "string"}}), "required": ["a"]}
        bad_keyword = _obj({"a": {"type": "string", "minLength": 2}})
        nested_bad = _obj({"inner": {"type": "object", "properties": {}, "required": []}})
        for schema, hint in ((no_additional, "additionalProperties"), (not_all_required, "'b'"),
                             (bad_keyword, "minLength"), (nested_bad, "additionalProperties"),
                             ({"type": "array", "items": {"type": "string"}}, "object")):
            err = _refused(openai.BadRequestError, lambda s=schema: _ask(client, response_format=_json_schema(s)),
                           param="response_format", type="invalid_request_error")
            assert hint in err.message
        assert _ask(client, response_format=_json_schema(bad_keyword, strict=False)).choices[0].message.content
        _refused(openai.BadRequestError, lambda: _ask(client, response_format=_json_schema(judge, name="bad name")),
                 param="response_format.json_schema.name")

        answer = json.loads(_ask(client, "gpt-5-mini", response_format=_json_schema(judge)).choices[0].message.content)
        assert answer == {"decisions": [{"key_point": 10, "score": 1, "reason": "ok"}] * 3, "verdict": "ok",
                          "confident": True}
        parsed = client.chat.completions.parse(model="gpt-4o", messages=MSG, response_format=_Judgement)
        assert parsed.choices[0].message.parsed == _Judgement(points=[_Point(key_point=1, verdict="no")], note="ok")

    def policy(path: str, schema: dict) -> Any:  # a pluggable choice per JSON path
        return 0 if path.endswith(".score") else DEFAULT

    with _server(schema_policy=policy) as srv:
        content = _ask(_client(srv), response_format=_json_schema(judge)).choices[0].message.content
        assert [d["score"] for d in json.loads(content)["decisions"]] == [0, 0, 0]
    assert schema_answer({"type": "array", "items": {"type": "number", "minimum": 0.5}, "maxItems": 0}) == []
    tree = _obj({"name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#"}}})
    node = schema_answer(tree)  # recursive: the generated tree is finite
    while node["children"]:
        node = node["children"][0]
    assert node == {"name": "ok", "children": []}


# ----------------------------------------------------------------------------- 5. quota, keys
def test_insufficient_quota_and_invalid_api_key() -> None:
    with _server(insufficient_quota=True) as srv:
        err = _refused(openai.RateLimitError, lambda: _ask(_client(srv)), code="insufficient_quota",
                       type="insufficient_quota")
        assert "quota" in err.message and "billing" in err.message
        assert "retry-after" not in err.response.headers and "retry-after-ms" not in err.response.headers
        srv.insufficient_quota = False  # a flag that can flip while the server runs
        assert _ask(_client(srv)).choices[0].message.content == "ok"
    with _server(insufficient_quota={"sk-broke"}, invalid_api_key={"sk-revoked"}) as srv:
        _refused(openai.RateLimitError, lambda: _ask(_client(srv, "sk-broke")), code="insufficient_quota")
        _refused(openai.AuthenticationError, lambda: _ask(_client(srv, "sk-revoked")), code="invalid_api_key")
        assert _ask(_client(srv, "sk-rich")).model == "gpt-4o-2024-08-06"
        status, body = _post(f"{srv.base_url}/chat/completions", {"model": "gpt-4o", "messages": MSG}, {})
        assert status == 401 and body["error"]["type"] == "invalid_request_error"
        assert srv.error_counts == {"insufficient_quota": 1, "invalid_api_key": 1, "invalid_request_error": 1}
    with _server(invalid_api_key=True) as srv:
        _refused(openai.AuthenticationError, lambda: _ask(_client(srv)), code="invalid_api_key")


# ---------------------------------------------------------------------------- 6. rate limits
def test_rate_limit_buckets_and_headers() -> None:
    now = [1000.0]  # a fake clock: the buckets refill only when the test says so
    with _server(rpm={"gpt-4o": 2}, tpm=100_000, clock=lambda: now[0]) as srv:
        client = _client(srv)
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MSG, max_tokens=100)
        h, resp = raw.headers, raw.parse()
        assert resp.model == "gpt-4o-2024-08-06" and h["x-request-id"].startswith("req_")
        assert (h["x-ratelimit-limit-requests"], h["x-ratelimit-remaining-requests"]) == ("2", "1")
        assert h["x-ratelimit-reset-requests"] == "30s"
        spent = resp.usage.prompt_tokens + 100  # the prompt plus the max_tokens budget
        assert h["x-ratelimit-limit-tokens"] == "100000"
        assert h["x-ratelimit-remaining-tokens"] == str(100_000 - spent)
        assert h["x-ratelimit-reset-tokens"] == format_duration(spent * 60 / 100_000)
        _ask(client)
        err = _refused(openai.RateLimitError, lambda: _ask(client), code="rate_limit_exceeded", type="requests")
        assert err.response.headers["retry-after-ms"] == "30000" and err.response.headers["retry-after"] == "30"
        assert _ask(client, "gpt-4o-mini").model == "gpt-4o-mini-2024-07-18"  # limits are per model
        now[0] += 30
        assert _ask(client).choices[0].message.content == "ok"
    with _server(tpm=120, clock=lambda: now[0]) as srv:
        client = _client(srv)
        err = _refused(openai.RateLimitError, lambda: _ask(client, max_tokens=500), code="rate_limit_exceeded",
                       type="tokens")
        assert "too large" in err.message and "retry-after" not in err.response.headers
        _ask(client, max_tokens=90)
        err = _refused(openai.RateLimitError, lambda: _ask(client, max_tokens=90), type="tokens")
        assert int(err.response.headers["retry-after-ms"]) > 0
    assert [format_duration(s) for s in (0.02, 1, 8.64, 360, 3723)] == ["20ms", "1s", "8.64s", "6m0s", "1h2m3s"]


def test_concurrency_cap() -> None:
    async def hold(body: dict) -> None:  # admitted requests stay in flight until all six have arrived
        deadline = time.monotonic() + 5
        while srv.request_count < 6 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    with _server(answer=hold, max_concurrency=3) as srv:
        async def main() -> list[Any]:
            async with openai.AsyncOpenAI(api_key="sk-test", base_url=srv.base_url, max_retries=0) as client:
                calls = (client.chat.completions.create(model="gpt-4o", messages=MSG) for _ in range(6))
                return await asyncio.gather(*calls, return_exceptions=True)

        results = asyncio.run(main())
        refused = [r for r in results if isinstance(r, openai.RateLimitError)]
        assert len(refused) == 3 and all(r.code == "rate_limit_exceeded" for r in refused)
        assert sum(isinstance(r, openai.types.chat.ChatCompletion) for r in results) == 3
        assert srv.max_in_flight >= 4 and srv.in_flight == 0
        def broken(body: dict) -> str:
            raise KeyError("bug in the test's answer callback")

        srv.answer = broken  # a broken answer callback is a 500, not a hung connection
        _refused(openai.InternalServerError, lambda: _ask(_client(srv)), type="server_error")


# ---------------------------------------------------------------------------------- 7. Azure
def test_azure_classic_and_v1_routes() -> None:
    deployments = {"judge": "gpt-4o-mini", "reasoner": "o4-mini-2025-04-16"}
    with _server(deployments=deployments) as srv:
        azure = openai.AzureOpenAI(api_key="az-key", azure_endpoint=srv.azure_endpoint, api_version="2024-10-21",
                                   max_retries=0, timeout=10)
        resp = _ask(azure, "judge")
        assert resp.model == "gpt-4o-mini-2024-07-18" and resp.system_fingerprint.startswith("fp_")
        rec = srv.records[-1]
        assert rec.path == "/openai/deployments/judge/chat/completions"
        assert rec.query == {"api-version": "2024-10-21"} and rec.headers["api-key"] == "az-key"
        assert "authorization" not in rec.headers
        _refused(openai.NotFoundError, lambda: _ask(azure, "gpt-4o"), code="DeploymentNotFound")
        _refused(openai.BadRequestError, lambda: _ask(azure, "reasoner", max_tokens=10),
                 code="unsupported_parameter")  # the model rules hold on Azure too
        assert _ask(azure, "reasoner", max_completion_tokens=1000).model == "o4-mini-2025-04-16"

        url = f"{srv.azure_endpoint}/openai/deployments/judge/chat/completions"
        body = {"messages": MSG}
        status, err = _post(url, body, {"api-key": "az-key"})  # no api-version: Azure answers 404
        assert (status, err["error"]["code"]) == (404, "404")
        assert _post(url + "?api-version=latest", body, {"api-key": "az-key"})[0] == 400
        status, err = _post(url + "?api-version=2025-04-01-preview", body, {"authorization": "Bearer az-key"})
        assert (status, err["error"]["code"]) == (401, "401")
        assert _post(url + "?api-version=2025-04-01-preview", body, {"api-key": "az-key"})[0] == 200

        v1 = openai.OpenAI(api_key="az-key", base_url=srv.azure_v1_base_url, max_retries=0, timeout=10)
        assert _ask(v1, "judge").model == "gpt-4o-mini-2024-07-18"  # Bearer; model = deployment name
        assert srv.records[-1].path == "/openai/v1/chat/completions"
        assert srv.records[-1].headers["authorization"] == "Bearer az-key"
        v1_url = f"{srv.azure_endpoint}/openai/v1/chat/completions"
        assert _post(v1_url + "?api-version=preview", {"model": "judge", "messages": MSG},
                     {"api-key": "az-key"})[0] == 200
        dated = openai.OpenAI(api_key="az-key", base_url=srv.azure_v1_base_url, max_retries=0,
                              default_query={"api-version": "2024-10-21"})
        _refused(openai.BadRequestError, lambda: _ask(dated, "judge"), code="BadRequest")
        assert _post(v1_url, {"model": "judge", "messages": MSG}, {})[0] == 401


# ------------------------------------------------------------------- 8. answers, request shape, stats
def test_answer_callback_request_shape_and_stats() -> None:
    def answer(body: dict) -> str | None:  # None: the stand-in's default answer
        if "trace" in str(body):
            return current_request().headers.get("x-trace", "no header")
        return None

    with _server(answer=answer) as srv:
        client = _client(srv, default_headers={"x-trace": "t-42"})
        assert _ask(client, messages=[{"role": "user", "content": "trace me"}]).choices[0].message.content == "t-42"
        assert _ask(client).choices[0].message.content == "ok"
        two = _ask(client, n=2)
        assert [c.index for c in two.choices] == [0, 1] and two.choices[1].message.content == "ok"
        _refused(openai.BadRequestError, lambda: _ask(client, extra_body={"temprature": 0}),
                 code="unknown_parameter", param="temprature")
        _refused(openai.BadRequestError, lambda: _ask(client, messages=[]), code="empty_array", param="messages")
        _refused(openai.BadRequestError, lambda: _ask(client, messages=[{"role": "robot", "content": "x"}]),
                 param="messages[0].role")
        _refused(openai.BadRequestError, lambda: _ask(client, temperature=3), param="temperature")
        assert srv.request_count == 7 and srv.requests[0]["messages"][0]["content"] == "trace me"
        assert srv.records[0].headers["x-trace"] == "t-42" and srv.records[0].path == "/v1/chat/completions"
        assert srv.error_counts == {"unknown_parameter": 1, "empty_array": 1, "invalid_value": 2}
        assert srv.errors[0]["param"] == "temprature" and srv.max_in_flight == 1
        srv.reset_stats()
        assert srv.request_count == 0 and srv.errors == [] and srv.records == []


def test_loopback_responders_can_read_the_request() -> None:
    seen: list[tuple[str, str]] = []

    def responder(body: dict) -> str:
        req = current_request()
        seen.append((req.path, req.query["tag"]))
        return req.headers["x-judge"]

    with LoopbackServer(responder, max_lifetime_s=LIFETIME_S) as srv:
        client = openai.OpenAI(api_key="t", base_url=srv.base_url, max_retries=0, default_query={"tag": "a b"},
                               default_headers={"x-judge": "judge-1"})
        assert _ask(client, "any").choices[0].message.content == "judge-1"
        assert seen == [("/v1/chat/completions", "a b")] and srv.records[0].query_string == "tag=a+b"
    with pytest.raises(RuntimeError):
        current_request()


def test_strict_server_stops_by_itself() -> None:
    srv = StrictOpenAI(max_lifetime_s=0.3).start()
    assert srv.running
    time.sleep(0.6)
    assert not srv.running
    srv.stop()
