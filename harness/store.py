"""SQLite results store: one row per finished (or failed) cell, per-example rows kept for paired statistics.

Writes are single short transactions in WAL mode with a generous busy timeout, so several runs can share one
store (a killed run loses at most the cell in flight; two concurrent writers never corrupt it).
"""
from __future__ import annotations

import json
import sqlite3
import time
import zlib
from pathlib import Path
from typing import Any, Iterator

SCHEMA = """
CREATE TABLE IF NOT EXISTS cells (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL, method TEXT NOT NULL, task TEXT NOT NULL, variant TEXT NOT NULL, seed INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    record TEXT NOT NULL,
    error TEXT,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS examples (key TEXT PRIMARY KEY, payload BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
SCHEMA_VERSION = "1"


class Store:
    """Results of cells, addressed by cell key."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, timeout=120, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout = 120000")
        self._switch_to_wal()
        self._conn.execute("PRAGMA synchronous = NORMAL")
        with self._write():
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self._conn.execute(statement)
            self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))

    def _switch_to_wal(self, attempts: int = 50) -> None:
        """SQLite answers "database is locked" at once, without the busy handler, when two processes switch a new
        file to WAL together; wait and retry (seen with two concurrent runs starting on one fresh store)."""
        for attempt in range(attempts):
            try:
                self._conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == attempts - 1:
                    raise
                time.sleep(0.1)

    def _write(self):
        store = self

        class _Tx:
            def __enter__(self):
                store._conn.execute("BEGIN IMMEDIATE")

            def __exit__(self, exc_type, *_):
                store._conn.execute("ROLLBACK" if exc_type else "COMMIT")

        return _Tx()

    def put(self, key: str, record: dict[str, Any], examples: list[dict[str, Any]] | None = None) -> None:
        """Save a finished cell and its per-example rows in one transaction."""
        payload = zlib.compress(json.dumps(examples or [], default=_json_default).encode())
        with self._write():
            self._conn.execute(
                "INSERT OR REPLACE INTO cells VALUES (?, ?, ?, ?, ?, ?, 'done', ?, NULL, ?)",
                (key, record["model"], record["method"], record["task"], record["variant"], int(record["seed"]),
                 json.dumps(record, default=_json_default), time.time()))
            self._conn.execute("INSERT OR REPLACE INTO examples VALUES (?, ?)", (key, payload))

    def put_failure(self, key: str, record: dict[str, Any], error: str) -> None:
        """Record a failed cell (with its error) so reports can show it; a rerun retries it."""
        with self._write():
            self._conn.execute(
                "INSERT OR REPLACE INTO cells VALUES (?, ?, ?, ?, ?, ?, 'failed', ?, ?, ?)",
                (key, record["model"], record["method"], record["task"], record["variant"], int(record["seed"]),
                 json.dumps(record, default=_json_default), error, time.time()))

    def put_plugin_meta(self, kind: str, name: str, meta: dict[str, Any]) -> None:
        """Keep what the board shows of a task or method (``kind`` "tasks" or "methods") beside its results, so
        the site is built from the store alone, without importing any plugin."""
        with self._write():
            self._conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                               (f"plugin:{kind}:{name}", json.dumps(meta, sort_keys=True, default=_json_default)))

    def plugin_meta(self) -> dict[str, dict[str, Any]]:
        """``{"tasks": {name: meta}, "methods": {name: meta}}`` as written by the runs that filled this store."""
        out: dict[str, dict[str, Any]] = {"tasks": {}, "methods": {}}
        for name, value in self._conn.execute("SELECT name, value FROM meta WHERE name LIKE 'plugin:%'"):
            _, kind, plugin = name.split(":", 2)
            out.setdefault(kind, {})[plugin] = json.loads(value)
        return out

    def is_done(self, key: str) -> bool:
        row = self._conn.execute("SELECT 1 FROM cells WHERE key = ? AND status = 'done'", (key,)).fetchone()
        return row is not None

    def done_keys(self) -> set[str]:
        return {k for (k,) in self._conn.execute("SELECT key FROM cells WHERE status = 'done'")}

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT record, status, error FROM cells WHERE key = ?", (key,)).fetchone()
        return _decode(key, *row) if row else None

    def records(self, status: str | None = "done") -> list[dict[str, Any]]:
        """All cell records (result JSON contract plus key, status, error), oldest first."""
        sql = "SELECT key, record, status, error FROM cells"
        args: tuple = ()
        if status:
            sql += " WHERE status = ?"
            args = (status,)
        return [_decode(k, r, s, e) for k, r, s, e in self._conn.execute(sql + " ORDER BY updated_at", args)]

    def examples(self, key: str) -> list[dict[str, Any]]:
        row = self._conn.execute("SELECT payload FROM examples WHERE key = ?", (key,)).fetchone()
        return json.loads(zlib.decompress(row[0])) if row else []

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records())

    def close(self) -> None:
        self._conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()


def _decode(key: str, record: str, status: str, error: str | None) -> dict[str, Any]:
    data = json.loads(record)
    data["key"] = key
    data["status"] = status
    if error:
        data["error"] = error
    return data


def _json_default(obj):
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
