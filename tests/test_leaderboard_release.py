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


def test_mean_rank_hand_worked():
    # Three rows, two columns (SS distance, SEAT |effect|), lower badness = better.
    #   row A: SS 58 (8), SEAT 0.71 -> ranks 2, 3
    #   row B: SS 54 (4), SEAT 0.51 -> ranks 1, 2
    #   row C: SS 61 (11), SEAT 0.30 -> ranks 3, 1
    # mean ranks: A (2+3)/2 = 2.5, B (1+2)/2 = 1.5, C (3+1)/2 = 2.0
    recs = []
    for model, ss, eff in (("A", 58.0, 0.71), ("B", 54.0, 0.51), ("C", 61.0, 0.30)):
        recs += [stereoset_record(model, "none", ss, 80.0), seat_record(model, "none", eff)]
    release = build_release(recs)
    got = {r["model"]: (r["mean_rank"], r["n_ranked"]) for r in release["rows"]}
    assert got == {"A": (2.5, 2), "B": (1.5, 2), "C": (2.0, 2)}
    ss_col = "stereoset:intrasentence"
    assert [r["cells"][ss_col]["rank"] for r in release["rows"]] == [2.0, 1.0, 3.0]


def test_row_with_fewer_columns_reports_its_coverage():
    recs = [stereoset_record("A", "none", 58.0, 80.0), seat_record("A", "none", 0.7),
            stereoset_record("B", "none", 54.0, 80.0)]
    rows = {r["model"]: r for r in build_release(recs)["rows"]}
    assert (rows["A"]["mean_rank"], rows["A"]["n_ranked"]) == (1.5, 2)  # SS rank 2, SEAT rank 1 (alone)
    assert (rows["B"]["mean_rank"], rows["B"]["n_ranked"]) == (1.0, 1)


def test_seeds_average_with_range_not_a_fake_ci():
    a = stereoset_record("m", "none", 56.0, 80.0)
    b = copy.deepcopy(a)
    b["seed"], b["key"] = 1, "other"
    b["metrics"]["ss"]["value"] = 60.0
    [row] = build_release([a, b])["rows"]
    entry = row["cells"]["stereoset:intrasentence"]
    assert entry["value"] == 58.0 and entry["seed_range"] == [56.0, 60.0] and entry["ci95"] is None
    assert entry["seeds"] == [0, 1] and entry["distance"] == 8.0


def test_shades_follow_distance_not_value():
    col = {"unit": "%", "ideal": 50.0, "direction": "target"}
    scale = ranking.shade_scale(col, [])
    assert scale == ranking.PERCENT_TARGET_FULL_RED == 25.0
    # 5 buckets of 5 points: distance 0-5 -> 0, 5-10 -> 1, ..., >= 20 -> 4 (clipped)
    assert [ranking.shade(d, scale=scale) for d in (0, 4.9, 5, 12, 24.9, 40)] == [0, 0, 1, 2, 4, 4]
    assert ranking.shade(ranking.distance({"value": 40, **col}), scale=scale) == \
        ranking.shade(ranking.distance({"value": 60, **col}), scale=scale)


def test_method_label_and_safe_names():
    assert method_label("bias_vector", {"lam": 10}, {"lam": 1}) == "bias_vector(lam=10)"
    assert method_label("bias_vector", {"lam": 1}, {"lam": 1}) == "bias_vector"
    assert method_label("x", {"a": 1}, None) == "x(a=1)"
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
