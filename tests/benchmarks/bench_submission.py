"""Wall time of `biasboard validate` on the template: static checks alone, and the full checklist (subprocess
start, import, two smoke runs of zoo:splade-tiny x CrowS-Pairs on 10 pairs).

Run: BIASBOARD_DATA_DIR=../shared/data pytest tests/benchmarks/bench_submission.py -o python_files='bench_*.py' \
         --benchmark-enable -s
"""
from __future__ import annotations

from pathlib import Path

from biasboard.harness.submission import load_manifest, scan_unsafe_loads, validate

TEMPLATE = Path(__file__).resolve().parents[2] / "submissions" / "_template"


def test_static_checks(benchmark):
    """Manifest schema + AST scan: what runs before any submission code."""
    result = benchmark(lambda: (load_manifest(TEMPLATE), scan_unsafe_loads(TEMPLATE)))
    assert result[1] == []


def test_validate_without_smoke(benchmark):
    checklist = benchmark.pedantic(validate, args=(TEMPLATE,), kwargs={"smoke": False}, rounds=2, iterations=1)
    assert checklist.get("hooks").ok


def test_validate_full(benchmark):
    checklist = benchmark.pedantic(validate, args=(TEMPLATE,), rounds=1, iterations=1)
    assert checklist.passed, checklist.render()
