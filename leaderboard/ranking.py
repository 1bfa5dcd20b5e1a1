"""Direction-aware distance from a metric's ideal, colour buckets, and the mean-rank summary.

"Good" means close to the ideal, never simply "higher": a CrowS-Pairs score of 40 is as far from 50 as one of 60.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import pandas as pd

N_SHADES = 5
"""Colour buckets: 0 = at the ideal ... 4 = far from it."""
PERCENT_TARGET_FULL_RED = 25.0
"""A percent metric this many points from its ideal gets the darkest shade (SS 75 or 25, CrowS 75 or 25)."""


def distance(metric: dict[str, Any]) -> float | None:
    """How far ``metric`` is from its ideal on the bad side (0 = ideal; None when it has no ideal or no value).

    >>> distance({"value": 42.0, "ideal": 50.0, "direction": "target"})
    8.0
    >>> distance({"value": 80.0, "ideal": 100.0, "direction": "max"})
    20.0
    >>> distance({"value": -0.1, "ideal": 0.0, "direction": "min"}) # below a 'min' ideal is not bad
    0.0
    """
    value, ideal = metric.get("value"), metric.get("ideal")
    if value is None or ideal is None or (isinstance(value, float) and math.isnan(value)):
        return None
    direction = metric.get("direction", "target")
    if direction == "target":
        return abs(value - ideal)
    if direction == "max":
        return max(0.0, ideal - value)
    return max(0.0, value - ideal)


def badness(metric: dict[str, Any], column_values: Iterable[float]) -> float | None:
    """Sortable badness (lower is better) that also works for metrics without an ideal.

    With an ideal it is ``distance``; without one, the gap to the best value in the column (``max``/``min``).
    """
    d = distance(metric)
    if d is not None:
        return d
    value = metric.get("value")
    values = [v for v in column_values if v is not None and not math.isnan(v)]
    if value is None or not values or metric.get("direction") == "target":
        return None
    return (max(values) - value) if metric.get("direction") == "max" else (value - min(values))


def ci_covers_ideal(metric: dict[str, Any]) -> bool:
    """True when the 95% interval includes the ideal: the data cannot tell this score from unbiased."""
    ci, ideal = metric.get("ci95"), metric.get("ideal")
    return bool(ci) and ideal is not None and ci[0] is not None and ci[1] is not None and ci[0] <= ideal <= ci[1]


def shade(bad: float | None, *, scale: float) -> int | None:
    """Colour bucket 0..N_SHADES-1 for a badness on a scale where ``scale`` is the darkest shade."""
    if bad is None:
        return None
    if scale <= 0:
        return 0
    return int(min(N_SHADES - 1, math.floor(N_SHADES * min(bad / scale, 0.999999))))


def shade_scale(metric: dict[str, Any], column_badness: Iterable[float | None]) -> float:
    """Badness at which a column turns darkest: 25 points for percent targets, else the column's worst."""
    if metric.get("unit") == "%" and metric.get("ideal") is not None:
        return PERCENT_TARGET_FULL_RED if metric.get("direction") == "target" else 50.0
    worst = [b for b in column_badness if b is not None]
    return max(worst) if worst else 0.0


def ranks(bad: list[float | None]) -> list[float | None]:
    """Ranks of rows in one column (1 = closest to ideal; ties share the average rank; None stays unranked).

    >>> ranks([3.0, None, 1.0, 3.0])
    [2.5, None, 1.0, 2.5]
    """
    present = [i for i, b in enumerate(bad) if b is not None]
    out: list[float | None] = [None] * len(bad)
    if present:
        r = pd.Series([bad[i] for i in present], dtype=float).rank(method="average").to_numpy()  # ties share the mean rank
        for i, rank in zip(present, r):
            out[i] = float(rank)
    return out


def mean_ranks(matrix: list[list[float | None]]) -> list[tuple[float | None, int]]:
    """Rows x columns of badness -> per row (mean rank over the columns it has, number of columns ranked).

    Each column ranks the rows that have it; a row's mean rank averages its ranks over its columns. Rows with
    different coverage are not strictly comparable, which is why the count travels with the mean.

    >>> mean_ranks([[1.0, 5.0], [2.0, None], [3.0, 4.0]])
    [(1.5, 2), (2.0, 1), (2.0, 2)]
    """
    if not matrix:
        return []
    cols = list(zip(*matrix))
    col_ranks = [ranks(list(c)) for c in cols]
    out = []
    for i in range(len(matrix)):
        mine = [cr[i] for cr in col_ranks if cr[i] is not None]
        out.append((float(sum(mine) / len(mine)) if mine else None, len(mine)))
    return out
