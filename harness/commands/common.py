"""Helpers shared by subcommands: output tables and the result store location."""
from __future__ import annotations

from pathlib import Path

from tabulate import tabulate

from harness.paths import output_dir


def add_output_args(p) -> None:
    p.add_argument("--out", type=Path, default=None,
                   help="output folder for the results store and site (default: ./biasboard-out, or $BIASBOARD_OUT)")
    p.add_argument("--store", type=Path, default=None, help="results store (default: OUT/results.sqlite)")


def store_path(args) -> Path:
    out = args.out or output_dir()
    return args.store or (out / "results.sqlite")


def fmt_metric(m: dict) -> str:
    value = m.get("value")
    if value is None:
        return "n/a"
    text = f"{value:.2f}"
    if m.get("ci95"):
        lo, hi = m["ci95"]
        text += f" [{lo:.2f}, {hi:.2f}]"
    if m.get("p_value") is not None:
        text += f" p={m['p_value']:.3g}"
    return text


def results_table(records: list[dict], fmt: str = "github") -> str:
    """One row per cell: its headline metric with CI and n."""
    rows = []
    for r in sorted(records, key=lambda r: (r["task"], r["variant"], r["model"], r["method"], r["seed"])):
        if not r.get("metrics"):
            rows.append([r["model"], _method_label(r), f"{r['task']}:{r['variant']}", r["seed"], "FAILED", "", ""])
            continue
        name, metric = next(iter(r["metrics"].items()))
        ideal = metric.get("ideal")
        rows.append([r["model"], _method_label(r), f"{r['task']}:{r['variant']}", r["seed"], name,
                     fmt_metric(metric), metric.get("n"), "" if ideal is None else ideal])
    return tabulate(rows, headers=["model", "method", "task", "seed", "metric", "value [95% CI]", "n", "ideal"],
                    tablefmt=fmt)


def _method_label(r: dict) -> str:
    params = r.get("method_params") or {}
    return r["method"] + (("(" + ",".join(f"{k}={v}" for k, v in params.items()) + ")") if params else "")
