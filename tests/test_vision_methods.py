"""Loss pieces of the vision methods on small tensors, each with a hand-worked value or an independent check."""
import math

import numpy as np
import pytest
import torch
from scipy.stats import entropy

from biasboard.harness.registry import METHODS
from biasboard.harness.specs import RunContext
from biasboard.submissions.debiasify import Debiasify, combine
from biasboard.submissions.debiasify.losses import (choose_clusters, cluster_mmd, kl_deep_shallow, median_bandwidth,
                                          rbf_mmd2)
from biasboard.submissions.jtt import upsample_errors
from biasboard.submissions.vision_group_dro import VisionGroupDRO, group_dro_step


def test_methods_registered_for_vision_only():
    for name in ("vision_erm", "vision_group_dro", "jtt", "debiasify"):
        cls = METHODS.get(name)
        assert cls.families == ("vision",) and hasattr(cls, "fit_vision")


def test_erm_loss_is_the_weighted_mean():
    erm = METHODS.get("vision_erm")()
    losses = torch.tensor([1.0, 2.0, 6.0])
    assert float(erm.training_loss(losses, {}, RunContext())) == pytest.approx(3.0)      # (1 + 2 + 6) / 3
    w = torch.tensor([1.0, 1.0, 2.0])
    assert float(erm.training_loss(losses, {"weight": w}, RunContext())) == pytest.approx(3.75)  # (1+2+12)/4


def test_group_dro_step_hand_worked():
    # groups 0: losses 1, 3 -> L0 = 2; group 1: loss 4 -> L1 = 4; eta 1, q0 = (.5, .5)
    # q ∝ (.5 e^2, .5 e^4) -> q1 = 1 / (1 + e^2) = 0.1192, q2 = 0.8808; loss = 0.1192*2 + 0.8808*4 = 3.7616
    loss, q, gl = group_dro_step(torch.tensor([1.0, 3.0, 4.0]), torch.tensor([0, 0, 1]), torch.tensor([0.5, 0.5]),
                                 eta=1.0)
    assert gl.tolist() == [2.0, 4.0]
    assert q[0].item() == pytest.approx(1 / (1 + math.e ** 2), abs=1e-6)
    assert loss.item() == pytest.approx(2 / (1 + math.e ** 2) + 4 * math.e ** 2 / (1 + math.e ** 2), abs=1e-5)


def test_group_dro_adjustment_steers_q_but_not_group_losses():
    # adjustment C = 1 with sizes (1, 4): steps 2 + 1/1 = 3 and 4 + 1/2 = 4.5; q1 = 1 / (1 + e^1.5)
    loss, q, gl = group_dro_step(torch.tensor([1.0, 3.0, 4.0]), torch.tensor([0, 0, 1]), torch.tensor([0.5, 0.5]),
                                 eta=1.0, adjustment=1.0, counts=torch.tensor([1.0, 4.0]))
    assert gl.tolist() == [2.0, 4.0]
    assert q[0].item() == pytest.approx(1 / (1 + math.e ** 1.5), abs=1e-6)


def test_group_dro_hook_keeps_q_across_batches():
    m = VisionGroupDRO()
    ctx = RunContext(params={"eta": 1.0})
    m.reset(2)
    batch = {"group": torch.tensor([0, 1])}
    m.training_loss(torch.tensor([0.0, 1.0]), batch, ctx)   # q ∝ (1, e)
    m.training_loss(torch.tensor([0.0, 1.0]), batch, ctx)   # q ∝ (1, e^2)
    assert m._q[1].item() == pytest.approx(math.e ** 2 / (1 + math.e ** 2), abs=1e-6)


def test_jtt_upsampling_and_transform():
    assert upsample_errors(np.arange(4), np.array([1, 0, 0, 1], bool), 3).tolist() == [0, 1, 2, 3, 0, 0, 3, 3]
    assert upsample_errors(np.arange(3), np.zeros(3, bool), 50).tolist() == [0, 1, 2]
    jtt = METHODS.get("jtt")()
    out = jtt.transform_data({"indices": np.arange(3), "errors": np.array([0, 1, 0], bool)},
                             RunContext(params={"lambda_up": 4}))
    assert np.bincount(out["indices"]).tolist() == [1, 4, 1]
    with pytest.raises(ValueError):
        upsample_errors(np.arange(3), np.ones(3, bool), 0)


def test_rbf_mmd_hand_worked_and_against_loops():
    # x = {0}, y = {1}, sigma 1: k(x,x) = k(y,y) = 1, k(x,y) = exp(-1/2) -> 2 - 2 exp(-0.5) = 0.786939
    assert rbf_mmd2(torch.tensor([[0.0]]), torch.tensor([[1.0]]), 1.0).item() == pytest.approx(0.786939, abs=1e-6)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 3)), rng.normal(1.0, size=(7, 3))

    def k(u, v, s=1.5):
        return math.exp(-np.sum((u - v) ** 2) / (2 * s * s))

    ref = (sum(k(a, b) for a in x for b in x) / 25 + sum(k(a, b) for a in y for b in y) / 49
           - 2 * sum(k(a, b) for a in x for b in y) / 35)
    got = rbf_mmd2(torch.tensor(x), torch.tensor(y), 1.5).item()
    assert got == pytest.approx(ref, rel=1e-6)
    assert rbf_mmd2(torch.tensor(x), torch.tensor(x), 1.5).item() == pytest.approx(0.0, abs=1e-9)


def test_median_bandwidth():
    # points 0, 1, 3: pairwise distances 1, 3, 2 -> median 2
    assert median_bandwidth(torch.tensor([[0.0], [1.0], [3.0]])).item() == pytest.approx(2.0)


def test_cluster_mmd_sets_and_stop_gradient():
    # class 0 has clusters 0 and 1, class 1 has cluster 0: three (class, cluster) sets
    shallow = torch.tensor([[0.0], [0.2], [5.0], [1.0]], requires_grad=True)
    deep = torch.tensor([[0.1], [0.3], [4.0], [1.1]], requires_grad=True)
    y, cl = torch.tensor([0, 0, 0, 1]), torch.tensor([0, 0, 1, 0])
    got = cluster_mmd(shallow, deep, y, cl, sigma=1.0, detach_deep=True)
    want = (rbf_mmd2(shallow[:2], deep[:3], 1.0) + rbf_mmd2(shallow[2:3], deep[:3], 1.0)
            + rbf_mmd2(shallow[3:], deep[3:], 1.0)) / 3
    assert got.item() == pytest.approx(want.item())
    got.backward()
    assert deep.grad is None and shallow.grad is not None
    deep2 = deep.detach().clone().requires_grad_(True)
    cluster_mmd(shallow, deep2, y, cl, sigma=1.0, detach_deep=False).backward()
    assert deep2.grad is not None and deep2.grad.abs().sum() > 0


def test_kl_is_deep_to_shallow_against_scipy():
    deep, shallow = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([[0.0, 1.0, 0.5]])
    pd, ps = torch.softmax(deep, 1)[0].numpy(), torch.softmax(shallow, 1)[0].numpy()
    assert kl_deep_shallow(deep, shallow).item() == pytest.approx(entropy(pd, ps), rel=1e-5)   # KL(deep || shallow)
    assert kl_deep_shallow(deep, shallow).item() != pytest.approx(entropy(ps, pd), rel=1e-3)


def test_alpha_placement_paper_vs_code():
    pieces = {"ce": torch.tensor(1.0), "mmd": torch.tensor(2.0), "kl": torch.tensor(4.0)}
    assert combine(pieces, alpha=0.1, alpha_on="code").item() == pytest.approx(1 + 2 + 0.4)    # CE + MMD + a*KL
    assert combine(pieces, alpha=0.1, alpha_on="paper").item() == pytest.approx(1 + 0.2 + 4)   # CE + a*MMD + KL
    assert combine({"ce": torch.tensor(1.5)}, alpha=0.1, alpha_on="code").item() == 1.5         # warm-up: CE only
    m = Debiasify()
    assert m.training_loss(pieces, {}, RunContext(params={"alpha_on": "paper", "alpha": 0.5})).item() == \
        pytest.approx(1 + 1 + 4)
    with pytest.raises(ValueError):
        combine(pieces, alpha=0.1, alpha_on="elsewhere")


def test_choose_clusters_smallest_k_under_gamma():
    rng = np.random.default_rng(0)
    # two tight blobs 10 apart: K=1 variance ~ 25, K=2 variance ~ 2 * 0.01 -> gamma 1 picks K = 2
    x = np.concatenate([rng.normal(0, 0.1, (30, 2)), rng.normal(10, 0.1, (10, 2))])
    labels = choose_clusters(x, gamma=1.0, max_k=20, pca_dim=50)
    assert len(set(labels.tolist())) == 2 and len(set(labels[:30].tolist())) == 1
    assert len(set(choose_clusters(x, gamma=100.0).tolist())) == 1          # already under gamma at K = 1
    assert len(set(choose_clusters(x, gamma=1e-9, max_k=4).tolist())) == 4  # never under gamma: K = max_k


def test_debiasify_stages():
    m = Debiasify()
    assert m.shallow_stages(4, 1, "single") == (1,)
    assert m.shallow_stages(4, 1, "multi") == (0, 1, 2)
    with pytest.raises(ValueError):
        m.shallow_stages(4, 1, "all")
