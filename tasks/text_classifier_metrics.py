"""Pure metric functions for the downstream tasks (BIOS, WIKI toxicity, GLUE).

Group metrics go through fairlearn's ``MetricFrame``; AUCs and GLUE scores through scikit-learn and scipy. The
``*_from_weights`` statistics take resampling weights for ``harness.stats.weighted_bootstrap`` (each resample is a
vector of multiplicities), which keeps count-based metrics one matrix product per chunk of resamples even on the
77k madlibs. (Worst-group accuracy of the vision tasks: ``tasks.worst_group_metrics``.)
"""
from __future__ import annotations

import warnings
from typing import Callable, Sequence

import numpy as np
from fairlearn.metrics import MetricFrame, false_negative_rate, false_positive_rate
from scipy import stats as sps
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef, roc_auc_score, roc_curve


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


# ---------------------------------------------------------------- BIOS: TPR gaps (De-Arteaga et al. 2019)
def tpr_table(y_true: Sequence[int], y_pred: Sequence[int], gender: Sequence[str]) -> MetricFrame:
    """TPR (= accuracy among examples whose true label is the occupation) per (occupation, gender), via fairlearn.

    >>> mf = tpr_table([0, 0, 0, 0, 1, 1], [0, 1, 0, 0, 1, 0], ["f", "f", "m", "m", "f", "m"])
    >>> mf.by_group["tpr"].round(2).tolist()
    [0.5, 1.0, 1.0, 0.0]
    """
    import pandas as pd

    feats = pd.DataFrame({"occupation": np.asarray(y_true), "gender": np.asarray(gender)})
    return MetricFrame(metrics={"tpr": accuracy_score, "n": lambda t, p: len(t)}, y_true=np.asarray(y_true),
                       y_pred=np.asarray(y_pred), sensitive_features=feats)


def tpr_gaps(y_true: Sequence[int], y_pred: Sequence[int], gender: Sequence[str], n_classes: int, *,
             female: str = "female", male: str = "male") -> np.ndarray:
    """Per class c: TPR_female(c) - TPR_male(c); NaN where a class has no test example of one gender.

    Worked case: class 0 has f: 1 of 2 right (0.5), m: 2 of 2 (1.0) -> gap -0.5; class 1 has f: 1/1, m: 0/1 -> +1.0.
    >>> tpr_gaps([0, 0, 0, 0, 1, 1], [0, 1, 0, 0, 1, 0], ["f", "f", "m", "m", "f", "m"], 2, female="f", male="m")
    array([-0.5,  1. ])
    """
    table = tpr_table(y_true, y_pred, gender).by_group["tpr"]
    out = np.full(n_classes, np.nan)
    for c in range(n_classes):
        if (c, female) in table.index and (c, male) in table.index:
            out[c] = table[(c, female)] - table[(c, male)]
    return out


def rms(values: Sequence[float]) -> float:
    """Root mean square over the finite values (De-Arteaga et al.'s summary of per-occupation gaps).

    >>> rms([-0.5, 1.0, float("nan")])  # sqrt((0.25 + 1) / 2)
    0.7905694150420949
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(np.sqrt(np.mean(v ** 2))) if len(v) else float("nan")


def tpr_gap_counts(y_true: np.ndarray, correct: np.ndarray, is_female: np.ndarray, n_classes: int) -> np.ndarray:
    """Indicator matrix [n, 4K] whose weighted column sums give (hits_f, n_f, hits_m, n_m) per class."""
    y = np.asarray(y_true, dtype=int)
    onehot = np.eye(n_classes)[y]
    f = np.asarray(is_female, dtype=float)[:, None]
    c = np.asarray(correct, dtype=float)[:, None]
    return np.hstack([onehot * f * c, onehot * f, onehot * (1 - f) * c, onehot * (1 - f)])


def gaps_from_weights(A: np.ndarray, n_classes: int) -> Callable[[np.ndarray], np.ndarray]:
    """``stat(W)`` for the bootstrap: [r, K + 1] = per-class TPR_f - TPR_m, then their RMS (``tpr_gap_counts``)."""
    K = n_classes

    def stat(W: np.ndarray) -> np.ndarray:
        S = W @ A
        gaps = _ratio(S[:, :K], S[:, K:2 * K]) - _ratio(S[:, 2 * K:3 * K], S[:, 3 * K:])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            summary = np.sqrt(np.nanmean(gaps ** 2, axis=1))
        return np.hstack([gaps, summary[:, None]])

    return stat


# ---------------------------------------------------------------- WIKI: identity-term error rates
def term_error_rates(y_true: Sequence[int], y_pred: Sequence[int], mentions: np.ndarray, terms: Sequence[str]
                     ) -> dict[str, dict[str, float]]:
    """Per identity term: FPR and FNR on the comments that mention it (fairlearn MetricFrame per term).

    ``mentions`` is a boolean [n, T] matrix (a comment may mention several terms).
    >>> r = term_error_rates([0, 0, 1, 0], [1, 0, 0, 0], np.array([[1], [1], [1], [0]], bool), ["gay"])
    >>> r["gay"]["fpr"], r["gay"]["fnr"], r["gay"]["n_neg"]
    (0.5, 1.0, 2)
    """
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    out = {}
    for j, term in enumerate(terms):
        m = np.asarray(mentions[:, j], dtype=bool)
        if not m.any():
            continue
        mf = MetricFrame(metrics={"fpr": false_positive_rate, "fnr": false_negative_rate},
                         y_true=y_true, y_pred=y_pred, sensitive_features=m)
        row = mf.by_group.loc[True]
        n_neg, n_pos = int(((y_true == 0) & m).sum()), int(((y_true == 1) & m).sum())
        out[term] = {"fpr": float(row["fpr"]) if n_neg else float("nan"),
                     "fnr": float(row["fnr"]) if n_pos else float("nan"), "n_neg": n_neg, "n_pos": n_pos}
    return out


def eer_threshold(y_true: Sequence[int], scores: Sequence[float]) -> float:
    """Equal-error-rate threshold (the per-model threshold of Dixon et al.'s FPED / FNED analysis).

    From ``sklearn.metrics.roc_curve(y, scores, drop_intermediate=False)``: at every distinct score t (a comment
    counts as toxic when its score >= t) FPR(t) and FNR(t) = 1 - TPR(t); the threshold is the finite t minimising
    |FPR - FNR|, the highest such t on a tie. NaN when one class is absent. (Dixon et al.'s code scans 101 grid
    points in [0, 1] and equalises the FP and FN *counts*; on balanced data such as the madlibs the two agree up
    to the grid step.)

    Worked case: negatives score .05 .2 .3, positives .15 .35 .45; at t = .3 one negative of three is above and
    one positive of three below, so FPR = FNR = 1/3 (at 0.5 FPR would be 0 and FNR 1).
    >>> eer_threshold([0, 0, 0, 1, 1, 1], [0.05, 0.2, 0.3, 0.15, 0.35, 0.45])
    0.3
    """
    y, s = np.asarray(y_true, dtype=int), np.asarray(scores, dtype=float)
    if not 0 < y.sum() < len(y):
        return float("nan")
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    finite = np.isfinite(thr)
    gap = np.abs(fpr - (1 - tpr))
    gap[~finite] = np.inf
    return float(thr[int(np.argmin(gap))])


def equality_difference(overall: float, per_term: Sequence[float]) -> float:
    """Dixon et al. (2018) FPED / FNED: sum over terms of |overall rate - rate on the term's comments|.

    >>> round(equality_difference(0.1, [0.1, 0.3, 0.0]), 9)  # 0 + 0.2 + 0.1
    0.3
    """
    v = np.asarray(per_term, dtype=float)
    return float(np.nansum(np.abs(overall - v)))


def error_rate_counts(y_true: np.ndarray, y_pred: np.ndarray, mentions: np.ndarray) -> np.ndarray:
    """Indicator matrix whose weighted sums give, for all comments and then each term: FP, negatives, FN, positives."""
    y, p = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    base = np.stack([(1 - y) * p, 1 - y, y * (1 - p), y], axis=1)            # [n, 4]
    M = np.asarray(mentions, dtype=float)
    per_term = np.concatenate([M * base[:, [k]] for k in range(4)], axis=1)  # [n, 4T]
    return np.hstack([base, per_term])


def equality_differences_from_weights(A: np.ndarray, n_terms: int) -> Callable[[np.ndarray], np.ndarray]:
    """``stat(W)`` returning [r, 2] = (FPED, FNED) from ``error_rate_counts`` columns, for the bootstrap."""
    T = n_terms

    def stat(W: np.ndarray) -> np.ndarray:
        S = W @ A
        fpr, fnr = _ratio(S[:, 0], S[:, 1]), _ratio(S[:, 2], S[:, 3])
        t = S[:, 4:]
        fpr_t = _ratio(t[:, :T], t[:, T:2 * T])
        fnr_t = _ratio(t[:, 2 * T:3 * T], t[:, 3 * T:])
        return np.stack([np.nansum(np.abs(fpr[:, None] - fpr_t), axis=1),
                         np.nansum(np.abs(fnr[:, None] - fnr_t), axis=1)], axis=1)

    return stat


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else float("nan")


def bias_aucs(y_true: Sequence[int], scores: Sequence[float], in_group: Sequence[bool]) -> dict[str, float]:
    """Borkan et al. (2019) AUCs for one identity subgroup.

    subgroup: AUC on the subgroup's comments; BPSN: background (not in subgroup) positives + subgroup negatives;
    BNSP: background negatives + subgroup positives. NaN when a needed set is empty.
    >>> d = bias_aucs([0, 1, 0, 1], [0.9, 0.8, 0.1, 0.7], [True, True, False, False])
    >>> d["subgroup_auc"], d["bpsn_auc"], d["bnsp_auc"]
    (0.0, 0.0, 1.0)
    """
    y, s, g = np.asarray(y_true, int), np.asarray(scores, float), np.asarray(in_group, bool)
    bpsn = (g & (y == 0)) | (~g & (y == 1))
    bnsp = (g & (y == 1)) | (~g & (y == 0))
    return {"subgroup_auc": _auc(y[g], s[g]), "bpsn_auc": _auc(y[bpsn], s[bpsn]), "bnsp_auc": _auc(y[bnsp], s[bnsp]),
            "n_sub_pos": int((g & (y == 1)).sum()), "n_sub_neg": int((g & (y == 0)).sum()),
            "n_bpsn": int(bpsn.sum()), "n_bnsp": int(bnsp.sum())}


def power_mean(values: Sequence[float], p: float = -5.0) -> float:
    """Generalized mean (Borkan et al. 2019 combine bias AUCs with p = -5, stressing the worst terms).

    >>> round(power_mean([0.9, 0.9]), 6), round(power_mean([1.0, 0.5], p=1), 6)
    (0.9, 0.75)
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(np.mean(v ** p) ** (1 / p)) if len(v) else float("nan")


# ---------------------------------------------------------------- GLUE: official metrics
def glue_scores(metric: str, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """One official GLUE metric: ``accuracy`` / ``f1`` / ``mcc`` (fractions) or ``pearson`` / ``spearman``.

    >>> glue_scores("mcc", np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0]))  # (1*2 - 0*1)/sqrt(1*2*3*2)
    0.5773502691896258
    """
    if metric == "accuracy":
        return float(accuracy_score(y_true, y_pred))
    if metric == "f1":
        return float(f1_score(y_true, y_pred))
    if metric == "mcc":
        return float(matthews_corrcoef(y_true, y_pred))
    if metric == "pearson":
        return float(sps.pearsonr(y_true, y_pred)[0])
    if metric == "spearman":
        return float(sps.spearmanr(y_true, y_pred)[0])
    raise ValueError(f"unknown GLUE metric {metric!r}")


def weighted_glue_scores(weights: np.ndarray, label: np.ndarray, pred: np.ndarray) -> dict[str, np.ndarray]:
    """Binary GLUE ``mcc`` and ``f1`` (x100) for each row of example weights (counts), from the weighted confusion
    counts: what the regression gate's and ``analyze effects``' paired bootstrap call on the stored label/pred rows.
    Zero where sklearn gives zero (an empty denominator).

    >>> y, p = np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0])
    >>> {k: np.round(v, 6) for k, v in weighted_glue_scores(np.ones((1, 4)), y, p).items()}
    {'mcc': array([57.735027]), 'f1': array([66.666667])}
    """
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    y, p = np.asarray(label).astype(int) == 1, np.asarray(pred).astype(int) == 1
    tp, fp, fn, tn = (w @ (a & b).astype(float) for a, b in ((y, p), (~y, p), (y, ~p), (~y, ~p)))
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        mcc = np.where(denom > 0, (tp * tn - fp * fn) / np.where(denom > 0, denom, 1.0), 0.0)
        f1_denom = 2 * tp + fp + fn
        f1 = np.where(f1_denom > 0, 2 * tp / np.where(f1_denom > 0, f1_denom, 1.0), 0.0)
    return {"mcc": mcc * 100, "f1": f1 * 100}
