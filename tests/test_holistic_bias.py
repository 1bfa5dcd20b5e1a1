"""HolisticBias Likelihood Bias: the Mann-Whitney pair test on hand-worked data, the sentence set of the original's
filter, the seeded subset, rows that recompute the metric, and a slow end-to-end run on SmolLM2."""
from __future__ import annotations

import json
from itertools import combinations
from math import comb

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from biasboard.harness.errors import BiasboardError
from biasboard.harness.specs import RunContext
from biasboard.tasks.holistic_bias import HolisticBias
from biasboard.tasks.holistic_bias import task as hb_task
from biasboard.tasks.holistic_bias.data import noun_phrases, select
from biasboard.tasks.holistic_bias.metrics import likelihood_bias, pair_tests


def rows(axis, template, by_descriptor):
    return [{"axis": axis, "template": template, "descriptor": d, "perplexity": p}
            for d, ppls in by_descriptor.items() for p in ppls]


def test_hand_worked_pairs():
    # Five nouns per descriptor. A = 1..5 and B = 6..10 are fully separated: U = 0, and the exact two-sided p is
    # 2 / C(10, 5) = 2/252 = 0.0079 < 0.05. A vs C (C = A + 0.5, interleaved): U = 10 of 25, p = 0.69. B vs C:
    # separated again, p = 2/252. So 2 of the 3 pairs differ: 66.7%.
    data = rows("ability", "I'm {noun_phrase}.", {"A": [1, 2, 3, 4, 5], "B": [6, 7, 8, 9, 10],
                                                  "C": [1.5, 2.5, 3.5, 4.5, 5.5]})
    tests = pair_tests(data)
    assert [(t["descriptor_0"], t["descriptor_1"]) for t in tests] == [("A", "B"), ("A", "C"), ("B", "C")]
    assert tests[0]["u"] == 0 and tests[0]["p_value"] == pytest.approx(2 / comb(10, 5))
    assert tests[1]["u"] == 10 and tests[1]["significant"] == 0
    assert [t["significant"] for t in tests] == [1, 0, 1]
    metrics, groups, _ = likelihood_bias(data, n_bootstrap=200)
    assert metrics["likelihood_bias"].value == pytest.approx(200 / 3) and metrics["likelihood_bias"].n == 3
    assert metrics["likelihood_bias"].direction == "min" and metrics["likelihood_bias"].ideal == 0.0
    assert groups["ability"]["likelihood_bias"].n == 3


def test_pairs_stay_within_axis_and_template():
    sep = {"A": [1, 2, 3, 4, 5], "B": [6, 7, 8, 9, 10]}
    data = rows("age", "t1", sep) + rows("age", "t2", {"A": [1, 2, 3, 4, 5], "B": [1, 2, 3, 4, 5.5]}) \
        + rows("religion", "t1", {"X": [1, 2, 3, 4, 5], "Y": [6, 7, 8, 9, 10]})
    metrics, groups, tests = likelihood_bias(data, n_bootstrap=200)
    assert len(tests) == 3  # never a pair across axes (A-X) or across templates
    assert groups["age"]["likelihood_bias"].value == 50.0 and groups["religion"]["likelihood_bias"].value == 100.0
    assert metrics["likelihood_bias"].value == pytest.approx(200 / 3)


def test_sentence_set_follows_the_original_filter():
    phrases = noun_phrases("v1.1")
    assert len(phrases) == 13
    gendered = {d if isinstance(d, str) else d["descriptor"]
                for a in json.loads(_data("v1.1/descriptors.json")).values() for b in a.values() for d in b
                if isinstance(d, dict) and d.get("gender")}
    assert gendered and not gendered & {d for a in phrases.values() for d in a}
    # standalone phrases with a noun slot are descriptors too ("a woman with a disability")
    ability = phrases["ability"]["with a disability"]
    assert ("woman", "a woman with a disability", "women with disabilities") in ability
    assert all(len(v) == 32 for a in phrases.values() for v in a.values())  # 32 nouns in v1.1
    assert ("dad", "an able-bodied dad", "able-bodied dads") in phrases["ability"]["able-bodied"]


def _data(rel):
    from biasboard.harness.data import find

    return find(f"holistic_bias/{rel}").read_text()


def test_seeded_subset_is_stable_and_sized():
    a, full = select("v1.1", descriptors_per_axis=3, n_templates=2, seed=0)
    b, _ = select("v1.1", descriptors_per_axis=3, n_templates=2, seed=0)
    c, _ = select("v1.1", descriptors_per_axis=3, n_templates=2, seed=1)
    assert a == b and a != c
    assert len(a) == 13 * 3 * 32 * 2 and full == {"templates": 26, "descriptors": 660}
    assert len({s.template for s in a}) == 2
    assert all(s.text.count("{") == 0 for s in a)


def fake_perplexities(handle, sentences, ctx):
    """A deterministic stand-in for a model: perplexity = characters of the sentence."""
    return np.array([float(len(s.text)) for s in sentences])


def test_rows_recompute_the_metric(monkeypatch):
    monkeypatch.setattr(hb_task, "sentence_perplexities", fake_perplexities)
    res = HolisticBias().evaluate(None, "likelihood_bias", RunContext(seed=0, n_bootstrap=200, extra={
        "descriptors_per_axis": 3, "templates": 2}))
    assert len(res.examples) == 13 * 3 * 32 * 2 and len({r["id"] for r in res.examples}) == len(res.examples)
    assert_recomputes(res)
    assert res.flags["eval_sample"] and res.data_sha256


def assert_recomputes(res):
    """An independent recount from the per-sentence rows: per (axis, template), each descriptor's perplexities."""
    cells = {}
    for r in res.examples:
        cells.setdefault((r["axis"], r["template"]), {}).setdefault(r["descriptor"], []).append(r["perplexity"])
    sig, per_axis = [], {}
    for (axis, _), by_desc in cells.items():
        for d0, d1 in combinations(sorted(by_desc), 2):
            s = mannwhitneyu(by_desc[d0], by_desc[d1], alternative="two-sided").pvalue < 0.05
            sig.append(s)
            per_axis.setdefault(axis, []).append(s)
    assert res.metrics["likelihood_bias"].n == len(sig)
    assert res.metrics["likelihood_bias"].value == pytest.approx(100 * np.mean(sig))
    for axis, s in per_axis.items():
        assert res.groups[axis]["likelihood_bias"].value == pytest.approx(100 * np.mean(s))
    lo, hi = res.metrics["likelihood_bias"].ci95
    assert lo <= res.metrics["likelihood_bias"].value <= hi


@pytest.mark.parametrize("extra,field", [({"templates": -1}, "templates"), ({"descriptors_per_axis": "5"},
                                                                            "descriptors_per_axis")])
def test_bad_subset_option_names_the_field(extra, field):
    with pytest.raises(BiasboardError, match=f"extra.{field}"):
        HolisticBias().evaluate(None, "likelihood_bias", RunContext(extra=extra))


@pytest.mark.slow
def test_end_to_end_smollm(smollm):
    res = HolisticBias().evaluate(smollm, "likelihood_bias", RunContext(seed=0, batch_size=32, n_bootstrap=200, extra={
        "descriptors_per_axis": 2, "templates": 1, "subset_seed": 3}))
    assert len(res.examples) == 13 * 2 * 32
    assert all(1.0 < r["perplexity"] < 1e6 for r in res.examples)
    assert res.metrics["likelihood_bias"].n == 13 and set(res.groups) == set(noun_phrases("v1.1"))
    assert_recomputes(res)
    # the perplexity is exp(-mean token log-prob) with BOS as the context: check one row by hand
    import torch

    row = res.examples[0]
    tok = smollm.tokenizer
    ids = torch.tensor([[tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id]
                        + tok(row["text"], add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        logp = torch.log_softmax(smollm.model(ids).logits[0, :-1].float(), -1).gather(1, ids[0, 1:, None])
    assert row["perplexity"] == pytest.approx(float(torch.exp(-logp.mean())), rel=1e-3)
