"""SQLite results store: one row per finished (or failed) cell, per-example rows kept for paired statistics.

Writes are single short transactions in WAL mode with a generous busy timeout, so several runs can share one
store (a killed run loses at most the cell in flight; two concurrent writers never corrupt it). A run claims a
cell (``claims`` table, a lease its owner renews) before computing it, so two runs never compute one cell twice,
and a killed owner's lease lapses (at once when it ran on this host) so nothing stays blocked. A file that is not
a biasboard store (another application's SQLite, garbage, a truncated store) is refused before anything is
written to it.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import sqlite3
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote

from biasboard.harness.errors import BiasboardError
from biasboard.harness.record import CellRecord

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
CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL);
"""
SCHEMA_VERSION = "1"
SQLITE_MAGIC = b"SQLite format 3\x00"
LEASE_SECONDS = 60.0
"""How long a claim holds without renewal (its owner renews every third of it while it works)."""


class StoreError(BiasboardError):
    """The results store cannot be used as is (foreign, corrupt); the file was left unchanged."""


def check_store_file(path: Path) -> None:
    """Refuse, without writing a byte, a file that is not a biasboard store: not SQLite, another application's
    SQLite database, or a truncated / corrupt one. An absent or empty file is a new store."""
    if not path.exists() or path.stat().st_size == 0:
        return
    if path.is_dir():
        raise StoreError(f"results store {path} is a directory")
    with open(path, "rb") as fh:
        head = fh.read(100)
    if len(head) < 100 or not head.startswith(SQLITE_MAGIC):
        raise StoreError(f"{path} is not a biasboard results store (not an SQLite database); left unchanged")
    # without a -wal file beside it the main file is the whole database: open it immutable, which creates no
    # -wal/-shm files next to a file that may not be ours
    wal = path.with_name(path.name + "-wal").exists()
    try:
        conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro" + ("" if wal else "&immutable=1"),
                               uri=True, timeout=120)
    except sqlite3.Error as exc:
        raise StoreError(f"{path} cannot be opened as a results store ({exc}); left unchanged") from None
    try:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            return
        if not {"cells", "meta"} <= tables or not conn.execute(
                "SELECT 1 FROM meta WHERE name = 'schema_version'").fetchone():
            raise StoreError(f"{path} is an SQLite database of another application (tables: "
                             f"{', '.join(sorted(tables))}), not a biasboard results store; left unchanged")
        for table in ("cells", "examples"):
            if table in tables:
                conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is a corrupt or truncated results store ({exc}); left unchanged") from None
    finally:
        conn.close()


def new_owner_id() -> str:
    """``host:pid:random``: who holds a claim (the pid lets a run on the same host see that its owner died)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def owner_alive(owner: str) -> bool:
    """False only when the owner ran on this host and its process is gone; other hosts count as alive (their
    leases lapse on their own)."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store:
    """Results of cells, addressed by cell key."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        check_store_file(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, timeout=120, isolation_level=None, check_same_thread=False)
        try:
            self._conn.execute("PRAGMA busy_timeout = 120000")
            self._switch_to_wal()
            self._conn.execute("PRAGMA synchronous = NORMAL")
            with self._write():
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
                self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise StoreError(f"results store {self.path} cannot be used: {exc}") from None

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

    def put(self, key: str, record: CellRecord | dict[str, Any], examples: list[dict[str, Any]] | None = None) -> None:
        """Save a finished cell and its per-example rows in one transaction (a dict is checked as a record first)."""
        record = CellRecord.of(record)
        payload = zlib.compress(json.dumps(examples or [], default=_json_default).encode())
        with self._write():
            self._conn.execute(
                "INSERT OR REPLACE INTO cells VALUES (?, ?, ?, ?, ?, ?, 'done', ?, NULL, ?)",
                (key, record.model, record.method, record.task, record.variant, int(record.seed),
                 json.dumps(record.to_json(), default=_json_default), time.time()))
            self._conn.execute("INSERT OR REPLACE INTO examples VALUES (?, ?)", (key, payload))

    def put_failure(self, key: str, record: CellRecord | dict[str, Any], error: str) -> bool:
        """Record a failed cell (with its error) so reports can show it; a rerun retries it. A finished (``done``)
        row is never replaced by a failure (a run with a bad option must not erase a good result): returns False
        then."""
        record = CellRecord.of(record)
        with self._write():
            cur = self._conn.execute(
                "INSERT INTO cells VALUES (?, ?, ?, ?, ?, ?, 'failed', ?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
                "model = excluded.model, method = excluded.method, task = excluded.task, variant = excluded.variant, "
                "seed = excluded.seed, status = 'failed', record = excluded.record, error = excluded.error, "
                "updated_at = excluded.updated_at WHERE cells.status != 'done'",
                (key, record.model, record.method, record.task, record.variant, int(record.seed),
                 json.dumps(record.to_json(), default=_json_default), error, time.time()))
            return cur.rowcount > 0

    def claim(self, key: str, owner: str, *, lease: float = LEASE_SECONDS, force: bool = False) -> str:
        """Try to take ``key`` for ``owner``: ``"claimed"`` (compute it, then ``release``), ``"done"`` (finished
        meanwhile; only without ``force``) or ``"busy"`` (a live owner's unexpired lease holds it). An expired
        lease, or one whose owner process on this host is gone, is taken over."""
        now = time.time()
        with self._write():
            if not force and self._conn.execute(
                    "SELECT 1 FROM cells WHERE key = ? AND status = 'done'", (key,)).fetchone():
                return "done"
            row = self._conn.execute("SELECT owner, expires_at FROM claims WHERE key = ?", (key,)).fetchone()
            if row and row[0] != owner and row[1] > now and owner_alive(row[0]):
                return "busy"
            self._conn.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?)", (key, owner, now + lease))
            return "claimed"

    def release(self, key: str, owner: str) -> None:
        """Drop ``owner``'s claim on ``key`` (after its result or failure is stored)."""
        with self._write():
            self._conn.execute("DELETE FROM claims WHERE key = ? AND owner = ?", (key, owner))

    def claims(self) -> dict[str, tuple[str, float]]:
        """key -> (owner, expires_at) of every claim (held or lapsed)."""
        return {k: (o, e) for k, o, e in self._conn.execute("SELECT key, owner, expires_at FROM claims")}

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

    def content_digest(self) -> str:
        """A sha256 that changes whenever a cell is written or replaced, or plugin metadata changes: what a board
        built from this store depends on, read without decoding any record."""
        h = hashlib.sha256()
        for row in self._conn.execute("SELECT key, status, updated_at FROM cells ORDER BY key"):
            h.update(repr(row).encode())
        for row in self._conn.execute("SELECT name, value FROM meta WHERE name LIKE 'plugin:%' ORDER BY name"):
            h.update(repr(row).encode())
        return h.hexdigest()

    def is_done(self, key: str) -> bool:
        row = self._conn.execute("SELECT 1 FROM cells WHERE key = ? AND status = 'done'", (key,)).fetchone()
        return row is not None

    def done_keys(self) -> set[str]:
        return {k for (k,) in self._conn.execute("SELECT key FROM cells WHERE status = 'done'")}

    def get(self, key: str) -> CellRecord | None:
        row = self._conn.execute("SELECT record, status, error FROM cells WHERE key = ?", (key,)).fetchone()
        return _decode(key, *row) if row else None

    def records(self, status: str | None = "done") -> list[CellRecord]:
        """All cell records (with the store's key, status and error), oldest first."""
        sql = "SELECT key, record, status, error FROM cells"
        args: tuple = ()
        if status:
            sql += " WHERE status = ?"
            args = (status,)
        return [_decode(k, r, s, e) for k, r, s, e in self._conn.execute(sql + " ORDER BY updated_at", args)]

    def examples(self, key: str) -> list[dict[str, Any]]:
        row = self._conn.execute("SELECT payload FROM examples WHERE key = ?", (key,)).fetchone()
        return json.loads(zlib.decompress(row[0])) if row else []

    def __iter__(self) -> Iterator[CellRecord]:
        return iter(self.records())

    def close(self) -> None:
        self._conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()


class Lease:
    """One run's identity for claims, renewing all its claims from a thread (with its own connection) every third
    of the lease, so a long cell keeps its claim and a killed run's claims lapse within ``lease`` seconds."""

    def __init__(self, path: str | Path, *, lease: float = LEASE_SECONDS):
        self.owner = new_owner_id()
        self.lease = lease
        self._path = Path(path)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_loop, name="biasboard-lease", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        conn = sqlite3.connect(self._path, timeout=120, isolation_level=None)
        try:
            while not self._stop.wait(self.lease / 3):
                try:
                    conn.execute("UPDATE claims SET expires_at = ? WHERE owner = ?",
                                 (time.time() + self.lease, self.owner))
                except sqlite3.Error:  # busy or gone: try again next tick; the lease still has two thirds left
                    pass
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()


def _decode(key: str, record: str, status: str, error: str | None) -> CellRecord:
    return CellRecord.from_json(json.loads(record), key=key, status=status, error=error or "")


def _json_default(obj):
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
