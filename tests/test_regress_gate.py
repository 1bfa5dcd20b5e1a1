"""The regression gate on planted regressions, planted improvements, noise within tolerance, and edge cases."""
from __future__ import annotations

import copy

import numpy as np
import pytest
from leaderboard_fixtures import crows_examples, crows_record, seat_record, stereoset_record

from biasboard.harness.errors import DataError
from biasboard.harness.regress import (PerExample, compare, identity, make_baseline, parse_baseline, per_example_scores)


def flip(rows, n, to):
    """Copy of rows with the first n rows whose more_is_higher != to set to ``to`` (same ids: pairs stay paired)."""
    out, done = copy.deepcopy(rows), 0
    for r in out:
        if done < n and r["more_is_higher"] != to:
            r["more_is_higher"] = to
            r["sent_more_score"], r["sent_less_score"] = r["sent_less_score"], r["sent_more_score"]
            done += 1
    return out


def board(p_more=0.6, n=600):
    ex = crows_examples(n, p_more, seed=3)
    rec = crows_record("zoo:splade-tiny", "none", ex)
    ss = stereoset_record("zoo:splade-tiny", "none", 58.0, 83.0)
    return [rec, ss], {rec["key"]: ex, ss["key"]: []}


def gate(base_records, base_examples, cur_records, cur_examples, **kw):
    doc = make_baseline(base_records, lambda k: base_examples.get(k, []), **kw)
    return compare(parse_baseline(doc), cur_records, lambda k: cur_examples.get(k, []))


def with_examples(records, examples, key_of, rows):
    """Replace one cell's rows and recompute its metrics from them (as the task would)."""
    rec = next(r for r in records if r["key"] == key_of)
    new = crows_record(rec["model"], rec["method"], rows)
    new["key"] = key_of
    out = [new if r["key"] == key_of else r for r in records]
    return out, {**examples, key_of: rows}


def test_identical_results_pass_with_paired_test():
    records, examples = board()
    report = gate(records, examples, records, examples)
    crows = [f for f in report.findings if f.metric == "stereotype_score"][0]
    assert crows.status == "unchanged" and crows.test == "paired_bootstrap" and crows.change == 0
    assert report.exit_code == 0


def test_planted_regression_is_caught_and_significant():
    records, examples = board()
    key = records[0]["key"]
    rows = flip(examples[key], 60, 1)  # 60 of 600 pairs turn stereotyped: +10 points farther from 50
    cur, cur_ex = with_examples(records, examples, key, rows)
    report = gate(records, examples, cur, cur_ex)
    [f] = report.of("regression")
    assert f.metric == "stereotype_score" and f.test == "paired_bootstrap"
    assert f.change == pytest.approx(10.0, abs=1e-6)  # |p+10 - 50| - |p - 50| with p > 50
    assert f.ci95[0] > 0 and f.n_paired == 600
    assert report.exit_code == 1


def test_planted_improvement_is_reported_not_failed():
    records, examples = board()
    key = records[0]["key"]
    rows = flip(examples[key], 45, 0)  # 45 of 600 pairs flip toward the anti-stereotype: 7.5 points closer
    cur, cur_ex = with_examples(records, examples, key, rows)
    report = gate(records, examples, cur, cur_ex)
    [f] = report.of("improvement")
    assert f.change == pytest.approx(-7.5, abs=1e-6) and f.ci95[1] < 0
    assert report.exit_code == 0


def test_noise_within_tolerance_passes():
    records, examples = board()
    key = records[0]["key"]
    rows = flip(examples[key], 3, 1)  # 3 of 600: +0.5 points, under the 1-point default tolerance
    cur, cur_ex = with_examples(records, examples, key, rows)
    report = gate(records, examples, cur, cur_ex)
    f = [x for x in report.findings if x.metric == "stereotype_score"][0]
    assert f.status == "unchanged" and f.change == pytest.approx(0.5) and "within tolerance" in f.reason
    assert report.exit_code == 0


def test_move_beyond_tolerance_but_not_significant_passes():
    # 40 pairs: flipping 2 moves the score 5 points, but a paired bootstrap over 40 pairs cannot exclude 0
    ex = crows_examples(40, 0.6, seed=5)
    rec = crows_record("m", "none", ex)
    cur, cur_ex = with_examples([rec], {rec["key"]: ex}, rec["key"], flip(ex, 2, 1))
    report = gate([rec], {rec["key"]: ex}, cur, cur_ex)
    [f] = report.findings
    assert f.change == pytest.approx(5.0) and f.change > f.tolerance
    assert f.status == "unchanged" and f.ci95[0] <= 0 and "not significant" in f.reason
    assert report.exit_code == 0


def test_crossing_the_ideal_is_not_farther():
    # hand-worked: target ideal 50, 45 -> 55 is |55-50| - |45-50| = 0 farther: unchanged even with tolerance 0
    rec = stereoset_record("m", "none", 45.0, 80.0)
    cur = copy.deepcopy(rec)
    cur["metrics"]["ss"]["value"] = 55.0
    report = gate([rec], {}, [cur], {}, metrics=["ss"], tolerances={"ss": 0.0})
    [f] = report.findings
    assert f.change == 0 and f.status == "unchanged"


@pytest.mark.parametrize("metric,base,now,tol,change,status", [
    ("lms", 80.0, 78.5, 1.0, 1.5, "regression"),      # max: (-78.5) - (-80) = +1.5 > 1
    ("lms", 80.0, 79.5, 1.0, 0.5, "unchanged"),       # max: +0.5 <= 1
    ("lms", 80.0, 82.0, 1.0, -2.0, "improvement"),    # max: -2 < -1
    ("ss", 58.0, 60.0, 1.0, 2.0, "regression"),       # target 50: |60-50| - |58-50| = 2
    ("ss", 58.0, 41.0, 1.0, 1.0, "unchanged"),        # target 50: |41-50| - |58-50| = 1, not > 1
])
def test_tolerance_only_hand_worked(metric, base, now, tol, change, status):
    rec = stereoset_record("m", "none", 58.0, 80.0)
    rec["metrics"][metric]["value"] = base
    cur = copy.deepcopy(rec)
    cur["metrics"][metric]["value"] = now
    report = gate([rec], {}, [cur], {}, metrics=[metric], tolerances={metric: tol})
    [f] = report.findings
    assert f.test == "tolerance_only" and "no per-example scores" in f.reason
    assert f.change == pytest.approx(change) and f.status == status


def test_min_metric_direction():
    # SEAT mean |effect size|, ideal 0, lower is better: 0.30 -> 0.40 is 0.10 worse (> 0.05 default tolerance)
    rec = seat_record("m", "none", 0.30)
    cur = copy.deepcopy(rec)
    cur["metrics"]["mean_abs_effect_size"]["value"] = 0.40
    [f] = gate([rec], {}, [cur], {}).findings
    assert f.status == "regression" and f.change == pytest.approx(0.10) and f.tolerance == 0.05


def test_missing_cell_and_metric_exit_2_and_new_cells_reported():
    records, examples = board()
    doc = make_baseline(records, lambda k: examples.get(k, []))
    cur = [copy.deepcopy(records[1])]
    del cur[0]["metrics"]["lms"]
    newcomer = seat_record("zoo:minilm-l6", "none", 0.2)
    report = compare(parse_baseline(doc), cur + [newcomer], lambda k: [])
    assert [f.cell for f in report.of("missing_cell")] == [doc_label(doc["cells"][0])]
    assert [f.metric for f in report.of("missing_metric")] == ["lms"]
    assert len(report.of("new_cell")) == 1 and "minilm" in report.of("new_cell")[0].cell
    assert report.exit_code == 2
    report.allow_missing = True
    assert report.exit_code == 0


def doc_label(cell):
    from biasboard.harness.regress import cell_label

    return cell_label(cell)


def test_regression_outranks_missing_in_exit_code():
    records, examples = board()
    doc = make_baseline(records, lambda k: examples.get(k, []))
    cur = copy.deepcopy(records[1])
    cur["metrics"]["ss"]["value"] = 70.0
    report = compare(parse_baseline(doc), [cur], lambda k: [])
    assert report.of("missing_cell") and report.of("regression") and report.exit_code == 1


def test_latest_record_of_a_cell_wins_and_key_change_is_noted():
    rec = stereoset_record("m", "none", 58.0, 80.0)
    old, new = copy.deepcopy(rec), copy.deepcopy(rec)
    new["key"] = "another-key"
    new["metrics"]["ss"]["value"] = 65.0
    report = gate([rec], {}, [old, new], {}, metrics=["ss"])
    [f] = report.findings
    assert f.current == 65.0 and f.status == "regression" and "cell key changed" in f.reason


def test_current_rows_that_do_not_reproduce_the_metric_fall_back_to_tolerance():
    records, examples = board()
    key = records[0]["key"]
    cur = copy.deepcopy(records)
    cur[0]["metrics"]["stereotype_score"]["value"] += 3.0  # value no longer the mean of the stored rows
    report = gate(records, examples, cur, examples)
    f = [x for x in report.findings if x.metric == "stereotype_score"][0]
    assert f.test == "tolerance_only" and "does not reproduce" in f.reason and f.status == "regression"


def test_per_example_column_is_declared_never_guessed():
    rows = crows_examples(50, 0.6, seed=1)
    metric = crows_record("m", "none", rows)["metrics"]["stereotype_score"]
    per = per_example_scores(metric, rows)
    assert isinstance(per, PerExample) and per.field == "more_is_higher" and per.scale == 100.0
    assert per.scale * np.mean(list(per.values.values())) == pytest.approx(metric["value"])
    undeclared = {k: v for k, v in metric.items() if k != "per_example"}  # a record from before declarations
    assert per_example_scores(undeclared, rows) is None  # its mean matches more_is_higher, but nothing is guessed
    with pytest.raises(DataError, match="n is 49"):
        per_example_scores({**metric, "n": 49}, rows)  # n must match the rows behind it


def test_paired_hand_worked_extreme():
    # 20 pairs: baseline 10 stereotyped (50%, at the ideal), now all 20 (100%): change = |100-50| - |50-50| = 50.
    base_rows = [{"id": f"p{i}", "more_is_higher": int(i < 10)} for i in range(20)]
    now_rows = [{"id": f"p{i}", "more_is_higher": 1} for i in range(20)]
    metric = {"value": 50.0, "n": 20, "ideal": 50.0, "direction": "target", "unit": "%",
              "per_example": {"field": "more_is_higher", "scale": 100.0}}
    rec = {"key": "k", "model": "m", "method": "none", "task": "crows_pairs", "variant": "v", "seed": 0,
           "metrics": {"stereotype_score": metric}}
    cur = copy.deepcopy(rec)
    cur["metrics"]["stereotype_score"]["value"] = 100.0
    [f] = gate([rec], {"k": base_rows}, [cur], {"k": now_rows}).findings
    assert f.test == "paired_bootstrap" and f.change == pytest.approx(50.0)
    assert 0 < f.ci95[0] <= 50.0 <= f.ci95[1] + 1e-9 and f.status == "regression"


def test_identity_ignores_key_but_not_params():
    a = {"model": "m", "method": "bias_vector", "method_params": {"lam": 1}, "task": "t", "variant": "v", "seed": 0}
    assert identity({**a, "key": "x"}) == identity({**a, "key": "y"})
    assert identity(a) != identity({**a, "method_params": {"lam": 10}})


def test_failed_cell_is_missing_with_its_error():
    rec = stereoset_record("m", "none", 58.0, 80.0)
    failed = {k: rec[k] for k in ("key", "model", "method", "method_params", "task", "variant", "seed")}
    failed.update(status="failed", error="RuntimeError: out of memory\nTraceback ...")
    report = gate([rec], {}, [failed], {})
    [f] = report.findings
    assert f.status == "missing_cell" and f.reason == "the cell failed: RuntimeError: out of memory"
    assert report.exit_code == 2


def test_nan_current_value_is_missing_not_unchanged():
    rec = stereoset_record("m", "none", 58.0, 80.0)
    cur = copy.deepcopy(rec)
    cur["metrics"]["ss"]["value"] = float("nan")
    report = gate([rec], {}, [cur], {}, metrics=["ss"])
    [f] = report.findings
    assert f.status == "missing_metric" and "value nan" in f.reason and report.exit_code == 2


def test_different_n_is_not_comparable():
    records, examples = board(n=600)
    key = records[0]["key"]
    sliced = examples[key][:100]  # a smoke run over the first 100 pairs of the same data
    cur, cur_ex = with_examples(records, examples, key, sliced)
    report = gate(records, examples, cur, cur_ex)
    f = [x for x in report.findings if x.metric == "stereotype_score"][0]
    assert f.status == "not_comparable" and "n differs from the baseline (600 -> 100)" in f.reason
    assert f.change is None and f.ci95 is None and report.exit_code == 3


@pytest.mark.parametrize("direction,ideal", [("target", 50.0), ("max", 100.0), ("min", 0.0), ("max", None),
                                             ("min", None), ("target", None)])
def test_vectorised_distance_change_equals_the_scalar_rule(direction, ideal):
    """The paired bootstrap's per-resample changes are the scalar ``change_in_distance`` exactly, NaN included."""
    from biasboard.harness.regress import change_in_distance, changes_in_distance

    rng = np.random.default_rng(3)
    then, now = rng.normal(50, 30, 500), rng.normal(50, 30, 500)
    then[::37], now[::41] = np.nan, np.inf
    got = changes_in_distance(then, now, direction, ideal)
    want = [change_in_distance(a, b, direction, ideal) if np.isfinite(a) and np.isfinite(b) else np.nan
            for a, b in zip(then, now)]
    np.testing.assert_array_equal(got, np.array(want, dtype=float))
