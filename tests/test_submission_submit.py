"""`biasboard submit`: runs the method's cells next to none and the references (resumable), writes the report."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from biasboard.harness.cli import main
from submission_fixtures import method_source, write_submission

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "submissions" / "_template"


@pytest.fixture
def tiny_matrix(tmp_path) -> Path:
    path = tmp_path / "matrix.yaml"
    path.write_text(yaml.safe_dump({
        "name": "tiny-official", "models": ["zoo:splade-tiny"],
        "methods": ["none", {"name": "perturb", "params": {"sigma": 0.01}}],
        "tasks": ["crows_pairs:pll_unmodified"], "seeds": [0],
        "options": {"n_bootstrap": 200, "batch_size": 16, "extra": {"max_examples": 40}}}))
    return path


@pytest.mark.slow
def test_submit_runs_cells_and_writes_report_then_resumes(tiny_matrix, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["submit", str(TEMPLATE), "--matrix", str(tiny_matrix), "--out", str(out), "--no-validate", "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "3 computed, 0 from cache, 0 failed" in printed
    report = json.loads((out / "submissions" / "my_method" / "report.json").read_text())
    assert report["schema"] == "biasboard-submission/1"
    assert report["references"] == ["none", "perturb"]
    (cell,) = report["cells"]
    assert (cell["model"], cell["task"], cell["variant"]) == ("zoo:splade-tiny", "crows_pairs", "pll_unmodified")
    assert set(cell["methods"]) == {"my_method", "none", "perturb"}
    score = cell["methods"]["my_method"]["metrics"]["stereotype_score"]
    assert score["n"] == 40 and len(score["ci95"]) == 2
    change = next(c for c in cell["vs_none"] if c["metric"] == "stereotype_score")
    mine, none = score["value"], cell["methods"]["none"]["metrics"]["stereotype_score"]["value"]
    assert change["change"] == pytest.approx(mine - none) and change["n_paired"] == 40
    assert change["ci95"][0] <= change["change"] <= change["ci95"][1]
    # the verdict must follow from the findings (the template's direction removal may or may not move 40 pairs)
    regressions = [f for f in report["gate"]["findings"] if f["status"] == "regression"]
    assert report["gate"]["verdict"] == ("FAIL (regression)" if regressions else "PASS"), report["gate"]
    assert any(f["metric"] == "stereotype_score" for f in report["gate"]["findings"])
    md = (out / "submissions" / "my_method" / "report.md").read_text()
    assert "## Submission: `my_method` 0.1" in md and "| **my_method** |" in md and "| none |" in md
    assert "Paired change vs `none`" in md and "Regression gate" in md

    assert main(args) == 0  # resumable: everything now comes from the store
    assert "0 computed, 3 from cache, 0 failed" in capsys.readouterr().out


def test_submit_refuses_a_submission_that_fails_validation(tiny_matrix, tmp_path, capsys):
    folder = write_submission(tmp_path, "bad_hook", method_source("bad_hook", "", signature="self, model"))
    code = main(["submit", str(folder), "--matrix", str(tiny_matrix), "--out", str(tmp_path / "out")])
    assert code == 1
    err = capsys.readouterr().err
    assert "FAIL  hooks" in err and "did not validate" in err
    assert not (tmp_path / "out" / "submissions").exists()


def test_submit_usage_errors_exit_2(tmp_path, capsys):
    assert main(["submit", str(tmp_path / "nope")]) == 2
    folder = tmp_path / "nomanifest"
    folder.mkdir()
    assert main(["submit", str(folder)]) == 2
    assert "missing manifest.yaml" in capsys.readouterr().err


def test_official_matrix_plans_cells_for_every_kind_of_method():
    from biasboard.harness.commands.submission import official_matrix
    from biasboard.harness.matrix import Matrix, MethodSpec, plan

    matrix = Matrix.load(official_matrix())
    assert [m.name for m in matrix.methods][0] == "none"
    for method in ("perturb", "scrub", "vision_group_dro"):  # weights, data (text), loss (vision)
        cells, _ = plan(Matrix(name="o", models=matrix.models, methods=(MethodSpec(method),), tasks=matrix.tasks,
                               seeds=matrix.seeds, options=matrix.options))
        assert cells, method
