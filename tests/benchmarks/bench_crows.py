"""CrowS-Pairs pll_unmodified throughput on zoo:splade-tiny: batched task vs one masked sentence per forward.

Run: BIASBOARD_DATA_DIR=../shared/data pytest tests/benchmarks/bench_crows.py -o python_files='bench_*.py' \
         --benchmark-enable -s
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import crows_reference as ref  # noqa: E402
from biasboard.harness.specs import RunContext  # noqa: E402
from biasboard.tasks.crows_pairs import CrowsPairs, load_pairs  # noqa: E402

N_PAIRS = 150


@pytest.fixture(scope="module")
def pairs(data_dir):
    return load_pairs(data_dir / "crows_pairs" / "crows_pairs_anonymized.csv")[:N_PAIRS]


def _batched(splade):
    ctx = RunContext(seed=0, batch_size=64, n_bootstrap=10, extra={"max_examples": N_PAIRS})
    return CrowsPairs().evaluate(splade, "pll_unmodified", ctx)


def _naive(splade, pairs):
    out = []
    for p in pairs:
        s1, s2 = (p.sent_more, p.sent_less) if p.direction == "stereo" else (p.sent_less, p.sent_more)
        a, b = ref.nangia_pair(splade.model, splade.tokenizer, s1, s2)
        out.append((a, b) if p.direction == "stereo" else (b, a))
    return out


def test_pll_unmodified_batched_vs_naive(benchmark, splade, pairs):
    _batched(splade)  # warm-up
    t0 = time.perf_counter()
    naive = _naive(splade, pairs)
    naive_s = time.perf_counter() - t0
    result = benchmark.pedantic(_batched, args=(splade,), rounds=3, iterations=1)
    batched_s = benchmark.stats.stats.median
    rows = result.examples
    same = sum(round(r["sent_more_score"], 3) == m and round(r["sent_less_score"], 3) == s
               for r, (m, s) in zip(rows, naive))
    speedup = naive_s / batched_s
    print(f"\nCrowS pll_unmodified on splade-tiny, {N_PAIRS} pairs: batched {N_PAIRS / batched_s:.1f} pairs/s, "
          f"naive {N_PAIRS / naive_s:.1f} pairs/s, speed-up {speedup:.1f}x, identical rounded scores {same}/{N_PAIRS}")
    benchmark.extra_info.update({"pairs_per_s": N_PAIRS / batched_s, "naive_pairs_per_s": N_PAIRS / naive_s,
                                 "speedup": speedup, "identical": same})
    assert same >= N_PAIRS - 2  # float noise may flip a third-decimal rounding on a pair or two
    assert speedup >= 10
