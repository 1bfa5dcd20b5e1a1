"""`biasboard analyze effects`: each method against `none` on the same examples, Holm-adjusted, no verdict without a
paired test."""
from __future__ import annotations

import copy

from biasboard.harness.analysis.effects import method_effects
from tests.leaderboard_fixtures import crows_examples, crows_record, flip_pairs, quick_board


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
    rows_fixed = flip_pairs(rows_none, 3)
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


def test_reference_method_pairs_split_by_split_on_shared_parameters():
    """RobustDebias against TopK-AE DRO: each corpus split is paired with the same split, never another one."""
    base = crows_examples(600, 0.75, seed=3)
    moved = flip_pairs(base, 3)
    recs = {("topk_ae_dro", "3bias"): base, ("topk_ae_dro", "6bias"): base,
            ("robust_debias", "3bias"): copy.deepcopy(base), ("robust_debias", "6bias"): moved}
    records, examples = [], {}
    for (method, corpus), rows in recs.items():
        params = {"corpus": corpus, "beta": 0.1} if method == "robust_debias" else {"corpus": corpus}
        rec = crows_record("m", method, rows, params=params)
        records.append(rec)
        examples[rec["key"]] = rows
    result = method_effects(records, lambda key: examples[key], reference="topk_ae_dro")
    rows = {r["method_params"]["corpus"]: r for r in result["rows"] if r["metric"] == "stereotype_score"}
    assert set(rows) == {"3bias", "6bias"} and result["reference"] == "topk_ae_dro"
    assert rows["3bias"]["difference"] == 0 and rows["3bias"]["verdict"] == "no significant change"
    assert rows["6bias"]["verdict"] == "closer to ideal" and rows["6bias"]["n"] == 600
    only = method_effects(records, lambda key: examples[key], reference="topk_ae_dro", methods=["erm"])
    assert only["rows"] == []


def test_none_at_one_seed_is_the_reference_of_every_seed_and_says_so():
    rows = crows_examples(300, 0.7, seed=4)
    none = crows_record("m", "none", rows)
    treated = [crows_record("m", "erm", copy.deepcopy(rows), seed=s) for s in (0, 1, 2)]
    examples = {r["key"]: rows for r in [none, *treated]}
    result = method_effects([none, *treated], lambda key: examples[key])
    got = {r["seed"]: r for r in result["rows"] if r["metric"] == "stereotype_score"}
    assert set(got) == {0, 1, 2} and all(r["difference"] == 0 for r in got.values())
    assert got[0]["reference_note"] == "" and "seed 0" in got[1]["reference_note"]
    # a task that trains at evaluation (GLUE, BIOS, WIKI, vision) makes even `none` seed-dependent: no fallback
    trained = copy.deepcopy(none)
    trained["flags"] = {"finetune_key": "abc", "finetune_steps": 10}
    result = method_effects([trained, *treated], lambda key: examples[key])
    assert {r["seed"] for r in result["rows"]} == {0} and len(result["dropped"]) == 2
    # a method with randomness is never paired across seeds
    other = method_effects([treated[0], crows_record("m", "cda", rows, seed=1)], lambda key: rows, reference="erm")
    assert other["rows"] == [] and "same model, task, variant, settings and seed" in other["dropped"][0]


def test_a_sub_score_whose_n_moves_with_ties_is_still_paired():
    """CrowS-Pairs' stereo score leaves tied pairs out, so its n differs by the ties two cells make on the same
    pairs: that is no reason to call them not comparable (the pair ids decide), and the paired test runs."""
    import numpy as np

    from biasboard.tasks.crows_pairs import stereotype_metrics

    def record(method, rows):
        hit = np.array([r["more_is_higher"] for r in rows], float)
        tie = np.array([r["tie"] for r in rows], float)
        metrics = stereotype_metrics(hit, tie, [r["direction"] for r in rows], n_bootstrap=100, seed=0)
        rec = crows_record("m", method, rows)
        rec["metrics"] = {k: m.to_json() for k, m in metrics.items()}
        return rec

    rows_none = crows_examples(300, 0.7, seed=3)
    for r in rows_none:
        r["tie"] = 0
    rows_tied = copy.deepcopy(rows_none)
    rows_tied[0].update(more_is_higher=0, tie=1)  # one pair becomes a tie: the stereo score's n drops by one
    a, b = record("none", rows_none), record("ties", rows_tied)
    assert a["metrics"]["stereo_score"]["n"] == 300 and b["metrics"]["stereo_score"]["n"] == 299
    examples = {a["key"]: rows_none, b["key"]: rows_tied}
    result = method_effects([a, b], lambda key: examples[key], all_metrics=True)
    row = next(r for r in result["rows"] if r["metric"] == "stereo_score")
    assert row["test"] == "paired_bootstrap" and row["verdict"] == "no significant change", row
