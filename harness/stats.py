"""Uncertainty for every reported number: bootstrap CIs, permutation tests, multiple-testing adjustment."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from scipy import stats as sps


def bootstrap_ci(statistic: Callable[..., np.ndarray], *samples: np.ndarray, n_resamples: int = 1000,
                 seed: int = 0, confidence: float = 0.95, paired: bool = True) -> tuple[float, float]:
    """Percentile bootstrap CI of ``statistic(*samples)`` resampling examples (rows) with replacement.

    ``statistic`` must accept arrays with a trailing resample axis (``axis=-1``) and reduce over it, as
    ``scipy.stats.bootstrap`` expects for ``vectorized=True``. Degenerate samples give a zero-width interval.

    >>> lo, hi = bootstrap_ci(lambda x, axis=-1: np.mean(x, axis=axis), np.array([0., 1.] * 50), seed=1)
    >>> 0.35 < lo < 0.5 < hi < 0.65
    True
    """
    samples = tuple(np.asarray(s, dtype=float) for s in samples)
    if len(samples[0]) < 2:
        v = float(statistic(*samples, axis=-1))
        return v, v
    if all(np.all(s == s.flat[0]) for s in samples):
        v = float(statistic(*samples, axis=-1))
        return v, v
    res = sps.bootstrap(samples, statistic, n_resamples=n_resamples, confidence_level=confidence,
                        method="percentile", paired=paired, vectorized=True, rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def mean_ci(values: Sequence[float], *, scale: float = 1.0, n_resamples: int = 1000, seed: int = 0
            ) -> tuple[float, tuple[float, float]]:
    """Mean (times ``scale``) and its bootstrap 95% CI."""
    x = np.asarray(values, dtype=float) * scale
    return float(x.mean()) if len(x) else float("nan"), bootstrap_ci(
        lambda a, axis=-1: np.mean(a, axis=axis), x, n_resamples=n_resamples, seed=seed) if len(x) else (float("nan"),) * 2


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1).

    >>> holm([0.01, 0.04, 0.03]).round(3).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    order = np.argsort(p)
    adj = np.empty(m)
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, (m - rank) * p[idx])
        adj[idx] = min(1.0, running)
    return adj


def paired_bootstrap_diff(a: np.ndarray, b: np.ndarray, statistic: Callable[..., np.ndarray] | None = None, *,
                          n_resamples: int = 2000, seed: int = 0) -> tuple[float, tuple[float, float]]:
    """Difference statistic(b) - statistic(a) on paired per-example scores, with a paired bootstrap 95% CI."""
    stat = statistic or (lambda x, axis=-1: np.mean(x, axis=axis))
    a, b = np.asarray(a, float), np.asarray(b, float)

    def diff(x, y, axis=-1):
        return stat(y, axis=axis) - stat(x, axis=axis)

    return float(diff(a, b)), bootstrap_ci(diff, a, b, n_resamples=n_resamples, seed=seed, paired=True)
