"""Speed of task evaluation and of the matrix executors on the offline models.

Run: ``pytest tests/benchmarks/bench_scaleout.py -o python_files='bench_*.py' --benchmark-enable -s`` (add ``-k local`` or ``-k ray``).
Throughput figures (examples/s, tokens/s) land in each benchmark's ``extra_info`` (``--benchmark-json=FILE``).
Figures and machine conditions in BENCHMARKS.md.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ray_cluster import local_cluster  # noqa: E402  (first: loopback-only environment before Ray loads)
from biasboard.harness.matrix import Matrix, plan  # noqa: E402
from biasboard.harness.models import scoring  # noqa: E402
from biasboard.harness.runner import run_local  # noqa: E402
from biasboard.harness.specs import RunContext  # noqa: E402
from biasboard.harness.store import Store  # noqa: E402
from biasboard.tasks.crows_pairs import DATA, CrowsPairs, load_pairs  # noqa: E402

pytestmark = pytest.mark.slow
N_PAIRS = int(os.environ.get("BENCH_PAIRS", "64"))
CELL_PAIRS = 8


@pytest.mark.parametrize("model,variant", [("zoo:splade-tiny", "pll_unmodified"), ("zoo:splade-tiny", "ll_modified"),
                                           ("zoo:smollm2-135m", "causal_sum")])
def test_bench_crows_throughput(benchmark, model, variant, request):
    """One CrowS-Pairs evaluation on the first N_PAIRS pairs (model loaded outside the timing)."""
    from biasboard.harness.data import find
    from biasboard.harness.models import load_handle

    handle = load_handle(model)
    pairs = load_pairs(find(DATA, task="crows_pairs"))[:N_PAIRS]
    ctx = RunContext(seed=0, batch_size=32, n_bootstrap=1000, extra={"max_examples": N_PAIRS})
    result = benchmark.pedantic(lambda: CrowsPairs().evaluate(handle, variant, ctx), rounds=3, iterations=1)
    sentences = [s for p in pairs for s in (p.sent_more, p.sent_less)]
    tokens = sum(len(t) for t in scoring.tokenize(handle, sentences))
    seconds = benchmark.stats.stats.median
    benchmark.extra_info.update({"pairs": len(pairs), "tokens": tokens, "pairs_per_s": len(pairs) / seconds,
                                 "tokens_per_s": tokens / seconds})
    assert result.metrics["stereotype_score"].n == len(result.examples) <= len(pairs)


def _cells(n: int):
    """n cells of splade-tiny x CrowS-Pairs (PLL) on CELL_PAIRS pairs: one method, n seeds."""
    matrix = Matrix.from_dict({"name": f"bench{n}", "models": ["zoo:splade-tiny"], "methods": ["none"],
                               "tasks": ["crows_pairs:pll_unmodified"], "seeds": list(range(n)),
                               "options": {"extra": {"max_examples": CELL_PAIRS}}})
    cells, _ = plan(matrix)
    assert len(cells) == n
    return cells


@pytest.fixture(scope="module")
def ray_cluster():
    yield from local_cluster(pytest.importorskip("ray", reason="Ray is an optional extra"))


@pytest.mark.parametrize("n", [1, 4, 16])
def test_bench_matrix_local(benchmark, n, tmp_path):
    cells = _cells(n)
    stores = iter(range(10))

    def once():
        store = Store(tmp_path / f"s{next(stores)}.sqlite")
        return run_local(cells, store, progress=False, extra={"max_examples": CELL_PAIRS}, n_bootstrap=1000)

    summary = benchmark.pedantic(once, rounds=1, iterations=1)
    assert len(summary.done) == n


@pytest.mark.parametrize("n", [1, 4, 16])
def test_bench_matrix_ray(benchmark, n, tmp_path, ray_cluster):
    """Includes starting the workers (each imports torch and loads the model), not starting the cluster."""
    import biasboard.harness.executors.ray as ray_executor

    cells = _cells(n)
    stores = iter(range(10))

    def once():
        store = Store(tmp_path / f"s{next(stores)}.sqlite")
        return ray_executor.run(cells, store, progress=False, extra={"max_examples": CELL_PAIRS}, n_bootstrap=1000)

    summary = benchmark.pedantic(once, rounds=1, iterations=1)
    assert len(summary.done) == n
