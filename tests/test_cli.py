"""The CLI: eval JSON contract, helpful errors with exit code 2, list, data fetch with sha256 checks."""
from __future__ import annotations

import hashlib
import json

import pytest

from biasboard.harness.cli import main


def run_cli(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_unknown_task_exit_2_with_suggestion(capsys, isolated_out):
    code, _, err = run_cli(capsys, "eval", "--model", "zoo:splade-tiny", "--task", "crows_pair")
    assert code == 2 and "Did you mean 'crows_pairs'" in err and "Traceback" not in err


def test_unknown_method_and_variant(capsys, isolated_out, tiny_bert_dir):
    code, _, err = run_cli(capsys, "eval", "--model", str(tiny_bert_dir), "--task", "crows_pairs", "--method", "nope")
    assert code == 2 and "unknown method 'nope'" in err and "perturb" in err
    code, _, err = run_cli(capsys, "eval", "--model", str(tiny_bert_dir), "--task", "crows_pairs:causal")
    assert code == 2 and "no variant 'causal'" in err and "causal_sum" in err


def test_unsupported_pairing_is_exit_2(capsys, isolated_out, tiny_bert_dir):
    code, _, err = run_cli(capsys, "eval", "--model", str(tiny_bert_dir), "--task", "crows_pairs:causal_sum")
    assert code == 2 and "supports clm, not mlm" in err


def test_eval_json_follows_the_contract_and_caches(capsys, isolated_out, tiny_bert_dir):
    args = ["eval", "--model", str(tiny_bert_dir), "--task", "crows_pairs:ll_modified", "--max-examples", "30",
            "--n-bootstrap", "100", "--json"]
    code, out, _ = run_cli(capsys, *args)
    assert code == 0
    res = json.loads(out)
    for key in ("model", "method", "task", "variant", "seed", "metrics", "groups", "provenance"):
        assert key in res
    score = res["metrics"]["stereotype_score"]
    assert score["n"] == 30 and score["ideal"] == 50.0 and len(score["ci95"]) == 2
    assert {"harness", "data_sha256", "weights_sha256", "seconds"} <= set(res["provenance"])
    code, out2, _ = run_cli(capsys, *args)
    assert json.loads(out2)["provenance"] == res["provenance"]  # served from the store, not recomputed


def test_list_commands(capsys):
    for what, expected in (("tasks", "crows_pairs:pll_unmodified"), ("methods", "perturb"),
                           ("models", "zoo:smollm2-135m")):
        code, out, _ = run_cli(capsys, "list", what)
        assert code == 0 and expected in out


def test_bad_matrix_names_file_and_field(capsys, tmp_path, isolated_out):
    bad = tmp_path / "m.yaml"
    bad.write_text("models: [zoo:splade-tiny]\ntasks: [crows_pairs, no_such_task]\n")
    code, _, err = run_cli(capsys, "run", str(bad))
    assert code == 2 and str(bad) in err and "row 2" in err and "'tasks'" in err and "no_such_task" in err


def test_data_fetch_checks_sha256(capsys, tmp_path, monkeypatch):
    from biasboard.harness import data

    src = tmp_path / "orig.csv"
    src.write_text("a,b\n1,2\n")
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    monkeypatch.setenv("BIASBOARD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(data.SOURCES, "toy", [data.DataSource("toy/orig.csv", src.as_uri(), digest)])
    code, out, _ = run_cli(capsys, "data", "fetch", "toy")
    assert code == 0 and "fetched  toy/orig.csv" in out
    assert (tmp_path / "cache" / "data" / "toy" / "orig.csv").read_text() == "a,b\n1,2\n"
    monkeypatch.setitem(data.SOURCES, "toy", [data.DataSource("toy/orig.csv", src.as_uri(), "0" * 64)])
    code, _, err = run_cli(capsys, "data", "fetch", "toy", "--force")
    assert code == 2 and "does not match" in err


def test_missing_data_file_says_how_to_get_it(tmp_path, monkeypatch):
    from biasboard.harness.data import find
    from biasboard.harness.errors import DataError

    monkeypatch.setenv("BIASBOARD_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match="biasboard data fetch crows_pairs"):
        find("crows_pairs/crows_pairs_anonymized.csv", task="crows_pairs")
