"""`biasboard baseline update` and `biasboard regress` end to end on real SQLite stores: exit codes and formats."""
from __future__ import annotations

import argparse
import copy
import json
import xml.etree.ElementTree as ET

import pytest
from leaderboard_fixtures import crows_examples, crows_record, stereoset_record, write_store

from biasboard.harness.commands import baseline as baseline_cmd
from biasboard.harness.commands import regress as regress_cmd


def cli(*argv):
    parser = argparse.ArgumentParser(prog="biasboard")
    sub = parser.add_subparsers(dest="cmd", required=True)
    baseline_cmd.add_parser(sub)
    regress_cmd.add_parser(sub)
    args = parser.parse_args([str(a) for a in argv])
    return args.func(args)


@pytest.fixture
def stores(tmp_path):
    """A baseline store and a current store where CrowS got 10 points more stereotyped and LMS got better."""
    ex = crows_examples(400, 0.6, seed=7)
    crows = crows_record("zoo:splade-tiny", "none", ex)
    ss = stereoset_record("zoo:splade-tiny", "none", 58.0, 83.0)
    base = tmp_path / "base.sqlite"
    write_store(base, [crows, ss], {crows["key"]: ex})
    worse = copy.deepcopy(ex)
    flipped = 0
    for r in worse:
        if flipped < 40 and r["more_is_higher"] == 0:
            r["more_is_higher"], flipped = 1, flipped + 1
    crows2 = crows_record("zoo:splade-tiny", "none", worse)
    crows2["key"] = crows["key"]
    ss2 = copy.deepcopy(ss)
    ss2["metrics"]["lms"]["value"] = 88.0
    cur = tmp_path / "cur.sqlite"
    write_store(cur, [crows2, ss2], {crows["key"]: worse})
    baseline = tmp_path / "baseline.json"
    assert cli("baseline", "update", "--store", base, "--out", baseline, "--tolerance", "ss=2") == 0
    return {"base": base, "cur": cur, "baseline": baseline, "dir": tmp_path}


def test_same_store_passes(stores, capsys):
    assert cli("regress", "--baseline", stores["baseline"], "--store", stores["base"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("biasboard regress PASS") and "0 regression(s)" in out


def test_regression_fails_with_readable_text(stores, capsys):
    assert cli("regress", "--baseline", stores["baseline"], "--store", stores["cur"]) == 1
    out = capsys.readouterr().out
    assert "FAIL (regression)" in out and "Regressions (1):" in out and "Improvements (1):" in out
    assert "stereotype_score: 58.25 -> 68.25 (ideal 50); change in distance +10 [" in out
    assert "paired bootstrap, n=400" in out and "tolerance only" in out


def test_markdown_for_pull_requests(stores, capsys):
    assert cli("regress", "--baseline", stores["baseline"], "--store", stores["cur"], "--format", "markdown") == 1
    md = capsys.readouterr().out
    assert md.startswith("### :x: biasboard regress FAIL")
    assert "#### Regressions (1)" in md and "<details><summary>Improvements (1)</summary>" in md
    row = next(line for line in md.splitlines() if line.startswith("| crows_pairs"))
    assert "stereotype_score" in row and "paired bootstrap, n=400" in row and row.count("|") - row.count("\\|") == 9


def test_junit_for_ci(stores, tmp_path, capsys):
    out = tmp_path / "regress.xml"
    assert cli("regress", "--baseline", stores["baseline"], "--store", stores["cur"], "--format", "junit",
               "--output", out) == 1
    assert "FAIL" in capsys.readouterr().err
    suite = ET.parse(out).getroot().find("testsuite")
    assert suite.get("failures") == "1" and suite.get("errors") == "0"
    assert int(suite.get("tests")) == 4  # stereotype_score + ss, lms, icat
    failed = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert len(failed) == 1 and failed[0].get("classname") == "crows_pairs:pll_unmodified"


def test_missing_cell_exits_2_unless_allowed(stores, tmp_path, capsys):
    only_ss = tmp_path / "only_ss.sqlite"
    write_store(only_ss, [stereoset_record("zoo:splade-tiny", "none", 58.0, 83.0)], {})
    assert cli("regress", "--baseline", stores["baseline"], "--store", only_ss) == 2
    assert "Missing cells (1)" in capsys.readouterr().out
    assert cli("regress", "--baseline", stores["baseline"], "--store", only_ss, "--allow-missing") == 0


@pytest.mark.parametrize("setup,message", [
    (lambda s: ["--baseline", s["dir"] / "none.json", "--store", s["base"]], "baseline file not found"),
    (lambda s: ["--baseline", s["baseline"], "--store", s["dir"] / "none.sqlite"], "does not exist"),
    (lambda s: ["--baseline", s["baseline"], "--store", _write(s["dir"] / "junk.sqlite", "not a database")],
     "is not a biasboard results store"),
    (lambda s: ["--baseline", _write(s["dir"] / "bad.json", '{"schema": "biasboard-baseline/1", "cells": [{}]}'),
                "--store", s["base"]], "row cells[0], field 'model'"),
])
def test_bad_input_is_exit_2_with_one_clear_line(stores, capsys, setup, message):
    assert cli("regress", *setup(stores)) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err + captured.out
    assert len(captured.err.strip().splitlines()) == 1


def _write(path, text):
    path.write_text(text)
    return path


def test_baseline_update_filters_and_bad_tolerance(stores, tmp_path, capsys):
    out = tmp_path / "b.json"
    assert cli("baseline", "update", "--store", stores["base"], "--out", out, "--task", "stereoset",
               "--metric", "ss") == 0
    doc = json.loads(out.read_text())
    assert [(c["task"], list(c["metrics"])) for c in doc["cells"]] == [("stereoset", ["ss"])]
    assert cli("baseline", "update", "--store", stores["base"], "--out", out, "--tolerance", "ss") == 2
    assert "expected METRIC=X" in capsys.readouterr().err
    assert cli("baseline", "update", "--store", stores["base"], "--out", out, "--model", "nobody") == 2


def test_wired_into_the_biasboard_cli(stores, capsys):
    from biasboard.harness.cli import main

    assert main(["regress", "--baseline", str(stores["baseline"]), "--store", str(stores["cur"])]) == 1
    assert "FAIL (regression)" in capsys.readouterr().out
    assert main(["regress", "--baseline", str(stores["dir"] / "none.json"), "--store", str(stores["cur"])]) == 2
    assert main(["baseline", "update", "--store", str(stores["base"]), "--out", str(stores["dir"] / "b2.json")]) == 0
    assert main(["leaderboard", "build", "--store", str(stores["cur"]), "--out", str(stores["dir"] / "site")]) == 0
    assert (stores["dir"] / "site" / "index.html").is_file()


def test_baseline_file_keeps_per_example_scores_on_one_line(stores):
    text = stores["baseline"].read_text()
    doc = json.loads(text)
    values = doc["cells"][0]["metrics"]["stereotype_score"]["per_example"]["values"]
    assert len(values) == 400 and '"crows-0":' in text
    assert sum('"crows-' in line for line in text.splitlines()) == 1  # one line, not 400
