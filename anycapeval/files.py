"""Reading the files every part of the package reads: JSON and JSONL records, media folders, the cache root.

A leaf: it imports nothing of the package but `types`, so readers, importers, the leaderboard and
the studies can all use it without importing each other.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from .types import AnyCapError, InputError

MEDIA_SUFFIXES = {
    "image": {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"},
    "video": {".mp4", ".mkv", ".webm", ".avi", ".mov"},
    "audio": {".wav", ".flac", ".mp3", ".ogg", ".m4a"},
}


def cache_root() -> Path:
    """Where downloads, generated demo media and the result cache live ($ANYCAPEVAL_CACHE_DIR)."""
    return Path(os.environ.get("ANYCAPEVAL_CACHE_DIR") or Path.home() / ".cache" / "anycapeval")


@lru_cache(maxsize=16)
def media_index(root: Path, modality: str) -> dict[str, Path]:
    """File name -> path for every media file of this modality below root (first found wins)."""
    index: dict[str, Path] = {}
    suffixes = MEDIA_SUFFIXES[modality]
    for dirpath, _dirs, files in os.walk(root):
        for name in sorted(files):
            if Path(name).suffix.lower() in suffixes:
                index.setdefault(name, Path(dirpath) / name)
    return index


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for every non-blank line; a bad line is an error naming file and line."""
    for lineno, _, record in read_jsonl_offsets(path):
        yield lineno, record


def read_jsonl_offsets(path: Path) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """(line number, byte offset of the line, record) for every non-blank line; a bad line is an error
    naming file and line. Lines end at b"\n" (a file with bare "\r" line ends reads as one line)."""
    with path.open("rb") as fh:
        offset = 0
        for lineno, line in enumerate(fh, 1):
            start, offset = offset, offset + len(line)
            if not line.strip():
                continue
            try:
                record = json.loads(line.decode("utf-8"))
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{lineno}", "<line>", f"not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise InputError(f"{path}:{lineno}", "<line>", "expected a JSON object")
            yield lineno, start, record


def read_json(path: Path) -> Any:
    """One JSON document; broken JSON is an error naming the file and line."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}", "<file>", f"not valid JSON ({exc.msg})") from None


def read_run_file(path: Path) -> dict[str, Any]:
    """A run directory's manifest.json or summary.json; a missing or broken file is an error naming it."""
    if not path.is_file():
        raise AnyCapError(f"{path}: not found (is {path.parent} a finished `anycapeval run` directory?)")
    data = read_json(path)
    if not isinstance(data, dict):
        raise InputError(str(path), "<file>", "expected a JSON object")
    return data
