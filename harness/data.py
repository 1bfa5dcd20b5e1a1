"""Benchmark data files: where to find them, how to fetch the originals, and strict readers.

Tasks declare ``DataSource`` entries (a path relative to the data folder, the public URL of the original file
at a pinned commit, its sha256). ``find`` looks in ``BIASBOARD_DATA_DIR`` (or the defaults of
``harness.paths.data_dirs``); within ``harness.fetch.auto_fetch`` (``biasboard run`` and ``eval``) a missing
declared file is downloaded there and then. ``fetch`` downloads every file of a task; both check the pinned digest.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from biasboard.harness.errors import DataError
from biasboard.harness.paths import data_dirs, download_dir


@dataclass(frozen=True)
class DataSource:
    """One original data file."""

    relpath: str
    """Path under the data folder, e.g. ``crows_pairs/crows_pairs_anonymized.csv``."""
    url: str
    """Public URL of the original at a pinned commit."""
    sha256: str
    """Expected digest; a fetched file that differs is rejected. Empty when only ``git_blob_sha1`` is known."""
    license: str = ""
    git_blob_sha1: str = ""
    """The file's git blob id in the pinned commit's tree (``git ls-tree``), checked when ``sha256`` is empty: it
    pins files whose content could not be read here to compute a sha256."""

    def matches(self, path: Path) -> tuple[bool, str]:
        """(digest matches, the digest found) by sha256, else by git blob id."""
        if self.sha256:
            got = _sha256(path)
            return got == self.sha256, got
        got = _git_blob_sha1(path)
        return bool(self.git_blob_sha1) and got == self.git_blob_sha1, got


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
    message = (f"data file {relpath!r} not found (looked in: {', '.join(looked)}); {hint}"
               f"set BIASBOARD_DATA_DIR to a folder that has it")
    from biasboard.harness import fetch

    src = source_of(relpath)
    if src is None or not fetch.auto_fetch_on():
        raise DataError(message)
    try:
        return fetch.download(src, log=_stderr).resolve()
    except fetch.DownloadError as exc:  # offline: the same advice, and why the download did not help
        raise DataError(f"{message} (downloading it failed: {exc.reason})") from None


def source_of(relpath: str) -> DataSource | None:
    """The pinned source of a data file (declared by its task when the task was imported), or None."""
    rel = relpath.lstrip("/")
    return next((s for sources in SOURCES.values() for s in sources if s.relpath == rel), None)


def _stderr(line: str) -> None:
    import sys

    print(f"biasboard: {line}", file=sys.stderr)


def file_matches_source(path: Path, src: DataSource) -> str | None:
    """None when ``path`` is not ``src``'s file or has its pinned digest; else a message naming the file (a
    local copy that was edited or cut short still runs, and the result carries this as a warning)."""
    if not Path(path).as_posix().endswith("/" + src.relpath.lstrip("/")):
        return None
    from biasboard.harness.digest import file_sha256

    if src.sha256:
        kind, want, got = "sha256", src.sha256, file_sha256(path)
    elif src.git_blob_sha1:
        kind, want, got = "git blob id", src.git_blob_sha1, src.matches(Path(path))[1]
    else:
        return None
    if got == want:
        return None
    return (f"data file {src.relpath} differs from the pinned original ({kind} {got[:12]}..., expected "
            f"{want[:12]}...): a modified or truncated copy; results computed from it are not comparable")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _git_blob_sha1(path: Path) -> str:
    """git's object id of a file's content: sha1 of ``blob <size>\\0`` + content."""
    data = Path(path).read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def fetch(task: str | None = None, *, force: bool = False, log=print) -> list[Path]:
    """Download the original files of one task (or all) into ``paths.download_dir()``, verifying their digests."""
    import biasboard.harness.registry as registry
    from biasboard.harness.fetch import download

    registry._ensure_loaded()
    # Task modules declare their sources when imported, and entry points import them lazily: load them here.
    for name in [task] if task else registry.TASKS.names():
        try:
            registry.TASKS.get(name)
        except Exception:  # noqa: BLE001 - a task that fails to import declares nothing; the registry reports it
            continue
    names = [task] if task else sorted(SOURCES)
    if task and task not in SOURCES:
        raise DataError(f"task {task!r} declares no downloadable data; tasks with data: {', '.join(sorted(SOURCES))}")
    done = []
    root = download_dir()
    for name in names:
        for src in SOURCES[name]:
            dest = root / src.relpath
            if dest.exists() and not force and src.matches(dest)[0]:
                log(f"ok       {src.relpath} (cached)")
            else:
                download(src, root)
                log(f"fetched  {src.relpath}")
            done.append(dest)
    return done
