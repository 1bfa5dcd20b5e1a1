"""Batched scoring primitives on a model handle.

Every function takes many items at once, sorts them by length so batches carry little padding, runs padded
batches with an attention mask, and returns results in the caller's order. Causal scoring also runs sequences that
share their start as one row, the shared tokens once (``harness.models.packing``). Results do not depend on the
batch size (tested: batch 1 vs 64 agree per item within 1e-4).
"""
from __future__ import annotations

import itertools
from typing import Iterable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from biasboard.harness.errors import UnsupportedError
from biasboard.harness.models import last_layer, packing, vocab
from biasboard.harness.models.precision import compute_context


def tokenize(handle, texts: Sequence[str], *, add_special_tokens: bool = True,
             max_length: int | None = None) -> list[list[int]]:
    """Token ids of each text: one tokenizer call over the distinct texts (CrowS-Pairs and StereoSet repeat many).
    ``max_length`` truncates (special tokens kept), as the tokenizer's ``truncation=True`` does."""
    return tokenize_with(handle.tokenizer, texts, add_special_tokens=add_special_tokens, max_length=max_length)


def tokenize_with(tokenizer, texts: Sequence[str], *, add_special_tokens: bool = True,
                  max_length: int | None = None) -> list[list[int]]:
    """``tokenize`` for callers that hold a tokenizer rather than a handle."""
    distinct = list(dict.fromkeys(texts))
    if not distinct:
        return []
    cut = {"truncation": True, "max_length": int(max_length)} if max_length else {}
    ids = dict(zip(distinct, tokenizer(distinct, add_special_tokens=add_special_tokens, **cut)["input_ids"]))
    return [list(ids[t]) for t in texts]


def max_tokens(handle) -> int | None:
    """The longest input the model takes: its position table, or the tokenizer's limit if smaller (None: no limit
    known). What ``truncation=True`` means for bias-bench's feature extraction."""
    limits = [getattr(handle.model.config, "max_position_embeddings", None),
              getattr(handle.tokenizer, "model_max_length", None)]
    limits = [int(x) for x in limits if isinstance(x, int) and 0 < x < 1_000_000]
    return min(limits) if limits else None


def _batches(order: Sequence[int], batch_size: int) -> Iterable[list[int]]:
    for start in range(0, len(order), max(1, batch_size)):
        yield list(order[start:start + batch_size])


def _equal_length_batches(order: Sequence[int], lengths: Sequence[int], batch_size: int) -> Iterable[list[int]]:
    """Batches of texts of one token length each (``order`` sorted by length): no padding, so every text's numbers
    are those of encoding it alone, whatever the batch size (bias-bench encodes one sentence at a time)."""
    batch: list[int] = []
    for i in order:
        if batch and (len(batch) >= max(1, batch_size) or lengths[i] != lengths[batch[0]]):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def _pad(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and the attention mask, filled in one vectorised step (no tensor per row)."""
    lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
    mask = np.arange(lengths.max()) < lengths[:, None]
    ids = np.full(mask.shape, pad_id, dtype=np.int64)
    ids[mask] = np.fromiter(itertools.chain.from_iterable(seqs), dtype=np.int64, count=int(lengths.sum()))
    return torch.from_numpy(ids), torch.from_numpy(mask.astype(np.int64))


def _require(handle, *families: str) -> None:
    if handle.family not in families:
        raise UnsupportedError(f"model {handle.id!r} is a {handle.family} model; this needs one of {families}")


def _mlm_head(model):
    """The module mapping the base model's hidden states to vocabulary logits, when it is a single child
    (BERT ``cls``, RoBERTa ``lm_head``, ALBERT ``predictions``); None means: use the full forward."""
    base = getattr(model, "base_model", None)
    if base is None or base is model:
        return None
    heads = [m for _, m in model.named_children() if m is not base]
    return heads[0] if len(heads) == 1 else None


# MLM classes whose vocabulary head ends in the output projection (``vocab.split_head``): the head's transform
# runs at the masked positions, the projection block by block.
_SPLIT_MLM_HEADS = ("bert", "roberta", "xlm-roberta", "camembert", "albert")


def _mlm_split(model):
    """``(transform, projection)`` of an MLM's head when it can run block by block (``vocab``), else None."""
    head = _mlm_head(model)
    if head is None or getattr(getattr(model, "config", None), "model_type", None) not in _SPLIT_MLM_HEADS:
        return None
    return vocab.split_head(head, model.get_output_embeddings())


@torch.inference_mode()
def masked_logprobs(handle, queries: Sequence[tuple[Sequence[int], Sequence[tuple[int, int]]]], *,
                    batch_size: int = 64, progress: bool = False) -> list[np.ndarray]:
    """Log-probabilities of target tokens at positions of already-masked inputs.

    ``queries[i] = (input_ids, [(position, target_id), ...])``: one forward pass per query (batched), returning
    ``log P(target_id at position | input_ids)`` for each pair, in order. Identical queries run once. The
    vocabulary head runs only at the asked positions, over at least ``vocab.ROW_BLOCK`` of them at a time.
    """
    _require(handle, "mlm")
    model, pad = handle.model, handle.tokenizer.pad_token_id
    head, split = _mlm_head(model), _mlm_split(model)
    keys = [(tuple(ids), tuple(asked)) for ids, asked in queries]
    distinct = list(dict.fromkeys(keys))
    done: list[np.ndarray | None] = [None] * len(distinct)
    order = sorted(range(len(distinct)), key=lambda i: len(distinct[i][0]))
    waiting: list[tuple[list[int], torch.Tensor, list[int]]] = []  # (queries, head inputs, targets) not yet scored

    def finish(batch: list[int], lp: np.ndarray) -> None:
        k = 0
        for qi in batch:
            n = len(distinct[qi][1])
            done[qi] = lp[k:k + n].astype(np.float64)
            k += n

    def flush() -> None:
        with compute_context(handle.precision):
            feats = split[0](torch.cat([f for _, f, _ in waiting]).unsqueeze(1)).squeeze(1)
            lp = vocab.target_logprobs(feats, split[1].weight, split[1].bias,
                                       torch.tensor([t for _, _, ts in waiting for t in ts]))
        finish([qi for batch, _, _ in waiting for qi in batch], lp.numpy())
        waiting.clear()

    bar = tqdm(total=len(distinct), desc="masked LM", disable=not progress, leave=False)
    for batch in _batches(order, batch_size):
        ids, mask = _pad([distinct[i][0] for i in batch], pad)
        rows = [b for b, qi in enumerate(batch) for _ in distinct[qi][1]]
        cols = [pos for qi in batch for pos, _ in distinct[qi][1]]
        targets = [tgt for qi in batch for _, tgt in distinct[qi][1]]
        rows_t, cols_t = torch.tensor(rows, dtype=torch.long), torch.tensor(cols, dtype=torch.long)
        with compute_context(handle.precision):
            if split is not None:
                if last_layer.supported(model):
                    asked = last_layer.hidden_at(model, ids, mask, rows_t, cols_t)
                else:
                    asked = model.base_model(input_ids=ids, attention_mask=mask)[0][rows_t, cols_t]
                waiting.append((batch, asked, targets))
            elif head is not None:
                # Run the vocabulary head only where a prediction is needed: most of an MLM's cost on short
                # sentences is the hidden x vocab projection at every position.
                hidden = model.base_model(input_ids=ids, attention_mask=mask)[0]
                picked = head(hidden[rows_t, cols_t].unsqueeze(1)).squeeze(1)
            else:
                picked = model(input_ids=ids, attention_mask=mask).logits[rows_t, cols_t]
        if split is None:
            finish(batch, _target_logprobs(picked, torch.tensor(targets)).numpy())
        elif sum(len(ts) for _, _, ts in waiting) >= vocab.ROW_BLOCK:
            flush()
        bar.update(len(batch))
    if waiting:
        flush()
    bar.close()
    index = {key: i for i, key in enumerate(distinct)}
    return [done[index[key]].copy() for key in keys]  # type: ignore[union-attr]


def pseudo_log_likelihoods(handle, token_ids: Sequence[Sequence[int]], positions: Sequence[Sequence[int]], *,
                           batch_size: int = 64, progress: bool = False) -> list[np.ndarray]:
    """For each sequence, ``log P(token_p | sequence with only p masked)`` for each p in its positions.

    All masked copies of all sequences go through ``masked_logprobs`` together, so short sentences share
    batches (Salazar et al. 2020 pseudo-log-likelihood, one mask at a time).
    """
    mask_id = handle.tokenizer.mask_token_id
    if mask_id is None:
        raise UnsupportedError(f"model {handle.id!r}: tokenizer has no mask token")
    queries, owner = [], []
    for i, (ids, pos) in enumerate(zip(token_ids, positions)):
        for p in pos:
            masked = list(ids)
            masked[p] = mask_id
            queries.append((masked, [(p, ids[p])]))
            owner.append(i)
    flat = masked_logprobs(handle, queries, batch_size=batch_size, progress=progress)
    out: list[list[float]] = [[] for _ in token_ids]
    for i, lp in zip(owner, flat):
        out[i].append(float(lp[0]))
    return [np.asarray(v, dtype=np.float64) for v in out]


def _no_cache(model) -> dict:
    """``use_cache=False`` for models that keep a key/value cache: scoring never generates, and filling the
    cache costs about 4% of a causal LM's forward (SmolLM2-135M, measured in BENCHMARKS.md)."""
    return {"use_cache": False} if getattr(getattr(model, "config", None), "use_cache", None) is not None else {}


# Causal LM classes whose logits are exactly ``get_output_embeddings()(base_model(...)[0])`` (no soft-capping or
# logit scaling), so the vocabulary head can run at the scored positions only.
_PLAIN_CLM_HEADS = ("llama", "mistral", "qwen2", "gpt2", "gpt_neox")


def _clm_head(model):
    """The causal LM's vocabulary head when it can be applied to chosen positions, else None (full forward)."""
    if getattr(getattr(model, "config", None), "model_type", None) not in _PLAIN_CLM_HEADS:
        return None
    base, head = getattr(model, "base_model", None), model.get_output_embeddings()
    plain = (base is not None and base is not model and isinstance(head, torch.nn.Linear)
             and not vocab.hooked(head))  # the head runs block by block, so a hook on it would see nothing
    return head if plain else None


def _target_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``log_softmax(logits)[target]`` per row, in float32, without materialising the whole log-softmax."""
    logits = logits.float()
    return logits.gather(1, targets.unsqueeze(1)).squeeze(1) - torch.logsumexp(logits, dim=-1)


def _packable(model, seqs: Sequence[Sequence[int]]) -> bool:
    """Whether sequences may run shared-prefix packed (``harness.models.packing``): a plain head, a forward that
    takes position ids and a ready 4D mask as given, and no sliding window shorter than the longest sequence."""
    cfg = getattr(model, "config", None)
    window = getattr(cfg, "sliding_window", None)
    return (_clm_head(model) is not None and getattr(cfg, "_attn_implementation", None) in ("sdpa", "eager")
            and (window is None or max(map(len, seqs), default=0) <= window))


def _attention_mask(allowed: torch.Tensor, model) -> torch.Tensor:
    """The boolean may-attend mask as the model's attention wants it: as is for SDPA, additive for eager."""
    if model.config._attn_implementation == "sdpa":
        return allowed
    dtype = next(model.parameters()).dtype
    return torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)


@torch.inference_mode()
def sequence_logprobs(handle, token_ids: Sequence[Sequence[int]], *, starts: Sequence[int] | None = None,
                      batch_size: int = 32, progress: bool = False) -> list[np.ndarray]:
    """Causal LM: ``log P(t_i | t_<i)`` for i = start..len-1 of each sequence (start defaults to 1: the first token
    is the context). Identical sequences run once, sequences sharing a start run packed (the shared tokens once),
    and the vocabulary head runs only at the scored positions."""
    _require(handle, "clm")
    starts = [1] * len(token_ids) if starts is None else list(starts)
    for i, (seq, st) in enumerate(zip(token_ids, starts, strict=True)):
        if not 1 <= st <= len(seq):
            raise UnsupportedError(f"item {i}: start {st} outside 1..{len(seq)} (a sequence of {len(seq)} tokens)")
    distinct = list(dict.fromkeys((tuple(seq), st) for seq, st in zip(token_ids, starts)))
    score = _packed_logprobs if _packable(handle.model, token_ids) else _padded_logprobs
    done = dict(zip(distinct, score(handle, distinct, batch_size, progress)))
    return [done[(tuple(seq), st)].copy() for seq, st in zip(token_ids, starts)]


def _scatter(lp: np.ndarray, order: Sequence[int], items: list[tuple[tuple[int, ...], int]],
             out: list[np.ndarray | None]) -> None:
    """Cut a batch's flat scored log-probabilities into its items' runs (``order``: the items in scoring order)."""
    k = 0
    for i in order:
        n = len(items[i][0]) - items[i][1]
        out[i] = lp[k:k + n]
        k += n


def _packed_logprobs(handle, items: list[tuple[tuple[int, ...], int]], batch_size: int, progress: bool
                     ) -> list[np.ndarray]:
    model, head = handle.model, _clm_head(handle.model)
    pad = handle.tokenizer.pad_token_id
    out: list[np.ndarray | None] = [None] * len(items)
    bar = tqdm(total=len(items), desc="causal LM", disable=not progress, leave=False)
    for batch in packing.pack_batches(packing.prefix_packs([seq for seq, _ in items]), batch_size):
        ids, pos, allowed = packing.batched_tensors(batch, pad)
        # the state at the row index holding token p - 1 predicts token p
        rows, cols, targets = [], [], []
        for b, pk in enumerate(batch):
            for k, i in enumerate(pk.members):
                seq, st = items[i]
                rows += [b] * (len(seq) - st)
                cols += pk.where[k][st - 1:len(seq) - 1]
                targets += seq[st:]
        with compute_context(handle.precision):
            hidden = model.base_model(input_ids=ids, attention_mask=_attention_mask(allowed, model),
                                      position_ids=pos, **_no_cache(model))[0]
            lp = vocab.target_logprobs(hidden[torch.tensor(rows), torch.tensor(cols)], head.weight, head.bias,
                                       torch.tensor(targets)).numpy().astype(np.float64)
        members = [i for pk in batch for i in pk.members]
        _scatter(lp, members, items, out)
        bar.update(len(members))
    bar.close()
    return out  # type: ignore[return-value]


def _padded_logprobs(handle, items: list[tuple[tuple[int, ...], int]], batch_size: int, progress: bool
                     ) -> list[np.ndarray]:
    model, pad = handle.model, handle.tokenizer.pad_token_id
    head = _clm_head(model)
    out: list[np.ndarray | None] = [None] * len(items)
    order = sorted(range(len(items)), key=lambda i: len(items[i][0]))
    bar = tqdm(total=len(items), desc="causal LM", disable=not progress, leave=False)
    for batch in _batches(order, batch_size):
        ids, mask = _pad([items[i][0] for i in batch], pad)
        # the logits at position p - 1 predict token p
        rows = [b for b, i in enumerate(batch) for _ in range(items[i][1], len(items[i][0]))]
        cols = [p for i in batch for p in range(items[i][1], len(items[i][0]))]
        rows_t, cols_t = torch.tensor(rows, dtype=torch.long), torch.tensor(cols, dtype=torch.long)
        with compute_context(handle.precision):
            if head is not None:
                hidden = model.base_model(input_ids=ids, attention_mask=mask, **_no_cache(model))[0]
                lp = vocab.target_logprobs(hidden[rows_t, cols_t - 1], head.weight, head.bias, ids[rows_t, cols_t])
            else:
                logits = model(input_ids=ids, attention_mask=mask, **_no_cache(model)).logits[rows_t, cols_t - 1]
                lp = _target_logprobs(logits, ids[rows_t, cols_t])
        lp = lp.numpy().astype(np.float64)
        _scatter(lp, batch, items, out)
        bar.update(len(batch))
    bar.close()
    return out  # type: ignore[return-value]


def continuation_logprobs(handle, contexts: Sequence[Sequence[int]], continuations: Sequence[Sequence[int]], *,
                          batch_size: int = 32, progress: bool = False) -> list[np.ndarray]:
    """Causal LM: ``log P(c_j | context, c_<j)`` for every token of each continuation (the multiple-choice
    log-likelihood of lm-evaluation-harness). Context and continuation are tokenized apart by the caller, so a
    continuation's tokens do not depend on its context; each context needs at least one token."""
    if len(contexts) != len(continuations):
        raise ValueError(f"{len(contexts)} contexts but {len(continuations)} continuations")
    for i, (ctx, cont) in enumerate(zip(contexts, continuations)):
        if not len(ctx) or not len(cont):
            raise UnsupportedError(f"item {i}: context and continuation each need at least one token")
    whole = [list(ctx) + list(cont) for ctx, cont in zip(contexts, continuations)]
    return sequence_logprobs(handle, whole, starts=[len(ctx) for ctx in contexts], batch_size=batch_size,
                             progress=progress)


POOLINGS = ("mean", "first", "last")


@torch.inference_mode()
def encode(handle, texts: Sequence[str], *, pooling: str = "mean", batch_size: int = 64, normalize: bool = False,
           layer: int = -1, progress: bool = False, truncate: bool = False, unpadded: bool = False) -> np.ndarray:
    """Sentence embeddings from a hidden layer: mean over all tokens (special tokens included, as bias-bench),
    the first token, or the last real token. Works for encoder, mlm and clm handles. ``truncate`` cuts texts
    longer than the model takes (``max_tokens``), as bias-bench's INLP feature extraction does; ``unpadded``
    batches only texts of equal token length, for fits that amplify float32 round-off (INLP's 80 rounds)."""
    _require(handle, "encoder", "mlm", "clm")
    if pooling not in POOLINGS:
        raise UnsupportedError(f"pooling {pooling!r}; valid: {POOLINGS}")
    ids_list = tokenize(handle, texts, max_length=max_tokens(handle) if truncate else None)
    model, pad = handle.model, handle.tokenizer.pad_token_id
    no_cache = _no_cache(model) if handle.family == "clm" else {}
    order = sorted(range(len(texts)), key=lambda i: len(ids_list[i]))
    batches = (_equal_length_batches(order, [len(t) for t in ids_list], batch_size) if unpadded
               else _batches(order, batch_size))
    out = None
    bar = tqdm(total=len(texts), desc="encode", disable=not progress, leave=False)
    for batch in batches:
        ids, mask = _pad([ids_list[i] for i in batch], pad)
        with compute_context(handle.precision):
            res = model(input_ids=ids, attention_mask=mask, output_hidden_states=True, **no_cache)
        hidden = res.hidden_states[layer].float()
        if pooling == "mean":
            m = mask.unsqueeze(-1).float()
            vec = (hidden * m).sum(1) / m.sum(1)
        elif pooling == "first":
            vec = hidden[:, 0]
        else:
            vec = hidden[torch.arange(len(batch)), mask.sum(1) - 1]
        if normalize:
            vec = torch.nn.functional.normalize(vec, dim=-1)
        if out is None:
            out = np.zeros((len(texts), vec.shape[-1]), dtype=np.float32)
        out[batch] = vec.numpy()
        bar.update(len(batch))
    bar.close()
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)
