"""Benchmark data files: where to find them, how to fetch the originals, and strict readers.

Tasks declare ``DataSource`` entries (a path relative to the data folder, the public URL of the original file
at a pinned commit, its sha256). ``find`` looks in ``BIASBOARD_DATA_DIR`` (or the defaults of
``harness.paths.data_dirs``); ``fetch`` downloads into the user cache and checks the digest.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from biasboard.harness.errors import DataError
from biasboard.harness.paths import data_dirs, fetched_data_dir


@dataclass(frozen=True)
class DataSource:
    """One original data file."""

    relpath: str
    """Path under the data folder, e.g. ``crows_pairs/crows_pairs_anonymized.csv``."""
    url: str
    """Public URL of the original at a pinned commit."""
    sha256: str
    """Expected digest; a fetched file that differs is rejected."""
    license: str = ""


SOURCES: dict[str, list[DataSource]] = {}
"""Task name -> its data sources (tasks add theirs at import)."""


def declare(task: str, *sources: DataSource) -> None:
    SOURCES.setdefault(task, []).extend(sources)


def find(relpath: str, *, task: str = "") -> Path:
    """Absolute path of a data file, or a DataError saying where it looked and how to get it."""
    looked = []
    for root in data_dirs():
        path = root / relpath
        if path.exists():
            return path.resolve()
        looked.append(str(root))
    hint = f"run `biasboard data fetch {task}` or " if task else ""
    raise DataError(f"data file {relpath!r} not found (looked in: {', '.join(looked)}); {hint}"
                    f"set BIASBOARD_DATA_DIR to a folder that has it")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(task: str | None = None, *, force: bool = False, log=print) -> list[Path]:
    """Download the original files of one task (or all) into the user cache, verifying sha256."""
    import biasboard.harness.registry as registry

    registry._ensure_loaded()
    names = [task] if task else sorted(SOURCES)
    if task and task not in SOURCES:
        raise DataError(f"task {task!r} declares no downloadable data; tasks with data: {', '.join(sorted(SOURCES))}")
    done = []
    for name in names:
        for src in SOURCES[name]:
            dest = fetched_data_dir() / src.relpath
            if dest.exists() and not force and _sha256(dest) == src.sha256:
                log(f"ok       {src.relpath} (cached)")
                done.append(dest)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dest.parent)
            os.close(fd)
            try:
                urllib.request.urlretrieve(src.url, tmp)
            except OSError as exc:
                os.unlink(tmp)
                raise DataError(f"could not download {src.url}: {exc}") from exc
            got = _sha256(Path(tmp))
            if got != src.sha256:
                os.unlink(tmp)
                raise DataError(f"{src.url}: sha256 {got} does not match the expected {src.sha256}")
            os.replace(tmp, dest)
            log(f"fetched  {src.relpath}")
            done.append(dest)
    return done
