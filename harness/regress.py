"""The regression gate: compare a results store with a reviewed baseline snapshot.

A metric regresses when it moved farther from its ideal by more than its tolerance AND the move is significant:
a paired bootstrap over the examples both sides share (matched by example id) must put the whole 95% interval of
the change on the worse side, and its p-value must stay under 0.05 after a Holm correction across every paired
comparison of the run. The examples come from what each metric declares (``Metric.per_example`` for a mean over
example rows, ``Metric.recompute`` for a statistic of them, e.g. StereoSet ICAT); a metric that declares neither,
or a side without the rows, is judged by its tolerance alone and the finding says "unpaired: tolerance only".
A cell evaluated on other data than the baseline's (another sample, data digest, n or example ids) is "not
comparable": it is reported, never called a regression.

Exit codes: 0 no regression, 1 at least one regression, 2 missing cells/metrics (unless allowed) or bad input,
3 some cells not comparable with the baseline (unless allowed).
"""
from __future__ import annotations

import importlib
import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

import biasboard.harness as harness
from biasboard.harness.errors import DataError
from biasboard.harness.record import CellRecord, StoredMetric, as_records
from biasboard.harness.specs import DIRECTIONS, distance_from_ideal
from biasboard.harness.stats import holm, paired_resample_test, resample_counts

SCHEMA_ID = "biasboard-baseline/1"
IDENTITY = ("model", "method", "method_params", "task", "variant", "seed")
MIN_PAIRED = 10
"""Fewer common example ids than this and the paired test is not attempted (tolerance only)."""
MAX_RESAMPLES = 20_000
"""Largest ``n_resamples`` a baseline may ask for: beyond it the 95% interval does not move, only the bill."""
ALPHA = 0.05
"""Family-wise error rate of the paired tests (Holm)."""
SAMPLE_FLAGS = ("eval_sample", "eval_subsample")
"""Result flags that say a cell was evaluated on a sample of its data (the sample must match the baseline's)."""
RECOMPUTE = re.compile(r"^(biasboard\.[\w.]+):(\w+)\(([\w,]*)\)(?:\[(\w+)\])?$")
"""``module:function(column,...)[key]`` of ``Metric.recompute``; only biasboard modules are imported."""


# --- baseline file ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PerExample:
    """The example rows a metric follows from, as stored in the baseline: what the paired bootstrap resamples."""

    values: dict[str, Any]
    """Example id -> score (a mean metric; None for a row outside ``where``) or list of column values (recompute)."""
    field: str = ""
    """Example-row field the metric is the mean of (e.g. CrowS-Pairs ``more_is_higher``); empty for recompute."""
    scale: float = 1.0
    """100 for percent metrics computed from 0/1 rows, else 1."""
    where: dict[str, Any] | None = None
    """Only rows whose fields equal these values count (e.g. CrowS-Pairs ``stereo_score``)."""
    recompute: str = ""
    """``module:function(column,...)[key]`` for metrics that are not a mean over rows (see ``Metric.recompute``)."""

    def declaration(self) -> dict[str, Any]:
        """The declaration as the result JSON carries it (``Metric.per_example_json``)."""
        if self.recompute:
            return {"recompute": self.recompute}
        out = {"field": self.field, "scale": self.scale}
        return {**out, "where": self.where} if self.where else out


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
    data_sha256: str = ""
    """Digest of the data the cell was computed from (empty in baselines written before it was stored)."""
    sample: dict[str, Any] | None = None
    """The cell's sampling flags (``{}`` = full data; None in baselines written before it was stored)."""

    @property
    def ident(self) -> str:
        return identity(self)

    @property
    def label(self) -> str:
        return cell_label(self)


@dataclass(frozen=True)
class Baseline:
    cells: tuple[CellBaseline, ...]
    path: str = ""
    created_at: str = ""
    n_resamples: int = 2000
    """Paired bootstrap resamples (the interval is always 95%)."""


def _which(cell: CellRecord | CellBaseline | Mapping[str, Any]) -> tuple[str, str, dict, str, str, int]:
    """(model, method, params, task, variant, seed) of a record, a baseline cell, or a baseline file's cell JSON."""
    if isinstance(cell, Mapping):
        return (cell["model"], cell["method"], cell.get("method_params") or {}, cell["task"], cell["variant"],
                cell.get("seed", 0))
    return cell.model, cell.method, cell.method_params or {}, cell.task, cell.variant, cell.seed


def identity(cell: CellRecord | CellBaseline | Mapping[str, Any]) -> str:
    """What a cell is, independent of code and data versions: model x method(params) x task:variant x seed."""
    model, method, params, task, variant, seed = _which(cell)
    return json.dumps([model, method, params, task, variant, int(seed)], sort_keys=True)


def cell_label(cell: CellRecord | CellBaseline | Mapping[str, Any]) -> str:
    model, method, params, task, variant, seed = _which(cell)
    method += "(" + ",".join(f"{k}={v}" for k, v in sorted(params.items())) + ")" if params else ""
    return f"{task}:{variant} \u00b7 {model} \u00b7 {method} \u00b7 seed {seed}"


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
    if not isinstance(n_res, int) or isinstance(n_res, bool) or not 100 <= n_res <= MAX_RESAMPLES:
        fail(f"expected an integer from 100 to {MAX_RESAMPLES:,}, got {n_res!r}", fld="n_resamples")
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
        if not isinstance(raw.get("data_sha256", ""), str):
            fail(f"expected a string, got {raw.get('data_sha256')!r}", row=row, fld="data_sha256")
        if raw.get("sample") is not None and not isinstance(raw["sample"], dict):
            fail(f"expected an object of sampling flags, got {raw['sample']!r}", row=row, fld="sample")
        metrics_raw = raw.get("metrics")
        if not isinstance(metrics_raw, dict) or not metrics_raw:
            fail("expected a non-empty object of metrics", row=row, fld="metrics")
        label = cell_label(raw)
        metrics = {name: _parse_metric(m, fail, row, f"metrics.{name}", label) for name, m in metrics_raw.items()}
        cell = CellBaseline(model=raw["model"], method=raw["method"], method_params=raw.get("method_params") or {},
                            task=raw["task"], variant=raw["variant"], seed=raw.get("seed", 0),
                            key=str(raw.get("key", "")), metrics=metrics, data_sha256=raw.get("data_sha256", ""),
                            sample=raw.get("sample"))
        if cell.ident in seen:
            fail(f"duplicate cell {cell.label}", row=row)
        seen.add(cell.ident)
        cells.append(cell)
    return Baseline(cells=tuple(cells), path=path, created_at=str(data.get("created_at", "")), n_resamples=n_res)


def _parse_metric(m: Any, fail, row: str, where: str, label: str) -> MetricBaseline:
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
    n = m.get("n")
    per_example = None
    if m.get("per_example") is not None:
        per_example = _parse_per_example(m["per_example"], fail, row, f"{where}.per_example")
        try:
            stored = metric_from_rows(per_example.declaration(), list(per_example.values.values()))
        except DataError as exc:
            fail(str(exc), row=row, fld=f"{where}.per_example")
        if not _same(stored, float(m["value"])):
            fail(f"{label}: the stored value {m['value']!r} disagrees with the value its own per-example scores "
                 f"give ({stored:.6g}); the baseline was edited or written by a broken task", row=row,
                 fld=f"{where}.value")
        counted = _count(per_example)
        if isinstance(n, int) and n != counted:
            fail(f"{label}: n is {n} but the per-example scores hold {counted} examples", row=row, fld=f"{where}.n")
    return MetricBaseline(value=float(m["value"]), direction=direction, ideal=None if ideal is None else float(ideal),
                          tolerance=float(tol), n=n if isinstance(n, int) else None, per_example=per_example)


def _parse_per_example(per: Any, fail, row: str, where: str) -> PerExample:
    if not isinstance(per, dict) or not (isinstance(per.get("field"), str) or isinstance(per.get("recompute"), str)):
        fail("expected an object with 'field', 'scale' and 'values' (or 'recompute' and 'values')", row=row,
             fld=where)
    values = per.get("values")
    if not isinstance(values, dict) or not values:
        fail("expected a non-empty object of example id -> score", row=row, fld=f"{where}.values")
    if isinstance(per.get("recompute"), str):
        if not RECOMPUTE.match(per["recompute"]):
            fail(f"expected 'biasboard.module:function(column,...)[key]', got {per['recompute']!r}", row=row,
                 fld=f"{where}.recompute")
        width = len(_columns(per["recompute"]))
        bad = next((k for k, v in values.items() if not isinstance(v, list) or len(v) != width), None)
        if bad is not None:
            fail(f"example {bad!r}: expected a list of {width} column values, got {values[bad]!r}", row=row,
                 fld=f"{where}.values")
        return PerExample(values={str(k): v for k, v in values.items()}, recompute=per["recompute"])
    if not _is_number(per.get("scale")) or per["scale"] == 0:
        fail(f"expected a non-zero number, got {per.get('scale')!r}", row=row, fld=f"{where}.scale")
    if per.get("where") is not None and not isinstance(per["where"], dict):
        fail(f"expected an object of field -> value, got {per['where']!r}", row=row, fld=f"{where}.where")
    bad = next((k for k, v in values.items() if v is not None and not _is_number(v)), None)
    if bad is not None:
        fail(f"example {bad!r}: expected a number (or null outside 'where'), got {values[bad]!r}", row=row,
             fld=f"{where}.values")
    return PerExample(values={str(k): (None if v is None else float(v)) for k, v in values.items()},
                      field=per["field"], scale=float(per["scale"]), where=per.get("where") or None)


def _count(per: PerExample) -> int:
    return len(per.values) if per.recompute else sum(v is not None for v in per.values.values())


def _compact(x: Any) -> float | int | None:
    """0/1 scores stay integers in the file (a third smaller); other scores are floats."""
    if x is None:
        return None
    x = float(x)
    return int(x) if x.is_integer() else x


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)


# --- a metric from its example rows ---------------------------------------------------------------------------------
def _columns(spec: str) -> list[str]:
    return [c for c in RECOMPUTE.match(spec).group(3).split(",") if c]


def _recompute_function(spec: str) -> Callable[..., np.ndarray]:
    """Resolve ``module:function(column,...)[key]`` (biasboard modules only) into ``f(weights, *columns)``.

    ``weights`` is (resamples x examples) counts, one bootstrap resample per row (all ones: the metric itself);
    the function returns one value per row, or a dict of such arrays that ``[key]`` picks from.
    """
    match = RECOMPUTE.match(spec)
    if not match:
        raise DataError(f"recompute {spec!r}: expected 'biasboard.module:function(column,...)[key]'")
    module, name, _, key = match.groups()
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise DataError(f"recompute {spec!r}: cannot load {module}:{name} ({exc})") from None
    return (lambda weights, *cols: fn(weights, *cols)[key]) if key else fn


def declared(metric: StoredMetric) -> dict[str, Any] | None:
    """How a result's metric follows from its example rows, as the task declared it; None when it does not say."""
    per = metric.per_example
    return per if isinstance(per, dict) and ("field" in per or "recompute" in per) else None


def row_values(decl: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Example id -> what the metric needs of that row (None: the row is outside the metric's ``where``)."""
    out: dict[str, Any] = {}
    for i, r in enumerate(rows):
        if "id" not in r:
            raise DataError(f"example row {i} has no 'id'")
        if "recompute" in decl:
            missing = [c for c in _columns(decl["recompute"]) if c not in r]
            if missing:
                raise DataError(f"example {r['id']!r} lacks column(s) {missing}")
            out[str(r["id"])] = [r[c] for c in _columns(decl["recompute"])]
            continue
        if any(r.get(k) != v for k, v in (decl.get("where") or {}).items()):
            out[str(r["id"])] = None
            continue
        v = r.get(decl["field"])
        if not (_is_number(v) or isinstance(v, bool)):
            raise DataError(f"example {r['id']!r}: {decl['field']!r} is {v!r}, not a number")
        out[str(r["id"])] = _compact(v)
    return out


def _statistic(decl: dict[str, Any], values: list[Any]) -> Callable[[np.ndarray], np.ndarray]:
    """idx (resamples x n) -> the metric on each resample of ``values`` (NaN when a resample has no row in it)."""
    if "recompute" in decl:
        fn, width = _recompute_function(decl["recompute"]), len(_columns(decl["recompute"]))
        cols = [np.asarray([v[j] for v in values]) for j in range(width)]
        n = len(values)

        def recompute(idx):  # a resample is a row of example counts: one vectorised call for all of them
            return np.asarray(fn(resample_counts(idx, n), *cols), dtype=float).reshape(len(idx))
        return recompute
    x = np.array([0.0 if v is None else float(v) for v in values])
    w = np.array([v is not None for v in values], dtype=float)
    scale = float(decl.get("scale", 1.0))

    def mean(idx):
        with np.errstate(invalid="ignore", divide="ignore"):
            return scale * (x[idx] * w[idx]).sum(axis=-1) / w[idx].sum(axis=-1)
    return mean


def metric_from_rows(decl: dict[str, Any], values: list[Any]) -> float:
    """The metric recomputed from per-example values (as ``row_values`` gives them)."""
    if not values:
        raise DataError("no per-example values")
    return float(_statistic(decl, values)(np.arange(len(values))[None, :])[0])


# --- writing a baseline -------------------------------------------------------------------------------------------
def default_tolerance(metric: StoredMetric) -> float:
    """1 point for percent metrics, 0.05 for the rest (effect sizes, gaps, correlations)."""
    return 1.0 if metric.unit == "%" else 0.05


def per_example_scores(metric: StoredMetric | Mapping[str, Any], rows: list[dict[str, Any]]) -> PerExample | None:
    """The example scores a metric declares it follows from (``Metric.per_example``/``recompute``), checked.

    Never guessed: a metric that declares nothing (or a record from before declarations) has none. The declared
    rows must reproduce the metric, or the result is inconsistent and this is an error.

    >>> rows = [{"id": "a", "hit": 1}, {"id": "b", "hit": 0}, {"id": "c", "hit": 1}, {"id": "d", "hit": 1}]
    >>> per_example_scores({"value": 75.0, "n": 4, "per_example": {"field": "hit", "scale": 100.0}}, rows).field
    'hit'
    >>> per_example_scores({"value": 75.0, "n": 4}, rows) is None   # no declaration: no guessing
    True
    """
    metric = StoredMetric.of(metric)
    decl = declared(metric)
    if decl is None or not rows or metric.value is None:
        return None
    values = row_values(decl, rows)
    per = PerExample(values=values, field=decl.get("field", ""), scale=float(decl.get("scale", 1.0)),
                     where=decl.get("where") or None, recompute=decl.get("recompute", ""))
    if isinstance(metric.n, int) and metric.n != _count(per):
        raise DataError(f"n is {metric.n} but the declared per-example {_what(decl)} has {_count(per)} rows")
    got = metric_from_rows(decl, list(values.values()))
    if not _same(got, float(metric.value)):
        raise DataError(f"the declared per-example {_what(decl)} gives {got:.6g}, not the stored {metric.value}")
    return per


def _what(decl: dict[str, Any]) -> str:
    if "recompute" in decl:
        return f"statistic {decl['recompute']}"
    return f"column {decl['field']!r}" + (f" where {decl['where']}" if decl.get("where") else "")


def sample_of(record: CellRecord) -> dict[str, Any]:
    """The sampling flags of a result (``{}``: evaluated on all its data)."""
    return {k: v for k, v in (record.flags or {}).items() if k.startswith(SAMPLE_FLAGS)}


def make_baseline(records: Iterable[CellRecord | dict[str, Any]], examples: Callable[[str], list[dict[str, Any]]], *,
                  metrics: Iterable[str] | None = None, tolerances: dict[str, float] | None = None,
                  fallback_tolerance: float | None = None, with_examples: bool = True) -> dict[str, Any]:
    """Snapshot records as a baseline document (review it, then commit it).

    ``metrics`` limits which metric names are kept (default: all top-level metrics); ``tolerances`` sets a
    tolerance per metric name; others get ``fallback_tolerance`` or ``default_tolerance``.
    """
    wanted = set(metrics) if metrics else None
    tolerances = tolerances or {}
    latest: dict[str, CellRecord] = {}
    for r in as_records(records):  # store order is oldest first: the latest run of a cell wins
        latest[identity(r)] = r
    cells = []
    for r in sorted(latest.values(), key=cell_label):
        rows = examples(r.key) if with_examples else []
        out_metrics = {}
        for name, m in r.metrics.items():
            if wanted is not None and name not in wanted:
                continue
            if m.value is None:
                continue
            entry = {"value": m.value, "n": m.n, "direction": m.direction, "ideal": m.ideal,
                     "tolerance": tolerances.get(name, fallback_tolerance if fallback_tolerance is not None
                                                 else default_tolerance(m))}
            if m.ci95:
                entry["ci95"] = list(m.ci95)
            try:
                per = per_example_scores(m, rows)
            except DataError as exc:
                raise DataError(f"{cell_label(r)} {name}: {exc}") from None
            if per is not None:
                entry["per_example"] = {**per.declaration(), "values": per.values}
            out_metrics[name] = entry
        if out_metrics:
            cells.append({"model": r.model, "method": r.method, "method_params": r.method_params or {},
                          "task": r.task, "variant": r.variant, "seed": int(r.seed), "key": r.key,
                          "data_sha256": r.provenance.data_sha256 or "", "sample": sample_of(r),
                          "metrics": out_metrics})
    if not cells:
        raise DataError("no finished cells matched; nothing to snapshot")
    return {"schema": SCHEMA_ID, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "harness": harness.__version__, "n_resamples": 2000, "cells": cells}


# --- comparing ----------------------------------------------------------------------------------------------------
STATUSES = ("regression", "missing_cell", "missing_metric", "not_comparable", "improvement", "unchanged",
            "new_cell")


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
    """Change in distance from the ideal (positive = farther = worse), on the metric's scale; None when the cell is
    not comparable."""
    tolerance: float | None = None
    test: str = ""
    """``paired_bootstrap`` or ``tolerance_only`` (empty when nothing was tested)."""
    ci95: tuple[float, float] | None = None
    """Paired bootstrap 95% interval of ``change`` (paired test only: never beside an unpaired change)."""
    n_paired: int | None = None
    p_value: float | None = None
    """Two-sided p-value of the paired test (from the bootstrap standard error)."""
    p_holm: float | None = None
    """``p_value`` after the Holm correction across every paired comparison of the report."""
    reason: str = ""
    """Why the verdict is what it is, in words."""


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    baseline_path: str = ""
    store_path: str = ""
    allow_missing: bool = False
    allow_not_comparable: bool = False
    n_tests: int = 0
    """Paired comparisons the Holm correction ran across."""

    def of(self, status: str) -> list[Finding]:
        return [f for f in self.findings if f.status == status]

    @property
    def exit_code(self) -> int:
        if self.of("regression"):
            return 1
        if not self.allow_missing and (self.of("missing_cell") or self.of("missing_metric")):
            return 2
        if not self.allow_not_comparable and self.of("not_comparable"):
            return 3
        return 0

    def counts(self) -> dict[str, int]:
        return {s: len(self.of(s)) for s in STATUSES}


def change_in_distance(then: float, now: float, direction: str, ideal: float | None) -> float:
    """How much farther from the ideal ``now`` is than ``then`` (negative: closer), via ``distance_from_ideal``.

    A ``max``/``min`` metric without an ideal is measured from the better of the two values.

    >>> change_in_distance(45.0, 55.0, "target", 50.0), change_in_distance(80.0, 78.5, "max", None)
    (0.0, 1.5)
    """
    if ideal is None:
        ideal = max(then, now) if direction == "max" else min(then, now)
    return distance_from_ideal(now, ideal, direction) - distance_from_ideal(then, ideal, direction)


def changes_in_distance(then: np.ndarray, now: np.ndarray, direction: str, ideal: float | None) -> np.ndarray:
    """``change_in_distance`` for arrays of resampled values at once (NaN where either side is undefined); the same
    arithmetic, so the same numbers, without a Python call per resample.

    >>> changes_in_distance(np.array([45.0, 80.0, np.nan]), np.array([55.0, 78.5, 1.0]), "target", 50.0)
    array([ 0. , -1.5,  nan])
    """
    then, now = np.asarray(then, float), np.asarray(now, float)
    with np.errstate(invalid="ignore"):  # as the scalar rule: without an ideal, from the better of the two values
        ref = ideal if ideal is not None else (np.fmax(then, now) if direction == "max" else np.fmin(then, now))
        if direction == "target":
            dist = lambda v: np.abs(v - ref)  # noqa: E731
        elif direction == "max":
            dist = lambda v: np.maximum(0.0, ref - v)  # noqa: E731
        else:
            dist = lambda v: np.maximum(0.0, v - ref)  # noqa: E731
        out = dist(now) - dist(then)
    out[~(np.isfinite(then) & np.isfinite(now))] = np.nan
    return out


@dataclass
class _Pending:
    """A metric whose verdict waits for the Holm correction."""

    cell: str
    name: str
    base: MetricBaseline
    value: float
    note: str
    paired: tuple[float, tuple[float, float], float, int] | None
    why_unpaired: str


def compare(baseline: Baseline, records: Iterable[CellRecord | dict[str, Any]],
            examples: Callable[[str], list[dict[str, Any]]], *, seed: int = 0, allow_missing: bool = False,
            allow_not_comparable: bool = False) -> Report:
    """Check every baseline cell and metric against the latest finished record of the same cell in the store."""
    latest: dict[str, CellRecord] = {}
    failed: dict[str, str] = {}
    for r in as_records(records):  # store order is oldest first; records without a status are finished ones
        if r.done:
            latest[identity(r)] = r
        else:
            failed[identity(r)] = (r.error or "no error recorded").strip().splitlines()[0]
    report = Report(baseline_path=baseline.path, allow_missing=allow_missing,
                    allow_not_comparable=allow_not_comparable)
    slots: list[Finding | _Pending] = []
    for cell in baseline.cells:
        rec = latest.get(cell.ident)
        if rec is None:
            why = f"the cell failed: {failed[cell.ident]}" if cell.ident in failed else \
                "no finished result for this cell in the store; run the matrix that produces it"
            slots.append(Finding("missing_cell", cell.label, reason=why))
            continue
        note = "" if not cell.key or cell.key == rec.key else "cell key changed since the baseline " \
                                                                       "(code, data or weights differ). "
        cell_why = _cell_not_comparable(cell, rec)
        rows = None
        for name, base in cell.metrics.items():
            cur = rec.metrics.get(name)
            common = dict(cell=cell.label, metric=name, baseline=base.value, ideal=base.ideal,
                          direction=base.direction, tolerance=base.tolerance)
            if cur is None or not _is_number(cur.value):
                what = "no value" if cur is None or cur.value is None else f"value {cur.value!r}"
                slots.append(Finding("missing_metric", **common, reason=note + f"the current result has {what} for "
                                                                                "this metric"))
                continue
            why = cell_why
            if not why and base.n is not None and cur.n is not None and cur.n != base.n \
                    and not _n_follows_outcomes(base, cur):
                why = f"n differs from the baseline ({base.n} -> {cur.n})"
            if why:
                slots.append(Finding("not_comparable", **common, current=float(cur.value),
                                     reason=note + f"not comparable: {why}; not judged. Compare runs on the same "
                                                   "data, or write a baseline for this sample"))
                continue
            if base.per_example is not None and rows is None:
                rows = examples(rec.key)
            outcome, detail = _paired(base, cur, rows or [], baseline.n_resamples, seed)
            if outcome == "not_comparable":
                slots.append(Finding("not_comparable", **common, current=float(cur.value),
                                     reason=note + f"not comparable: {detail}; not judged"))
                continue
            slots.append(_Pending(cell.label, name, base, float(cur.value), note,
                                  detail if outcome == "paired" else None, detail if outcome == "unpaired" else ""))
    pending = [s for s in slots if isinstance(s, _Pending) and s.paired is not None]
    adjusted = dict(zip(map(id, pending), holm([s.paired[2] for s in pending]))) if pending else {}
    report.n_tests = len(pending)
    report.findings = [s if isinstance(s, Finding) else _judge(s, adjusted.get(id(s)), len(pending))
                       for s in slots]
    known = {c.ident for c in baseline.cells}
    for ident, rec in sorted(latest.items()):
        if ident not in known:
            report.findings.append(Finding("new_cell", cell_label(rec), reason="not in the baseline"))
    return report


def _cell_not_comparable(cell: CellBaseline, rec: CellRecord) -> str:
    """Why a cell's current result is computed on other data than the baseline's ('' when it is not)."""
    if cell.sample is not None and sample_of(rec) != cell.sample:
        then = ", ".join(f"{v}" for v in cell.sample.values()) or "all data"
        now = ", ".join(f"{v}" for v in sample_of(rec).values()) or "all data"
        return f"evaluated on a different sample ({then} -> {now})"
    if cell.sample is None and sample_of(rec):
        return f"evaluated on a sample ({', '.join(map(str, sample_of(rec).values()))}), the baseline on all data"
    digest = rec.provenance.data_sha256 or ""
    if cell.data_sha256 and digest and digest != cell.data_sha256:
        return f"data digest differs ({cell.data_sha256[:12]} -> {digest[:12]})"
    return ""


def _judge(s: _Pending, p_holm: float | None, m: int) -> Finding:
    base = s.base
    change = change_in_distance(base.value, s.value, base.direction, base.ideal)
    common = dict(cell=s.cell, metric=s.name, baseline=base.value, current=s.value, ideal=base.ideal,
                  direction=base.direction, change=change, tolerance=base.tolerance)
    if s.paired is None:
        status = "regression" if change > base.tolerance else "improvement" if change < -base.tolerance else "unchanged"
        return Finding(status, **common, test="tolerance_only",
                       reason=s.note + f"unpaired: tolerance only ({s.why_unpaired})")
    diff, (lo, hi), p, n = s.paired
    common["change"] = diff  # on the matched examples; equal to the change of the values (same examples both sides)
    sig = p_holm is not None and p_holm < ALPHA
    test = f"the paired 95% interval [{lo:.4g}, {hi:.4g}]"
    holm_txt = f"Holm-adjusted p {p_holm:.3g} over {m} paired test(s)"
    if diff > base.tolerance and lo > 0 and sig:
        status, reason = "regression", f"farther from the ideal by {diff:.4g} (> tolerance {base.tolerance:g}); " \
                                       f"{test} excludes 0 and {holm_txt} < {ALPHA:g}"
    elif diff < -base.tolerance and hi < 0 and sig:
        status, reason = "improvement", f"closer to the ideal by {-diff:.4g}; {test} excludes 0 and {holm_txt} " \
                                        f"< {ALPHA:g}"
    elif abs(diff) > base.tolerance:
        status, reason = "unchanged", f"moved {diff:+.4g} (beyond tolerance {base.tolerance:g}) but not " \
                                      f"significant: {test}, {holm_txt}"
    else:
        status, reason = "unchanged", f"within tolerance {base.tolerance:g}"
    return Finding(status, **common, test="paired_bootstrap", ci95=(lo, hi), n_paired=n, p_value=p, p_holm=p_holm,
                   reason=s.note + reason)


def _n_follows_outcomes(base: MetricBaseline, cur: StoredMetric) -> bool:
    """Whether n counts only the rows that pass an outcome filter (e.g. CrowS-Pairs' stereo score leaves out tied
    pairs), so it may differ on the very same examples: then the example ids decide comparability (``_paired``)."""
    decl = declared(cur)
    return base.per_example is not None and bool((decl or {}).get("where")) and decl == base.per_example.declaration()


def _paired(base: MetricBaseline, cur: StoredMetric, rows: list[dict[str, Any]], n_resamples: int,
            seed: int) -> tuple[str, Any]:
    """("paired", (change, ci95, p, n)), ("unpaired", why) or ("not_comparable", why)."""
    per, decl = base.per_example, declared(cur)
    if per is None:
        return "unpaired", "the baseline has no per-example scores for this metric"
    if decl is None:
        return "unpaired", "the current result declares no per-example column for this metric (recorded before " \
                           "metrics declared one, or not computed from its example rows)"
    if decl != per.declaration():
        return "unpaired", f"the metric now follows from {_what(decl)}, the baseline from {_what(per.declaration())}"
    if not rows:
        return "unpaired", "the store has no per-example rows for the current cell"
    try:
        current = row_values(decl, rows)
        now = metric_from_rows(decl, list(current.values()))
    except DataError as exc:
        return "unpaired", f"current rows: {exc}"
    if not _same(now, float(cur.value)):
        return "unpaired", f"current per-example {_what(decl)} does not reproduce the metric ({now:.6g})"
    if set(current) != set(per.values):
        only_then, only_now = len(set(per.values) - set(current)), len(set(current) - set(per.values))
        return "not_comparable", f"the examples differ from the baseline's ({only_then} only in the baseline, " \
                                 f"{only_now} only now)"
    ids = sorted(per.values)
    if len(ids) < MIN_PAIRED:
        return "unpaired", f"only {len(ids)} examples"
    then_stat = _statistic(decl, [per.values[i] for i in ids])
    now_stat = _statistic(decl, [current[i] for i in ids])

    def change(idx):
        return changes_in_distance(then_stat(idx), now_stat(idx), base.direction, base.ideal)

    diff, ci, p = paired_resample_test(change, len(ids), n_resamples=n_resamples, seed=seed)
    return "paired", (diff, ci, p, len(ids))
