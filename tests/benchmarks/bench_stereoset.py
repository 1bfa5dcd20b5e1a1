"""StereoSet speed: intrasentence on zoo:smollm2-135m (examples/s, 3 candidate sentences per example) and on
zoo:splade-tiny (the full dev split); intersentence on zoo:smollm2-135m.

Run: ``pytest tests/benchmarks/bench_stereoset.py -o python_files='bench_*.py' --benchmark-enable``.
Figures: BENCHMARKS.md.
"""
from __future__ import annotations

from biasboard.harness.specs import RunContext
from biasboard.tasks.stereoset.task import StereoSet

N_SMOLLM = 150


def test_stereoset_intrasentence_smollm(benchmark, smollm):
    ctx = RunContext(batch_size=32, n_bootstrap=1000, extra={"max_examples": N_SMOLLM})
    res = benchmark.pedantic(StereoSet().evaluate, args=(smollm, "intrasentence", ctx), rounds=1, iterations=1)
    assert res.metrics["ss"].n == N_SMOLLM
    benchmark.extra_info.update(examples=N_SMOLLM, examples_per_s=N_SMOLLM / benchmark.stats.stats.mean)


def test_stereoset_intersentence_smollm(benchmark, smollm):
    ctx = RunContext(batch_size=32, n_bootstrap=1000, extra={"max_examples": N_SMOLLM})
    res = benchmark.pedantic(StereoSet().evaluate, args=(smollm, "intersentence", ctx), rounds=1, iterations=1)
    assert res.metrics["ss"].n == N_SMOLLM
    benchmark.extra_info.update(examples=N_SMOLLM, examples_per_s=N_SMOLLM / benchmark.stats.stats.mean)


def test_stereoset_intrasentence_splade_full(benchmark, splade):
    res = benchmark.pedantic(StereoSet().evaluate, args=(splade, "intrasentence", RunContext(batch_size=64)),
                             rounds=1, iterations=1)
    n = res.metrics["ss"].n
    assert n == 2106
    benchmark.extra_info.update(examples=n, examples_per_s=n / benchmark.stats.stats.mean)
