"""Shared-prefix packing gives every sequence the numbers it gets alone: tiny random causal models of each packable
type, sequences that share starts, repeat, contain one another or share nothing."""
import numpy as np
import pytest
import torch
import transformers

from biasboard.harness.models import packing, scoring

SEQS = [[1, 5, 6, 7, 8], [1, 5, 6, 9, 10, 11], [1, 5, 6, 7, 12], [1, 5, 6], [2, 3], [1, 5, 6, 7, 8],
        [4, 4, 4, 4, 4, 4, 4], [1, 5, 13, 14, 15, 16, 17, 18], [1, 5, 6, 9, 10, 11, 19]]
STARTS = [1, 2, 1, 1, 1, 3, 1, 4, 1]


def _tiny(kind: str, attn: str):
    torch.manual_seed(0)
    common = dict(vocab_size=32, attn_implementation=attn)
    if kind == "gpt2":
        return transformers.GPT2LMHeadModel(transformers.GPT2Config(n_embd=16, n_layer=2, n_head=2, **common))
    if kind == "gpt_neox":
        cfg = transformers.GPTNeoXConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                         num_attention_heads=2, **common)
        return transformers.GPTNeoXForCausalLM(cfg)
    cls = {"llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
           "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM),
           "mistral": (transformers.MistralConfig, transformers.MistralForCausalLM)}[kind]
    cfg = cls[0](hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                 num_key_value_heads=1, **common)
    return cls[1](cfg)


def _handle(model):
    tok = type("Tok", (), {"pad_token_id": 0})()
    return type("H", (), {"family": "clm", "id": "tiny", "model": model.eval(), "tokenizer": tok,
                          "precision": "float32"})()


def _alone(model, seq, start):
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([seq])).logits[0, :-1].float()
    lp = torch.log_softmax(logits, dim=-1).gather(1, torch.tensor(seq[1:]).unsqueeze(1)).squeeze(1).numpy()
    return lp[start - 1:]


@pytest.mark.parametrize("kind", ["llama", "gpt2", "gpt_neox", "qwen2", "mistral"])
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_scores_equal_each_sequence_alone(kind, attn):
    model = _tiny(kind, attn)
    handle = _handle(model)
    assert scoring._packable(model, SEQS)
    for batch_size in (1, 3, 64):
        got = scoring.sequence_logprobs(handle, SEQS, starts=STARTS, batch_size=batch_size)
        for seq, st, lp in zip(SEQS, STARTS, got, strict=True):
            np.testing.assert_allclose(lp, _alone(model, seq, st), atol=1e-5)


def test_packs_share_the_longest_starts_and_save_tokens():
    packs = packing.prefix_packs(SEQS)
    assert sorted(i for p in packs for i in p.members) == list(range(len(SEQS)))
    together = {frozenset(p.members) for p in packs}
    assert frozenset({4}) in together and frozenset({6}) in together  # nothing shared: alone
    assert sum(len(p.tokens) for p in packs) < sum(map(len, SEQS))
    for p in packs:  # every member's tokens are found where the layout says
        for k, i in enumerate(p.members):
            assert [p.tokens[j] for j in p.where[k]] == SEQS[i]
            assert [p.positions[j] for j in p.where[k]] == list(range(len(SEQS[i])))


def test_a_group_stops_growing_when_it_would_save_nothing():
    seqs = [[1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 7], [1, 9, 9, 9]]
    packs = packing.prefix_packs(seqs)
    assert sorted(sorted(p.members) for p in packs) == [[0, 1], [2]]
    assert len(packing.prefix_packs(seqs * 5, max_members=2)) >= 8


def test_a_sliding_window_shorter_than_a_sequence_is_not_packed():
    model = _tiny("mistral", "sdpa")
    model.config.sliding_window = 4
    assert not scoring._packable(model, SEQS)
    handle = _handle(model)
    got = scoring.sequence_logprobs(handle, SEQS[:3], batch_size=2)  # the padded path still scores them
    assert [len(x) for x in got] == [4, 5, 4]
