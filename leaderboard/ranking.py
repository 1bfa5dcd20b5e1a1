"""Distance from a metric's ideal, absolute colour scales, the win-rate ranking and the utility check.

"Good" means close to the ideal, never simply "higher": a CrowS-Pairs score of 40 is as far from 50 as one of 60.
Everything here is pure Python and pandas, so ``biasboard leaderboard build`` imports neither torch nor scipy.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import pandas as pd

from biasboard.harness.specs import distance_from_ideal  # the one definition (board and gate)

N_SHADES = 5
"""Colour buckets: 0 = at the ideal ... 4 = far from it."""
PERCENT_TARGET_FULL_RED = 25.0
"""A percent metric this many points from its ideal gets the darkest shade (SS 75 or 25, CrowS 75 or 25)."""
PERCENT_MAX_FULL_RED = 50.0
"""A 0-100 utility score (LMS, accuracy, GLUE x100) this many points below 100 gets the darkest shade."""
UNIT_SCORE_FULL_RED = 0.5
"""A 0-1 score with ideal 1 (AUC) this far below 1 gets the darkest shade."""
EFFECT_SIZE_FULL_RED = 1.0
"""Unitless scores with ideal 0 (SEAT/WEAT effect sizes, Cohen's d: 0.2 small, 0.5 medium, 0.8 large)."""
MIN_SHARED_COLUMNS = 2
"""Two rows are compared only when both have at least this many bias columns."""
UTILITY_MARGIN = 0.05
"""A row is degenerate when a utility score falls more than this share of the metric's ideal (5 points on a 0-100
scale, 0.05 on a 0-1 scale) below the same model's ``none`` row."""
UTILITY_METRICS = ("lms", "accuracy", "average_accuracy", "auc")
"""Metric names that measure what the model can still do; GLUE-style columns (axis ``utility``) count whole."""
TIERS = ("ok", "not_measured", "degenerate")
"""Ranking tiers, in order: utility kept (or the ``none`` reference), utility not measured, utility lost."""


def distance(metric: dict[str, Any]) -> float | None:
    """``distance_from_ideal`` of a metric dict (value, ideal, direction).

    >>> distance({"value": 80.0, "ideal": 100.0, "direction": "max"})
    20.0
    """
    return distance_from_ideal(metric.get("value"), metric.get("ideal"), metric.get("direction", "target"))


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


def shade(bad: float | None, *, scale: float | None) -> int | None:
    """Colour bucket 0..N_SHADES-1 for a distance on a scale where ``scale`` is the darkest shade."""
    if bad is None or scale is None:
        return None
    if scale <= 0:
        return 0
    return int(min(N_SHADES - 1, math.floor(N_SHADES * min(bad / scale, 0.999999))))


def colour_scale(metric: dict[str, Any]) -> float | None:
    """Distance from the ideal at which a metric reaches the darkest shade: fixed per kind of metric, in its own
    units, never relative to the other rows (a lone cell is not 'farthest' just for being alone).

    >>> colour_scale({"unit": "%", "ideal": 50.0, "direction": "target"}), colour_scale({"ideal": 0.0, "direction": "min"})
    (25.0, 1.0)
    >>> colour_scale({"ideal": 100.0, "direction": "max"}), colour_scale({"ideal": None, "direction": "max"})
    (50.0, None)
    """
    ideal, direction = metric.get("ideal"), metric.get("direction", "target")
    if ideal is None:
        return None
    if metric.get("unit") in ("%", "pp") or ideal == 100.0 or (ideal == 50.0 and direction == "target"):
        return PERCENT_MAX_FULL_RED if direction == "max" else PERCENT_TARGET_FULL_RED
    if ideal == 1.0 and direction == "max":
        return UNIT_SCORE_FULL_RED
    return EFFECT_SIZE_FULL_RED


def shade_scale(metric: dict[str, Any], column_badness: Iterable[float | None] = ()) -> float | None:
    """Kept for callers that pass a column: the scale no longer depends on the column (see ``colour_scale``)."""
    return colour_scale(metric)


def ranks(bad: list[float | None]) -> list[float | None]:
    """Ranks of rows in one column (1 = closest to ideal; ties share the average rank; None stays unranked).
    A column with a single row ranks nobody: a rank out of one says nothing.

    >>> ranks([3.0, None, 1.0, 3.0])
    [2.5, None, 1.0, 2.5]
    >>> ranks([None, 2.0])
    [None, None]
    """
    present = [i for i, b in enumerate(bad) if b is not None]
    out: list[float | None] = [None] * len(bad)
    if len(present) > 1:
        r = pd.Series([bad[i] for i in present], dtype=float).rank(method="average").to_numpy()  # ties share the mean rank
        for i, rank in zip(present, r):
            out[i] = float(rank)
    return out


def win_rates(matrix: list[list[float | None]], min_shared: int = MIN_SHARED_COLUMNS) -> list[dict[str, Any]]:
    """Rows x columns of badness -> per row its mean win rate over the columns it shares with each other row.

    Row i is compared with every row j that has at least ``min_shared`` columns in common with it; on each shared
    column i wins (1), ties (0.5) or loses (0). The win rate is the mean over all those (row, column) comparisons,
    so rows with different coverage meet only where both were measured. Rows with no such partner are unranked.

    >>> [r["win_rate"] for r in win_rates([[1.0, 5.0], [2.0, 4.0], [3.0, None]])]
    [0.5, 0.5, None]
    >>> win_rates([[1.0, 5.0], [2.0, 4.0], [3.0, None]])[0]
    {'win_rate': 0.5, 'opponents': 1, 'comparisons': 2}
    """
    n = len(matrix)
    present = [{c for c, b in enumerate(row) if b is not None} for row in matrix]
    out = []
    for i in range(n):
        wins, comparisons, opponents = 0.0, 0, 0
        for j in range(n):
            shared = present[i] & present[j]
            if j == i or len(shared) < min_shared:
                continue
            opponents += 1
            for c in shared:
                a, b = matrix[i][c], matrix[j][c]
                wins += 1.0 if a < b else 0.5 if a == b else 0.0
                comparisons += 1
        out.append({"win_rate": wins / comparisons if comparisons else None, "opponents": opponents,
                    "comparisons": comparisons})
    return out


def round_half_up(x: float | None, digits: int = 1) -> float | None:
    """The one rounding of the board (the page script does the same arithmetic, so both show the same digits).

    >>> round_half_up(61.25), round_half_up(3.125, 2)
    (61.3, 3.13)
    """
    if x is None:
        return None
    f = 10 ** digits
    return math.floor(x * f + 0.5) / f


def order_key(tier: str, win_rate: float | None) -> float:
    """Default-order key, ascending = best first: tier, then win rate (unranked rows last within their tier).
    The page script computes the same key when filters change the visible rows."""
    base = TIERS.index(tier) * 1000.0
    return base + (500.0 if win_rate is None else 100.0 - round_half_up(100.0 * win_rate))


def is_utility(name: str, metric: dict[str, Any], axis: str = "") -> bool:
    """Whether a metric measures utility (what the model can still do) rather than bias."""
    return metric.get("direction") == "max" and (axis == "utility" or name in UTILITY_METRICS)


def utility_drop_is_degenerate(value: float, reference: float, ideal: float | None) -> bool:
    """True when ``value`` is more than ``UTILITY_MARGIN`` x ideal below ``reference`` (the ``none`` row's value).

    >>> utility_drop_is_degenerate(77.0, 83.0, 100.0), utility_drop_is_degenerate(79.0, 83.0, 100.0)
    (True, False)
    """
    margin = UTILITY_MARGIN * (abs(ideal) if ideal else 100.0)
    return reference - value > margin
