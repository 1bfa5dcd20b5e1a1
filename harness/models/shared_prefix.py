"""Causal-LM log-probabilities of sequences that come in groups sharing a prefix, the prefix computed once.

Why: StereoSet's three candidates of an example share their context (intersentence, about half of every
sequence) or the words before the blank (intrasentence). Running each group's common prefix once and handing its
key/value cache to every member's continuation does a third less work for SmolLM2 on StereoSet, with the values of
``scoring.sequence_logprobs`` (equal to float rounding; tested).

Prefixes in one batch have the same length, so the cache holds no padding and the continuations' positions follow
from the cache length; continuations are right-padded. Models whose forward takes no cache fall back to
``sequence_logprobs``.
"""
from __future__ import annotations

import inspect
from collections import defaultdict
from itertools import groupby
from typing import Hashable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from harness.models import scoring


def _cache_argument(model) -> str | None:
    """Name of the forward argument that takes a key/value cache (``cache`` in transformers 5, before that
    ``past_key_values``), or None when the model takes none."""
    params = inspect.signature(model.forward).parameters
    return next((name for name in ("cache", "past_key_values") if name in params), None)


def plan_prefixes(token_ids: Sequence[Sequence[int]], groups: Sequence[Hashable]) -> list[tuple[int, list[int]]]:
    """(prefix length P, member indices) per group: the members' longest common prefix, leaving every member at
    least one token after it. A group whose members share no first token is split into single members, whose
    prefix is all but their last token. Sequences of one token need no scoring and are left out.

    >>> plan_prefixes([[1, 2, 3], [1, 2, 4, 5], [7, 8]], ["a", "a", "b"])
    [(2, [0, 1]), (1, [2])]
    """
    members: dict[Hashable, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        if len(token_ids[i]) > 1:
            members[g].append(i)
    plans = []
    for idx in members.values():
        seqs = [token_ids[i] for i in idx]
        p = min(len(s) for s in seqs) - 1
        for k in range(p):
            if any(s[k] != seqs[0][k] for s in seqs[1:]):
                p = k
                break
        if p >= 1:
            plans.append((p, idx))
        else:
            plans += [(len(token_ids[i]) - 1, [i]) for i in idx]
    return plans


def _gather(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


@torch.inference_mode()
def grouped_sequence_logprobs(handle, token_ids: Sequence[Sequence[int]], groups: Sequence[Hashable], *,
                              batch_size: int = 32, progress: bool = False) -> list[np.ndarray]:
    """``log P(t_i | t_<i)`` for i = 1..len-1 of each sequence, as ``scoring.sequence_logprobs``; sequences with
    the same ``groups`` value share their common prefix's forward pass. ``batch_size`` bounds the continuations
    per forward pass."""
    scoring._require(handle, "clm")
    model = handle.model
    argument = _cache_argument(model)
    if argument is None:
        return scoring.sequence_logprobs(handle, token_ids, batch_size=batch_size, progress=progress)
    out: list[np.ndarray] = [np.zeros(0) for _ in token_ids]
    plans = sorted(plan_prefixes(token_ids, groups), key=lambda plan: plan[0])
    bar = tqdm(total=sum(len(m) for _, m in plans), desc="causal LM (shared prefixes)", disable=not progress,
               leave=False)
    for p, same_length in groupby(plans, key=lambda plan: plan[0]):
        for batch in _by_members(list(same_length), batch_size):
            _score_batch(model, argument, handle.tokenizer.pad_token_id, token_ids, p, batch, out)
            bar.update(sum(len(m) for _, m in batch))
    bar.close()
    return out


def _by_members(plans: list[tuple[int, list[int]]], budget: int):
    """Consecutive runs of plans with at most ``budget`` members in all (at least one plan each)."""
    batch, size = [], 0
    for plan in plans:
        if batch and size + len(plan[1]) > budget:
            yield batch
            batch, size = [], 0
        batch.append(plan)
        size += len(plan[1])
    if batch:
        yield batch


def _score_batch(model, argument: str, pad_id: int, token_ids, p: int, batch, out: list[np.ndarray]) -> None:
    prefixes = torch.tensor([token_ids[idx[0]][:p] for _, idx in batch], dtype=torch.long)
    first = model(input_ids=prefixes, use_cache=True)
    prefix_lp = _gather(first.logits[:, :-1], prefixes[:, 1:]).numpy()  # tokens 1..p-1 of each prefix
    last = torch.log_softmax(first.logits[:, -1].float(), dim=-1)  # predicts each member's token p
    cache = getattr(first, "cache", None) or first.past_key_values
    rows = [j for j, (_, idx) in enumerate(batch) for _ in idx]
    members = [i for _, idx in batch for i in idx]
    conts = [list(token_ids[i][p:]) for i in members]
    next_lp = last[torch.tensor(rows), torch.tensor([c[0] for c in conts])].numpy()
    rest = [np.zeros(0)] * len(members)
    if max(len(c) for c in conts) > 1:
        cache.batch_select_indices(torch.tensor(rows))
        ids, mask = scoring._pad(conts, pad_id)
        attention = torch.cat((torch.ones(len(conts), p, dtype=mask.dtype), mask), dim=1)
        logits = model(input_ids=ids, attention_mask=attention, **{argument: cache}).logits[:, :-1]
        lp = _gather(logits, ids[:, 1:]).numpy()
        rest = [lp[r, : len(c) - 1] for r, c in enumerate(conts)]
    for r, (i, j) in enumerate(zip(members, rows)):
        out[i] = np.concatenate((prefix_lp[j], [next_lp[r]], rest[r])).astype(np.float64)
