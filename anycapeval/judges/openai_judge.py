"""A judge on any OpenAI-compatible chat server (OpenAI, Azure, vLLM, SGLang, Ollama, llama.cpp).

The request shape, structured output, retries and failure classes live in `anycapeval.chat`; this
module turns a JudgeRequest into message parts, asks for the schema of the request's role, and reads
the answer with that role's parser (an unreadable answer is retried, then a judge_error, never a score).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..batch import Unsendable, Work
from ..chat import AnswerError, ChatClient, ChatReply
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
        self.batch_api = kind == "openai"  # --judge-batch; Azure's batches take other routes: not done here
        self.batch_client = self.chat

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

    def _rules(self, request: JudgeRequest) -> tuple[dict[str, Any] | None, Callable[[str], Any]]:
        """The role's answer schema and the check that reads an answer (AnswerError when unusable)."""
        role = request.rules
        if role is None:
            raise ValueError(f"a {request.role} request without its role's rules (JudgeRequest.rules)")

        def check(raw: str) -> Any:
            try:
                return role.parse(raw, request)
            except JudgeAnswerError as exc:
                raise AnswerError(str(exc)) from None

        return (role.schema(request) if role.schema else None), check

    def _unreadable(self, request: JudgeRequest, exc: Exception) -> Judgment:  # this item's error, named
        return Judgment(JUDGE_ERROR, self.spec, error=f"cannot read media {request.media_path}: {exc}", attempts=0)

    def _judgment(self, reply: ChatReply, media_sent: str, batch_id: str = "") -> Judgment:
        return Judgment(OK if reply.ok else JUDGE_ERROR, self.spec, raw=reply.text, value=reply.value,
                        usage=reply.usage, error=reply.error, attempts=reply.attempts, media_sent=media_sent,
                        served_model=reply.served_model, system_fingerprint=reply.system_fingerprint,
                        finish_reason=reply.finish_reason, batch_id=batch_id)

    async def judge(self, request: JudgeRequest) -> Judgment:
        try:
            parts, media_sent = self._content(request)
        except Exception as exc:  # unreadable media
            return self._unreadable(request, exc)
        schema, check = self._rules(request)
        return self._judgment(await self.chat.complete(parts, schema=schema, check=check), media_sent)

    # -- the Batch API (--judge-batch; anycapeval.batch) ------------------------------------------------

    def batch_work(self, key: str, request: JudgeRequest) -> Work[Judgment]:
        """The request as a batch line whose answer is read exactly as online (same body, same parser).
        The body (with its media) is built only when the batch file is written."""
        schema, check = self._rules(request)
        seen: dict[str, str] = {}  # what the body showed besides text (media_sent)

        def body() -> dict[str, Any]:
            try:
                parts, seen["media"] = self._content(request)
            except Exception as exc:  # unreadable media
                raise Unsendable(self._unreadable(request, exc)) from None
            return self.chat.request_body(parts, schema=schema)

        def media_sent() -> str:  # a resumed batch's body was built by the killed process: look again
            if "media" not in seen:
                try:
                    seen["media"] = self._content(request)[1]
                except Exception:  # noqa: BLE001 - the media went away since; the answer still stands
                    seen["media"] = "unknown"
            return seen["media"]

        def read(completion: dict[str, Any], batch_id: str) -> Judgment:
            return self._judgment(self.chat.read_completion(completion, check=check), media_sent(), batch_id)

        def fail(error: str, batch_id: str) -> Judgment:
            return Judgment(JUDGE_ERROR, self.spec, error=error, attempts=1, media_sent=media_sent(),
                            batch_id=batch_id)

        async def online(why: str) -> Judgment:
            judgment = await self.judge(request)
            judgment.notes.append(f"judged online after its batch line failed: {why}")
            return judgment

        return Work(key, body, read, fail, online)

    async def aclose(self) -> None:
        await self.chat.aclose()
