"""Executors other than the built-in local one: where the pending cells of a matrix run.

``biasboard run --executor NAME`` imports ``harness.executors.NAME``, which exposes ``run(cells, store, *, force,
batch_size, n_bootstrap, progress, extra, address) -> RunSummary``. Every executor runs the same unit of work,
``harness.runner.evaluate_cell``, picks its work with ``harness.runner.pending_cells``, and lets only the driver
process write the store. Nothing here imports Ray: the local executor must work without it.
"""
