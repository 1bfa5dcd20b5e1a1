"""The one training loop, shared by downstream fine-tuning, LM fine-tuning and vision fits.

The loop owns what every family does the same way: seeding the global torch generator, passes over shuffled rows in
fixed-size batches, zero-grad / backward / clip / optimiser / scheduler, a step budget, stopping when the family
says so, and keeping the best weights under a selection rule. A family plugs in a ``Step``: the row order of a
pass, the loss of a batch, and what to record (or evaluate) after a step and after a pass.
"""
from __future__ import annotations

import itertools
import math
from typing import Any, Iterable, Protocol, Sequence

import numpy as np
import torch
from torch import nn

from biasboard.harness.training.config import TrainConfig


class Step(Protocol):
    """What a family plugs into ``train_loop``."""

    def order(self, epoch: int) -> Sequence[int]:
        """The training rows of pass ``epoch`` in the order they are batched."""

    def start_epoch(self, epoch: int, model: nn.Module) -> None:
        """Before a pass (e.g. re-cluster features); the model is in eval mode afterwards only if this sets it."""

    def loss(self, model: nn.Module, rows: Sequence[int], epoch: int) -> tuple[torch.Tensor, Any]:
        """(scalar loss to minimise, what ``after_step`` should record) for one batch of rows."""

    def after_step(self, *, epoch: int, index: int, step: int, rows: Sequence[int], loss: torch.Tensor,
                   record: Any, model: nn.Module) -> bool:
        """Record / evaluate after optimiser step number ``step`` (batch ``index`` of the pass); True stops."""

    def after_epoch(self, epoch: int, model: nn.Module) -> None:
        """Record / evaluate after a complete pass."""


class StepHooks:
    """No-op defaults of the optional ``Step`` methods."""

    def start_epoch(self, epoch, model) -> None:
        return None

    def after_step(self, **_) -> bool:
        return False

    def after_epoch(self, epoch, model) -> None:
        return None


def batches_per_pass(n: int, batch_size: int, *, drop_last: bool) -> int:
    """Batches in one pass over ``n`` rows: all of them (last one short), or only full ones (at least one)."""
    return max(1, n // batch_size) if drop_last else math.ceil(n / batch_size)


def torch_passes(seed: int) -> "callable":
    """Row order of each pass from a torch generator seeded by ``seed`` (text families)."""
    gen = torch.Generator().manual_seed(seed)
    return lambda n: torch.randperm(n, generator=gen).tolist()


def numpy_passes(seed: int) -> "callable":
    """Row order of each pass from a numpy generator seeded by ``seed`` (vision fits)."""
    gen = np.random.default_rng(seed)
    return lambda indices: indices[gen.permutation(len(indices))]


def adamw(named: Iterable[tuple[str, nn.Parameter]], config: TrainConfig, aux: Sequence[nn.Parameter] = ()
          ) -> tuple[torch.optim.Optimizer, list[dict]]:
    """AdamW with weight decay on matrices only (not biases or norms); ``aux`` parameters (an objective's own) get
    ``config.aux_lr`` and no decay. Returns (optimiser, its parameter groups)."""
    named = list(named)
    decay = [p for n, p in named if p.ndim >= 2 and "norm" not in n.lower()]
    no_decay = [p for n, p in named if not (p.ndim >= 2 and "norm" not in n.lower())]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if aux:
        groups.append({"params": list(aux), "weight_decay": 0.0, "lr": config.aux_lr})
    return torch.optim.AdamW(groups, lr=config.lr), groups


def plain_optimizer(params: Sequence[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    """Adam, or SGD with momentum 0.9, with coupled weight decay (the vision recipes)."""
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)


def linear_warmup(optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int):
    """Linear warm-up over ``warmup_ratio`` of the steps, then linear decay to 0."""
    from transformers import get_linear_schedule_with_warmup

    return get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps), total_steps)


class BestWeights:
    """The weights at the best score seen so far (``min``: lower is better by more than ``tol``; ``max``: higher)."""

    def __init__(self, mode: str, tol: float = 0.0):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be min or max, got {mode!r}")
        self.mode, self.tol = mode, tol
        self.score = math.inf if mode == "min" else -math.inf
        self.state: dict[str, torch.Tensor] | None = None

    def offer(self, score: float, model: nn.Module) -> bool:
        """Keep a copy of the model's weights when ``score`` improves on the best; True when it did."""
        better = score < self.score - self.tol if self.mode == "min" else score > self.score
        if better:
            self.score = score
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return better

    def restore(self, model: nn.Module) -> None:
        """Load the best weights back (no-op when nothing was offered)."""
        if self.state is not None:
            model.load_state_dict(self.state)


def train_loop(model: nn.Module, step: Step, config: TrainConfig, *, optimizer: torch.optim.Optimizer,
               batches: int, epochs: int | None = None, max_steps: int | None = None, scheduler=None,
               clip: Sequence[nn.Parameter] | None = None, seed: int | None = None) -> int:
    """Run passes of ``batches`` batches of ``config.batch_size`` rows until ``epochs`` passes, ``max_steps``
    optimiser steps, or the step asks to stop; returns the number of optimiser steps taken.

    ``seed`` (when given) seeds torch's global generator first (dropout, masking drawn from it); ``clip`` are the
    parameters whose gradient norm is clipped to ``config.max_grad_norm``. The model is left in eval mode.
    """
    if seed is not None:
        torch.manual_seed(seed)
    bs, taken = config.batch_size, 0
    for epoch in range(epochs) if epochs is not None else itertools.count():
        step.start_epoch(epoch, model)
        order = step.order(epoch)
        for index in range(batches):
            rows = order[index * bs:(index + 1) * bs]
            model.train()
            loss, record = step.loss(model, rows, epoch)
            if loss is None:  # the step skips this batch (e.g. one example cannot train BatchNorm)
                continue
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip is not None:
                nn.utils.clip_grad_norm_(clip, config.max_grad_norm)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            taken += 1
            stop = step.after_step(epoch=epoch, index=index, step=taken, rows=rows, loss=loss, record=record,
                                   model=model)
            if stop or (max_steps is not None and taken >= max_steps):
                model.eval()
                return taken
        step.after_epoch(epoch, model)
    model.eval()
    return taken
