"""Robust objectives that turn per-sentence language-modelling losses into the scalar a fine-tuning step minimises.

Pure tensor functions (testable on hand-made loss vectors) plus two small stateful pieces: the online group weights
of Group DRO and the latent-group autoencoder of TopK-AE DRO / RobustDebias. ``training.lm`` calls an
``Objective``; the method adapters in ``submissions/`` only pick one and its parameters.

- ``erm``: the mean.
- ``GroupDRO`` (Sagawa et al. 2020): q <- q * exp(eta * (L_g + C / sqrt(n_g))), normalised; loss = sum_g q_g L_g.
  The size adjustment C / sqrt(n_g) steers q only: it never enters the returned loss or the reported group losses
  (the public group_DRO code adds it in place, so it leaks into both).
- ``topk_mean``: mean of the k largest losses (TopK DRO); ``percentile_mean``: mean of the losses at or above the
  alpha-th percentile (RobustDebias' alpha-percentile option).
- ``GroupAutoencoder`` + ``latent_group_loss``: latent groups from an autoencoder on pooled hidden states; the loss is
  the maximum over latent groups of the mean of that group's top-k losses (TopK-AE DRO); RobustDebias weights each
  sentence's reconstruction error by the inverse frequency of its bias type (``inverse_frequency_weights``). On a
  corpus whose bias types are equally frequent every weight is exactly 1 and the two objectives coincide.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import nn

from biasboard.harness.training.objectives import ErmObjective, Objective, erm

__all__ = ["erm", "topk_mean", "percentile_mean", "group_means", "GroupDRO", "GroupAutoencoder",
           "diversity_loss", "reconstruction_loss", "inverse_frequency_weights", "latent_group_loss", "group_sizes",
           "Objective", "ErmObjective", "GroupDroObjective", "TopKObjective", "TopKAEObjective"]


def topk_mean(losses: torch.Tensor, k: int) -> torch.Tensor:
    """Mean of the ``k`` largest losses (all of them when there are fewer than ``k``).

    >>> float(topk_mean(torch.tensor([0.5, 4.0, 1.0, 3.0]), 2))   # (4 + 3) / 2
    3.5
    """
    if k < 1:
        raise ValueError(f"top-k needs k >= 1, got {k}")
    return torch.topk(losses, min(int(k), losses.numel())).values.mean()


def percentile_mean(losses: torch.Tensor, alpha: float) -> torch.Tensor:
    """Mean of the losses at or above the ``alpha``-th percentile (0-100, linear interpolation) of ``losses``.

    >>> float(percentile_mean(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]), 50))   # threshold 3 -> (3 + 4 + 5) / 3
    4.0
    """
    if not 0 <= alpha <= 100:
        raise ValueError(f"alpha is a percentile in [0, 100], got {alpha}")
    threshold = torch.quantile(losses.detach().float(), alpha / 100.0)
    keep = losses.detach() >= threshold
    return losses[keep].mean()


def group_means(losses: torch.Tensor, groups: torch.Tensor, n_groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-group mean loss and member count (a group without members has mean 0 and count 0).

    >>> m, c = group_means(torch.tensor([1.0, 3.0, 5.0]), torch.tensor([0, 0, 2]), 3)
    >>> m.tolist(), c.tolist()
    ([2.0, 0.0, 5.0], [2.0, 0.0, 1.0])
    """
    onehot = nn.functional.one_hot(groups.long(), n_groups).to(losses.dtype)
    counts = onehot.sum(0)
    sums = onehot.t() @ losses
    return sums / counts.clamp_min(1.0), counts


class GroupDRO:
    """Online Group DRO weights over known groups (Sagawa et al. 2020, Algorithm 1).

    Each step: present groups get q_g <- q_g * exp(eta * (L_g + C / sqrt(n_g))), then q is renormalised; the loss is
    sum_g q_g L_g with the *unadjusted* L_g. Groups absent from a batch keep their weight (factor 1); the public code
    instead multiplies them by exp(eta * adjustment), which only matters with C > 0.
    """

    def __init__(self, n_groups: int, *, eta: float = 0.01, adjustment: float = 0.0,
                 group_counts: Sequence[float] | None = None):
        if n_groups < 1:
            raise ValueError("Group DRO needs at least one group")
        self.n_groups, self.eta, self.adjustment = int(n_groups), float(eta), float(adjustment)
        counts = torch.ones(n_groups) if group_counts is None else torch.as_tensor(group_counts, dtype=torch.float32)
        if counts.numel() != n_groups or bool((counts <= 0).any()):
            raise ValueError(f"group_counts must hold {n_groups} positive training-set sizes, got {counts.tolist()}")
        self.size_term = self.adjustment / counts.sqrt()
        self.q = torch.full((n_groups,), 1.0 / n_groups)

    def __call__(self, losses: torch.Tensor, groups: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        means, counts = group_means(losses, groups, self.n_groups)
        present = counts > 0
        steer = means.detach().float() + self.size_term
        factor = torch.where(present, torch.exp(self.eta * steer), torch.ones_like(steer))
        q = self.q * factor
        self.q = q / q.sum()
        loss = (self.q.to(means.dtype) * means).sum()
        return loss, {"group_loss": means.detach().tolist(), "q": self.q.tolist()}


class GroupAutoencoder(nn.Module):
    """Pooled hidden state h -> ``hidden`` -> G group logits (the bottleneck) -> ``hidden`` -> reconstruction of h.

    The decoder reads the soft assignment softmax(logits), so reconstruction forces the groups to carry information
    about h; the diversity loss keeps all G groups in use.
    """

    def __init__(self, dim: int, *, n_groups: int, hidden: int = 128):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, n_groups))
        self.decoder = nn.Sequential(nn.Linear(n_groups, hidden), nn.ReLU(), nn.Linear(hidden, dim))

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(soft assignment [n, G], reconstruction [n, dim])."""
        probs = torch.softmax(self.encoder(h), dim=-1)
        return probs, self.decoder(probs)


def diversity_loss(probs: torch.Tensor) -> torch.Tensor:
    """KL(mean assignment || uniform) = sum_g pbar_g log(G pbar_g); 0 when groups are used equally.

    >>> round(float(diversity_loss(torch.tensor([[1.0, 0.0], [1.0, 0.0]]))), 4)   # pbar=(1,0): log 2
    0.6931
    """
    pbar = probs.mean(0)
    g = probs.shape[-1]
    return torch.sum(pbar * torch.log((pbar * g).clamp_min(1e-12)))


def reconstruction_loss(h: torch.Tensor, recon: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """mean_i w_i * mean_d (h_id - r_id)^2 (w = 1 when not given). Mean over dimensions keeps the scale independent
    of the hidden size; the paper's squared norm differs by the constant factor dim.

    >>> float(reconstruction_loss(torch.tensor([[1.0, 1.0], [0.0, 0.0]]), torch.zeros(2, 2), torch.tensor([2.0, 1.0])))
    1.0
    """
    per = ((h - recon) ** 2).mean(-1)
    if weights is not None:
        per = per * weights.to(per.dtype)
    return per.mean()


def inverse_frequency_weights(labels: Sequence[int], n_types: int) -> torch.Tensor:
    """Weight per bias type, w_b = N / (T * n_b) over the labels given (mean weight over sentences 1); types that
    never occur get weight 0.

    >>> [round(w, 4) for w in inverse_frequency_weights([0, 0, 0, 1], 2).tolist()]   # N=4, T=2: 4/(2*3), 4/(2*1)
    [0.6667, 2.0]
    """
    counts = torch.bincount(torch.as_tensor(list(labels), dtype=torch.long), minlength=n_types).float()
    present = int((counts > 0).sum())
    return torch.where(counts > 0, len(labels) / (present * counts.clamp_min(1.0)), torch.zeros_like(counts))


def latent_group_loss(losses: torch.Tensor, probs: torch.Tensor, *, k: int | None = 6, alpha: float | None = None,
                      soft: bool = False) -> tuple[torch.Tensor, dict[str, Any]]:
    """max over latent groups g of L_g, where L_g is the mean of the top-k losses among g's members (all of them if
    fewer than k), or with ``alpha`` the mean of the members at or above the alpha-th percentile of the batch.

    Hard assignment (default): members of g are the sentences whose argmax group is g. ``soft=True``: every sentence
    is a member of every group with weight p_ig, L_g = weighted mean of the k largest p_ig * l_i.
    """
    n, g = probs.shape
    if soft:
        out = []
        for j in range(g):
            w = probs[:, j].detach()
            idx = torch.topk(w * losses.detach(), min(k or n, n)).indices
            out.append((w[idx] * losses[idx]).sum() / w[idx].sum().clamp_min(1e-12))
        group_loss = torch.stack(out)
    else:
        assign = probs.detach().argmax(-1)
        threshold = torch.quantile(losses.detach().float(), alpha / 100.0) if alpha is not None else None
        out, ids = [], []
        for j in range(g):
            member = losses[assign == j]
            if member.numel() == 0:
                continue
            if threshold is not None:
                kept = member[member.detach() >= threshold]
                out.append(kept.mean() if kept.numel() else member.max())
            else:
                out.append(topk_mean(member, k or member.numel()))
            ids.append(j)
        group_loss = torch.stack(out)
    worst = int(group_loss.detach().argmax())
    return group_loss.max(), {"group_loss": group_loss.detach().tolist(), "worst_group": worst}


class GroupDroObjective(Objective):
    """Group DRO over the corpus' bias types (known groups)."""

    def __init__(self, n_groups: int, *, eta: float, adjustment: float, group_counts: Sequence[float]):
        super().__init__()
        self.dro = GroupDRO(n_groups, eta=eta, adjustment=adjustment, group_counts=group_counts)

    def forward(self, losses, *, labels, hidden=None):
        return self.dro(losses, labels)


class TopKObjective(Objective):
    """TopK DRO: mean of the k largest losses of the batch (or of those above the alpha-th percentile)."""

    def __init__(self, *, k: int, alpha: float | None = None):
        super().__init__()
        self.k, self.alpha = int(k), alpha

    def forward(self, losses, *, labels, hidden=None):
        if self.alpha is not None:
            return percentile_mean(losses, self.alpha), {}
        return topk_mean(losses, self.k), {}


@dataclass
class _Buffer:
    """The last ``size`` (pooled state, bias type) pairs: the autoencoder's own batch, independent of the LM batch."""

    size: int
    items: deque = field(default_factory=deque)

    def extend(self, hidden: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for h, b in zip(hidden, labels):
            self.items.append((h, b))
            while len(self.items) > self.size:
                self.items.popleft()
        hs, bs = zip(*self.items)
        return torch.stack(hs), torch.stack(bs)


class TopKAEObjective(Objective):
    """TopK-AE DRO, and RobustDebias when ``type_weights`` (inverse bias-type frequencies) are given.

    Total = max_g L_g (``latent_group_loss``) + L_rec + beta * L_div. The autoencoder trains on a FIFO of the last
    ``ae_batch`` pooled states and assigns the current batch to groups with its encoder. By default (``detach``
    False, the seed's figure) the current batch's states enter L_rec and L_div with their graph, so both losses also
    back-propagate into the LM encoder; older FIFO entries are always stored detached (their graphs are gone).
    ``detach=True`` feeds the autoencoder detached states only: it never pushes the LM, and the weights of
    RobustDebias then reach the LM only through the learned group assignment.
    """

    needs_hidden = True

    def __init__(self, dim: int, *, n_groups: int, k: int = 6, alpha: float | None = None, hidden: int = 128,
                 ae_batch: int = 64, beta: float = 0.1, soft: bool = False,
                 type_weights: torch.Tensor | None = None, detach: bool = False):
        super().__init__()
        self.ae = GroupAutoencoder(dim, n_groups=n_groups, hidden=hidden)
        self.k, self.alpha, self.beta, self.soft = int(k), alpha, float(beta), bool(soft)
        self.type_weights, self.detach = type_weights, bool(detach)
        self.buffer = _Buffer(int(ae_batch))

    def forward(self, losses, *, labels, hidden=None):
        if hidden is None:
            raise ValueError("TopK-AE DRO needs the pooled hidden states")
        h = hidden.float()
        if self.detach:
            h = h.detach()
        probs, _ = self.ae(h)
        dro, info = latent_group_loss(losses, probs, k=self.k, alpha=self.alpha, soft=self.soft)
        hb, bb = self.buffer.extend(h.detach(), labels.detach())
        m = min(len(h), len(hb))  # the FIFO's last m rows are the current batch's last m states: use them live
        hb = torch.cat([hb[: len(hb) - m], h[len(h) - m:]])
        pb, rb = self.ae(hb)
        weights = None if self.type_weights is None else self.type_weights[bb.long()]
        rec = reconstruction_loss(hb, rb, weights)
        div = diversity_loss(pb)
        info.update(rec=float(rec.detach()), div=float(div.detach()), dro=float(dro.detach()))
        return dro + rec + self.beta * div, info


def group_sizes(labels: Sequence[int], n_types: int) -> list[float]:
    """Training-set size of each bias type (for Group DRO's C / sqrt(n_g))."""
    counts = torch.bincount(torch.as_tensor(list(labels), dtype=torch.long), minlength=n_types)
    return [max(float(c), 1.0) for c in counts]
