"""Content digests for weights and data files, memoised so warm runs skip rehashing.

Why the memo key is strong: a file rewritten in place with its old size and its old mtime restored (``os.utime``)
must not keep its old digest, or results and cache keys would name weights that are no longer on disk. The key is
the path plus size, inode, mtime and ctime in nanoseconds; ctime cannot be set back from user space, so any write
or rename changes the key and the file is hashed again.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from filelock import FileLock

from biasboard.harness.paths import cache_dir


def _index_path() -> Path:
    return cache_dir() / "digests.json"


def memo_key(path: Path, st: os.stat_result) -> str:
    """What must be unchanged for a memoised digest to be trusted: path, size, inode, mtime_ns, ctime_ns."""
    return f"{path}|{st.st_size}|{st.st_ino}|{st.st_mtime_ns}|{st.st_ctime_ns}"


def _read_index(index_file: Path) -> dict[str, str]:
    try:
        return json.loads(index_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError, OSError):
        return {}


def memoised_sha256(path: str | Path) -> str | None:
    """The memoised digest when the memo proves the file unchanged since it was hashed, else None."""
    path = Path(path).resolve()
    return _read_index(_index_path()).get(memo_key(path, path.stat()))


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, memoised on disk by path, size, inode, mtime and ctime (see ``memo_key``)."""
    path = Path(path).resolve()
    before = path.stat()
    key = memo_key(path, before)
    index_file = _index_path()
    index = _read_index(index_file)
    if key in index:
        return index[key]
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    if memo_key(path, path.stat()) != key:
        return digest  # changed while we read it: use the digest once, remember nothing
    try:
        with FileLock(str(index_file) + ".lock"):
            index = _read_index(index_file)
            index = {k: v for k, v in index.items() if not k.startswith(f"{path}|")}  # one live entry per path
            index[key] = digest
            tmp = index_file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(index))
            os.replace(tmp, index_file)
    except OSError:
        pass  # a read-only cache (the validation sandbox) still gets the right digest, only unmemoised
    return digest


def files_sha256(paths) -> str:
    """One digest over several files (order-independent, names included)."""
    h = hashlib.sha256()
    for p in sorted(Path(x) for x in paths):
        h.update(p.name.encode())
        h.update(file_sha256(p).encode())
    return h.hexdigest()


def json_sha256(obj) -> str:
    """Digest of a JSON-serialisable object with sorted keys."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
