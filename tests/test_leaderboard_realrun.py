"""End to end on a real model: `biasboard run` -> site pages -> `baseline update` -> `regress` (paired, real rows)."""
from __future__ import annotations

import json

import pytest

from biasboard.harness.cli import main
from biasboard.leaderboard.release import safe_name

pytestmark = pytest.mark.slow

MATRIX = """
name: lb-smoke
models: [zoo:splade-tiny]
methods: [none, {name: perturb, params: {sigma: 0.05}}]
tasks: [crows_pairs:pll_unmodified]
seeds: [0]
options: {n_bootstrap: 200, extra: {max_examples: 40}}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("realrun")
    (tmp / "m.yaml").write_text(MATRIX)
    assert main(["run", str(tmp / "m.yaml"), "--out", str(tmp / "out"), "--quiet"]) == 0
    return tmp


def test_run_builds_the_site_from_real_cells(run):
    site = run / "out" / "site"
    release = json.loads((site / "release.json").read_text())
    assert [c["method_label"] for c in release["cells"]] == ["none", "perturb(sigma=0.05)"]
    for cell in release["cells"]:
        m = cell["metrics"]["stereotype_score"]
        assert m["n"] == 40 and m["ci95"][0] <= m["value"] <= m["ci95"][1]
        assert m["distance"] == pytest.approx(abs(m["value"] - 50.0), abs=1e-6)
        assert len(cell["groups"]) >= 2
        page = (site / "cells" / f"{safe_name(cell['key'])}.html").read_text()
        assert cell["provenance"]["weights_sha256"] in page and "Showing 40 of 40 rows" in page
    assert (site / "tasks" / "crows_pairs.html").is_file() and (site / "methods" / "perturb.html").is_file()
    assert (site / "models" / f"{safe_name('zoo:splade-tiny')}.html").is_file()


def test_gate_on_real_rows_uses_the_paired_test(run, capsys):
    store, baseline = run / "out" / "results.sqlite", run / "baseline.json"
    assert main(["baseline", "update", "--store", str(store), "--out", str(baseline)]) == 0
    doc = json.loads(baseline.read_text())
    per = [c["metrics"]["stereotype_score"]["per_example"] for c in doc["cells"]]
    assert all(p["field"] == "more_is_higher" and len(p["values"]) == 40 for p in per)
    capsys.readouterr()
    assert main(["regress", "--baseline", str(baseline), "--store", str(store), "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("### :white_check_mark: biasboard regress PASS") and "paired bootstrap, n=40" in md
