"""Speed of the site builder and the regression gate on a board the size of a full CrowS-Pairs matrix.

Run: ``pytest tests/benchmarks/bench_leaderboard.py -o python_files='bench_*.py' --benchmark-enable``. Figures in BENCHMARKS.md.
"""
from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from leaderboard_fixtures import crows_examples, crows_record, seat_record, stereoset_record  # noqa: E402

from biasboard.harness.regress import compare, make_baseline, parse_baseline  # noqa: E402
from biasboard.leaderboard.site import build_site  # noqa: E402

N_PAIRS = 1508  # CrowS-Pairs size


def big_board(n_models=8, n_methods=3):
    records, examples = [], {}
    for i in range(n_models):
        for j in range(n_methods):
            model, method, params = f"model-{i}", "perturb" if j else "none", {"sigma": 0.01 * j} if j else {}
            ex = crows_examples(N_PAIRS, 0.55 + 0.01 * i, seed=100 * i + j)
            rec = crows_record(model, method, ex, params=params)
            records.append(rec)
            examples[rec["key"]] = ex
            records.append(stereoset_record(model, method, 55.0 + i, 80.0 + j, params=params))
            records.append(seat_record(model, method, 0.2 + 0.05 * i, params=params))
    return records, examples


@pytest.fixture(scope="module")
def board():
    return big_board()


def test_bench_site_build(benchmark, board, tmp_path):
    records, examples = board
    index = benchmark.pedantic(lambda: build_site(copy.deepcopy(records), examples, tmp_path / "site"),
                               rounds=3, iterations=1)
    assert index.is_file() and len(records) == 72


def test_bench_regress_compare(benchmark, board):
    records, examples = board
    baseline = parse_baseline(make_baseline(records, examples.get))
    report = benchmark.pedantic(lambda: compare(baseline, records, examples.get), rounds=3, iterations=1)
    assert report.exit_code == 0 and sum(f.test == "paired_bootstrap" for f in report.findings) == 24
