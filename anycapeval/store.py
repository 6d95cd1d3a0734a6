"""The content-addressed cache (SQLite, stdlib) and atomic writes for the run directory.

Keys are hashes of everything that determines a result: the judge's identity, the prompt text, the
media hash, the role. Only successful results are cached, so a re-run retries failures and a killed
run resumes with every finished item kept. Every write is committed at once (WAL, so it is cheap).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

# The text every key hashes: json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str), made by
# one encoder (json.dumps builds one per call); the bytes must never change, or every cache goes cold.
_KEY_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, default=str)


def content_key(*parts: Any) -> str:
    return hashlib.sha256(_KEY_ENCODER.encode(parts).encode()).hexdigest()


class KeyPrefix:
    """content_key(*head, *rest) for many `rest` after the same `head` (a judge's identity): the head's
    JSON is made once. A JSON list is "[" + ", ".join(each element's JSON) + "]", so this is the same text."""

    def __init__(self, *head: Any):
        self.head = head
        self.text = _KEY_ENCODER.encode(head)[:-1] + ", " if head else "["

    def __call__(self, *rest: Any) -> str:
        if not rest:
            return content_key(*self.head)
        text = self.text + ", ".join(map(_KEY_ENCODER.encode, rest)) + "]"
        return hashlib.sha256(text.encode()).hexdigest()


_VALUE_ENCODER = json.JSONEncoder(ensure_ascii=False)  # a cached value's text: json.dumps(value, ensure_ascii=False)


class Cache:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, kind TEXT NOT NULL, "
                        "value TEXT NOT NULL, created REAL DEFAULT (julianday('now')))")
        self.db.execute("CREATE TABLE IF NOT EXISTS checked_files (key TEXT PRIMARY KEY, offsets BLOB NOT NULL, "
                        "linenos BLOB NOT NULL, ids TEXT NOT NULL)")

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        # Few big IN lists: 8,000 keys a query read a million keys ~20 % faster than 500 (SQLite's bound
        # on parameters is 32,766 since 3.32, 999 before; Python 3.10 cannot ask, so it gets 999).
        getlimit = getattr(self.db, "getlimit", None)
        size = min(8000, getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)) if getlimit else 999
        for start in range(0, len(keys), size):
            chunk = keys[start:start + size]
            marks = ",".join("?" * len(chunk))
            for key, value in self.db.execute(f"SELECT key, value FROM entries WHERE key IN ({marks})", chunk):
                out[key] = json.loads(value)
        return out

    def put(self, key: str, kind: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO entries (key, kind, value) VALUES (?, ?, ?)",
                        (key, kind, _VALUE_ENCODER.encode(value)))

    def put_many(self, kind: str, entries: Iterable[tuple[str, Any]]) -> None:
        """Several (key, value) in one transaction: for results that arrive together (a batch), so
        a kill loses nothing that one `put` each would have kept."""
        rows = [(key, kind, _VALUE_ENCODER.encode(value)) for key, value in entries]
        if rows:
            with self.db:  # BEGIN ... COMMIT
                self.db.execute("BEGIN")
                self.db.executemany("INSERT OR REPLACE INTO entries (key, kind, value) VALUES (?, ?, ?)", rows)

    def checked_file(self, key: str) -> tuple[bytes, bytes, list[str]] | None:
        """A data file's remembered check (readers.anycapeval.ItemFile): its items' byte offsets and line
        numbers (array bytes) and ids, under a key that holds the file's sha256."""
        row = self.db.execute("SELECT offsets, linenos, ids FROM checked_files WHERE key = ?", (key,)).fetchone()
        return None if row is None else (row[0], row[1], json.loads(row[2]))

    def remember_checked_file(self, key: str, offsets: bytes, linenos: bytes, ids: list[str]) -> None:
        self.db.execute("INSERT OR REPLACE INTO checked_files (key, offsets, linenos, ids) VALUES (?, ?, ?, ?)",
                        (key, offsets, linenos, _VALUE_ENCODER.encode(ids)))

    def close(self) -> None:
        self.db.close()


def default_cache_path() -> Path:
    from .files import cache_root

    return cache_root() / "cache.sqlite"


@contextmanager
def _atomic_text(path: Path) -> Iterator[IO[str]]:
    """A text file written via a temporary file in the same folder and renamed when the block ends:
    readers never see half a file, and an error leaves nothing behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, text: str) -> None:
    with _atomic_text(path) as fh:
        fh.write(text)


# One encoder for every JSONL row: the text of json.dumps(row, ensure_ascii=False, default=str).
_ROW_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)
# With the C accelerator, its encoder is made once and called directly (JSONEncoder.encode makes one per call,
# a quarter of the time of a row); without a check for circular references, which rows never have.
_make_c_encoder = getattr(json.encoder, "c_make_encoder", None)
_C_ROW_ENCODER = None if _make_c_encoder is None else _make_c_encoder(
    None, str, json.encoder.encode_basestring, None, ": ", ", ", False, False, True)


def jsonl_line(row: dict[str, Any]) -> str:
    if _C_ROW_ENCODER is None:
        return _ROW_ENCODER.encode(row) + "\n"
    return "".join(_C_ROW_ENCODER(row, 0)) + "\n"


def write_jsonl_atomic(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Like write_atomic, row by row (the file's text is never built whole in memory)."""
    with _atomic_text(path) as fh:
        fh.writelines(map(jsonl_line, rows))


def write_json_atomic(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
