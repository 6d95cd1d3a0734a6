"""The Batch API batches submitted from a cache, kept in the cache's own SQLite file.

Table `batches`: one row per batch (id, server, model, state, its files, whether its lines were read
back); table `batch_keys`: which cache keys (the lines' custom_id) each batch covers. A re-run looks
up the batches not yet read back that cover its pending keys and polls them instead of submitting.
"""

from __future__ import annotations

from typing import Any

from .store import Cache


class BatchTable:
    """The batches submitted from this cache: id, server, state, files, and the keys each covers."""

    def __init__(self, cache: Cache):
        self.db = cache.db
        self.db.execute("CREATE TABLE IF NOT EXISTS batches (id TEXT PRIMARY KEY, server TEXT NOT NULL, model TEXT, "
                        "status TEXT NOT NULL, input_file_id TEXT, output_file_id TEXT, error_file_id TEXT, "
                        "merged INTEGER NOT NULL DEFAULT 0, created REAL DEFAULT (julianday('now')), updated REAL)")
        self.db.execute("CREATE TABLE IF NOT EXISTS batch_keys (key TEXT NOT NULL, batch_id TEXT NOT NULL, "
                        "PRIMARY KEY (key, batch_id))")

    def open_batches(self, server: str, keys: list[str]) -> dict[str, set[str]]:
        """Batches on `server` not yet read back, with the given keys each covers."""
        out: dict[str, set[str]] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            rows = self.db.execute(
                "SELECT k.batch_id, k.key FROM batch_keys k JOIN batches b ON b.id = k.batch_id WHERE b.merged = 0 "
                f"AND b.server = ? AND k.key IN ({','.join('?' * len(chunk))})", [server, *chunk])
            for batch_id, key in rows:
                out.setdefault(batch_id, set()).add(key)
        return out

    def add(self, batch: Any, server: str, model: str, keys: list[str]) -> None:
        with self.db:  # one transaction: the batch and all its keys, or nothing
            self.db.execute("BEGIN")
            self.db.execute("INSERT OR REPLACE INTO batches (id, server, model, status, input_file_id, updated) VALUES "
                            "(?, ?, ?, ?, ?, julianday('now'))", (batch.id, server, model, batch.status,
                                                                   batch.input_file_id))
            self.db.executemany("INSERT OR IGNORE INTO batch_keys (key, batch_id) VALUES (?, ?)",
                                [(k, batch.id) for k in keys])

    def update(self, batch_id: str, status: str, *, output: str | None = None, error: str | None = None,
               merged: bool = False) -> None:
        self.db.execute("UPDATE batches SET status = ?, output_file_id = ?, error_file_id = ?, merged = ?, "
                        "updated = julianday('now') WHERE id = ?", (status, output, error, int(merged), batch_id))

    def mark_merged(self, batch_id: str) -> None:
        self.db.execute("UPDATE batches SET merged = 1, updated = julianday('now') WHERE id = ?", (batch_id,))

    def rows(self) -> list[dict[str, Any]]:
        """Every batch with its key count (for tests and inspection)."""
        cursor = self.db.execute("SELECT b.*, (SELECT COUNT(*) FROM batch_keys k WHERE k.batch_id = b.id) AS n_keys "
                                 "FROM batches b ORDER BY b.created")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor]
