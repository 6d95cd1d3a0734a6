"""`openai:<model>` / `azure:<deployment>`: a captioner behind an OpenAI-compatible chat server.

The item's instruction is the prompt (it already carries the length constraint). Images go as one
data URL each, a video as `frames` evenly spaced frames with their timestamps stated in the text,
audio as an `input_audio` part; `media=never` sends the instruction alone (a blind, text-only
captioner: a baseline, or a server that takes no media). Request shape, retries and failure classes
are `anycapeval.chat`'s; unreadable media fails only its item.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from ..batch import RETRY_MODES, Unsendable, Work
from ..chat import CLIENT_PARAMS, AnswerError, ChatClient, ChatReply, param_value, read_api_key
from ..media import MediaError, audio_payload, image_data_url, image_to_data_url, sample_video_frames
from ..types import GENERATION_ERROR, OK, AnyCapError, Item, Prediction
from .base import SystemBase

# Settings that change what the model writes (part of the cache identity); the rest only change how
# fast or how stubbornly it is asked.
_DEFAULTS: dict[str, Any] = {"max_tokens": 512, "temperature": 0.0, "seed": 1234, "frames": 8, "max_side": 1024}
# --model-args this system reads itself; any other key is sent to the server as is (extra_body)
OWN_ARGS = ("base_url", "key_file", "concurrency", "media", "batch", "batch_retry", *_DEFAULTS, *CLIENT_PARAMS)


def _number(args: dict[str, str], key: str, kind: type, default: Any) -> Any:
    if key not in args:
        return default
    if kind is int and args[key].lower() == "none":
        return None
    try:
        return kind(args[key])
    except ValueError:
        raise AnyCapError(f"--model-args {key}={args[key]!r}: expected {kind.__name__}") from None


class OpenAISystem(SystemBase):
    cacheable = True

    def __init__(self, model: str, args: dict[str, str], default_concurrency: int = 8, kind: str = "openai"):
        self.model = model
        self.spec = f"{kind}:{model}"
        self.base_url = args.get("base_url") or None
        self.media = args.get("media", "auto")
        if self.media not in ("auto", "never"):
            raise AnyCapError(f"--model-args media={self.media!r}: use auto (send the item's media) or never")
        self.needs_media = self.media != "never"
        self.options = {k: _number(args, k, type(v) if v is not None else int, v) for k, v in _DEFAULTS.items()}
        self.concurrency = _number(args, "concurrency", int, default_concurrency)
        api_version = args.get("api_version") or (os.environ.get("OPENAI_API_VERSION") if kind == "azure" else None)
        if kind == "azure" and not api_version:
            raise AnyCapError(f"{self.spec} needs an API version: --model-args api_version=2024-10-21 (or set "
                              "OPENAI_API_VERSION)")
        extra = {k: param_value(v) for k, v in args.items() if k not in OWN_ARGS}
        self.chat = ChatClient(
            model, label=f"system {self.spec}", base_url=self.base_url, concurrency=self.concurrency or 1,
            api_key=read_api_key(args.get("key_file"), self.base_url, azure=kind == "azure"),
            azure_api_version=api_version if kind == "azure" else None,
            max_attempts=_number(args, "max_attempts", int, 5), timeout_s=_number(args, "timeout_s", float, 120.0),
            retry_base_s=_number(args, "retry_base_s", float, 0.5), temperature=self.options["temperature"],
            seed=self.options["seed"], max_tokens=self.options["max_tokens"],
            reasoning_effort=args.get("reasoning_effort"), family=args.get("family"), extra_body=extra,
            settings_hint="key_file and base_url in --model-args")
        self.notes = self.chat.notes
        # batch=true: captions through the OpenAI Batch API at its price (anycapeval.batch); not in the identity,
        # since the request is the same either way
        batch = param_value(str(args.get("batch", "false")))
        if not isinstance(batch, bool):
            raise AnyCapError(f"--model-args batch={batch!r}: use true or false")
        self.batch_api = batch
        if self.batch_api and kind != "openai":
            raise AnyCapError(f"{self.spec}: batch=true works with openai: systems only (Azure batches take other "
                              "routes)")
        self.batch_retry = args.get("batch_retry", "online")
        if self.batch_retry not in RETRY_MODES:
            raise AnyCapError(f"--model-args batch_retry={self.batch_retry!r}: use online or batch")
        self.batch_client = self.chat

    @property
    def identity(self) -> dict[str, Any]:
        return {"kind": "openai", "model": self.model, "base_url": self.base_url or "https://api.openai.com/v1",
                **self.options, **self.chat.identity_fields(), "media": self.media}

    def settings(self) -> dict[str, Any]:
        return {**self.identity, "concurrency": self.concurrency, "max_attempts": self.chat.max_attempts,
                "timeout_s": self.chat.timeout_s, "request_shape": self.chat.request_shape()}

    def content(self, item: Item) -> list[dict[str, Any]]:
        """The user turn: media parts first, then the instruction. Raises MediaError."""
        parts: list[dict[str, Any]] = []
        path = item.media_path
        if self.needs_media:
            if path is None:
                raise MediaError(item.media, "not found (pass --media-dir, or media=never for text only)")
            max_side = self.options["max_side"]
            if item.modality == "image":
                parts.append({"type": "image_url", "image_url": {"url": image_data_url(path, max_side)}})
            elif item.modality == "video":
                video = sample_video_frames(path, n=self.options["frames"], max_side=max_side)
                stamps = ", ".join(f"{t:.1f}s" for t in video.timestamps)
                parts.append({"type": "text", "text": f"A {video.duration:.1f}-second video, shown as "
                              f"{len(video.frames)} frames in order, taken at {stamps}."})
                parts.extend({"type": "image_url", "image_url": {"url": image_to_data_url(f, None)}}
                             for f in video.frames)
            elif item.modality == "audio":
                data, fmt = audio_payload(path)
                parts.append({"type": "input_audio", "input_audio": {"data": data, "format": fmt}})
        parts.append({"type": "text", "text": item.instruction})
        return parts

    async def generate(self, item: Item) -> Prediction:
        try:
            parts = await asyncio.to_thread(self.content, item)  # decoding video is CPU work
        except MediaError as exc:
            return Prediction(item.task, item.id, self.spec, "", GENERATION_ERROR, str(exc))
        return self._prediction(item, await self.chat.complete(parts, check=_caption, accept_truncated=True))

    def _prediction(self, item: Item, reply: ChatReply, batch_id: str = "") -> Prediction:
        return Prediction(item.task, item.id, self.spec, reply.value if reply.ok else "",
                          OK if reply.ok else GENERATION_ERROR, reply.error, usage=reply.usage,
                          served_model=reply.served_model, system_fingerprint=reply.system_fingerprint,
                          finish_reason=reply.finish_reason, batch_id=batch_id)

    def batch_work(self, key: str, item: Item) -> Work[Prediction]:
        """The item as a batch line (the same body as online, built when the batch file is written); its
        caption is read as online."""
        def body() -> dict[str, Any]:
            try:
                return self.chat.request_body(self.content(item))
            except MediaError as exc:
                raise Unsendable(Prediction(item.task, item.id, self.spec, "", GENERATION_ERROR, str(exc))) from None

        def read(completion: dict[str, Any], batch_id: str) -> Prediction:
            return self._prediction(item, self.chat.read_completion(completion, check=_caption), batch_id)

        def fail(error: str, batch_id: str) -> Prediction:
            return Prediction(item.task, item.id, self.spec, "", GENERATION_ERROR, error, batch_id=batch_id)

        async def online(why: str) -> Prediction:
            return await self.generate(item)

        return Work(key, body, read, fail, online)

    async def aclose(self) -> None:
        await self.chat.aclose()


def _caption(text: str) -> str:
    if not text.strip():
        raise AnswerError("the server returned an empty caption")
    return text.strip()
