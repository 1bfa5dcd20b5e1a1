"""What every subcommand shares: the output and store options, opening an existing store, the results table, and
turning a ``BiasboardError`` into one line on stderr with exit code 2."""
from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Any, Callable

from biasboard.harness.errors import BiasboardError
from biasboard.harness.paths import output_dir
from biasboard.harness.record import CellRecord, StoredMetric

STORE_NAME = "results.sqlite"


def add_output_args(p) -> None:
    p.add_argument("--out", type=Path, default=None,
                   help="output folder for the results store and site (default: ./biasboard-out, or $BIASBOARD_OUT)")
    p.add_argument("--store", type=Path, default=None, help=f"results store (default: OUT/{STORE_NAME})")


def default_store() -> Path:
    """The store ``biasboard run`` writes when neither ``--out`` nor ``--store`` is given."""
    return output_dir() / STORE_NAME


def store_path(args) -> Path:
    """The store named by ``--store``, else ``OUT/results.sqlite`` (``--out``, else the default output folder)."""
    if getattr(args, "store", None):
        return Path(args.store)
    out = getattr(args, "out", None)
    return Path(out) / STORE_NAME if out else default_store()


def load_store(path: str | Path | None) -> tuple[Path, list[CellRecord], Callable[[str], list[dict]]]:
    """(path, all records (finished and failed, each with ``status``), examples lookup) of an existing store."""
    from biasboard.harness.store import Store

    path = Path(path) if path else default_store()
    if not path.is_file():
        raise BiasboardError(f"results store {path} does not exist; run `biasboard run` first or pass --store")
    try:
        store = Store(path)
        records = store.records(status=None)
    except sqlite3.DatabaseError as exc:
        raise BiasboardError(f"{path} is not a biasboard results store (SQLite): {exc}") from None
    return path, records, store.examples


def one_line_errors(func: Callable[[Any], int]) -> Callable[[Any], int]:
    """Print a BiasboardError as one line on stderr and exit 2, never a traceback."""
    def run(args) -> int:
        try:
            return func(args)
        except BiasboardError as exc:
            print(f"biasboard: error: {exc}", file=sys.stderr)
            return 2
    run.__name__ = func.__name__
    run.__doc__ = func.__doc__
    return run


def fmt_metric(m: StoredMetric) -> str:
    if m.value is None:
        return "n/a"
    text = f"{m.value:.2f}"
    if m.ci95:
        lo, hi = m.ci95
        text += f" [{lo:.2f}, {hi:.2f}]"
    if m.p_value is not None:
        text += f" p={m.p_value:.3g}"
    return text


def results_table(records: list[CellRecord], fmt: str = "github") -> str:
    """One row per cell: its headline metric with CI and n."""
    from tabulate import tabulate

    rows = []
    for r in sorted(records, key=lambda r: (r.task, r.variant, r.model, r.method, r.seed)):
        if not r.metrics:
            rows.append([r.model, r.method_label, f"{r.task}:{r.variant}", r.seed, "FAILED", "", ""])
            continue
        name, metric = r.headline
        rows.append([r.model, r.method_label, f"{r.task}:{r.variant}", r.seed, name,
                     fmt_metric(metric), metric.n, "" if metric.ideal is None else metric.ideal])
    return tabulate(rows, headers=["model", "method", "task", "seed", "metric", "value [95% CI]", "n", "ideal"],
                    tablefmt=fmt)
