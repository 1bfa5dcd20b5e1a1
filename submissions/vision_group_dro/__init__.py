"""Group DRO (Sagawa et al. 2020): minimise the worst expected group loss with known group labels.

Online algorithm of the paper: q <- q * exp(eta * (L_g + C / sqrt(n_g))), normalised, and the loss is
sum_g q_g L_g. The size adjustment C / sqrt(n_g) only steers q: unlike the public code it is not added to the
group losses that are logged. Groups absent from a batch have L_g = 0 (they still receive the adjustment, as in
the public code). This is the supervised upper bound of the unsupervised methods: it reads training group labels.
"""
from __future__ import annotations

import torch

from biasboard.harness.registry import register_method
from biasboard.harness.specs import Method
from biasboard.harness.training.vision import LossHook


def group_dro_step(losses: torch.Tensor, groups: torch.Tensor, q: torch.Tensor, *, eta: float,
                   adjustment: float = 0.0, counts: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One Group DRO update: (robust loss, new q, per-group mean losses).

    >>> loss, q, g = group_dro_step(torch.tensor([1., 3., 4.]), torch.tensor([0, 0, 1]), torch.tensor([.5, .5]),
    ...                             eta=1.0)
    >>> [round(v, 4) for v in q.tolist()], round(float(loss), 4)
    ([0.1192, 0.8808], 3.7616)
    """
    n_groups = q.numel()
    onehot = torch.nn.functional.one_hot(groups.long(), n_groups).to(losses.dtype)
    present = onehot.sum(0)
    group_loss = (onehot * losses[:, None]).sum(0) / present.clamp(min=1)
    step = group_loss.detach()
    if adjustment:
        step = step + adjustment / torch.sqrt(counts.to(losses.dtype).clamp(min=1))
    new_q = q * torch.exp(eta * step)
    new_q = new_q / new_q.sum()
    return (new_q * group_loss).sum(), new_q, group_loss


@register_method
class VisionGroupDRO(Method):
    name = "vision_group_dro"
    version = "1.0"
    description = ("Group DRO: exponentiated-gradient weights over (label, attribute) groups; uses training group "
                   "labels (supervised upper bound).")
    families = ("vision",)
    kind = "loss"
    params = {"eta": 0.01, "adjustment": 0.0}
    citation = ("Sagawa, Koh, Hashimoto, Liang (2020), Distributionally Robust Neural Networks for Group Shifts, "
                "ICLR")

    def __init__(self):
        self._q = None
        self._counts = None

    def reset(self, n_groups: int, counts=None) -> None:
        """Start a fit: uniform q over ``n_groups``, training group sizes for the adjustment."""
        self._q = torch.full((n_groups,), 1.0 / n_groups)
        self._counts = None if counts is None else torch.as_tensor(counts, dtype=torch.float32)

    def training_loss(self, losses, batch, ctx):
        """Robust loss of a batch with ``batch["group"]``; q persists across calls until ``reset``."""
        params = self.resolve_params(ctx.params)
        if self._q is None:
            self.reset(int(batch.get("n_groups", int(batch["group"].max()) + 1)))
        if params["adjustment"] and self._counts is None:
            raise ValueError("vision_group_dro: a size adjustment needs training group counts (call reset)")
        loss, self._q, _ = group_dro_step(losses, batch["group"], self._q, eta=params["eta"],
                                          adjustment=params["adjustment"], counts=self._counts)
        return loss

    def fit_vision(self, trainer, ctx):
        self.reset(trainer.data.n_groups, trainer.group_counts())
        result = trainer.fit(LossHook(self, ctx))
        q = ", ".join(f"{n}={v:.3f}" for n, v in zip(trainer.data.group_names(), self._q.tolist()))
        return result, [f"group DRO final q: {q}"]
