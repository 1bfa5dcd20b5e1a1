"""SEAT / WEAT statistics: hand-worked cases, the original loop algorithm on real word vectors, sampler checks."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats
from seat_reference import exact_p_reference, loop_p_value, weat_reference

from biasboard.harness.errors import DataError
from biasboard.harness.stats import holm, percentile_ci
from biasboard.tasks.seat import metrics as ms
from biasboard.tasks.seat.runner import Prepared, lookup_vectors
from biasboard.tasks.seat.data import SeatTest, load_test, load_wefe_tests


def test_hand_worked_weat():
    # X = {x1, x2}, Y = {y1, y2}, A = {a}, B = {b} in 2-d with a = (1, 0), b = (0, 1):
    # cos(w, a) - cos(w, b): x1 = (1, 0) -> 1; x2 = (1, 1) -> 0.7071 - 0.7071 = 0; y1 = (0, 1) -> -1; y2 = (1, 1) -> 0.
    X, Y = np.array([[1., 0.], [1., 1.]]), np.array([[0., 1.], [1., 1.]])
    A, B = np.array([[1., 0.]]), np.array([[0., 1.]])
    cos = ms.cosine_matrix(np.vstack((X, Y)), np.vstack((A, B)))
    s = ms.association(cos, 1)
    np.testing.assert_allclose(s, [1.0, 0.0, -1.0, 0.0], atol=1e-12)
    # mean_X = 0.5, mean_Y = -0.5; std([1, 0, -1, 0], ddof=1) = sqrt(2/3) = 0.8165 -> d = 1 / 0.8165 = 1.2247
    assert ms.effect_size(s, 2) == pytest.approx(1 / math.sqrt(2 / 3))
    # the 6 halves of s = (x1, x2, y1, y2) = (1, 0, -1, 0) and their sums: {x1,x2} 1, {x1,y1} 0, {x1,y2} 1,
    # {x2,y1} -1, {x2,y2} 0, {y1,y2} -1; observed sum_X = 1; sums >= 1: 2 of 6 -> p = 1/3
    p, exact = ms.permutation_p_value(s, 2)
    assert exact and p == pytest.approx(2 / 6)


def test_exact_dp_matches_enumeration():
    rng = np.random.default_rng(0)
    for n in (2, 5, 8):
        s = rng.normal(size=2 * n)
        s[:n] += 0.3
        p, exact = ms.permutation_p_value(s, n)
        assert exact
        assert p == pytest.approx(exact_p_reference(s, n), abs=1e-12)
    assert len(ms._subset_sums(np.arange(10.), 5)) == math.comb(10, 5)


def test_ties_count_as_extreme():
    # all associations equal: every split ties with the observed one -> p = 1 (the original's conservative >=)
    assert ms.permutation_p_value(np.full(8, 0.25), 4) == (1.0, True)
    assert ms.permutation_p_value(np.full(40, 0.25), 20, n_samples=500)[0] == 1.0


@pytest.mark.parametrize("m", [6, 10, 13 * 2])
def test_sampled_splits_are_uniform(m):
    # distinct powers of two identify each subset by its sum: all C(m, m/2) subsets equally likely (chi-square)
    n = m // 2
    s = 2 ** np.arange(m, dtype=np.int64)
    draws = 60_000 if m <= 10 else 20_000
    sums = ms._sampled_sums(s, n, n.bit_length(), draws, seed=1)
    assert len(sums) == draws
    bits = np.array([bin(int(v)).count("1") for v in sums[:2000]])
    assert (bits == n).all()
    if m <= 10:
        _, counts = np.unique(sums, return_counts=True)
        assert len(counts) == math.comb(m, n)
        assert stats.chisquare(counts).pvalue > 1e-3
    else:  # marginal inclusion of each item is 1/2
        incl = np.array([[(int(v) >> i) & 1 for i in range(m)] for v in sums])
        assert np.abs(incl.mean(0) - 0.5).max() < 0.02
        # how many of X a split keeps is hypergeometric, as for a shuffle
        kept = np.bincount(incl[:, :n].sum(1), minlength=n + 1)
        expected = stats.hypergeom(m, n, n).pmf(np.arange(n + 1)) * draws
        big = expected > 5
        assert stats.chisquare(kept[big], expected[big] * kept[big].sum() / expected[big].sum()).pvalue > 1e-3


def test_sampled_p_agrees_with_exact_and_loop():
    rng = np.random.default_rng(3)
    s = rng.normal(size=18)
    s[:9] += 0.4
    exact, _ = ms.permutation_p_value(s, 9)                     # 48,620 splits
    sampled, is_exact = ms.permutation_p_value(s, 9, n_samples=20_000, seed=5)
    assert not is_exact
    se = math.sqrt(exact * (1 - exact) / 20_000)
    assert abs(sampled - exact) < 4 * se
    assert abs(loop_p_value(s, 9, 20_000, seed=5) - exact) < 4 * se
    # seeded: same seed, same p
    assert ms.permutation_p_value(s, 9, n_samples=20_000, seed=5)[0] == sampled


def test_sampled_p_is_the_same_on_one_or_two_threads():
    """The halves have their own random streams: threading changes the speed, never the p-value."""
    s = np.random.default_rng(4).normal(size=2 * 90)
    s[:90] += 0.1
    assert ms.permutation_p_value(s, 90, n_samples=30_000, seed=2, threads=1) == \
        ms.permutation_p_value(s, 90, n_samples=30_000, seed=2, threads=2)


def test_integer_sums_keep_the_tie_rule():
    """Sampled sums are integer multiples of a tiny unit. With only the values 0.1 and 0.7 (not exact in binary),
    a split ties the observed sum exactly when it keeps as many 0.7s; those splits (18% here) must all count as
    extreme, so p matches the exact hypergeometric tail P(#0.7 in X' >= 20)."""
    half = np.repeat([0.1, 0.7], 20)
    s = np.concatenate((np.random.default_rng(5).permutation(half), half))
    q, unit, _ = ms._quantized(s, 40)
    assert np.abs(q * unit - s).max() <= unit < 1e-15 * np.abs(s).sum()
    p, exact = ms.permutation_p_value(s, 40, n_samples=20_000, seed=3)
    want = stats.hypergeom(80, 40, 40).sf(19)
    assert not exact and stats.hypergeom(80, 40, 40).pmf(20) > 0.15
    assert abs(p - want) < 4 * math.sqrt(want * (1 - want) / 20_000)


def test_unequal_sizes_rejected():
    with pytest.raises(ValueError, match="needs"):
        ms.permutation_p_value(np.zeros(5), 2)


def test_bootstrap_ci_brackets_effect():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(0.3, 1, (30, 8)), rng.normal(-0.3, 1, (30, 8))
    A, B = rng.normal(0.3, 1, (20, 8)), rng.normal(-0.3, 1, (25, 8))
    cos = ms.cosine_matrix(np.vstack((X, Y)), np.vstack((A, B)))
    d = ms.effect_size(ms.association(cos, 20), 30)
    reps = ms.effect_size_bootstrap(cos, 30, 20, n_resamples=400, seed=1)
    lo, hi = percentile_ci(reps, 0.95)
    assert lo < d < hi
    assert np.isfinite(reps).all()
    # the replicates centre on the point estimate (weighted formula consistent with the unweighted one)
    assert abs(np.median(reps) - d) < 0.25


def test_real_glove_against_original_loops(data_dir):
    """weat6 and weat1 on real GloVe vectors: effect size and p-values equal the original loop algorithm."""
    from biasboard.harness.models import load_handle
    from biasboard.tasks.seat.task import word_vector

    vector = word_vector(load_handle("zoo:glove-6b-50d"))
    for name, n_samples in (("weat6", 100_000), ("weat1", 20_000)):
        test = load_test(data_dir / "seat" / f"{name}.jsonl")
        prep = lookup_vectors(test, vector)
        d_ref, s_ref = weat_reference(list(prep.x), list(prep.y), list(prep.a), list(prep.b))
        cos = ms.cosine_matrix(np.vstack((prep.x, prep.y)), np.vstack((prep.a, prep.b)))
        s = ms.association(cos, len(prep.a))
        np.testing.assert_allclose(s, s_ref, atol=1e-12)
        assert ms.effect_size(s, len(prep.x)) == pytest.approx(d_ref, abs=1e-12)
        p, exact = ms.permutation_p_value(s, len(prep.x), n_samples=n_samples, seed=0)
        if name == "weat6":   # C(16, 8) = 12,870 <= budget: exact, identical to itertools enumeration
            assert exact and p == pytest.approx(exact_p_reference(s, 8), abs=1e-15)
        else:                 # 24 + 24 after OOV: sampled; the loop with the same budget agrees within MC error
            ref = loop_p_value(s, len(prep.x), n_samples, seed=1)
            assert not exact and abs(p - ref) < 4 * math.sqrt(max(ref, 1 / n_samples) / n_samples) + 2e-4


def test_oov_and_balance_reported():
    test = SeatTest("t", ("a", "zz", "b"), ("c", "d", "e"), ("f",), ("g",), ("X", "Y", "A", "B"))
    vecs = {w: np.ones(3) * (i + 1) for i, w in enumerate("abcdefg")}
    prep = lookup_vectors(test, vecs.get)
    assert isinstance(prep, Prepared)
    assert prep.missing == {"targ1": ["zz"]}
    assert len(prep.x) == len(prep.y) == 2 and prep.balanced_out == ["e"]


def test_holm_alongside_raw():
    assert holm([0.001, 0.02, 0.04]).tolist() == pytest.approx([0.003, 0.04, 0.04])


def test_bad_test_file_names_field(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"targ1": {"category": "X", "examples": ["a"]}, "targ2": {"examples": ["b"]},
                               "attr1": {"examples": ["c"]}, "attr2": {"examples": [3]}}))
    with pytest.raises(DataError, match=r"bad.jsonl.*attr2.examples"):
        load_test(bad)
    bad.write_text('{"targ1": ')
    with pytest.raises(DataError, match="not valid JSON"):
        load_test(bad)
    bad.write_text(json.dumps({"targ1": {"examples": ["a"]}}))
    with pytest.raises(DataError, match="'targ2'"):
        load_test(bad)


def test_wefe_lists_match_sent_bias(data_dir):
    """Independent transcription: WEFE's weat6/7/8 lists equal sent-bias's (ignoring case)."""
    wefe = {t.name: t for t in load_wefe_tests(data_dir / "seat" / "weat_caliskan_wefe" / "WEAT.json")}
    for name in ("weat6", "weat7", "weat8", "weat1"):
        sb = load_test(data_dir / "seat" / f"{name}.jsonl")
        for a, b in zip((sb.x, sb.y, sb.a, sb.b), (wefe[name].x, wefe[name].y, wefe[name].a, wefe[name].b)):
            assert [w.lower() for w in a] == [w.lower() for w in b]


@pytest.mark.parametrize("n", [1, 4, 24, 350])
def test_split_size_probabilities_are_hypergeometric(n):
    """P(a random equal split keeps k items of X) = C(n,k)^2 / C(2n,n), exactly as counted."""
    want = np.array([math.comb(n, k) ** 2 for k in range(n + 1)], dtype=float) / math.comb(2 * n, n)
    np.testing.assert_allclose(ms._split_size_probabilities(n), want, rtol=1e-10, atol=1e-300)
