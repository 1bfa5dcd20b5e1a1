"""The ``represent(hidden, ctx)`` method hook: the harness installs it on the final hidden states, every scoring
primitive sees it, and the handle it came from is left as it was (bias-bench's SentenceDebias / INLP forward hook)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from biasboard.harness.matrix import compatible
from biasboard.harness.models import load_handle, scoring
from biasboard.harness.models.represent import install_method_representation, with_representation
from biasboard.harness.registry import METHOD_HOOKS, RegistryError, TASKS, validate_method
from biasboard.harness.specs import Method, RunContext

TEXTS = ["the doctor said he was tired.", "the nurse said she was tired.", "a short one."]


@pytest.fixture(scope="module")
def mlm():
    return load_handle("zoo:splade-tiny")


def _unit(dim: int, seed: int = 0) -> torch.Tensor:
    v = torch.randn(dim, generator=torch.Generator().manual_seed(seed))
    return v / v.norm()


def test_projection_hook_reaches_sentence_encodings_and_leaves_the_base_alone(mlm):
    before = scoring.encode(mlm, TEXTS)
    v = _unit(before.shape[1])
    debiased = with_representation(mlm, lambda h: h - (h @ v)[..., None] * v, step="project")
    vecs = scoring.encode(debiased, TEXTS)
    # every token loses its component along v, so the mean-pooled sentence vector has none either
    assert np.abs(vecs @ v.numpy()).max() < 1e-5
    assert np.abs(before @ v.numpy()).max() > 1e-2
    np.testing.assert_allclose(scoring.encode(mlm, TEXTS), before, atol=0)  # the base handle is untouched
    assert debiased.lineage[-1] == "project"
    assert all(a is b for a, b in zip(debiased.model.parameters(), mlm.model.parameters()))  # weights shared


def test_hook_reaches_the_lm_head_and_identity_changes_nothing(mlm):
    ids = scoring.tokenize(mlm, TEXTS)
    positions = [list(range(1, len(s) - 1)) for s in ids]
    base = scoring.pseudo_log_likelihoods(mlm, ids, positions)
    same = scoring.pseudo_log_likelihoods(with_representation(mlm, lambda h: h.clone(), "id"), ids, positions)
    for a, b in zip(base, same):
        np.testing.assert_allclose(a, b, atol=1e-6)
    v = _unit(mlm.model.config.hidden_size, seed=1)
    moved = scoring.pseudo_log_likelihoods(with_representation(mlm, lambda h: h + 3 * v, "shift"), ids, positions)
    assert max(np.abs(a - b).max() for a, b in zip(base, moved)) > 1e-3


def test_a_wrong_shape_is_one_clear_error(mlm):
    bad = with_representation(mlm, lambda h: h[..., :2], "bad")
    with pytest.raises(Exception, match=r"represent\(hidden, ctx\) must return a tensor of shape"):
        scoring.encode(bad, TEXTS[:1])


class _Shift(Method):
    name = "shift_probe"
    version = "0"
    description = "adds a fixed vector to the final hidden states"
    families = ("mlm", "encoder")
    kind = "representation"
    params = {"scale": 1.0}

    def represent(self, hidden, ctx):
        return hidden + float(ctx.params["scale"])


def test_represent_is_a_method_hook_with_a_checked_signature():
    assert METHOD_HOOKS["represent"] == ("hidden", "ctx")
    validate_method(_Shift)  # represent alone is enough

    class Wrong(_Shift):
        def represent(self, states, ctx):
            return states

    with pytest.raises(RegistryError, match="represent"):
        validate_method(Wrong)


def test_a_represent_only_method_pairs_with_intrinsic_tasks(mlm):
    assert compatible("encoder", _Shift, TASKS.get("seat"), "mean") is None
    handle = install_method_representation(mlm, _Shift(), RunContext(params={"scale": 0.0}))
    assert handle.lineage[-1] == "shift_probe.represent"
    np.testing.assert_allclose(scoring.encode(handle, TEXTS), scoring.encode(mlm, TEXTS), atol=1e-6)
    assert install_method_representation(mlm, Method(), RunContext()) is mlm  # no hook, no change


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_causal_lm_heads_and_hidden_states_see_the_hook(arch):
    """Tiny randomly initialised causal LMs (no download): the hook reaches the LM head and hidden_states[-1]."""
    import transformers
    from types import SimpleNamespace

    from biasboard.harness.models.types import ModelHandle

    if arch == "llama":
        cfg = transformers.LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                       num_attention_heads=2, num_key_value_heads=2)
        model = transformers.LlamaForCausalLM(cfg)
    else:
        model = transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=50, n_embd=16, n_layer=2, n_head=2))
    model.eval()
    handle = ModelHandle("tiny", "clm", model, SimpleNamespace(pad_token_id=0))
    ids = [[3, 7, 9, 11], [5, 6]]
    base = scoring.sequence_logprobs(handle, ids)
    same = scoring.sequence_logprobs(with_representation(handle, lambda h: h.clone(), "id"), ids)
    for a, b in zip(base, same):
        np.testing.assert_allclose(a, b, atol=1e-6)
    zero = with_representation(handle, torch.zeros_like, "zero")
    for lp in scoring.sequence_logprobs(zero, ids):   # zero states give the head's bias only: uniform here
        np.testing.assert_allclose(lp, -np.log(50), atol=1e-5)
    out = zero.model(input_ids=torch.tensor([ids[0]]), output_hidden_states=True)
    assert torch.count_nonzero(out.hidden_states[-1]) == 0
