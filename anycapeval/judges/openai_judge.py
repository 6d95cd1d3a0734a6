"""A judge on any OpenAI-compatible chat server (OpenAI, Azure, vLLM, SGLang, Ollama, LM Studio).

Temperature 0 and a fixed seed by default; JSON mode where the server accepts it; bounded retries
with backoff on 429, 5xx, timeouts, connection errors and answers that fail validation; a concurrency
limit of its own. Errors a retry cannot fix (bad key, unknown model) stop the run at once.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from ..media import audio_payload, image_data_url, video_frame_urls
from ..retry import back_off, retry_after_s
from ..types import JUDGE_ERROR, OK, AnyCapError, JudgeRequest, Judgment
from .parse import JudgeAnswerError
from .roles import parse_for


class JudgeFatalError(AnyCapError):
    """The judge cannot work at all (authentication, unknown model): stop instead of failing every item."""


def read_api_key(key_file: str | None, base_url: str | None) -> str:
    if key_file:
        try:
            key = Path(key_file).expanduser().read_text().strip()
        except OSError as exc:
            raise AnyCapError(f"cannot read the judge key file {key_file}: {exc.strerror}") from None
        if not key:
            raise AnyCapError(f"the judge key file {key_file} is empty")
        return key
    key = os.environ.get("OPENAI_API_KEY", "")
    if key:
        return key
    if base_url:  # local servers (vLLM, Ollama, ...) usually need no key
        return "EMPTY"
    raise AnyCapError("no API key for the judge: set OPENAI_API_KEY, pass --judge-key-file FILE, "
                      "or use --judge-base-url for a local server (or omit --judge for the offline judge)")


class OpenAIJudge:
    approximation = False
    supports_media = True

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str = "EMPTY", concurrency: int = 16,
                 temperature: float = 0.0, seed: int | None = 1234, max_tokens: int = 1024, max_attempts: int = 5,
                 timeout_s: float = 120.0, retry_base_s: float = 0.5, json_mode: bool = True, video_frames: int = 8):
        import openai

        self._openai = openai
        self.model = model
        self.spec = f"openai:{model}"
        self.base_url = base_url
        self.client = openai.AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s)
        self.semaphore = asyncio.Semaphore(concurrency)
        self.concurrency = concurrency
        self.temperature, self.seed, self.max_tokens = temperature, seed, max_tokens
        self.max_attempts, self.retry_base_s = max_attempts, retry_base_s
        self.json_mode = json_mode
        self.video_frames = video_frames

    @property
    def identity(self) -> dict[str, Any]:
        return {"kind": "openai", "model": self.model, "base_url": self.base_url or "https://api.openai.com/v1",
                "temperature": self.temperature, "seed": self.seed, "max_tokens": self.max_tokens,
                "video_frames": self.video_frames}

    def settings(self) -> dict[str, Any]:
        return {**self.identity, "concurrency": self.concurrency, "max_attempts": self.max_attempts,
                "json_mode": self.json_mode}

    def _content(self, request: JudgeRequest) -> tuple[list[dict[str, Any]], str]:
        parts: list[dict[str, Any]] = [{"type": "text", "text": request.prompt}]
        path = request.media_path
        if path is None:
            return parts, "none"
        if request.modality == "image":
            parts.append({"type": "image_url", "image_url": {"url": image_data_url(path)}})
            return parts, "image"
        if request.modality == "video":
            frames = video_frame_urls(path, self.video_frames)
            stamps = ", ".join(f"{t:.1f}s" for t, _ in frames)
            parts.append({"type": "text", "text": f"Video frames in order, at {stamps}:"})
            parts.extend({"type": "image_url", "image_url": {"url": url}} for _, url in frames)
            return parts, f"video_frames:{len(frames)}"
        data, fmt = audio_payload(path)
        parts.append({"type": "input_audio", "input_audio": {"data": data, "format": fmt}})
        return parts, "audio"

    async def judge(self, request: JudgeRequest) -> Judgment:
        openai = self._openai
        try:
            content, media_sent = self._content(request)
        except Exception as exc:  # unreadable media: this item's error, named
            return Judgment(JUDGE_ERROR, self.spec, error=f"cannot read media {request.media_path}: {exc}", attempts=0)
        usage = {"prompt_tokens": 0, "completion_tokens": 0}
        raw, error = "", ""
        for attempt in range(1, self.max_attempts + 1):
            retry_after: float | None = None
            try:
                async with self.semaphore:
                    kwargs: dict[str, Any] = {"model": self.model, "messages": [{"role": "user", "content": content}],
                                              "temperature": self.temperature, "max_tokens": self.max_tokens}
                    if self.seed is not None:
                        kwargs["seed"] = self.seed
                    if self.json_mode:
                        kwargs["response_format"] = {"type": "json_object"}
                    response = await self.client.chat.completions.create(**kwargs)
                if response.usage:
                    usage["prompt_tokens"] += response.usage.prompt_tokens or 0
                    usage["completion_tokens"] += response.usage.completion_tokens or 0
                if not response.choices:
                    raise JudgeAnswerError("the server returned no choices")
                raw = response.choices[0].message.content or ""
                value = parse_for(request, raw)
                return Judgment(OK, self.spec, raw=raw, value=value, usage=usage, attempts=attempt,
                                media_sent=media_sent)
            except JudgeAnswerError as exc:
                error = f"invalid answer: {exc}"
            except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as exc:
                raise JudgeFatalError(f"judge {self.spec} at {self.base_url or 'api.openai.com'}: {exc.message}. "
                                      "Check the key, the model name and --judge-base-url.") from None
            except openai.BadRequestError as exc:
                if self.json_mode and "response_format" in str(exc.message):
                    self.json_mode = False  # the server has no JSON mode: ask in plain text from now on
                    error = "server rejected JSON mode; retrying without it"
                    continue
                return Judgment(JUDGE_ERROR, self.spec, raw=raw, error=f"bad request: {exc.message}",
                                usage=usage, attempts=attempt, media_sent=media_sent)
            except openai.APIStatusError as exc:  # 429 and 5xx (and other statuses worth one more try)
                error = f"HTTP {exc.status_code}: {exc.message}"
                retry_after = retry_after_s(exc)
            except (openai.APITimeoutError, openai.APIConnectionError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            except (openai.APIError, ValueError) as exc:  # e.g. a malformed HTTP body: the judge's failure
                error = f"{type(exc).__name__}: {exc}"
            if attempt < self.max_attempts:
                await back_off(attempt, self.retry_base_s, retry_after)
        return Judgment(JUDGE_ERROR, self.spec, raw=raw, error=f"after {self.max_attempts} attempts: {error}",
                        usage=usage, attempts=self.max_attempts, media_sent=media_sent)

    async def aclose(self) -> None:
        await self.client.close()
