"""Self-Debias: the decay rule by hand, the prefix placement against a direct computation, and the identity case."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from biasboard.harness.errors import UnsupportedError
from biasboard.harness.models import scoring
from biasboard.harness.specs import RunContext
from biasboard.submissions.self_debias import PREFIXES, SelfDebias, debiased_logprobs

SENTENCES = ["The nurse said that she would be late.", "Men are bad at cooking.",
             "The engineer fixed the car because he was skilled.", "Women can't drive."]


def _apply(handle, **params):
    method = SelfDebias()
    return method.apply(handle, RunContext(params=method.resolve_params(params)))


def test_decay_by_hand_with_two_prefixes():
    plain = torch.log(torch.tensor([[0.5, 0.3, 0.2]]))
    first = torch.log(torch.tensor([[0.6, 0.2, 0.2]]))   # token 0: +0.1
    second = torch.log(torch.tensor([[0.4, 0.3, 0.3]]))  # token 2: +0.1; the per-token maximum takes both
    got = debiased_logprobs(plain, [first, second], decay_constant=10.0, epsilon=0.01).exp()[0]
    a = math.exp(-1.0)
    raw = [0.5 * a, 0.3, 0.2 * a]
    assert got.tolist() == pytest.approx([v / sum(raw) for v in raw], abs=1e-6)


def test_tokens_the_prefix_makes_less_likely_are_not_boosted_beyond_renormalisation():
    plain = torch.log(torch.tensor([[0.5, 0.5]]))
    lower = torch.log(torch.tensor([[0.9, 0.1]]))
    got = debiased_logprobs(plain, [lower], decay_constant=50.0, epsilon=0.01).exp()[0]
    assert got[0] < 0.5 * 0.02 and got.sum().item() == pytest.approx(1.0)


def test_unknown_bias_type_is_one_clear_error(splade):
    with pytest.raises(UnsupportedError, match="valid: race-color"):
        _apply(splade, bias_type="height")


@pytest.mark.slow
def test_causal_prefix_placement_matches_a_direct_computation(smollm):
    """Position j of the plain sequence must be compared with the prefixed sequence's position that predicts the
    same next token: computed here one sentence at a time, without padding."""
    debiased = _apply(smollm)
    bos = smollm.tokenizer.bos_token_id if smollm.tokenizer.bos_token_id is not None else smollm.tokenizer.eos_token_id
    seqs = [[bos] + ids for ids in scoring.tokenize(smollm, SENTENCES, add_special_tokens=False)]
    got = scoring.sequence_logprobs(debiased, seqs, batch_size=4)
    prefix = smollm.tokenizer(PREFIXES["gender"], add_special_tokens=False)["input_ids"]
    for seq, lp in zip(seqs, got):
        with torch.inference_mode():
            plain = smollm.model(input_ids=torch.tensor([seq])).logits[0, :-1]
            pre = smollm.model(input_ids=torch.tensor([seq[:1] + prefix + seq[1:]])).logits[0, len(prefix):-1]
        want = debiased_logprobs(plain, [pre], decay_constant=50.0, epsilon=0.01)
        want = want.gather(1, torch.tensor(seq[1:]).unsqueeze(1)).squeeze(1).numpy()
        np.testing.assert_allclose(lp, want, atol=2e-4)


@pytest.mark.slow
def test_causal_scores_do_not_depend_on_batch_size_and_change_the_model(smollm):
    debiased = _apply(smollm)
    bos = smollm.tokenizer.bos_token_id if smollm.tokenizer.bos_token_id is not None else smollm.tokenizer.eos_token_id
    seqs = [[bos] + ids for ids in scoring.tokenize(smollm, SENTENCES, add_special_tokens=False)]
    one = scoring.sequence_logprobs(debiased, seqs, batch_size=1)
    four = scoring.sequence_logprobs(debiased, seqs, batch_size=4)
    plain = scoring.sequence_logprobs(smollm, seqs, batch_size=4)
    for a, b in zip(one, four, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)
    assert max(np.abs(a - p).max() for a, p in zip(four, plain)) > 1e-3


@pytest.mark.parametrize("fixture", ["splade", pytest.param("smollm", marks=pytest.mark.slow)])
def test_floor_of_one_turns_debiasing_off(request, fixture):
    handle = request.getfixturevalue(fixture)
    off = _apply(handle, epsilon=1.0)
    if handle.family == "mlm":
        ids = scoring.tokenize(handle, SENTENCES)
        positions = [list(range(1, len(s) - 1)) for s in ids]
        a = scoring.pseudo_log_likelihoods(off, ids, positions, batch_size=8)
        b = scoring.pseudo_log_likelihoods(handle, ids, positions, batch_size=8)
    else:
        ids = scoring.tokenize(handle, SENTENCES)
        a = scoring.sequence_logprobs(off, ids, batch_size=4)
        b = scoring.sequence_logprobs(handle, ids, batch_size=4)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, atol=1e-4)


def test_pairs_only_with_tasks_that_score_text():
    from biasboard.harness.matrix import Matrix, plan

    matrix = Matrix.from_dict({"name": "t", "models": ["zoo:splade-tiny"], "methods": ["self_debias"],
                               "tasks": ["seat:mean", "crows_pairs:pll_unmodified"]})
    cells, skipped = plan(matrix)
    assert [c.task for c in cells] == ["crows_pairs"]
    assert any("applies to crows_pairs" in s.reason and "not seat" in s.reason for s in skipped)


def test_masked_lm_shortcut_equals_the_full_forward_at_the_mask(splade):
    """Masked models are debiased at their mask tokens only: the same numbers as the full-vocabulary path."""
    debiased = _apply(splade)
    ids = scoring.tokenize(splade, SENTENCES)
    seqs = [list(s) for s in ids]
    for s in seqs:
        s[2] = splade.tokenizer.mask_token_id
    padded, mask = scoring._pad(seqs, splade.tokenizer.pad_token_id)
    wrapper = debiased.model
    with torch.inference_mode():
        fast = wrapper(input_ids=padded, attention_mask=mask).logits[:, 2]
        wrapper.mask_id = None
        full = wrapper(input_ids=padded, attention_mask=mask).logits[:, 2]
    torch.testing.assert_close(fast, full, atol=1e-4, rtol=1e-4)
