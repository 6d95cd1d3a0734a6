"""`openai:<model>`: a captioner behind any OpenAI-compatible chat server (OpenAI, vLLM, SGLang, Ollama).

The item's instruction is the prompt (it already carries the length constraint). Images go as one
data URL each, a video as `frames` evenly spaced frames with their timestamps stated in the text,
audio as an `input_audio` part. Retries mirror the judge: backoff on 429, 5xx, timeouts and empty
answers; an unknown model or a bad key stops the run; unreadable media fails only its item.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..judges.openai_judge import read_api_key
from ..media import MediaError, audio_payload, image_data_url, image_to_data_url, sample_video_frames
from ..retry import back_off, retry_after_s
from ..types import GENERATION_ERROR, OK, AnyCapError, Item, Prediction
from . import SystemFatalError

# Settings that change what the model writes (part of the cache identity); the rest only change how
# fast or how stubbornly it is asked.
_DEFAULTS: dict[str, Any] = {"max_tokens": 512, "temperature": 0.0, "seed": 1234, "frames": 8, "max_side": 1024}


def _number(args: dict[str, str], key: str, kind: type, default: Any) -> Any:
    if key not in args:
        return default
    if kind is int and args[key].lower() == "none":
        return None
    try:
        return kind(args[key])
    except ValueError:
        raise AnyCapError(f"--model-args {key}={args[key]!r}: expected {kind.__name__}") from None


class OpenAISystem:
    cacheable = True
    needs_media = True

    def __init__(self, model: str, args: dict[str, str], default_concurrency: int = 8):
        import openai

        self._openai = openai
        self.model = model
        self.spec = f"openai:{model}"
        self.base_url = args.get("base_url") or None
        self.options = {k: _number(args, k, type(v) if v is not None else int, v) for k, v in _DEFAULTS.items()}
        self.concurrency = _number(args, "concurrency", int, default_concurrency)
        self.max_attempts = _number(args, "max_attempts", int, 5)
        self.retry_base_s = _number(args, "retry_base_s", float, 0.5)
        timeout_s = _number(args, "timeout_s", float, 120.0)
        if not self.concurrency or self.concurrency < 1 or not self.max_attempts or self.max_attempts < 1:
            raise AnyCapError("--model-args concurrency and max_attempts must be at least 1")
        api_key = read_api_key(args.get("key_file"), self.base_url)
        self.client = openai.AsyncOpenAI(api_key=api_key, base_url=self.base_url, max_retries=0, timeout=timeout_s)
        self.semaphore = asyncio.Semaphore(self.concurrency)
        self.timeout_s = timeout_s

    @property
    def identity(self) -> dict[str, Any]:
        return {"kind": "openai", "model": self.model, "base_url": self.base_url or "https://api.openai.com/v1",
                **self.options}

    def settings(self) -> dict[str, Any]:
        return {**self.identity, "concurrency": self.concurrency, "max_attempts": self.max_attempts,
                "timeout_s": self.timeout_s}

    def content(self, item: Item) -> list[dict[str, Any]]:
        """The user turn: media parts first, then the instruction. Raises MediaError."""
        path = item.media_path
        if path is None:
            raise MediaError(item.media, "not found (pass --media-dir)")
        max_side = self.options["max_side"]
        parts: list[dict[str, Any]] = []
        if item.modality == "image":
            parts.append({"type": "image_url", "image_url": {"url": image_data_url(path, max_side)}})
        elif item.modality == "video":
            video = sample_video_frames(path, n=self.options["frames"], max_side=max_side)
            stamps = ", ".join(f"{t:.1f}s" for t in video.timestamps)
            parts.append({"type": "text", "text": f"A {video.duration:.1f}-second video, shown as "
                          f"{len(video.frames)} frames in order, taken at {stamps}."})
            parts.extend({"type": "image_url", "image_url": {"url": image_to_data_url(f, None)}} for f in video.frames)
        elif item.modality == "audio":
            data, fmt = audio_payload(path)
            parts.append({"type": "input_audio", "input_audio": {"data": data, "format": fmt}})
        parts.append({"type": "text", "text": item.instruction})
        return parts

    def _fail(self, item: Item, error: str, usage: dict[str, int] | None = None) -> Prediction:
        return Prediction(item.task, item.id, self.spec, "", GENERATION_ERROR, error, usage=usage or {})

    async def generate(self, item: Item) -> Prediction:
        openai = self._openai
        try:
            content = await asyncio.to_thread(self.content, item)  # decoding video is CPU work
        except MediaError as exc:
            return self._fail(item, str(exc))
        usage = {"prompt_tokens": 0, "completion_tokens": 0}
        kwargs: dict[str, Any] = {"model": self.model, "messages": [{"role": "user", "content": content}],
                                  "temperature": self.options["temperature"], "max_tokens": self.options["max_tokens"]}
        if self.options["seed"] is not None:
            kwargs["seed"] = self.options["seed"]
        error = ""
        for attempt in range(1, self.max_attempts + 1):
            retry_after: float | None = None
            try:
                async with self.semaphore:
                    response = await self.client.chat.completions.create(**kwargs)
                if response.usage:
                    usage["prompt_tokens"] += response.usage.prompt_tokens or 0
                    usage["completion_tokens"] += response.usage.completion_tokens or 0
                text = (response.choices[0].message.content or "") if response.choices else ""
                if text.strip():
                    return Prediction(item.task, item.id, self.spec, text.strip(), OK, usage=usage)
                error = "the server returned an empty caption"
            except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as exc:
                raise SystemFatalError(f"system {self.spec} at {self.base_url or 'api.openai.com'}: {exc.message}. "
                                       "Check the key, the model name and base_url in --model-args.") from None
            except openai.BadRequestError as exc:  # e.g. a server that takes no audio: this item's error
                return self._fail(item, f"bad request: {exc.message}", usage)
            except openai.APIStatusError as exc:  # 429 and 5xx
                error = f"HTTP {exc.status_code}: {exc.message}"
                retry_after = retry_after_s(exc)
            except (openai.APITimeoutError, openai.APIConnectionError, openai.APIError, ValueError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            if attempt < self.max_attempts:
                await back_off(attempt, self.retry_base_s, retry_after)
        return self._fail(item, f"after {self.max_attempts} attempts: {error}", usage)

    async def aclose(self) -> None:
        await self.client.close()
