"""Seeded evaluation samples: the same N examples for every cell of a matrix, so methods are compared on paired data.

Why: a full evaluation of a 135M-parameter model on every method x seed of a grid does not fit a CPU hour; a fixed
random sample (``ctx.extra["eval_sample"] = N``, drawn with ``eval_sample_seed``, default 0, never the cell seed)
keeps every cell on the same examples and its CIs honest about the smaller n. ``max_examples`` (the first N, for
smoke runs) is a different thing and stays separate.
"""
from __future__ import annotations

from typing import Any, Sequence, TypeVar

import numpy as np

from biasboard.harness.errors import BiasboardError

T = TypeVar("T")


def seeded_indices(total: int, n: int, seed: int) -> np.ndarray:
    """``n`` distinct indices of ``range(total)`` drawn with ``seed``, in increasing order (the shared sampler of
    ``eval_sample`` and the downstream tasks' caps).

    >>> seeded_indices(6, 3, 0).tolist()
    [3, 4, 5]
    """
    return np.sort(np.random.default_rng(seed).choice(total, n, replace=False))


def eval_sample(items: Sequence[T], extra: dict[str, Any], *, what: str) -> tuple[list[T], dict[str, Any], list[str]]:
    """(sampled items in their original order, result flags, result notes); all items when no sample is asked.

    >>> eval_sample(list("abcdef"), {"eval_sample": 3}, what="pairs")[0]
    ['d', 'e', 'f']
    >>> eval_sample(list("abc"), {}, what="pairs")
    (['a', 'b', 'c'], {}, [])
    """
    n = extra.get("eval_sample")
    if not n:
        return list(items), {}, []
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise BiasboardError(f"eval_sample must be a positive integer, got {n!r}")
    seed = int(extra.get("eval_sample_seed", 0))
    if n >= len(items):
        return list(items), {}, []
    keep = seeded_indices(len(items), n, seed)
    flags = {"eval_sample": f"{n} of {len(items)} {what}"}
    notes = [f"evaluated on a seeded random sample of {n:,} of the {len(items):,} {what} (eval_sample_seed {seed}, "
             "the same for every cell)"]
    return [items[i] for i in keep], flags, notes
