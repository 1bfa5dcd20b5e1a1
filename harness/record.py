"""Typed cell records: what one finished (or failed) cell's result JSON holds, from the runner to the store, the
regression gate, the site and the reports.

Why: the result JSON is the contract on disk, but after the runner it used to travel as a dict read by string keys
in half a dozen modules, where a misspelt key silently reads None. A ``CellRecord`` names every field once, checks
types when a stored record is read (a malformed record is an error naming the field), and writes back exactly the
JSON it was read from: the same keys in the same order with the same values, so old stores keep loading and no
output changes. Records read from JSON remember which keys they had (``_keys``), so a key that was absent stays
absent and a ``null`` stays ``null``; records built in code write every field that is set, in the runner's order.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from biasboard.harness.errors import DataError

IDENTITY = ("model", "method", "method_params", "task", "variant", "seed")
"""The fields that say which cell a record is (a failed cell's record holds these and ``family`` only)."""
STORE_FIELDS = ("key", "status", "error")
"""Fields the store keeps beside the result JSON (its row), never inside it."""
EXPORT_FIELDS = STORE_FIELDS + ("examples",)
"""What a JSON export may carry beside the result (``eval --json --examples``): read past, never part of it."""


class RecordError(DataError):
    """A stored record that does not have the shape of the result contract."""


# --- field checks -------------------------------------------------------------------------------------------------
def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)  # numpy scalars too (a task may return them)


def _is_int(x: Any) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _check(ok: Callable[[Any], bool], what: str) -> Callable[[Any, str], Any]:
    def check(value: Any, where: str) -> Any:
        if not ok(value):
            raise RecordError(f"expected {what}, got {value!r}", field=where)
        return value
    return check


_str = _check(lambda x: isinstance(x, str), "a string")
_int = _check(_is_int, "an integer")
_num_or_null = _check(lambda x: x is None or _is_number(x), "a number or null")
_int_or_null = _check(lambda x: x is None or _is_int(x), "an integer or null")
_object = _check(lambda x: isinstance(x, dict), "an object")
_object_or_null = _check(lambda x: x is None or isinstance(x, dict), "an object or null")
_strings = _check(lambda x: isinstance(x, list) and all(isinstance(s, str) for s in x), "a list of strings")
_list = _check(lambda x: isinstance(x, list), "a list")


def _pair(value: Any, where: str) -> tuple:
    if not (isinstance(value, list) and len(value) == 2 and all(v is None or _is_number(v) for v in value)):
        raise RecordError(f"expected [low, high] (numbers or null), got {value!r}", field=where)
    return tuple(value)


def _parse(cls, data: Any, where: str, checks: dict[str, Callable[[Any, str], Any]], required: tuple[str, ...],
           ignore: tuple[str, ...] = ()) -> dict[str, Any]:
    """Checked constructor arguments of ``cls`` from JSON ``data`` (``where`` names it in errors), with ``_keys``."""
    if not isinstance(data, Mapping):
        raise RecordError(f"expected an object, got {type(data).__name__}", field=where or None)
    unknown = [k for k in data if k not in checks and k not in ignore]
    if unknown:
        raise RecordError(f"unknown field(s) {unknown} in a {cls.__name__} (known: {list(checks)})",
                          field=where or None)
    missing = [k for k in required if k not in data]
    if missing:
        raise RecordError("missing", field=f"{where}.{missing[0]}" if where else missing[0])
    args = {k: checks[k](data[k], f"{where}.{k}" if where else k) for k in data if k in checks}
    args["_keys"] = tuple(k for k in data if k in checks)
    return args


def _write(obj: Any, order: tuple[str, ...], convert: dict[str, Callable[[Any], Any]]) -> dict[str, Any]:
    """The JSON of ``obj``: the keys it was read with, in that order; else every field that is set (not None or
    an empty string, as ``specs.Metric.to_json`` leaves them out), in ``order``."""
    keys = obj._keys if obj._keys is not None else tuple(k for k in order if getattr(obj, k) not in (None, ""))
    return {k: convert.get(k, _same)(getattr(obj, k)) for k in keys}


def _same(x: Any) -> Any:
    return x


# --- a stored metric ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StoredMetric:
    """One metric as the result JSON stores it (``specs.Metric.to_json``): value with n, interval, ideal, direction.

    The typed view of a number the board, the gate and the reports read; ``per_example`` is the declaration of the
    example-row field (or statistic) it follows from, kept as its JSON (``{"field", "scale"[, "where"]}`` or
    ``{"recompute"}``) because the gate compares it as such."""

    value: float | None
    """The point estimate; None when it was not a number (stored as null)."""
    n: int | None = None
    ci95: tuple[float | None, float | None] | None = None
    p_value: float | None = None
    ideal: float | None = None
    direction: str = "target"
    """``max``, ``min`` or ``target`` (the default of records that do not say)."""
    unit: str = ""
    description: str = ""
    scale: float | None = None
    per_example: dict[str, Any] | None = None
    _keys: tuple[str, ...] | None = field(default=None, repr=False, compare=False)
    """The JSON keys it was read with, in order (None: built in code)."""

    # class constants (not fields): the JSON order and the check of each key
    ORDER = ("value", "n", "ci95", "p_value", "ideal", "direction", "unit", "description", "scale", "per_example")
    _CHECKS = {"value": _num_or_null, "n": _int_or_null, "ci95": _pair, "p_value": _num_or_null,
               "ideal": _num_or_null, "direction": _str, "unit": _str, "description": _str, "scale": _num_or_null,
               "per_example": _object_or_null}

    @classmethod
    def from_json(cls, data: Any, where: str = "") -> "StoredMetric":
        return cls(**_parse(cls, data, where, cls._CHECKS, required=("value",)))

    def to_json(self) -> dict[str, Any]:
        return _write(self, self.ORDER, {"ci95": lambda c: list(c), "per_example": lambda p: dict(p)})

    @classmethod
    def of(cls, metric: "StoredMetric | Mapping[str, Any]") -> "StoredMetric":
        """A metric as is, or parsed from its JSON (callers that still hold dicts, e.g. tests and files)."""
        return metric if isinstance(metric, cls) else cls.from_json(metric)

    @classmethod
    def from_metric(cls, metric) -> "StoredMetric":
        """What a task's ``specs.Metric`` becomes in the result JSON."""
        return cls.from_json(metric.to_json())


def _metrics(data: Any, where: str) -> dict[str, StoredMetric]:
    _object(data, where)
    return {name: StoredMetric.from_json(m, f"{where}.{name}") for name, m in data.items()}


def _groups(data: Any, where: str) -> dict[str, dict[str, StoredMetric]]:
    _object(data, where)
    return {g: _metrics(ms, f"{where}.{g}") for g, ms in data.items()}


# --- provenance ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Provenance:
    """Where a result came from: code version, data and weight digests, the chain of methods applied, precision,
    time taken. ``precision`` is absent in records written before it was recorded."""

    harness: str | None = None
    data_sha256: str | None = None
    weights_sha256: str | None = None
    lineage: list[Any] | None = None
    precision: str | None = None
    seconds: float | None = None
    finished_at: str | None = None
    finetune: dict[str, Any] | None = None
    """Upstream fine-tuning budget and precision that ran (methods that fine-tune only)."""
    _keys: tuple[str, ...] | None = field(default=None, repr=False, compare=False)
    """The JSON keys it was read with, in order (None: built in code)."""

    # class constants (not fields): the JSON order and the check of each key
    ORDER = ("harness", "data_sha256", "weights_sha256", "lineage", "precision", "seconds", "finished_at", "finetune")
    _CHECKS = {"harness": _str, "data_sha256": _str, "weights_sha256": _str, "lineage": _list, "precision": _str,
               "seconds": _num_or_null, "finished_at": _str, "finetune": _object}

    @classmethod
    def from_json(cls, data: Any, where: str = "provenance") -> "Provenance":
        return cls(**_parse(cls, data, where, cls._CHECKS, required=()))

    def to_json(self) -> dict[str, Any]:
        return _write(self, self.ORDER, {"lineage": list, "finetune": dict})


# --- the cell record ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CellRecord:
    """One cell's result: identity, metrics and per-group metrics, notes and flags, plugin versions, provenance;
    plus the store's ``key``, ``status`` (``done`` or ``failed``) and ``error`` (a failed cell's traceback).

    A failed cell's record holds its identity and ``family`` only: its ``metrics`` are empty. Fields hold JSON
    values (dicts, lists); treat them as read-only."""

    model: str
    method: str
    task: str
    variant: str
    seed: int = 0
    method_params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, StoredMetric] = field(default_factory=dict)
    """Headline metrics; the first is the task's summary number on the board."""
    groups: dict[str, dict[str, StoredMetric]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    flags: dict[str, Any] = field(default_factory=dict)
    family: str = ""
    method_kind: str = ""
    axis: str = ""
    task_version: str = ""
    method_version: str = ""
    provenance: Provenance = field(default_factory=Provenance)
    key: str = ""
    status: str = "done"
    error: str = ""
    _keys: tuple[str, ...] | None = field(default=None, repr=False, compare=False)
    """The JSON keys it was read with, in order (None: built in code)."""

    # class constants (not fields): the JSON order and the check of each key
    ORDER = ("model", "method", "method_params", "task", "variant", "seed", "metrics", "groups", "notes", "flags",
             "family", "method_kind", "axis", "task_version", "method_version", "provenance")
    _CHECKS = {"model": _str, "method": _str, "method_params": _object, "task": _str, "variant": _str, "seed": _int,
               "metrics": _metrics, "groups": _groups, "notes": _strings, "flags": _object, "family": _str,
               "method_kind": _str, "axis": _str, "task_version": _str, "method_version": _str,
               "provenance": Provenance.from_json}

    @classmethod
    def from_json(cls, data: Any, *, key: str | None = None, status: str | None = None,
                  error: str | None = None) -> "CellRecord":
        """Parse a result JSON (as stored, or exported with ``key``/``status``/``error`` beside it); a malformed
        record raises ``RecordError`` naming the cell and the field."""
        key = key if key is not None else (data.get("key", "") if isinstance(data, Mapping) else "")
        try:
            args = _parse(cls, data, "", cls._CHECKS, required=("model", "method", "task", "variant"),
                          ignore=EXPORT_FIELDS)
            store = {k: _str(data[k] or "", k) for k in STORE_FIELDS if k in data}
        except RecordError as exc:
            raise RecordError(f"result record {key or '(no key)'}: {exc}") from None
        store.update({k: v for k, v in (("key", key), ("status", status), ("error", error)) if v is not None})
        return cls(**args, **store)

    @classmethod
    def of(cls, record: "CellRecord | Mapping[str, Any]") -> "CellRecord":
        """A record as is, or parsed from its JSON (files of exported records, tests)."""
        return record if isinstance(record, cls) else cls.from_json(record)

    @classmethod
    def failed(cls, *, model: str, method: str, method_params: dict[str, Any], task: str, variant: str, seed: int,
               family: str) -> "CellRecord":
        """The record stored for a failed cell: which cell it was (its error is kept beside it)."""
        return cls(model=model, method=method, method_params=method_params, task=task, variant=variant, seed=seed,
                   family=family, status="failed", _keys=IDENTITY + ("family",))

    def to_json(self) -> dict[str, Any]:
        """The result JSON as stored (no store fields), keys in the order they were read or the runner's."""
        return _write(self, self.ORDER, {
            "method_params": dict, "notes": list, "flags": dict, "provenance": Provenance.to_json,
            "metrics": lambda ms: {n: m.to_json() for n, m in ms.items()},
            "groups": lambda gs: {g: {n: m.to_json() for n, m in ms.items()} for g, ms in gs.items()}})

    def to_export(self) -> dict[str, Any]:
        """The result JSON with the store's ``key`` and ``status`` (and ``error``) after it: what a JSON export
        (``eval --json``, a records file for ``analyze``) writes."""
        out = {**self.to_json(), "key": self.key, "status": self.status}
        return {**out, "error": self.error} if self.error else out

    @property
    def done(self) -> bool:
        return self.status == "done"

    @property
    def headline(self) -> tuple[str, StoredMetric] | None:
        """(name, metric) of the first metric, the task's summary number; None for a failed cell."""
        return next(iter(self.metrics.items()), None)

    @property
    def method_label(self) -> str:
        """``name`` or ``name(k=v,...)`` with every stored parameter in stored order (as the result table shows)."""
        params = self.method_params or {}
        return self.method + (("(" + ",".join(f"{k}={v}" for k, v in params.items()) + ")") if params else "")


def as_records(records) -> list[CellRecord]:
    """Records as ``CellRecord``s, parsing any given as JSON dicts (the entry point of every record reader)."""
    return [CellRecord.of(r) for r in records]

