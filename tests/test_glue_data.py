"""GLUE: the local dev files read as SOURCES.md documents them, the official metrics on hand-worked cases and against
scipy / sklearn, the offline split is disjoint and labelled, and bad files give file/row/field errors."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from biasboard.harness.errors import DataError
from biasboard.tasks.text_classifier_metrics import glue_scores
from biasboard.tasks.finetune_common import split
from biasboard.tasks.glue import TASKS, read_local, score

DATA = Path(os.environ.get("BIASBOARD_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")


@pytest.mark.parametrize("key, rows, counts", [
    ("cola", 527, {1: 365, 0: 162}), ("sst2", 872, {1: 444, 0: 428}), ("mrpc", 408, {1: 279, 0: 129}),
    ("rte", 277, {0: 146, 1: 131}), ("stsb", 1500, None),
])
def test_dev_files_read_as_documented(key, rows, counts):
    d = read_local(TASKS[key], DATA / TASKS[key].relpath)
    assert len(d) == rows
    if counts:
        assert {k: d.labels.count(k) for k in counts} == counts
    else:
        assert min(d.labels) >= 0 and max(d.labels) <= 5
    assert (d.text_pairs is not None) == (TASKS[key].pair is not None)
    assert all(t.strip() for t in d.texts)


def test_mrpc_bom_and_unbalanced_quotes_survive():
    d = read_local(TASKS["mrpc"], DATA / TASKS["mrpc"].relpath)
    assert d.text_pairs[0].startswith('"The foodservice pie business')  # QUOTE_NONE keeps the stray quote


def test_metrics_hand_worked_and_against_references():
    y = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    p = np.array([1, 1, 0, 0, 0, 1, 1, 0])
    # TP 3, FN 1, TN 3, FP 1: accuracy 6/8, F1 = 2*3 / (2*3 + 1 + 1) = .75, MCC = (9 - 1) / sqrt(4*4*4*4) = .5
    assert glue_scores("accuracy", y, p) == 0.75
    assert glue_scores("f1", y, p) == pytest.approx(0.75)
    assert glue_scores("mcc", y, p) == pytest.approx(0.5)
    a, b = np.array([0.0, 1.0, 2.5, 4.0, 5.0]), np.array([0.5, 0.7, 3.0, 3.5, 4.9])
    assert glue_scores("pearson", a, b) == pytest.approx(sps.pearsonr(a, b)[0])
    assert glue_scores("spearman", a, b) == pytest.approx(1.0)


def test_score_reports_x100_with_ci():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = np.where(rng.random(200) < 0.8, y, 1 - y)
    res = score(TASKS["cola"], y, p, n_bootstrap=200, seed=0)
    assert list(res.metrics) == ["mcc", "accuracy"]
    m = res.metrics["mcc"]
    assert m.value == pytest.approx(glue_scores("mcc", y, p) * 100)
    assert m.ci95[0] < m.value < m.ci95[1] and m.n == 200


@pytest.mark.parametrize("task", ["cola", "mrpc", "sst2"])
def test_every_classification_metric_follows_from_its_example_rows(task):
    """Accuracy is the mean of ``correct`` (in %), MCC and F1 are recomputed from label/pred: each declaration
    reproduces the stored value, so `analyze effects` and the gate can pair two cells on the same examples."""
    from biasboard.harness.regress import per_example_scores
    from biasboard.tasks.glue import example_rows

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 150)
    p = np.where(rng.random(150) < 0.7, y, 1 - y)
    res = score(TASKS[task], y, p, n_bootstrap=50, seed=0)
    rows = example_rows([f"e{i}" for i in range(150)], y.tolist(), p, regression=False)
    assert sum(r["correct"] for r in rows) == int((y == p).sum())
    for name, metric in res.metrics.items():
        per = per_example_scores(metric.to_json(), rows)
        assert per is not None, name
    assert res.metrics["accuracy"].unit == "%" and res.metrics["accuracy"].per_example == "correct"
    # a wrong row is caught: the declaration no longer reproduces the stored value
    rows[0]["correct"] = 1 - rows[0]["correct"]
    with pytest.raises(DataError, match="declared per-example"):
        per_example_scores(res.metrics["accuracy"].to_json(), rows)


def test_weighted_glue_scores_match_sklearn_on_a_resample():
    from biasboard.tasks.text_classifier_metrics import weighted_glue_scores

    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 80)
    p = np.where(rng.random(80) < 0.6, y, 1 - y)
    idx = rng.integers(0, 80, 80)
    counts = np.bincount(idx, minlength=80)[None, :]
    got = weighted_glue_scores(counts, y, p)
    assert got["mcc"][0] == pytest.approx(glue_scores("mcc", y[idx], p[idx]) * 100)
    assert got["f1"][0] == pytest.approx(glue_scores("f1", y[idx], p[idx]) * 100)


def test_offline_split_is_disjoint_and_stratified():
    labels = np.array([0] * 60 + [1] * 40)
    tr, va, te = split(100, (0.35, 0.15, 0.5), seed=0, stratify=labels)
    assert len(set(tr) | set(va) | set(te)) == 100 and len(tr) + len(va) + len(te) == 100
    assert labels[te].mean() == pytest.approx(0.4, abs=0.03)


def test_bad_tsv_names_file_row_field(tmp_path):
    f = tmp_path / "dev.tsv"
    f.write_text("text\tlabel\ngood\t1\nbad\tpositive\n")
    with pytest.raises(DataError, match="not a number") as err:
        read_local(TASKS["sst2"], f)
    assert err.value.row == 2 and err.value.field == "label" and str(f) in str(err.value)
    f.write_text("sentence\tlabel\nx\t1\n")
    with pytest.raises(DataError, match="missing column 'text'"):
        read_local(TASKS["sst2"], f)
