"""Transfer of bias from upstream to downstream (Steed et al. 2022; Baksi, Singh, Joshi 2024): pair each downstream
cell with the upstream cell of the same model, method, parameters and seed, and fit ordinary least squares
downstream ~ 1 + upstream + dataset_bias. ``biasboard analyze transfer`` is the command around it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from scipy import stats as sps

from biasboard.harness.errors import BiasboardError
from biasboard.harness.record import CellRecord, as_records

DATASET_BIAS_DEFAULTS = ("train_gender_skew", "train_identity_toxicity_gap")


def load_records(args) -> list[CellRecord]:
    """The records of ``--records`` (a JSON list, ``{"records": [...]}`` or JSON lines), else of the store."""
    if args.records:
        if not args.records.exists():
            raise BiasboardError(f"--records {args.records}: no such file")
        text = args.records.read_text()
        try:
            data = json.loads(text) if args.records.suffix == ".json" else [json.loads(line) for line in
                                                                            text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise BiasboardError(f"--records {args.records}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
        return as_records(data if isinstance(data, list) else data.get("records", []))
    from biasboard.harness.paths import output_dir
    from biasboard.harness.store import Store

    path = args.store or (output_dir() / "results.sqlite")
    if not Path(path).exists():
        raise BiasboardError(f"results store {path} does not exist; run the downstream matrix first "
                             "(biasboard run leaderboard/matrices/downstream.yaml)")
    return Store(path).records()


def parse_selector(text: str, records: Sequence[CellRecord]) -> tuple[str, str | None, str | None]:
    """``task``, ``task:metric``, ``task:variant`` or ``task:variant:metric`` -> (task, variant, metric)."""
    parts = text.split(":")
    task = parts[0]
    if len(parts) == 1:
        return task, None, None
    if len(parts) == 3:
        return task, parts[1] or None, parts[2] or None
    variants = {r.variant for r in records if r.task == task}
    return (task, parts[1], None) if parts[1] in variants else (task, None, parts[1])


def _pick(records: Sequence[CellRecord], task, variant, metric, what) -> dict[tuple, tuple[float, CellRecord]]:
    rows = [r for r in records if r.task == task and (variant is None or r.variant == variant) and r.metrics]
    if not rows:
        raise BiasboardError(f"{what}: no finished cells of task {task!r}"
                             + (f" variant {variant!r}" if variant else "") + " in the results")
    variants = sorted({r.variant for r in rows})
    if variant is None and len(variants) > 1:
        raise BiasboardError(f"{what}: task {task!r} has several variants {variants}; say which (TASK:VARIANT)")
    out = {}
    for r in rows:
        name = metric or next(iter(r.metrics))
        if name not in r.metrics:
            raise BiasboardError(f"{what}: cell {r.model} / {r.method} has no metric {name!r}; it has "
                                 f"{sorted(r.metrics)}")
        value = r.metrics[name].value
        if value is not None:
            out[_key(r)] = (float(value), r)
    return out


def _key(r: CellRecord) -> tuple:
    return r.model, r.method, json.dumps(r.method_params or {}, sort_keys=True), r.seed


def _has_apply(method: str) -> bool:
    from biasboard.harness.registry import METHODS

    try:
        cls = METHODS.get(method)
    except BiasboardError:
        return True
    return callable(getattr(cls, "apply", None)) or callable(getattr(cls, "represent", None))


def assemble(records: Sequence[CellRecord | dict[str, Any]], downstream: str, upstream: str, dataset_bias: str) -> tuple[list[dict], list[str]]:
    """One row per downstream cell with its upstream and dataset-bias values; and the cells left out, with why."""
    records = as_records(records)
    d_task, d_var, d_metric = parse_selector(downstream, records)
    u_task, u_var, u_metric = parse_selector(upstream, records)
    down = _pick(records, d_task, d_var, d_metric, "--downstream")
    up = _pick(records, u_task, u_var, u_metric, "--upstream")
    rows, dropped = [], []
    for key, (value, rec) in sorted(down.items()):
        model, method, params, seed = key
        match = up.get(key)
        if match is None and not _has_apply(method):
            match = up.get((model, "none", "{}", seed))
        if match is None:
            dropped.append(f"{model} {method}{params if params != '{}' else ''} seed {seed}: no {u_task} cell")
            continue
        row = {"model": model, "method": method, "params": params, "seed": seed, "downstream": value,
               "upstream": match[0]}
        if dataset_bias != "none":
            names = DATASET_BIAS_DEFAULTS if dataset_bias == "auto" else (dataset_bias,)
            found = next((n for n in names if n in rec.metrics), None)
            if found is None:
                raise BiasboardError(f"--dataset-bias: the {d_task} cells report none of {list(names)}")
            row["dataset_bias"] = float(rec.metrics[found].value)
            row["dataset_bias_metric"] = found
        rows.append(row)
    return rows, dropped


def ols(y: Sequence[float], X: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Ordinary least squares with an intercept: coefficients, classical SEs, t tests, 95% CIs, R^2.

    Worked: y = 1 + 2x exactly at x = 0, 1, 2, 3 gives intercept 1, slope 2, residuals 0, R^2 = 1.
    >>> fit = ols([1, 3, 5, 7], np.array([[0.], [1.], [2.], [3.]]), ["x"])
    >>> [round(c["coef"], 6) for c in fit["coefficients"]], fit["r2"]
    ([1.0, 2.0], 1.0)
    """
    y = np.asarray(y, dtype=float)
    X = np.column_stack([np.ones(len(y)), np.asarray(X, dtype=float)])
    n, k = X.shape
    if n <= k:
        raise BiasboardError(f"transfer regression: {n} cells for {k} coefficients; need more cells (models, "
                             "methods or seeds)")
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ beta
    dof = n - k
    sigma2 = float(resid @ resid) / dof
    cov = sigma2 * np.linalg.pinv(X.T @ X)
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    tcrit = sps.t.ppf(0.975, dof)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1 - float(resid @ resid) / ss_tot if ss_tot > 0 else float("nan")
    coefs = []
    for name, b, s in zip(["intercept", *names], beta, se):
        t = b / s if s > 0 else float("inf") if b else float("nan")
        p = float(2 * sps.t.sf(abs(t), dof)) if np.isfinite(t) else (0.0 if b else float("nan"))
        coefs.append({"name": name, "coef": float(b), "se": float(s), "t": float(t), "p_value": p,
                      "ci95": [float(b - tcrit * s), float(b + tcrit * s)]})
    return {"n": n, "dof": dof, "r2": r2, "adj_r2": 1 - (1 - r2) * (n - 1) / dof if dof > 0 else float("nan"),
            "coefficients": coefs}


def transfer(rows: list[dict]) -> dict[str, Any]:
    """Fit downstream ~ upstream (+ dataset_bias), leaving out a regressor that does not vary across cells."""
    names, notes = [], []
    y = np.array([r["downstream"] for r in rows])
    if len(y) and np.ptp(y) == 0:
        raise BiasboardError(f"transfer regression: the downstream bias is {y[0]:g} in every one of the {len(y)} cells; "
                             "nothing to explain (were the fine-tuning runs too small to learn the task?)")
    for name in ("upstream", "dataset_bias"):
        if rows and name in rows[0]:
            vals = np.array([r[name] for r in rows])
            if np.ptp(vals) == 0:
                notes.append(f"{name} is the same in every cell ({vals[0]:g}); left out of the regression")
            else:
                names.append(name)
    if not names:
        raise BiasboardError("transfer regression: neither upstream nor dataset bias varies across the cells")
    fit = ols([r["downstream"] for r in rows], np.array([[r[n] for n in names] for r in rows]), names)
    fit["notes"] = notes
    return fit
