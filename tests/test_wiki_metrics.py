"""WIKI toxicity metrics: hand-worked cases, and on the real madlibs / Wikipedia test sets against an independent
re-computation of Dixon et al.'s and Borkan et al.'s definitions (per-term data-frame filtering, sklearn AUCs)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from biasboard.harness.errors import DataError
from biasboard.tasks import synthetic_wiki, wiki_data
from biasboard.harness.stats import hanley_mcneil_se
from biasboard.tasks.text_classifier_metrics import (bias_aucs, equality_difference, equality_differences_from_weights,
                                                     error_rate_counts, term_error_rates)
from biasboard.tasks.wiki_toxicity import score

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
    res = score(test, p, train, terms, n_bootstrap=100, seed=0)
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
