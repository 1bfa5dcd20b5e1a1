"""Model specs, resolution to files, and handles.

A ``ModelSpec`` names a model: a zoo alias (``zoo:splade-tiny``), a local folder saved with ``save_pretrained``,
or a Hugging Face Hub id (``bert-base-uncased``). ``resolve_model`` turns it into files and a weights digest
without loading weights (so cached cells are found fast); ``load_handle`` loads it. Tasks only call the batched
primitives in ``harness.models.scoring`` on a handle; they never special-case architectures.
"""
from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

from biasboard.harness.digest import file_sha256, files_sha256
from biasboard.harness.errors import BiasboardError, DataError, UnsupportedError
from biasboard.harness.models import zoo
from biasboard.harness.paths import cache_dir
from biasboard.harness.models.precision import weights_dtype
from biasboard.harness.models.types import ModelHandle, ModelSpec, ResolvedModel
from biasboard.harness.registry import FAMILIES

__all__ = ["ModelHandle", "ModelSpec", "ResolvedModel", "load_handle", "resolve_model"]

WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pth", "*.pt", "*.gguf", "*.npy")


def _family_from_config(path: Path) -> str:
    cfg_file = path / "config.json"
    if not cfg_file.exists():
        raise BiasboardError(f"{path}: no config.json; pass a family explicitly (one of {FAMILIES})")
    archs = json.loads(cfg_file.read_text()).get("architectures") or []
    arch = " ".join(archs)
    if "MaskedLM" in arch:
        return "mlm"
    if "CausalLM" in arch or "LMHeadModel" in arch:
        return "clm"
    return "encoder"


def _weights_digest(path: Path) -> str:
    if path.is_file():
        return file_sha256(path)
    files = [p for pat in WEIGHT_PATTERNS for p in path.glob(pat)]
    if not files:
        raise BiasboardError(f"{path}: no weight files ({', '.join(WEIGHT_PATTERNS)})")
    return files_sha256(files)


def resolve_model(spec: "ModelSpec | str | dict") -> ResolvedModel:
    """Locate a model's files and digest its weights, without loading them."""
    spec = ModelSpec.parse(spec)
    if spec.family is not None and spec.family not in FAMILIES:
        raise BiasboardError(f"model {spec.id!r}: unknown family {spec.family!r}; valid: {FAMILIES}")
    if spec.id.startswith("vision:"):
        from biasboard.harness.models.vision import resolve_builtin

        return resolve_builtin(spec)
    if spec.id.startswith("zoo:"):
        entry = zoo.get_entry(spec.id)
        path = zoo.pull(entry.alias)
        return ResolvedModel(spec, spec.family or entry.family, path, entry.fmt, _weights_digest(path))
    local = Path(spec.id).expanduser()
    if local.exists():
        return ResolvedModel(spec, spec.family or _family_from_config(local), local, "hf", _weights_digest(local))
    try:
        from huggingface_hub import snapshot_download

        path = Path(snapshot_download(spec.id, revision=spec.revision,
                                      allow_patterns=["*.json", "*.txt", "*.model", "*.safetensors", "*.bin"]))
    except Exception as exc:  # hub unreachable, unknown repo, auth: all end the same way for the user
        from biasboard.harness.models.zoo import ZOO

        raise BiasboardError(
            f"model {spec.id!r} is not a zoo alias, not a local folder, and could not be fetched from the "
            f"Hugging Face Hub ({type(exc).__name__}). Zoo models: {', '.join('zoo:' + a for a in ZOO)}") from exc
    return ResolvedModel(spec, spec.family or _family_from_config(path), path, "hf", _weights_digest(path))


def _dequantised_gguf(resolved: ResolvedModel) -> Path:
    """Convert a GGUF file to a float32 safetensors folder once; later loads read the folder."""
    from filelock import FileLock

    out = cache_dir() / "converted" / resolved.weights_sha256[:16]
    if (out / "config.json").exists() and any(out.glob("*.safetensors")):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if (out / "config.json").exists() and any(out.glob("*.safetensors")):
            return out
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder, name = resolved.path.parent, resolved.path.name
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        from safetensors.torch import save_model

        tmp = out.with_name(out.name + ".tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        # transformers refuses to re-serialise GGUF-loaded models; the weights are plain float32 tensors by now.
        config = model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.save_pretrained(tmp)
        save_model(model, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        tok.save_pretrained(tmp)
        tmp.rename(out)
    return out


_AUTO = {"mlm": "AutoModelForMaskedLM", "clm": "AutoModelForCausalLM", "encoder": "AutoModel"}


def load_handle(spec: "ModelSpec | str | dict | ResolvedModel") -> ModelHandle:
    """Load a model into a handle (eval mode, CPU unless moved)."""
    resolved = spec if isinstance(spec, ResolvedModel) else resolve_model(spec)
    family = resolved.family
    if family == "wordvec":
        from biasboard.harness.models.wordvec import load_word_vectors

        vectors, vocab = load_word_vectors(resolved.path, resolved.fmt)
        return ModelHandle(resolved.spec.id, family, None, None, resolved.weights_sha256,
                           extras={"vectors": vectors, "vocab": vocab})
    if family == "vision":
        from biasboard.harness.models import vision

        return vision.load_vision_handle(resolved)
    import transformers

    path = resolved.path
    if resolved.fmt == "gguf":
        path = _dequantised_gguf(resolved)
    elif resolved.fmt != "hf":
        raise UnsupportedError(f"model {resolved.spec.id!r}: format {resolved.fmt!r} cannot load as {family}")
    auto = getattr(transformers, _AUTO[family])
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol before refusing; one line is enough
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            model = auto.from_pretrained(path, dtype=weights_dtype(resolved.spec.dtype))
    except pickle.UnpicklingError:  # torch's weights-only loader met a pickle that builds objects: never run it
        names = ", ".join(sorted(p.name for p in Path(path).glob("*.bin"))) or "weights file"
        raise DataError(f"refused to load {names}: a pickle that holds code or objects other than tensors; "
                        "convert the model to safetensors from a trusted copy", path=path) from None
    model.eval()
    if tokenizer.pad_token_id is None:
        # Padding positions are always masked out; any id works, eos is the usual choice.
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return ModelHandle(resolved.spec.id, family, model, tokenizer, resolved.weights_sha256,
                       precision=resolved.spec.dtype)
