"""The gate never cries wolf (issue 19): other data is "not comparable", each change shows its own interval,
paired tests for statistics that are not means, Holm across the report, safe baseline writing, strict baselines."""
from __future__ import annotations

import copy
import json
import subprocess

import numpy as np
import pytest
from leaderboard_fixtures import crows_examples, crows_record, seat_record, write_store
from test_regress_cli import cli  # the same argparse wiring as the CLI

from biasboard.harness.errors import DataError
from biasboard.harness.regress import compare, make_baseline, parse_baseline
from biasboard.harness.regress_report import render_markdown, render_text
from biasboard.harness.stats import holm


def gate(base_records, base_examples, cur_records, cur_examples, **kw):
    doc = make_baseline(base_records, lambda k: base_examples.get(k, []), **kw)
    return compare(parse_baseline(doc), cur_records, lambda k: cur_examples.get(k, []))


def crows_with_subscores(model, method, rows, **kw):
    """A CrowS cell with the stereo/antistereo sub-scores (means over a declared subset of the rows)."""
    rec = crows_record(model, method, rows, **kw)
    for name in ("stereo", "antistereo"):
        sel = [r["more_is_higher"] for r in rows if r["direction"] == name and r.get("tie", 0) == 0]
        rec["metrics"][f"{name}_score"] = {
            "value": 100 * float(np.mean(sel)), "n": len(sel), "ideal": 50.0, "direction": "target", "unit": "%",
            "per_example": {"field": "more_is_higher", "scale": 100.0, "where": {"direction": name, "tie": 0}}}
    return rec


def rows_with_directions(n, seed):
    rows = crows_examples(n, 0.6, seed=seed)
    for i, r in enumerate(rows):
        r["direction"], r["tie"] = ("antistereo" if i % 7 == 0 else "stereo"), 0
    return rows


# --- false FAIL: eval_sample 200 vs the full data -------------------------------------------------------------
def test_sampled_run_is_not_comparable_not_a_regression():
    full = rows_with_directions(600, seed=11)
    base = crows_with_subscores("zoo:splade-tiny", "none", full)
    sampled = [full[i] for i in sorted(np.random.default_rng(0).choice(600, 200, replace=False))]
    sampled = copy.deepcopy(sampled)
    for r in sampled[:25]:  # the sample also happens to look more stereotyped
        r["more_is_higher"] = 1
    cur = crows_with_subscores("zoo:splade-tiny", "none", sampled)
    cur["key"] = "sampled-key"
    cur["flags"] = {"eval_sample": "200 of 600 pairs"}
    report = gate([base], {base["key"]: full}, [cur], {"sampled-key": sampled})
    assert not report.of("regression") and not report.of("improvement")
    assert {f.metric for f in report.of("not_comparable")} == {"stereotype_score", "stereo_score",
                                                               "antistereo_score"}
    assert all("evaluated on a different sample (all data -> 200 of 600 pairs)" in f.reason
               for f in report.of("not_comparable"))
    assert report.exit_code == 3
    text = render_text(report)
    assert text.startswith("biasboard regress NOT COMPARABLE") and "3 not comparable" in text
    report.allow_not_comparable = True
    assert report.exit_code == 0


def test_other_data_digest_and_other_examples_are_not_comparable():
    rows = rows_with_directions(200, seed=4)
    base = crows_record("m", "none", rows)
    cur = copy.deepcopy(base)
    cur["provenance"]["data_sha256"] = "e" * 64
    [f] = gate([base], {base["key"]: rows}, [cur], {base["key"]: rows}).findings
    assert f.status == "not_comparable" and "data digest differs" in f.reason
    other = copy.deepcopy(rows)
    other[0]["id"] = "crows-new"  # same n, one example swapped for another
    cur = crows_record("m", "none", other)
    [f] = gate([base], {base["key"]: rows}, [cur], {base["key"]: other}).findings
    assert f.status == "not_comparable" and "1 only in the baseline, 1 only now" in f.reason


# --- each change with the interval that belongs to it ---------------------------------------------------------
def test_unpaired_change_never_shows_an_interval_and_paired_shows_its_own():
    rows = rows_with_directions(400, seed=2)
    crows = crows_record("m", "none", rows)
    seat = seat_record("m", "none", 0.30)
    worse = copy.deepcopy(rows)
    for r in [r for r in worse if r["more_is_higher"] == 0][:40]:
        r["more_is_higher"] = 1
    crows2 = crows_record("m", "none", worse)
    seat2 = copy.deepcopy(seat)
    seat2["metrics"]["mean_abs_effect_size"]["value"] = 0.40
    report = gate([crows, seat], {crows["key"]: rows}, [crows2, seat2], {crows["key"]: worse})
    text, md = render_text(report), render_markdown(report)
    by = {f.metric: f for f in report.findings}
    assert by["stereotype_score"].test == "paired_bootstrap" and by["mean_abs_effect_size"].ci95 is None
    assert "mean_abs_effect_size: 0.3 -> 0.4 (lower is better); change in distance +0.1 (no interval)" in text
    assert "unpaired: tolerance only" in text and "[0, 0]" not in text + md
    lo, hi = by["stereotype_score"].ci95
    assert f"change in distance +10 [95% CI {lo:.4g}, {hi:.4g}]" in text


# --- paired bootstrap for a statistic that is not a mean (StereoSet ICAT) -------------------------------------
def stereoset_rows(n, p_pro, seed):
    rng = np.random.default_rng(seed)
    return [{"id": f"ss-{i}", "target": f"t{i % 40}", "pro": bool(rng.random() < p_pro),
             "related": int(rng.choice([0, 1, 2], p=[0.05, 0.15, 0.8]))} for i in range(n)]


def icat_record(rows, key="icat-cell"):
    from biasboard.tasks.stereoset import metrics as mss

    spec = f"{mss.__name__}:weighted_scores(target,pro,related)"
    point = mss.stereoset_scores([r["target"] for r in rows], np.array([r["pro"] for r in rows]),
                                 np.array([r["related"] for r in rows]))
    rec = seat_record("m", "none", 0.3)  # any record shape; replace task and metrics
    rec.update(key=key, task="stereoset", variant="intrasentence", metrics={
        name: {"value": point[name], "n": len(rows), "ideal": ideal, "direction": direction,
               "per_example": {"recompute": f"{spec}[{name}]"}}
        for name, ideal, direction in (("ss", 50.0, "target"), ("icat", 100.0, "max"))})
    return rec


def test_icat_gets_a_paired_bootstrap_over_its_examples():
    rows = stereoset_rows(300, 0.55, seed=1)
    base = icat_record(rows)
    same = gate([base], {base["key"]: rows}, [copy.deepcopy(base)], {base["key"]: rows})
    assert all(f.test == "paired_bootstrap" and f.status == "unchanged" and f.change == 0 for f in same.findings)
    worse = copy.deepcopy(rows)
    for r in [r for r in worse if not r["pro"]][:60]:  # 60 clusters turn stereotyped: SS up, ICAT down
        r["pro"] = True
    report = gate([base], {base["key"]: rows}, [icat_record(worse)], {base["key"]: worse})
    by = {f.metric: f for f in report.findings}
    assert by["icat"].status == "regression" and by["icat"].test == "paired_bootstrap"
    assert by["icat"].ci95[0] > 0 and by["icat"].n_paired == 300 and by["icat"].p_holm < 0.05
    assert by["icat"].change == pytest.approx(by["icat"].baseline - by["icat"].current)  # max metric, below 100


def test_seat_effect_size_says_unpaired_tolerance_only():
    seat = seat_record("m", "none", 0.30)
    [f] = gate([seat], {}, [copy.deepcopy(seat)], {}).findings
    assert f.test == "tolerance_only" and f.reason.startswith("unpaired: tolerance only")


def test_records_without_a_declaration_are_not_guessed():
    rows = rows_with_directions(100, seed=3)
    rec = crows_record("m", "none", rows)
    old = copy.deepcopy(rec)
    del old["metrics"]["stereotype_score"]["per_example"]  # a result written before metrics declared a column
    [f] = gate([rec], {rec["key"]: rows}, [old], {rec["key"]: rows}).findings
    assert f.test == "tolerance_only" and "declares no per-example column" in f.reason


# --- Holm across every metric and cell compared ---------------------------------------------------------------
def _nudged(rows, k):
    out = copy.deepcopy(rows)
    for r in [r for r in out if r["more_is_higher"] == 0][:k]:
        r["more_is_higher"] = 1
    return out


def test_holm_correction_across_cells_is_applied_and_stated():
    base_recs, base_ex, cur_recs, cur_ex = [], {}, [], {}
    for i in range(10):
        rows = crows_examples(600, 0.6, seed=100 + i)
        rec = crows_record(f"model-{i}", "none", rows)
        rows2 = _nudged(rows, 7) if i == 0 else rows  # one cell moves 7/600 = 1.17 points; the rest do not
        cur = crows_record(f"model-{i}", "none", rows2)
        base_recs.append(rec)
        base_ex[rec["key"]] = rows
        cur_recs.append(cur)
        cur_ex[cur["key"]] = rows2
    kw = dict(tolerances={"stereotype_score": 0.5})
    alone = gate(base_recs[:1], base_ex, cur_recs[:1], cur_ex, **kw)
    [f] = alone.findings
    assert f.status == "regression" and f.p_value < 0.05 and f.p_holm == f.p_value  # one test: nothing to correct
    report = gate(base_recs, base_ex, cur_recs, cur_ex, **kw)
    assert report.n_tests == 10
    moved = next(f for f in report.findings if f.cell.startswith("crows_pairs:pll_unmodified · model-0 "))
    ps = [f.p_value for f in report.findings]
    assert [f.p_holm for f in report.findings] == pytest.approx(list(holm(ps)))
    assert moved.p_value < 0.05 < moved.p_holm and moved.status == "unchanged" and "Holm-adjusted" in moved.reason
    assert "Holm-corrected across the 10 paired comparison(s)" in render_text(report)
    assert report.exit_code == 0


# --- writing and reading baselines ----------------------------------------------------------------------------
@pytest.fixture
def store(tmp_path):
    rows = crows_examples(100, 0.6, seed=7)
    rec = crows_record("zoo:splade-tiny", "none", rows)
    path = tmp_path / "s.sqlite"
    write_store(path, [rec], {rec["key"]: rows})
    return path


def test_baseline_update_requires_out_and_refuses_a_tracked_file(store, tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli("baseline", "update", "--store", store)  # --out is required
    assert "--out" in capsys.readouterr().err
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    tracked = repo / "baseline.json"
    tracked.write_text("reviewed\n")
    subprocess.run(["git", "-C", str(repo), "add", "baseline.json"], check=True)
    assert cli("baseline", "update", "--store", store, "--out", tracked) == 2
    err = capsys.readouterr().err
    assert "tracked by git; refusing to overwrite it without --force" in err and len(err.strip().splitlines()) == 1
    assert tracked.read_text() == "reviewed\n"
    assert cli("baseline", "update", "--store", store, "--out", repo / "new.json") == 0  # untracked: written
    assert cli("baseline", "update", "--store", store, "--out", tracked, "--force") == 0
    assert json.loads(tracked.read_text())["schema"] == "biasboard-baseline/1"


def test_help_says_where_baseline_update_writes(capsys):
    with pytest.raises(SystemExit):
        cli("baseline", "update", "--help")
    out = " ".join(capsys.readouterr().out.split())
    assert "Writes the file named by --out" in out and "--force" in out


def test_baseline_value_that_disagrees_with_its_own_examples_is_an_error(store, tmp_path, capsys):
    out = tmp_path / "b.json"
    assert cli("baseline", "update", "--store", store, "--out", out) == 0
    doc = json.loads(out.read_text())
    doc["cells"][0]["metrics"]["stereotype_score"]["value"] += 5.0  # hand-edited
    out.write_text(json.dumps(doc))
    assert cli("regress", "--baseline", out, "--store", store) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "row cells[0], field 'metrics.stereotype_score.value'" in err
    assert "crows_pairs:pll_unmodified · zoo:splade-tiny · none · seed 0" in err
    assert "disagrees with the value its own per-example scores give" in err
    with pytest.raises(DataError, match="n is 7 but"):
        doc["cells"][0]["metrics"]["stereotype_score"].update(value=doc["cells"][0]["metrics"]["stereotype_score"]
                                                              ["value"] - 5.0, n=7)
        parse_baseline(doc)


def test_huge_n_resamples_is_refused_in_one_line(store, tmp_path, capsys):
    out = tmp_path / "b.json"
    assert cli("baseline", "update", "--store", store, "--out", out) == 0
    doc = json.loads(out.read_text())
    doc["n_resamples"] = 1_000_000_000
    out.write_text(json.dumps(doc))
    assert cli("regress", "--baseline", out, "--store", store) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "field 'n_resamples': expected an integer from 100 to 20,000" in err


def test_regress_help_documents_exit_code_3(capsys):
    with pytest.raises(SystemExit):
        cli("regress", "--help")
    out = " ".join(capsys.readouterr().out.split())
    assert "3 no regression, but some cells are not comparable" in out and "--allow-not-comparable" in out


def test_submission_report_pairs_on_the_declared_column_only():
    from biasboard.harness.submission_report import paired_change

    rows = crows_examples(200, 0.6, seed=9)
    ref = crows_record("m", "none", rows)
    moved = _nudged(rows, 20)
    sub = crows_record("m", "perturb", moved)
    examples = {ref["key"]: rows, sub["key"]: moved}.get
    change = paired_change(sub, ref, "stereotype_score", examples)
    assert change["field"] == "more_is_higher" and change["change"] == pytest.approx(10.0)
    del sub["metrics"]["stereotype_score"]["per_example"]  # undeclared: no guessing, no paired change
    assert paired_change(sub, ref, "stereotype_score", examples) is None
