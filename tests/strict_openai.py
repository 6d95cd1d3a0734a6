"""A strict loopback stand-in for the OpenAI (and Azure OpenAI) Chat Completions API, for tests.

``StrictOpenAI`` builds on ``LoopbackServer`` (real HTTP/1.1 on 127.0.0.1, bounded lifetime) and refuses
requests the real service refuses, with OpenAI-shaped error JSON ``{"error": {message, type, param, code}}``
and the real HTTP status: unknown models, ``max_tokens``/``temperature`` on reasoning models, audio parts on
text models, JSON mode without the word "json", non-strict JSON schemas, exhausted quota, bad keys, rate
limits (token buckets, with ``x-ratelimit-*`` headers) and the Azure routes' api-version/api-key rules::

    with StrictOpenAI(rpm=60) as srv:
        client = openai.OpenAI(api_key="sk-test", base_url=srv.base_url, max_retries=0)
        resp = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert resp.model == "gpt-4o-2024-08-06" and resp.choices[0].message.content == "ok"

A request with a valid ``json_schema`` response format is answered with a JSON value generated from the
schema (``schema_answer``); otherwise the answer is "ok", unless the ``answer`` callback returns a string.
Reasoning models spend simulated reasoning tokens from ``max_completion_tokens``; answers over the budget
are cut with finish_reason "length". Streaming is not simulated (refused with 400).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import inspect
import itertools
import json
import math
import re
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loopback_server import LoopbackServer, Reply, Request


# --------------------------------------------------------------------------------------------- models
@dataclass(frozen=True)
class ModelSpec:
    """What the stand-in knows about one dated model snapshot."""

    snapshot: str
    max_output: int  # largest max_tokens / max_completion_tokens the model takes
    efforts: frozenset[str] = frozenset()  # accepted reasoning_effort values; empty: not a reasoning model
    audio: bool = False  # takes input_audio parts (and no images, no structured output)
    json_schema: bool = True  # takes response_format json_schema (older models: json_object only)

    @property
    def reasoning(self) -> bool:
        return bool(self.efforts)

    @property
    def fingerprint(self) -> str:
        return "fp_" + hashlib.sha256(self.snapshot.encode()).hexdigest()[:10]


_GPT5_EFFORTS = frozenset({"minimal", "low", "medium", "high"})
_O_SERIES_EFFORTS = frozenset({"low", "medium", "high"})  # the o-series refuses "minimal"

KNOWN_MODELS: dict[str, ModelSpec] = {m.snapshot: m for m in [
    ModelSpec("gpt-4o-2024-05-13", 4_096),
    ModelSpec("gpt-4-turbo-2024-04-09", 4_096, json_schema=False),
    ModelSpec("gpt-4o-2024-08-06", 16_384),
    ModelSpec("gpt-4o-2024-11-20", 16_384),
    ModelSpec("gpt-4o-mini-2024-07-18", 16_384),
    ModelSpec("gpt-4.1-2025-04-14", 32_768),
    ModelSpec("gpt-4.1-mini-2025-04-14", 32_768),
    ModelSpec("gpt-4.1-nano-2025-04-14", 32_768),
    ModelSpec("gpt-5-2025-08-07", 128_000, _GPT5_EFFORTS),
    ModelSpec("gpt-5-mini-2025-08-07", 128_000, _GPT5_EFFORTS),
    ModelSpec("gpt-5-nano-2025-08-07", 128_000, _GPT5_EFFORTS),
    ModelSpec("o1-2024-12-17", 100_000, _O_SERIES_EFFORTS),
    ModelSpec("o3-mini-2025-01-31", 100_000, _O_SERIES_EFFORTS),
    ModelSpec("o3-2025-04-16", 100_000, _O_SERIES_EFFORTS),
    ModelSpec("o4-mini-2025-04-16", 100_000, _O_SERIES_EFFORTS),
    ModelSpec("gpt-audio-2025-08-28", 16_384, audio=True),
    ModelSpec("gpt-audio-1.5", 16_384, audio=True),  # published without a dated snapshot
    ModelSpec("gpt-audio-mini-2025-10-06", 16_384, audio=True),
    ModelSpec("gpt-4o-audio-preview-2024-12-17", 16_384, audio=True),
    ModelSpec("gpt-4o-audio-preview-2025-06-03", 16_384, audio=True),
    ModelSpec("gpt-4o-mini-audio-preview-2024-12-17", 16_384, audio=True),
]}

DEFAULT_ALIASES: dict[str, str] = {
    "gpt-4o": "gpt-4o-2024-08-06", "gpt-4o-mini": "gpt-4o-mini-2024-07-18", "gpt-4-turbo": "gpt-4-turbo-2024-04-09",
    "gpt-4.1": "gpt-4.1-2025-04-14", "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-5": "gpt-5-2025-08-07", "gpt-5-mini": "gpt-5-mini-2025-08-07", "gpt-5-nano": "gpt-5-nano-2025-08-07",
    "o1": "o1-2024-12-17", "o3-mini": "o3-mini-2025-01-31", "o3": "o3-2025-04-16", "o4-mini": "o4-mini-2025-04-16",
    "gpt-audio": "gpt-audio-2025-08-28", "gpt-audio-mini": "gpt-audio-mini-2025-10-06",
    "gpt-4o-audio-preview": "gpt-4o-audio-preview-2025-06-03",
    "gpt-4o-mini-audio-preview": "gpt-4o-mini-audio-preview-2024-12-17",
}

# hidden reasoning tokens spent per request, by reasoning_effort ("medium" is the API default)
REASONING_TOKENS: dict[str, int] = {"minimal": 64, "low": 256, "medium": 512, "high": 1024}


# --------------------------------------------------------------------------------------------- errors
class ApiError(Exception):
    """A refusal; turned into ``{"error": {...}}`` with ``status`` by the server."""

    def __init__(self, status: int, message: str, *, type: str | None = "invalid_request_error",
                 param: str | None = None, code: str | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = dict(headers or {})

    def as_json(self) -> dict[str, Any]:
        return {"message": self.message, "type": self.type, "param": self.param, "code": self.code}


def _bad(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


# ------------------------------------------------------------------------------------ request checks
_CHAT_PARAMS = frozenset({
    "model", "messages", "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
    "max_completion_tokens", "max_tokens", "metadata", "modalities", "n", "parallel_tool_calls", "prediction",
    "presence_penalty", "prompt_cache_key", "reasoning_effort", "response_format", "safety_identifier", "seed",
    "service_tier", "stop", "store", "stream", "stream_options", "temperature", "tool_choice", "tools",
    "top_logprobs", "top_p", "user", "verbosity", "web_search_options",
})
_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_PART_TYPES = {  # content part types each role may send
    "system": {"text"}, "developer": {"text"}, "tool": {"text"}, "assistant": {"text", "refusal"},
    "user": {"text", "image_url", "input_audio"}, "function": {"text"},
}
_IMAGE_MAGIC = {"png": (b"\x89PNG\r\n\x1a\n",), "jpeg": (b"\xff\xd8\xff",), "gif": (b"GIF87a", b"GIF89a"),
                "webp": (b"RIFF",)}
_DATA_URL = re.compile(r"data:image/(?P<fmt>[a-z]+);base64,(?P<data>.*)", re.S)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _b64decode(data: Any) -> bytes | None:
    if not isinstance(data, str) or not data:
        return None
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None


def check_params(body: dict, spec: ModelSpec) -> None:
    """Top-level parameters: unknown names, reasoning-model rules, value ranges."""
    for name in body:
        if name not in _CHAT_PARAMS:
            raise _bad(f"Unknown parameter: '{name}'.", name, "unknown_parameter")
    given = {k: v for k, v in body.items() if v is not None}  # an explicit null means "use the default"
    if given.get("stream"):
        raise _bad("stream=true is not simulated by this stand-in; send non-streaming requests.", "stream")
    if "max_tokens" in given and "max_completion_tokens" in given:
        raise _bad("Set either 'max_tokens' or 'max_completion_tokens', not both.", "max_tokens", "invalid_value")
    if spec.reasoning:
        if "max_tokens" in given:
            raise _bad("Unsupported parameter: this model does not take 'max_tokens'; "
                       "send 'max_completion_tokens' instead.", "max_tokens", "unsupported_parameter")
        for name in ("temperature", "top_p"):
            if name in given and given[name] != 1:
                raise _bad(f"Unsupported value: this model only takes the default {name} (1), "
                           f"not {given[name]!r}.", name, "unsupported_value")
        effort = given.get("reasoning_effort")
        if effort is not None and effort not in spec.efforts:
            allowed = ", ".join(repr(e) for e in sorted(spec.efforts, key=list(REASONING_TOKENS).index))
            raise _bad(f"Unsupported value: reasoning_effort {effort!r} is not available for this model; "
                       f"use one of {allowed}.", "reasoning_effort", "unsupported_value")
    elif "reasoning_effort" in given:
        raise _bad("Unsupported parameter: 'reasoning_effort' only applies to reasoning models, not to this one.",
                   "reasoning_effort", "unsupported_parameter")
    for name, low, high in (("temperature", 0, 2), ("top_p", 0, 1)):
        if name in given and (not _is_number(given[name]) or not low <= given[name] <= high):
            raise _bad(f"Invalid '{name}': expected a number from {low} to {high}, got {given[name]!r}.",
                       name, "invalid_value")
    for name in ("max_tokens", "max_completion_tokens"):
        if name in given:
            if not _is_positive_int(given[name]):
                raise _bad(f"Invalid '{name}': expected a positive integer, got {given[name]!r}.", name,
                           "invalid_value")
            if given[name] > spec.max_output:
                raise _bad(f"{name} is too large: {given[name]}. This model supports at most {spec.max_output} "
                           "completion tokens.", name, "invalid_value")
    if "n" in given and not (_is_positive_int(given["n"]) and given["n"] <= 128):
        raise _bad(f"Invalid 'n': expected an integer from 1 to 128, got {given['n']!r}.", "n", "invalid_value")


def check_messages(body: dict, spec: ModelSpec) -> None:
    """Message roles and content parts, then which media the model takes."""
    messages = body.get("messages")
    if messages is None:
        raise _bad("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
    if not isinstance(messages, list):
        raise _bad("Invalid 'messages': expected an array of message objects.", "messages", "invalid_type")
    if not messages:
        raise _bad("Invalid 'messages': the array is empty; send at least one message.", "messages", "empty_array")
    media: set[str] = set()
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise _bad(f"Invalid '{where}': expected an object.", where, "invalid_type")
        role = msg.get("role")
        if role not in _ROLES:
            raise _bad(f"Invalid value {role!r} for '{where}.role'; supported roles: {', '.join(_ROLES)}.",
                       f"{where}.role", "invalid_value")
        content = msg.get("content")
        if content is None and role == "assistant" and (msg.get("tool_calls") or msg.get("function_call")):
            continue
        if role == "tool" and not isinstance(msg.get("tool_call_id"), str):
            raise _bad(f"Missing required parameter: '{where}.tool_call_id'.", f"{where}.tool_call_id",
                       "missing_required_parameter")
        if isinstance(content, str):
            continue
        if not isinstance(content, list) or not content:
            raise _bad(f"Invalid '{where}.content': expected a string or a non-empty array of content parts.",
                       f"{where}.content", "invalid_type")
        for j, part in enumerate(content):
            media.add(_check_part(part, f"{where}.content[{j}]", _PART_TYPES[role]))
    if "input_audio" in media and not spec.audio:
        raise _bad(f"This model ({spec.snapshot}) does not take audio input; input_audio content parts need an "
                   "audio model such as gpt-audio or gpt-4o-audio-preview.", "messages", "invalid_value")
    if "image_url" in media and spec.audio:
        raise _bad(f"This audio model ({spec.snapshot}) does not take image input; remove the image_url parts.",
                   "messages", "invalid_value")


def _check_part(part: Any, where: str, allowed: set[str]) -> str:
    """Check one content part's shape; returns its type."""
    if not isinstance(part, dict):
        raise _bad(f"Invalid '{where}': expected an object.", where, "invalid_type")
    kind = part.get("type")
    if kind not in allowed:
        raise _bad(f"Invalid value {kind!r} for '{where}.type'; this message role takes: {', '.join(sorted(allowed))}.",
                   f"{where}.type", "invalid_value")
    if kind in ("text", "refusal"):
        if not isinstance(part.get(kind), str):
            raise _bad(f"Missing required parameter: '{where}.{kind}' (a string).", f"{where}.{kind}",
                       "missing_required_parameter")
    elif kind == "image_url":
        image: dict = part["image_url"] if isinstance(part.get("image_url"), dict) else {}
        url = image.get("url")
        if not isinstance(url, str):
            raise _bad(f"Missing required parameter: '{where}.image_url.url'.", f"{where}.image_url.url",
                       "missing_required_parameter")
        if image.get("detail") not in (None, "auto", "low", "high"):
            raise _bad(f"Invalid value {image['detail']!r} for '{where}.image_url.detail'; use auto, low or high.",
                       f"{where}.image_url.detail", "invalid_value")
        if url.startswith(("http://", "https://")):
            return kind
        match = _DATA_URL.fullmatch(url)
        if match is None or match["fmt"] not in _IMAGE_MAGIC:
            raise _bad(f"Invalid '{where}.image_url.url': expected an http(s) URL or a base64 data URL of a png, "
                       "jpeg, gif or webp image (data:image/png;base64,...).", f"{where}.image_url.url",
                       "invalid_value")
        data = _b64decode(match["data"])
        if data is None or not data.startswith(_IMAGE_MAGIC[match["fmt"]]):
            raise _bad(f"The image in '{where}' is not valid base64 {match['fmt']} data.", f"{where}.image_url.url",
                       "invalid_image_format")
    else:  # input_audio
        audio: dict = part["input_audio"] if isinstance(part.get("input_audio"), dict) else {}
        fmt = audio.get("format")
        if fmt not in ("wav", "mp3"):
            raise _bad(f"Invalid value {fmt!r} for '{where}.input_audio.format'; supported: 'wav', 'mp3'.",
                       f"{where}.input_audio.format", "invalid_value")
        data = _b64decode(audio.get("data"))
        looks_right = data is not None and (
            data[:4] == b"RIFF" and data[8:12] == b"WAVE" if fmt == "wav"
            else data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0))
        if not looks_right:
            raise _bad(f"The audio in '{where}' is not valid base64 {fmt} data.", f"{where}.input_audio.data",
                       "invalid_value")
    return kind


def _message_text(body: dict) -> str:
    texts = []
    for msg in body.get("messages") or []:
        content = msg.get("content") if isinstance(msg, dict) else None
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts += [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
    return "\n".join(texts)


def check_response_format(body: dict, spec: ModelSpec) -> dict | None:
    """Validate ``response_format``; returns the JSON schema to answer with (None: free text / JSON mode)."""
    fmt = body.get("response_format")
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind not in ("text", "json_object", "json_schema"):
        raise _bad(f"Invalid value {kind!r} for 'response_format.type'; supported: 'text', 'json_object', "
                   "'json_schema'.", "response_format.type", "invalid_value")
    if kind == "text":
        return None
    if spec.audio:
        raise _bad(f"This audio model ({spec.snapshot}) does not support structured output: response_format "
                   f"{kind!r} is not available; ask for JSON in the prompt instead.", "response_format",
                   "unsupported_value")
    if kind == "json_object":
        if "json" not in _message_text(body).lower():
            raise _bad("response_format 'json_object' needs the word 'json' somewhere in 'messages'.", "messages")
        return None
    if not spec.json_schema:
        raise _bad(f"Invalid parameter: 'response_format' of type 'json_schema' is not supported with {spec.snapshot}.",
                   "response_format", "invalid_value")
    spec_block = fmt.get("json_schema")
    if not isinstance(spec_block, dict):
        raise _bad("Missing required parameter: 'response_format.json_schema'.", "response_format.json_schema",
                   "missing_required_parameter")
    name = spec_block.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
        raise _bad("Invalid 'response_format.json_schema.name': use 1 to 64 letters, digits, '_' or '-'.",
                   "response_format.json_schema.name", "invalid_value")
    schema = spec_block.get("schema", {})
    if not isinstance(schema, dict):
        raise _bad("Invalid 'response_format.json_schema.schema': expected an object.",
                   "response_format.json_schema.schema", "invalid_type")
    if spec_block.get("strict") is True:
        check_strict_schema(schema, name)
    return schema


# ------------------------------------------------------------------------------- strict JSON schemas
STRICT_KEYWORDS = frozenset({
    "type", "properties", "required", "additionalProperties", "enum", "const", "items", "anyOf", "description",
    "minimum", "maximum", "minItems", "maxItems",
    "title", "$defs", "$ref",  # pydantic emits these and OpenAI accepts them
})
_JSON_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
MAX_SCHEMA_DEPTH = 10


def check_strict_schema(schema: dict, name: str) -> None:
    """Refuse what OpenAI's strict structured-output mode refuses (a deliberately small keyword set)."""
    def fail(context: tuple[str, ...], problem: str) -> ApiError:
        return _bad(f"Invalid schema for response_format '{name}': In context={context!r}, {problem}",
                    "response_format")

    defs = schema.get("$defs", {})
    if not isinstance(defs, dict):
        raise fail(("$defs",), "'$defs' must be an object of schemas.")

    def walk(node: Any, ctx: tuple[str, ...], depth: int) -> None:
        if not isinstance(node, dict):
            raise fail(ctx, "a schema must be an object.")
        if depth > MAX_SCHEMA_DEPTH:
            raise fail(ctx, f"the schema nests deeper than {MAX_SCHEMA_DEPTH} levels.")
        for key in node:
            if key not in STRICT_KEYWORDS:
                raise fail(ctx, f"'{key}' is not permitted.")
        if "$defs" in node and ctx:
            raise fail(ctx, "'$defs' is only allowed at the root.")
        if "$ref" in node:
            ref = node["$ref"]
            if set(node) - {"$ref", "description", "title"}:
                raise fail(ctx, "'$ref' cannot be combined with other keywords.")
            if ref != "#" and not (isinstance(ref, str) and ref.startswith("#/$defs/") and ref[8:] in defs):
                raise fail(ctx, f"reference {ref!r} does not point into '$defs'.")
            return
        if "anyOf" in node:
            branches = node["anyOf"]
            if not ctx:
                raise fail(ctx, "the root schema cannot be 'anyOf'.")
            if not isinstance(branches, list) or not branches:
                raise fail(ctx, "'anyOf' must be a non-empty array of schemas.")
            for k, branch in enumerate(branches):
                walk(branch, (*ctx, "anyOf", str(k)), depth)
            return
        if "enum" in node and (not isinstance(node["enum"], list) or not node["enum"]):
            raise fail(ctx, "'enum' must be a non-empty array.")
        types = node.get("type")
        if types is None:
            if "enum" in node or "const" in node:
                return
            raise fail(ctx, "schema must have a 'type' key.")
        type_list = types if isinstance(types, list) else [types]
        if not type_list or any(t not in _JSON_TYPES for t in type_list):
            raise fail(ctx, f"unknown type {types!r}.")
        if "object" in type_list:
            props = node.get("properties", {})
            if not isinstance(props, dict):
                raise fail(ctx, "'properties' must be an object.")
            if node.get("additionalProperties") is not False:
                raise fail(ctx, "'additionalProperties' is required to be supplied and to be false.")
            required = node.get("required")
            missing = [k for k in props if not isinstance(required, list) or k not in required]
            if not isinstance(required, list) or missing:
                raise fail(ctx, "'required' is required to be supplied and to be an array including every key in "
                                f"properties. Missing {', '.join(repr(k) for k in missing) or 'the array'}.")
            extra = [k for k in required if k not in props]
            if extra:
                raise fail(ctx, f"'required' names keys that are not in properties: {extra!r}.")
            for key, sub in props.items():
                walk(sub, (*ctx, "properties", key), depth + 1)
        if "array" in type_list:
            if "items" not in node:
                raise fail(ctx, "an array schema must give 'items'.")
            walk(node["items"], (*ctx, "items"), depth + 1)
        for key in ("minItems", "maxItems"):
            if key in node and not (isinstance(node[key], int) and node[key] >= 0):
                raise fail(ctx, f"'{key}' must be a non-negative integer.")
        for key in ("minimum", "maximum"):
            if key in node and not _is_number(node[key]):
                raise fail(ctx, f"'{key}' must be a number.")

    if schema.get("type") != "object" or "anyOf" in schema:
        raise fail((), f"the root schema must have type 'object', got {schema.get('type')!r}.")
    for def_name, sub in defs.items():
        walk(sub, ("$defs", def_name), 1)
    walk(schema, (), 0)


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _Default()  # returned by a SchemaPolicy: "use the built-in choice for this node"
SchemaPolicy = Callable[[str, dict], Any]  # (JSON path such as "$.decisions[0].score", sub-schema) -> value


def schema_answer(schema: dict, policy: SchemaPolicy | None = None) -> Any:
    """A JSON value that satisfies ``schema``: every property, enum -> last value, numbers -> maximum (else
    minimum, else 1), strings -> "ok", arrays -> minItems items (1 when unset). ``policy`` may pick any
    node's value instead (return ``DEFAULT`` to keep the built-in choice). Deep inside a recursive schema,
    arrays shrink to minItems (0 when unset) and anyOf takes its null branch, so the value stays finite."""
    defs = schema.get("$defs", {})

    def gen(node: dict, path: str, depth: int) -> Any:
        if depth > 64:  # a recursive $ref with no way out
            raise ValueError(f"schema recursion too deep at {path}")
        deep = depth > 16
        if policy is not None and (value := policy(path, node)) is not DEFAULT:
            return value
        if "$ref" in node:
            ref = node["$ref"]
            return gen(schema if ref == "#" else defs[ref.removeprefix("#/$defs/")], path, depth + 1)
        if "const" in node:
            return node["const"]
        if "enum" in node:
            return node["enum"][-1]
        if "anyOf" in node:
            branches = node["anyOf"]
            chosen = next((b for b in branches if (b.get("type") == "null") == deep), branches[0])
            return gen(chosen, path, depth + 1)
        types = node.get("type", "string")
        kind = next((t for t in types if t != "null"), "null") if isinstance(types, list) else types
        if kind == "object":
            return {k: gen(v, f"{path}.{k}", depth + 1) for k, v in node.get("properties", {}).items()}
        if kind == "array":
            count = node.get("minItems", 0 if deep else 1)
            if "maxItems" in node:
                count = min(count, node["maxItems"])
            return [gen(node.get("items", {}), f"{path}[{i}]", depth + 1) for i in range(count)]
        if kind in ("integer", "number"):
            return node.get("maximum", node.get("minimum", 1))
        return {"string": "ok", "boolean": True, "null": None}.get(kind, "ok")

    return gen(schema, "$", 0)


# -------------------------------------------------------------------------------------- rate limits
class TokenBucket:
    """``capacity`` units, refilled continuously at capacity per minute (OpenAI's RPM/TPM semantics)."""

    def __init__(self, capacity: int, clock: Callable[[], float]) -> None:
        self.capacity, self._clock = capacity, clock
        self._per_s = capacity / 60.0
        self._level, self._stamp = float(capacity), clock()

    def _refill(self) -> None:
        now = self._clock()
        self._level = min(self.capacity, self._level + (now - self._stamp) * self._per_s)
        self._stamp = now

    def wait_for(self, amount: int) -> float:
        """Seconds until ``amount`` units are available (0: available now)."""
        self._refill()
        return max(0.0, (amount - self._level) / self._per_s)

    def take(self, amount: int) -> None:
        self._refill()
        self._level -= amount

    @property
    def remaining(self) -> int:
        self._refill()
        return max(0, math.floor(self._level))

    @property
    def reset_s(self) -> float:
        """Seconds until the bucket is full again (x-ratelimit-reset-*)."""
        self._refill()
        return (self.capacity - self._level) / self._per_s


def format_duration(seconds: float) -> str:
    """OpenAI's reset-header style: "20ms", "1s", "8.64s", "6m0s", "1h2m3s"."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{round(secs, 3):g}s"
    if hours or minutes:
        text = f"{int(minutes)}m{text}"
    return f"{int(hours)}h{text}" if hours else text


def _estimate_prompt(body: dict) -> tuple[int, int]:
    """(prompt tokens, of which audio tokens): ~4 characters a token, 85 per image, ~10 per audio second.
    Only called on requests that passed check_messages."""
    text_tokens, audio_tokens = 3, 0  # 3: the priming of the reply
    for msg in body["messages"]:
        text_tokens += 3  # per-message framing
        content = msg.get("content")
        parts: list[Any] = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        for part in parts:
            kind = part["type"]
            if kind in ("text", "refusal"):
                text_tokens += math.ceil(len(part[kind]) / 4)
            elif kind == "image_url":
                text_tokens += 85  # a low-detail image
            elif kind == "input_audio":
                seconds = len(part["input_audio"]["data"]) * 3 / 4 / 32_000  # base64 of 16 kHz 16-bit mono
                audio_tokens += max(1, round(seconds * 10))
    return text_tokens + audio_tokens, audio_tokens


# ----------------------------------------------------------------------------------------- server
_AZURE_DEPLOYMENT = re.compile(r"/openai/deployments/(?P<deployment>[^/]+)/chat/completions")
_AZURE_API_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}(-preview)?")
_AZURE_401 = ("Access denied due to an invalid subscription key or a wrong API endpoint; send a valid key for an "
              "active subscription in the 'api-key' header and use your resource's endpoint.")

DEFAULT_RPM, DEFAULT_TPM = 10_000, 30_000_000  # like a high usage tier; tests pass small budgets
Answer = Callable[[dict], str | None | Awaitable[str | None]]
Limit = int | Mapping[str, int]


@dataclass(frozen=True)
class _Route:
    kind: str  # "openai" | "azure" (deployments path) | "azure_v1"
    deployment: str | None = None


class StrictOpenAI(LoopbackServer):
    """Strict OpenAI / Azure OpenAI chat-completions stand-in on 127.0.0.1; use ``with`` or start()/stop().

    Attributes that may be changed while running: ``answer``, ``schema_policy``, ``insufficient_quota``,
    ``invalid_api_key``, ``max_concurrency``, ``latency_s``. Rate-limit budgets are fixed at construction.
    Stats (``requests``, ``records``, ``request_count``, ``max_in_flight``) cover every chat request with a
    JSON body, refused ones included; ``errors`` / ``error_counts`` list the refusals.
    """

    def __init__(self, answer: Answer | None = None, *, schema_policy: SchemaPolicy | None = None,
                 models: Mapping[str, ModelSpec] | None = None,
                 aliases: Mapping[str, str | Sequence[str]] | None = None,
                 deployments: Mapping[str, str] | None = None,
                 insufficient_quota: bool | Collection[str] = False,
                 invalid_api_key: bool | Collection[str] = False,
                 rpm: Limit = DEFAULT_RPM, tpm: Limit = DEFAULT_TPM, max_concurrency: int | None = None,
                 reasoning_tokens: Mapping[str, int] | None = None, clock: Callable[[], float] = time.monotonic,
                 latency_s: float = 0.0, fail_first: Sequence[int] = (), max_lifetime_s: float = 120.0,
                 max_requests: int = 1_000_000) -> None:
        super().__init__(latency_s=latency_s, fail_first=fail_first, max_lifetime_s=max_lifetime_s,
                         max_requests=max_requests)
        self.answer = answer  # (body) -> str, or None for the default answer; may be async
        self.schema_policy = schema_policy
        self.models: dict[str, ModelSpec] = dict(models if models is not None else KNOWN_MODELS)
        merged: dict[str, str | Sequence[str]] = {**DEFAULT_ALIASES, **(aliases or {})}
        self.aliases = {name: [target] if isinstance(target, str) else list(target) for name, target in merged.items()}
        for name, targets in self.aliases.items():
            if not targets or any(t not in self.models for t in targets):
                raise ValueError(f"alias {name!r} must point at known snapshots, got {targets!r}")
        self._alias_turns = {name: itertools.cycle(targets) for name, targets in self.aliases.items()}
        self.deployments = dict(deployments) if deployments is not None else None  # None: every model name
        self.insufficient_quota = insufficient_quota  # True: every key; a collection: just those keys
        self.invalid_api_key = invalid_api_key  # True: every key; a collection: just those keys
        self.max_concurrency = max_concurrency
        self.reasoning_tokens = dict(reasoning_tokens or REASONING_TOKENS)
        self._clock = clock
        self._rpm, self._tpm = self._per_snapshot(rpm, DEFAULT_RPM), self._per_snapshot(tpm, DEFAULT_TPM)
        self._buckets: dict[str, tuple[TokenBucket, TokenBucket]] = {}  # only touched on the server loop
        self._errors: list[dict[str, Any]] = []

    def __enter__(self) -> StrictOpenAI:
        self.start()
        return self

    # ------------------------------------------------------------------ addresses and stats
    @property
    def azure_endpoint(self) -> str:
        """For ``openai.AzureOpenAI(azure_endpoint=..., api_version=...)`` (classic deployments routes)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def azure_v1_base_url(self) -> str:
        """For ``openai.OpenAI(base_url=...)`` against Azure's v1 API (model = deployment name)."""
        return f"http://127.0.0.1:{self.port}/openai/v1/"

    @property
    def errors(self) -> list[dict[str, Any]]:
        """Every error reply: {"status", "path", "message", "type", "param", "code"}, in order."""
        with self._lock:
            return [dict(e) for e in self._errors]

    @property
    def error_counts(self) -> Counter[str]:
        """Error replies by ``code`` (or by ``type`` when the code is null)."""
        return Counter(str(e["code"] or e["type"]) for e in self.errors)

    def reset_stats(self) -> None:
        super().reset_stats()
        with self._lock:
            self._errors = []

    def model_ids(self) -> list[str]:
        return sorted(self.models) + sorted(self.aliases)

    # ------------------------------------------------------------------ request handling
    async def _dispatch(self, request: Request) -> tuple[int, dict, bytes]:
        try:
            route = self._route(request)
            if route is None:  # GET /v1/models
                self._check_openai_key(request)
                data = [{"id": m, "object": "model", "created": 0, "owned_by": "system"} for m in self.model_ids()]
                return 200, {}, json.dumps({"object": "list", "data": data}).encode()
            if not isinstance(request.body, dict):
                raise _bad("The request body is not valid JSON; send a JSON object.")
        except ApiError as e:
            return await self._render({}, self._error_reply_for(e, request))
        with self._tracked(request):
            try:
                reply = await self._chat(request, route)
            except ApiError as e:
                reply = self._error_reply_for(e, request)
            except Exception as e:  # noqa: BLE001 - a bug in the answer callback or here: a 500, not a hang
                reply = self._error_reply_for(ApiError(500, f"stand-in raised {e!r}", type="server_error"), request)
            return await self._render(request.body, reply)

    def _route(self, request: Request) -> _Route | None:
        method, path = request.method, request.path
        if method == "GET" and path == "/v1/models":
            return None
        if method == "POST":
            if path == "/v1/chat/completions":
                return _Route("openai")
            if path == "/openai/v1/chat/completions":
                return _Route("azure_v1")
            if match := _AZURE_DEPLOYMENT.fullmatch(path):
                return _Route("azure", match["deployment"])
        if path.startswith("/openai/"):
            raise ApiError(404, "Resource not found", type=None, code="404")
        raise ApiError(404, f"Invalid URL ({method} {path})")

    async def _chat(self, request: Request, route: _Route) -> Reply:
        body: dict = request.body
        key = self._check_auth(request, route)
        if self._flag_applies(self.insufficient_quota, key):
            # no retry-after: waiting does not help, the account needs billing attention
            raise ApiError(429, "This account has run out of quota; check your plan and billing details.",
                           type="insufficient_quota", code="insufficient_quota")
        spec = self._resolve_model(body, route)
        if self.max_concurrency is not None and self.in_flight > self.max_concurrency:
            raise ApiError(429, f"Too many concurrent requests: at most {self.max_concurrency} may be in flight.",
                           type="requests", code="rate_limit_exceeded",
                           headers={"retry-after-ms": "100", "retry-after": "1"})
        check_params(body, spec)
        check_messages(body, spec)
        schema = check_response_format(body, spec)
        prompt_tokens, audio_tokens = _estimate_prompt(body)
        budget = body.get("max_completion_tokens") or body.get("max_tokens")
        headers = self._admit(spec.snapshot, prompt_tokens + (budget or 0))
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)
        planned = self._planned_failure()
        if planned is not None:
            return planned
        text = await self._answer_text(body, schema)
        payload = self._completion_json(body, spec, text, prompt_tokens, audio_tokens, route)
        headers["x-request-id"] = "req_" + secrets.token_hex(16)
        headers["openai-processing-ms"] = str(round(self.latency_s * 1000))
        return Reply(raw_body=json.dumps(payload).encode(), headers=headers)

    @staticmethod
    def _flag_applies(flag: bool | str | Collection[str], key: str) -> bool:
        """True applies to every key; a string or a collection of strings only to those keys."""
        if isinstance(flag, bool):
            return flag
        return key == flag if isinstance(flag, str) else key in flag

    def _check_openai_key(self, request: Request) -> str:
        auth = request.headers.get("authorization", "")
        key = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if not key:
            raise ApiError(401, "No API key was sent; pass it as 'Authorization: Bearer <key>'.")
        return key

    def _check_auth(self, request: Request, route: _Route) -> str:
        """The API key of the request, or a 401 (OpenAI: Bearer; Azure classic: api-key; Azure v1: either)."""
        if route.kind == "azure":
            version = request.query.get("api-version")
            if version is None:
                raise ApiError(404, "Resource not found", type=None, code="404")
            if not _AZURE_API_VERSION.fullmatch(version):
                raise ApiError(400, f"API version {version!r} is not supported.", type=None, code="BadRequest")
        elif route.kind == "azure_v1" and request.query.get("api-version", "preview") != "preview":
            raise ApiError(400, "The v1 API takes no api-version other than 'preview'.", type=None,
                           code="BadRequest")
        if route.kind == "openai":
            key = self._check_openai_key(request)
            if self._flag_applies(self.invalid_api_key, key):
                raise ApiError(401, f"The API key {key[:3]}...{key[-4:]} is not valid; check the key in your "
                                    "account settings.", code="invalid_api_key")
            return key
        key = request.headers.get("api-key", "")
        if not key and route.kind == "azure_v1":
            auth = request.headers.get("authorization", "")
            key = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if not key or self._flag_applies(self.invalid_api_key, key):
            raise ApiError(401, _AZURE_401, type=None, code="401")
        return key

    def _resolve_model(self, body: dict, route: _Route) -> ModelSpec:
        name = route.deployment if route.kind == "azure" else body.get("model")
        if not isinstance(name, str) or not name:
            raise _bad("Missing required parameter: 'model'.", "model", "missing_required_parameter")
        if route.kind != "openai":  # Azure: the name is a deployment
            if self.deployments is not None and name not in self.deployments:
                raise ApiError(404, f"There is no deployment named {name!r} on this resource.", type=None,
                               code="DeploymentNotFound")
            model = self.deployments[name] if self.deployments is not None else name
            if model not in self.models and model not in self.aliases:
                raise ApiError(404, f"There is no deployment named {name!r} on this resource.", type=None,
                               code="DeploymentNotFound")
            name = model
        if name in self.aliases:
            name = next(self._alias_turns[name])  # loop thread only: round-robin over the alias targets
        if name not in self.models:
            raise ApiError(404, f"The model {name!r} does not exist, or this key has no access to it.",
                           code="model_not_found")
        return self.models[name]

    def _per_snapshot(self, limit: Limit, default: int) -> Callable[[str], int]:
        """A budget per snapshot. Mapping keys are snapshots or aliases (an alias covers all its targets);
        snapshots it does not name get ``default``."""
        if isinstance(limit, int):
            return lambda snapshot: limit
        table: dict[str, int] = {}
        for name, value in limit.items():
            for snapshot in self.aliases.get(name, [name]):
                table[snapshot] = value
        return lambda snapshot: table.get(snapshot, default)

    def _admit(self, snapshot: str, tokens: int) -> dict[str, str]:
        """Take one request and ``tokens`` from the model's buckets, or raise 429; returns x-ratelimit-*."""
        if snapshot not in self._buckets:
            self._buckets[snapshot] = (TokenBucket(self._rpm(snapshot), self._clock),
                                       TokenBucket(self._tpm(snapshot), self._clock))
        requests, token_bucket = self._buckets[snapshot]
        if tokens > token_bucket.capacity:
            raise ApiError(429, f"Request too large for {snapshot} on tokens per min (TPM): limit "
                                f"{token_bucket.capacity}, requested {tokens}. Send fewer input or output tokens.",
                           type="tokens", code="rate_limit_exceeded", headers=self._limit_headers(snapshot))
        for bucket, amount, unit in ((requests, 1, "requests per min (RPM)"), (token_bucket, tokens,
                                                                                  "tokens per min (TPM)")):
            wait = bucket.wait_for(amount)
            if wait > 0:
                raise ApiError(429, f"Rate limit reached for {snapshot} on {unit}: limit {bucket.capacity}, "
                                    f"requested {amount}. Try again in {format_duration(wait)}.",
                               type=unit.split()[0], code="rate_limit_exceeded",
                               headers={"retry-after-ms": str(math.ceil(wait * 1000)),
                                        "retry-after": str(math.ceil(wait)), **self._limit_headers(snapshot)})
        requests.take(1)
        token_bucket.take(tokens)
        return self._limit_headers(snapshot)

    def _limit_headers(self, snapshot: str) -> dict[str, str]:
        headers = {}
        for unit, bucket in zip(("requests", "tokens"), self._buckets[snapshot]):
            headers[f"x-ratelimit-limit-{unit}"] = str(bucket.capacity)
            headers[f"x-ratelimit-remaining-{unit}"] = str(bucket.remaining)
            headers[f"x-ratelimit-reset-{unit}"] = format_duration(bucket.reset_s)
        return headers

    async def _answer_text(self, body: dict, schema: dict | None) -> str:
        if self.answer is not None:
            text = self.answer(body)
            if inspect.isawaitable(text):
                text = await text
            if text is not None:
                return text
        return self.default_answer(body, schema)

    def default_answer(self, body: dict, schema: dict | None = None) -> str:
        """JSON generated from the schema, ``{"answer": "ok"}`` in JSON mode, else "ok"."""
        if schema is not None:
            return json.dumps(schema_answer(schema, self.schema_policy), separators=(",", ":"))
        if (body.get("response_format") or {}).get("type") == "json_object":
            return '{"answer":"ok"}'
        return "ok"

    def _completion_json(self, body: dict, spec: ModelSpec, text: str, prompt_tokens: int, audio_tokens: int,
                         route: _Route) -> dict[str, Any]:
        budget = body.get("max_completion_tokens") or body.get("max_tokens") or spec.max_output
        reasoning = self.reasoning_tokens[body.get("reasoning_effort") or "medium"] if spec.reasoning else 0
        reasoning = min(reasoning, budget)  # the hidden reasoning is spent first
        room = budget - reasoning
        content, finish = text, "stop"
        if math.ceil(len(text) / 4) > room:  # ~4 characters a token
            content, finish = text[:room * 4], "length"
        answer_tokens = math.ceil(len(content) / 4)
        n = body.get("n") or 1
        choice: dict[str, Any] = {"message": {"role": "assistant", "content": content, "refusal": None,
                                              "annotations": []}, "logprobs": None, "finish_reason": finish}
        if route.kind != "openai":
            choice["content_filter_results"] = {}
        completion_tokens = (reasoning + answer_tokens) * n
        payload: dict[str, Any] = {
            "id": "chatcmpl-" + secrets.token_hex(12), "object": "chat.completion", "created": int(time.time()),
            "model": spec.snapshot,
            "choices": [{"index": i, **choice} for i in range(n)],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens,
                      "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": audio_tokens},
                      "completion_tokens_details": {"reasoning_tokens": reasoning * n, "audio_tokens": 0,
                                                    "accepted_prediction_tokens": 0,
                                                    "rejected_prediction_tokens": 0}},
            "service_tier": "default", "system_fingerprint": spec.fingerprint,
        }
        if route.kind != "openai":
            payload["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": {}}]
        return payload

    def _error_reply_for(self, error: ApiError, request: Request) -> Reply:
        with self._lock:
            self._errors.append({"status": error.status, "path": request.path, **error.as_json()})
        return Reply(status=error.status, raw_body=json.dumps({"error": error.as_json()}).encode(),
                     headers=error.headers)

