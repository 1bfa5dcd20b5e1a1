"""One training loop for worst-group image classification, with a pluggable objective.

A vision task builds a ``Trainer`` over a backbone handle and a ``GroupDataset``; a method decides the objective
(``Objective.loss`` sees the model outputs and the batch, including group labels and example indices) and may run
several fits (JTT). After every epoch the trainer scores the validation split and keeps the best weights under
the configured selection rule, which is reported with the result.
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SELECTION_RULES = ("val_worst_group", "val_average", "last")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and model-selection settings of a fit."""

    epochs: int = 20
    """Passes over the training indices."""
    batch_size: int = 64
    """Training batch size (evaluation batches use ``eval_batch_size`` and do not change results)."""
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adam"
    """``adam`` or ``sgd`` (momentum 0.9)."""
    selection: str = "val_worst_group"
    """How the reported epoch is chosen: best validation worst-group accuracy (Sagawa et al.; JTT), best
    validation average accuracy (the rule that needs no group labels), or the last epoch."""
    eval_batch_size: int = 256
    threads: int | None = 1
    """Torch intra-op threads while training and predicting (restored afterwards). Small models on a shared CPU run
    many times faster on one thread than with OpenMP threads waiting for busy cores; None keeps torch's setting."""

    def __post_init__(self):
        if self.selection not in SELECTION_RULES:
            raise ValueError(f"selection must be one of {SELECTION_RULES}, got {self.selection!r}")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be adam or sgd, got {self.optimizer!r}")


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


class Classifier(nn.Module):
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


class Objective(Protocol):
    """What a method plugs into the loop."""

    shallow_stages: tuple[int, ...]

    def start_epoch(self, epoch: int, trainer: "Trainer", model: Classifier, indices: np.ndarray) -> None: ...

    def loss(self, out: dict[str, Any], batch: dict[str, torch.Tensor], epoch: int
             ) -> tuple[torch.Tensor, dict[str, float]]: ...


class CrossEntropy:
    """Plain ERM: mean cross-entropy of the deep head."""

    shallow_stages: tuple[int, ...] = ()

    def start_epoch(self, epoch, trainer, model, indices) -> None:
        return None

    def loss(self, out, batch, epoch):
        loss = F.cross_entropy(out["logits"], batch["y"])
        return loss, {"ce": float(loss.detach())}


@dataclass
class FitResult:
    """A trained model and how it was chosen."""

    model: Classifier
    epoch: int
    """Selected epoch (1-based); the epoch count when ``selection`` is ``last``."""
    history: list[dict[str, float]] = field(default_factory=list)
    """Per epoch: mean loss pieces and validation average / worst-group accuracy (%)."""


class Trainer:
    """Fits classifiers on one dataset from one backbone; every fit starts from the backbone's initial weights,
    or, when ``init`` builds a random-init backbone, from weights drawn with the fit's seed (so seeds vary the
    initialisation as well as the heads and batch order)."""

    def __init__(self, *, backbone: nn.Module, stage_dims: Sequence[int], data, config: TrainConfig,
                 normalize: tuple[Sequence[float], Sequence[float]], shallow_stage: int = 1, min_input: int = 0,
                 init: Callable[[], nn.Module] | None = None, seed: int = 0, progress: bool = False):
        self.backbone = backbone
        self.stage_dims = tuple(stage_dims)
        self.shallow_stage = shallow_stage
        self.min_input = min_input
        self.init = init
        self.data = data
        self.config = config
        self.mean = torch.tensor(normalize[0], dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(normalize[1], dtype=torch.float32).view(1, 3, 1, 1)
        self.seed = seed
        self.progress = progress
        self.train_groups = data.groups("train")

    def group_counts(self) -> np.ndarray:
        return np.bincount(self.train_groups, minlength=self.data.n_groups)

    def new_model(self, shallow_stages: Sequence[int] = (), salt: int = 0) -> Classifier:
        """Heads (and, with ``init``, a random-init backbone) drawn from the seed alone, never from global state."""
        torch.manual_seed(self.seed * 1000 + salt)
        backbone = self.init() if self.init is not None else copy.deepcopy(self.backbone)
        return Classifier(backbone, self.stage_dims, self.data.n_classes, shallow_stages)

    def _inputs(self, split: str, idx: np.ndarray) -> torch.Tensor:
        x = self.data.splits[split].load(idx)
        if self.min_input and min(x.shape[-2:]) < self.min_input:
            x = F.interpolate(x, size=(self.min_input, self.min_input), mode="bilinear", align_corners=False)
        return (x - self.mean) / self.std

    def _batch(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        s = self.data.splits["train"]
        return {"x": self._inputs("train", idx), "y": torch.as_tensor(s.y[idx]), "a": torch.as_tensor(s.a[idx]),
                "group": torch.as_tensor(self.train_groups[idx]), "index": torch.as_tensor(idx)}

    def outputs(self, model: Classifier, split: str, *, keys: Sequence[str] = ("logits",),
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

    def predict(self, model: Classifier, split: str, *, batch_size: int | None = None) -> np.ndarray:
        return self.outputs(model, split, batch_size=batch_size)["logits"].argmax(1).numpy()

    def _val_scores(self, model: Classifier) -> tuple[float, float]:
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
        params = [p for p in model.parameters() if p.requires_grad]
        if cfg.optimizer == "adam":
            opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        else:
            opt = torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
        gen = np.random.default_rng(self.seed * 1000 + salt + 1)
        best, best_score, best_epoch, history = None, -np.inf, epochs, []
        for epoch in range(epochs):
            objective.start_epoch(epoch, self, model, indices)
            model.train()
            order = indices[gen.permutation(len(indices))]
            sums: dict[str, float] = {}
            n_batches = 0
            for start in range(0, len(order), cfg.batch_size):
                batch = self._batch(order[start:start + cfg.batch_size])
                if len(batch["y"]) < 2:
                    continue  # BatchNorm cannot train on a single example
                out = model(batch["x"])
                loss, pieces = objective.loss(out, batch, epoch)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                for k, v in pieces.items():
                    sums[k] = sums.get(k, 0.0) + v
                n_batches += 1
            row = {k: v / max(1, n_batches) for k, v in sums.items()}
            if selection != "last":
                row["val_average"], row["val_worst_group"] = self._val_scores(model)
                if row[selection] > best_score:
                    best_score, best_epoch = row[selection], epoch + 1
                    best = copy.deepcopy(model.state_dict())
            history.append(row)
        if best is not None:
            model.load_state_dict(best)
        model.eval()
        return FitResult(model, best_epoch, history)


class LossHook:
    """Adapts a method's registered ``training_loss(losses, batch, ctx)`` hook: per-example cross-entropies of the
    deep head in, one scalar out. Any loss-kind method that reads ``batch["group"]`` works through this."""

    shallow_stages: tuple[int, ...] = ()

    def __init__(self, method, ctx):
        self.method, self.ctx = method, ctx

    def start_epoch(self, epoch, trainer, model, indices) -> None:
        return None

    def loss(self, out, batch, epoch):
        per_example = F.cross_entropy(out["logits"], batch["y"], reduction="none")
        loss = self.method.training_loss(per_example, batch, self.ctx)
        return loss, {"ce": float(per_example.detach().mean()), "loss": float(loss.detach())}
