"""SEAT and WEAT end to end on real zoo models, checked against the original one-sentence-at-a-time pipeline."""
from __future__ import annotations

import numpy as np
import pytest
from seat_reference import bias_bench_encode, weat_reference

from biasboard.harness.errors import UnsupportedError
from biasboard.harness.specs import RunContext
from biasboard.tasks.seat.task import SEAT_BIAS_TYPES, SEAT_FILES, Seat, Weat, word_vector
from biasboard.tasks.seat.runner import lookup_vectors
from biasboard.tasks.seat.data import load_test

pytestmark = pytest.mark.slow
SUBSET = ["sent-weat6", "sent-religion1", "sent-angry_black_woman_stereotype_b"]


@pytest.fixture(scope="module")
def glove():
    from biasboard.harness.models import load_handle

    return load_handle("zoo:glove-6b-50d")


def test_weat_glove_all_tests(glove, data_dir):
    res = Weat().evaluate(glove, "sent_bias", RunContext(n_bootstrap=200))
    rows = {r["id"]: r for r in res.examples}
    assert len(rows) == 15
    vector = word_vector(glove)
    for name, row in rows.items():
        prep = lookup_vectors(load_test(data_dir / "seat" / f"{name}.jsonl"), vector)
        d_ref, _ = weat_reference(list(prep.x), list(prep.y), list(prep.a), list(prep.b))
        assert row["effect_size"] == pytest.approx(d_ref, abs=1e-10), name
        assert 0 < row["p_value"] <= row["p_value_holm"] <= 1
        assert row["ci95"][0] <= row["effect_size"] <= row["ci95"][1] or row["n_x"] <= 8
    assert rows["weat1"]["missing"] == {"targ1": ["gladiola"]} and rows["weat1"]["balanced_out"] == ["weevil"]
    assert rows["weat6"]["exact_test"] and not rows["weat3"]["exact_test"]
    head = res.metrics["mean_abs_effect_size"]
    typed = [r["effect_size"] for r in res.examples if r["bias_type"]]
    assert head.n == 11 and head.value == pytest.approx(np.mean(np.abs(typed)))
    # the headline (and each bias type's mean) declares the rows it averages: the gate and `analyze effects` pair
    # over the same tests; the declaration must give back the value (per_example_scores raises otherwise)
    from biasboard.harness.record import StoredMetric
    from biasboard.harness.regress import per_example_scores

    paired = per_example_scores(StoredMetric.from_metric(head), res.examples)
    assert sorted(k for k, v in paired.values.items() if v is not None) == sorted(
        r["id"] for r in res.examples if r["bias_type"])
    for bias in ("gender", "race"):
        group = per_example_scores(StoredMetric.from_metric(res.groups[bias]["mean_abs_effect_size"]), res.examples)
        assert sum(v is not None for v in group.values.values()) == res.groups[bias]["mean_abs_effect_size"].n
    assert head.ci95[0] < head.value < head.ci95[1]
    assert res.metrics["significant_tests"].value == sum(r["p_value"] < 0.01 for r in res.examples)
    assert set(res.groups) >= {"gender", "race", "weat6"} and res.groups["weat6"]["effect_size"].p_value is not None
    assert any("gladiola" in note for note in res.notes)
    wefe = {r["id"]: r for r in Weat().evaluate(glove, "caliskan_wefe", RunContext(n_bootstrap=50)).examples}
    for name in ("weat6", "weat7", "weat8"):  # identical word lists in both transcriptions
        assert wefe[name]["effect_size"] == pytest.approx(rows[name]["effect_size"], abs=1e-12)


def test_seat_minilm_matches_bias_bench_pipeline(minilm, data_dir):
    ctx = RunContext(batch_size=64, n_bootstrap=200, extra={"tests": SUBSET})
    res = Seat().evaluate(minilm, "mean", ctx)
    for row in res.examples:
        test = load_test(data_dir / SEAT_FILES[row["id"]])
        X, Y, A, B = (bias_bench_encode(minilm, list(s)) for s in (test.x, test.y, test.a, test.b))
        d_ref, _ = weat_reference(X, Y, A, B)
        assert row["effect_size"] == pytest.approx(d_ref, abs=1e-4), row["id"]
        assert row["bias_type"] == next(b for b, names in SEAT_BIAS_TYPES.items() if row["id"] in names)
    # batch size does not change the result
    res1 = Seat().evaluate(minilm, "mean", RunContext(batch_size=1, n_bootstrap=200, extra={"tests": SUBSET}))
    for a, b in zip(res.examples, res1.examples):
        assert a["effect_size"] == pytest.approx(b["effect_size"], abs=1e-5)
        assert a["p_value"] == pytest.approx(b["p_value"], abs=2e-4)
    assert {"mean_abs_effect_size", "significant_tests", "significant_tests_holm"} <= set(res.metrics)
    assert res.metrics["mean_abs_effect_size"].n == 3


def test_seat_variants_and_families(minilm, splade, smollm):
    first = Seat().evaluate(minilm, "first", RunContext(n_bootstrap=50, extra={"tests": ["sent-weat9"]}))
    mean = Seat().evaluate(minilm, "mean", RunContext(n_bootstrap=50, extra={"tests": ["sent-weat9"]}))
    assert first.examples[0]["effect_size"] != pytest.approx(mean.examples[0]["effect_size"], abs=1e-3)
    with pytest.raises(UnsupportedError, match="clm"):
        Seat().evaluate(minilm, "last", RunContext())
    mlm = Seat().evaluate(splade, "mean", RunContext(n_bootstrap=50, extra={"tests": ["sent-weat9"]}))
    clm = Seat().evaluate(smollm, "last", RunContext(n_bootstrap=50, extra={"tests": ["sent-weat9"]}))
    for r in (mlm, clm):
        assert np.isfinite(r.examples[0]["effect_size"]) and r.metrics["mean_abs_effect_size"].n == 1
    with pytest.raises(UnsupportedError, match="unknown test"):
        Seat().evaluate(minilm, "mean", RunContext(extra={"tests": ["sent-weat99"]}))
