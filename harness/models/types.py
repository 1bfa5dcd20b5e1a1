"""The model types every part shares: what the user asked for, where it resolved to, and a loaded handle.

Kept apart from the loaders (``handles``, ``vision``) so each loader can build these without importing another.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from biasboard.harness.errors import BiasboardError
from biasboard.harness.models.precision import resolve_dtype


@dataclass(frozen=True)
class ModelSpec:
    """What the user asked for."""

    id: str
    """``zoo:<alias>``, a local folder, or a Hugging Face Hub id."""
    family: str | None = None
    """mlm, clm, encoder, wordvec or vision; inferred from the zoo or the config's architectures when omitted."""
    revision: str | None = None
    """Hub revision (branch, tag or commit) for hub ids."""
    dtype: str = "float32"
    """Precision: float32, bfloat16, float16, mixed-bf16 or auto (resolved at parse time; see models/precision)."""

    @classmethod
    def parse(cls, value: "str | dict | ModelSpec") -> "ModelSpec":
        if isinstance(value, ModelSpec):
            return value
        if isinstance(value, dict):
            unknown = set(value) - {"id", "family", "revision", "dtype"}
            if unknown or "id" not in value:
                raise BiasboardError(f"model entry {value!r}: needs 'id'; allowed keys id, family, revision, dtype")
            spec = cls(**value)
            return replace(spec, dtype=resolve_dtype(str(spec.dtype), where=f"model {spec.id!r} dtype"))
        return cls(id=str(value))


@dataclass(frozen=True)
class ResolvedModel:
    """A spec resolved to local files."""

    spec: ModelSpec
    family: str
    path: Path
    fmt: str
    weights_sha256: str


@dataclass
class ModelHandle:
    """A loaded model with what tasks need; methods return new handles (never mutate the one they get)."""

    id: str
    family: str
    model: Any
    tokenizer: Any = None
    weights_sha256: str = ""
    """Digest of the base weights files the handle was loaded from."""
    lineage: tuple[str, ...] = ()
    """Methods applied so far, e.g. ``("perturb(sigma=0.01,seed=0)",)``."""
    extras: dict[str, Any] = field(default_factory=dict)
    """Family-specific data (word vectors: ``vectors``, ``vocab``)."""
    precision: str = "float32"
    """The resolved precision the model runs in; ``mixed-bf16`` makes the scoring primitives autocast."""

    def derive(self, model: Any = None, step: str = "", **extras) -> "ModelHandle":
        """A new handle sharing the tokenizer, with a new model and one more lineage step."""
        merged = dict(self.extras)
        merged.update(extras)
        return replace(self, model=self.model if model is None else model,
                       lineage=self.lineage + ((step,) if step else ()), extras=merged)

    def clone_model(self):
        """A deep copy of the torch module, for methods that change weights."""
        return copy.deepcopy(self.model)
