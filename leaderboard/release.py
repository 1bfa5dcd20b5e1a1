"""The versioned JSON release: every finished cell plus the overview table, in one documented document.

The release is what the HTML pages are rendered from and what other tools should read (HELM-style: static JSON
first, pages second). Its JSON Schema ships as ``leaderboard/release.schema.json``; ``SCHEMA_ID`` changes when a
field changes meaning or goes away (adding optional fields keeps it).
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

from biasboard.harness import __version__ as HARNESS_VERSION
from biasboard.leaderboard import ranking

SCHEMA_ID = "biasboard-release/1"
SCHEMA_FILE = Path(__file__).with_name("release.schema.json")


def method_label(method: str, params: dict[str, Any], defaults: dict[str, Any] | None = None) -> str:
    """``name`` or ``name(k=v,...)`` listing only the parameters that differ from the method's defaults.

    >>> method_label("bias_vector", {"lam": 10, "epochs": 30}, {"lam": 1, "epochs": 30})
    'bias_vector(lam=10)'
    """
    shown = {k: v for k, v in sorted((params or {}).items()) if defaults is None or defaults.get(k, object()) != v}
    return method if not shown else f"{method}(" + ",".join(f"{k}={v}" for k, v in shown.items()) + ")"


def row_id(record: dict[str, Any]) -> str:
    """Identity of an overview row: model x method x method parameters."""
    return json.dumps([record["model"], record["method"], record.get("method_params") or {}], sort_keys=True)


def column_id(task: str, variant: str) -> str:
    return f"{task}:{variant}"


def _mean_over_seeds(metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """One overview entry from the seeds of a cell: the seed itself, or the seed mean with the seed range."""
    if len(metrics) == 1:
        return dict(metrics[0])
    values = [m["value"] for m in metrics if m.get("value") is not None]
    first = dict(metrics[0])
    first["value"] = sum(values) / len(values) if values else None
    first["seed_range"] = [min(values), max(values)] if values else None
    first.pop("ci95", None)  # a per-seed CI says nothing about the seed mean; the seed range is shown instead
    first.pop("p_value", None)
    return first


def build_release(records: Iterable[dict[str, Any]], *, failures: Iterable[dict[str, Any]] = (),
                  generated_at: str | None = None, plugins: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Assemble the release document from finished store records (result contract plus store fields).

    ``failures`` are failed cells (store records with ``error``); they are listed, never scored. ``plugins`` is the
    task and method metadata the run wrote into the store (``{"tasks": {name: meta}, "methods": {...}}``): the site
    reads records only and never imports a task or a method.
    """
    records = sorted((dict(r) for r in records), key=lambda r: (r["task"], r["variant"], r["model"], r["method"],
                                                               json.dumps(r.get("method_params") or {}, sort_keys=True),
                                                               r.get("seed", 0)))
    plugins = plugins or {}
    task_meta, method_meta = (plugins.get("tasks") or {}).get, (plugins.get("methods") or {}).get
    tasks: dict[str, Any] = {}
    methods: dict[str, Any] = {}
    models: dict[str, Any] = {}
    for r in records:
        if r["task"] not in tasks:
            tasks[r["task"]] = task_meta(r["task"]) or {"description": "", "citation": "", "axis": r.get("axis", ""),
                                                        "version": r.get("task_version", ""), "families": [],
                                                        "variants": {}, "registered": False}
        if r["method"] not in methods:
            methods[r["method"]] = method_meta(r["method"]) or {
                "description": "", "citation": "", "kind": r.get("method_kind", ""),
                "version": r.get("method_version", ""), "families": [], "params": {}, "registered": False}
        m = models.setdefault(r["model"], {"family": r.get("family", ""), "weights_sha256": []})
        w = (r.get("provenance") or {}).get("weights_sha256")
        if w and w not in m["weights_sha256"]:
            m["weights_sha256"].append(w)

    cells = []
    for r in records:
        cell = {k: r.get(k) for k in ("key", "model", "method", "method_params", "task", "variant", "seed", "family",
                                      "method_kind", "axis", "task_version", "method_version")}
        cell["method_params"] = cell["method_params"] or {}
        cell["method_kind"] = cell["method_kind"] or methods[r["method"]].get("kind", "")
        cell["axis"] = cell["axis"] or tasks[r["task"]].get("axis", "")
        cell["method_label"] = method_label(r["method"], cell["method_params"], methods[r["method"]].get("params"))
        cell["metrics"] = {name: _with_distance(m) for name, m in (r.get("metrics") or {}).items()}
        cell["groups"] = {g: {name: _with_distance(m) for name, m in ms.items()}
                          for g, ms in (r.get("groups") or {}).items()}
        cell["notes"] = list(r.get("notes") or [])
        cell["flags"] = dict(r.get("flags") or {})
        cell["provenance"] = dict(r.get("provenance") or {})
        cell["n_examples"] = r.get("n_examples")
        cells.append(cell)

    columns, rows = _overview(cells, tasks)
    digest = hashlib.sha256(json.dumps(cells, sort_keys=True, default=str).encode()).hexdigest()
    return {
        "schema": SCHEMA_ID,
        "release": {"id": digest[:16], "generated_at": generated_at or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "harness": HARNESS_VERSION, "n_cells": len(cells)},
        "ranking": {"how": RANK_HOW, "colour": COLOUR_HOW},
        "tasks": tasks, "methods": methods, "models": models,
        "columns": columns, "rows": rows, "cells": cells,
        "failures": [{"key": f.get("key", ""), "model": f.get("model", ""), "method": f.get("method", ""),
                      "method_params": f.get("method_params") or {}, "task": f.get("task", ""),
                      "variant": f.get("variant", ""), "seed": f.get("seed", 0),
                      "error": (f.get("error") or "").strip().splitlines()[0] if f.get("error") else ""}
                     for f in failures],
    }


RANK_HOW = ("Each column ranks the rows that have it by distance from the metric's ideal (1 = closest; ties share "
            "the average rank). A row's mean rank averages its ranks over the columns it has; the number of columns "
            "ranked is shown beside it, since rows with different coverage are not strictly comparable. Metrics "
            "without an ideal rank by their stated direction.")
COLOUR_HOW = ("Colour shows distance from the ideal, not 'higher is better': the lightest shade is at the ideal; "
              f"percent targets (e.g. stereotype scores, ideal 50) reach the darkest shade "
              f"{ranking.PERCENT_TARGET_FULL_RED:g} points away, other metrics at the column's worst row. "
              "A check mark means the 95% interval includes the ideal.")


METRIC_FIELDS = {"value": None, "n": None, "ci95": None, "p_value": None, "ideal": None, "direction": "target",
                 "unit": "", "description": ""}


def _with_distance(metric: dict[str, Any]) -> dict[str, Any]:
    """Every metric in the release has every field (missing ones null), plus its distance from the ideal."""
    out = {**METRIC_FIELDS, **metric}
    out["distance"] = ranking.distance(out)
    return out


def _overview(cells: list[dict[str, Any]], tasks: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    """Columns = each task variant's headline metric; rows = model x method (params) with mean rank."""
    columns: dict[str, dict[str, Any]] = {}
    by_row: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    row_info: dict[str, dict[str, Any]] = {}
    for c in cells:
        if not c["metrics"]:
            continue
        headline_name, headline = next(iter(c["metrics"].items()))
        cid = column_id(c["task"], c["variant"])
        columns.setdefault(cid, {"id": cid, "task": c["task"], "variant": c["variant"], "metric": headline_name,
                                 "axis": c["axis"], "ideal": headline.get("ideal"),
                                 "direction": headline.get("direction", "target"), "unit": headline.get("unit", ""),
                                 "description": headline.get("description", "")})
        metric = c["metrics"].get(columns[cid]["metric"])
        if metric is None:
            continue
        rid = row_id(c)
        row_info.setdefault(rid, {"id": rid, "model": c["model"], "method": c["method"],
                                  "method_params": c["method_params"], "method_label": c["method_label"],
                                  "family": c["family"], "method_kind": c["method_kind"]})
        by_row[rid][cid].append({"metric": metric, "cell": c})
    col_list = sorted(columns.values(), key=lambda col: (col["task"], col["variant"]))
    row_ids = sorted(row_info, key=lambda r: (row_info[r]["model"], row_info[r]["method_label"]))
    entries: dict[tuple[str, str], dict[str, Any]] = {}
    for rid in row_ids:
        for col in col_list:
            found = by_row[rid].get(col["id"])
            if not found:
                continue
            e = _mean_over_seeds([f["metric"] for f in found])
            flags: dict[str, Any] = {}
            for f in found:
                flags.update(f["cell"]["flags"])
            entries[(rid, col["id"])] = {
                "value": e.get("value"), "ci95": e.get("ci95"), "seed_range": e.get("seed_range"), "n": e.get("n"),
                "p_value": e.get("p_value"), "keys": [f["cell"]["key"] for f in found],
                "seeds": [f["cell"]["seed"] for f in found], "flags": flags,
                "distance": ranking.distance({**col, "value": e.get("value")}),
                "ci_covers_ideal": ranking.ci_covers_ideal({**col, "ci95": e.get("ci95")}),
            }
    badness_matrix = []
    for col in col_list:
        present = [entries.get((rid, col["id"])) for rid in row_ids]
        values = [p["value"] for p in present if p and p["value"] is not None]
        bad = [ranking.badness({**col, "value": p["value"]}, values) if p else None for p in present]
        scale = ranking.shade_scale(col, bad)
        col["shade_scale"] = scale
        col_ranks = ranking.ranks(bad)
        for rid, p, b, rk in zip(row_ids, present, bad, col_ranks):
            if p:
                p["badness"], p["rank"], p["shade"] = b, rk, ranking.shade(b, scale=scale)
        badness_matrix.append(bad)
    rows = []
    per_row = ranking.mean_ranks([list(r) for r in zip(*badness_matrix)]) if col_list else [(None, 0)] * len(row_ids)
    for rid, (mean_rank, n_ranked) in zip(row_ids, per_row):
        row = dict(row_info[rid])
        row["mean_rank"] = mean_rank
        row["n_ranked"] = n_ranked
        row["cells"] = {col["id"]: entries[(rid, col["id"])] for col in col_list if (rid, col["id"]) in entries}
        rows.append(row)
    return col_list, rows


def write_release(release: dict[str, Any], out_dir: Path, examples: dict[str, list[dict[str, Any]]]) -> Path:
    """Write ``release.json`` and one ``examples/<key>.jsonl`` per cell; returns the release path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "release.json"
    path.write_text(json.dumps(_clean(release), indent=1, allow_nan=False))
    ex_dir = out_dir / "examples"
    ex_dir.mkdir(exist_ok=True)
    for key, rows in examples.items():
        with open(ex_dir / f"{safe_name(key)}.jsonl", "w") as fh:
            for row in rows:
                fh.write(json.dumps(_clean(row), allow_nan=False) + "\n")
    return path


def safe_name(text: str) -> str:
    """A file name for any string (cell keys, model ids such as ``zoo:x`` or ``<script>``): slug plus digest."""
    slug = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in text).strip("-.")[:48]
    return f"{slug}-{hashlib.sha256(text.encode()).hexdigest()[:8]}" if slug != text else slug


def _clean(obj):
    """JSON-safe copy: NaN/inf become null (strict JSON has no NaN), numpy scalars become Python numbers."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
