"""Downstream fine-tuning: a linear head on pooled features of any encoder, mlm or clm backbone, trained by the
shared loop, for every task that fine-tunes (bios, wiki_toxicity, glue).

The backbone is copied (the handle is never mutated). Seeded and deterministic, dynamic padding, a maximum length,
early stopping on a validation split, and the fine-tuned weights cached under a key that digests everything that
determines them. The method of the cell plugs in through two hooks, so DRO-style losses and data interventions never
touch the loop: ``transform_data(dataset, ctx)`` rewrites the training split, ``training_loss(losses, batch, ctx)``
turns the per-example loss tensor into the scalar that is minimised (ERM mean by default).
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from biasboard.harness.errors import BiasboardError, UnsupportedError
from biasboard.harness.training.cache import cache_key, load_cached, save_atomic, weights_folder
from biasboard.harness.training.config import TrainConfig
from biasboard.harness.training.loop import BestWeights, StepHooks, adamw, batches_per_pass, linear_warmup, \
    torch_passes, train_loop
from biasboard.harness.training.objectives import ErmObjective, MethodLoss, Objective

TRAINER_VERSION = "1"
"""Bumped whenever the loop changes what it learns, so cached weights from an older loop are not reused."""


@dataclass(frozen=True)
class TextDataset:
    """Fine-tuning or evaluation examples: text (or text pairs), a label, and an optional protected group each."""

    texts: tuple[str, ...]
    """The (first) text of each example."""
    labels: tuple[float, ...]
    """Class index (classification) or target value (regression) of each example."""
    ids: tuple[str, ...]
    """Stable example ids (kept in per-example result rows)."""
    text_pairs: tuple[str, ...] | None = None
    """Second texts for sentence-pair tasks (MRPC, RTE, STS-B)."""
    groups: tuple[str, ...] | None = None
    """Protected attribute of each example (``female``/``male``, ``identity``/``none``), for data and loss hooks."""
    axis: str = ""
    """What ``groups`` encodes (``gender``, ``identity``): tells scrubbing which word list applies."""
    label_names: tuple[str, ...] = ()
    """Names of the classes, index-aligned (empty for regression)."""

    def __post_init__(self):
        n = len(self.texts)
        for name in ("labels", "ids", "text_pairs", "groups"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise BiasboardError(f"TextDataset: {name} has {len(value)} entries for {n} texts")

    def __len__(self) -> int:
        return len(self.texts)

    def select(self, index: Sequence[int]) -> "TextDataset":
        """The examples at ``index`` (repeats allowed, for resampling), in that order."""
        idx = [int(i) for i in index]
        pick = lambda seq: None if seq is None else tuple(seq[i] for i in idx)  # noqa: E731
        return replace(self, texts=pick(self.texts), labels=pick(self.labels), ids=pick(self.ids),
                       text_pairs=pick(self.text_pairs), groups=pick(self.groups))

    def with_texts(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None) -> "TextDataset":
        """Same examples, rewritten text (scrubbing keeps labels, groups and ids)."""
        return replace(self, texts=tuple(texts),
                       text_pairs=None if text_pairs is None and self.text_pairs is None
                       else tuple(text_pairs if text_pairs is not None else self.text_pairs))

    def digest(self) -> str:
        """sha256 over every field, so a changed word or label changes the cache key."""
        h = hashlib.sha256()
        h.update(json.dumps([self.axis, list(self.label_names)]).encode())
        for name in ("texts", "labels", "ids", "text_pairs", "groups"):
            h.update(json.dumps(getattr(self, name), default=str).encode())
        return h.hexdigest()


class TextClassifier(nn.Module):
    """Backbone (the base transformer of any family) + dropout + linear head on pooled hidden states."""

    def __init__(self, backbone: nn.Module, *, num_labels: int, pooling: str, dropout: float):
        super().__init__()
        self.backbone = backbone
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(backbone.config.hidden_size, num_labels)

    def features(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.backbone(**kwargs).last_hidden_state.float()
        if self.pooling == "mean":
            m = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)
        if self.pooling == "first":
            return hidden[:, 0]
        return hidden[torch.arange(hidden.shape[0]), attention_mask.sum(1) - 1]

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        return self.head(self.dropout(self.features(input_ids, attention_mask, token_type_ids)))


@dataclass
class FineTuned:
    """A fine-tuned classifier with what produced it."""

    model: TextClassifier
    tokenizer: Any
    config: TrainConfig
    train_data: TextDataset
    """The training split after the method's ``transform_data`` (dataset-bias metrics are computed on it)."""
    key: str
    """Cache key (digest of weights, lineage, config, data, method)."""
    history: list[dict[str, float]] = field(default_factory=list)
    """One row per validation check: epoch, step, val_loss, train_loss."""
    examples_per_s: float = 0.0
    """Training throughput of the run that produced the weights (0 when loaded from cache)."""
    from_cache: bool = False


def _backbone(handle) -> nn.Module:
    if handle.family not in ("encoder", "mlm", "clm"):
        raise UnsupportedError(f"model {handle.id!r} is a {handle.family} model; fine-tuning needs an encoder, mlm "
                               "or clm backbone")
    base = getattr(handle.model, "base_model", handle.model)
    return copy.deepcopy(base)


def build_classifier(handle, config: TrainConfig) -> TextClassifier:
    """A fresh classifier on a copy of the handle's backbone; the head is seeded by ``config.seed``."""
    pooling = config.pooling if config.pooling != "auto" else ("last" if handle.family == "clm" else "mean")
    backbone = _backbone(handle)
    torch.manual_seed(config.seed)
    return TextClassifier(backbone, num_labels=config.num_labels, pooling=pooling, dropout=config.dropout)


class _Encoded:
    """Token ids of a dataset, tokenized once; batches are padded to their own longest member."""

    def __init__(self, tokenizer, data: TextDataset, max_length: int):
        enc = tokenizer(list(data.texts), list(data.text_pairs) if data.text_pairs is not None else None,
                        truncation=True, max_length=max_length)
        self.ids = enc["input_ids"]
        self.types = enc.get("token_type_ids")
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.lengths = [len(x) for x in self.ids]

    def batch(self, rows: Sequence[int]) -> dict[str, torch.Tensor]:
        width = max(self.lengths[i] for i in rows)
        ids = torch.full((len(rows), width), self.pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        types = torch.zeros((len(rows), width), dtype=torch.long) if self.types is not None else None
        for b, i in enumerate(rows):
            n = self.lengths[i]
            ids[b, :n] = torch.as_tensor(self.ids[i])
            mask[b, :n] = 1
            if types is not None:
                types[b, :n] = torch.as_tensor(self.types[i])
        out = {"input_ids": ids, "attention_mask": mask}
        if types is not None:
            out["token_type_ids"] = types
        return out


def _per_example_loss(logits: torch.Tensor, labels: torch.Tensor, num_labels: int) -> torch.Tensor:
    if num_labels == 1:
        return (logits.squeeze(-1) - labels.float()) ** 2
    return nn.functional.cross_entropy(logits, labels.long(), reduction="none")


def _hook(method, name: str):
    """The method's hook, or None when the method (or its absence) does not implement it."""
    if method is None:
        return None
    return getattr(method, name, None) if callable(getattr(type(method), name, None)) else None


def _method_id(ctx) -> dict[str, Any]:
    method = getattr(ctx, "method", None)
    if method is None:
        return {}
    return {"name": getattr(method, "name", type(method).__name__), "version": getattr(method, "version", ""),
            "params": ctx.params}


@torch.inference_mode()
def _mean_loss(model: TextClassifier, enc: _Encoded, labels: Sequence[float], num_labels: int, batch_size: int
               ) -> float:
    model.eval()
    total, n = 0.0, 0
    order = sorted(range(len(labels)), key=lambda i: enc.lengths[i])
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        logits = model(**enc.batch(rows))
        y = torch.as_tensor([labels[i] for i in rows])
        total += float(_per_example_loss(logits, y, num_labels).sum())
        n += len(rows)
    return total / max(n, 1)


def finetune(handle, train: TextDataset, val: TextDataset, config: TrainConfig, ctx) -> FineTuned:
    """Fine-tune a classifier on ``train`` with early stopping on ``val``; reuse cached weights when present.

    ``ctx.method``'s ``transform_data`` is applied to ``train`` first (never to ``val``), and its
    ``training_loss(losses, batch, ctx)`` reduces the per-example losses (``batch`` holds the tensors plus
    ``index``: dataset rows, ``groups``: their protected groups, ``features``: pooled features).
    """
    if config.family != "downstream":
        raise BiasboardError(f"finetune needs a downstream TrainConfig, got family {config.family!r}")
    transform = _hook(getattr(ctx, "method", None), "transform_data")
    if transform is not None:
        train = transform(train, ctx)
        if not isinstance(train, TextDataset) or len(train) == 0:
            raise BiasboardError(f"method {ctx.method.name!r}: transform_data must return a non-empty TextDataset")
    if len(train) == 0 or len(val) == 0:
        raise BiasboardError("fine-tuning needs non-empty training and validation splits")
    key = cache_key(trainer=TRAINER_VERSION, model=handle.id, family=handle.family, weights=handle.weights_sha256,
                    lineage=list(handle.lineage), config=config.key_fields(), train=train.digest(),
                    val=val.digest(), method=_method_id(ctx))
    folder = weights_folder(getattr(ctx, "cache_dir", None), "finetuned", key)
    model = build_classifier(handle, config)
    meta = load_cached(model, folder)
    if meta is not None:
        return FineTuned(model, handle.tokenizer, config, train, key, meta.get("history", []), 0.0, True)
    hook = _hook(getattr(ctx, "method", None), "training_loss")
    objective = ErmObjective() if hook is None else MethodLoss(ctx.method, ctx)
    history, rate = _train(model, handle.tokenizer, train, val, config, objective)
    save_atomic(model, folder, {"history": history, "examples_per_s": rate, "config": config.key_fields()})
    return FineTuned(model, handle.tokenizer, config, train, key, history, rate, False)


class _DownstreamStep(StepHooks):
    """Batches of the training split, the head's per-example losses through the objective, validation loss at
    ``evals_per_epoch`` points of each pass with early stopping after ``patience`` checks without improvement."""

    def __init__(self, tokenizer, train: TextDataset, val: TextDataset, config: TrainConfig, objective: Objective,
                 batches: int):
        self.train, self.val, self.config, self.objective = train, val, config, objective
        self.enc_train = _Encoded(tokenizer, train, config.max_length)
        self.enc_val = _Encoded(tokenizer, val, config.max_length)
        self.labels = torch.as_tensor(train.labels)
        self.passes = torch_passes(config.seed)
        evals = max(1, config.evals_per_epoch)
        self.checks = sorted({min(batches, math.ceil(batches * (k + 1) / evals)) for k in range(evals)})
        self.best = BestWeights("min", tol=1e-6)
        self.bad, self.history, self.running, self.seen = 0, [], [], 0

    def order(self, epoch):
        return self.passes(len(self.train))

    def loss(self, model, rows, epoch):
        batch = self.enc_train.batch(rows)
        feats = model.features(**batch)
        logits = model.head(model.dropout(feats))
        y = self.labels[rows]
        losses = _per_example_loss(logits, y, self.config.num_labels)
        full = dict(batch, labels=y, index=torch.as_tensor(rows), features=feats,
                    groups=None if self.train.groups is None else [self.train.groups[i] for i in rows])
        loss, _ = self.objective.loss({"losses": losses, "features": feats, "logits": logits}, full, epoch)
        return loss, None

    def after_step(self, *, epoch, index, step, rows, loss, record, model):
        self.seen += len(rows)
        self.running.append(float(loss.detach()))
        if index + 1 not in self.checks:
            return False
        cfg = self.config
        val_loss = _mean_loss(model, self.enc_val, self.val.labels, cfg.num_labels, max(cfg.batch_size, 64))
        self.history.append({"epoch": epoch + 1, "step": step, "val_loss": val_loss,
                             "train_loss": float(np.mean(self.running))})
        self.running = []
        self.bad = 0 if self.best.offer(val_loss, model) else self.bad + 1
        return self.bad >= cfg.patience


def _train(model: TextClassifier, tokenizer, train: TextDataset, val: TextDataset, config: TrainConfig,
           objective: Objective) -> tuple[list[dict[str, float]], float]:
    batches = batches_per_pass(len(train), config.batch_size, drop_last=False)
    opt, _ = adamw(model.named_parameters(), config)
    sched = linear_warmup(opt, config, batches * config.epochs)
    step = _DownstreamStep(tokenizer, train, val, config, objective, batches)
    started = time.perf_counter()
    train_loop(model, step, config, optimizer=opt, batches=batches, epochs=config.epochs, scheduler=sched,
               clip=list(model.parameters()), seed=config.seed)
    rate = step.seen / max(time.perf_counter() - started, 1e-9)
    step.best.restore(model)
    model.eval()
    return step.history, rate


@torch.inference_mode()
def predict(ft: FineTuned, data: TextDataset, *, batch_size: int = 64) -> np.ndarray:
    """Raw outputs [n, num_labels] (logits, or the regression value), in the dataset's order.

    Examples are sorted by length and padded per batch, so the batch size changes speed, not results.
    """
    ft.model.eval()
    enc = _Encoded(ft.tokenizer, data, ft.config.max_length)
    out = np.zeros((len(data), ft.config.num_labels), dtype=np.float64)
    order = sorted(range(len(data)), key=lambda i: enc.lengths[i])
    for start in range(0, len(order), max(1, batch_size)):
        rows = order[start:start + batch_size]
        out[rows] = ft.model(**enc.batch(rows)).double().numpy()
    return out


def probabilities(logits: np.ndarray) -> np.ndarray:
    """Softmax over classes (numerically stable)."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
