"""What a run is about to do and how long it will take.

Cells differ in cost by two orders of magnitude (WEAT on word vectors takes a second, SmolLM2 on StereoSet
minutes), so an ETA of "cells left x mean seconds per cell" is wrong in both directions. Each cell gets an expected
cost instead: the measured seconds of a similar finished cell in the store when there is one (same model,
precision, task, variant, method and sample), else ``units`` (model parameters x data size) times a rate in seconds
per unit, calibrated on the cells whose seconds are known (cached cells of this matrix, then each cell as it
finishes): those of the cell's own task when there are any, else all. The prior alone is rough (BENCHMARKS.md,
"First run on a fresh machine"); reruns and the cells after a task's first one are where the estimate holds.
"""
from __future__ import annotations

import json
import struct
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

from tqdm.auto import tqdm

DEFAULT_SECONDS_PER_UNIT = 2.5
"""Before any cell's seconds are known: zoo:splade-tiny (4.4 M parameters) on CrowS-Pairs (0.44 MB) took 20.8 s
here, about 2.5 s per (million parameters x MB of data)."""

FINETUNE_FACTOR = 150.0
"""Cells that train before they score (tasks with ``fine_tunes``) cost about this many forward passes over their
data per epoch: a 1-epoch EfficientNet-Lite0 worst-group digits cell (40 units with this factor) took 164-186 s
here under load average 20-29 (2026-12-03), about 100 s on a quieter machine."""

WEIGHT_SUFFIXES = {".safetensors": 4.0, ".bin": 4.0, ".pt": 4.0, ".pth": 4.0, ".npy": 4.0, ".onnx": 4.0,
                   ".gguf": 0.5625}
"""Weight file formats, with bytes per parameter assumed when the header is not read (GGUF: 4.5-bit Q4_1)."""


@dataclass
class Plan:
    """The pre-run summary: which cells come from the store, which run, which pairings are skipped and why."""

    cached: list[Any]
    to_run: list[Any]
    skipped: list[Any]

    def line(self, expected_seconds: float | None = None) -> str:
        """``N cached, M to run (about T), K skipped (which)``; skipped pairings grouped by method, with the
        models they concern (the matrix asked for them, the method or task does not support the family)."""
        groups: dict[str, list[str]] = {}
        for s in self.skipped:
            models = groups.setdefault(s.method, [])
            models.append(s.model)
        which = "; ".join(f"{len(ms)} x {method} on {', '.join(dict.fromkeys(ms))}" for method, ms in groups.items())
        about = f" (about {tqdm.format_interval(expected_seconds)})" if self.to_run and expected_seconds else ""
        return (f"{len(self.cached)} cached, {len(self.to_run)} to run{about}, {len(self.skipped)} skipped"
                + (f" ({which})" if which else ""))


def plan_summary(cells: list[Any], skipped: list[Any], done_keys: set[str], *, force: bool = False) -> Plan:
    done = set() if force else set(done_keys)
    return Plan([c for c in cells if c.key in done], [c for c in cells if c.key not in done], list(skipped))


@lru_cache(maxsize=None)
def model_parameters(path: str) -> float:
    """Parameters of a model (millions): exact from safetensors / .npy headers, else from the largest weight
    file's size. Nothing is loaded."""
    p = Path(path)
    files = [p] if p.is_file() else [f for f in p.rglob("*") if f.suffix in WEIGHT_SUFFIXES and f.is_file()]
    if not files:
        return 1.0
    biggest = max(files, key=lambda f: f.stat().st_size)
    try:
        if biggest.suffix == ".safetensors":
            with open(biggest, "rb") as fh:
                header = json.loads(fh.read(struct.unpack("<Q", fh.read(8))[0]))
            return sum(_prod(v["shape"]) for k, v in header.items() if k != "__metadata__") / 1e6
        if biggest.suffix == ".npy":
            import numpy as np

            return _prod(np.load(biggest, mmap_mode="r").shape) / 1e6
    except Exception:  # noqa: BLE001 - an unreadable header falls back to the file size
        pass
    return biggest.stat().st_size / WEIGHT_SUFFIXES.get(biggest.suffix, 4.0) / 1e6


def _prod(shape: Iterable[int]) -> int:
    out = 1
    for n in shape:
        out *= int(n)
    return out


def data_megabytes(files: Iterable[Path], sample: int | None) -> float:
    """Size of a cell's data (MB), scaled to ``sample`` of the files' lines when the cell scores a sample."""
    files = [Path(f) for f in files]
    size = sum(f.stat().st_size for f in files if f.is_file()) / 1e6
    if sample:
        lines = sum(_count_lines(f) for f in files if f.is_file())
        if lines > sample:
            size *= sample / lines
    return max(size, 1e-6)  # generated data (no files) still costs something


@lru_cache(maxsize=None)
def _count_lines(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def cell_sample(cell) -> int | None:
    extra = dict(cell.extra)
    return extra.get("eval_sample") or extra.get("max_examples")


def cell_units(cell, data_files, fine_tunes: bool = False) -> float:
    """Expected cost of a cell in units of (million parameters x MB of data), times epochs x ``FINETUNE_FACTOR``
    when the task trains first."""
    units = model_parameters(str(cell.model.path)) * data_megabytes(data_files, cell_sample(cell))
    if fine_tunes:
        units *= float(dict(cell.extra).get("epochs") or 1) * FINETUNE_FACTOR
    return units


def similarity(model: str, precision: str, task: str, variant: str, method: str, sample: int | None) -> tuple:
    return (model, precision or "float32", task, variant, method, sample)


def cell_similarity(cell) -> tuple:
    return similarity(cell.model.spec.id, getattr(cell.model.spec, "dtype", None) or "float32", cell.task,
                      cell.variant, cell.method.name, cell_sample(cell))


def _get(obj: Any, name: str) -> Any:
    """A field of a stored record or its provenance, as JSON (a dict) or as a typed record."""
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def _seconds(record: Any) -> float | None:
    return _get(_get(record, "provenance") or {}, "seconds")


def record_similarity(record: Any) -> tuple:
    """The same tuple for a stored result (its sample size is read from the ``eval_sample`` flag, "300 of ...")."""
    flag = str((_get(record, "flags") or {}).get("eval_sample") or "")
    sample = int(flag.split()[0]) if flag[:1].isdigit() else None
    precision = _get(_get(record, "provenance") or {}, "precision")
    return similarity(_get(record, "model") or "", precision, _get(record, "task") or "",
                      _get(record, "variant") or "", _get(record, "method") or "", sample)


def measured_seconds(records: Iterable[Any]) -> dict[tuple, float]:
    """Mean seconds of finished results per similarity tuple."""
    sums: dict[tuple, list[float]] = {}
    for r in records:
        if (_get(r, "status") or "done") == "done" and _seconds(r):
            sums.setdefault(record_similarity(r), []).append(float(_seconds(r)))
    return {k: sum(v) / len(v) for k, v in sums.items()}


@dataclass
class Estimator:
    """Expected seconds of the cells still to run.

    ``units[key]`` is each pending cell's prior cost; ``measured[key]`` the seconds of a similar finished cell,
    used as is. A cell's rate (seconds per unit) is total seconds / total units over the observations of its group
    (its task: SEAT's permutation tests cost far more per unit than CrowS-Pairs' forward passes) when there are
    any, else over every observation: cells of known seconds and units given at the start (``observed``) and each
    cell finished since (``finish``)."""

    order: list[str]
    units: dict[str, float]
    measured: dict[str, float] = field(default_factory=dict)
    observed: list[tuple] = field(default_factory=list)
    """(units, seconds[, group]) of cells whose seconds are known: they calibrate the rates."""
    default_rate: float = DEFAULT_SECONDS_PER_UNIT
    groups: dict[str, str] = field(default_factory=dict)
    """Each cell's cost group (its task)."""
    finished: set[str] = field(default_factory=set)
    mark: float = field(default_factory=time.monotonic)
    """When the cell now running started (the previous one finished)."""

    def rate_of(self, group: str | None = None) -> float:
        same = [o for o in self.observed if group is not None and len(o) > 2 and o[2] == group]
        pool = same or self.observed
        units = sum(o[0] for o in pool)
        return sum(o[1] for o in pool) / units if units > 0 else self.default_rate

    @property
    def rate(self) -> float:
        """The rate over every observation (a cell of a group not seen yet gets this one)."""
        return self.rate_of(None)

    def expected(self, key: str) -> float:
        if key in self.measured:
            return self.measured[key]
        return self.units.get(key, 0.0) * self.rate_of(self.groups.get(key))

    def finish(self, key: str, seconds: float) -> None:
        self.finished.add(key)
        if key in self.units and seconds > 0:
            self.observed.append((self.units[key], seconds, self.groups.get(key)))

    def cell_done(self, cell, status: str) -> None:
        """``run_local``'s ``on_cell`` callback: the wall seconds since the previous cell (model loading included,
        a real cost of the run) calibrate the rate when the cell finished."""
        now = time.monotonic()
        self.finish(cell.key, now - self.mark if status == "done" else 0.0)
        self.mark = now

    def eta(self, running_for: float = 0.0) -> float:
        """Seconds left: the expected cost of every unfinished cell, less what the one running (the first
        unfinished in run order) has already spent, up to its own expected cost."""
        left = [k for k in self.order if k not in self.finished]
        if not left:
            return 0.0
        total = sum(self.expected(k) for k in left)
        return max(total - min(running_for, self.expected(left[0])), 0.0)


def build_estimator(pending: list[Any], cached: list[Any], records: list[Any], task_info) -> Estimator:
    """An estimator for ``pending`` (in run order). ``task_info(cell)`` is (the cell's data files, whether its task
    fine-tunes); ``records`` are the store's results, whose seconds give measured estimates and, for the cached
    cells of this matrix, the first calibration of the rate."""
    measured = measured_seconds(records)
    seconds_by_key = {_get(r, "key"): _seconds(r) for r in records}
    units = {c.key: cell_units(c, *task_info(c)) for c in pending}
    observed = [(cell_units(c, *task_info(c)), float(seconds_by_key[c.key]), c.task) for c in cached
                if seconds_by_key.get(c.key)]
    known = {c.key: measured[cell_similarity(c)] for c in pending if cell_similarity(c) in measured}
    return Estimator([c.key for c in pending], units, known, observed, groups={c.key: c.task for c in pending})


class CostBar(tqdm):
    """The run's cell bar, whose ETA is the estimator's (cost-weighted) instead of tqdm's mean rate. It redraws
    every ``tick`` seconds, so the time left counts down during a long cell instead of standing still."""

    def __init__(self, *args, estimator: Estimator, tick: float = 5.0, **kwargs):
        self.estimator = estimator
        estimator.mark = time.monotonic()
        kwargs.setdefault("bar_format", "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                                        "[{elapsed}<{cost_eta}{postfix}]")
        super().__init__(*args, **kwargs)
        self._stop = threading.Event()
        if not self.disable and tick > 0:
            threading.Thread(target=self._redraw, args=(tick,), daemon=True).start()

    def _redraw(self, tick: float) -> None:
        while not self._stop.wait(tick) and not self.disable:
            self.refresh()

    def close(self) -> None:
        self._stop.set()
        super().close()

    @property
    def format_dict(self):
        d = super().format_dict
        d["cost_eta"] = self.format_interval(self.estimator.eta(time.monotonic() - self.estimator.mark))
        return d
