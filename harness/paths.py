"""Where biasboard keeps caches and looks for data. Everything is overridable by environment variables."""
from __future__ import annotations

import os
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
    """
    env = os.environ.get("BIASBOARD_DATA_DIR")
    if env:
        return [Path(env)]
    return [fetched_data_dir(), Path("..") / "shared" / "data"]


def output_dir() -> Path:
    """Default output folder of ``biasboard run`` (in the working directory, never inside the package)."""
    return Path(os.environ.get("BIASBOARD_OUT") or "biasboard-out")
