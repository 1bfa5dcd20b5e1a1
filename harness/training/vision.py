"""Worst-group image classification trained by the shared loop, with a pluggable objective.

A vision task builds a ``Trainer`` over a backbone handle and a ``GroupDataset``; a method decides the objective
(``Objective.loss`` sees the model outputs and the batch, including group labels and example indices) and may run
several fits (JTT). After every epoch the trainer scores the validation split and keeps the best weights under
the configured selection rule, which is reported with the result.
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from biasboard.harness.training.config import SELECTION_RULES, TrainConfig
from biasboard.harness.training.loop import BestWeights, StepHooks, batches_per_pass, numpy_passes, plain_optimizer, \
    train_loop
from biasboard.harness.training.objectives import MethodLoss, Objective

__all__ = ["SELECTION_RULES", "TrainConfig", "torch_threads", "ImageClassifier", "CrossEntropy", "LossHook",
           "FitResult", "Trainer"]


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Temporarily set torch's intra-op thread count."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class ImageClassifier(nn.Module):
    """Backbone + a linear deep head, and optional shallow branches (projection + head) on early stages.

    A shallow branch follows Debiasify's code: pooled stage features -> Linear(C_s, D) + ReLU -> Linear(D, classes),
    with D the deep feature size, so shallow and deep features live in one space for the MMD.
    """

    def __init__(self, backbone: nn.Module, stage_dims: Sequence[int], n_classes: int,
                 shallow_stages: Sequence[int] = ()):
        super().__init__()
        self.backbone = backbone
        deep = stage_dims[-1]
        self.head = nn.Linear(deep, n_classes)
        self.shallow_stages = tuple(shallow_stages)
        self.proj = nn.ModuleDict({str(s): nn.Sequential(nn.Linear(stage_dims[s], deep), nn.ReLU())
                                   for s in self.shallow_stages})
        self.shallow_heads = nn.ModuleDict({str(s): nn.Linear(deep, n_classes) for s in self.shallow_stages})

    def forward(self, x: torch.Tensor) -> dict[str, Any]:
        stages = self.backbone(x)
        deep = stages[-1]
        out = {"logits": self.head(deep), "deep": deep, "shallow": {}, "shallow_logits": {}}
        for s in self.shallow_stages:
            feat = self.proj[str(s)](stages[s])
            out["shallow"][s] = feat
            out["shallow_logits"][s] = self.shallow_heads[str(s)](feat)
        return out


class CrossEntropy(Objective):
    """Plain ERM: mean cross-entropy of the deep head."""

    def loss(self, out, batch, epoch):
        loss = F.cross_entropy(out["logits"], batch["y"])
        return loss, {"ce": float(loss.detach())}


class LossHook(MethodLoss):
    """A method's registered ``training_loss(losses, batch, ctx)`` hook on the per-example cross-entropies of the
    deep head. Any loss-kind method that reads ``batch["group"]`` works through this."""

    def loss(self, out, batch, epoch):
        per_example = F.cross_entropy(out["logits"], batch["y"], reduction="none")
        loss = self.method.training_loss(per_example, batch, self.ctx)
        return loss, {"ce": float(per_example.detach().mean()), "loss": float(loss.detach())}


@dataclass
class FitResult:
    """A trained model and how it was chosen."""

    model: ImageClassifier
    epoch: int
    """Selected epoch (1-based); the epoch count when ``selection`` is ``last``."""
    history: list[dict[str, float]] = field(default_factory=list)
    """Per epoch: mean loss pieces and validation average / worst-group accuracy (%)."""


class _VisionStep(StepHooks):
    """Batches of training rows (a numpy-seeded order per pass), the objective on the model outputs, mean loss pieces
    and validation scores per pass, best weights under the selection rule."""

    def __init__(self, trainer: "Trainer", objective, indices: np.ndarray, selection: str, seed: int):
        self.trainer, self.objective, self.indices, self.selection = trainer, objective, indices, selection
        self.passes = numpy_passes(seed)
        self.best = BestWeights("max")
        self.best_epoch, self.history, self.sums, self.n_batches = None, [], {}, 0

    def start_epoch(self, epoch, model):
        self.objective.start_epoch(epoch, self.trainer, model, self.indices)
        self.sums, self.n_batches = {}, 0

    def order(self, epoch):
        return self.passes(self.indices)

    def loss(self, model, rows, epoch):
        batch = self.trainer._batch(rows)
        if len(batch["y"]) < 2:
            return None, None  # BatchNorm cannot train on a single example
        return self.objective.loss(model(batch["x"]), batch, epoch)

    def after_step(self, *, epoch, index, step, rows, loss, record, model):
        for k, v in record.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.n_batches += 1
        return False

    def after_epoch(self, epoch, model):
        row = {k: v / max(1, self.n_batches) for k, v in self.sums.items()}
        if self.selection != "last":
            row["val_average"], row["val_worst_group"] = self.trainer._val_scores(model)
            if self.best.offer(row[self.selection], model):
                self.best_epoch = epoch + 1
        self.history.append(row)


class Trainer:
    """Fits classifiers on one dataset from one backbone; every fit starts from the backbone's initial weights,
    or, when ``init`` builds a random-init backbone, from weights drawn with the fit's seed (so seeds vary the
    initialisation as well as the heads and batch order). ``config`` is a vision ``TrainConfig`` (its ``seed``
    seeds every fit)."""

    def __init__(self, *, backbone: nn.Module, stage_dims: Sequence[int], data, config: TrainConfig,
                 normalize: tuple[Sequence[float], Sequence[float]], shallow_stage: int = 1, min_input: int = 0,
                 init: Callable[[], nn.Module] | None = None, progress: bool = False):
        self.backbone = backbone
        self.stage_dims = tuple(stage_dims)
        self.shallow_stage = shallow_stage
        self.min_input = min_input
        self.init = init
        self.data = data
        self.config = config
        self.mean = torch.tensor(normalize[0], dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(normalize[1], dtype=torch.float32).view(1, 3, 1, 1)
        self.seed = config.seed
        self.progress = progress
        self.train_groups = data.groups("train")

    def group_counts(self) -> np.ndarray:
        return np.bincount(self.train_groups, minlength=self.data.n_groups)

    def new_model(self, shallow_stages: Sequence[int] = (), salt: int = 0) -> ImageClassifier:
        """Heads (and, with ``init``, a random-init backbone) drawn from the seed alone, never from global state."""
        torch.manual_seed(self.seed * 1000 + salt)
        backbone = self.init() if self.init is not None else copy.deepcopy(self.backbone)
        return ImageClassifier(backbone, self.stage_dims, self.data.n_classes, shallow_stages)

    def _inputs(self, split: str, idx: np.ndarray) -> torch.Tensor:
        x = self.data.splits[split].load(idx)
        if self.min_input and min(x.shape[-2:]) < self.min_input:
            x = F.interpolate(x, size=(self.min_input, self.min_input), mode="bilinear", align_corners=False)
        return (x - self.mean) / self.std

    def _batch(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        s = self.data.splits["train"]
        return {"x": self._inputs("train", idx), "y": torch.as_tensor(s.y[idx]), "a": torch.as_tensor(s.a[idx]),
                "group": torch.as_tensor(self.train_groups[idx]), "index": torch.as_tensor(idx)}

    def outputs(self, model: ImageClassifier, split: str, *, keys: Sequence[str] = ("logits",),
                batch_size: int | None = None) -> dict[str, Any]:
        """Model outputs over a whole split in eval mode, concatenated (batch size does not change them)."""
        with torch_threads(self.config.threads), torch.inference_mode():
            return self._outputs(model, split, keys, batch_size)

    def _outputs(self, model, split, keys, batch_size):
        model.eval()
        n = len(self.data.splits[split])
        bs = batch_size or self.config.eval_batch_size
        parts: dict[str, list] = {k: [] for k in keys}
        for start in range(0, n, bs):
            out = model(self._inputs(split, np.arange(start, min(n, start + bs))))
            for k in keys:
                parts[k].append(out[k])
        merged = {}
        for k, chunks in parts.items():
            if isinstance(chunks[0], dict):
                merged[k] = {s: torch.cat([c[s] for c in chunks]) for s in chunks[0]}
            else:
                merged[k] = torch.cat(chunks)
        return merged

    def predict(self, model: ImageClassifier, split: str, *, batch_size: int | None = None) -> np.ndarray:
        return self.outputs(model, split, batch_size=batch_size)["logits"].argmax(1).numpy()

    def _val_scores(self, model: ImageClassifier) -> tuple[float, float]:
        pred = self.predict(model, "val")
        val = self.data.splits["val"]
        correct = pred == val.y
        groups = self.data.groups("val")
        accs = [correct[groups == g].mean() for g in np.unique(groups)]
        return 100.0 * float(correct.mean()), 100.0 * float(min(accs))

    def fit(self, objective, *, indices: np.ndarray | None = None, epochs: int | None = None,
            selection: str | None = None, salt: int = 0) -> FitResult:
        """Train a fresh classifier on the training rows ``indices`` (repeats allowed: that is upsampling)."""
        with torch_threads(self.config.threads):
            return self._fit(objective, indices, epochs, selection, salt)

    def _fit(self, objective, indices, epochs, selection, salt) -> FitResult:
        cfg = self.config
        epochs = cfg.epochs if epochs is None else epochs
        selection = selection or cfg.selection
        if selection not in SELECTION_RULES:
            raise ValueError(f"selection must be one of {SELECTION_RULES}, got {selection!r}")
        indices = np.arange(len(self.data.splits["train"])) if indices is None else np.asarray(indices)
        model = self.new_model(objective.shallow_stages, salt)
        opt = plain_optimizer([p for p in model.parameters() if p.requires_grad], cfg)
        step = _VisionStep(self, objective, indices, selection, self.seed * 1000 + salt + 1)
        train_loop(model, step, cfg, optimizer=opt, batches=batches_per_pass(len(indices), cfg.batch_size,
                                                                             drop_last=False), epochs=epochs)
        step.best.restore(model)
        model.eval()
        return FitResult(model, step.best_epoch or epochs, step.history)
