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


def _one_step(corpus, *, weighted, detach_ae=False, batch=32, dim=16):
    """One call of the shipped objective (``ae_objective`` with the method defaults) on a fixed batch of ``corpus``'s
    labels: (loss, d loss / d hidden, d loss / d per-sentence losses). Same seeds for both methods."""
    from biasboard.submissions.topk_ae_dro import AE_PARAMS, ae_objective

    torch.manual_seed(0)
    obj = ae_objective(dict(AE_PARAMS, detach_ae=detach_ae), dim, corpus, weighted=weighted)
    gen = torch.Generator().manual_seed(1)
    labels = torch.tensor(corpus.label_ids()[:batch])
    hidden = (torch.randn(batch, dim, generator=gen) + labels[:, None]).requires_grad_(True)
    losses = torch.rand(batch, generator=gen).requires_grad_(True)
    loss, _ = obj(losses, labels=labels, hidden=hidden)
    loss.backward()
    return float(loss.detach()), hidden.grad, losses.grad


def _trained_encoder(corpus, *, weighted, detach_ae=False, steps=20, batch=32, dim=16):
    """A linear 'LM encoder' trained for ``steps`` SGD steps through the objective (per-sentence loss = squared
    distance of its state to 1, so the DRO selection reaches the encoder); its final weights."""
    from biasboard.submissions.topk_ae_dro import AE_PARAMS, ae_objective

    torch.manual_seed(0)
    enc = torch.nn.Linear(8, dim)
    obj = ae_objective(dict(AE_PARAMS, detach_ae=detach_ae), dim, corpus, weighted=weighted)
    opt = torch.optim.SGD([*enc.parameters(), *obj.parameters()], lr=0.05)
    gen = torch.Generator().manual_seed(1)
    ids = torch.tensor(corpus.label_ids())
    for _ in range(steps):
        labels = ids[torch.randint(len(ids), (batch,), generator=gen)]
        h = enc(torch.randn(batch, 8, generator=gen) + labels[:, None].float())
        loss, _ = obj(((h - 1.0) ** 2).mean(-1), labels=labels, hidden=h)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return enc.weight.detach()


def test_robust_debias_differs_from_topk_ae_dro_on_natural_3bias():
    """3bias follows HolisticBias' natural frequencies (1294 / 652 / 1054 of 3000), so the inverse-frequency weights
    are not 1 and RobustDebias' objective differs from TopK-AE DRO's for the same inputs and seed."""
    from biasboard.harness.training.corpora import holistic_split

    corpus = holistic_split("3bias", n_sentences=3000)
    weights = inverse_frequency_weights(corpus.label_ids(), len(corpus.types))
    counts = corpus.counts()
    # w_b = N / (T n_b): 3000 / (3 * 1294) = 0.773, 3000 / (3 * 652) = 1.534, 3000 / (3 * 1054) = 0.949
    assert weights.tolist() == pytest.approx([3000 / (3 * counts[t]) for t in corpus.types])
    assert float(weights.max() - weights.min()) > 0.7
    plain, robust = _one_step(corpus, weighted=False), _one_step(corpus, weighted=True)
    assert plain[0] != pytest.approx(robust[0], abs=1e-4)  # the weighted reconstruction term
    # default (detach_ae false): the AE losses back-propagate, so the LM-side gradient differs at the first step
    assert not torch.allclose(plain[1], robust[1], atol=1e-6)
    assert torch.equal(plain[2], robust[2])  # same AE init -> same first assignment -> same DRO gradient
    # over training the group assignment (hence the DRO update) moves apart too, with and without detaching
    for detach in (False, True):
        a = _trained_encoder(corpus, weighted=False, detach_ae=detach)
        b = _trained_encoder(corpus, weighted=True, detach_ae=detach)
        assert float((a - b).abs().max()) > 1e-3


def test_balanced_labels_give_unit_weights_and_the_old_identity():
    """Equally frequent bias types: every weight is exactly 1, and the two objectives agree to the bit."""
    from biasboard.harness.training.corpora import LabelledCorpus

    corpus = LabelledCorpus(tuple(f"s{i}" for i in range(60)), tuple(["a", "b", "c"] * 20), "balanced")
    weights = inverse_frequency_weights(corpus.label_ids(), 3)
    assert weights.tolist() == [1.0, 1.0, 1.0]
    plain, robust = _one_step(corpus, weighted=False), _one_step(corpus, weighted=True)
    assert plain[0] == robust[0] and torch.equal(plain[1], robust[1]) and torch.equal(plain[2], robust[2])
    assert torch.equal(_trained_encoder(corpus, weighted=False), _trained_encoder(corpus, weighted=True))


def test_detach_ae_decides_whether_the_autoencoder_pushes_the_encoder():
    """Default: L_rec and L_div reach the hidden states; ``detach_ae`` cuts them off. Older FIFO entries are stored
    detached either way, so a second step does not back-propagate into the first step's freed graph."""
    from biasboard.harness.training.corpora import LabelledCorpus

    corpus = LabelledCorpus(tuple(f"s{i}" for i in range(40)), tuple(["a"] * 30 + ["b"] * 10), "skewed")
    _, grad_h, _ = _one_step(corpus, weighted=True)
    assert grad_h is not None and float(grad_h.abs().max()) > 0
    _, grad_h, grad_l = _one_step(corpus, weighted=True, detach_ae=True)
    assert grad_h is None and float(grad_l.abs().sum()) > 0  # only the DRO term, through the per-sentence losses
    obj = TopKAEObjective(4, n_groups=2, k=2, hidden=8, ae_batch=6)
    enc = torch.nn.Linear(3, 4)
    for _ in range(3):  # batch 4 into a FIFO of 6: the second step mixes stored (detached) and live states
        loss, _ = obj(torch.rand(4), labels=torch.tensor([0, 0, 1, 1]), hidden=enc(torch.randn(4, 3)))
        loss.backward()
    assert float(enc.weight.grad.abs().max()) > 0
    assert obj.beta == 0.1 and obj.detach is False  # the seed's defaults
