"""Ray executor: the pending cells of a matrix run on a Ray cluster; the driver alone writes the store.

One Ray actor serves one model at a time, so a model loads once per worker process, not once per cell; cells of
a (model, method, seed) group go to the same actor so the method is applied once. Each cell is one actor call
with the resources its model family, task and method declare (``harness.executors.resources``). The driver
hands out groups as actors become free, keeps at most as many actors as the cluster has room for, and stores
each result the moment it arrives.

Failures: an exception inside a cell is recorded as that cell's failure at once (as the local executor does: it
is deterministic). A worker that dies (crash, OOM kill, lost node) is replaced and its cell retried up to
``max_retries`` times, then recorded as failed with the error; the rest of the matrix goes on. Ctrl-C kills the
actors and returns; finished cells are in the store, so a rerun continues where it stopped.

Ray is imported only when there is work to do: a finished matrix reruns without it.
"""
from __future__ import annotations

import os
import sys
import traceback
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from biasboard.harness.errors import BiasboardError
from biasboard.harness.executors.resources import Resources, cell_resources
from biasboard.harness.matrix import Cell
from biasboard.harness.runner import RunSummary, _failure_record, check_n_bootstrap, claim_all, pending_cells
from biasboard.harness.store import Lease, Store

__all__ = ["run", "CellWorker", "local_cluster_env", "included_paths"]

INSTALL_HINT = "the Ray executor needs Ray: pip install 'biasboard[ray]'"


def local_cluster_env() -> dict[str, str]:
    """Environment for a private single-machine cluster: listen on loopback only, send no usage statistics.

    Must be in ``os.environ`` before ``import ray`` (Ray reads both when its constants module loads)."""
    return {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def included_paths() -> list[str]:
    """Files and packages imported with ``--include`` in this process, so workers can register them too."""
    out = []
    for name, module in list(sys.modules.items()):
        if not name.startswith("biasboard_include_") or module is None or module.__spec__ is None:
            continue
        locations = module.__spec__.submodule_search_locations
        out.append(str(locations[0]) if locations else str(module.__spec__.origin))
    return sorted(set(out))


def _import_ray(start_local: bool):
    if start_local and "ray" not in sys.modules:
        for key, value in local_cluster_env().items():
            os.environ.setdefault(key, value)
    try:
        import ray
    except ImportError:
        raise BiasboardError(INSTALL_HINT) from None
    return ray


class CellWorker:
    """Runs cells in a Ray worker process, keeping the loaded (and method-applied) model between cells."""

    def __init__(self, includes: list[str], settings: dict[str, Any]):
        from biasboard.harness.registry import include_path
        from biasboard.harness.runner import HandleCache

        for path in includes:
            include_path(path)
        self.settings = settings
        self.handles = HandleCache()
        self.model_loads = 0
        self.cells = 0

    def stats(self) -> dict[str, int]:
        """Process id, models loaded and cells run by this worker (models should load once per worker)."""
        return {"pid": os.getpid(), "model_loads": self.model_loads, "cells": self.cells}

    def evaluate(self, cell: Cell) -> tuple[str, Any, Any]:
        """``("done", record, examples)`` or ``("failed", message, traceback)``: errors come back as values so
        the driver can tell a failing cell from a dying worker."""
        from biasboard.harness.runner import evaluate_cell

        self.cells += 1
        base = self.handles.base
        try:
            cell = _localise(cell)
            record, examples = evaluate_cell(cell, handles=self.handles, progress=False, **self.settings)
        except Exception as exc:  # reported to the driver, which records the failure
            return "failed", f"{type(exc).__name__}: {exc}", traceback.format_exc()
        finally:
            self.model_loads += self.handles.base is not base
        return "done", record, examples


def _localise(cell: Cell) -> Cell:
    """The cell with model files found on this node, checked to be the weights and data the driver planned."""
    from biasboard.harness.matrix import data_digest
    from biasboard.harness.models.handles import resolve_model
    from biasboard.harness.registry import TASKS

    model = cell.model
    if not Path(model.path).exists():
        model = resolve_model(model.spec)
        if model.weights_sha256 != cell.model.weights_sha256:
            raise BiasboardError(f"model {model.spec.id!r} on this worker has weights {model.weights_sha256[:12]}, "
                                 f"the driver planned {cell.model.weights_sha256[:12]}")
        cell = replace(cell, model=model)
    digest = data_digest(TASKS.get(cell.task), cell.variant)
    if digest != cell.data_sha256:
        raise BiasboardError(f"data of {cell.task}:{cell.variant} on this worker has digest {digest[:12]}, the "
                             f"driver planned {cell.data_sha256[:12]}; make BIASBOARD_DATA_DIR the same on all nodes")
    return cell


@dataclass(eq=False)
class _Group:
    """Cells of one (model, method, seed): run in order on one actor, so the method is applied once."""

    model_key: str
    cells: deque
    need: Resources


@dataclass(eq=False)
class _Actor:
    handle: Any
    model_key: str
    group: _Group | None = None
    busy: bool = False


@dataclass
class _Scheduler:
    """Hands groups to actors, collects results, replaces dead workers. Lives in the driver only."""

    ray: Any
    store: Store
    summary: RunSummary
    settings: dict[str, Any]
    includes: list[str]
    slots: int
    max_retries: int
    on_cell: Callable[[Cell, str], None] | None = None
    bar: Any = None
    groups: deque = field(default_factory=deque)
    actors: list = field(default_factory=list)
    inflight: dict = field(default_factory=dict)
    attempts: dict = field(default_factory=dict)
    worker_class: Any = None

    def run(self) -> None:
        while True:
            self._fill()
            if not self.inflight:
                return
            ready, _ = self.ray.wait(list(self.inflight), num_returns=1)
            self._collect(ready[0])

    # ------------------------------------------------------------------ handing out work
    def _fill(self) -> None:
        while True:
            for actor in [a for a in self.actors if not a.busy]:
                if not any(g.model_key == actor.model_key for g in self.groups):
                    self._retire(actor)  # its model has no work left: free the room for another model
            if not self.groups:
                return
            idle = [a for a in self.actors if not a.busy]
            match = next(((a, g) for a in idle for g in self.groups if g.model_key == a.model_key), None)
            if match:
                actor, group = match
                self.groups.remove(group)
                self._start(actor, group)
            elif len(self.actors) < self.slots:
                group = self.groups.popleft()
                self._start(self._spawn(group), group)
            else:
                return

    def _spawn(self, group: _Group) -> _Actor:
        need = group.need
        for other in self.groups:  # one actor serves every group of its model: size it for the largest
            if other.model_key == group.model_key:
                need = need.union(other.need)
        if self.worker_class is None:
            self.worker_class = self.ray.remote(CellWorker)
        remote = self.worker_class.options(max_restarts=0, max_concurrency=1, **need.ray_options())
        actor = _Actor(remote.remote(self.includes, self.settings), group.model_key)
        self.actors.append(actor)
        return actor

    def _start(self, actor: _Actor, group: _Group) -> None:
        actor.group, actor.busy = group, True
        self._submit(actor)

    def _submit(self, actor: _Actor) -> None:
        cell = actor.group.cells[0]
        if self.bar is not None:
            self.bar.set_postfix_str(cell.label[-60:])
        self.inflight[actor.handle.evaluate.remote(cell)] = actor

    def _retire(self, actor: _Actor) -> None:
        self.actors.remove(actor)
        self.ray.kill(actor.handle, no_restart=True)

    # ------------------------------------------------------------------ results
    def _collect(self, ref) -> None:
        actor = self.inflight.pop(ref)
        group = actor.group
        cell = group.cells[0]
        try:
            status, first, second = self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as exc:  # the call itself failed (e.g. unpicklable result)
            status, first, second = "failed", f"{type(exc).__name__}: {exc}", str(exc)
        except self.ray.exceptions.RayError as exc:  # the worker died: replace it, retry the cell (bounded)
            self._worker_died(actor, cell, exc)
            return
        group.cells.popleft()
        self._record(cell, status, first, second)
        if group.cells:
            self._submit(actor)
        else:
            actor.group, actor.busy = None, False

    def _worker_died(self, actor: _Actor, cell: Cell, exc: Exception) -> None:
        self.actors.remove(actor)
        group = actor.group
        attempt = self.attempts.get(cell.key, 0) + 1
        self.attempts[cell.key] = attempt
        if attempt > self.max_retries:
            group.cells.popleft()
            reason = f"{type(exc).__name__}: worker died {attempt} time(s) running this cell; last error: {exc}"
            self._record(cell, "failed", reason.splitlines()[0], reason)
        if group.cells:
            self.groups.appendleft(group)

    def _record(self, cell: Cell, status: str, first: Any, second: Any) -> None:
        if status == "done":
            self.store.put(cell.key, first, second)
            self.summary.done.append(cell.key)
        else:
            self.store.put_failure(cell.key, _failure_record(cell), f"{first}\n{second}")
            self.summary.failed.append((cell.key, first))
        if self.bar is not None:
            self.bar.update(1)
        if self.on_cell:
            self.on_cell(cell, status)

    def shutdown(self) -> None:
        for actor in list(self.actors):
            try:
                self._retire(actor)
            except Exception:  # already gone; nothing to free
                pass


def _groups(pending: list[Cell], override: dict[str, Any] | None) -> deque:
    groups: dict[tuple, _Group] = {}
    for cell in pending:
        model_key = f"{cell.model.spec.id}|{cell.model.spec.dtype}|{cell.model.weights_sha256}"
        key = (model_key, cell.method.label, cell.seed)
        need = cell_resources(cell, override=override)
        if key not in groups:
            groups[key] = _Group(model_key, deque(), need)
        groups[key].cells.append(cell)
        groups[key].need = groups[key].need.union(need)
    return deque(groups.values())


def _slots(ray, groups: deque, max_workers: int | None) -> int:
    """How many actors fit at once: the cluster's CPUs (and GPUs, when asked for) over the largest request."""
    if max_workers:
        return max(1, int(max_workers))
    total = ray.cluster_resources()
    need = Resources(num_cpus=0.0)
    for g in groups:
        need = need.union(g.need)
    fits = [int(total.get("CPU", 1) // need.num_cpus)] if need.num_cpus else []
    if need.num_gpus:
        fits.append(int(total.get("GPU", 0) // need.num_gpus))
    return max(1, min(fits or [1]))


def run(cells: list[Cell], store: Store, *, force: bool = False, batch_size: int = 32, n_bootstrap: int | None = None,
        progress: bool = True, extra: dict[str, Any] | None = None, address: str | None = None,
        max_retries: int = 2, max_workers: int | None = None, resources: dict[str, Any] | None = None,
        includes: list[str] | None = None, on_cell: Callable[[Cell, str], None] | None = None) -> RunSummary:
    """Evaluate pending cells on Ray and store each result as it arrives.

    ``address``: an existing cluster (``auto``, ``ray://host:10001``, ``host:6379``); None starts a private
    single-machine cluster (loopback only) for this run, unless this process is already connected.
    ``max_workers`` caps concurrent actors (default: what the cluster's CPUs/GPUs hold); ``resources``
    overrides every worker's request (e.g. ``{"num_gpus": 1}``); ``includes`` are ``--include`` paths to
    import in the workers (default: whatever this process included).
    """
    check_n_bootstrap(cells, n_bootstrap)
    summary = RunSummary()
    pending = pending_cells(cells, store, force=force, summary=summary)
    if not pending:
        return summary
    lease = Lease(store.path)
    try:
        pending = claim_all(pending, store, lease.owner, force=force, summary=summary, lease=lease.lease)
        if pending:
            _run_claimed(pending, store, summary, batch_size=batch_size, n_bootstrap=n_bootstrap,
                         progress=progress, extra=extra, address=address, max_retries=max_retries,
                         max_workers=max_workers, resources=resources, includes=includes, on_cell=on_cell)
    finally:
        for cell in pending:
            store.release(cell.key, lease.owner)
        lease.close()
    return summary


def _run_claimed(pending: list[Cell], store: Store, summary: RunSummary, *, batch_size, n_bootstrap, progress,
                 extra, address, max_retries, max_workers, resources, includes, on_cell) -> None:
    """Evaluate already claimed cells on Ray (see ``run``)."""
    ray = _import_ray(start_local=address is None)
    connected_here = not ray.is_initialized()
    if connected_here:
        if address is None:
            ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    groups = _groups(pending, resources)
    settings = {"batch_size": batch_size, "n_bootstrap": n_bootstrap, "extra": dict(extra or {})}
    from tqdm.auto import tqdm

    bar = tqdm(total=len(pending), desc="cells (ray)", disable=not progress, unit="cell")
    scheduler = _Scheduler(ray, store, summary, settings, includes if includes is not None else included_paths(),
                           _slots(ray, groups, max_workers), max_retries, on_cell, bar, groups)
    try:
        scheduler.run()
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        bar.close()
        scheduler.shutdown()
        if connected_here:
            ray.shutdown()
