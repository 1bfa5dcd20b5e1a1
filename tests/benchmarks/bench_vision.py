"""Speed of vision training on the synthetic digits set: one ERM epoch of the small CNN with 1 vs 2 torch threads
(the trainer defaults to 1), and one Debiasify clustering pass (per-class PCA + K search).

Run: ``pytest tests/benchmarks/bench_vision.py -o python_files='bench_*.py' --benchmark-enable``. Figures in BENCHMARKS.md.
"""
from __future__ import annotations

import numpy as np
import pytest

from biasboard.harness.models.vision import builtin_handle
from biasboard.harness.training.vision import CrossEntropy, TrainConfig, Trainer
from biasboard.submissions.debiasify.losses import choose_clusters
from biasboard.tasks.vision_data import make_colored_digits


@pytest.fixture(scope="module")
def setup():
    return builtin_handle("small-cnn"), make_colored_digits(rho=0.9)


def _trainer(setup, threads):
    h, data = setup
    return Trainer(backbone=h.model, stage_dims=h.extras["stage_dims"], data=data,
                   config=TrainConfig("vision", epochs=1, selection="last", threads=threads),
                   normalize=(h.extras["mean"], h.extras["std"]))


@pytest.mark.parametrize("threads", [1, 2])
def test_erm_epoch(benchmark, setup, threads):
    trainer = _trainer(setup, threads)
    result = benchmark.pedantic(lambda: trainer.fit(CrossEntropy()), rounds=3, iterations=1)
    assert result.epoch == 1


@pytest.mark.parametrize("gamma", [0.5, 0.02])
def test_debiasify_clustering_pass(benchmark, gamma):
    rng = np.random.default_rng(0)
    # one class of the digits training split: ~540 projected 128-d shallow features in two attribute blobs,
    # within-blob variance 128 * 0.05^2 = 0.32: gamma 0.5 stops at K = 2, gamma 0.02 searches all 20
    feats = np.concatenate([rng.normal(0, 0.05, (520, 128)), rng.normal(1.0, 0.05, (20, 128))])
    labels = benchmark.pedantic(lambda: choose_clusters(feats, gamma=gamma, max_k=20), rounds=3, iterations=1)
    assert labels.max() >= 1
