"""`biasboard analyze effects`: each method against `none` on the same examples, Holm-adjusted, no verdict without a
paired test."""
from __future__ import annotations

import copy

from biasboard.harness.analysis.effects import method_effects
from tests.leaderboard_fixtures import crows_examples, crows_record, quick_board


def _store(records, examples):
    return (lambda key: examples.get(key, []))


def test_every_method_cell_is_paired_with_its_none_cell():
    records, examples = quick_board()
    result = method_effects(records, _store(records, examples))
    methods = {r["method"] for r in records if r["method"] != "none"}
    assert {row["method_name"] for row in result["rows"]} <= methods and result["rows"]
    for row in result["rows"]:
        assert row["difference"] == row["value"] - row["none"]
        if row["test"] == "paired_bootstrap":
            lo, hi = row["ci95"]
            assert lo <= row["distance_change"] <= hi and row["p_holm"] is not None
        else:
            assert row["ci95"] is None and row["verdict"] == "unpaired: not tested"


def test_a_planted_effect_is_found_and_no_effect_is_not():
    rows_none = crows_examples(600, 0.75, seed=1)
    # the method moves every pair to the anti-stereotypical side for a third of the pairs: a real effect
    rows_fixed = copy.deepcopy(rows_none)
    for i, r in enumerate(rows_fixed):
        if i % 3 == 0 and r["more_is_higher"]:
            r["sent_more_score"], r["sent_less_score"] = r["sent_less_score"], r["sent_more_score"]
            r["more_is_higher"] = 0
    a = crows_record("m", "none", rows_none)
    b = crows_record("m", "fix", rows_fixed)
    c = crows_record("m", "noop", copy.deepcopy(rows_none))
    examples = {a["key"]: rows_none, b["key"]: rows_fixed, c["key"]: rows_none}
    result = method_effects([a, b, c], lambda key: examples[key])
    verdict = {r["method"]: r for r in result["rows"] if r["metric"] == "stereotype_score"}
    assert verdict["fix"]["verdict"] == "closer to ideal" and verdict["fix"]["ci95"][1] < 0
    assert verdict["noop"]["verdict"] == "no significant change" and verdict["noop"]["difference"] == 0
    assert result["n_tests"] == 2


def test_a_method_cell_without_none_is_left_out_with_why():
    rows = crows_examples(50, 0.6, seed=2)
    rec = crows_record("m", "fix", rows)
    result = method_effects([rec], lambda key: rows)
    assert result["rows"] == [] and "no finished `none` cell" in result["dropped"][0]
