"""LM fine-tuning precision (``train_precision``): ``auto`` is decided by the hardware when parameters are resolved,
the concrete value reaches the training config, the cache key (float32 keys unchanged), the lineage and the
provenance record, and bfloat16 autocast keeps float32 weights and float32 losses."""
from __future__ import annotations

import pytest
import torch

from biasboard.harness.errors import BiasboardError
from biasboard.harness.models import precision
from biasboard.harness.registry import METHODS
from biasboard.harness.specs import RunContext
from biasboard.harness.training import lm as lf
from biasboard.harness.training.config import TrainConfig

LM_METHODS = ["erm", "group_dro", "topk_dro", "topk_ae_dro", "robust_debias", "bias_vector"]


@pytest.mark.parametrize("name", LM_METHODS)
@pytest.mark.parametrize("fast", [True, False])
def test_auto_is_resolved_by_the_hardware(monkeypatch, name, fast):
    monkeypatch.setattr(precision, "fast_bf16", lambda: fast)
    method = METHODS.get(name)()
    assert method.params["train_precision"] == "auto"
    assert method.resolve_params({})["train_precision"] == ("mixed-bf16" if fast else "float32")
    assert method.resolve_params({"train_precision": "float32"})["train_precision"] == "float32"
    with pytest.raises(BiasboardError, match="train_precision 'bfloat16'"):
        method.resolve_params({"train_precision": "bfloat16"})


def test_precision_reaches_the_config_and_only_non_default_values_the_cache_key():
    params = dict(lf.COMMON_PARAMS, train_precision="mixed-bf16")
    assert lf.train_config(params, "clm", 0).precision == "mixed-bf16"
    old = {k: v for k, v in lf.COMMON_PARAMS.items() if k != "train_precision"}  # a caller from before the option
    assert lf.train_config(old, "clm", 0).precision == "float32"
    assert "precision" not in TrainConfig("lm", steps=3).key_fields()
    assert TrainConfig("lm", steps=3, precision="mixed-bf16").key_fields()["precision"] == "mixed-bf16"
    with pytest.raises(BiasboardError, match="precision 'bfloat16'"):
        TrainConfig("lm", steps=3, precision="bfloat16")


@pytest.mark.skipif(not precision.fast_bf16(), reason="bfloat16 autocast is slow without native support")
def test_mixed_bf16_training_keeps_float32_weights_and_is_recorded(splade, tmp_path):
    runs = {}
    for value in ("float32", "mixed-bf16"):
        ctx = RunContext(seed=0, params={"steps": 2, "batch_size": 4, "n_sentences": 40, "train_precision": value},
                         cache_dir=tmp_path)
        out = METHODS.get("erm")().apply(splade, ctx)
        assert all(p.dtype == torch.float32 for p in out.model.parameters())
        assert out.extras["finetune"] == {"steps": 2, "batch_size": 4, "max_length": 32, "precision": value}
        assert f"train_precision={value}" in out.lineage[-1]
        runs[value] = out.extras["finetune_history"]
    assert len(list((tmp_path / "lm_finetuned").iterdir())) == 2  # the precisions never share cached weights
    first = [runs[v][0]["loss"] for v in ("float32", "mixed-bf16")]
    assert first[0] != first[1] and first[1] == pytest.approx(first[0], rel=0.02)  # autocast ran, losses agree


def test_the_causal_lm_budget_is_the_measured_one():
    """16 steps: the budget measured on zoo:smollm2-135m at which ERM and RobustDebias move their training objective
    and CrowS-Pairs' likelihood_diff (docs/lm-methods.md, "Step budget"); 4 moved no bias metric."""
    assert lf.AUTO_STEPS["clm"] == 16
    assert lf.train_config(lf.COMMON_PARAMS, "clm", 0).steps == 16
