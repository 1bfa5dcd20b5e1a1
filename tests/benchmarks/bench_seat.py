"""SEAT speed: the vectorised permutation test against the one-shuffle-per-sample loop, and all 23 SEAT tests on
zoo:minilm-l6 end to end.

Run: ``pytest tests/benchmarks/bench_seat.py -o python_files='bench_*.py' --benchmark-enable`` (not collected by the
default test run).
Figures: BENCHMARKS.md.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from seat_reference import loop_p_value  # noqa: E402

from biasboard.harness.specs import RunContext  # noqa: E402
from biasboard.tasks.seat import metrics as ms  # noqa: E402

N_SAMPLES = 100_000


def _glove_weat1():
    """Real associations: weat1 (flowers / insects vs pleasant / unpleasant) on GloVe 6B 50d, 24 + 24 words."""
    from biasboard.harness.data import find
    from biasboard.harness.models import load_handle
    from biasboard.tasks.seat.task import word_vector
    from biasboard.tasks.seat.runner import lookup_vectors
    from biasboard.tasks.seat.data import load_test

    prep = lookup_vectors(load_test(find("seat/weat1.jsonl")), word_vector(load_handle("zoo:glove-6b-50d")))
    cos = ms.cosine_matrix(np.vstack((prep.x, prep.y)), np.vstack((prep.a, prep.b)))
    return ms.association(cos, len(prep.a)), len(prep.x)


def _synthetic(n):
    s = np.random.default_rng(1).normal(size=2 * n)
    s[:n] += 0.15
    return s, n


CASES = {"glove-weat1-24": _glove_weat1, "n64": lambda: _synthetic(64), "n350": lambda: _synthetic(350)}


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    return request.param, *CASES[request.param]()


@pytest.mark.parametrize("threads", [1, 2])
def test_permutation_vectorised(benchmark, case, threads):
    name, s, n = case
    p, exact = benchmark(ms.permutation_p_value, s, n, n_samples=N_SAMPLES, seed=0, threads=threads)
    assert not exact
    ref = loop_p_value(s, n, N_SAMPLES, seed=1)
    assert abs(p - ref) < 4 * math.sqrt(max(ref * (1 - ref), 1 / N_SAMPLES) * 2 / N_SAMPLES) + 1e-4
    benchmark.extra_info.update(case=name, threads=threads, p=p, loop_p=ref)


def test_permutation_loop(benchmark, case):
    name, s, n = case
    p = benchmark.pedantic(loop_p_value, args=(s, n, N_SAMPLES), kwargs={"seed": 1}, rounds=3, iterations=1)
    benchmark.extra_info.update(case=name, p=p)


def test_seat_all_tests_minilm(benchmark, minilm):
    from biasboard.tasks.seat.task import Seat

    res = benchmark.pedantic(Seat().evaluate, args=(minilm, "mean", RunContext(batch_size=64)), rounds=1,
                             iterations=1)
    assert len(res.examples) == 23
    benchmark.extra_info.update(mean_abs_effect_size=res.metrics["mean_abs_effect_size"].value,
                                sentences=int(res.notes[0].split()[0]))
