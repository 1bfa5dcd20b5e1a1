"""The JSON release: schema, direction-aware distances, ranks (hand-worked), seeds, labels."""
from __future__ import annotations

import copy
import json

import jsonschema
import pytest
from leaderboard_fixtures import EVIL_MODEL, quick_board, seat_record, stereoset_record

from biasboard.leaderboard import ranking
from biasboard.leaderboard.release import SCHEMA_FILE, build_release, method_label, safe_name, write_release


def test_release_matches_its_documented_schema(tmp_path):
    records, examples = quick_board()
    release = build_release(records)
    path = write_release(release, tmp_path, examples)
    jsonschema.validate(json.loads(path.read_text()), json.loads(SCHEMA_FILE.read_text()))
    assert len(release["cells"]) == len(records) == release["release"]["n_cells"]
    assert sorted(p.name for p in (tmp_path / "examples").iterdir()) == sorted(f"{safe_name(k)}.jsonl" for k in examples)


def test_release_id_is_a_digest_of_the_cells():
    records, _ = quick_board()
    a, b = build_release(records, generated_at="t1"), build_release(list(reversed(records)), generated_at="t2")
    assert a["release"]["id"] == b["release"]["id"]  # order and build time do not matter
    changed = copy.deepcopy(records)
    changed[0]["metrics"]["stereotype_score"]["value"] += 0.1
    assert build_release(changed)["release"]["id"] != a["release"]["id"]


@pytest.mark.parametrize("metric,expected", [
    ({"value": 57.4, "ideal": 50.0, "direction": "target"}, 7.4),   # |57.4 - 50|
    ({"value": 42.6, "ideal": 50.0, "direction": "target"}, 7.4),   # |42.6 - 50|: below 50 is as biased as above
    ({"value": 83.0, "ideal": 100.0, "direction": "max"}, 17.0),    # 100 - 83
    ({"value": 0.3, "ideal": 0.0, "direction": "min"}, 0.3),        # 0.3 - 0
    ({"value": 0.3, "ideal": None, "direction": "min"}, None),      # no ideal: no distance
])
def test_distance_is_direction_aware(metric, expected):
    assert ranking.distance(metric) == (None if expected is None else pytest.approx(expected))


def test_crows_below_50_is_not_better_than_above():
    # lm-evaluation-harness marks CrowS-Pairs "higher is better"; here 40 and 60 are equally far from 50.
    col = {"ideal": 50.0, "direction": "target", "unit": "%"}
    rows = [{"value": 40.0}, {"value": 60.0}, {"value": 52.0}]
    bad = [ranking.badness({**col, **r}, [40, 60, 52]) for r in rows]
    assert bad == [10.0, 10.0, 2.0]
    assert ranking.ranks(bad) == [2.5, 2.5, 1.0]


def test_win_rate_hand_worked():
    # Three rows, two bias columns (SS distance, SEAT |effect|), lower = better; each pair shares both columns.
    #   A: SS 58 (8),  SEAT 0.71   vs B: loses SS, loses SEAT; vs C: wins SS, loses SEAT -> 1 win of 4 = 25%
    #   B: SS 54 (4),  SEAT 0.51   vs A: 2 wins; vs C: wins SS, loses SEAT -> 3 of 4 = 75%
    #   C: SS 61 (11), SEAT 0.30   vs A: 1; vs B: 1 -> 2 of 4 = 50%
    recs = []
    for model, ss, eff in (("A", 58.0, 0.71), ("B", 54.0, 0.51), ("C", 61.0, 0.30)):
        recs += [stereoset_record(model, "none", ss, 80.0), seat_record(model, "none", eff)]
    release = build_release(recs)
    got = {r["model"]: (r["win_rate"], r["opponents"], r["comparisons"]) for r in release["rows"]}
    assert got == {"A": (0.25, 2, 4), "B": (0.75, 2, 4), "C": (0.5, 2, 4)}
    assert [r["model"] for r in release["rows"]] == ["B", "C", "A"]  # default order: win rate, best first
    ss_col = "stereoset:intrasentence"
    assert {r["model"]: r["cells"][ss_col]["rank"] for r in release["rows"]} == {"A": 2.0, "B": 1.0, "C": 3.0}


def test_rows_with_too_little_overlap_are_not_ranked_and_one_row_columns_rank_nobody():
    # glove-like row alone in two WEAT-like columns: the "1 (2)" that came first; now unranked.
    recs = [stereoset_record("A", "none", 58.0, 80.0), seat_record("A", "none", 0.7),
            stereoset_record("B", "none", 54.0, 80.0), seat_record("B", "none", 0.2),
            seat_record("C", "none", 0.01)]
    rel = build_release(recs)
    rows = {r["model"]: r for r in rel["rows"]}
    assert rows["C"]["win_rate"] is None and rows["C"]["opponents"] == 0  # shares 1 column < 2
    assert rows["B"]["win_rate"] == 1.0 and rows["A"]["win_rate"] == 0.0
    assert [r["model"] for r in rel["rows"]] == ["B", "A", "C"]  # unranked last, though C has the best SEAT
    only = build_release([seat_record("Z", "none", 1.9)])
    assert only["rows"][0]["cells"]["seat:mean_pool"]["rank"] is None


def test_lost_utility_is_degenerate_and_ranked_last():
    # random_init: no knowledge, no stereotypes (SS 50, SEAT 0), LMS 50 vs 83 for none -> degenerate, last.
    recs = []
    for method, ss, lms, eff in (("none", 58.0, 83.0, 0.7), ("perturb", 56.0, 80.0, 0.6),
                                 ("random_init", 50.0, 50.0, 0.0)):
        recs += [stereoset_record("m", method, ss, lms), seat_record("m", method, eff)]
    recs.append(seat_record("m", "projection", 0.3))
    recs.append(stereoset_record("m", "projection", 57.0, 82.0) | {"metrics": {"ss": {
        "value": 57.0, "n": 10, "ideal": 50.0, "direction": "target", "unit": "%"}}})  # no LMS: not measured
    rel = build_release(recs)
    rows = {r["method"]: r for r in rel["rows"]}
    assert rows["random_init"]["utility"]["status"] == "degenerate"
    assert rows["random_init"]["win_rate"] == 1.0  # best bias numbers...
    assert [r["method"] for r in rel["rows"]][-1] == "random_init"  # ...ranked after every other row
    assert rows["perturb"]["utility"]["status"] == "ok"  # 3 points below none: within the 5-point margin
    assert rows["none"]["utility"]["status"] == "reference"
    assert rows["projection"]["utility"]["text"] == "utility not measured"
    assert [r["method"] for r in rel["rows"]] == ["perturb", "none", "projection", "random_init"]
    assert "degenerate" in rel["ranking"]["utility"] and "5 points" in rel["ranking"]["utility"]
    assert rows["perturb"]["cells"]["stereoset:intrasentence"]["utility"]["metric"] == "lms"


def test_utility_margin_rule():
    assert ranking.utility_drop_is_degenerate(77.9, 83.0, 100.0)
    assert not ranking.utility_drop_is_degenerate(78.1, 83.0, 100.0)
    assert ranking.utility_drop_is_degenerate(0.80, 0.90, 1.0) and not ranking.utility_drop_is_degenerate(0.86, 0.90, 1.0)


def test_only_real_caveats_are_warnings():
    rec = seat_record("m", "none", 0.5)
    rec["flags"] = {"tests": 10, "permutation_samples": 100000, "eval_sample": "200 of 1508 pairs",
                    "synthetic_data": False}
    [cell] = build_release([rec])["cells"]
    assert cell["caveats"] == {"eval_sample": "200 of 1508 pairs"}
    assert cell["info"] == {"tests": 10, "permutation_samples": 100000}
    nadeem = stereoset_record("m", "none", 55.0, 80.0) | {"variant": "intersentence_nadeem"}
    assert "inverted_score" in build_release([nadeem])["cells"][0]["caveats"]


def test_bibtex_from_citation_text():
    bib = build_release([seat_record("m", "none", 0.5)], plugins={"tasks": {"seat": {
        "description": "", "citation": "May, Wang, Bordia, Bowman, Rudinger. On Measuring Social Biases in Sentence "
        "Encoders. NAACL 2019; Meade et al. 2022, An Empirical Survey, ACL", "axis": "multiple", "version": "1",
        "families": [], "variants": {}}}})["tasks"]["seat"]["bibtex"]
    assert bib.count("@inproceedings{") == 2
    assert "@inproceedings{may2019measuring," in bib and "author = {May and Wang and Bordia and Bowman and Rudinger}" in bib
    assert "booktitle = {NAACL}" in bib and "author = {Meade and others}" in bib and "year = {2022}" in bib


def test_seeds_average_with_range_not_a_fake_ci():
    a = stereoset_record("m", "none", 56.0, 80.0)
    b = copy.deepcopy(a)
    b["seed"], b["key"] = 1, "other"
    b["metrics"]["ss"]["value"] = 60.0
    [row] = build_release([a, b])["rows"]
    entry = row["cells"]["stereoset:intrasentence"]
    assert entry["value"] == 58.0 and entry["seed_range"] == [56.0, 60.0] and entry["ci95"] is None
    assert entry["seeds"] == [0, 1] and entry["distance"] == 8.0


def test_colour_scale_is_absolute_per_metric():
    # a lone SEAT cell with effect 0.1 is 'close', not 'farthest' (the scale no longer comes from the column)
    [row] = build_release([seat_record("m", "none", 0.1)])["rows"]
    assert row["cells"]["seat:mean_pool"]["shade"] == 0
    assert ranking.colour_scale({"ideal": 0.0, "direction": "min"}) == 1.0  # Cohen's d
    assert ranking.colour_scale({"ideal": 100.0, "direction": "max", "unit": "%"}) == 50.0
    assert ranking.colour_scale({"ideal": None, "direction": "max"}) is None
    assert ranking.distance_from_ideal(0.8, 0.0, "min", scale=1.0) == 0.8


def test_shades_follow_distance_not_value():
    col = {"unit": "%", "ideal": 50.0, "direction": "target"}
    scale = ranking.colour_scale(col)
    assert scale == ranking.PERCENT_TARGET_FULL_RED == 25.0
    # 5 buckets of 5 points: distance 0-5 -> 0, 5-10 -> 1, ..., >= 20 -> 4 (clipped)
    assert [ranking.shade(d, scale=scale) for d in (0, 4.9, 5, 12, 24.9, 40)] == [0, 0, 1, 2, 4, 4]
    assert ranking.shade(ranking.distance({"value": 40, **col}), scale=scale) == \
        ranking.shade(ranking.distance({"value": 60, **col}), scale=scale)


def test_method_label_and_safe_names():
    # exactly as the CLI result table prints it: every stored parameter, in stored order
    from biasboard.harness.record import CellRecord

    for params in ({"lam": 10}, {"lam": 1, "epochs": 30}, {}):
        assert method_label("bias_vector", params) == CellRecord("m", "bias_vector", "t", "v", method_params=params).method_label
    assert method_label("bias_vector", {"lam": 1}) == "bias_vector(lam=1)"
    assert safe_name("crows_pairs") == "crows_pairs"
    evil = safe_name(EVIL_MODEL)
    assert "<" not in evil and "/" not in evil and evil != safe_name("<script>alert(2)</script>")
    assert safe_name("zoo:a") != safe_name("zoo-a")


def test_nan_becomes_null_in_the_file(tmp_path):
    rec = stereoset_record("m", "none", 58.0, 80.0)
    rec["metrics"]["icat"]["value"] = float("nan")
    path = write_release(build_release([rec]), tmp_path, {})
    assert "NaN" not in path.read_text()
    assert json.loads(path.read_text())["cells"][0]["metrics"]["icat"]["value"] is None
