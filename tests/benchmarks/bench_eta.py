"""How good is the run's ETA? Replays a finished cold run from its store: after each cell, the time left that the
cost-weighted estimator (``harness.progress``, no stored history, calibrated on the cells finished so far) and the
mean-per-cell rule would show, against the seconds the remaining cells really took.

Run: BIASBOARD_ETA_STORE=OUT/results.sqlite [BIASBOARD_ETA_MATRIX=quick] BIASBOARD_DATA_DIR=../shared/data \\
         pytest tests/benchmarks/bench_eta.py -o python_files='bench_*.py' -s
"""
from __future__ import annotations

import os
from types import SimpleNamespace

import pytest


def replay(store_path: str, matrix_name: str) -> list[tuple[int, float, float, float]]:
    """(cells done, true seconds left, cost-weighted ETA with a rate per task, with one rate, mean-rule ETA) after
    each finished cell, in run order."""
    from biasboard.harness.matrix import Matrix, plan
    from biasboard.harness.plugins import packaged_matrix
    from biasboard.harness.progress import Estimator, cell_units
    from biasboard.harness.registry import TASKS
    from biasboard.harness.runner import RunSummary, pending_cells
    from biasboard.harness.store import Store

    cells, _ = plan(Matrix.load(packaged_matrix(matrix_name)))
    order = pending_cells(cells, SimpleNamespace(done_keys=set), force=False, summary=RunSummary())
    records = {(r["key"] if isinstance(r, dict) else r.key): r for r in Store(store_path).records()}
    order = [c for c in order if c.key in records]  # an interrupted run: replay the cells it finished
    seconds = []
    for c in order:
        r = records[c.key]
        prov = r["provenance"] if isinstance(r, dict) else r.provenance
        seconds.append(float(prov["seconds"] if isinstance(prov, dict) else prov.seconds))
    units = [cell_units(c, TASKS.get(c.task)().data_files(c.variant), bool(getattr(TASKS.get(c.task), "fine_tunes",
                                                                                   False))) for c in order]
    keys = [c.key for c in order]
    rows = []
    for k in range(len(order)):
        per_task = Estimator(keys, dict(zip(keys, units)), groups={c.key: c.task for c in order})
        overall = Estimator(keys, dict(zip(keys, units)))
        for c, s in zip(order[:k], seconds[:k]):
            per_task.finish(c.key, s)
            overall.finish(c.key, s)
        mean_rule = sum(seconds[:k]) / k * (len(order) - k) if k else float("nan")
        rows.append((k, sum(seconds[k:]), per_task.eta(), overall.eta(), mean_rule))
    return rows


@pytest.mark.skipif(not os.environ.get("BIASBOARD_ETA_STORE"), reason="set BIASBOARD_ETA_STORE to a finished store")
def test_eta_replay():
    rows = replay(os.environ["BIASBOARD_ETA_STORE"], os.environ.get("BIASBOARD_ETA_MATRIX", "quick"))
    print("\ndone  true_left  per_task  one_rate  mean_rule")
    for k, left, task, one, mean in rows:
        print(f"{k:4d}  {left:9.1f}  {task:8.1f}  {one:8.1f}  {mean:9.1f}")
    later = rows[1:]
    for name, col in (("cost-weighted, rate per task", 2), ("cost-weighted, one rate", 3), ("mean rule", 4)):
        err = sum(abs(r[col] - r[1]) / r[1] for r in later) / len(later)
        print(f"{name}: mean |ETA - true| / true over cells 1..{len(rows) - 1}: {err:.2f}")
