"""Group metrics on hand-made predictions (working written next to each expected value) and against an
independent plain-numpy reference."""
import numpy as np
import pytest

from biasboard.tasks import worst_group_metrics as gm

# 10 examples, groups 0..3 (= y * 2 + a):
#   group 0: 4 examples, 3 right   -> 75%
#   group 1: 1 example,  0 right   ->  0%
#   group 2: 2 examples, 2 right   -> 100%
#   group 3: 3 examples, 2 right   -> 66.67%
Y = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
A = np.array([0, 0, 0, 0, 1, 0, 0, 1, 1, 1])
G = Y * 2 + A
P = np.array([0, 0, 0, 1, 1, 1, 1, 1, 0, 1])


def test_hand_worked_group_accuracies():
    accs = gm.group_accuracies(Y, P, G)
    assert accs == pytest.approx({0: 75.0, 1: 0.0, 2: 100.0, 3: 200 / 3})
    assert gm.worst_group_accuracy(Y, P, G) == 0.0                       # min(75, 0, 100, 66.7)
    assert gm.mean_group_accuracy(Y, P, G) == pytest.approx(60.416667)   # (75 + 0 + 100 + 66.667) / 4
    assert gm.average_accuracy(Y, P) == 70.0                             # 7 of 10 right
    # training frequencies 50, 5, 5, 40 (a Waterbirds-like skew):
    # (50*75 + 5*0 + 5*100 + 40*66.667) / 100 = (3750 + 0 + 500 + 2666.67) / 100 = 69.1667
    w = {0: 50, 1: 5, 2: 5, 3: 40}
    assert gm.weighted_accuracy(Y, P, G, w) == pytest.approx(69.166667)


def test_empty_groups_are_left_out():
    # group 3 absent from the evaluation set: worst is over groups 0..2 only; weights renormalise over 0..2
    keep = G != 3
    assert gm.worst_group_accuracy(Y[keep], P[keep], G[keep]) == 0.0
    assert gm.weighted_accuracy(Y[keep], P[keep], G[keep], {0: 1, 1: 1, 2: 2, 3: 100}) == pytest.approx(
        (75 + 0 + 2 * 100) / 4)


def _reference(y, p, g):
    """Independent loops: dict group -> accuracy %."""
    out = {}
    for grp in sorted(set(g.tolist())):
        idx = [i for i in range(len(y)) if g[i] == grp]
        out[grp] = 100.0 * sum(y[i] == p[i] for i in idx) / len(idx)
    return out


def test_against_reference_on_random_predictions():
    rng = np.random.default_rng(3)
    y, a = rng.integers(0, 2, 500), rng.integers(0, 2, 500)
    p = np.where(rng.random(500) < 0.8, y, 1 - y)
    g = y * 2 + a
    ref = _reference(y, p, g)
    assert gm.group_accuracies(y, p, g) == pytest.approx(ref)
    assert gm.worst_group_accuracy(y, p, g) == pytest.approx(min(ref.values()))
    assert gm.mean_group_accuracy(y, p, g) == pytest.approx(np.mean(list(ref.values())))


@pytest.mark.parametrize("kind", ["worst", "mean", "weighted"])
def test_vectorised_statistic_matches_functions_and_ci_brackets_value(kind):
    rng = np.random.default_rng(0)
    y, a = rng.integers(0, 2, 400), rng.integers(0, 2, 400)
    p = np.where(rng.random(400) < 0.75, y, 1 - y)
    g = y * 2 + a
    correct = (p == y).astype(float)
    weights = np.array([10.0, 1.0, 1.0, 10.0])
    stat = gm.group_statistic(kind, 4, weights)
    direct = {"worst": gm.worst_group_accuracy(y, p, g), "mean": gm.mean_group_accuracy(y, p, g),
              "weighted": gm.weighted_accuracy(y, p, g, dict(enumerate(weights)))}[kind]
    assert float(stat(correct, g)) == pytest.approx(direct)
    # the statistic also works on a batch of resamples (leading axis), as scipy's vectorised bootstrap calls it
    batch = stat(np.stack([correct, correct]), np.stack([g, g]))
    assert batch.shape == (2,) and batch[0] == pytest.approx(direct)
    lo, hi = gm.group_ci(kind, correct, g, 4, weights=weights, n_resamples=300, seed=1)
    assert lo < direct < hi and hi - lo < 20


def test_weights_must_cover_a_present_group():
    with pytest.raises(ValueError, match="zero mass"):
        gm.weighted_accuracy(Y, P, G, {7: 1.0})
