"""Executors other than the built-in local one: where the pending cells of a matrix run.

``biasboard run --executor NAME`` imports ``harness.executors.NAME``, which exposes ``run(cells, store, *, force,
batch_size, n_bootstrap, progress, extra, address) -> RunSummary``. Every executor runs the same unit of work,
``harness.runner.evaluate_cell``, and only the driver process writes the store. Nothing here imports Ray: the
local executor must work without it.
"""
from __future__ import annotations

from harness.matrix import Cell
from harness.runner import RunSummary
from harness.store import Store

__all__ = ["split_pending"]


def split_pending(cells: list[Cell], store: Store, *, force: bool, summary: RunSummary) -> list[Cell]:
    """Cells still to compute, in the order that reuses loaded models most (model, method, seed, task);
    finished cells are counted as cached in ``summary``."""
    done = store.done_keys()
    pending = []
    for cell in cells:
        if cell.key in done and not force:
            summary.cached.append(cell.key)
        else:
            pending.append(cell)
    pending.sort(key=lambda c: (c.model.spec.id, c.method.label, c.seed, c.task, c.variant))
    return pending
