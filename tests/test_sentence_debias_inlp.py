"""SentenceDebias and INLP (bias-bench's representation methods): hand-worked and planted cases, then one slow
end-to-end run of each on the tiny masked LM through the runner."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from biasboard.harness.training import bias_sentences as bs
from biasboard.harness.training.subspace import (bias_subspace, cached_tensors, inlp_projection,
                                                 rowspace_projection, split_like_bias_bench)


def _planted_pairs(n=200, dim=12, seed=0):
    """Pairs of unit-ish vectors that differ along a planted unit direction u, plus small noise."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=dim)
    u /= np.linalg.norm(u)
    base = rng.normal(size=(n, dim))
    shift = rng.uniform(0.5, 1.5, size=(n, 1)) * u
    pairs = np.stack([base + shift, base - shift], axis=1) + 0.01 * rng.normal(size=(n, 2, dim))
    return pairs, u


def test_bias_subspace_finds_a_planted_direction():
    pairs, u = _planted_pairs()
    v = bias_subspace(pairs)
    assert v.shape == (1, 12)
    assert abs(float(v[0] @ u)) > 0.999
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0)


def test_sentence_debias_projection_removes_the_direction():
    from biasboard.submissions.sentence_debias import SentenceDebias

    pairs, u = _planted_pairs()
    method = SentenceDebias()
    method.direction = torch.tensor(bias_subspace(pairs), dtype=torch.float32)
    hidden = torch.randn(3, 5, 12) + 4 * torch.tensor(u, dtype=torch.float32)
    out = method.represent(hidden, None)
    assert out.shape == hidden.shape
    assert torch.abs(out @ method.direction[0]).max() < 1e-5
    # what is orthogonal to the direction is untouched: x - (x.v)v, bias-bench's formula
    v = method.direction[0]
    expected = hidden - (hidden @ v)[..., None] * v
    assert torch.allclose(out, expected, atol=1e-6)


def test_rowspace_projection_worked_example():
    # the row space of [[1, 1, 0]] is the line through (1, 1, 0)/sqrt(2): P = [[.5, .5, 0], [.5, .5, 0], [0, 0, 0]]
    np.testing.assert_allclose(rowspace_projection(np.array([[1.0, 1.0, 0.0]])),
                               [[0.5, 0.5, 0], [0.5, 0.5, 0], [0, 0, 0]], atol=1e-12)
    assert not rowspace_projection(np.zeros((1, 3))).any()


def test_inlp_makes_a_planted_attribute_linearly_unpredictable():
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(1)
    n, dim = 1200, 10
    y = rng.integers(0, 2, size=n)
    x = rng.normal(size=(n, dim))
    x[:, 0] += 3.0 * (2 * y - 1)          # the attribute lives in two planted coordinates
    x[:, 1] += 1.5 * (2 * y - 1)
    x_train, x_dev, y_train, y_dev = split_like_bias_bench(x, y)
    before = LinearSVC(fit_intercept=False, dual=False).fit(x_train, y_train).score(x_dev, y_dev)
    p, accuracies = inlp_projection(x_train, y_train, x_dev, y_dev, n_classifiers=4)
    after = LinearSVC(fit_intercept=False, dual=False).fit(x_train @ p, y_train).score(x_dev @ p, y_dev)
    assert before > 0.95 and accuracies[0] == pytest.approx(before)
    assert after < 0.6                     # chance is 0.5
    np.testing.assert_allclose(p @ p, p, atol=1e-8)   # a projection
    np.testing.assert_allclose(p, p.T, atol=1e-10)    # orthogonal
    assert round(float(np.trace(p))) == dim - 4       # one direction per binary classifier


def test_counterfactual_examples_are_two_sided():
    groups = bs.attribute_words("gender")
    assert ("he", "she") in groups and ("actor", "actress") in groups
    ex = bs.counterfactual_examples(["she said he is an actor", "nothing here"], [("he", "she"), ("actor", "actress")])
    # "he" -> she; "she" -> he; "actor" -> actress: one example per attribute word found, male form first
    assert ex == [("she said he is an actor", "she said she is an actor"),
                  ("he said he is an actor", "she said he is an actor"),
                  ("she said he is an actor", "she said he is an actress")]


def test_inlp_sentences_follow_bias_benchs_rules():
    lines = ["He went to the market today. She bought a new red car.",
             "He and she both came back late.",
             "The weather was nice and warm today. Short one.",
             "He went to the market today."]
    out = bs.inlp_sentences(lines, [("he", "she")], "gender", seed=0)
    assert set(out) == {"male", "female", "neutral"}
    assert len(out["male"]) == 1              # the duplicate is dropped; "he and she" has both classes
    assert out["male"][0].startswith("he") and "he" in out["male"][0].split(" ")
    assert out["female"][0].startswith("she") and len(out["female"]) == 1
    assert out["neutral"][0].startswith("the weather was") and len(out["neutral"][0].split(" ")) >= 4
    assert bs.inlp_sentences(lines, [("he", "she")], "gender", seed=0) == out   # seeded
    binary = bs.inlp_sentences(lines, [("he", "she")], "race", seed=0)
    assert set(binary) == {"bias", "neutral"} and len(binary["bias"]) == 3


def test_fits_are_cached_as_safetensors(tmp_path):
    calls = []

    def fit():
        calls.append(1)
        return {"direction": np.arange(4, dtype=np.float32)}

    key = {"weights": "abc", "params": {"bias_type": "gender"}}
    a = cached_tensors(tmp_path, "sentence_debias", key, fit)
    b = cached_tensors(tmp_path, "sentence_debias", key, fit)
    assert len(calls) == 1 and np.array_equal(a["direction"], b["direction"])
    assert [p.suffix for p in (tmp_path / "sentence_debias").iterdir()] == [".safetensors"]
    cached_tensors(tmp_path, "sentence_debias", {**key, "weights": "other"}, fit)
    assert len(calls) == 2


@pytest.mark.slow
@pytest.mark.parametrize("method,params", [("sentence_debias", {}),
                                           ("inlp", {"n_classifiers": 3, "n_per_class": 150})])
def test_end_to_end_on_the_tiny_masked_lm(method, params):
    """Through the runner: the method fits on the corpus, the hook changes SEAT and CrowS-Pairs scores, the fit
    corpus is in the result's flags, and the base model's scores are what they were."""
    from biasboard.harness.matrix import Matrix, plan
    from biasboard.harness.runner import HandleCache, evaluate_cell

    def cells(name, p):
        m = Matrix.from_dict({"name": "t", "models": ["zoo:splade-tiny"], "methods": [{"name": name, "params": p}],
                              "tasks": [{"task": "seat:mean", "extra": {"tests": ["sent-weat6"],
                                                                        "permutation_samples": 200}},
                                        {"task": "crows_pairs:pll_unmodified", "extra": {"max_examples": 20}}]})
        return plan(m)[0]

    handles = HandleCache()
    run = lambda c: evaluate_cell(c, handles=handles, n_bootstrap=50)[0].to_json()  # noqa: E731
    debiased = {c.task: run(c) for c in cells(method, params)}
    plain = {c.task: run(c) for c in cells("none", {})}
    for task, rec in debiased.items():
        assert rec["flags"][method]["corpus"] == "wikipedia_talk", rec["flags"]
        assert rec["provenance"]["lineage"][-1] == f"{method}.represent"
        assert method not in plain[task]["flags"]
    es = lambda r: r["groups"]["sent-weat6"]["effect_size"]["value"]  # noqa: E731
    assert abs(es(debiased["seat"]) - es(plain["seat"])) > 1e-4


def test_inlp_fits_on_vectors_scaled_as_bias_bench_does():
    """bias-bench's dropout at rate 0 still scales the training vectors by 1/(1 + 1e-6); the first round's
    projection must be the one of an SVM fitted on exactly those vectors (bit for bit)."""
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(300, 8)), rng.integers(-1, 2, size=300)
    x[:, 0] += y
    x_train, x_dev, y_train, y_dev = split_like_bias_bench(x, y)
    p, _ = inlp_projection(x_train, y_train, x_dev, y_dev, n_classifiers=1)
    clf = LinearSVC(fit_intercept=False, dual=False, random_state=0).fit(x_train * (1.0 / (1.0 + 1e-6)), y_train)
    # Ben-Israel's formula with one classifier: I minus the projection onto the row space of P_R(w)
    assert np.array_equal(p, np.eye(8) - rowspace_projection(rowspace_projection(clf.coef_)))


def test_inlp_features_truncate_texts_longer_than_the_model_takes(tiny_bert_dir):
    """Wikipedia Talk has comments of over 1,000 tokens; a 512- (here 128-) position encoder cannot read them.
    bias-bench tokenizes with truncation=True, and so does INLP's feature extraction (special tokens kept)."""
    from biasboard.harness.models import load_handle, scoring
    from biasboard.submissions.inlp import inlp_data

    handle = load_handle(str(tiny_bert_dir))
    long_text = " ".join(["word"] * 400)
    assert scoring.max_tokens(handle) == 128
    ids = scoring.tokenize(handle, [long_text, "short one"], max_length=scoring.max_tokens(handle))
    assert len(ids[0]) == 128 and ids[0][-1] == handle.tokenizer.sep_token_id and len(ids[1]) == 4
    with pytest.raises((RuntimeError, IndexError)):
        scoring.encode(handle, [long_text])
    x, y = inlp_data(handle, {"male": [long_text], "female": ["she is here"], "neutral": ["it is here"]})
    assert x.shape == (3, 32) and np.isfinite(x).all() and list(y) == [1, 0, -1]
    cut = " ".join(["word"] * 126)  # 126 words + [CLS] + [SEP] = 128 tokens: what truncation feeds the model
    assert np.allclose(x[0], scoring.encode(handle, [cut])[0].astype(np.float64), atol=1e-6)


def test_inlp_projects_in_bias_benchs_order():
    """Round 2 trains on (P @ X.T).T, bias-bench's order, not X @ P: the two differ in the last bits, and liblinear
    rounds amplify that. A two-round loop written in bias-bench's order gives the same P bit for bit."""
    from sklearn.svm import LinearSVC

    from biasboard.harness.training.subspace import _nullspace_of_all

    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(400, 16)), rng.integers(-1, 2, size=400)
    x[:, :3] += y[:, None] * np.array([1.0, 0.5, 0.25])
    x_train, x_dev, y_train, y_dev = split_like_bias_bench(x, y)
    p, _ = inlp_projection(x_train, y_train, x_dev, y_dev, n_classifiers=2)
    ref, rows = np.eye(16), []
    for _ in range(2):
        clf = LinearSVC(fit_intercept=False, dual=False, random_state=0)
        clf.fit(ref.dot(x_train.T).T * (1.0 / (1.0 - 0.0 + 1e-6)), y_train)
        rows.append(rowspace_projection(clf.coef_))
        ref = _nullspace_of_all(rows, 16)
    assert np.array_equal(p, ref)


def test_unpadded_batches_hold_one_length_and_do_not_depend_on_batch_size(tiny_bert_dir):
    """INLP's features come from batches of equal-length texts (no padding): each text's vector is the one it gets
    alone, whatever the batch size."""
    from biasboard.harness.models import load_handle, scoring

    assert list(scoring._equal_length_batches([0, 1, 2, 3, 4], [2, 2, 3, 3, 3], 2)) == [[0, 1], [2, 3], [4]]
    handle = load_handle(str(tiny_bert_dir))
    texts = ["a b c", "d e f", "she is a doctor", "he is a nurse", "one", "two words", "x y z w v"]
    alone = np.stack([scoring.encode(handle, [t])[0] for t in texts])
    for bs in (2, 64):
        np.testing.assert_allclose(scoring.encode(handle, texts, batch_size=bs, unpadded=True), alone, atol=2e-6)
