"""The versioned JSON release: every finished cell plus the overview table, in one documented document.

The release is what the HTML pages are rendered from and what other tools should read (HELM-style: static JSON
first, pages second). Its JSON Schema ships as ``leaderboard/release.schema.json``; ``SCHEMA_ID`` changes when a
field changes meaning or goes away (adding optional fields keeps it).
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

from biasboard.harness import __version__ as HARNESS_VERSION
from biasboard.harness.record import CellRecord, as_records
from biasboard.leaderboard import ranking

SCHEMA_ID = "biasboard-release/2"
SCHEMA_FILE = Path(__file__).with_name("release.schema.json")


def method_label(method: str, params: dict[str, Any], defaults: dict[str, Any] | None = None) -> str:
    """``name`` or ``name(k=v,...)`` with every stored parameter, exactly as the CLI's result table prints it.

    ``defaults`` is accepted for old callers and ignored: a label that hides a default hides what was run.

    >>> method_label("bias_vector", {"lam": 10, "epochs": 30})
    'bias_vector(lam=10,epochs=30)'
    """
    params = params or {}
    return method + (("(" + ",".join(f"{k}={v}" for k, v in params.items()) + ")") if params else "")


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


def build_release(records: Iterable[CellRecord | dict[str, Any]], *,
                  failures: Iterable[CellRecord | dict[str, Any]] = (), generated_at: str | None = None,
                  plugins: dict[str, dict[str, Any]] | None = None,
                  n_examples: dict[str, int] | None = None) -> dict[str, Any]:
    """Assemble the release document from finished store records.

    ``failures`` are failed cells (store records with ``error``); they are listed, never scored. ``plugins`` is the
    task and method metadata the run wrote into the store (``{"tasks": {name: meta}, "methods": {...}}``): the site
    reads records only and never imports a task or a method. ``n_examples``: per-example rows stored per cell key.
    """
    records = sorted(as_records(records), key=lambda r: (r.task, r.variant, r.model, r.method,
                                                         json.dumps(r.method_params or {}, sort_keys=True), r.seed))
    n_examples = n_examples or {}
    plugins = plugins or {}
    task_meta, method_meta = (plugins.get("tasks") or {}).get, (plugins.get("methods") or {}).get
    tasks: dict[str, Any] = {}
    methods: dict[str, Any] = {}
    models: dict[str, Any] = {}
    for r in records:
        if r.task not in tasks:
            tasks[r.task] = dict(task_meta(r.task) or {}) or {"description": "", "citation": "", "axis": r.axis,
                                                              "version": r.task_version, "families": [],
                                                              "variants": {}, "registered": False}
        if r.method not in methods:
            methods[r.method] = dict(method_meta(r.method) or {}) or {
                "description": "", "citation": "", "kind": r.method_kind,
                "version": r.method_version, "families": [], "params": {}, "registered": False}
        m = models.setdefault(r.model, {**MODEL_FIELDS, "family": r.family,
                                        **((plugins.get("models") or {}).get(r.model) or {}), "weights_sha256": []})
        w = r.provenance.weights_sha256
        if w and w not in m["weights_sha256"]:
            m["weights_sha256"].append(w)

    cells = []
    for r in records:
        cell = {"key": r.key, "model": r.model, "method": r.method, "method_params": r.method_params or {},
                "task": r.task, "variant": r.variant, "seed": r.seed, "family": r.family,
                "method_kind": r.method_kind or methods[r.method].get("kind", ""),
                "axis": r.axis or tasks[r.task].get("axis", ""), "task_version": r.task_version,
                "method_version": r.method_version}
        cell["method_label"] = method_label(r.method, cell["method_params"], methods[r.method].get("params"))
        cell["metrics"] = {name: _with_distance(m.to_json()) for name, m in r.metrics.items()}
        cell["groups"] = {g: {name: _with_distance(m.to_json()) for name, m in ms.items()} for g, ms in r.groups.items()}
        cell["notes"] = list(r.notes)
        cell["flags"] = dict(r.flags)
        cell["caveats"], cell["info"] = split_flags(cell["flags"], r.task, r.variant)
        cell["provenance"] = r.provenance.to_json()
        cell["n_examples"] = n_examples.get(r.key)
        cells.append(cell)

    for kind, meta in (("task", tasks), ("method", methods)):
        for name, m in meta.items():
            m["bibtex"] = bibtex(m.get("citation") or "", f"{kind}-{name}")
    columns, rows = _overview(cells, tasks)
    digest = hashlib.sha256(json.dumps(cells, sort_keys=True, default=str).encode()).hexdigest()
    return {
        "schema": SCHEMA_ID,
        "release": {"id": digest[:16], "generated_at": generated_at or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "harness": HARNESS_VERSION, "n_cells": len(cells)},
        "ranking": {"how": RANK_HOW, "colour": COLOUR_HOW, "utility": UTILITY_HOW,
                    "min_shared_columns": ranking.MIN_SHARED_COLUMNS, "utility_margin": ranking.UTILITY_MARGIN},
        "tasks": tasks, "methods": methods, "models": models,
        "columns": columns, "rows": rows, "cells": cells,
        "failures": [{"key": f.key, "model": f.model, "method": f.method, "method_params": f.method_params or {},
                      "task": f.task, "variant": f.variant, "seed": f.seed,
                      "error": f.error.strip().splitlines()[0] if f.error else ""}
                     for f in as_records(failures)],
    }


RANK_HOW = ("Default order: first the rows whose utility is kept (and each model's unmitigated 'none' row, the "
            "reference), then rows whose utility was not measured, then degenerate rows; within each group, by mean "
            "win rate. Two rows meet only on the bias columns both have, and only when they share at least "
            f"{ranking.MIN_SHARED_COLUMNS} of them; on each shared column the row closer to the metric's ideal wins "
            "(a tie counts half). A row's win rate is its share of wins over all those comparisons; its coverage "
            "(rows met, comparisons) is shown beside it. Rows that share too few columns with every other row are "
            "not ranked, and a column with a single row ranks nobody. Utility columns (e.g. GLUE) are not bias "
            "columns and are not in the win rate.")
UTILITY_HOW = (f"A row is degenerate when a utility score (StereoSet LMS, downstream accuracy, AUC, GLUE) measured "
               f"in one of its cells falls more than {ranking.UTILITY_MARGIN * 100:g}% of the metric's ideal "
               f"({ranking.UTILITY_MARGIN * 100:g} points on a 0-100 scale) below the same model's 'none' row in "
               "the same column: a model that lost what it knew has no stereotypes either, and must not rank first. "
               "Rows with no utility score in any cell are marked 'utility not measured' and ranked after the rows "
               "whose utility was checked.")
COLOUR_HOW = ("Colour shows distance from the ideal in the metric's own units, on a fixed scale per kind of metric "
              "(never relative to the other rows): percent targets such as stereotype scores (ideal 50) reach the "
              f"darkest shade {ranking.PERCENT_TARGET_FULL_RED:g} points away, 0-100 utility scores "
              f"{ranking.PERCENT_MAX_FULL_RED:g} points below 100, effect sizes (ideal 0) at "
              f"{ranking.EFFECT_SIZE_FULL_RED:g} (Cohen's d: 0.8 is 'large'), 0-1 scores at "
              f"{ranking.UNIT_SCORE_FULL_RED:g} below 1. Metrics without an ideal are not coloured. A check mark "
              "means the 95% interval includes the ideal.")

CAVEAT_FLAGS = ("eval_sample", "eval_subsample", "leakage", "synthetic_data", "offline_dev_split", "max_examples",
                "inverted_score")
"""Flags that change what a number means (prefix match, e.g. ``eval_sample_intrasentence``); shown as warnings.
Every other flag (test counts, permutation samples, training settings) is plain information."""
KNOWN_CAVEATS = {("stereoset", "intersentence_nadeem"): (
    "inverted_score", "the original script's intersentence score, which scores the candidate without its context")}
"""Caveats that belong to a task variant rather than to a run."""


def split_flags(flags: dict[str, Any], task: str = "", variant: str = "") -> tuple[dict[str, Any], dict[str, Any]]:
    """(caveats, information) from a result's flags; false-valued caveat flags are dropped (no caveat).

    >>> split_flags({"tests": 10, "eval_sample_intersentence": "200 of 2123", "synthetic_data": False})
    ({'eval_sample_intersentence': '200 of 2123'}, {'tests': 10})
    """
    caveats, info = {}, {}
    for k, v in flags.items():
        if k.startswith(CAVEAT_FLAGS):
            if v not in (False, None, 0, ""):
                caveats[k] = v
        else:
            info[k] = v
    known = KNOWN_CAVEATS.get((task, variant))
    if known:
        caveats.setdefault(*known)
    return caveats, info


MODEL_FIELDS = {"family": "", "description": "", "parameters": None, "source": {}, "licence": "", "registered": False}
"""What a model page shows; filled from the model metadata the run stored (``plugin:models:<id>``)."""


def bibtex(citation: str, fallback_key: str) -> str:
    """BibTeX entries made from a free-text citation (one per ``;``-separated work); '' for no citation.

    Two shapes are read: "Authors. Title. Venue Year" and "Authors Year, Title, Venue". The full text is kept in
    ``note`` so nothing the parser misses is lost.

    >>> print(bibtex("Caliskan, Bryson, Narayanan. Semantics derived automatically. Science 2017", "x"))
    @article{caliskan2017semantics,
      author = {Caliskan and Bryson and Narayanan},
      title = {Semantics derived automatically},
      journal = {Science},
      year = {2017},
      note = {Caliskan, Bryson, Narayanan. Semantics derived automatically. Science 2017}
    }
    """
    entries = []
    for work in (w.strip().rstrip(".") for w in citation.split(";")):
        if not work:
            continue
        m = re.match(r"^([^.]*?(?:et al\.)?[^.]*?)\s*\(?((?:19|20)\d\d)\)?,\s*(.+)$", work)
        if m and "." not in m.group(1).replace("et al.", ""):
            authors, year, rest = m.group(1), m.group(2), m.group(3)
            title, _, venue = rest.rpartition(", ") if ", " in rest else (rest, "", "")
        else:
            parts = [p.strip() for p in re.split(r"(?<!et al)\.\s+", work)]
            authors = parts[0] if len(parts) > 1 else ""
            title = parts[1] if len(parts) > 1 else parts[0]
            venue = " ".join(parts[2:])
            y = re.search(r"(19|20)\d\d", work)
            year = y.group(0) if y else ""
            venue = re.sub(r"\s*\(?(19|20)\d\d\)?\s*", " ", venue).strip()
        names = [a.strip() for a in re.split(r",\s*|\s+and\s+", authors.replace("et al.", "").strip()) if a.strip()]
        author = " and ".join(names + (["others"] if "et al" in authors else []))
        first = re.sub(r"[^a-z]", "", (names[0].split()[-1] if names else "").lower())
        word = next((w for w in re.findall(r"[a-z]+", title.lower()) if w not in ("a", "an", "the", "on")), "")
        key = (first + year + word) or f"{fallback_key}-{len(entries) + 1}"
        if "arxiv" in venue.lower() or not venue:
            kind, venue_field = "misc", ("howpublished", venue)
        elif venue.lower() in ("science", "nature") or "journal" in venue.lower():
            kind, venue_field = "article", ("journal", venue)
        else:
            kind, venue_field = "inproceedings", ("booktitle", venue)
        fields = [("author", author), ("title", title), venue_field, ("year", year), ("note", work)]
        body = ",\n".join(f"  {k} = {{{v}}}" for k, v in fields if v)
        entries.append(f"@{kind}{{{key},\n{body}\n}}")
    return "\n\n".join(entries)


METRIC_FIELDS = {"value": None, "n": None, "ci95": None, "p_value": None, "ideal": None, "direction": "target",
                 "unit": "", "description": ""}


def _with_distance(metric: dict[str, Any]) -> dict[str, Any]:
    """Every metric in the release has every field (missing ones null), plus its distance from the ideal."""
    out = {**METRIC_FIELDS, **metric}
    out["distance"] = ranking.distance(out)
    return out


def _overview(cells: list[dict[str, Any]], tasks: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    """Columns = each task variant's headline metric; rows = model x method (params), ranked by ``RANK_HOW``."""
    columns: dict[str, dict[str, Any]] = {}
    by_row: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    row_info: dict[str, dict[str, Any]] = {}
    for c in cells:
        if not c["metrics"]:
            continue
        headline_name, headline = next(iter(c["metrics"].items()))
        cid = column_id(c["task"], c["variant"])
        if cid not in columns:
            role = "utility" if ranking.is_utility(headline_name, headline, c["axis"]) else "bias"
            columns[cid] = {"id": cid, "task": c["task"], "variant": c["variant"], "metric": headline_name,
                            "axis": c["axis"], "ideal": headline.get("ideal"), "role": role,
                            "direction": headline.get("direction", "target"), "unit": headline.get("unit", ""),
                            "description": headline.get("description", "")}
            columns[cid]["shade_scale"] = ranking.colour_scale(columns[cid])
        rid = row_id(c)
        row_info.setdefault(rid, {"id": rid, "model": c["model"], "method": c["method"],
                                  "method_params": c["method_params"], "method_label": c["method_label"],
                                  "family": c["family"], "method_kind": c["method_kind"]})
        by_row[rid][cid].append(c)
    col_list = sorted(columns.values(), key=lambda col: (col["role"] != "bias", col["task"], col["variant"]))
    row_ids = sorted(row_info, key=lambda r: (row_info[r]["model"], row_info[r]["method_label"]))
    entries: dict[tuple[str, str], dict[str, Any]] = {}
    utilities: dict[str, dict[tuple[str, str], dict[str, Any]]] = defaultdict(dict)
    for rid in row_ids:
        for col in col_list:
            found = by_row[rid].get(col["id"])
            if not found:
                continue
            for name in found[0]["metrics"]:
                ms = [f["metrics"][name] for f in found if name in f["metrics"]]
                if ranking.is_utility(name, ms[0], col["axis"]) and ms[0].get("value") is not None:
                    utilities[rid][(col["id"], name)] = _mean_over_seeds(ms)
            ms = [f["metrics"][col["metric"]] for f in found if col["metric"] in f["metrics"]]
            if not ms:
                continue
            e = _mean_over_seeds(ms)
            caveats: dict[str, Any] = {}
            info: dict[str, Any] = {}
            for f in found:
                caveats.update(f["caveats"])
                info.update(f["info"])
            util = next(({"metric": n, "value": u.get("value"), "unit": u.get("unit") or ""}
                         for (cid, n), u in utilities[rid].items() if cid == col["id"] and n != col["metric"]), None)
            entries[(rid, col["id"])] = {
                "value": e.get("value"), "ci95": e.get("ci95"), "seed_range": e.get("seed_range"), "n": e.get("n"),
                "p_value": e.get("p_value"), "keys": [f["key"] for f in found],
                "seeds": [f["seed"] for f in found], "flags": caveats, "info": info, "utility": util,
                "distance": ranking.distance({**col, "value": e.get("value")}),
                "ci_covers_ideal": ranking.ci_covers_ideal({**col, "ci95": e.get("ci95")}),
            }
    bias_matrix = []
    for col in col_list:
        present = [entries.get((rid, col["id"])) for rid in row_ids]
        values = [p["value"] for p in present if p and p["value"] is not None]
        bad = [ranking.badness({**col, "value": p["value"]}, values) if p else None for p in present]
        col["n_rows"] = sum(b is not None for b in bad)
        col_ranks = ranking.ranks(bad)
        for p, b, rk in zip(present, bad, col_ranks):
            if p:
                p["badness"], p["rank"] = b, rk
                p["shade"] = ranking.shade(p["distance"], scale=col["shade_scale"])
        if col["role"] == "bias":
            bias_matrix.append(bad)
    wins = ranking.win_rates([list(r) for r in zip(*bias_matrix)]) if bias_matrix else \
        [{"win_rate": None, "opponents": 0, "comparisons": 0}] * len(row_ids)
    rows = []
    for rid, w in zip(row_ids, wins):
        row = dict(row_info[rid])
        row.update(w)
        row["n_columns"] = sum(1 for col in col_list if col["role"] == "bias" and (rid, col["id"]) in entries)
        row["utility"] = _utility_status(row, utilities, row_info)
        row["order"] = ranking.order_key(row["utility"]["tier"], row["win_rate"])
        row["cells"] = {col["id"]: entries[(rid, col["id"])] for col in col_list if (rid, col["id"]) in entries}
        rows.append(row)
    rows.sort(key=lambda r: r["order"])  # stable: ties keep (model, method) order
    return col_list, rows


def _utility_status(row: dict[str, Any], utilities: dict[str, dict], row_info: dict[str, dict]) -> dict[str, Any]:
    """The row's utility against the same model's ``none`` row: reference, ok, degenerate or not measured."""
    mine = utilities.get(row["id"], {})
    ref_id = row_id({"model": row["model"], "method": "none", "method_params": {}})
    ref = utilities.get(ref_id, {}) if ref_id in row_info else {}
    checks = []
    for (cid, name), m in mine.items():
        r = ref.get((cid, name))
        if row["method"] == "none" or r is None or r.get("value") is None:
            continue
        checks.append({"column": cid, "metric": name, "value": m["value"], "reference": r["value"],
                       "change": m["value"] - r["value"], "unit": m.get("unit") or "",
                       "degenerate": ranking.utility_drop_is_degenerate(m["value"], r["value"], m.get("ideal"))})
    if row["method"] == "none":
        status, tier = "reference", "ok"
        text = "reference for this model's utility" + ("" if mine else " (utility not measured)")
    elif any(c["degenerate"] for c in checks):
        status, tier = "degenerate", "degenerate"
        text = "degenerate: " + "; ".join(f"{c['metric']} {c['change']:+.1f}{c['unit']} vs none"
                                          for c in checks if c["degenerate"])
    elif checks:
        status, tier = "ok", "ok"
        text = "utility kept: " + "; ".join(f"{c['metric']} {c['change']:+.1f}{c['unit']} vs none" for c in checks)
    elif mine:
        status, tier = "not_measured", "not_measured"
        text = "utility not compared: the model has no 'none' row with the same utility score"
    else:
        status, tier = "not_measured", "not_measured"
        text = "utility not measured"
    return {"status": status, "tier": tier, "text": text, "checks": checks,
            "measured": [{"column": cid, "metric": n, "value": m["value"]} for (cid, n), m in mine.items()]}


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
