"""Shared-prefix causal scoring equals scoring every sequence whole (SmolLM2, real StereoSet sequences)."""
import numpy as np
import pytest

from harness.models import scoring
from harness.models.shared_prefix import grouped_sequence_logprobs, plan_prefixes
from tasks import stereoset_scoring as sc
from tasks.stereoset import data_file
from tasks.stereoset_data import load

pytestmark = pytest.mark.slow


def test_plan_prefixes_edge_cases():
    # no common first token -> singletons; a one-token sequence needs nothing; identical members keep one token out
    assert plan_prefixes([[1, 2], [3, 4], [5]], ["g", "g", "h"]) == [(1, [0]), (1, [1])]
    assert plan_prefixes([[1, 2, 3], [1, 2, 3]], [0, 0]) == [(2, [0, 1])]


@pytest.mark.parametrize("batch_size", [1, 5, 32])
def test_grouped_equals_whole_sequences(smollm, batch_size):
    clusters = load(data_file(), "intersentence")[:6]
    seqs, _ = sc._with_context(smollm.tokenizer, clusters)
    groups = [i // 3 for i in range(len(seqs))]
    seqs += [[5], [7, 8], [9, 10, 11], [9, 12], [12, 13, 14, 15]]  # singletons, a two-member group, one token
    groups += ["one", "two", "pair", "pair", "three"]
    whole = scoring.sequence_logprobs(smollm, seqs, batch_size=8)
    grouped = grouped_sequence_logprobs(smollm, seqs, groups, batch_size=batch_size)
    for a, b, seq in zip(whole, grouped, seqs):
        assert len(b) == len(seq) - 1
        np.testing.assert_allclose(b, a, atol=2e-4)
