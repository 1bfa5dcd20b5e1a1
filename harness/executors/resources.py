"""What a cell needs from a cluster node: CPUs, GPUs and memory, declared by model family, task and method.

A scheduler can only pack cells onto nodes if it knows their size. Defaults come from the model family (a causal
LM needs more memory than a 2-layer BERT) and from the size of the weights on disk; a task or method class may
ask for more with an optional class attribute::

    class MyTask(Task):
        resources = {"num_cpus": 2, "memory": 4 * GiB}      # or {"num_gpus": 1}

The largest request of each kind wins. Pure Python: no Ray import, so declarations can be checked anywhere.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from biasboard.harness.errors import BiasboardError

GiB = 1 << 30

__all__ = ["GiB", "Resources", "FAMILY_DEFAULTS", "declared", "weights_bytes", "cell_resources"]


@dataclass(frozen=True)
class Resources:
    """A request for one worker; Ray's names and units (memory in bytes)."""

    num_cpus: float = 1.0
    """Logical CPUs; the worker's torch uses this many threads (Ray sets OMP_NUM_THREADS)."""
    num_gpus: float = 0.0
    """GPUs (fractions allowed); 0 keeps the worker off GPU-only accounting."""
    memory: int = 0
    """Heap memory reserved on the node, in bytes; 0 reserves nothing."""

    def union(self, other: "Resources") -> "Resources":
        """The larger request of each kind: a worker serving both cells needs this much."""
        return Resources(**{f.name: max(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)})

    def ray_options(self) -> dict[str, Any]:
        """Keyword arguments for ``ActorClass.options``."""
        out: dict[str, Any] = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus}
        if self.memory:
            out["memory"] = int(self.memory)
        return out


FAMILY_DEFAULTS: dict[str, Resources] = {
    "mlm": Resources(memory=1 * GiB),
    "encoder": Resources(memory=1 * GiB),
    "clm": Resources(memory=2 * GiB),
    "wordvec": Resources(memory=1 * GiB),
    "vision": Resources(memory=2 * GiB),
}
"""Per family: one CPU and room for a small model, its activations and the tokenizer."""

WEIGHTS_MEMORY_FACTOR = 4
"""Weights on disk times this bounds a float32 model plus activations (quantised files under-estimate; the
family default covers the zoo's one GGUF model)."""


def declared(obj: Any) -> Resources:
    """The ``resources`` class attribute of a task or method (a mapping or ``Resources``), or nothing asked."""
    value = getattr(obj, "resources", None)
    if value is None:
        return Resources(num_cpus=0.0)
    if isinstance(value, Resources):
        return value
    if not isinstance(value, Mapping):
        raise BiasboardError(f"{getattr(obj, '__name__', obj)}.resources must be a mapping or Resources, "
                        f"got {type(value).__name__}")
    names = {f.name for f in fields(Resources)}
    unknown = set(value) - names
    if unknown:
        raise BiasboardError(f"{getattr(obj, '__name__', obj)}.resources: unknown keys {sorted(unknown)}; "
                        f"valid: {sorted(names)}")
    return Resources(**{"num_cpus": 0.0, **value})


def weights_bytes(path: Path) -> int:
    """Bytes of weight files at a model path (a file, or a folder of weight files)."""
    from biasboard.harness.models.handles import WEIGHT_PATTERNS

    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    if not path.is_dir():
        return 0
    return sum(p.stat().st_size for pat in WEIGHT_PATTERNS for p in path.glob(pat))


def cell_resources(cell, *, override: Mapping[str, Any] | None = None) -> Resources:
    """Resources a worker needs for ``cell``: family default, weights size, task and method declarations, then
    ``override`` (e.g. ``{"num_gpus": 1}`` from the caller) replacing whatever it names."""
    from biasboard.harness.registry import METHODS, TASKS

    need = FAMILY_DEFAULTS.get(cell.model.family, Resources(memory=1 * GiB))
    need = need.union(Resources(num_cpus=0.0, memory=WEIGHTS_MEMORY_FACTOR * weights_bytes(cell.model.path)))
    need = need.union(declared(TASKS.get(cell.task))).union(declared(METHODS.get(cell.method.name)))
    if override:
        names = {f.name for f in fields(Resources)}
        unknown = set(override) - names
        if unknown:
            raise BiasboardError(f"resources override: unknown keys {sorted(unknown)}; valid: {sorted(names)}")
        need = Resources(**{**{f.name: getattr(need, f.name) for f in fields(Resources)}, **override})
    return need
