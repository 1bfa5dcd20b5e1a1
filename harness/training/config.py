"""The one configuration type of every training run: downstream fine-tuning, LM debiasing fine-tuning and vision fits.

Each family reads its own subset of the fields, with its own defaults (``FAMILY_FIELDS``); a field a family does not
use must stay unset, so a config never carries a setting that silently does nothing. ``key_fields()`` is exactly
what enters the family's weight-cache key (the fields the family had before the loops were merged, so cached
weights keep their keys).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from biasboard.harness.errors import BiasboardError

POOLINGS = ("mean", "first", "last")
SELECTION_RULES = ("val_worst_group", "val_average", "last")
OPTIMIZERS = ("adamw", "adam", "sgd")
TRAIN_PRECISIONS = ("float32", "mixed-bf16")

FAMILY_FIELDS: dict[str, dict[str, Any]] = {
    "downstream": {"num_labels": None, "epochs": 2, "lr": 5e-5, "batch_size": 32, "max_length": 64,
                   "weight_decay": 0.01, "warmup_ratio": 0.1, "patience": 1, "evals_per_epoch": 1, "pooling": "auto",
                   "dropout": 0.1, "max_grad_norm": 1.0, "seed": 0},
    "lm": {"steps": 200, "batch_size": 32, "lr": 5e-5, "aux_lr": 1e-3, "max_length": 32, "mlm_probability": 0.15,
           "weight_decay": 0.01, "warmup_ratio": 0.1, "max_grad_norm": 1.0, "seed": 0, "precision": "float32"},
    "vision": {"epochs": 20, "batch_size": 64, "lr": 1e-3, "weight_decay": 1e-4, "optimizer": "adam",
               "selection": "val_worst_group", "eval_batch_size": 256, "threads": 1, "seed": 0},
}
"""Family -> the fields it reads -> their defaults (``num_labels`` has none: a downstream run must say it)."""
ADDED_FIELDS = {"lm": {"precision": "float32"}}
"""Family -> fields added after the cache keys were fixed -> the value under which they stay out of the key."""
FIXED = {"downstream": {"optimizer": "adamw"}, "lm": {"optimizer": "adamw"}}
"""Settings a family does not expose (not in its cache key): text families always train with AdamW."""


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one training run; which fields apply depends on ``family``."""

    family: str
    """``downstream`` (classifier head on a text backbone), ``lm`` (language-model fine-tuning) or ``vision``."""
    seed: int | None = None
    """Seeds the head / objective initialisation and the batch order (vision: also a random-init backbone)."""
    epochs: int | None = None
    """Passes over the training data (downstream: an upper bound, early stopping may end sooner)."""
    steps: int | None = None
    """lm: optimiser steps (the corpus is cycled through in seeded shuffled passes)."""
    batch_size: int | None = None
    """Training batch size (a hyperparameter; prediction batch size never changes results)."""
    lr: float | None = None
    """Peak learning rate (text families: linear warm-up, then linear decay)."""
    aux_lr: float | None = None
    """lm: learning rate of the objective's own parameters (the autoencoder)."""
    weight_decay: float | None = None
    optimizer: str | None = None
    """vision: ``adam`` or ``sgd`` (momentum 0.9); the text families always use AdamW."""
    warmup_ratio: float | None = None
    """Text families: share of the steps spent warming up."""
    max_grad_norm: float | None = None
    """Text families: gradient-norm clipping."""
    max_length: int | None = None
    """Text families: token limit per example (pairs truncated longest-first)."""
    num_labels: int | None = None
    """downstream: number of classes; 1 means regression (mean squared error)."""
    patience: int | None = None
    """downstream: evaluations without a better validation loss before stopping."""
    evals_per_epoch: int | None = None
    """downstream: validation checks per epoch (finer early stopping on small data)."""
    pooling: str | None = None
    """downstream: ``mean`` over real tokens, ``first`` token, ``last`` real token; ``auto`` = last for clm."""
    dropout: float | None = None
    mlm_probability: float | None = None
    """lm: share of the tokens selected for masked-LM prediction."""
    selection: str | None = None
    """vision: how the reported epoch is chosen: best validation worst-group accuracy (Sagawa et al.; JTT), best
    validation average accuracy (needs no group labels), or the last epoch."""
    eval_batch_size: int | None = None
    """vision: evaluation batch size (does not change results)."""
    precision: str | None = None
    """lm: ``float32``, or ``mixed-bf16``: the forward pass under bfloat16 autocast with float32 master weights,
    optimiser state and losses (faster where bfloat16 runs natively; ``harness.models.precision``)."""
    threads: int | None = None
    """vision: torch intra-op threads while training and predicting (restored afterwards); 0 keeps torch's setting.
    Small models on a shared CPU run many times faster on one thread than with OpenMP threads waiting for cores."""

    def __post_init__(self):
        if self.family not in FAMILY_FIELDS:
            raise BiasboardError(f"TrainConfig: family {self.family!r}; valid: {', '.join(FAMILY_FIELDS)}")
        own, fixed = FAMILY_FIELDS[self.family], FIXED.get(self.family, {})
        for f in fields(self):
            if f.name == "family":
                continue
            value = getattr(self, f.name)
            if f.name in own:
                if value is None:
                    object.__setattr__(self, f.name, own[f.name])
            elif f.name in fixed:
                if value not in (None, fixed[f.name]):
                    raise BiasboardError(f"TrainConfig({self.family}): {f.name} is always {fixed[f.name]!r}")
                object.__setattr__(self, f.name, fixed[f.name])
            elif value is not None:
                raise BiasboardError(f"TrainConfig({self.family}): {f.name} is not a setting of this family; "
                                     f"settings: {', '.join(own)}")
        getattr(self, f"_check_{self.family}")()

    def _check_downstream(self):
        if self.num_labels is None or self.num_labels < 1:
            raise BiasboardError("TrainConfig: num_labels must be >= 1 (1 = regression)")
        if self.pooling not in POOLINGS + ("auto",):
            raise BiasboardError(f"TrainConfig: pooling {self.pooling!r}; valid: {POOLINGS + ('auto',)}")

    def _check_lm(self):
        if self.steps < 1 or self.batch_size < 1 or self.max_length < 2:
            raise BiasboardError(f"TrainConfig: steps, batch_size >= 1 and max_length >= 2 needed, got {self}")
        if not 0 < self.mlm_probability < 1:
            raise BiasboardError(f"TrainConfig: mlm_probability must be in (0, 1), got {self.mlm_probability}")
        if self.precision not in TRAIN_PRECISIONS:
            raise BiasboardError(f"TrainConfig: precision {self.precision!r}; valid: {', '.join(TRAIN_PRECISIONS)}")

    def _check_vision(self):
        if self.selection not in SELECTION_RULES:
            raise BiasboardError(f"selection must be one of {SELECTION_RULES}, got {self.selection!r}")
        if self.optimizer not in ("adam", "sgd"):
            raise BiasboardError(f"optimizer must be adam or sgd, got {self.optimizer!r}")

    def key_fields(self) -> dict[str, Any]:
        """The family's settings, name -> value: what enters the weight-cache key and the saved meta. Fields added
        later (``ADDED_FIELDS``) enter only when they differ from their default, so earlier keys stay valid."""
        added = ADDED_FIELDS.get(self.family, {})
        return {name: getattr(self, name) for name in FAMILY_FIELDS[self.family]
                if name not in added or getattr(self, name) != added[name]}
