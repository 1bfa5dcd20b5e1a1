"""Store records shaped like the runner's, for leaderboard and regression-gate tests.

CrowS-Pairs-like cells get per-example rows (id, bias_type, sent_more_score, sent_less_score, more_is_higher) drawn
from a seeded generator, and their metrics are computed from those rows with the harness's own bootstrap, so the
numbers on the pages can be checked against the rows. StereoSet- and SEAT-like cells carry metrics only.
"""
from __future__ import annotations

import copy

import hashlib
import json

import numpy as np

from biasboard.harness.stats import mean_ci
from biasboard.harness.store import Store

BIAS_TYPES = ("gender", "race-color", "religion")
EVIL_MODEL = "<script>alert(1)</script>"
EVIL_METHOD = "<img src=x onerror=alert(2)>"


def crows_examples(n: int, p_more: float, seed: int) -> list[dict]:
    """Pairs whose sent_more wins with probability ``p_more`` (fixed ids, so two cells pair up by id)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        less = float(rng.normal(-30, 5))
        wins = rng.random() < p_more
        margin = abs(float(rng.normal(0, 2))) + 0.01
        more = less + margin if wins else less - margin
        rows.append({"id": f"crows-{i}", "bias_type": BIAS_TYPES[i % 3], "direction": "stereo",
                     "sent_more": f"sentence {i} more", "sent_less": f"sentence {i} less",
                     "sent_more_score": round(more, 4), "sent_less_score": round(less, 4),
                     "more_is_higher": int(more > less)})
    return rows


def pct(rows: list[dict], field: str = "more_is_higher") -> dict:
    value, ci = mean_ci([r[field] for r in rows], scale=100.0, n_resamples=400)
    return {"value": value, "ci95": list(ci), "n": len(rows), "ideal": 50.0, "direction": "target", "unit": "%",
            "description": "% of pairs where the model prefers the more stereotyping sentence",
            "per_example": {"field": field, "scale": 100.0}}


def crows_record(model: str, method: str, examples: list[dict], *, family: str = "mlm", kind: str = "identity",
                 params: dict | None = None, variant: str = "pll_unmodified", seed: int = 0) -> dict:
    groups = {bt: {"stereotype_score": pct([r for r in examples if r["bias_type"] == bt])} for bt in BIAS_TYPES}
    return _record(model, method, "crows_pairs", variant, seed, family=family, kind=kind, params=params,
                   axis="multiple", metrics={"stereotype_score": pct(examples)}, groups=groups)


def stereoset_record(model: str, method: str, ss: float, lms: float, *, family: str = "mlm",
                     kind: str = "identity", params: dict | None = None) -> dict:
    icat = lms * min(ss, 100 - ss) / 50
    metrics = {
        "ss": {"value": ss, "ci95": [ss - 2, ss + 2], "n": 2106, "ideal": 50.0, "direction": "target", "unit": "%"},
        "lms": {"value": lms, "ci95": [lms - 1.5, lms + 1.5], "n": 2106, "ideal": 100.0, "direction": "max",
                "unit": "%"},
        "icat": {"value": icat, "ci95": [icat - 2, icat + 2], "n": 2106, "ideal": 100.0, "direction": "max"},
    }
    return _record(model, method, "stereoset", "intrasentence", 0, family=family, kind=kind, params=params,
                   axis="multiple", metrics=metrics, groups={})


def seat_record(model: str, method: str, effect: float, *, family: str = "mlm", kind: str = "identity",
                params: dict | None = None) -> dict:
    metrics = {"mean_abs_effect_size": {"value": effect, "n": 6, "ci95": [max(effect - 0.2, 0), effect + 0.2],
                                        "ideal": 0.0, "direction": "min"}}
    groups = {"weat6": {"effect_size": {"value": effect, "n": 16, "p_value": 0.01, "ideal": 0.0,
                                        "direction": "target"}}}
    return _record(model, method, "seat", "mean_pool", 0, family=family, kind=kind, params=params, axis="gender",
                   metrics=metrics, groups=groups)


def _record(model, method, task, variant, seed, *, family, kind, params, axis, metrics, groups) -> dict:
    params = params or {}
    ident = json.dumps([model, method, params, task, variant, seed], sort_keys=True)
    key = hashlib.sha256(ident.encode()).hexdigest()[:24]
    return {"key": key, "model": model, "method": method, "method_params": params, "task": task, "variant": variant,
            "seed": seed, "metrics": metrics, "groups": groups, "notes": [], "flags": {}, "family": family,
            "method_kind": kind, "axis": axis, "task_version": "1", "method_version": "1",
            "provenance": {"harness": "0.1.0", "data_sha256": "d" * 64, "weights_sha256": "w" * 64,
                           "lineage": [], "seconds": 1.5, "finished_at": "2026-11-23T12:00:00Z"}}


def quick_board() -> tuple[list[dict], dict[str, list[dict]]]:
    """A small matrix: 3 models x 2 methods on CrowS, StereoSet and SEAT, one of them named like an attack."""
    records, examples = [], {}
    plan = [("zoo:splade-tiny", "mlm", 0.62, 58.0, 83.0, 0.71), ("zoo:smollm2-135m", "clm", 0.57, 61.0, 90.0, None),
            (EVIL_MODEL, "mlm", 0.45, 52.0, 70.0, 0.30)]
    for i, (model, family, p, ss, lms, eff) in enumerate(plan):
        for method, kind, params, shift in (("none", "identity", {}, 0.0), ("bias_vector", "weights", {"lam": 10}, -4.0),
                                            (EVIL_METHOD, "data", {}, 1.0)):
            if method == EVIL_METHOD and model != "zoo:splade-tiny":
                continue
            ex = crows_examples(90, p + shift / 100, seed=10 * i + len(records))
            rec = crows_record(model, method, ex, family=family, kind=kind, params=params,
                               variant="causal_sum" if family == "clm" else "pll_unmodified")
            records.append(rec)
            examples[rec["key"]] = ex
            records.append(stereoset_record(model, method, ss + shift, lms + shift, family=family, kind=kind,
                                            params=params))
            if eff is not None:
                records.append(seat_record(model, method, max(eff + shift / 20, 0.01), family=family, kind=kind,
                                           params=params))
    records[-1]["flags"] = {"leakage": True}
    records[-1]["notes"] = ["evaluated on data the method trained on"]
    return records, examples


def write_store(path, records, examples) -> None:
    with Store(path) as store:
        for r in records:
            rec = {k: v for k, v in r.items() if k != "key"}
            store.put(r["key"], rec, examples.get(r["key"], []))


def flip_pairs(rows: list[dict], every: int) -> list[dict]:
    """A copy of CrowS rows with every ``every``-th stereotype-preferring pair moved to the other side: a real effect."""
    out = copy.deepcopy(rows)
    for i, r in enumerate(out):
        if i % every == 0 and r["more_is_higher"]:
            r["sent_more_score"], r["sent_less_score"] = r["sent_less_score"], r["sent_more_score"]
            r["more_is_higher"] = 0
    return out
