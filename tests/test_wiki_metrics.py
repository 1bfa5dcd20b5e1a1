"""WIKI toxicity metrics: hand-worked cases, and on the real madlibs / Wikipedia test sets against an independent
re-computation of Dixon et al.'s and Borkan et al.'s definitions (per-term data-frame filtering, sklearn AUCs)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from biasboard.harness.errors import BiasboardError, DataError
from biasboard.tasks import synthetic_wiki, wiki_data
from biasboard.harness.stats import hanley_mcneil_se
from biasboard.tasks.text_classifier_metrics import (bias_aucs, eer_threshold, equality_difference,
                                                     equality_differences_from_weights, error_rate_counts,
                                                     term_error_rates)
from biasboard.tasks.wiki_toxicity import DEFAULTS, WikiToxicity, parse_threshold, score

DATA = Path(os.environ.get("BIASBOARD_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")


def test_error_rates_and_fped_hand_worked():
    # 6 comments; term A in rows 0-2, term B in rows 2-4; row 5 mentions none.
    y = np.array([0, 0, 1, 0, 1, 0])
    p = np.array([1, 0, 0, 1, 1, 0])
    M = np.array([[1, 0], [1, 0], [1, 1], [0, 1], [0, 1], [0, 0]], dtype=bool)
    r = term_error_rates(y, p, M, ["A", "B"])
    # A: negatives rows 0,1 -> one FP -> FPR .5; positives row 2 missed -> FNR 1
    # B: negatives row 3 -> FP -> FPR 1;      positives rows 2 (missed), 4 (hit) -> FNR .5
    assert (r["A"]["fpr"], r["A"]["fnr"], r["B"]["fpr"], r["B"]["fnr"]) == (0.5, 1.0, 1.0, 0.5)
    # overall: negatives rows 0,1,3,5 -> 2 FP -> FPR .5; positives rows 2,4 -> 1 miss -> FNR .5
    # FPED = |.5 - .5| + |.5 - 1| = .5; FNED = |.5 - 1| + |.5 - .5| = .5
    assert equality_difference(0.5, [0.5, 1.0]) == 0.5
    fast = equality_differences_from_weights(error_rate_counts(y, p, M), 2)(np.ones((1, 6)))[0]
    assert fast.tolist() == pytest.approx([0.5, 0.5])


def test_bias_aucs_hand_worked():
    # subgroup rows 0-3, background rows 4-7
    y = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    s = np.array([0.6, 0.2, 0.5, 0.9, 0.1, 0.3, 0.7, 0.8])
    d = bias_aucs(y, s, np.arange(8) < 4)
    # subgroup: pos {.5, .9} vs neg {.6, .2}: pairs won .5>.2, .9>.6, .9>.2 -> 3/4
    assert d["subgroup_auc"] == pytest.approx(0.75)
    # BPSN: background pos {.7, .8} vs subgroup neg {.6, .2}: all 4 won -> 1
    assert d["bpsn_auc"] == pytest.approx(1.0)
    # BNSP: subgroup pos {.5, .9} vs background neg {.1, .3}: all 4 won -> 1
    assert d["bnsp_auc"] == pytest.approx(1.0)


def test_eer_threshold_hand_worked():
    # negatives .05 .2 .3, positives .15 .35 .45; toxic when score >= t. Candidate t (descending):
    #   .45: FPR 0, FNR 2/3 | .35: 0, 1/3 | .3: 1/3, 1/3 <- equal | .2: 2/3, 1/3 | .15: 2/3, 0 | .05: 1, 0
    y, s = [0, 0, 0, 1, 1, 1], [0.05, 0.2, 0.3, 0.15, 0.35, 0.45]
    assert eer_threshold(y, s) == 0.3
    # at 0.5 every comment is non-toxic: FPR 0, FNR 1; at the EER threshold both are 1/3
    p = (np.array(s) >= 0.3).astype(int)
    r = term_error_rates(y, p, np.ones((6, 1), bool), ["all"])["all"]
    assert (r["fpr"], r["fnr"]) == pytest.approx((1 / 3, 1 / 3))
    # no exact crossing: negatives .1 .6, positives .4 .8 -> t .8: (0, 1/2), .6: (1/2, 1/2) -> .6
    assert eer_threshold([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.8]) == 0.6
    # one class only: undefined
    assert np.isnan(eer_threshold([0, 0], [0.2, 0.7]))


def test_eer_threshold_against_brute_force_scan():
    rng = np.random.default_rng(1)
    y = (rng.random(500) < 0.3).astype(int)
    s = np.round(np.clip(0.2 + 0.3 * y + rng.normal(0, 0.2, 500), 0, 1), 3)   # rounded: many tied scores
    best, best_gap = None, np.inf
    for t in sorted(set(s.tolist()), reverse=True):                           # highest t wins a tie
        fpr, fnr = (s[y == 0] >= t).mean(), (s[y == 1] < t).mean()
        if abs(fpr - fnr) < best_gap - 1e-12:
            best, best_gap = t, abs(fpr - fnr)
    assert eer_threshold(y, s) == best


def test_score_uses_the_eer_threshold_by_default_and_records_it():
    test = synthetic_wiki.generate(synthetic_wiki.WikiConfig(n=300, seed=3))
    rng = np.random.default_rng(0)
    p = np.clip(0.15 + 0.2 * np.asarray(test.labels) + rng.normal(0, 0.1, len(test)), 0, 0.49)  # all below 0.5
    terms = ["gay", "muslim", "black", "christian"]
    eer = score(test, p, test, terms, n_bootstrap=50, seed=0)
    fixed = score(test, p, test, terms, threshold=0.5, n_bootstrap=50, seed=0)
    t = eer_threshold(test.labels, p)
    assert eer.flags == {"threshold": t, "threshold_rule": "eer"} and t < 0.5
    assert any("equal-error-rate" in n and f"{t:.4g}" in n for n in eer.notes)
    assert eer.metrics["accuracy"].value == pytest.approx(100 * np.mean((p >= t) == np.asarray(test.labels)))
    assert fixed.metrics["accuracy"].value == pytest.approx(100 * (1 - np.mean(test.labels)))  # all non-toxic
    assert eer.metrics["auc"].value == fixed.metrics["auc"].value                           # AUCs need no threshold


def test_threshold_option():
    assert DEFAULTS["threshold"] == "eer"
    assert "threshold" in WikiToxicity.extra_keys and WikiToxicity.version == "2"
    assert parse_threshold("eer") == "eer" and parse_threshold("EER") == "eer"
    assert parse_threshold(0.5) == 0.5 and parse_threshold("0.5") == 0.5
    for bad in ("median", 1.5, None):
        with pytest.raises(BiasboardError, match="threshold"):
            parse_threshold(bad)


def test_hanley_mcneil_against_bootstrap_order_of_magnitude():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(200), np.ones(200)]
    s = y + rng.normal(0, 1.2, 400)
    auc = roc_auc_score(y, s)
    boots = [roc_auc_score(y[i], s[i]) for i in (rng.integers(0, 400, 400) for _ in range(300))]
    assert hanley_mcneil_se(auc, 200, 200) == pytest.approx(np.std(boots), rel=0.25)


@pytest.fixture(scope="module")
def madlibs():
    return wiki_data.read_eval(DATA / wiki_data.EVAL_FILES["madlibs"])


def test_real_eval_files_read_as_documented(madlibs):
    assert len(madlibs) == 76564 and sum(madlibs.labels) == 38282
    for name in ("nonfuzzed", "fuzzed"):
        d = wiki_data.read_eval(DATA / wiki_data.EVAL_FILES[name])
        assert len(d) == 1492 and sum(d.labels) == 248
    terms = wiki_data.read_terms(DATA / wiki_data.TERMS_FILE)
    assert len(terms) == 50 and "middle eastern" in terms


def test_real_madlibs_metrics_match_independent_dataframe_computation(madlibs):
    """Dixon et al. filter the data frame per term and compute FPR there; Borkan et al. build the three AUC sets."""
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(len(madlibs), 4000, replace=False))
    test = madlibs.select(idx)
    terms = wiki_data.read_terms(DATA / wiki_data.TERMS_FILE)
    # a deterministic, biased scorer: toxic words raise the score, some identity terms do too
    text = pd.Series(test.texts).str.lower()
    p = (0.3 + 0.4 * text.str.contains("disgusting|horrible|terrible|evil|murder|kill|hate").to_numpy()
         + 0.25 * text.str.contains(r"\bgay\b|\bmuslim\b|\bblack\b").to_numpy() + rng.uniform(0, 0.1, len(test)))
    train = synthetic_wiki.generate(synthetic_wiki.WikiConfig(n=500, seed=0))
    res = score(test, p, train, terms, threshold=0.5, n_bootstrap=100, seed=0)
    assert res.flags == {"threshold": 0.5, "threshold_rule": "fixed"}
    df = pd.DataFrame({"text": text, "y": np.asarray(test.labels), "pred": (p >= 0.5).astype(int), "p": p})
    fpr_all = df[df.y == 0].pred.mean()
    fped, fned = 0.0, 0.0
    fnr_all = 1 - df[df.y == 1].pred.mean()
    for t in terms:
        sub = df[df.text.str.contains(r"\b" + t + r"\b", regex=True)]
        if len(sub) == 0:
            continue
        if (sub.y == 0).any():
            fpr_t = sub[sub.y == 0].pred.mean()
            fped += abs(fpr_all - fpr_t)
            assert res.groups[t]["fpr"].value == pytest.approx(fpr_t * 100)
        if (sub.y == 1).any():
            fned += abs(fnr_all - (1 - sub[sub.y == 1].pred.mean()))
        in_sub = df.text.str.contains(r"\b" + t + r"\b", regex=True)
        bpsn = df[(in_sub & (df.y == 0)) | (~in_sub & (df.y == 1))]
        if sub.y.nunique() == 2:
            assert res.groups[t]["subgroup_auc"].value == pytest.approx(roc_auc_score(sub.y, sub.p))
        assert res.groups[t]["bpsn_auc"].value == pytest.approx(roc_auc_score(bpsn.y, bpsn.p))
    assert res.metrics["fped"].value == pytest.approx(fped)
    assert res.metrics["fned"].value == pytest.approx(fned)
    for name in ("identity_fpr", "accuracy", "auc"):
        m = res.metrics[name]
        assert m.n > 0 and m.ci95[0] <= m.value <= m.ci95[1], name
    # sums of |differences| are biased upward by noise; their basic (pivot) interval sits at or below the estimate
    for name in ("fped", "fned"):
        m = res.metrics[name]
        assert 0 <= m.ci95[0] < m.ci95[1] and m.ci95[0] <= m.value, name
    # the planted identity terms have the highest false positive rates
    worst = sorted(res.groups, key=lambda t: -res.groups[t].get("fpr", type("x", (), {"value": 0})).value)[:3]
    assert set(worst) == {"gay", "muslim", "black"}


def test_synthetic_wiki_plants_the_association():
    d = synthetic_wiki.generate(synthetic_wiki.WikiConfig(n=6000, seed=2))
    y, g = np.asarray(d.labels), np.asarray(d.groups)
    assert y[g == "identity"].mean() == pytest.approx(0.6, abs=0.04)
    assert y[g == "none"].mean() == pytest.approx(0.2, abs=0.03)
    flat = synthetic_wiki.generate(synthetic_wiki.WikiConfig(n=6000, skew=0.0, seed=2))
    y0, g0 = np.asarray(flat.labels), np.asarray(flat.groups)
    assert abs(y0[g0 == "identity"].mean() - y0[g0 == "none"].mean()) < 0.04


@pytest.mark.parametrize("content, row, field, match", [
    ("Text,Label,Template\nhello,BAD,x\nbye,MAYBE,x\n", 2, "Label", "not one of"),
    ("Text,Label,Template\n,BAD,x\n", 1, "Text", "empty text"),
    ("comment,label\nhi,1\n", 0, None, "expected columns"),
])
def test_eval_reader_errors_name_file_row_field(tmp_path, content, row, field, match):
    f = tmp_path / "bad.csv"
    f.write_text(content)
    with pytest.raises(DataError, match=match) as err:
        wiki_data.read_eval(f)
    assert err.value.row == row and err.value.field == field and str(f) in str(err.value)


def test_wikipedia_talk_reader(tmp_path):
    (tmp_path / "toxicity_annotated_comments.tsv").write_text(
        "rev_id\tcomment\tyear\tlogged_in\tns\tsample\tsplit\n"
        "1\tyou are an idiotNEWLINE_TOKEN\t2015\tTrue\tuser\trandom\ttrain\n"
        "2\tthanks for the gay rights edit\t2015\tTrue\tuser\trandom\ttrain\n"
        "3\tok\t2015\tTrue\tuser\trandom\tdev\n")
    (tmp_path / "toxicity_annotations.tsv").write_text(
        "rev_id\tworker_id\ttoxicity\ttoxicity_score\n1\t1\t1\t-1\n1\t2\t1\t-2\n1\t3\t0\t0\n"
        "2\t1\t0\t1\n2\t2\t1\t-1\n3\t1\t0\t0\n")
    parts = wiki_data.read_wikipedia_talk(tmp_path)
    # rev 1: mean toxicity 2/3 > .5 -> toxic; rev 2: 1/2, not > .5 -> non-toxic
    assert parts["train"].labels == (1, 0) and parts["train"].texts[0] == "you are an idiot"
    assert len(parts["dev"]) == 1
    from biasboard.tasks.wordlists import IDENTITY_TERMS

    assert wiki_data.with_identity_groups(parts["train"], IDENTITY_TERMS).groups == ("none", "identity")
    (tmp_path / "toxicity_annotations.tsv").unlink()
    with pytest.raises(DataError, match="missing file"):
        wiki_data.read_wikipedia_talk(tmp_path)
