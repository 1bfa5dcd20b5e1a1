"""``biasboard analyze transfer``: OLS against scipy's linregress and a planted linear relation, cell pairing (data
methods pair with the model's ``none`` upstream cell), and clear errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats as sps

from biasboard.harness.cli import main
from biasboard.harness.analysis.transfer import assemble, ols, transfer


def _rec(task, model, method, value, *, variant="v", seed=0, params=None, extra=None):
    metrics = {"headline": {"value": value, "n": 10}}
    metrics.update({k: {"value": v, "n": 10} for k, v in (extra or {}).items()})
    return {"model": model, "method": method, "method_params": params or {}, "task": task, "variant": variant,
            "seed": seed, "metrics": metrics}


def test_ols_matches_linregress():
    rng = np.random.default_rng(0)
    x = rng.normal(size=30)
    y = 0.5 + 2.0 * x + rng.normal(scale=0.3, size=30)
    fit = ols(y, x[:, None], ["x"])
    ref = sps.linregress(x, y)
    slope = fit["coefficients"][1]
    assert slope["coef"] == pytest.approx(ref.slope) and slope["se"] == pytest.approx(ref.stderr)
    assert slope["p_value"] == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-300)
    assert fit["coefficients"][0]["coef"] == pytest.approx(ref.intercept)
    assert fit["r2"] == pytest.approx(ref.rvalue ** 2)


def _records():
    rng = np.random.default_rng(1)
    recs = []
    for i in range(8):
        model = f"m{i}"
        for method, skew in (("none", 10.0), ("perturb", 12.0), ("scrub", 3.0)):
            up = rng.normal(0.5, 0.2) + (0.1 if method == "perturb" else 0.0)
            ds = skew + rng.normal(0, 1)
            down = 1.0 + 0.0 * up + 2.0 * ds + rng.normal(0, 0.5)
            recs.append(_rec("bios", model, method, down, variant="synthetic", extra={"train_gender_skew": ds}))
            if method != "scrub":  # a data method has no upstream cell of its own
                recs.append(_rec("seat", model, method, up, variant="mean"))
    return recs


def test_transfer_recovers_planted_relation_and_pairs_data_methods_with_none():
    rows, dropped = assemble(_records(), "bios:headline", "seat", "auto")
    assert len(rows) == 24 and dropped == []
    assert {r["dataset_bias_metric"] for r in rows} == {"train_gender_skew"}
    fit = transfer(rows)
    coef = {c["name"]: c for c in fit["coefficients"]}
    assert coef["dataset_bias"]["coef"] == pytest.approx(2.0, abs=0.15) and coef["dataset_bias"]["p_value"] < 1e-6
    assert coef["upstream"]["ci95"][0] < 0 < coef["upstream"]["ci95"][1]  # upstream bias explains nothing here


def test_cli_prints_table_and_json(tmp_path, capsys):
    f = tmp_path / "records.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in _records()))
    assert main(["analyze", "transfer", "--records", str(f), "--downstream", "bios:synthetic:headline"]) == 0
    out = capsys.readouterr().out
    assert "dataset_bias" in out and "upstream" in out and "R^2" in out
    assert main(["analyze", "transfer", "--records", str(f), "--downstream", "bios:headline", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 24


def test_cli_errors_are_clear(tmp_path, capsys):
    f = tmp_path / "records.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in _records()))
    assert main(["analyze", "transfer", "--records", str(f)]) == 2  # default downstream metric tpr_gap_rms
    assert "has no metric 'tpr_gap_rms'" in capsys.readouterr().err
    assert main(["analyze", "transfer", "--records", str(f), "--downstream", "bios:headline",
                 "--upstream", "crows_pairs"]) == 2
    assert "no finished cells of task 'crows_pairs'" in capsys.readouterr().err
    assert main(["analyze", "transfer", "--records", str(f), "--downstream", "bios:nope"]) == 2
    assert "no metric 'nope'" in capsys.readouterr().err
    assert main(["analyze", "transfer", "--records", str(tmp_path / "missing.jsonl")]) == 2
    flat = [dict(r, metrics={**r["metrics"], "headline": {"value": 0.0, "n": 10}}) if r["task"] == "bios" else r
            for r in _records()]
    f.write_text("\n".join(json.dumps(r) for r in flat))
    assert main(["analyze", "transfer", "--records", str(f), "--downstream", "bios:headline"]) == 2
    assert "in every one of the 24 cells" in capsys.readouterr().err
    recs = [r for r in _records() if r["task"] == "seat"][:2] + [r for r in _records() if r["task"] == "bios"][:2]
    f.write_text("\n".join(json.dumps(r) for r in recs))
    assert main(["analyze", "transfer", "--records", str(f), "--downstream", "bios:headline"]) == 2
    assert "need more cells" in capsys.readouterr().err
