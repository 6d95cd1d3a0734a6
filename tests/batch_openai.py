"""A loopback stand-in for OpenAI's Files and Batch APIs on top of the strict chat stand-in, for tests.

``BatchOpenAI`` is a ``StrictOpenAI`` (so chat completions keep working, and each batch line is answered
by the same strict logic: a line the real API would refuse comes back as a failed line with its error)
plus the routes a batch client uses::

    POST /v1/files (multipart: purpose, file)   GET /v1/files/{id}   GET /v1/files/{id}/content
    POST /v1/batches   GET /v1/batches/{id}   POST /v1/batches/{id}/cancel

It validates what the real service validates: purpose ``batch`` and a ``.jsonl`` file within the size
limit on upload; on creation an uploaded batch file, endpoint ``/v1/chat/completions``, completion window
``24h``, metadata limits; while ``validating``: every line a JSON object with a unique ``custom_id``,
method POST, the batch's url, a body, one model per file, at most ``max_batch_requests`` lines (a file that
breaks a rule makes the batch ``failed`` with ``errors.data``).

A batch advances one step per ``GET /v1/batches/{id}``: validating -> in_progress -> (``lines_per_poll``
lines a poll, none while ``hold`` is true) -> finalizing -> completed. ``expire_after=N`` /
``cancel_after=N`` end a batch ``expired`` / ``cancelled`` after N lines ran: the output file keeps those,
the error file lists the rest with ``batch_expired`` / ``batch_cancelled``. ``line_reply(line) -> Reply |
str | None`` replaces a line's answer (a non-200 Reply is a failed request in the error file).
Output lines: ``{id, custom_id, response: {status_code, request_id, body}, error}``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from loopback_server import Reply, Request
from strict_openai import ApiError, StrictOpenAI, _bad, _estimate_prompt, _Route

ENDPOINTS = ("/v1/chat/completions",)  # the real API has more; only chat is simulated
FILE_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
UNRUN = {"expired": ("batch_expired", "This request could not be executed before the completion window expired."),
         "cancelled": ("batch_cancelled", "This request was not executed because the batch was cancelled.")}


@dataclass
class _Batch:
    obj: dict[str, Any]
    headers: dict[str, str]  # of the creating request (its key answers the lines)
    lines: list[dict[str, Any]] = field(default_factory=list)
    ran: int = 0
    outputs: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


class BatchOpenAI(StrictOpenAI):
    def __init__(self, *args: Any, lines_per_poll: int | None = None, hold: bool = False,
                 expire_after: int | None = None, cancel_after: int | None = None,
                 line_reply: Callable[[dict], Reply | str | None] | None = None,
                 max_batch_requests: int = 50_000, max_file_bytes: int = 200 * 1024 * 1024, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lines_per_poll, self.hold = lines_per_poll, hold  # may be changed while running
        self.expire_after, self.cancel_after, self.line_reply = expire_after, cancel_after, line_reply
        self.max_batch_requests, self.max_file_bytes = max_batch_requests, max_file_bytes
        self.files: dict[str, dict[str, Any]] = {}  # id -> file object + "data"
        self.batches: dict[str, _Batch] = {}
        self.batch_log: list[tuple[str, str]] = []  # (method, path) of every files/batches call

    # ------------------------------------------------------------------ what tests read
    @property
    def created(self) -> list[dict[str, Any]]:
        """The batch objects, in creation order."""
        with self._lock:
            return [dict(b.obj) for b in self.batches.values()]

    def input_lines(self, batch_id: str) -> list[dict[str, Any]]:
        data = self.files[self.batches[batch_id].obj["input_file_id"]]["data"]
        return [json.loads(line) for line in data.decode().splitlines() if line.strip()]

    def polls(self) -> int:
        with self._lock:
            return sum(1 for method, path in self.batch_log if method == "GET" and path.startswith("/v1/batches/"))

    # ------------------------------------------------------------------ routes
    async def _dispatch(self, request: Request) -> tuple[int, dict, bytes]:
        method, path = request.method, request.path
        if not path.startswith(("/v1/files", "/v1/batches")):
            return await super()._dispatch(request)
        with self._lock:
            self.batch_log.append((method, path))
        parts = path.strip("/").split("/")  # v1, files|batches, [id], [content|cancel]
        try:
            self._check_openai_key(request)
            if parts[1] == "files":
                if method == "POST" and len(parts) == 2:
                    return self._json(self._upload(request))
                if method == "GET" and len(parts) >= 3:
                    file = self._file(parts[2])
                    if len(parts) == 4 and parts[3] == "content":
                        return 200, {"content-type": "application/octet-stream"}, file["data"]
                    if len(parts) == 3:
                        return self._json({k: v for k, v in file.items() if k != "data"})
            else:
                if method == "POST" and len(parts) == 2:
                    return self._json(self._create(request))
                if len(parts) >= 3 and parts[2] not in self.batches:
                    raise ApiError(404, f"No batch found with id '{parts[2]}'.", code=None)
                if method == "GET" and len(parts) == 3:
                    return self._json(await self._advance(self.batches[parts[2]]))
                if method == "POST" and len(parts) == 4 and parts[3] == "cancel":
                    batch = self.batches[parts[2]]
                    if batch.obj["status"] in ("validating", "in_progress", "finalizing"):
                        self._set(batch, "cancelling")
                    return self._json(batch.obj)
            raise ApiError(404, f"Invalid URL ({method} {path})")
        except ApiError as e:
            return await self._render({}, self._error_reply_for(e, request))

    @staticmethod
    def _json(obj: dict[str, Any]) -> tuple[int, dict, bytes]:
        return 200, {}, json.dumps(obj).encode()

    def _file(self, file_id: str) -> dict[str, Any]:
        if file_id not in self.files:
            raise ApiError(404, f"No such File object: {file_id}", param="id")
        return self.files[file_id]

    def _store(self, data: bytes, filename: str, purpose: str) -> str:
        file_id = "file-" + secrets.token_hex(12)
        self.files[file_id] = {"id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                               "filename": filename, "purpose": purpose, "status": "processed", "expires_at": None,
                               "status_details": None, "data": data}
        return file_id

    def _upload(self, request: Request) -> dict[str, Any]:
        kind = request.headers.get("content-type", "")
        if not kind.startswith("multipart/form-data"):
            raise _bad("Uploads must be multipart/form-data with the fields 'purpose' and 'file'.")
        message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {kind}\r\n\r\n".encode() + request.raw_body)
        fields: dict[str, tuple[str | None, bytes]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields[str(name)] = (part.get_filename(), part.get_payload(decode=True) or b"")
        if "purpose" not in fields:
            raise _bad("Missing required parameter: 'purpose'.", "purpose", "missing_required_parameter")
        purpose = fields["purpose"][1].decode()
        if purpose not in FILE_PURPOSES:
            raise _bad(f"Invalid value for 'purpose': {purpose!r}.", "purpose", "invalid_value")
        if "file" not in fields or fields["file"][0] is None:
            raise _bad("Missing required parameter: 'file'.", "file", "missing_required_parameter")
        filename, data = fields["file"]
        if purpose == "batch" and not str(filename).endswith(".jsonl"):
            raise _bad("Invalid file format for Batch API. Must be .jsonl", "file")
        if len(data) > self.max_file_bytes:
            raise _bad(f"File is too large: {len(data)} bytes; a batch input file may have at most "
                       f"{self.max_file_bytes} bytes.", "file")
        file_id = self._store(data, str(filename), purpose)
        return {k: v for k, v in self.files[file_id].items() if k != "data"}

    def _create(self, request: Request) -> dict[str, Any]:
        body = request.body if isinstance(request.body, dict) else {}
        for name in ("input_file_id", "endpoint", "completion_window"):
            if not isinstance(body.get(name), str):
                raise _bad(f"Missing required parameter: '{name}'.", name, "missing_required_parameter")
        if body["endpoint"] not in ENDPOINTS:
            raise _bad(f"Invalid value for 'endpoint': {body['endpoint']!r}; this stand-in takes "
                       f"{', '.join(ENDPOINTS)}.", "endpoint", "invalid_value")
        if body["completion_window"] != "24h":
            raise _bad(f"Invalid value for 'completion_window': {body['completion_window']!r}; only '24h' is "
                       "supported.", "completion_window", "invalid_value")
        metadata = body.get("metadata") or {}
        if len(metadata) > 16 or any(len(k) > 64 or not isinstance(v, str) or len(v) > 512
                                     for k, v in metadata.items()):
            raise _bad("Invalid 'metadata': at most 16 pairs, keys up to 64 characters, string values up to 512.",
                       "metadata", "invalid_value")
        file = self._file(body["input_file_id"])
        if file["purpose"] != "batch":
            raise _bad(f"The file {file['id']} was uploaded with purpose {file['purpose']!r}; a batch needs "
                       "purpose 'batch'.", "input_file_id")
        now = int(time.time())
        batch_id = "batch_" + secrets.token_hex(12)
        obj = {"id": batch_id, "object": "batch", "endpoint": body["endpoint"], "errors": None,
               "input_file_id": file["id"], "completion_window": "24h", "status": "validating",
               "output_file_id": None, "error_file_id": None, "created_at": now, "in_progress_at": None,
               "expires_at": now + 86_400, "finalizing_at": None, "completed_at": None, "failed_at": None,
               "expired_at": None, "cancelling_at": None, "cancelled_at": None,
               "request_counts": {"total": 0, "completed": 0, "failed": 0}, "metadata": metadata or None,
               "model": None, "usage": None}
        with self._lock:
            self.batches[batch_id] = _Batch(obj, dict(request.headers))
        return dict(obj)

    # ------------------------------------------------------------------ the life of a batch
    def _set(self, batch: _Batch, status: str) -> None:
        batch.obj["status"] = status
        batch.obj[f"{status}_at"] = int(time.time())

    def _validate(self, batch: _Batch) -> list[dict[str, Any]]:
        data = self.files[batch.obj["input_file_id"]]["data"]
        problems: list[dict[str, Any]] = []
        seen: set[str] = set()
        models: set[str] = set()

        def bad(n: int, code: str, message: str, param: str | None = None) -> None:
            problems.append({"code": code, "message": message, "param": param, "line": n})

        lines = [t for t in data.decode("utf-8", "replace").splitlines() if t.strip()]
        if len(lines) > self.max_batch_requests:
            bad(0, "too_many_requests", f"The batch input file has {len(lines)} requests; a batch may have at most "
                f"{self.max_batch_requests}.")
        for n, text in enumerate(lines, 1):
            try:
                line = json.loads(text)
            except ValueError:
                bad(n, "invalid_json_line", "This line is not parseable as valid JSON.")
                continue
            if not isinstance(line, dict):
                bad(n, "invalid_request", "Each line must be a JSON object.")
                continue
            custom_id = line.get("custom_id")
            if not isinstance(custom_id, str) or not custom_id:
                bad(n, "missing_required_parameter", "Each line needs a string 'custom_id'.", "custom_id")
            elif custom_id in seen:
                bad(n, "duplicate_custom_id", f"The custom_id {custom_id!r} is used on more than one line.",
                    "custom_id")
            seen.add(str(custom_id))
            if line.get("method") != "POST":
                bad(n, "invalid_method", "'method' must be 'POST'.", "method")
            if line.get("url") != batch.obj["endpoint"]:
                bad(n, "mismatched_url", f"The url {line.get('url')!r} does not match the batch's endpoint "
                    f"{batch.obj['endpoint']!r}; every line must use the batch's endpoint.", "url")
            body = line.get("body")
            if not isinstance(body, dict):
                bad(n, "invalid_request", "'body' must be an object.", "body")
                continue
            models.add(str(body.get("model")))
            if len(models) > 1:
                bad(n, "mismatched_model", "Every request in a batch file must use the same model; found "
                    f"{', '.join(sorted(models))}.", "body.model")
            batch.lines.append(line)
        return problems

    async def _advance(self, batch: _Batch) -> dict[str, Any]:
        obj = batch.obj
        status = obj["status"]
        if status == "validating":
            problems = self._validate(batch)
            if problems:
                obj["errors"] = {"object": "list", "data": problems[:50]}
                self._set(batch, "failed")
            else:
                obj["request_counts"]["total"] = len(batch.lines)
                obj["model"] = batch.lines[0]["body"].get("model") if batch.lines else None
                self._set(batch, "in_progress")
        elif status == "in_progress" and not self.hold:
            step = self.lines_per_poll or len(batch.lines)
            for line in batch.lines[batch.ran:batch.ran + step]:
                await self._run_line(batch, line)
                batch.ran += 1
                for limit, end in ((self.expire_after, "expired"), (self.cancel_after, "cancelling")):
                    if limit is not None and batch.ran >= limit and batch.ran < len(batch.lines):
                        self._end(batch, end)
                        return dict(obj)
            if batch.ran >= len(batch.lines):
                self._set(batch, "finalizing")
        elif status == "finalizing":
            self._end(batch, "completed")
        elif status == "cancelling":
            self._end(batch, "cancelled")
        return dict(obj)

    def _end(self, batch: _Batch, status: str) -> None:
        if status == "cancelling":
            self._set(batch, "cancelling")
            return
        if status in UNRUN:
            code, message = UNRUN[status]
            for line in batch.lines[batch.ran:]:
                batch.errors.append({"id": "batch_req_" + secrets.token_hex(12), "custom_id": line["custom_id"],
                                     "response": None, "error": {"code": code, "message": message}})
                batch.obj["request_counts"]["failed"] += 1
        for name, rows, purpose in (("output_file_id", batch.outputs, "batch_output"),
                                    ("error_file_id", batch.errors, "batch_output")):
            if rows:
                data = "".join(json.dumps(r) + "\n" for r in rows).encode()
                batch.obj[name] = self._store(data, f"{batch.obj['id']}_{name[:-8]}.jsonl", purpose)
        self._set(batch, status)

    async def _run_line(self, batch: _Batch, line: dict[str, Any]) -> None:
        body = line["body"]
        reply: Reply | str | None = self.line_reply(line) if self.line_reply else None
        request_id = "req_" + secrets.token_hex(16)
        if reply is None:
            try:
                reply = await self._chat(Request("POST", "/v1/chat/completions", {}, batch.headers, b"", body),
                                         _Route("openai"))
            except ApiError as e:
                reply = Reply(status=e.status, raw_body=json.dumps({"error": e.as_json()}).encode())
        if isinstance(reply, Reply) and reply.status == 200 and reply.raw_body is None:
            reply = reply.content
        if isinstance(reply, str):  # an answer text: a completion from the line's model
            spec = self.models[self.aliases.get(body["model"], [body["model"]])[0]]
            reply = Reply(raw_body=json.dumps(self._completion_json(body, spec, reply, *_estimate_prompt(body),
                                                                    _Route("openai"))).encode())
        if reply.raw_body is None:  # an error status with a message, as LoopbackServer responders give
            reply = Reply(status=reply.status, raw_body=json.dumps({"error": {
                "message": reply.content, "type": "server_error", "param": None, "code": None}}).encode())
        response = {"status_code": reply.status, "request_id": request_id, "body": json.loads(reply.raw_body)}
        row = {"id": "batch_req_" + secrets.token_hex(12), "custom_id": line["custom_id"], "response": response,
               "error": None}
        counts = batch.obj["request_counts"]
        if reply.status == 200:
            batch.outputs.append(row)
            counts["completed"] += 1
        else:
            batch.errors.append(row)
            counts["failed"] += 1
