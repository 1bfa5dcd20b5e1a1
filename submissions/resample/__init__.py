"""Resample: re-balance P(group | label) in the downstream fine-tuning data (Baksi, Singh, Joshi 2024).

Within each label y with n_y examples, group g gets round(n_y * target_g) examples: drawn without replacement when
the group has enough, with replacement (oversampling) when not, so the data keep their size and label mix.
``target=independent`` sets target_g = P(g) overall (group independent of label); ``uniform`` sets 1 / #groups.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from biasboard.harness.errors import BiasboardError, UnsupportedError
from biasboard.harness.registry import register_method
from biasboard.harness.specs import Method

TARGETS = ("independent", "uniform")


def balanced_indices(labels, groups, *, target: str, seed: int) -> np.ndarray:
    """Row indices of the re-balanced data (sorted, repeats allowed). A group absent from a label cannot be
    drawn there, so that label shrinks by the group's share.

    Worked: label 0 = rows 0-3 (f f f m), label 1 = rows 4-7 (m m m f); uniform wants 2 f + 2 m per label:
    f drawn from {0, 1, 2} without replacement, the lone m (row 3) twice; likewise rows 4-6 and row 7 twice.
    >>> balanced_indices([0, 0, 0, 0, 1, 1, 1, 1], list("fffmmmmf"), target="uniform", seed=0).tolist()
    [1, 2, 3, 3, 4, 6, 7, 7]
    """
    if target not in TARGETS:
        raise BiasboardError(f"resample: target {target!r}; valid: {TARGETS}")
    labels, groups = np.asarray(labels), np.asarray(groups)
    names = sorted(set(groups.tolist()))
    share = Counter(groups.tolist())
    shares = {g: (share[g] / len(groups) if target == "independent" else 1 / len(names)) for g in names}
    rng = np.random.default_rng(seed)
    out = []
    for y in sorted(set(labels.tolist())):
        rows_y = np.flatnonzero(labels == y)
        for g in names:
            pool = rows_y[groups[rows_y] == g]
            want = int(round(len(rows_y) * shares[g]))
            if want == 0 or len(pool) == 0:
                continue
            out.append(rng.choice(pool, size=want, replace=want > len(pool)))
    return np.sort(np.concatenate(out)) if out else np.arange(0)


@register_method
class Resample(Method):
    name = "resample"
    version = "1.0"
    description = "Re-balance P(group | label) of the fine-tuning data to a target by under/over-sampling."
    families = ("encoder", "mlm", "clm")
    kind = "data"
    params = {"target": "independent"}
    citation = "Baksi, Singh, Joshi. Downstream bias mitigation is all you need. arXiv 2408.00612 (2024)."

    def transform_data(self, dataset, ctx):
        if dataset.groups is None:
            raise UnsupportedError("resample: the fine-tuning data carry no group labels to balance (e.g. GLUE)")
        idx = balanced_indices(dataset.labels, dataset.groups, target=str(ctx.params.get("target", "independent")),
                               seed=ctx.seed)
        return dataset.select(idx)
