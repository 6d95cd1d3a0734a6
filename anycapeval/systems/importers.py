"""Reading captions other harnesses wrote: the format is detected per file from its first record.

Each format turns a record into an `Imported` caption that carries an item id (optionally a task),
or, when the format has no ids, the media name and the instruction it was asked; `predictions.py`
finds the item. Every bad record is an `InputError` naming file:line and the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..files import read_json, read_jsonl
from ..types import AnyCapError, InputError

MEDIA_KEYS = ("image", "video", "audio", "image_path", "video_path", "audio_path", "video_dir", "image_file",
              "video_file", "audio_file", "file_name")


@dataclass(frozen=True)
class Imported:
    where: str  # file:line
    caption: str
    item_id: str | None = None
    task: str | None = None
    media: str | None = None  # a path, URL or file name, compared on basename and stem
    instruction: str | None = None  # what the model was asked, to tell apart items sharing a medium
    variant: str = ""  # records that repeat an item under another label (lm-eval filters) are not duplicates
    media_field: str = "media"  # the record's field the media name came from, for errors


def _text(record: dict[str, Any], name: str, where: str) -> str:
    if name not in record:
        raise InputError(where, name, "missing")
    value = record[name]
    if isinstance(value, list):  # official video scripts and lm-eval nest the caption in lists
        flat = value
        while isinstance(flat, list):
            if len(flat) != 1:
                raise InputError(where, name, f"a list caption must hold exactly one string, got {len(flat)} items")
            flat = flat[0]
        value = flat
    if not isinstance(value, str):
        raise InputError(where, name, f"expected a string, got {type(value).__name__}")
    if not value.strip():
        raise InputError(where, name, "empty caption")
    return value


def _opt_str(record: dict[str, Any], name: str, where: str) -> str | None:
    value = record.get(name)
    if value is None:
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise InputError(where, name, f"expected a string or integer, got {type(value).__name__}")
    return str(value)


def _media_of(record: dict[str, Any]) -> str | None:
    for key in MEDIA_KEYS:
        if isinstance(record.get(key), str) and record[key].strip():
            return str(record[key])
    return None


def _human_turn(record: dict[str, Any]) -> str | None:
    for turn in record.get("conversations") or []:
        if isinstance(turn, dict) and turn.get("from") == "human" and isinstance(turn.get("value"), str):
            return str(turn["value"]).replace("<image>", "").strip()
    return None


# -- the formats -----------------------------------------------------------------------------------

def _project(record: dict[str, Any], where: str) -> Imported:
    """This project's JSONL ({"id"|"item_id", "caption", "task"?}), also a run's predictions.jsonl."""
    key = "id" if "id" in record else "item_id"
    item_id = _opt_str(record, key, where)
    if item_id is None:
        raise InputError(where, "id", "missing")
    return Imported(where, _text(record, "caption", where), item_id, _opt_str(record, "task", where))


CAPTION_FIELDS = ("model_response_content", "model_response_style", "model_response")


def _anycap(record: dict[str, Any], where: str) -> Imported:
    """Official AnyCap generation files: the benchmark record plus `model_response*` (video: a list)."""
    name = next(f for f in CAPTION_FIELDS if f in record)
    item_id = _opt_str(record, "id", where)
    if item_id is None and _media_of(record) is None:
        raise InputError(where, "id", "missing (and no media name to match the item by)")
    return Imported(where, _text(record, name, where), item_id, _opt_str(record, "task", where),
                    _media_of(record), _human_turn(record))


def _log_samples(record: dict[str, Any], where: str) -> Imported:
    """lm-eval / lmms-eval `--log_samples`: {doc_id, doc, target, arguments, resps, filtered_resps, ...}.
    The raw generation (`resps`) is the caption; the item comes from `doc` (its id, else its media
    name and instruction). lmms-eval drops doc keys naming images, so ids matter there."""
    doc = record.get("doc")
    if not isinstance(doc, dict):
        raise InputError(where, "doc", "missing or not an object: the item cannot be identified without it "
                         "(lm-eval and lmms-eval write it with --log_samples)")
    name = "resps" if "resps" in record else "filtered_resps"
    caption = _text(record, name, where)
    instruction = _human_turn(doc) or (doc.get("instruction") if isinstance(doc.get("instruction"), str) else None)
    item_id = _opt_str(doc, "id", f"{where} doc") or _opt_str(doc, "question_id", f"{where} doc")
    if item_id is None and _media_of(doc) is None:
        raise InputError(where, "doc.id", "missing (and the doc names no media file to match the item by)")
    task = _opt_str(record, "task", where) or _opt_str(doc, "anycapeval_task", f"{where} doc")  # our lm-eval tasks
    return Imported(where, caption, item_id, task, _media_of(doc), instruction,
                    variant=str(record.get("filter", "")), media_field="doc")


def _mia(record: dict[str, Any], where: str) -> Imported:
    """MIA-Bench's official output: {"question_id": <image URL>, "prompt": <instruction>, "text": <response>}."""
    media = _opt_str(record, "question_id", where)
    if media is None:
        raise InputError(where, "question_id", "missing")
    return Imported(where, _text(record, "text", where), None, None, media, _opt_str(record, "prompt", where),
                    media_field="question_id")


def _vidcap(record: dict[str, Any], where: str) -> Imported:
    """VidCapBench caption files: {"question": <prompt>, "video_dir": "clip.mp4", "model_generation": ...}."""
    media = _opt_str(record, "video_dir", where)
    if media is None:
        raise InputError(where, "video_dir", "missing")
    return Imported(where, _text(record, "model_generation", where), None, None, media,
                    _opt_str(record, "question", where), media_field="video_dir")


def _anycap_audio(record: dict[str, Any], where: str) -> Imported:
    """AnyCap audio-captioning outputs: {"audio_path": "/.../clip.wav", "model_response": ...}."""
    media = _opt_str(record, "audio_path", where)
    if media is None:
        raise InputError(where, "audio_path", "missing")
    return Imported(where, _text(record, "model_response", where), _opt_str(record, "id", where), None, media,
                    _opt_str(record, "instruction", where) or _human_turn(record), media_field="audio_path")


@dataclass(frozen=True)
class Format:
    name: str
    signature: str  # what identifies it, for the error that lists the known formats
    detect: Callable[[dict[str, Any]], bool]
    read: Callable[[dict[str, Any], str], Imported]


FORMATS = (
    Format("lm-eval / lmms-eval log_samples", "doc_id + doc + resps/filtered_resps",
           lambda r: "doc_id" in r and ("resps" in r or "filtered_resps" in r), _log_samples),
    Format("MIA-Bench output", "question_id + prompt + text",
           lambda r: "question_id" in r and "text" in r, _mia),
    Format("VidCapBench captions", "video_dir + model_generation",
           lambda r: "model_generation" in r, _vidcap),
    Format("AnyCap audio captioning", "audio_path + model_response",
           lambda r: "audio_path" in r and "model_response" in r and "conversations" not in r, _anycap_audio),
    Format("AnyCap generation file", "id + model_response_content|model_response_style|model_response",
           lambda r: any(f in r for f in CAPTION_FIELDS), _anycap),
    Format("anycapeval JSONL", "id (or item_id) + caption [+ task]",
           lambda r: "caption" in r and ("id" in r or "item_id" in r), _project),
)


def known_formats() -> str:
    return "; ".join(f"{f.name} ({f.signature})" for f in FORMATS)


def _records(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """JSONL, or one JSON document holding a list of records (lmms-eval's older `logs`, lm-eval's
    `samples` by task) — each with a `file:line`-style location."""
    with path.open(encoding="utf-8") as fh:
        head = fh.read(4096).lstrip()
    if head.startswith("[") or (head.startswith("{") and _is_single_document(path)):
        data = read_json(path)
        for n, record in enumerate(_document_records(data, path), 1):
            if not isinstance(record, dict):
                raise InputError(f"{path}:record {n}", "<record>", "expected a JSON object")
            yield f"{path}:record {n}", record
        return
    for lineno, record in read_jsonl(path):
        yield f"{path}:{lineno}", record


def _is_single_document(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return False  # JSONL: several documents
    return isinstance(data, dict) and any(isinstance(data.get(k), (list, dict)) for k in ("logs", "samples"))


def _document_records(data: Any, path: Path) -> Iterator[Any]:
    if isinstance(data, list):
        yield from data
    elif isinstance(data.get("logs"), list):
        yield from data["logs"]
    elif isinstance(data.get("samples"), dict):  # lm-eval results JSON: {"samples": {its task: [records]}}
        for task, rows in data["samples"].items():
            if not isinstance(rows, list):
                raise InputError(str(path), f"samples.{task}", "expected a list of records")
            yield from rows
    else:
        raise InputError(str(path), "samples", "expected a list of records")


def read_predictions(path: Path) -> tuple[str, list[Imported]]:
    """(format name, captions) of a predictions file, in file order."""
    if not path.is_file():
        raise AnyCapError(f"predictions file {path} not found")
    fmt: Format | None = None
    out: list[Imported] = []
    for where, record in _records(path):
        if fmt is None:
            fmt = next((f for f in FORMATS if f.detect(record)), None)
            if fmt is None:
                raise InputError(where, "<record>", f"unknown predictions format (fields: "
                                 f"{', '.join(sorted(record)) or 'none'}). Known formats: {known_formats()}")
        if record.get("status") not in (None, "ok"):
            continue  # a run's predictions.jsonl: a failed generation has no caption to import
        out.append(fmt.read(record, where))
    if fmt is None:
        raise AnyCapError(f"predictions file {path} holds no records")
    return fmt.name, out
