"""Robust objectives on hand-made loss vectors, with the working written next to each expected value."""
from __future__ import annotations

import math

import pytest
import torch

from biasboard.harness.training.robust import (GroupDRO, GroupDroObjective, TopKAEObjective, TopKObjective, diversity_loss,
                                   erm, group_means, inverse_frequency_weights, latent_group_loss, percentile_mean,
                                   reconstruction_loss, topk_mean)


def test_erm_is_the_mean():
    assert float(erm(torch.tensor([1.0, 2.0, 6.0]))) == pytest.approx(3.0)  # (1 + 2 + 6) / 3


def test_topk_selects_the_k_largest_and_only_they_get_gradient():
    losses = torch.tensor([0.5, 4.0, 1.0, 3.0, 2.0], requires_grad=True)
    loss = topk_mean(losses, 2)
    assert float(loss.detach()) == pytest.approx(3.5)  # top-2 = {4, 3} -> 7 / 2
    loss.backward()
    assert losses.grad.tolist() == [0.0, 0.5, 0.0, 0.5, 0.0]  # d mean / d selected = 1/k
    assert float(topk_mean(torch.tensor([1.0, 2.0]), 6)) == pytest.approx(1.5)  # fewer than k: all of them
    with pytest.raises(ValueError):
        topk_mean(torch.tensor([1.0]), 0)


def test_percentile_mean():
    # 80th percentile of 1..5 (linear): 1 + 0.8 * 4 = 4.2 -> only 5 is at or above it.
    assert float(percentile_mean(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]), 80)) == pytest.approx(5.0)
    # 0th percentile keeps all: mean 3.
    assert float(percentile_mean(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]), 0)) == pytest.approx(3.0)
    assert float(TopKObjective(k=2, alpha=50)(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]),
                                              labels=torch.zeros(5))[0]) == pytest.approx(4.0)  # (3+4+5)/3


def test_group_means():
    means, counts = group_means(torch.tensor([1.0, 3.0, 5.0, 7.0]), torch.tensor([0, 0, 2, 2]), 3)
    assert means.tolist() == [2.0, 0.0, 6.0]  # (1+3)/2, empty, (5+7)/2
    assert counts.tolist() == [2.0, 0.0, 2.0]


def test_group_dro_weights_move_to_the_worst_group():
    dro = GroupDRO(2, eta=1.0)
    loss, info = dro(torch.tensor([1.0, 1.0, 3.0, 3.0]), torch.tensor([0, 0, 1, 1]))
    # q = (0.5 e^1, 0.5 e^3) / sum -> q_0 = 1 / (1 + e^2) = 0.11920
    q0 = 1 / (1 + math.e ** 2)
    assert info["q"] == pytest.approx([q0, 1 - q0], abs=1e-6)
    assert float(loss) == pytest.approx(q0 * 1 + (1 - q0) * 3, abs=1e-6)  # 2.76159
    for _ in range(5):  # repeated: q keeps moving to group 1
        _, info = dro(torch.tensor([1.0, 1.0, 3.0, 3.0]), torch.tensor([0, 0, 1, 1]))
    assert info["q"][1] > 1 - q0 and info["q"][1] > 0.999


def test_group_dro_size_adjustment_steers_q_but_never_leaks_into_the_loss():
    dro = GroupDRO(2, eta=1.0, adjustment=1.0, group_counts=[1, 4])
    losses = torch.tensor([1.0, 3.0], requires_grad=True)
    loss, info = dro(losses, torch.tensor([0, 1]))
    # steer = L + C / sqrt(n) = (1 + 1, 3 + 0.5) = (2, 3.5); q_0 = e^2 / (e^2 + e^3.5) = 1 / (1 + e^1.5) = 0.18243
    q0 = 1 / (1 + math.e ** 1.5)
    assert info["q"] == pytest.approx([q0, 1 - q0], abs=1e-6)
    assert info["group_loss"] == [1.0, 3.0]  # reported group losses unadjusted
    assert float(loss.detach()) == pytest.approx(q0 * 1 + (1 - q0) * 3, abs=1e-6)  # 2.63514, not 2.63514 + adjustment
    loss.backward()
    assert losses.grad.tolist() == pytest.approx([q0, 1 - q0], abs=1e-6)


def test_group_dro_absent_group_keeps_its_weight():
    dro = GroupDRO(3, eta=1.0)
    _, info = dro(torch.tensor([0.0, 0.0]), torch.tensor([0, 1]))  # losses 0: factor e^0 = 1 for everyone
    assert info["q"] == pytest.approx([1 / 3] * 3)
    _, info = dro(torch.tensor([math.log(2.0)]), torch.tensor([0]))  # only group 0: factor e^{ln 2} = 2
    assert info["q"] == pytest.approx([0.5, 0.25, 0.25])  # (2, 1, 1) / 4
    obj = GroupDroObjective(2, eta=1.0, adjustment=0.0, group_counts=[1, 1])
    assert float(obj(torch.tensor([1.0, 3.0]), labels=torch.tensor([0, 1]))[0]) == pytest.approx(
        1 / (1 + math.e ** 2) + 3 * (1 - 1 / (1 + math.e ** 2)), abs=1e-6)
    with pytest.raises(ValueError):
        GroupDRO(2, group_counts=[1, 0])


def test_diversity_loss():
    assert float(diversity_loss(torch.tensor([[0.5, 0.5], [0.5, 0.5]]))) == pytest.approx(0.0)  # uniform
    assert float(diversity_loss(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))) == pytest.approx(0.0)  # mean uniform
    # all mass on group 0 of 4: KL((1,0,0,0) || 1/4) = log 4
    assert float(diversity_loss(torch.tensor([[1.0, 0.0, 0.0, 0.0]]))) == pytest.approx(math.log(4))
    # pbar = (0.75, 0.25): 0.75 log 1.5 + 0.25 log 0.5 = 0.13081
    assert float(diversity_loss(torch.tensor([[1.0, 0.0], [0.5, 0.5]]))) == pytest.approx(
        0.75 * math.log(1.5) + 0.25 * math.log(0.5))


def test_inverse_frequency_and_weighted_reconstruction():
    w = inverse_frequency_weights([0, 0, 0, 1, 2, 2], 4)
    # N = 6, T = 3 present types; counts (3, 1, 2, 0): 6/9, 6/3, 6/6, 0
    assert w.tolist() == pytest.approx([2 / 3, 2.0, 1.0, 0.0])
    assert float(w[torch.tensor([0, 0, 0, 1, 2, 2])].mean()) == pytest.approx(1.0)  # mean weight over sentences 1
    h = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    # per-sentence mean squared error: (4 + 0) / 2 = 2 and 0; weights (3, 1): (6 + 0) / 2 = 3
    assert float(reconstruction_loss(h, torch.zeros(2, 2), torch.tensor([3.0, 1.0]))) == pytest.approx(3.0)
    assert float(reconstruction_loss(h, torch.zeros(2, 2))) == pytest.approx(1.0)


def test_latent_group_loss_is_the_worst_groups_topk_mean():
    losses = torch.tensor([1.0, 2.0, 9.0, 4.0, 5.0], requires_grad=True)
    probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.1, 0.9], [0.2, 0.8]])
    loss, info = latent_group_loss(losses, probs, k=2)
    # group 0 = {1, 2, 9}: top-2 (9 + 2) / 2 = 5.5; group 1 = {4, 5}: 4.5; max 5.5
    assert float(loss.detach()) == pytest.approx(5.5)
    assert info["group_loss"] == pytest.approx([5.5, 4.5]) and info["worst_group"] == 0
    loss.backward()
    assert losses.grad.tolist() == [0.0, 0.5, 0.5, 0.0, 0.0]
    # alpha: the 60th percentile of (1, 2, 4, 5, 9) is 4.4 -> group 0 keeps {9}, group 1 keeps {5}: max(9, 5)
    assert float(latent_group_loss(losses.detach(), probs, alpha=60)[0]) == pytest.approx(9.0)
    # soft with one-hot assignments equals hard
    onehot = torch.nn.functional.one_hot(probs.argmax(1), 2).float()
    assert float(latent_group_loss(losses.detach(), onehot, k=2, soft=True)[0]) == pytest.approx(5.5)


def test_topk_ae_objective_trains_its_autoencoder_and_uses_type_weights():
    torch.manual_seed(0)
    h = torch.randn(16, 8)
    labels = torch.tensor([0] * 12 + [1] * 4)
    weights = inverse_frequency_weights(labels.tolist(), 2)  # 16/(2*12), 16/(2*4) = (0.667, 2)
    obj = TopKAEObjective(8, n_groups=2, k=3, hidden=16, ae_batch=64, beta=1.0, type_weights=weights)
    opt = torch.optim.Adam(obj.parameters(), lr=1e-2)
    losses = torch.rand(16)
    first = None
    for _ in range(60):
        loss, info = obj(losses, labels=labels, hidden=h)
        first = info["rec"] if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert info["rec"] < first  # the autoencoder learns to reconstruct
    probs, recon = obj.ae(h)
    per = ((h - recon) ** 2).mean(-1)
    expected = float((per * weights[labels]).mean().detach())
    assert info["rec"] == pytest.approx(expected, rel=0.05)  # weighted by bias type (last step's weights)
    assert len(obj.buffer.items) == 64  # FIFO capped at ae_batch (60 calls x 16 states)
    with pytest.raises(ValueError):
        obj(losses, labels=labels, hidden=None)
