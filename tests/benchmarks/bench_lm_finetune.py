"""Tokens per second of upstream LM fine-tuning (harness.training.lm): MLM on zoo:splade-tiny (with and without
computing the vocabulary head only at the masked positions) and CLM on zoo:smollm2-135m, ERM and RobustDebias.

Run: BIASBOARD_DATA_DIR=../shared/data pytest tests/benchmarks/bench_lm_finetune.py -o python_files='bench_*.py' \
         --benchmark-enable -s
"""
from __future__ import annotations

import pytest

from biasboard.harness.training import lm as lf
from biasboard.harness.training.corpora import holistic_split
from biasboard.harness.training.robust import ErmObjective, TopKAEObjective, inverse_frequency_weights

CORPUS = holistic_split("6bias_high", n_sentences=600, seed=0)


def _objective(kind, dim):
    if kind == "erm":
        return ErmObjective()
    weights = inverse_frequency_weights(CORPUS.label_ids(), len(CORPUS.types))
    return TopKAEObjective(dim, n_groups=len(CORPUS.types), type_weights=weights)


def _run(benchmark, handle, family, kind, steps, batch_size, max_length):
    config = lf.TrainConfig("lm", steps=steps, batch_size=batch_size, max_length=max_length)
    out = {}

    def run():
        model = handle.clone_model()
        _, out["rate"] = lf.train_lm(model, handle.tokenizer, family, CORPUS, config,
                                     _objective(kind, model.config.hidden_size))

    benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=1)  # the first run pays one-off allocations
    benchmark.extra_info.update({"tokens_per_s": out["rate"], "steps": steps, "batch_size": batch_size})
    print(f"\n{handle.id} {family} {kind}: {steps} steps x {batch_size} sentences: {out['rate']:.0f} tokens/s "
          f"({benchmark.stats.stats.median:.1f} s)")
    return out["rate"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["erm", "robust_debias"])
def test_mlm_tokens_per_second(benchmark, splade, kind):
    assert _run(benchmark, splade, "mlm", kind, steps=20, batch_size=32, max_length=32) > 0


@pytest.mark.slow
def test_mlm_full_vocab_head_tokens_per_second(benchmark, splade, monkeypatch):
    """The same loop with the vocabulary projection at every position (what a naive loop does)."""
    monkeypatch.setattr(lf, "_mlm_head", lambda model: None)
    assert _run(benchmark, splade, "mlm", "erm", steps=20, batch_size=32, max_length=32) > 0


@pytest.mark.slow
def test_clm_tokens_per_second(benchmark, smollm):
    assert _run(benchmark, smollm, "clm", "erm", steps=4, batch_size=32, max_length=24) > 0  # the CPU default budget
