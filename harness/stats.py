"""Uncertainty for every reported number, all interval code in one place: bootstrap CIs (resampling examples, or
resampling weights for count-based metrics), percentile and basic intervals, AUC standard errors, permutation-test
multiple-testing adjustment."""
from __future__ import annotations

import math
import warnings
from typing import Callable, Sequence

import numpy as np


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
    from scipy import stats as sps  # imported on use: scipy.stats costs about a second at start-up

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


def percentile_ci(replicates: np.ndarray, confidence: float | None = None) -> tuple:
    """Percentile 95% interval of bootstrap replicates along axis 0; NaN replicates (a degenerate resample, a group
    absent from a resample) are ignored. Floats for 1-D replicates, one bound per column for 2-D ones.

    Bounds: exactly the 2.5th and 97.5th percentiles, or with a ``confidence`` c the ``50 * (1 -/+ c)``th. Why both:
    SEAT and StereoSet pass 0.95, and ``50 * (1 - 0.95)`` is 2.500000000000002 in floating point, so the two
    spellings differ in the last bits; each caller keeps its own so that stored results stay bit-identical.
    >>> [round(v, 6) for v in percentile_ci(np.arange(101.))]
    [2.5, 97.5]
    >>> lo, hi = percentile_ci(np.array([[0., np.nan], [1., 5.], [2., 5.]]), confidence=1.0)
    >>> lo.tolist(), hi.tolist()
    ([0.0, 5.0], [2.0, 5.0])
    """
    lo_q, hi_q = (2.5, 97.5) if confidence is None else (50 * (1 - confidence), 50 * (1 + confidence))
    x = np.asarray(replicates, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column gives NaN bounds
        lo, hi = np.nanpercentile(x, lo_q, axis=0), np.nanpercentile(x, hi_q, axis=0)
    if np.ndim(lo) == 0:
        return float(lo), float(hi)
    return lo, hi


def resample_counts(idx: np.ndarray, n: int) -> np.ndarray:
    """Multiplicities of resamples: row k of the ``(r, n)`` float result counts how often each of the n examples
    occurs in ``idx[k]`` (one ``bincount`` for all rows), the weights of a weighted recomputation.

    >>> resample_counts(np.array([[0, 0, 2], [1, 2, 2]]), 3)
    array([[2., 0., 1.],
           [0., 1., 2.]])
    """
    idx = np.atleast_2d(idx)
    flat = (np.arange(len(idx))[:, None] * n + idx).ravel()
    return np.bincount(flat, minlength=len(idx) * n).reshape(len(idx), n).astype(float)


def weighted_bootstrap(stat: Callable[[np.ndarray], np.ndarray], n: int, *, n_resamples: int = 1000,
                       seed: int = 0, chunk: int = 50) -> np.ndarray:
    """Values of ``stat`` on ``n_resamples`` resamples of the n examples, drawn with replacement.

    ``stat(W)`` gets multiplicities ``W`` of shape ``(r, n)`` (row sums n) and returns ``r`` values or an ``(r, m)``
    array; the full-sample value is ``stat(np.ones((1, n)))``. Returns ``(n_resamples,)`` or ``(n_resamples, m)``.
    """
    rng = np.random.default_rng(seed)
    values = []
    for start in range(0, n_resamples, chunk):
        r = min(chunk, n_resamples - start)
        values.append(np.asarray(stat(resample_counts(rng.integers(0, n, size=(r, n)), n)), dtype=float))
    return np.concatenate(values)


def basic_ci(point: float, samples: np.ndarray, *, floor: float | None = 0.0) -> tuple[float, float]:
    """Reverse-percentile ("basic") 95% interval ``(2*point - q97.5, 2*point - q2.5)``, floored.

    Why: an RMS of noisy gaps is biased upward under resampling, so the plain percentile interval can miss the
    point estimate; the basic interval reflects the bootstrap distribution around it instead.
    >>> [round(v, 6) for v in basic_ci(1.0, np.array([1.0, 1.5, 2.0]))]  # q2.5 = 1.025, q97.5 = 1.975
    [0.025, 0.975]
    """
    lo, hi = percentile_ci(np.asarray(samples, dtype=float))
    out = (2 * point - hi, 2 * point - lo)
    return (max(out[0], floor), max(out[1], floor)) if floor is not None else out


def weighted_bootstrap_ci(stat: Callable[[np.ndarray], np.ndarray], n: int, *, n_resamples: int = 1000,
                          seed: int = 0, chunk: int = 50) -> tuple[float, float]:
    """Percentile 95% CI of a scalar ``stat`` (see ``weighted_bootstrap``).

    >>> lo, hi = weighted_bootstrap_ci(lambda W: W @ np.r_[np.zeros(50), np.ones(50)] / 100, 100, seed=1)
    >>> 0.35 < lo < 0.5 < hi < 0.65
    True
    """
    if n < 2:
        v = float(np.asarray(stat(np.ones((1, max(n, 1))))).ravel()[0])
        return v, v
    return percentile_ci(weighted_bootstrap(stat, n, n_resamples=n_resamples, seed=seed, chunk=chunk))


def hanley_mcneil_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Standard error of an AUC (Hanley & McNeil 1982), used for per-term AUC intervals.

    Worked: Q1 = .8/1.2 = .6667, Q2 = 1.28/1.8 = .7111; var = (.16 + 49*.02667 + 49*.07111) / 2500 = .001980.
    >>> round(hanley_mcneil_se(0.8, 50, 50), 4)
    0.0445
    """
    if not (n_pos and n_neg) or not np.isfinite(auc):
        return float("nan")
    q1, q2 = auc / (2 - auc), 2 * auc ** 2 / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc ** 2) + (n_neg - 1) * (q2 - auc ** 2)) / (n_pos * n_neg)
    return float(np.sqrt(max(var, 0.0)))


def paired_resample_test(change: Callable[[np.ndarray], np.ndarray], n: int, *, n_resamples: int = 2000,
                         seed: int = 0) -> tuple[float, tuple[float, float], float]:
    """Paired bootstrap of a change between two sides measured on the same ``n`` examples.

    ``change(idx)`` maps an index array (resamples x n) to the change on each resample, recomputing both sides
    from the same resampled examples, so any statistic works (a mean, an effect size, ICAT). Returns the change
    on all examples, its 95% percentile interval, and a two-sided p-value for "no change" from the bootstrap
    standard error (normal approximation: its resolution does not stop at 1/n_resamples, which a Holm correction
    over many tests needs). Resamples are drawn in chunks so memory stays near 16 MB whatever ``n_resamples``;
    resamples where the statistic is undefined (NaN) are dropped.

    >>> x = np.r_[np.zeros(50), np.ones(50)]
    >>> d, (lo, hi), p = paired_resample_test(lambda i: x[i].mean(axis=-1) - 0.2, 100, seed=1)
    >>> round(d, 2), lo < d < hi, p < 0.001
    (0.3, True, True)
    """
    point = float(np.asarray(change(np.arange(n)[None, :]))[0])
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_resamples, 2_000_000 // max(n, 1)))
    reps = np.concatenate([np.asarray(change(rng.integers(0, n, size=(min(chunk, n_resamples - i), n))), float)
                           for i in range(0, n_resamples, chunk)])
    reps = reps[np.isfinite(reps)]
    if len(reps) < 2:
        return point, (point, point), 1.0
    lo, hi = np.percentile(reps, [2.5, 97.5])
    se = float(reps.std(ddof=1))
    p = math.erfc(abs(point) / se / math.sqrt(2)) if se > 0 else (1.0 if point == 0 else 0.0)
    return point, (float(lo), float(hi)), float(p)


def clopper_pearson_ci(k: int, n: int, *, scale: float = 1.0) -> tuple[float, float]:
    """Exact (Clopper-Pearson) 95% interval of a proportion k/n, times ``scale``; NaNs when n is 0.

    >>> [round(v, 4) for v in clopper_pearson_ci(5, 10)]
    [0.1871, 0.8129]
    """
    if not n:
        return (float("nan"), float("nan"))
    from scipy import stats as sps

    ci = sps.binomtest(int(k), int(n)).proportion_ci(0.95)
    return (ci.low * scale, ci.high * scale)
