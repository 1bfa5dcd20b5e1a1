"""Worst-group accuracy metrics (Sagawa et al. 2020; WILDS conventions), as pure functions on predictions.

All values are percentages. Groups are integer codes; empty groups are left out of minima and means.

- ``average_accuracy``: plain accuracy over the evaluation examples.
- ``weighted_accuracy``: per-group accuracies weighted by the *training* group frequencies (what WILDS and
  group_DRO call "average accuracy" on Waterbirds, whose test set is not distributed like its training set).
- ``mean_group_accuracy``: unweighted mean of the per-group accuracies.
- ``worst_group_accuracy``: minimum per-group accuracy.
"""
from __future__ import annotations

import numpy as np
from fairlearn.metrics import MetricFrame
from sklearn.metrics import accuracy_score

from biasboard.harness.stats import bootstrap_ci


def group_accuracies(y_true, y_pred, groups) -> dict[int, float]:
    """Accuracy (%) of each non-empty group, via fairlearn's MetricFrame.

    >>> group_accuracies([0, 0, 1, 1], [0, 1, 1, 1], [0, 0, 1, 1])
    {0: 50.0, 1: 100.0}
    """
    frame = MetricFrame(metrics=accuracy_score, y_true=np.asarray(y_true), y_pred=np.asarray(y_pred),
                        sensitive_features=np.asarray(groups))
    return {int(g): 100.0 * float(v) for g, v in frame.by_group.items()}


def average_accuracy(y_true, y_pred) -> float:
    """Plain accuracy (%).

    >>> average_accuracy([0, 1, 1, 0], [0, 1, 0, 0])
    75.0
    """
    return 100.0 * float(accuracy_score(y_true, y_pred))


def worst_group_accuracy(y_true, y_pred, groups) -> float:
    """Minimum accuracy (%) over the non-empty groups.

    >>> worst_group_accuracy([0, 0, 1, 1, 1], [0, 1, 1, 1, 1], [0, 0, 1, 1, 2])
    50.0
    """
    return min(group_accuracies(y_true, y_pred, groups).values())


def mean_group_accuracy(y_true, y_pred, groups) -> float:
    """Unweighted mean of per-group accuracies (%).

    >>> mean_group_accuracy([0, 0, 1], [0, 1, 1], [0, 0, 1])
    75.0
    """
    return float(np.mean(list(group_accuracies(y_true, y_pred, groups).values())))


def weighted_accuracy(y_true, y_pred, groups, weights: dict[int, float]) -> float:
    """Per-group accuracies weighted by ``weights`` (e.g. training group counts), renormalised over the groups
    present in the evaluation set.

    >>> weighted_accuracy([0, 0, 1, 1], [0, 1, 1, 1], [0, 0, 1, 1], {0: 3, 1: 1})
    62.5
    """
    accs = group_accuracies(y_true, y_pred, groups)
    w = np.asarray([float(weights.get(g, 0.0)) for g in accs])
    if w.sum() <= 0:
        raise ValueError("weights give zero mass to every group present in the evaluation set")
    return float(np.dot(w, list(accs.values())) / w.sum())


# ---- vectorised statistics for bootstrap CIs ----------------------------------------------------------------------

def _group_means(correct: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """(..., n_groups) per-group mean of ``correct`` along the last axis; NaN where a resample has no member."""
    onehot = groups[..., None] == np.arange(n_groups)
    counts = onehot.sum(axis=-2)
    sums = (correct[..., None] * onehot).sum(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def group_statistic(kind: str, n_groups: int, weights: np.ndarray | None = None):
    """A ``statistic(correct, groups, axis=-1)`` for ``harness.stats.bootstrap_ci`` (paired resampling)."""

    def stat(correct, groups, axis=-1):
        means = 100.0 * _group_means(np.asarray(correct), np.asarray(groups).astype(int), n_groups)
        if kind == "worst":
            return np.nanmin(means, axis=-1)
        if kind == "mean":
            return np.nanmean(means, axis=-1)
        if kind == "weighted":
            w = np.where(np.isnan(means), 0.0, weights)
            return np.nansum(means * w, axis=-1) / w.sum(axis=-1)
        raise ValueError(kind)

    return stat


def group_ci(kind: str, correct, groups, n_groups: int, *, weights=None, n_resamples: int = 1000,
             seed: int = 0) -> tuple[float, float]:
    """Bootstrap 95% CI of a group statistic, resampling examples (with their groups) together."""
    stat = group_statistic(kind, n_groups, None if weights is None else np.asarray(weights, dtype=float))
    return bootstrap_ci(stat, np.asarray(correct, float), np.asarray(groups, float), n_resamples=n_resamples,
                        seed=seed, paired=True)
