"""What each mitigation method does against doing nothing: for every finished method cell, the same model, task,
variant and seed under ``none`` is its reference, and each headline metric is compared on the same examples.

The comparison is the regression gate's (``harness.regress.compare``) with ``none`` as the baseline and zero tolerance:
a paired bootstrap over the examples a metric is computed from (means over rows, and statistics such as StereoSet's
ICAT recomputed from rows), Holm-adjusted across every paired comparison shown; metrics that cannot be recomputed from
their rows (SEAT effect sizes today) are reported as unpaired, never given an interval they do not have.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from biasboard.harness.record import CellRecord, as_records
from biasboard.harness.regress import cell_label, compare, make_baseline, parse_baseline

VERDICTS = {"improvement": "closer to ideal", "regression": "farther from ideal", "unchanged": "no significant change",
            "not_comparable": "not comparable"}


def _reference_key(r: CellRecord) -> tuple:
    return r.model, r.task, r.variant


def _params_agree(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two methods' settings agree on every parameter both have (e.g. RobustDebias and TopK-AE DRO on one split)."""
    return all(a[k] == b[k] for k in a.keys() & b.keys())


def _find_reference(r: CellRecord, candidates: list[CellRecord], reference: str) -> tuple[CellRecord | None, str]:
    """The reference cell of a treated cell: same model, task and variant, agreeing parameters, same seed. ``none``
    has no randomness, so when it ran at one seed only that cell is every seed's reference (said in a note)."""
    params = r.method_params or {}
    matching = [c for c in candidates if _params_agree(params, c.method_params or {})]
    same_seed = [c for c in matching if int(c.seed) == int(r.seed)]
    if same_seed:
        return same_seed[-1], ""
    seedless = [c for c in matching if not _trains_at_evaluation(c)]
    if reference == "none" and seedless:
        ref = min(seedless, key=lambda c: int(c.seed))
        return ref, f"`none` at seed {ref.seed} (it has no randomness)"
    return None, ""


def _trains_at_evaluation(r: CellRecord) -> bool:
    """Whether the task itself trained a model for this result (GLUE, BIOS, WIKI fine-tuning; vision training): then
    even `none` depends on the seed and is no reference for another seed's cell."""
    return any(k.startswith("finetune") or k == "training" for k in (r.flags or {}))


def method_effects(records: Iterable[CellRecord | dict[str, Any]], examples: Callable[[str], list[dict[str, Any]]], *,
                   all_metrics: bool = False, seed: int = 0, reference: str = "none",
                   methods: Iterable[str] | None = None) -> dict[str, Any]:
    """Rows of (method, model, task, metric, reference value, method value, difference, change in distance from the
    ideal with its paired 95% CI, Holm-adjusted p, verdict) and the cells left out, with why.

    ``reference`` is the method every other one is compared with (default ``none``; e.g. ``topk_ae_dro`` to pair
    RobustDebias with it split by split); ``methods`` limits which methods are compared with it."""
    done = [r for r in as_records(records) if r.done and r.metrics]
    latest: dict[tuple, CellRecord] = {}
    for r in done:  # oldest first: the latest run of a cell wins
        latest[(r.method, str(sorted((r.method_params or {}).items())), *_reference_key(r), int(r.seed))] = r
    references: dict[tuple, list[CellRecord]] = {}
    for r in latest.values():
        if r.method == reference:
            references.setdefault(_reference_key(r), []).append(r)
    wanted_methods = set(methods) if methods else None
    cells, treated, dropped, notes = [], [], [], {}
    for r in sorted(latest.values(), key=cell_label):
        if r.method == reference or (wanted_methods is not None and r.method not in wanted_methods):
            continue
        ref, note = _find_reference(r, references.get(_reference_key(r), []), reference)
        if ref is None:
            dropped.append(f"{cell_label(r)}: no finished `{reference}` cell of the same model, task, variant"
                           + ("" if reference == "none" else ", settings") + " and seed")
            continue
        wanted = None if all_metrics else [next(iter(r.metrics))]
        doc = make_baseline([ref], examples, metrics=wanted, fallback_tolerance=0.0)
        for cell in doc["cells"]:
            cell.update(method=r.method, method_params=r.method_params or {}, key="", seed=int(r.seed))
        cells.extend(doc["cells"])
        treated.append(r)
        notes[cell_label(r)] = note
    if not cells:
        return {"rows": [], "dropped": dropped, "n_tests": 0, "reference": reference}
    baseline = parse_baseline({**doc, "cells": cells}, path="<none cells>")
    report = compare(baseline, treated, examples, seed=seed, allow_missing=True, allow_not_comparable=True)
    by_label = {cell_label(r): r for r in treated}
    rows = []
    for f in report.findings:
        rec = by_label.get(f.cell)
        if rec is None or f.status not in VERDICTS:
            continue
        metric = rec.metrics.get(f.metric)
        rows.append({
            "method": rec.method_label, "method_name": rec.method, "method_params": rec.method_params or {},
            "model": rec.model, "task": f"{rec.task}:{rec.variant}", "seed": int(rec.seed),
            "metric": f.metric, "reference": reference, "none": f.baseline, "value": f.current,
            "difference": None if f.current is None or f.baseline is None else f.current - f.baseline,
            "n": f.n_paired if f.n_paired is not None else (metric.n if metric else None),
            "distance_change": f.change, "ci95": list(f.ci95) if f.ci95 else None, "p_holm": f.p_holm,
            "test": f.test or "none",
            # without a paired test a move is only a point estimate: no verdict is claimed for it
            "verdict": "unpaired: not tested" if f.test == "tolerance_only" else VERDICTS[f.status],
            "reason": f.reason, "reference_note": notes.get(f.cell, "")})
    return {"rows": rows, "dropped": dropped, "n_tests": report.n_tests, "reference": reference}


def effects_table(result: dict[str, Any], fmt: str = "github") -> str:
    """The effects as a table: one row per method x model x task x metric."""
    from tabulate import tabulate

    def num(x, spec=".3g"):
        return "" if x is None else format(x, spec)

    table = [[r["method"], r["model"], r["task"], r["seed"], r["metric"], num(r["none"], ".4g"),
              num(r["value"], ".4g"), num(r["difference"], "+.3g"), num(r["distance_change"], "+.3g"),
              f"[{r['ci95'][0]:+.3g}, {r['ci95'][1]:+.3g}]" if r["ci95"] else "unpaired",
              r["n"] if r["n"] is not None else "", num(r["p_holm"]), r["verdict"]] for r in result["rows"]]
    return tabulate(table, headers=["method", "model", "task", "seed", "metric", result.get("reference", "none"),
                                    "method", "difference", "Δ distance to ideal", "95% CI (paired)", "n", "Holm p",
                                    "verdict"], tablefmt=fmt)
