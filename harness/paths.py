"""Where biasboard keeps caches and looks for data. Everything is overridable by environment variables."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import platformdirs


def cache_dir() -> Path:
    """Model files, fine-tuned weights and digests (``BIASBOARD_CACHE`` overrides)."""
    path = Path(os.environ.get("BIASBOARD_CACHE") or platformdirs.user_cache_dir("biasboard"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def fetched_data_dir() -> Path:
    """Where ``biasboard data fetch`` downloads the original benchmark files."""
    return cache_dir() / "data"


def data_dirs() -> list[Path]:
    """Folders searched for benchmark data, first match wins.

    ``BIASBOARD_DATA_DIR`` (a folder laid out like the project's shared data folder) when set; otherwise the
    fetched-data cache, then ``../shared/data`` relative to the working directory as a development default.
    A read-only ``BIASBOARD_DATA_DIR`` is followed by the fetched-data cache, where downloads then go.
    """
    env = os.environ.get("BIASBOARD_DATA_DIR")
    if env:
        return [Path(env)] if writable(Path(env)) else [Path(env), fetched_data_dir()]
    return [fetched_data_dir(), Path("..") / "shared" / "data"]


def download_dir() -> Path:
    """Where a missing data file is downloaded: ``BIASBOARD_DATA_DIR`` when it is writable, else the cache."""
    env = os.environ.get("BIASBOARD_DATA_DIR")
    return Path(env) if env and writable(Path(env)) else fetched_data_dir()


def writable(path: Path) -> bool:
    """Whether files may be added under ``path`` (or, if it does not exist yet, under its nearest existing
    parent). A folder without write permission bits counts as read-only even for root, who could write it."""
    while not path.exists() and path != path.parent:
        path = path.parent
    mode = path.stat().st_mode if path.exists() else 0
    return bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)) and os.access(path, os.W_OK)


def output_dir() -> Path:
    """Default output folder of ``biasboard run`` (in the working directory, never inside the package)."""
    return Path(os.environ.get("BIASBOARD_OUT") or "biasboard-out")
