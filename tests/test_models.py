"""Model resolution and loading: zoo, local folders, hub failures, weight digests, the perturb method."""
import numpy as np
import pytest
import torch

from biasboard.harness.errors import BiasboardError
from biasboard.harness.models import load_handle, resolve_model
from biasboard.harness.models.zoo import ZOO
from biasboard.harness.specs import RunContext


def test_local_folder_loads_as_mlm_with_digest(tiny_bert_dir):
    resolved = resolve_model(str(tiny_bert_dir))
    assert resolved.family == "mlm" and len(resolved.weights_sha256) == 64
    handle = load_handle(resolved)
    assert handle.family == "mlm" and handle.tokenizer.mask_token_id is not None


def test_family_override_loads_mlm_folder_as_encoder(tiny_bert_dir):
    handle = load_handle({"id": str(tiny_bert_dir), "family": "encoder"})
    assert handle.family == "encoder"


def test_unknown_model_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BiasboardError, match="not a zoo alias, not a local folder"):
        resolve_model("no-such-org/no-such-model")
    with pytest.raises(BiasboardError, match="Did you mean zoo:splade-tiny"):
        resolve_model("zoo:splade-tiyn")


def test_zoo_lists_the_offline_models():
    assert {"smollm2-135m", "minilm-l6", "splade-tiny", "glove-6b-50d", "efficientnet-lite0"} <= set(ZOO)


@pytest.mark.slow
def test_zoo_models_resolve_with_families():
    assert resolve_model("zoo:splade-tiny").family == "mlm"
    assert resolve_model("zoo:smollm2-135m").family == "clm"
    assert resolve_model("zoo:minilm-l6").family == "encoder"


@pytest.mark.slow
def test_smollm_dequantised_sanity(smollm):
    """Sanity check of the de-quantised weights: a fluent sentence is far likelier than its scrambled version."""
    from biasboard.harness.models import scoring

    ids = scoring.tokenize(smollm, ["The cat sat on the mat.", "The cat sat on mat the."], add_special_tokens=False)
    good, bad = (lp.sum() for lp in scoring.sequence_logprobs(smollm, ids))
    assert good == pytest.approx(-32.1, abs=0.6) and bad == pytest.approx(-52.1, abs=0.6)


def test_perturb_is_seeded_and_scaled(tiny_bert_dir):
    from biasboard.submissions.perturb import Perturb

    base = load_handle(str(tiny_bert_dir))
    method = Perturb()
    a = method.apply(base, RunContext(seed=3, params={"sigma": 0.1}))
    b = method.apply(base, RunContext(seed=3, params={"sigma": 0.1}))
    c = method.apply(base, RunContext(seed=4, params={"sigma": 0.1}))
    w0 = dict(base.model.named_parameters())
    for name, p in a.model.named_parameters():
        assert torch.equal(p, dict(b.model.named_parameters())[name])
        if p.numel() > 100 and w0[name].std() > 0:  # zero tensors (fresh biases) get zero noise
            rel = (p - w0[name]).std() / w0[name].std(correction=0)
            assert 0.08 < rel < 0.12, name  # noise std is sigma times the tensor's std
    assert not torch.equal(next(a.model.parameters()), next(c.model.parameters()))
    assert a.lineage == ("perturb(sigma=0.1,seed=3)",) and base.lineage == ()
    # the input handle is never modified
    assert torch.equal(next(base.model.parameters()), next(load_handle(str(tiny_bert_dir)).model.parameters()))
