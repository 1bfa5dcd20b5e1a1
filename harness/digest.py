"""Content digests for weights and data files, cached by (path, size, mtime) so warm runs skip rehashing."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from filelock import FileLock

from biasboard.harness.paths import cache_dir


def _index_path() -> Path:
    return cache_dir() / "digests.json"


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, memoised on disk by path, size and mtime."""
    path = Path(path).resolve()
    st = path.stat()
    key = f"{path}|{st.st_size}|{st.st_mtime_ns}"
    index_file = _index_path()
    try:
        index = json.loads(index_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        index = {}
    if key in index:
        return index[key]
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    with FileLock(str(index_file) + ".lock"):
        try:
            index = json.loads(index_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            index = {}
        index[key] = digest
        tmp = index_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(index))
        os.replace(tmp, index_file)
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
