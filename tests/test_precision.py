"""Precision is a first-class model option: validated, resolved before keys are made, applied in the scoring
primitives, and recorded."""
from __future__ import annotations

import pytest

from biasboard.harness.errors import BiasboardError
from biasboard.harness.models import precision
from biasboard.harness.models.types import ModelSpec


def test_unknown_dtype_is_one_clear_error():
    with pytest.raises(BiasboardError, match=r"unknown dtype 'bf17'.*valid: float32, bfloat16"):
        ModelSpec.parse({"id": "zoo:smollm2-135m", "dtype": "bf17"})


@pytest.mark.parametrize("fast, expected", [(True, "mixed-bf16"), (False, "float32")])
def test_auto_resolves_by_hardware_before_the_key_is_made(monkeypatch, fast, expected):
    monkeypatch.setattr(precision, "fast_bf16", lambda: fast)
    assert ModelSpec.parse({"id": "zoo:smollm2-135m", "dtype": "auto"}).dtype == expected


def test_fast_bf16_reads_the_cpu_flags(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "amx_bf16"}))
    assert precision.fast_bf16()
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    assert not precision.fast_bf16()


def test_a_bf16_gpu_does_not_make_cpu_forward_passes_bf16(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    assert not precision.fast_bf16()
    assert precision.fast_bf16("cuda")
    assert precision.resolve_dtype("auto") == "float32"


def test_mixed_precision_keeps_float32_weights_and_autocasts_matmuls():
    import torch

    assert precision.weights_dtype("mixed-bf16") is torch.float32
    assert precision.weights_dtype("bfloat16") is torch.bfloat16
    a = torch.randn(4, 8)
    with precision.compute_context("mixed-bf16"):
        assert (a @ a.T).dtype is torch.bfloat16
    with precision.compute_context("float32"):
        assert (a @ a.T).dtype is torch.float32


def test_dtype_is_part_of_the_cell_key():
    from biasboard.harness.matrix import Matrix, plan

    def key(dtype):
        m = Matrix.from_dict({"name": "k", "models": [{"id": "zoo:glove-6b-50d", "dtype": dtype}],
                              "methods": ["none"], "tasks": ["weat:sent_bias"], "seeds": [0]})
        cells, _ = plan(m)
        return cells[0].key

    assert key("float32") != key("bfloat16")
