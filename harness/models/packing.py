"""Shared-prefix packing for causal scoring: sequences that start alike run as one row, the prefix once.

Why: the bias benchmarks score sets of sentences that share their start. A CrowS-Pairs pair differs in a word or
two, a StereoSet intrasentence cluster's three sentences share everything before the blank, a BBQ context is
scored with each of its three answers. A causal model's states at the shared tokens do not depend on what follows,
so a row ``prefix + suffix_1 + suffix_2 + ...`` whose attention lets each suffix see the prefix and itself (a
4D mask) with each suffix's positions continuing the prefix's gives every sequence its own numbers, for fewer
tokens through the model. Sequences are sorted, so those sharing the longest starts are neighbours, and grouped
greedily while a group still saves tokens.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch

__all__ = ["Pack", "batched_tensors", "pack_batches", "prefix_packs"]

MAX_MEMBERS = 8  # a row of 8 sentences stays short enough that its attention cost is small beside the saving
MIN_GAIN = 2  # tokens a group must save to take another member


@dataclass
class Pack:
    """One packed row: ``tokens[i]`` at ``positions[i]`` in ``segments[i]`` (-1 shared prefix, k member k's suffix);
    ``where[k][q]`` is the row index holding member k's q-th token."""

    members: list[int]
    tokens: list[int]
    positions: list[int]
    segments: list[int]
    where: list[list[int]]


def prefix_packs(seqs: Sequence[Sequence[int]], *, max_members: int = MAX_MEMBERS,
                 min_gain: int = MIN_GAIN) -> list[Pack]:
    """Group ``seqs`` (by index) into packs. Adding a sequence that shares ``s`` tokens with a group of ``g``
    members whose common start is ``p`` saves ``s - (g - 1) * (p - s)`` tokens; it joins when that is at least
    ``min_gain``. In sorted order a group's common start is what its first and newest members share."""
    order = sorted(range(len(seqs)), key=lambda i: tuple(seqs[i]))
    groups: list[tuple[list[int], int]] = []
    for i in order:
        if groups:
            members, common = groups[-1]
            shared = len(os.path.commonprefix([list(seqs[members[0]]), list(seqs[i])]))
            if len(members) < max_members and shared - (len(members) - 1) * (common - shared) >= min_gain:
                members.append(i)
                groups[-1] = (members, shared)
                continue
        groups.append(([i], len(seqs[i])))
    return [_layout([seqs[i] for i in members], members, common) for members, common in groups]


def _layout(seqs: list[Sequence[int]], members: list[int], common: int) -> Pack:
    tokens, positions, segments = list(seqs[0][:common]), list(range(common)), [-1] * common
    where = []
    for k, seq in enumerate(seqs):
        start = len(tokens)
        where.append(list(range(common)) + list(range(start, start + len(seq) - common)))
        tokens += seq[common:]
        positions += range(common, len(seq))
        segments += [k] * (len(seq) - common)
    return Pack(members, tokens, positions, segments, where)


def pack_batches(packs: Sequence[Pack], batch_size: int) -> Iterable[list[Pack]]:
    """Packs sorted by row length, in batches holding at most ``batch_size`` sequences (one pack at least)."""
    batch: list[Pack] = []
    held = 0
    for pk in sorted(packs, key=lambda p: len(p.tokens)):
        if batch and held + len(pk.members) > max(1, batch_size):
            yield batch
            batch, held = [], 0
        batch.append(pk)
        held += len(pk.members)
    if batch:
        yield batch


def batched_tensors(batch: Sequence[Pack], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Input ids, position ids and the boolean attention mask (batch, 1, query, key; True = may attend) of a batch
    of packs. A token sees earlier tokens of the shared prefix and of its own segment; padding sees only itself,
    so no softmax row is empty."""
    width = max(len(p.tokens) for p in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    pos = torch.zeros((len(batch), width), dtype=torch.long)
    seg = torch.full((len(batch), width), -2, dtype=torch.long)
    for b, pk in enumerate(batch):
        n = len(pk.tokens)
        ids[b, :n] = torch.as_tensor(pk.tokens, dtype=torch.long)
        pos[b, :n] = torch.as_tensor(pk.positions, dtype=torch.long)
        seg[b, :n] = torch.as_tensor(pk.segments, dtype=torch.long)
    idx = torch.arange(width)
    earlier = idx[None, :] <= idx[:, None]
    key, query = seg[:, None, :], seg[:, :, None]
    allowed = earlier & ((key == -1) | (key == query)) & (key != -2)
    allowed |= torch.eye(width, dtype=torch.bool) & (query == -2)
    return ids, pos, allowed[:, None]
