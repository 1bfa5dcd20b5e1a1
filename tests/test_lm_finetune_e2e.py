"""End to end on real zoo models: each LM fine-tuning method for a few steps on zoo:splade-tiny, the causal loop on
zoo:smollm2-135m, per-sentence losses independent of batching, weight caching, and Bias Vector arithmetic + leakage."""
from __future__ import annotations

import pytest
import torch

from biasboard.harness.training import lm as lf
from biasboard.harness.training.corpora import holistic_split
from biasboard.harness.registry import METHODS
from biasboard.harness.training.robust import ErmObjective
from biasboard.harness.specs import RunContext

pytestmark = pytest.mark.slow
TINY = {"steps": 2, "batch_size": 8, "n_sentences": 60, "max_length": 16}
SENTENCES = holistic_split("3bias", n_sentences=30, seed=1)


def _losses(handle, rows, family):
    tokens = lf._Tokens(handle.tokenizer, SENTENCES.texts, 16)
    config = lf.TrainConfig("lm", seed=5)
    batch = lf.build_batch(tokens, rows, family=family, config=config, epoch=0, mask_id=handle.tokenizer.mask_token_id,
                           vocab_size=handle.model.get_output_embeddings().weight.shape[0])
    with torch.no_grad():
        return lf.sentence_losses(handle.model, batch, family=family, need_hidden=True)


@pytest.mark.parametrize("fixture,family", [("splade", "mlm"), ("smollm", "clm")])
def test_sentence_losses_do_not_depend_on_the_batch(request, fixture, family):
    handle = request.getfixturevalue(fixture)
    rows = list(range(12))
    together, pooled = _losses(handle, rows, family)
    for r in (0, 5, 11):
        alone, h = _losses(handle, [r], family)
        assert float(alone[0]) == pytest.approx(float(together[r]), abs=1e-4)
        assert torch.allclose(h[0], pooled[r], atol=1e-4)
    assert bool(torch.isfinite(together).all()) and float(together.min()) > 0


def _max_change(a, b):
    pb = dict(b.named_parameters())
    return max(float((p.detach() - pb[n].detach()).abs().max()) for n, p in a.named_parameters())


@pytest.mark.parametrize("name", ["erm", "group_dro", "topk_dro", "topk_ae_dro", "robust_debias"])
def test_each_objective_fine_tunes_splade_tiny(splade, tmp_path, name):
    before = {n: p.detach().clone() for n, p in splade.model.named_parameters()}
    method = METHODS.get(name)()
    params = dict(TINY, corpus="6bias_high") if name == "robust_debias" else dict(TINY)
    ctx = RunContext(seed=0, params=params, cache_dir=tmp_path)
    out = method.apply(splade, ctx)
    assert out is not splade and out.model is not splade.model
    assert all(torch.equal(p, before[n]) for n, p in splade.model.named_parameters())  # input not mutated
    assert _max_change(out.model, splade.model) > 0
    assert all(bool(torch.isfinite(p).all()) for p in out.model.parameters())
    assert out.lineage[-1].startswith(f"{name}(") and "seed=0" in out.lineage[-1]
    history = out.extras["finetune_history"]
    assert history[-1]["step"] == 2 and history[-1]["loss"] > 0
    again = method.apply(splade, ctx)  # cached weights, identical
    assert _max_change(again.model, out.model) == 0
    assert len(list((tmp_path / "lm_finetuned").iterdir())) == 1


def test_objectives_differ_on_the_same_batches(splade, tmp_path):
    """ERM and TopK see the same seeded batches and masks; their updates must differ (the objective matters)."""
    ctx = lambda: RunContext(seed=0, params=dict(TINY), cache_dir=tmp_path)  # noqa: E731
    erm = METHODS.get("erm")().apply(splade, ctx())
    topk = METHODS.get("topk_dro")().apply(splade, ctx())
    assert erm.extras["finetune_history"][-1]["mean_sentence_loss"] == pytest.approx(
        topk.extras["finetune_history"][-1]["mean_sentence_loss"], rel=0.2)
    assert _max_change(erm.model, topk.model) > 0


def test_causal_fine_tuning_on_smollm(smollm, tmp_path):
    corpus = holistic_split("3bias", n_sentences=12, seed=0)
    config = lf.TrainConfig("lm", steps=1, batch_size=4, max_length=12, lr=1e-5)
    ft = lf.finetune_lm(smollm, corpus, config, lambda dim, c: ErmObjective(), objective_id={"name": "erm"},
                        cache=tmp_path)
    assert not ft.from_cache and ft.tokens_per_s > 0
    assert _max_change(ft.model, smollm.model) > 0
    assert 0 < ft.history[-1]["loss"] < 20


def test_bias_vector_arithmetic_cache_and_leakage(splade, tmp_path):
    from biasboard.submissions.bias_vector import norm_parameter_names

    method = METHODS.get("bias_vector")()
    params = {"steps": 2, "batch_size": 8, "max_length": 16}
    h1 = method.apply(splade, RunContext(seed=0, params=dict(params, **{"lambda": 1.0}), cache_dir=tmp_path))
    h10 = method.apply(splade, RunContext(seed=0, params=dict(params, **{"lambda": 10.0}), cache_dir=tmp_path))
    h0 = method.apply(splade, RunContext(seed=0, params=dict(params, **{"lambda": 0.0}), cache_dir=tmp_path))
    assert len(list((tmp_path / "bias_vectors").glob("*.safetensors"))) == 1  # one vector for every lambda
    assert _max_change(h0.model, splade.model) == 0
    pre, p1, p10 = ({n: p.detach() for n, p in m.named_parameters()} for m in (splade.model, h1.model, h10.model))
    norms = norm_parameter_names(splade.model)
    assert any("LayerNorm" in n for n in norms)
    for n in norms:
        assert torch.equal(p1[n], pre[n]) and torch.equal(p10[n], pre[n])  # LayerNorm untouched
    name = "bert.encoder.layer.0.attention.self.query.weight"
    v = pre[name] - p1[name]  # = lambda * V with lambda 1
    assert float(v.abs().max()) > 0
    assert torch.allclose(pre[name] - p10[name], 10 * v, atol=1e-6)  # theta_pre - 10 V
    assert h1.extras["trained_on"] == ["stereoset"]

    from biasboard.tasks.stereoset.task import StereoSet

    res = StereoSet().evaluate(h1, "intrasentence", RunContext(seed=0, n_bootstrap=50, extra={"max_examples": 20}))
    assert res.flags["leakage"] is True and res.notes[0].startswith("LEAKAGE")
    clean = StereoSet().evaluate(splade, "intrasentence", RunContext(seed=0, n_bootstrap=50,
                                                                      extra={"max_examples": 20}))
    assert "leakage" not in clean.flags


def test_same_seed_gives_the_same_weights_whatever_the_global_rng(splade, tmp_path):
    method = METHODS.get("robust_debias")()
    params = dict(TINY, steps=1, corpus="6bias_high")
    torch.manual_seed(123)
    a = method.apply(splade, RunContext(seed=4, params=params, cache_dir=tmp_path / "a"))
    torch.manual_seed(999)
    b = method.apply(splade, RunContext(seed=4, params=params, cache_dir=tmp_path / "b"))
    assert _max_change(a.model, b.model) == 0
