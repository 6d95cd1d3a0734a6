"""One chat client for every OpenAI-compatible server; the LLM judge and the `openai:`/`azure:` systems use it.

The request is shaped per model family and per server, because real servers disagree:

- text-only content goes as a plain string (many chat templates cannot render a list of parts);
- reasoning models (o1, o3, o4-mini, gpt-5 and later) refuse `max_tokens` and any temperature but the
  default: they get `max_completion_tokens`, no temperature, and `reasoning_effort` when set;
- a role's JSON schema is asked for in the first dialect the server takes, learned once per client
  (one server and model) under a lock: `json_schema` (OpenAI, vLLM, SGLang, Ollama, llama.cpp) -> `json_object` with a
  `schema` (llama-cpp-python) -> `json_object` (only when the prompt says "json", as OpenAI requires)
  -> plain text. A request already in flight when the dialect changes is simply re-sent; audio models
  take no structured output at all.

Failures are sorted by whether waiting can fix them. Transient ones (429 rate limits, 408/409, 5xx,
timeouts) are retried with the server's own delay; a rate limit also narrows the concurrency. Those
that cannot heal stop the run within seconds with the server's own words: a bad key, an unknown model,
exhausted quota, a refused content type, or the same error on the first requests with no success.
A `length` finish gets one retry with twice the budget. Every reply records what actually answered:
the served model snapshot, `system_fingerprint`, `finish_reason` and token usage.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .retry import AdaptiveLimiter, back_off, is_transient, retry_after_s
from .types import AnyCapError

FAMILIES = ("chat", "reasoning", "audio")
LADDER = ("json_schema", "json_object_schema", "json_object", "plain")
REASONING_BUDGET = 4096  # reasoning models spend hidden tokens from the same budget before answering
FAIL_FAST_AFTER = 5  # the same non-transient error on this many first requests, none answered: stop
# Settings a --judge-param / --model-args key sets on the client; any other key goes to the server as is.
CLIENT_PARAMS = ("reasoning_effort", "max_tokens", "temperature", "seed", "family", "structured", "api_version",
                 "timeout_s", "max_attempts", "retry_base_s")
_REFUSED_MEDIA_RE = re.compile(r"image|audio|vision|multimodal|multi-modal|content type|content part|modalit", re.I)
_FORMAT_RE = re.compile(r"response_format|json|schema|grammar", re.I)


class ChatFatalError(AnyCapError):
    """The server cannot do this work at all; retrying would only repeat the failure for every item."""


class AnswerError(ValueError):
    """The text came back but is not a usable answer (the caller's check); it is worth another try."""


def model_family(model: str) -> str:
    """chat | reasoning | audio, from the model name (a deployment name may need `family=` to say)."""
    name = model.rsplit("/", 1)[-1].lower()
    if "audio" in name:
        return "audio"
    if re.match(r"(o\d+)(-|$)|gpt-([5-9]|\d\d)", name) and "chat-latest" not in name:
        return "reasoning"
    return "chat"


# a settings key that names a secret: refused on the command line, so no key is ever written to run files
SECRET_ARG = re.compile(r"^(api_?key|key|token|secret|password)$|_(key|token|secret|password)$", re.I)


def param_value(text: str) -> Any:
    """A setting's value as JSON when it parses (numbers, true, objects), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text.strip()


def parse_params(values: list[str] | None, where: str = "--judge-param") -> dict[str, Any]:
    """['k=v', ...] -> {k: param_value(v)}."""
    out: dict[str, Any] = {}
    for pair in values or []:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise AnyCapError(f"{where}: '{pair}' is not key=value")
        if SECRET_ARG.search(key):
            raise AnyCapError(f"{where}: '{key}' looks like a secret; keys come from the environment or a key file")
        out[key] = param_value(value)
    return out


def read_api_key(key_file: str | None, base_url: str | None, *, azure: bool = False) -> str:
    """The key from a file, else the environment, else 'EMPTY' for a local server that needs none."""
    if key_file:
        try:
            key = Path(key_file).expanduser().read_text().strip()
        except OSError as exc:
            raise AnyCapError(f"cannot read the key file {key_file}: {exc.strerror}") from None
        if not key:
            raise AnyCapError(f"the key file {key_file} is empty")
        return key
    names = ("AZURE_OPENAI_API_KEY", "OPENAI_API_KEY") if azure else ("OPENAI_API_KEY",)
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    if base_url and not azure:  # local servers (vLLM, llama.cpp, Ollama, ...) usually need no key
        return "EMPTY"
    raise AnyCapError(f"no API key: set {' or '.join(names)}, pass a key file (--judge-key-file FILE or "
                      "key_file=FILE in --model-args), or point at a local server with a base URL")


@dataclass
class ChatReply:
    ok: bool
    text: str = ""
    value: Any = None  # what the caller's check returned
    error: str = ""
    attempts: int = 0
    served_model: str = ""  # the snapshot that answered (response `model`), e.g. gpt-4o-mini-2024-07-18
    system_fingerprint: str = ""
    finish_reason: str = ""
    usage: dict[str, int] = field(default_factory=dict)


def _is_text_only(parts: list[dict[str, Any]]) -> bool:
    return all(p.get("type") == "text" for p in parts)


def _prompt_text(parts: list[dict[str, Any]]) -> str:
    return "\n\n".join(p["text"] for p in parts if p.get("type") == "text")


class ChatClient:
    """`await client.complete(parts, schema=..., check=...)` -> ChatReply; raises ChatFatalError."""

    def __init__(self, model: str, *, label: str, base_url: str | None = None, api_key: str = "EMPTY",
                 azure_api_version: str | None = None, concurrency: int = 16, max_attempts: int = 5,
                 timeout_s: float = 120.0, retry_base_s: float = 0.5, temperature: float | None = 0.0,
                 seed: int | None = 1234, max_tokens: int = 1024, reasoning_effort: str | None = None,
                 family: str | None = None, structured: str = "auto", extra_body: dict[str, Any] | None = None,
                 settings_hint: str = "--judge-key-file and --judge-base-url"):
        import openai

        self._openai = openai
        self.model, self.label = model, label
        self.settings_hint = settings_hint  # where the user sets the key and the server, for error messages
        self.base_url = base_url
        self.azure_api_version = azure_api_version
        if azure_api_version is not None:
            if not base_url:
                raise AnyCapError(f"{label}: an Azure deployment needs its endpoint, e.g. "
                                  "--judge-base-url https://RESOURCE.openai.azure.com")
            self.client: Any = openai.AsyncAzureOpenAI(azure_endpoint=base_url, azure_deployment=model,
                                                       api_version=azure_api_version, api_key=api_key,
                                                       max_retries=0, timeout=timeout_s)
        else:
            self.client = openai.AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s)
        if family is not None and family not in FAMILIES:
            raise AnyCapError(f"{label}: family={family!r}; use one of {', '.join(FAMILIES)}")
        self.family = family or model_family(model)
        if structured not in ("auto", *LADDER, "none"):
            raise AnyCapError(f"{label}: structured={structured!r}; use auto, json_schema, json_object_schema, "
                              "json_object or none")
        if max_attempts < 1 or concurrency < 1:
            raise AnyCapError(f"{label}: concurrency and max_attempts must be at least 1")
        self.temperature, self.seed, self.max_tokens = temperature, seed, max_tokens
        self.reasoning_effort = reasoning_effort
        self.extra_body = dict(extra_body or {})
        self.max_attempts, self.retry_base_s, self.timeout_s = max_attempts, retry_base_s, timeout_s
        self.limiter = AdaptiveLimiter(concurrency)
        self.notes: list[str] = []  # said once per client (the runner prints and keeps them)
        if self.family == "reasoning":
            if self.max_tokens < REASONING_BUDGET:
                self.max_tokens = REASONING_BUDGET
            self.notes.append(f"{label} {model} is a reasoning model: sent max_completion_tokens={self.max_tokens} "
                              "(the budget includes hidden reasoning) and no temperature"
                              + (f", reasoning_effort={reasoning_effort}" if reasoning_effort else ""))
        elif reasoning_effort:
            raise AnyCapError(f"{label}: reasoning_effort is for reasoning models (o1, o3, o4-mini, gpt-5...), not "
                              f"{model}; pass family=reasoning if this deployment is one")
        # the structured-output dialect, learned for this server and model; a step down is decided once
        self.output_mode = "plain" if structured == "none" or self.family == "audio" else \
            "json_schema" if structured == "auto" else structured
        self._mode_lock: asyncio.Lock | None = None  # made on first use, inside the running loop
        self.output_mode_history: list[str] = []  # why each step down happened
        self.successes = 0
        self._first_errors: list[str] = []
        self._fatal: str | None = None

    # -- what is sent -------------------------------------------------------------------------------

    def request_shape(self) -> dict[str, Any]:
        """How requests to this model are built (recorded in the manifest)."""
        return {"family": self.family,
                "token_limit": "max_completion_tokens" if self.family == "reasoning" else "max_tokens",
                "temperature": None if self.family == "reasoning" else self.temperature,
                "reasoning_effort": self.reasoning_effort, "structured_output": self.output_mode,
                "structured_output_history": list(self.output_mode_history),
                "azure_api_version": self.azure_api_version, "extra_body": dict(self.extra_body),
                "concurrency": {"start": self.limiter.ceiling, "lowest": self.limiter.lowest,
                                "rate_limited_replies": self.limiter.rate_limited}}

    def identity_fields(self) -> dict[str, Any]:
        """What changes the answer (part of the cache key of every judgment and generation)."""
        out: dict[str, Any] = {"max_tokens": self.max_tokens, "family": self.family, "seed": self.seed}
        if self.family != "reasoning":
            out["temperature"] = self.temperature
        if self.reasoning_effort:
            out["reasoning_effort"] = self.reasoning_effort
        if self.extra_body:
            out["extra_body"] = self.extra_body
        return out

    def _kwargs(self, parts: list[dict[str, Any]], budget: int, mode: str, schema: dict[str, Any] | None,
                prompt: str) -> dict[str, Any]:
        content: Any = prompt if _is_text_only(parts) else parts
        kwargs: dict[str, Any] = {"model": self.model, "messages": [{"role": "user", "content": content}]}
        if self.family == "reasoning":
            kwargs["max_completion_tokens"] = budget
            if self.reasoning_effort:
                kwargs["reasoning_effort"] = self.reasoning_effort
        else:
            kwargs["max_tokens"] = budget
            if self.temperature is not None:
                kwargs["temperature"] = self.temperature
        if self.seed is not None:
            kwargs["seed"] = self.seed
        if schema is not None:
            if mode == "json_schema":
                kwargs["response_format"] = {"type": "json_schema", "json_schema": {
                    "name": schema.get("title", "answer"), "schema": schema, "strict": True}}
            elif mode == "json_object_schema":
                kwargs["response_format"] = {"type": "json_object", "schema": schema}
            elif mode == "json_object" and "json" in prompt.lower():
                kwargs["response_format"] = {"type": "json_object"}
        if self.extra_body:
            kwargs["extra_body"] = self.extra_body
        return kwargs

    async def _step_down(self, tried: str, reason: str) -> None:
        if self._mode_lock is None:
            self._mode_lock = asyncio.Lock()
        async with self._mode_lock:  # one decision; requests that raced it find it made and just re-send
            if self.output_mode == tried and tried != "plain":
                self.output_mode = LADDER[LADDER.index(tried) + 1]
                self.output_mode_history.append(f"{tried} refused ({reason[:160]}); now {self.output_mode}")

    # -- failure classes ----------------------------------------------------------------------------

    def _stop(self, message: str) -> ChatFatalError:
        self._fatal = message
        return ChatFatalError(message)

    def _where(self) -> str:
        return f"{self.label} at {self.base_url or 'api.openai.com'}"

    def _non_transient(self, message: str) -> None:
        """Count a failure that waiting will not fix; stop when the first requests all fail alike."""
        if self.successes:
            return
        self._first_errors.append(message)
        if len(self._first_errors) >= FAIL_FAST_AFTER and len(set(self._first_errors)) == 1:
            raise self._stop(f"{self._where()}: the first {FAIL_FAST_AFTER} requests all failed with: {message}. "
                             "Nothing was scored from these; fix the setting it names and re-run.")

    # -- the call -----------------------------------------------------------------------------------

    async def complete(self, parts: list[dict[str, Any]], *, schema: dict[str, Any] | None = None,
                       check: Callable[[str], Any] = lambda text: text, accept_truncated: bool = False) -> ChatReply:
        """Ask once (with retries). `check(text)` returns the value or raises AnswerError (retried)."""
        openai = self._openai
        prompt = _prompt_text(parts)
        has_media = not _is_text_only(parts)
        reply = ChatReply(False)
        usage: dict[str, int] = {}
        budget = self.max_tokens
        attempt = step_downs = 0
        error = ""
        while attempt < self.max_attempts:
            if self._fatal:
                raise ChatFatalError(self._fatal)
            attempt += 1
            mode = self.output_mode if schema is not None else "plain"
            retry_after: float | None = None
            try:
                async with self.limiter:
                    raw = await self.client.chat.completions.with_raw_response.create(
                        **self._kwargs(parts, budget, mode, schema, prompt))
                response = raw.parse()
            except openai.APIStatusError as exc:
                status, message = exc.status_code, _server_words(exc)
                code = _error_code(exc)
                if code == "insufficient_quota":
                    raise self._stop(f"{self._where()}: {message} (insufficient_quota: add credit or use another "
                                     "key; retrying cannot help)") from None
                if status in (401, 403) or (status == 404 and not self.successes):
                    raise self._stop(f"{self._where()}: HTTP {status}: {message}. Check the key, the model name and "
                                     f"the server ({self.settings_hint}).") from None
                if mode != "plain" and status in (400, 422, 500, 501) and _FORMAT_RE.search(message) \
                        and step_downs < len(LADDER):
                    step_downs += 1
                    attempt -= 1  # the server's dialect, not this request, was wrong: re-send at once
                    await self._step_down(mode, f"HTTP {status}: {message}")
                    continue
                if has_media and status in (400, 415, 422, 500) and _REFUSED_MEDIA_RE.search(message) \
                        and not self.successes:
                    raise self._stop(f"{self._where()} refused the media in the request: HTTP {status}: {message}. "
                                     "Use a model that takes this content type, or --judge-media never / "
                                     "media=never for text only.") from None
                error = f"HTTP {status}: {message}"
                transient = is_transient(exc)
                if status == 429:
                    self.limiter.on_rate_limited()
                if not transient or status == 500:  # a 500 may be a server's way of refusing the request
                    self._non_transient(error)
                if not transient:
                    return self._done(reply, error=error, attempts=attempt, usage=usage)
                retry_after = retry_after_s(exc)
            except (openai.APITimeoutError, openai.APIConnectionError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            except (openai.APIError, ValueError) as exc:  # a malformed body: the server's failure, retried
                error = f"{type(exc).__name__}: {exc}"
            else:
                self.successes += 1
                _add_usage(usage, response.usage)
                self.limiter.on_success(raw.headers, getattr(response.usage, "total_tokens", 0) or 0)
                text = _read_provenance(reply, response)
                retried_longer = budget > self.max_tokens
                if reply.finish_reason == "length" and not (accept_truncated and text.strip() and retried_longer):
                    error = f"the answer was cut at {budget} tokens (finish_reason length)"
                    if budget == self.max_tokens:
                        budget *= 2  # one more try with twice the budget
                        continue
                    return self._done(reply, error=f"truncated: {error}, also after doubling the budget",
                                      attempts=attempt, usage=usage, text=text)
                try:
                    value = check(text)
                except AnswerError as exc:
                    error = f"invalid answer: {exc}"
                else:
                    reply.ok, reply.value = True, value
                    return self._done(reply, attempts=attempt, usage=usage, text=text)
            if attempt < self.max_attempts:
                await back_off(attempt, self.retry_base_s, retry_after)
        return self._done(reply, error=f"after {self.max_attempts} attempts: {error}", attempts=attempt, usage=usage)

    # -- the Batch API (anycapeval.batch): the same body, the same reading, no negotiation --------------

    def request_body(self, parts: list[dict[str, Any]], *, schema: dict[str, Any] | None = None) -> dict[str, Any]:
        """The JSON body `complete` would send first (the current dialect, the base budget, extra_body
        merged in as the SDK merges it): one Batch API line's `body`."""
        mode = self.output_mode if schema is not None else "plain"
        kwargs = self._kwargs(parts, self.max_tokens, mode, schema, _prompt_text(parts))
        extra = kwargs.pop("extra_body", {})
        return {**kwargs, **extra}

    def read_completion(self, body: dict[str, Any], *, check: Callable[[str], Any] = lambda text: text) -> ChatReply:
        """A chat completion that came back some other way (a Batch API output line's `response.body`),
        read as `complete` reads a reply: provenance, usage, then `check`. A `length` finish or a failed
        check is a failed reply (the caller retries it by its rules; there is no second try here)."""
        try:
            response = self._openai.types.chat.ChatCompletion.construct(**body)
            reply, usage = ChatReply(False), dict[str, int]()
            _add_usage(usage, response.usage)
            text = _read_provenance(reply, response)
        except Exception as exc:  # noqa: BLE001 - a malformed body is a failed line, never a crash
            return ChatReply(False, error=f"malformed completion: {type(exc).__name__}: {exc}", attempts=1)
        if reply.finish_reason == "length":
            return self._done(reply, error=f"truncated: the answer was cut at {self.max_tokens} tokens (finish_reason "
                              "length)", attempts=1, usage=usage, text=text)
        try:
            reply.value = check(text)
        except AnswerError as exc:
            return self._done(reply, error=f"invalid answer: {exc}", attempts=1, usage=usage, text=text)
        reply.ok = True
        return self._done(reply, attempts=1, usage=usage, text=text)

    @staticmethod
    def _done(reply: ChatReply, *, attempts: int, usage: dict[str, int], error: str = "", text: str = "") -> ChatReply:
        reply.error, reply.attempts, reply.usage = error, attempts, usage
        reply.text = text or reply.text
        return reply

    async def aclose(self) -> None:
        await self.client.close()


def _read_provenance(reply: ChatReply, response: Any) -> str:
    """Put what answered (served model, fingerprint, finish reason) on the reply; return the text."""
    choice = response.choices[0] if response.choices else None
    reply.served_model = response.model or ""
    reply.system_fingerprint = getattr(response, "system_fingerprint", None) or ""
    reply.finish_reason = (choice.finish_reason or "") if choice else ""
    return (choice.message.content or "") if choice else ""


def _server_words(exc: Any) -> str:
    """The server's own error message, without the SDK's prefix."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return str(getattr(exc, "message", exc))


def _error_code(exc: Any) -> str:
    body = getattr(exc, "body", None)
    inner = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(inner, dict):
        return str(inner.get("code") or inner.get("type") or "")
    return str(getattr(exc, "code", "") or "")


def _add_usage(total: dict[str, int], usage: Any) -> None:
    if usage is None:
        return
    for name in ("prompt_tokens", "completion_tokens"):
        total[name] = total.get(name, 0) + (getattr(usage, name, 0) or 0)
    details = getattr(usage, "completion_tokens_details", None)
    if details is not None and getattr(details, "reasoning_tokens", None):
        total["reasoning_tokens"] = total.get("reasoning_tokens", 0) + details.reasoning_tokens
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    if prompt_details is not None and getattr(prompt_details, "cached_tokens", None):
        total["cached_tokens"] = total.get("cached_tokens", 0) + prompt_details.cached_tokens
