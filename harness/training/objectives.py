"""The one objective type: what a method plugs into a training step, for every family.

``Objective.loss(out, batch, epoch)`` turns the model outputs of one batch (``out``: per-example ``losses`` and,
by family, ``features`` / ``hidden`` / ``logits``) and the batch itself (labels, groups, row indices) into the
scalar that is minimised plus a record of loss pieces. Objectives are ``nn.Module``s so trainable parts (the
latent-group autoencoder) reach the optimiser; ``start_epoch`` lets an objective re-derive state between passes.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Objective(nn.Module):
    """Per-example losses (and what else the family computes) -> (loss, record).

    Sentence-loss objectives (``robust``) implement ``forward(losses, labels=, hidden=)``, which the default
    ``loss`` calls; objectives that need the raw model outputs (vision) override ``loss``.
    """

    needs_hidden = False
    """lm: the step must also return pooled hidden states (``out["hidden"]``)."""
    shallow_stages: tuple[int, ...] = ()
    """vision: early stages that get their own branch and head."""

    def start_epoch(self, epoch: int, trainer: Any, model: nn.Module, indices: Any) -> None:
        return None

    def loss(self, out: dict[str, Any], batch: dict[str, Any], epoch: int) -> tuple[torch.Tensor, dict[str, Any]]:
        return self(out["losses"], labels=batch.get("labels"), hidden=out.get("hidden"))

    def forward(self, losses: torch.Tensor, *, labels: torch.Tensor | None = None, hidden: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, dict[str, Any]]:  # pragma: no cover - abstract
        raise NotImplementedError


def erm(losses: torch.Tensor) -> torch.Tensor:
    """Empirical risk: the mean per-example loss.

    >>> float(erm(torch.tensor([1.0, 2.0, 6.0])))
    3.0
    """
    return losses.mean()


class ErmObjective(Objective):
    """The mean of the per-example losses (downstream default, LM ERM, Bias Vector)."""

    def forward(self, losses, *, labels=None, hidden=None):
        return erm(losses), {}


class MethodLoss(Objective):
    """A method's ``training_loss(losses, batch, ctx)`` hook as an objective: per-example losses in, one scalar out
    (``batch`` carries what the hook may read: labels, groups, row indices, features)."""

    def __init__(self, method, ctx):
        super().__init__()
        self.method, self.ctx = method, ctx

    def loss(self, out, batch, epoch):
        return self.method.training_loss(out["losses"], batch, self.ctx), {}
