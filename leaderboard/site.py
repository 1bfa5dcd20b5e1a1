"""Static leaderboard: the JSON release rendered to HTML pages that work from ``file://`` with no network.

``build(store_path, out_dir)`` is what ``biasboard run`` and ``biasboard leaderboard build`` call. Templates use
jinja2 with autoescape on, so a model called ``<script>`` is shown as text; CSS and JS ship inside the package.
"""
from __future__ import annotations

import math
import shutil
import sqlite3
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

import jinja2

from biasboard.harness.errors import BiasboardError
from biasboard.harness.record import CellRecord, as_records
from biasboard.leaderboard import plots, ranking
from biasboard.leaderboard.release import build_release, safe_name, write_release

MAX_EXAMPLES_SHOWN = 200
"""Rows of per-example drill-down embedded in a cell page (all rows are in ``examples/<key>.jsonl``)."""


FINGERPRINT = ".build-fingerprint"
"""File in the output folder naming what the site was built from (store content and board code); written last."""


def build(store_path: str | Path, out_dir: str | Path) -> Path:
    """Render the site for every finished cell of a results store; returns the path of ``index.html``.

    A site already built from the same store content by the same board code is left as it is (a warm
    ``biasboard run`` then costs seconds, not a rebuild); delete ``FINGERPRINT`` in the folder to force one."""
    from biasboard.harness.store import Store

    store_path, out = Path(store_path), Path(out_dir)
    if not store_path.is_file():
        raise BiasboardError(f"results store {store_path} does not exist; run `biasboard run` first or pass --store")
    try:
        with Store(store_path) as store:
            fingerprint = _fingerprint(store.content_digest())
            if (out / "index.html").is_file() and _read(out / FINGERPRINT) == fingerprint:
                return out / "index.html"
            records = store.records(status="done")
            failures = store.records(status="failed")
            examples = {r.key: store.examples(r.key) for r in records}
            plugins = store.plugin_meta()
    except sqlite3.DatabaseError as exc:
        raise BiasboardError(f"{store_path} is not a biasboard results store (SQLite): {exc}") from None
    (out / FINGERPRINT).unlink(missing_ok=True)  # a build stopped half-way must not look finished
    index = build_site(records, examples, out, failures=failures, plugins=plugins)
    (out / FINGERPRINT).write_text(fingerprint + "\n", encoding="utf-8")
    return index


def _fingerprint(store_digest: str) -> str:
    """The store's content digest with a digest of the code a board is made by (this package, the harness whose
    statistics it shows, the tasks whose metrics it recomputes), so an upgrade rebuilds the site."""
    import hashlib
    from importlib.util import find_spec

    h = hashlib.sha256(store_digest.encode())
    for package in ("biasboard.harness", "biasboard.leaderboard", "biasboard.tasks"):  # located, not imported
        root = Path(find_spec(package).submodule_search_locations[0])
        for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip() if path.is_file() else ""


def build_site(records: Iterable[CellRecord | dict[str, Any]], examples: dict[str, list[dict[str, Any]]],
               out_dir: str | Path, *, failures: Iterable[CellRecord | dict[str, Any]] = (),
               generated_at: str | None = None, plugins: dict[str, dict[str, Any]] | None = None) -> Path:
    """Render pages from finished records, their per-example rows and failed cells."""
    out = Path(out_dir)
    records = as_records(records)
    release = build_release(records, failures=failures, generated_at=generated_at, plugins=plugins,
                            n_examples={r.key: len(examples.get(r.key, [])) for r in records})
    write_release(release, out, examples)
    write_bibtex(release, out)
    _copy_static(out / "static")
    env = _environment()
    site = _Site(release, examples, effects=_effects(records, examples))
    pages = {"index.html": ("overview.html", site.overview())}
    for task in release["tasks"]:
        pages[f"tasks/{safe_name(task)}.html"] = ("task.html", site.task_page(task))
    for model in release["models"]:
        pages[f"models/{safe_name(model)}.html"] = ("model.html", site.model_page(model))
    for method in release["methods"]:
        pages[f"methods/{safe_name(method)}.html"] = ("method.html", site.method_page(method))
    for cell in release["cells"]:
        pages[f"cells/{safe_name(cell['key'])}.html"] = ("cell.html", site.cell_page(cell))
    for rel, (template, context) in pages.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        root = "../" * rel.count("/")
        path.write_text(env.get_template(template).render(root=root, release=release, **context), encoding="utf-8")
    return out / "index.html"


def write_bibtex(release: dict[str, Any], out: Path) -> None:
    """``citations.bib`` with every task and method entry, plus ``bib/<task-or-method>.bib`` per page."""
    (out / "bib").mkdir(parents=True, exist_ok=True)
    everything = []
    for kind in ("tasks", "methods"):
        for name, meta in release[kind].items():
            if meta.get("bibtex"):
                (out / "bib" / f"{kind[:-1]}-{safe_name(name)}.bib").write_text(meta["bibtex"] + "\n", encoding="utf-8")
                everything.append(f"% {kind[:-1]} {name}\n{meta['bibtex']}")
    (out / "citations.bib").write_text("\n\n".join(everything) + "\n", encoding="utf-8")


def _copy_static(dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for item in resources.files("biasboard.leaderboard").joinpath("static").iterdir():
        if item.is_file():
            with resources.as_file(item) as src:
                shutil.copyfile(src, dest / item.name)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("biasboard.leaderboard", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = fmt_number
    env.filters["ci"] = fmt_ci
    env.filters["slug"] = safe_name
    env.filters["sortkey"] = _sort_key
    env.filters["badkey"] = _bad_key
    env.filters["pct1"] = fmt_win_rate
    env.filters["params"] = fmt_parameters
    return env


def fmt_number(x: Any, digits: int = 3) -> str:
    """Short display of a number (3 significant digits, at least one decimal for percents).

    >>> fmt_number(57.3987), fmt_number(0.004567), fmt_number(None)
    ('57.4', '0.00457', '\u2013')
    """
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "\u2013"
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, int) or float(x).is_integer() and abs(x) >= 1000:
        return str(int(x))
    return f"{x:.1f}" if 10 <= abs(x) < 1000 else f"{x:.{digits}g}"


def fmt_win_rate(w: float | None) -> str:
    """A win rate (0-1) as a percent with one decimal, rounded half up exactly as the page script does it.

    >>> fmt_win_rate(0.6125), fmt_win_rate(None)
    ('61.3%', '\u2013')
    """
    if w is None:
        return "\u2013"
    return f"{ranking.round_half_up(100.0 * w):.1f}%"


def fmt_parameters(n: Any) -> str:
    """A parameter count as people say it (4.42M, 135M, 20.0M).

    >>> fmt_parameters(4416698), fmt_parameters(134515008), fmt_parameters(None)
    ('4.42M', '135M', '\u2013')
    """
    if not isinstance(n, (int, float)) or isinstance(n, bool):
        return "\u2013"
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.3g}{suffix}"
    return str(int(n))


def fmt_ci(ci: Any) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return ""
    return f"[{fmt_number(ci[0])}, {fmt_number(ci[1])}]"


def _sort_key(x: Any) -> str:
    """Value for ``data-sort``: numbers as repr, missing as empty (sorted last by the page script)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return repr(float(x)) if isinstance(x, (int, float)) else str(x)


def _bad_key(metric: dict[str, Any]) -> str:
    """``data-sort`` for a metric: its distance from the ideal, or its value oriented so ascending = better."""
    if metric.get("distance") is not None:
        return _sort_key(metric["distance"])
    value = metric.get("value")
    if value is None or metric.get("direction") == "target":
        return ""
    return _sort_key(-value if metric.get("direction") == "max" else value)


def _effects(records: list[CellRecord], examples: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Every method's paired change against `none` (``biasboard analyze effects``), Holm-adjusted across the board;
    a store whose rows contradict their metrics is reported on the method pages instead of stopping the build."""
    from biasboard.harness.analysis.effects import method_effects

    try:
        return method_effects(records, lambda key: examples.get(key, []))
    except BiasboardError as exc:
        return {"rows": [], "dropped": [], "n_tests": 0, "error": str(exc)}


class _Site:
    """Builds the template context of each page from the release."""

    def __init__(self, release: dict[str, Any], examples: dict[str, list[dict[str, Any]]], *,
                 effects: dict[str, Any] | None = None):
        self.release = release
        self.examples = examples
        self.effects = effects or {"rows": [], "dropped": [], "n_tests": 0}
        self.cells_by_task: dict[str, list[dict]] = {}
        for c in release["cells"]:
            self.cells_by_task.setdefault(c["task"], []).append(c)

    # overview ------------------------------------------------------------------------------------------------
    def overview(self) -> dict[str, Any]:
        r = self.release
        facets = {
            "family": sorted({row["family"] for row in r["rows"] if row["family"]}),
            "kind": sorted({row["method_kind"] for row in r["rows"] if row["method_kind"]}),
            "axis": sorted({c["axis"] for c in r["columns"] if c["axis"]}),
            "task": sorted({c["task"] for c in r["columns"]}),
        }
        pareto = None
        for task in sorted(self.cells_by_task, key=lambda t: ("stereoset" not in t, t)):
            pareto = self._pareto(task)
            if pareto:
                break
        scales = sorted({(c["shade_scale"], c["unit"] or "") for c in r["columns"] if c["shade_scale"]})
        legend = [{"scale": sc, "unit": unit, "buckets": [(sc * i / ranking.N_SHADES, sc * (i + 1) / ranking.N_SHADES)
                                                          for i in range(ranking.N_SHADES)],
                   "columns": [c["id"] for c in r["columns"] if c["shade_scale"] == sc and (c["unit"] or "") == unit]}
                  for sc, unit in scales]
        counts = {t: sum(1 for row in r["rows"] if row["utility"]["tier"] == t) for t in ranking.TIERS}
        return {"page": "overview", "title": "Overview", "facets": facets, "pareto": pareto,
                "site_pareto": self.pareto_svg(pareto, ""), "legend": legend, "tier_counts": counts,
                "min_shared": ranking.MIN_SHARED_COLUMNS,
                "flagged": sorted({f for row in r["rows"] for e in row["cells"].values() for f in e["flags"]})}

    def _pareto(self, task: str, variant: str | None = None) -> dict[str, Any] | None:
        """Bias (first target/min metric) against utility (first max metric) for one task variant, if it has both."""
        cells = [c for c in self.cells_by_task.get(task, []) if variant is None or c["variant"] == variant]
        for var in sorted({c["variant"] for c in cells}):
            group = [c for c in cells if c["variant"] == var]
            bias_name = next((n for n, m in group[0]["metrics"].items()
                              if m.get("direction") in ("target", "min") and m.get("ideal") is not None), None)
            util_name = next((n for n, m in group[0]["metrics"].items() if m.get("direction") == "max"), None)
            if not bias_name or not util_name:
                continue
            points = []
            for c in group:
                b, u = c["metrics"].get(bias_name), c["metrics"].get(util_name)
                if b and u and b.get("distance") is not None and u.get("value") is not None:
                    points.append({"label": f"{c['model']} \u00b7 {c['method_label']}" +
                                   (f" \u00b7 seed {c['seed']}" if c["seed"] else ""),
                                   "x": b["distance"], "y": u["value"], "href": f"cells/{safe_name(c['key'])}.html"})
            if points:
                ideal = group[0]["metrics"][bias_name]["ideal"]
                return {"task": task, "variant": var, "bias": bias_name, "utility": util_name, "points": points,
                        "x_label": f"|{bias_name} \u2212 {plots._fmt(ideal)}|", "y_label": util_name}
        return None

    def pareto_svg(self, pareto: dict[str, Any] | None, root: str) -> Any:
        if not pareto:
            return ""
        pts = [dict(p, href=root + p["href"]) for p in pareto["points"]]
        return plots.pareto_svg(pts, x_label=pareto["x_label"], y_label=pareto["y_label"])

    # task ----------------------------------------------------------------------------------------------------
    def task_page(self, task: str) -> dict[str, Any]:
        meta = self.release["tasks"][task]
        variants = []
        for var in sorted({c["variant"] for c in self.cells_by_task[task]}):
            cells = sorted((c for c in self.cells_by_task[task] if c["variant"] == var),
                           key=lambda c: (c["model"], c["method_label"], c["seed"]))
            metric_names = list(dict.fromkeys(n for c in cells for n in c["metrics"]))
            group_metric = _group_metric(cells, metric_names[0] if metric_names else None)
            charts = []
            for c in cells:
                ref = next((ms[group_metric] for ms in c["groups"].values() if group_metric in ms), None)
                if ref is not None:
                    charts.append({"cell": c, "svg": self.group_svg(c, group_metric, ref)})
            pareto = self._pareto(task, var)
            ranges = {n: shared_range([c["metrics"][n] for c in cells if n in c["metrics"]]) for n in metric_names}
            group_range = shared_range([ms[group_metric] for c in cells for ms in c["groups"].values()
                                        if group_metric in ms])
            variants.append({"ranges": ranges, "group_range": group_range,"name": var, "description": meta.get("variants", {}).get(var, {}).get("description", ""),
                             "cells": cells, "metric_names": metric_names, "group_metric": group_metric,
                             "group_names": sorted({g for c in cells for g in c["groups"]}), "charts": charts,
                             "pareto_svg": self.pareto_svg(pareto, "../") if pareto else "", "pareto": pareto})
        return {"page": "task", "title": f"Task {task}", "task": task, "meta": meta, "variants": variants}

    def group_svg(self, cell: dict[str, Any], metric_name: str, ref: dict[str, Any]) -> Any:
        """Bars of one metric over a cell's groups; ``ref`` supplies the ideal, direction and unit."""
        bars = [{"label": g, **ms[metric_name]} for g, ms in sorted(cell["groups"].items()) if metric_name in ms]
        return plots.group_bars_svg(bars, ideal=ref.get("ideal"), direction=ref.get("direction", "target"),
                                    unit=ref.get("unit", ""))

    # model and method ----------------------------------------------------------------------------------------
    def model_page(self, model: str) -> dict[str, Any]:
        cells = [c for c in self.release["cells"] if c["model"] == model]
        rows = [row for row in self.release["rows"] if row["model"] == model]
        return {"page": "model", "title": f"Model {model}", "model": model, "meta": self.release["models"][model],
                "cells": self._sorted(cells), "rows": rows}

    def method_page(self, method: str) -> dict[str, Any]:
        cells = [c for c in self.release["cells"] if c["method"] == method]
        return {"page": "method", "title": f"Method {method}", "method": method,
                "meta": self.release["methods"][method], "cells": self._sorted(cells),
                "labels": sorted({c["method_label"] for c in cells}),
                "effects": [r for r in self.effects["rows"] if r["method_name"] == method],
                "effects_tests": self.effects["n_tests"], "effects_error": self.effects.get("error", "")}

    @staticmethod
    def _sorted(cells: list[dict]) -> list[dict]:
        return sorted(cells, key=lambda c: (c["task"], c["variant"], c["model"], c["method_label"], c["seed"]))

    # cell ----------------------------------------------------------------------------------------------------
    def cell_page(self, cell: dict[str, Any]) -> dict[str, Any]:
        charts = []
        group_metrics = list(dict.fromkeys(n for ms in cell["groups"].values() for n in ms))
        for name in group_metrics:
            ref = cell["metrics"].get(name) or next(ms[name] for ms in cell["groups"].values() if name in ms)
            charts.append({"metric": name, "svg": self.group_svg(cell, name, ref)})
        ex = drill_down(self.examples.get(cell["key"], []))
        return {"page": "cell", "title": f"{cell['task']}:{cell['variant']} \u00b7 {cell['model']} \u00b7 "
                f"{cell['method_label']}", "cell": cell, "charts": charts, "ex": ex}


def shared_range(metrics: list[dict[str, Any]]) -> list[float] | None:
    """One [lo, hi] covering the values, intervals and ideal of a table column, so its inline interval plots
    share a scale and rows compare by eye.

    >>> shared_range([{"value": 55, "ci95": [50, 60], "ideal": 50}, {"value": 40, "ci95": None, "ideal": 50}])
    [40, 60]
    """
    xs = []
    for m in metrics:
        xs += [x for x in [m.get("value"), m.get("ideal"), *(m.get("ci95") or [])]
               if isinstance(x, (int, float)) and math.isfinite(x)]
    return [min(xs), max(xs)] if xs else None


def _group_metric(cells: list[dict[str, Any]], headline: str | None) -> str | None:
    """The metric shown per group: the headline when groups report it, else the first metric groups report."""
    names = list(dict.fromkeys(n for c in cells for ms in c["groups"].values() for n in ms))
    return headline if headline in names else (names[0] if names else None)


def drill_down(rows: list[dict[str, Any]], limit: int = MAX_EXAMPLES_SHOWN) -> dict[str, Any]:
    """The most telling per-example rows first.

    CrowS-Pairs-style rows (``sent_more_score``/``sent_less_score``) get ``margin = more - less`` and are ordered
    most stereotyped first (CrowS counts a pair as biased when ``sent_more`` scores higher, stereo or antistereo); rows with a ``margin`` field are ordered by it; other rows keep the task's order.
    """
    if not rows:
        return {"rows": [], "columns": [], "total": 0, "order": ""}
    rows = [dict(r) for r in rows]
    order = ""
    if all("sent_more_score" in r and "sent_less_score" in r for r in rows):
        for r in rows:
            a, b = r["sent_more_score"], r["sent_less_score"]
            r["margin"] = None if a is None or b is None else a - b
        order = "margin = sent_more_score \u2212 sent_less_score, largest first: the pairs where the model most " \
                "prefers the sentence the metric counts as stereotyping"
    if all("margin" in r for r in rows):
        rows.sort(key=lambda r: -(r["margin"] if r["margin"] is not None else -math.inf))
        order = order or "margin, largest first"
    columns = list(dict.fromkeys(k for r in rows[:limit] for k in r))
    if "margin" in columns:
        columns.insert(1, columns.pop(columns.index("margin")))
    return {"rows": rows[:limit], "columns": columns, "total": len(rows), "order": order}
