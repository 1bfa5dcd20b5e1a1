"""Causal scoring gathers the target log-probabilities at the scored positions only (vocabulary head and
logsumexp there, not a float32 log-softmax over the whole vocabulary everywhere); it must equal the plain way."""
import numpy as np
import pytest
import torch

from biasboard.harness.models import scoring

SENTENCES = ["He is a nurse.", "Women don't know how to drive.", "Yes.", "He is a nurse.",
             "My mom spent all day cooking for Thanksgiving"]


def _plain(handle, seq, start):
    """log_softmax over the whole vocabulary from a full forward pass of one sequence, unbatched."""
    with torch.inference_mode():
        logits = handle.model(input_ids=torch.tensor([seq])).logits[0, :-1].float()
    lp = torch.log_softmax(logits, dim=-1).gather(1, torch.tensor(seq[1:]).unsqueeze(1)).squeeze(1).numpy()
    return lp[start - 1:]


@pytest.mark.slow
def test_scored_positions_only_equal_the_full_log_softmax(smollm):
    bos = smollm.tokenizer.bos_token_id
    ids = [[bos] + x for x in scoring.tokenize(smollm, SENTENCES, add_special_tokens=False)]
    starts = [1, 3, 1, 2, 4]  # the repeated sentence with another start is another item
    got = scoring.sequence_logprobs(smollm, ids, starts=starts, batch_size=2)
    for seq, st, lp in zip(ids, starts, got, strict=True):
        want = _plain(smollm, seq, st)
        assert lp.shape == want.shape
        assert np.max(np.abs(lp - want)) < 1e-4
    assert scoring._clm_head(smollm.model) is not None  # SmolLM2 (llama) takes the shortcut


def test_tokenize_calls_the_tokenizer_once_per_distinct_text():
    class Tok:
        calls = []

        def __call__(self, texts, add_special_tokens=True):
            self.calls.append(list(texts))
            return {"input_ids": [[len(t)] for t in texts]}

    handle = type("H", (), {"tokenizer": Tok()})()
    out = scoring.tokenize(handle, ["ab", "c", "ab"])
    assert out == [[2], [1], [2]] and out[0] is not out[2]
    assert handle.tokenizer.calls == [["ab", "c"]]


def test_a_start_outside_the_sequence_is_one_clear_error():
    from biasboard.harness.errors import UnsupportedError

    handle = type("H", (), {"family": "clm", "id": "x"})()
    with pytest.raises(UnsupportedError, match="item 0: start 3 outside 1..2"):
        scoring.sequence_logprobs(handle, [[1, 2]], starts=[3])
