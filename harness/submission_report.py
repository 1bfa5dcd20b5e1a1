"""The submission report: a submitted method next to ``none`` and the reference methods, cell by cell.

Why: a pull request that adds a method should show, without rerunning anything, what the method does to every
official cell: each metric with its 95% CI, the paired change against no mitigation (bootstrap over the examples
both runs scored), and the regression gate's verdict with ``none`` as the baseline (does the method make any bias
or utility metric significantly worse than doing nothing?).
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np

import biasboard.harness as harness
from biasboard.harness.errors import DataError
from biasboard.harness.record import CellRecord, as_records
from biasboard.harness.regress import compare, make_baseline, parse_baseline, per_example_scores
from biasboard.harness.regress_report import _md, render_markdown, summary
from biasboard.harness.stats import paired_bootstrap_diff

SCHEMA_ID = "biasboard-submission/1"
MAX_METRICS = 4
"""Metric columns in the markdown tables (the JSON has all of them)."""


def _where(r: CellRecord) -> tuple:
    return r.model, r.task, r.variant, int(r.seed)


def paired_change(sub: CellRecord | dict[str, Any], ref: CellRecord | dict[str, Any], name: str, examples: Callable[[str], list[dict]], *,
                  seed: int = 0) -> dict[str, Any] | None:
    """Change of metric ``name`` (submission minus reference) with a paired bootstrap 95% CI over shared examples.

    Uses the per-example field the metric declares (``Metric.per_example``, as the regression gate does); None when
    it declares none, the rows do not reproduce it, or fewer than 10 example ids are shared.
    """
    sub, ref = CellRecord.of(sub), CellRecord.of(ref)
    a_metric, b_metric = ref.metrics.get(name), sub.metrics.get(name)
    if not a_metric or not b_metric or a_metric.value is None or b_metric.value is None:
        return None
    try:
        pa = per_example_scores(a_metric, examples(ref.key))
        pb = per_example_scores(b_metric, examples(sub.key))
    except DataError:  # rows that do not reproduce the metric: no paired change
        return None
    if pa is None or pb is None or pa.recompute or pa.declaration() != pb.declaration():
        return None
    ids = sorted(i for i in set(pa.values) & set(pb.values) if pa.values[i] is not None and pb.values[i] is not None)
    if len(ids) < 10:
        return None
    a = np.array([pa.values[i] for i in ids]) * pa.scale
    b = np.array([pb.values[i] for i in ids]) * pb.scale
    diff, (lo, hi) = paired_bootstrap_diff(a, b, n_resamples=2000, seed=seed)
    return {"metric": name, "change": diff, "ci95": [lo, hi], "n_paired": len(ids), "field": pa.field}


def build_report(*, method: str, manifest: dict[str, Any], references: list[str],
                 records: list[CellRecord | dict[str, Any]], examples: Callable[[str], list[dict]], matrix: str,
                 store: str, failed: list[tuple[str, str]]) -> dict[str, Any]:
    """The report document (JSON-ready): cells, paired changes against ``none`` and the gate verdict."""
    records = as_records(records)
    by_where: dict[tuple, dict[str, CellRecord]] = {}
    for r in records:
        if r.done:
            by_where.setdefault(_where(r), {})[r.method] = r
    cells = []
    for where in sorted(by_where):
        rows = by_where[where]
        if method not in rows:
            continue
        sub = rows[method]
        entry = {"model": where[0], "task": where[1], "variant": where[2], "seed": where[3],
                 "headline": next(iter(sub.metrics)),
                 "methods": {m: {"params": r.method_params or {}, "metrics": r.to_json()["metrics"], "key": r.key}
                             for m, r in rows.items() if m == method or m in references},
                 "vs_none": []}
        if "none" in rows:
            for name in sub.metrics:
                change = paired_change(sub, rows["none"], name, examples)
                if change:
                    entry["vs_none"].append(change)
        cells.append(entry)
    gate = _gate(method, records, examples)
    return {"schema": SCHEMA_ID, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "harness": harness.__version__, "method": {"name": method, "version": manifest.get("version"),
                                                      "manifest": manifest},
            "references": references, "matrix": matrix, "store": store, "cells": cells,
            "failed": [{"key": k, "error": e} for k, e in failed], "gate": gate}


def _gate(method: str, records: list[CellRecord], examples: Callable[[str], list[dict]]) -> dict[str, Any]:
    """Regression gate with the ``none`` results of the same cells as the baseline."""
    done = [r for r in records if r.done]
    mine = [r for r in done if r.method == method]
    wanted = {_where(r) for r in mine}
    refs = [r for r in done if r.method == "none" and _where(r) in wanted]
    if not mine or not refs:
        return {"verdict": "NOT RUN", "exit_code": None, "summary": "no `none` cells to compare with",
                "markdown": "", "findings": []}
    doc = make_baseline(refs, examples)
    params = mine[0].method_params or {}
    for cell in doc["cells"]:
        cell.update(method=method, method_params=params, key="")
    report = compare(parse_baseline(doc, path="none (same cells)"), mine, examples)
    verdict = {0: "PASS", 1: "FAIL (regression)", 2: "INCOMPLETE (missing data)", 3: "NOT COMPARABLE (other data than none)"}[report.exit_code]
    findings = [{"status": f.status, "cell": f.cell, "metric": f.metric, "none": f.baseline, "method": f.current,
                 "change_in_distance": f.change, "ci95": list(f.ci95) if f.ci95 else None, "test": f.test,
                 "reason": f.reason} for f in report.findings]
    return {"verdict": verdict, "exit_code": report.exit_code, "summary": summary(report),
            "markdown": render_markdown(report), "findings": findings}


def _fmt(m: dict | None) -> str:
    if not m or m.get("value") is None:
        return "-"
    text = f"{m['value']:.4g}"
    if m.get("ci95") and None not in m["ci95"]:
        text += f" [{m['ci95'][0]:.4g}, {m['ci95'][1]:.4g}]"
    elif m.get("p_value") is not None:
        text += f" (p={m['p_value']:.3g})"
    return text


def _ideal(m: dict) -> str:
    if m.get("direction") == "target":
        return f"ideal {m.get('ideal')}"
    return {"max": "higher is better", "min": "lower is better"}.get(m.get("direction"), "")


def render_report_markdown(doc: dict[str, Any]) -> str:
    """Markdown for the pull request: one table per official cell, then the gate verdict."""
    m = doc["method"]
    manifest = m["manifest"]
    out = [f"## Submission: `{_md(m['name'])}` {_md(m.get('version') or '')}", "",
           f"- Authors: {_md(', '.join(manifest.get('authors') or []))}",
           f"- Citation: {_md(manifest.get('citation') or '-')}",
           f"- Families: {_md(', '.join(manifest.get('families') or []))}; hooks: "
           f"{_md(', '.join(manifest.get('hooks') or []))}; license: {_md(manifest.get('license') or '-')}",
           f"- Matrix: `{_md(doc['matrix'])}`; compared with: {_md(', '.join(doc['references']))}",
           f"- Regression gate (baseline = `none` on the same cells): **{_md(doc['gate']['verdict'])}**", ""]
    if doc["failed"]:
        out += [f"**{len(doc['failed'])} cell(s) failed:**", ""]
        out += [f"- `{f['key'][:12]}`: {_md(f['error'].splitlines()[0] if f['error'] else '')}" for f in doc["failed"]]
        out.append("")
    if not doc["cells"]:
        out += ["No finished cells for this method.", ""]
    for cell in doc["cells"]:
        mine = cell["methods"][m["name"]]["metrics"]
        names = list(mine)[:MAX_METRICS]
        out += [f"### {_md(cell['task'])}:{_md(cell['variant'])} · {_md(cell['model'])} · seed {cell['seed']}", "",
                "| Method | " + " | ".join(f"{_md(n)} ({_md(_ideal(mine[n]))})" for n in names) + " |",
                "|---|" + "---:|" * len(names)]
        order = [m["name"]] + [r for r in doc["references"] if r in cell["methods"] and r != m["name"]]
        for method in order:
            metrics = cell["methods"][method]["metrics"]
            label = f"**{method}**" if method == m["name"] else method
            out.append(f"| {label} | " + " | ".join(_md(_fmt(metrics.get(n))) for n in names) + " |")
        if cell["vs_none"]:
            out += ["", "Paired change vs `none` (same examples, bootstrap 95% CI): " + "; ".join(
                f"{_md(c['metric'])} {c['change']:+.4g} [{c['ci95'][0]:.4g}, {c['ci95'][1]:.4g}] "
                f"(n={c['n_paired']})" for c in cell["vs_none"] if _finite(c["change"]))]
        out.append("")
    if doc["gate"]["markdown"]:
        out += ["### Regression gate: method vs. `none`", "", doc["gate"]["markdown"]]
    return "\n".join(out).rstrip() + "\n"


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
