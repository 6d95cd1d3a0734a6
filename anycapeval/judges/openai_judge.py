"""A judge on any OpenAI-compatible chat server (OpenAI, Azure, vLLM, SGLang, Ollama, llama.cpp).

The request shape, structured output, retries and failure classes live in `anycapeval.chat`; this
module turns a JudgeRequest into message parts, asks for the schema of the request's role, and reads
the answer with that role's parser (an unreadable answer is retried, then a judge_error, never a score).
"""

from __future__ import annotations

from typing import Any

from ..chat import AnswerError, ChatClient
from ..media import audio_payload, image_data_url, video_frame_urls
from ..types import JUDGE_ERROR, OK, JudgeRequest, Judgment
from .base import JudgeBase
from .parse import JudgeAnswerError


class OpenAIJudge(JudgeBase):
    approximation = False
    supports_media = True

    def __init__(self, model: str, *, kind: str = "openai", video_frames: int = 8, **client_options: Any):
        self.model = model
        self.spec = f"{kind}:{model}"
        self.kind = kind
        self.chat = ChatClient(model, label=f"judge {self.spec}", **client_options)
        self.base_url = self.chat.base_url
        self.video_frames = video_frames
        self.notes = self.chat.notes

    @property
    def identity(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": self.model, "base_url": self.base_url or "https://api.openai.com/v1",
                **self.chat.identity_fields(), "video_frames": self.video_frames}

    def settings(self) -> dict[str, Any]:
        return {**self.identity, "concurrency": self.chat.limiter.ceiling, "max_attempts": self.chat.max_attempts,
                "request_shape": self.chat.request_shape()}

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
        try:
            parts, media_sent = self._content(request)
        except Exception as exc:  # unreadable media: this item's error, named
            return Judgment(JUDGE_ERROR, self.spec, error=f"cannot read media {request.media_path}: {exc}", attempts=0)
        role = request.rules
        if role is None:
            raise ValueError(f"a {request.role} request without its role's rules (JudgeRequest.rules)")

        def check(raw: str) -> Any:
            try:
                return role.parse(raw, request)
            except JudgeAnswerError as exc:
                raise AnswerError(str(exc)) from None

        reply = await self.chat.complete(parts, schema=role.schema(request) if role.schema else None, check=check)
        return Judgment(OK if reply.ok else JUDGE_ERROR, self.spec, raw=reply.text, value=reply.value,
                        usage=reply.usage, error=reply.error, attempts=reply.attempts, media_sent=media_sent,
                        served_model=reply.served_model, system_fingerprint=reply.system_fingerprint,
                        finish_reason=reply.finish_reason)

    async def aclose(self) -> None:
        await self.chat.aclose()
