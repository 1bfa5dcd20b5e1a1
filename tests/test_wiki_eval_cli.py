"""End to end through the CLI: ``biasboard eval`` on a fine-tuning task with a data intervention prints the result
contract with the synthetic-data flag; a missing real corpus is a one-line error with exit code 2."""
from __future__ import annotations

import json

import pytest

from biasboard.harness.cli import main


@pytest.mark.slow
def test_eval_wiki_with_resample_prints_flagged_result(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["eval", "--model", "zoo:splade-tiny", "--task", "wiki_toxicity:nonfuzzed", "--method", "resample",
                 "--max-examples", "40", "--n-bootstrap", "50", "--json", "--no-cache"])
    assert code == 0
    out = capsys.readouterr().out
    rec = json.loads(out[out.index("{"):])
    assert rec["task"] == "wiki_toxicity" and rec["method"] == "resample"
    assert rec["flags"]["synthetic_data"] is True and rec["flags"]["eval_subsample"] == 40
    fped = rec["metrics"]["fped"]
    assert list(rec["metrics"])[0] == "fped" and fped["n"] > 0 and len(fped["ci95"]) == 2
    assert "accuracy" in rec["metrics"] and "train_identity_toxicity_gap" in rec["metrics"]


def test_missing_real_bios_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BIASBOARD_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    code = main(["eval", "--model", "zoo:splade-tiny", "--task", "bios:real", "--no-cache"])
    err = capsys.readouterr().err
    assert code == 2 and "'bios' not found" in err and "Traceback" not in err
