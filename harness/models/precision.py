"""Numeric precision of a model: what a model entry's ``dtype`` may say, what ``auto`` resolves to on this machine,
and the compute context the scoring primitives run forward passes in.

- ``float32`` (default): the reference precision; official reproductions use it.
- ``bfloat16`` / ``float16``: weights and activations in that type (the model is converted at load).
- ``mixed-bf16``: float32 weights, matrix products in bfloat16 under ``torch.autocast`` (softmax, norms and the
  log-probabilities stay float32), which keeps more decisions than pure bfloat16 at most of its speed.
- ``auto``: ``mixed-bf16`` where the CPU the forward passes run on has AMX-BF16 or AVX512-BF16 (``/proc/cpuinfo``
  flags; torch's ``get_cpu_capability()`` says only "AVX512" on both kinds of AVX-512 CPU), else ``float32``. It is
  resolved when the matrix is planned, so the cell key and the provenance hold the precision that ran, never ``auto``.
"""
from __future__ import annotations

import contextlib
import functools
from pathlib import Path

from biasboard.harness.errors import BiasboardError

DTYPES = ("float32", "bfloat16", "float16", "mixed-bf16", "auto")
FAST_BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags Linux reports (empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def fast_bf16(device: str = "cpu") -> bool:
    """True where bfloat16 matrix products run natively on ``device``: a CPU with AMX-BF16 or AVX512-BF16 (without
    them torch emulates bfloat16 and it is slower than float32), or a CUDA device with bf16. Forward passes run on
    the CPU, so ``auto`` asks about the CPU: a bf16-capable GPU on the machine does not make them faster."""
    if device == "cuda":
        import torch

        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return any(flag in cpu_flags() for flag in FAST_BF16_CPU_FLAGS)


def resolve_dtype(name: str, *, where: str = "dtype") -> str:
    """A concrete precision for ``name`` (``auto`` decided by the hardware); unknown names are an error."""
    if name not in DTYPES:
        raise BiasboardError(f"{where}: unknown dtype {name!r}; valid: {', '.join(DTYPES)}")
    if name == "auto":
        return "mixed-bf16" if fast_bf16() else "float32"
    return name


def weights_dtype(name: str):
    """The torch dtype weights are loaded in (mixed precision keeps float32 weights)."""
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16,
            "mixed-bf16": torch.float32}[resolve_dtype(name)]


def compute_context(precision: str):
    """The context a forward pass runs in: bfloat16 autocast for ``mixed-bf16``, nothing otherwise."""
    if precision != "mixed-bf16":
        return contextlib.nullcontext()
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16)
