"""The regression gate: compare a results store with a reviewed baseline snapshot.

A metric regresses when it moved farther from its ideal by more than its tolerance AND the move is significant:
a paired bootstrap over the per-example scores both sides stored (matched by example id) must put the whole 95%
interval of the change on the worse side. Without per-example scores on both sides the tolerance alone decides,
and the finding says so. Improvements, unchanged metrics, missing cells and new cells are reported too.

Exit codes: 0 no regression, 1 at least one regression, 2 missing cells/metrics (unless allowed) or bad input.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

import biasboard.harness as harness
from biasboard.harness.errors import DataError
from biasboard.harness.specs import DIRECTIONS
from biasboard.harness.stats import paired_bootstrap_diff

SCHEMA_ID = "biasboard-baseline/1"
IDENTITY = ("model", "method", "method_params", "task", "variant", "seed")
MIN_PAIRED = 10
"""Fewer common example ids than this and the paired test is not attempted (tolerance only)."""
SCALES = (100.0, 1.0)
"""Per-example scores recognised as the metric's own: the metric equals scale x mean(field)."""


# --- baseline file ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PerExample:
    """Per-example scores whose mean (times ``scale``) is the metric: what the paired bootstrap resamples."""

    field: str
    """Example-row field holding each example's score (e.g. CrowS-Pairs ``more_is_higher``)."""
    scale: float
    """100 for percent metrics computed from 0/1 rows, else 1."""
    values: dict[str, float]
    """Example id -> score."""


@dataclass(frozen=True)
class MetricBaseline:
    value: float
    """The reviewed value."""
    direction: str
    """max, min or target (as in the result contract)."""
    ideal: float | None
    """Where unbiased sits; required for target metrics."""
    tolerance: float
    """Largest move away from the ideal (in the metric's units) that is never a regression."""
    n: int | None = None
    per_example: PerExample | None = None


@dataclass(frozen=True)
class CellBaseline:
    model: str
    method: str
    method_params: dict[str, Any]
    task: str
    variant: str
    seed: int
    key: str
    """The cell key when the snapshot was taken (a different key today means code, data or weights changed)."""
    metrics: dict[str, MetricBaseline]

    @property
    def ident(self) -> str:
        return identity(self.__dict__)

    @property
    def label(self) -> str:
        return cell_label(self.__dict__)


@dataclass(frozen=True)
class Baseline:
    cells: tuple[CellBaseline, ...]
    path: str = ""
    created_at: str = ""
    n_resamples: int = 2000
    """Paired bootstrap resamples (the interval is always 95%)."""


def identity(cell: dict[str, Any]) -> str:
    """What a cell is, independent of code and data versions: model x method(params) x task:variant x seed."""
    return json.dumps([cell["model"], cell["method"], cell.get("method_params") or {}, cell["task"], cell["variant"],
                       int(cell.get("seed", 0))], sort_keys=True)


def cell_label(cell: dict[str, Any]) -> str:
    params = cell.get("method_params") or {}
    method = cell["method"] + ("(" + ",".join(f"{k}={v}" for k, v in sorted(params.items())) + ")" if params else "")
    return f"{cell['task']}:{cell['variant']} \u00b7 {cell['model']} \u00b7 {method} \u00b7 seed {cell.get('seed', 0)}"


def load_baseline(path: str | Path) -> Baseline:
    """Read and validate a baseline file; any problem is a DataError naming the file, cell and field."""
    path = Path(path)
    if not path.is_file():
        raise DataError("baseline file not found; create one with `biasboard baseline update`", path=path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", path=path) from exc
    except UnicodeDecodeError as exc:
        raise DataError("not a UTF-8 text file", path=path) from exc
    return parse_baseline(data, path=str(path))


def parse_baseline(data: Any, *, path: str = "<baseline>") -> Baseline:
    def fail(msg, row=None, fld=None):
        raise DataError(msg, path=path, row=row, field=fld)

    if not isinstance(data, dict):
        fail("expected a JSON object at the top level")
    if data.get("schema") != SCHEMA_ID:
        fail(f"expected {SCHEMA_ID!r}, got {data.get('schema')!r}", fld="schema")
    cells_raw = data.get("cells")
    if not isinstance(cells_raw, list) or not cells_raw:
        fail("expected a non-empty list of cells", fld="cells")
    n_res = data.get("n_resamples", 2000)
    if not isinstance(n_res, int) or isinstance(n_res, bool) or n_res < 100:
        fail(f"expected an integer >= 100, got {n_res!r}", fld="n_resamples")
    cells, seen = [], set()
    for i, raw in enumerate(cells_raw):
        row = f"cells[{i}]"
        if not isinstance(raw, dict):
            fail("expected an object", row=row)
        for name in ("model", "method", "task", "variant"):
            if not isinstance(raw.get(name), str) or not raw[name]:
                fail(f"expected a non-empty string, got {raw.get(name)!r}", row=row, fld=name)
        if not isinstance(raw.get("seed", 0), int) or isinstance(raw.get("seed", 0), bool):
            fail(f"expected an integer, got {raw.get('seed')!r}", row=row, fld="seed")
        if not isinstance(raw.get("method_params", {}), dict):
            fail("expected an object", row=row, fld="method_params")
        metrics_raw = raw.get("metrics")
        if not isinstance(metrics_raw, dict) or not metrics_raw:
            fail("expected a non-empty object of metrics", row=row, fld="metrics")
        metrics = {name: _parse_metric(m, fail, row, f"metrics.{name}") for name, m in metrics_raw.items()}
        cell = CellBaseline(model=raw["model"], method=raw["method"], method_params=raw.get("method_params") or {},
                            task=raw["task"], variant=raw["variant"], seed=raw.get("seed", 0),
                            key=str(raw.get("key", "")), metrics=metrics)
        if cell.ident in seen:
            fail(f"duplicate cell {cell.label}", row=row)
        seen.add(cell.ident)
        cells.append(cell)
    return Baseline(cells=tuple(cells), path=path, created_at=str(data.get("created_at", "")), n_resamples=n_res)


def _parse_metric(m: Any, fail, row: str, where: str) -> MetricBaseline:
    if not isinstance(m, dict):
        fail("expected an object", row=row, fld=where)
    if not _is_number(m.get("value")):
        fail(f"expected a finite number, got {m.get('value')!r}", row=row, fld=f"{where}.value")
    direction = m.get("direction", "target")
    if direction not in DIRECTIONS:
        fail(f"expected one of {DIRECTIONS}, got {direction!r}", row=row, fld=f"{where}.direction")
    ideal = m.get("ideal")
    if ideal is not None and not _is_number(ideal):
        fail(f"expected a number or null, got {ideal!r}", row=row, fld=f"{where}.ideal")
    if direction == "target" and ideal is None:
        fail("a 'target' metric needs an ideal", row=row, fld=f"{where}.ideal")
    tol = m.get("tolerance")
    if not _is_number(tol) or tol < 0:
        fail(f"expected a number >= 0, got {tol!r}", row=row, fld=f"{where}.tolerance")
    per = m.get("per_example")
    per_example = None
    if per is not None:
        if not isinstance(per, dict) or not isinstance(per.get("field"), str):
            fail("expected an object with 'field', 'scale' and 'values'", row=row, fld=f"{where}.per_example")
        if not _is_number(per.get("scale")) or per["scale"] == 0:
            fail(f"expected a non-zero number, got {per.get('scale')!r}", row=row, fld=f"{where}.per_example.scale")
        values = per.get("values")
        if not isinstance(values, dict) or not values:
            fail("expected a non-empty object of example id -> score", row=row, fld=f"{where}.per_example.values")
        bad = next((k for k, v in values.items() if not _is_number(v)), None)
        if bad is not None:
            fail(f"example {bad!r}: expected a number, got {values[bad]!r}", row=row,
                 fld=f"{where}.per_example.values")
        per_example = PerExample(field=per["field"], scale=float(per["scale"]),
                                 values={str(k): float(v) for k, v in values.items()})
    n = m.get("n")
    return MetricBaseline(value=float(m["value"]), direction=direction, ideal=None if ideal is None else float(ideal),
                          tolerance=float(tol), n=n if isinstance(n, int) else None, per_example=per_example)


def _compact(x: Any) -> float | int:
    """0/1 scores stay integers in the file (a third smaller); other scores are floats."""
    x = float(x)
    return int(x) if x.is_integer() else x


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


# --- writing a baseline -------------------------------------------------------------------------------------------
def default_tolerance(metric: dict[str, Any]) -> float:
    """1 point for percent metrics, 0.05 for the rest (effect sizes, gaps, correlations)."""
    return 1.0 if metric.get("unit") == "%" else 0.05


def per_example_scores(metric: dict[str, Any], rows: list[dict[str, Any]]) -> PerExample | None:
    """Find the example field whose mean (x100 or x1) reproduces the metric over its n rows, if any.

    >>> rows = [{"id": "a", "hit": 1}, {"id": "b", "hit": 0}, {"id": "c", "hit": 1}, {"id": "d", "hit": 1}]
    >>> per_example_scores({"value": 75.0, "n": 4}, rows).field   # 100 * (1+0+1+1)/4 = 75
    'hit'
    >>> per_example_scores({"value": 60.0, "n": 4}, rows) is None
    True
    """
    if not rows or metric.get("value") is None or any("id" not in r for r in rows):
        return None
    if metric.get("n") is not None and metric["n"] != len(rows):
        return None
    for fld in rows[0]:
        if fld == "id":
            continue
        vals = [r.get(fld) for r in rows]
        if not all(_is_number(v) or isinstance(v, bool) for v in vals):
            continue
        mean = float(np.mean(np.asarray(vals, dtype=float)))
        for scale in SCALES:
            if math.isclose(scale * mean, metric["value"], rel_tol=1e-6, abs_tol=1e-6):
                return PerExample(field=fld, scale=scale, values={str(r["id"]): _compact(r[fld]) for r in rows})
    return None


def make_baseline(records: Iterable[dict[str, Any]], examples: Callable[[str], list[dict[str, Any]]], *,
                  metrics: Iterable[str] | None = None, tolerances: dict[str, float] | None = None,
                  fallback_tolerance: float | None = None, with_examples: bool = True) -> dict[str, Any]:
    """Snapshot records as a baseline document (review it, then commit it).

    ``metrics`` limits which metric names are kept (default: all top-level metrics); ``tolerances`` sets a
    tolerance per metric name; others get ``fallback_tolerance`` or ``default_tolerance``.
    """
    wanted = set(metrics) if metrics else None
    tolerances = tolerances or {}
    latest: dict[str, dict[str, Any]] = {}
    for r in records:  # store order is oldest first: the latest run of a cell wins
        latest[identity(r)] = r
    cells = []
    for r in sorted(latest.values(), key=cell_label):
        rows = examples(r["key"]) if with_examples else []
        out_metrics = {}
        for name, m in (r.get("metrics") or {}).items():
            if wanted is not None and name not in wanted:
                continue
            if m.get("value") is None:
                continue
            entry = {"value": m["value"], "n": m.get("n"), "direction": m.get("direction", "target"),
                     "ideal": m.get("ideal"),
                     "tolerance": tolerances.get(name, fallback_tolerance if fallback_tolerance is not None
                                                 else default_tolerance(m))}
            if m.get("ci95"):
                entry["ci95"] = m["ci95"]
            per = per_example_scores(m, rows)
            if per is not None:
                entry["per_example"] = {"field": per.field, "scale": per.scale, "values": per.values}
            out_metrics[name] = entry
        if out_metrics:
            cells.append({"model": r["model"], "method": r["method"], "method_params": r.get("method_params") or {},
                          "task": r["task"], "variant": r["variant"], "seed": int(r.get("seed", 0)),
                          "key": r.get("key", ""), "metrics": out_metrics})
    if not cells:
        raise DataError("no finished cells matched; nothing to snapshot")
    return {"schema": SCHEMA_ID, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "harness": harness.__version__, "n_resamples": 2000, "cells": cells}


# --- comparing ----------------------------------------------------------------------------------------------------
STATUSES = ("regression", "missing_cell", "missing_metric", "improvement", "unchanged", "new_cell")


@dataclass(frozen=True)
class Finding:
    status: str
    """One of STATUSES."""
    cell: str
    """Human label of the cell (task:variant · model · method · seed)."""
    metric: str = ""
    baseline: float | None = None
    current: float | None = None
    ideal: float | None = None
    direction: str = ""
    change: float | None = None
    """Change in distance from the ideal (positive = farther = worse), on the metric's scale."""
    tolerance: float | None = None
    test: str = ""
    """``paired_bootstrap`` or ``tolerance_only``."""
    ci95: tuple[float, float] | None = None
    """Paired bootstrap interval of ``change`` (paired test only)."""
    n_paired: int | None = None
    reason: str = ""
    """Why the verdict is what it is, in words."""


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    baseline_path: str = ""
    store_path: str = ""
    allow_missing: bool = False

    def of(self, status: str) -> list[Finding]:
        return [f for f in self.findings if f.status == status]

    @property
    def exit_code(self) -> int:
        if self.of("regression"):
            return 1
        if not self.allow_missing and (self.of("missing_cell") or self.of("missing_metric")):
            return 2
        return 0

    def counts(self) -> dict[str, int]:
        return {s: len(self.of(s)) for s in STATUSES}


def _badness(value: float, direction: str, ideal: float | None) -> float:
    if direction == "target":
        return abs(value - ideal)
    return -value if direction == "max" else value


def compare(baseline: Baseline, records: Iterable[dict[str, Any]], examples: Callable[[str], list[dict[str, Any]]],
            *, seed: int = 0, allow_missing: bool = False) -> Report:
    """Check every baseline cell and metric against the latest finished record of the same cell in the store."""
    latest: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    for r in records:  # store order is oldest first; records without a status are finished ones
        if r.get("status", "done") == "done":
            latest[identity(r)] = r
        else:
            failed[identity(r)] = (r.get("error") or "no error recorded").strip().splitlines()[0]
    report = Report(baseline_path=baseline.path, allow_missing=allow_missing)
    for cell in baseline.cells:
        rec = latest.get(cell.ident)
        if rec is None:
            why = f"the cell failed: {failed[cell.ident]}" if cell.ident in failed else \
                "no finished result for this cell in the store; run the matrix that produces it"
            report.findings.append(Finding("missing_cell", cell.label, reason=why))
            continue
        note = "" if not cell.key or cell.key == rec.get("key") else "cell key changed since the baseline " \
                                                                       "(code, data or weights differ). "
        rows = None
        for name, base in cell.metrics.items():
            cur = (rec.get("metrics") or {}).get(name)
            if cur is None or not _is_number(cur.get("value")):
                what = "no value" if cur is None or cur.get("value") is None else f"value {cur['value']!r}"
                report.findings.append(Finding("missing_metric", cell.label, name, base.value, ideal=base.ideal,
                                               direction=base.direction, tolerance=base.tolerance,
                                               reason=note + f"the current result has {what} for this metric"))
                continue
            if base.per_example is not None and rows is None:
                rows = examples(rec["key"])
            report.findings.append(_judge(cell.label, name, base, cur, rows or [], baseline, seed, note))
    known = {c.ident for c in baseline.cells}
    for ident, rec in sorted(latest.items()):
        if ident not in known:
            report.findings.append(Finding("new_cell", cell_label(rec), reason="not in the baseline"))
    return report


def _judge(label: str, name: str, base: MetricBaseline, cur: dict[str, Any], rows: list[dict[str, Any]],
           baseline: Baseline, seed: int, note: str) -> Finding:
    value = float(cur["value"])
    if base.n is not None and cur.get("n") is not None and cur["n"] != base.n:
        note += f"n differs from the baseline ({base.n} -> {cur['n']}: a different data slice?). "
    change = _badness(value, base.direction, base.ideal) - _badness(base.value, base.direction, base.ideal)
    common = dict(cell=label, metric=name, baseline=base.value, current=value, ideal=base.ideal,
                  direction=base.direction, change=change, tolerance=base.tolerance)
    paired, why_not = _paired(base, cur, rows, baseline, seed)
    if paired is None:
        status = "regression" if change > base.tolerance else "improvement" if change < -base.tolerance else "unchanged"
        return Finding(status, **common, test="tolerance_only", reason=note + f"tolerance only: {why_not}")
    diff, (lo, hi), n = paired
    if change > base.tolerance and lo > 0:
        status, reason = "regression", f"farther from the ideal by {change:.4g} (> tolerance {base.tolerance:g}) " \
                                       f"and the paired 95% interval [{lo:.4g}, {hi:.4g}] excludes 0"
    elif change < -base.tolerance and hi < 0:
        status, reason = "improvement", f"closer to the ideal by {-change:.4g} and the paired 95% interval " \
                                        f"[{lo:.4g}, {hi:.4g}] excludes 0"
    elif abs(change) > base.tolerance:
        status, reason = "unchanged", f"moved {change:+.4g} (beyond tolerance {base.tolerance:g}) but the paired " \
                                      f"95% interval [{lo:.4g}, {hi:.4g}] includes 0: not significant"
    else:
        status, reason = "unchanged", f"within tolerance {base.tolerance:g}"
    return Finding(status, **common, test="paired_bootstrap", ci95=(lo, hi), n_paired=n, reason=note + reason)


def _paired(base: MetricBaseline, cur: dict[str, Any], rows: list[dict[str, Any]], baseline: Baseline,
            seed: int) -> tuple[tuple[float, tuple[float, float], int] | None, str]:
    """Paired bootstrap of the change in distance from the ideal, or (None, why it could not be done)."""
    per = base.per_example
    if per is None:
        return None, "the baseline has no per-example scores for this metric"
    if not rows:
        return None, "the store has no per-example rows for the current cell"
    current = {str(r["id"]): r.get(per.field) for r in rows if "id" in r}
    if not all(_is_number(v) or isinstance(v, bool) for v in current.values()):
        return None, f"current rows lack a numeric {per.field!r}"
    cur_mean = per.scale * float(np.mean([float(v) for v in current.values()]))
    if not math.isclose(cur_mean, float(cur["value"]), rel_tol=1e-6, abs_tol=1e-6):
        return None, f"current per-example {per.field!r} does not reproduce the metric"
    ids = sorted(set(per.values) & set(current))
    if len(ids) < MIN_PAIRED:
        return None, f"only {len(ids)} example ids in common"
    a = np.array([per.values[i] for i in ids])
    b = np.array([float(current[i]) for i in ids])

    def bad(x, axis=-1):
        v = per.scale * np.mean(x, axis=axis)
        if base.direction == "target":
            return np.abs(v - base.ideal)
        return -v if base.direction == "max" else v

    diff, ci = paired_bootstrap_diff(a, b, bad, n_resamples=baseline.n_resamples, seed=seed)
    return (diff, ci, len(ids)), ""
