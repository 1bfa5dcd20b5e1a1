"""Upstream language-model fine-tuning on a labelled sentence corpus, with per-sentence losses and a pluggable
robust objective (``training.robust``), trained by the shared loop.

- mlm models: masked language modelling, 15% of the non-special tokens of each sentence selected, of those 80%
  replaced by the mask token, 10% by a random token, 10% kept (Devlin et al. 2019). A sentence with no selected
  token gets one (uniformly chosen), so every sentence has a loss. The per-sentence loss is the mean cross-entropy
  over its selected tokens.
- clm models: next-token prediction; the per-sentence loss is the mean cross-entropy over its predicted tokens.

Masking is drawn per sentence from a generator seeded by (seed, pass, row), so a sentence's loss does not depend on
which batch it lands in or how the batch is padded. The fine-tuned weights are cached as safetensors under
``<cache>/lm_finetuned/<key>`` where the key digests the base weights, lineage, corpus, config and objective.
``LMFinetuneMethod`` is the shared base of the method adapters (erm, group_dro, topk_dro, topk_ae_dro, robust_debias).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from biasboard.harness.errors import BiasboardError, UnsupportedError
from biasboard.harness.models.precision import compute_context, resolve_dtype
from biasboard.harness.models.scoring import _mlm_head
from biasboard.harness.specs import Method
from biasboard.harness.training.cache import cache_key, load_cached, save_atomic, weights_folder
from biasboard.harness.training.config import TrainConfig
from biasboard.harness.training.corpora import LabelledCorpus, load_corpus
from biasboard.harness.training.loop import StepHooks, adamw, batches_per_pass, linear_warmup, torch_passes, train_loop
from biasboard.harness.training.objectives import Objective

LM_TRAINER_VERSION = "1"
"""Bumped whenever the loop changes what it learns, so cached weights of an older loop are not reused."""
AUTO_STEPS = {"mlm": 200, "clm": 16}
"""Default optimiser steps per family when ``steps=0`` (auto): CPU budgets. clm 16 is measured (docs/lm-methods.md,
"Step budget"): at 4 steps zoo:smollm2-135m moved no bias metric; at 16 ERM and RobustDebias move their training
objective and CrowS-Pairs' likelihood_diff, not its stereotype score. A 32-sentence smollm2 step takes ~5 s in
float32 on 2 idle cores, ~1.4x less in mixed-bf16. Raise ``steps`` on real hardware."""
AUTO_MAX_LENGTH = {"mlm": 32, "clm": 24}


def mask_tokens(ids: list[int], special: list[bool], *, rng: np.random.Generator, mask_id: int, vocab_size: int,
                probability: float = 0.15) -> tuple[list[int], list[int]]:
    """BERT masking of one sentence: (inputs, labels) with label -100 where no prediction is made.

    >>> rng = np.random.default_rng(0)
    >>> inp, lab = mask_tokens([101, 7, 8, 9, 102], [True, False, False, False, True], rng=rng, mask_id=103,
    ...                        vocab_size=200, probability=0.15)
    >>> sum(x != -100 for x in lab) >= 1 and lab[0] == lab[-1] == -100
    True
    """
    candidates = [i for i, s in enumerate(special) if not s]
    if not candidates:
        raise BiasboardError("a sentence has no maskable token")
    chosen = [i for i in candidates if rng.random() < probability]
    if not chosen:
        chosen = [candidates[int(rng.integers(len(candidates)))]]
    inputs, labels = list(ids), [-100] * len(ids)
    for i in chosen:
        labels[i] = ids[i]
        r = rng.random()
        if r < 0.8:
            inputs[i] = mask_id
        elif r < 0.9:
            inputs[i] = int(rng.integers(vocab_size))
    return inputs, labels


class _Tokens:
    """Token ids of a corpus, tokenized once, with each token's special-token flag."""

    def __init__(self, tokenizer, texts, max_length: int):
        enc = tokenizer(list(texts), truncation=True, max_length=max_length, return_special_tokens_mask=True)
        self.ids = enc["input_ids"]
        self.special = [[bool(x) for x in m] for m in enc["special_tokens_mask"]]
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def _pad(rows: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), value, dtype=torch.long)
    for b, r in enumerate(rows):
        out[b, : len(r)] = torch.as_tensor(r, dtype=torch.long)
    return out


def build_batch(tokens: _Tokens, rows: list[int], *, family: str, config: TrainConfig, epoch: int, mask_id: int | None,
                vocab_size: int) -> dict[str, torch.Tensor]:
    """input_ids, attention_mask and labels (-100 = no loss) for the corpus rows, right-padded."""
    inputs, labels = [], []
    for r in rows:
        ids = tokens.ids[r]
        if family == "mlm":
            rng = np.random.default_rng([config.seed, epoch, r])
            inp, lab = mask_tokens(ids, tokens.special[r], rng=rng, mask_id=mask_id, vocab_size=vocab_size,
                                   probability=config.mlm_probability)
        else:
            if len(ids) < 2:
                raise BiasboardError(f"corpus row {r}: a causal LM needs at least two tokens")
            inp, lab = list(ids), list(ids)
        inputs.append(inp)
        labels.append(lab)
    ids = _pad(inputs, tokens.pad)
    mask = _pad([[1] * len(x) for x in inputs], 0)
    return {"input_ids": ids, "attention_mask": mask, "labels": _pad(labels, -100)}


def sentence_losses(model, batch: dict[str, torch.Tensor], *, family: str, need_hidden: bool = False
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-sentence mean cross-entropy over predicted tokens, and (optionally) the mean-pooled last hidden state.

    For mlm models with a separable head the vocabulary projection runs only at the selected positions (most of a
    small MLM's cost is the hidden x vocab product at every position); the losses are the same.
    """
    ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    head = _mlm_head(model) if family == "mlm" else None
    if head is not None:
        hidden_all = model.base_model(input_ids=ids, attention_mask=mask)[0]
        rows, cols = (labels != -100).nonzero(as_tuple=True)
        logits = head(hidden_all[rows, cols].unsqueeze(1)).squeeze(1).float()
        tok = nn.functional.cross_entropy(logits, labels[rows, cols], reduction="none")
        sums = torch.zeros(ids.shape[0], dtype=tok.dtype).index_add(0, rows, tok)
        losses = sums / torch.bincount(rows, minlength=ids.shape[0]).clamp_min(1)
    else:
        out = model(input_ids=ids, attention_mask=mask, output_hidden_states=need_hidden)
        logits = out.logits.float()
        if family == "clm":
            logits, labels = logits[:, :-1], labels[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
        tok = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                          reduction="none", ignore_index=-100).view(labels.shape)
        losses = tok.sum(1) / (labels != -100).sum(1).clamp_min(1)
        hidden_all = out.hidden_states[-1] if need_hidden else None
    hidden = None
    if need_hidden:
        m = mask.unsqueeze(-1).float()
        hidden = (hidden_all.float() * m).sum(1) / m.sum(1)
    return losses, hidden


@dataclass
class LMFineTuned:
    model: Any
    key: str
    history: list[dict[str, Any]]
    tokens_per_s: float = 0.0
    from_cache: bool = False


def finetune_lm(handle, corpus: LabelledCorpus, config: TrainConfig,
                make_objective: Callable[[int, LabelledCorpus], Objective], *, objective_id: dict[str, Any],
                cache: Path | None = None, progress: bool = False) -> LMFineTuned:
    """Fine-tune a copy of ``handle.model`` (mlm or clm) on ``corpus``; reuse cached weights when present.

    ``make_objective(hidden_size, corpus)`` builds the objective; ``objective_id`` (name, version, params) enters
    the cache key.
    """
    if handle.family not in ("mlm", "clm"):
        raise UnsupportedError(f"model {handle.id!r} is a {handle.family} model; LM fine-tuning needs mlm or clm")
    key = cache_key(trainer=LM_TRAINER_VERSION, model=handle.id, family=handle.family,
                    weights=handle.weights_sha256, lineage=list(handle.lineage), config=config.key_fields(),
                    corpus=corpus.digest(), objective=objective_id)
    folder = weights_folder(cache, "lm_finetuned", key)
    model = handle.clone_model()
    meta = load_cached(model, folder)
    if meta is not None:
        return LMFineTuned(model, key, meta.get("history", []), 0.0, True)
    torch.manual_seed(config.seed)  # the objective's own parameters (autoencoder) start from the cell seed too
    objective = make_objective(model.config.hidden_size, corpus)
    history, rate = train_lm(model, handle.tokenizer, handle.family, corpus, config, objective, progress=progress)
    save_atomic(model, folder, {"history": history, "tokens_per_s": rate, "config": config.key_fields(),
                                "corpus": corpus.name, "objective": objective_id})
    return LMFineTuned(model, key, history, rate, False)


class _LMStep(StepHooks):
    """Seeded shuffled passes over the corpus (full batches only), per-sentence losses through the objective, one
    history row every 10% of the steps."""

    def __init__(self, tokenizer, family: str, corpus: LabelledCorpus, config: TrainConfig, objective: Objective,
                 vocab: int, bar):
        self.family, self.corpus, self.config, self.objective, self.vocab, self.bar = \
            family, corpus, config, objective, vocab, bar
        self.tokens = _Tokens(tokenizer, corpus.texts, config.max_length)
        self.labels = torch.as_tensor(corpus.label_ids())
        self.mask_id = tokenizer.mask_token_id
        if family == "mlm" and self.mask_id is None:
            raise UnsupportedError("masked-LM fine-tuning needs a tokenizer with a mask token")
        self.passes = torch_passes(config.seed)
        self.every = max(1, config.steps // 10)
        self.history, self.running, self.seen_tokens, self.taken = [], [], 0, 0

    def order(self, epoch):
        return self.passes(len(self.corpus))

    def loss(self, model, rows, epoch):
        batch = build_batch(self.tokens, rows, family=self.family, config=self.config, epoch=epoch,
                            mask_id=self.mask_id, vocab_size=self.vocab)
        with compute_context(self.config.precision):  # bf16 products; losses and hidden states come out float32
            losses, hidden = sentence_losses(model, batch, family=self.family,
                                             need_hidden=self.objective.needs_hidden)
        loss, info = self.objective.loss({"losses": losses, "hidden": hidden}, {"labels": self.labels[rows]}, epoch)
        if not torch.isfinite(loss):
            raise BiasboardError(f"fine-tuning diverged at step {self.taken + 1}: loss {float(loss)}")
        return loss, (batch, losses, info)

    def after_step(self, *, epoch, index, step, rows, loss, record, model):
        batch, losses, info = record
        self.taken = step
        self.seen_tokens += int(batch["attention_mask"].sum())
        self.running.append((float(loss.detach()), float(losses.detach().mean())))
        if step % self.every == 0 or step == self.config.steps:
            row = {"step": step, "loss": float(np.mean([r[0] for r in self.running])),
                   "mean_sentence_loss": float(np.mean([r[1] for r in self.running]))}
            row.update({k: v for k, v in info.items() if isinstance(v, (int, float, list))})
            self.history.append(row)
            self.running = []
        self.bar.update(1)
        return False


def train_lm(model, tokenizer, family: str, corpus: LabelledCorpus, config: TrainConfig, objective: Objective, *,
             progress: bool = False) -> tuple[list[dict[str, Any]], float]:
    """Fine-tune ``model`` in place with the shared loop: seeded shuffled passes over the corpus, per-sentence
    losses, objective, AdamW step (the objective's own parameters at ``aux_lr``). ``config.precision``
    ``mixed-bf16`` runs the model's forward pass under bfloat16 autocast (weights, gradients, optimiser state and the
    objective stay float32).

    Returns (history: one row every 10% of the steps, tokens per second over the run).
    """
    from tqdm.auto import tqdm

    if config.family != "lm":
        raise BiasboardError(f"train_lm needs an lm TrainConfig, got family {config.family!r}")
    vocab = model.get_output_embeddings().weight.shape[0]
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    opt, groups = adamw(named, config, aux=list(objective.parameters()))
    sched = linear_warmup(opt, config, config.steps)
    bar = tqdm(total=config.steps, desc=f"fine-tune {family}", disable=not progress, leave=False)
    step = _LMStep(tokenizer, family, corpus, config, objective, vocab, bar)
    started = time.perf_counter()
    train_loop(model, step, config, optimizer=opt, batches=batches_per_pass(len(corpus), config.batch_size,
                                                                             drop_last=True),
               max_steps=config.steps, scheduler=sched, clip=[p for g in groups for p in g["params"]],
               seed=config.seed)
    bar.close()
    return step.history, step.seen_tokens / max(time.perf_counter() - started, 1e-9)


COMMON_PARAMS: dict[str, Any] = {
    "corpus": "3bias", "n_sentences": 3000, "corpus_seed": 0, "steps": 0, "batch_size": 32, "lr": 5e-5,
    "max_length": 0, "train_precision": "auto",
}
"""Parameters every LM fine-tuning method takes (see docs/lm-methods.md)."""


TRAIN_PRECISIONS = ("auto", "float32", "mixed-bf16")
"""Values of the ``train_precision`` method parameter; ``auto`` is resolved when the matrix is planned (mixed-bf16
where bfloat16 runs natively, else float32), so cell keys, lineage and cache keys hold the precision that ran."""


def resolve_train_precision(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with ``train_precision`` made concrete (``auto`` decided by this machine's hardware)."""
    value = params.get("train_precision", "auto")
    if value not in TRAIN_PRECISIONS:
        raise BiasboardError(f"train_precision {value!r}; valid: {', '.join(TRAIN_PRECISIONS)}")
    return dict(params, train_precision=resolve_dtype(value, where="train_precision"))


UPSTREAM_STEPS = "upstream_steps"
"""``ctx.extra`` key that caps the fine-tuning steps of every upstream method (smoke runs, quick looks); it is part
of the cell key like any extra."""


def train_config(params: dict[str, Any], family: str, seed: int, extra: dict[str, Any] | None = None
                 ) -> TrainConfig:
    """The lm TrainConfig from resolved method params; steps / max_length 0 mean the family's default (``AUTO_*``);
    ``extra[UPSTREAM_STEPS]`` caps the steps; ``train_precision`` (absent: float32, as before it existed) sets the
    training precision."""
    steps = int(params.get("steps") or 0) or AUTO_STEPS[family]
    if (extra or {}).get(UPSTREAM_STEPS):
        steps = min(steps, int(extra[UPSTREAM_STEPS]))
    max_length = int(params.get("max_length") or 0) or AUTO_MAX_LENGTH[family]
    precision = resolve_dtype(str(params.get("train_precision", "float32")), where="train_precision")
    return TrainConfig("lm", steps=steps, batch_size=int(params["batch_size"]), lr=float(params["lr"]),
                       max_length=max_length, seed=int(seed), precision=precision)


def finetune_record(config: TrainConfig) -> dict[str, Any]:
    """What the runner writes to a cell's ``provenance.finetune``: the budget and precision that actually ran."""
    return {"steps": config.steps, "batch_size": config.batch_size, "max_length": config.max_length,
            "precision": config.precision}


def label(name: str, params: dict[str, Any], seed: int) -> str:
    return f"{name}(" + ",".join(f"{k}={params[k]}" for k in sorted(params)) + f",seed={seed})"


class LMFinetuneMethod(Method):
    """Shared ``apply`` of the LM fine-tuning methods: subclasses only say how to build their objective."""

    kind = "finetune"
    families = ("mlm", "clm")
    extra_keys = (UPSTREAM_STEPS,)

    def objective(self, params: dict[str, Any], dim: int, corpus: LabelledCorpus) -> Objective:  # pragma: no cover
        raise NotImplementedError

    def resolve_params(self, given):
        return resolve_train_precision(super().resolve_params(given))

    def apply(self, handle, ctx):
        params = self.resolve_params(ctx.params)
        corpus = load_corpus(str(params["corpus"]), n_sentences=int(params["n_sentences"]),
                             seed=int(params["corpus_seed"]))
        config = train_config(params, handle.family, ctx.seed, ctx.extra)
        ft = finetune_lm(handle, corpus, config, lambda dim, c: self.objective(params, dim, c),
                         objective_id={"name": self.name, "version": self.version, "params": params},
                         cache=ctx.cache_dir, progress=ctx.progress)
        return handle.derive(model=ft.model, step=label(self.name, params, ctx.seed),
                             finetuned_on=corpus.name, finetune_history=ft.history, finetune=finetune_record(config))

