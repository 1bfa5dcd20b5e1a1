"""The one weight cache of trained models: a key that digests everything that determines the weights, a folder per
key under the cache root, and atomic saving (safetensors weights + a JSON meta), shared by downstream fine-tuning,
LM fine-tuning and the bias vector."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from torch import nn

from biasboard.harness.digest import json_sha256
from biasboard.harness.paths import cache_dir as default_cache_dir


def cache_root(cache: str | Path | None) -> Path:
    """The run's cache folder (``RunContext.cache_dir``), or the user cache when the run names none."""
    return Path(cache) if cache else default_cache_dir()


def cache_key(**parts: Any) -> str:
    """sha256 over the parts (sorted JSON), e.g. trainer version, base weights, lineage, config, data, method."""
    return json_sha256(parts)


def weights_folder(cache: str | Path | None, kind: str, key: str) -> Path:
    """``<cache>/<kind>/<first 32 hex digits of key>``; ``kind`` is ``finetuned`` or ``lm_finetuned``."""
    return cache_root(cache) / kind / key[:32]


def load_cached(model: nn.Module, folder: Path) -> dict[str, Any] | None:
    """Load the cached weights into ``model`` (eval mode) and return the saved meta, or None when not cached."""
    weights, meta_file = folder / "model.safetensors", folder / "meta.json"
    if not (weights.exists() and meta_file.exists()):
        return None
    from safetensors.torch import load_model

    load_model(model, str(weights))
    model.eval()
    return json.loads(meta_file.read_text())


def save_atomic(model: nn.Module, folder: Path, meta: dict[str, Any]) -> None:
    """Write weights and meta to a temporary folder and rename it into place, so readers never see half a save."""
    from safetensors.torch import save_model

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    save_model(model, str(tmp / "model.safetensors"))
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    try:
        os.replace(tmp, folder)
    except OSError:  # another process finished the same run first: its weights are identical
        shutil.rmtree(tmp, ignore_errors=True)
