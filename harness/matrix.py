"""Evaluation matrices: models x methods x tasks x seeds, read from YAML, expanded into cells with cache keys.

A cell's key is a digest of everything that determines its result: the harness version, the resolved weights
digest, the method's name, version and resolved parameters, the task's name, version and variant, the data digest
and the seed. A finished cell is never recomputed unless forced.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import biasboard.harness as harness
from biasboard.harness.digest import files_sha256, json_sha256
from biasboard.harness.errors import BiasboardError, DataError
from biasboard.harness.models.handles import ModelSpec, ResolvedModel, resolve_model
from biasboard.harness.registry import METHODS, TASKS


@dataclass(frozen=True)
class MethodSpec:
    """A method with its parameter values (defaults filled in at planning time)."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def parse(cls, value) -> "MethodSpec":
        if isinstance(value, MethodSpec):
            return value
        if isinstance(value, str):
            return cls(value)
        if isinstance(value, dict) and "name" in value and set(value) <= {"name", "params"}:
            params = value.get("params") or {}
            if not isinstance(params, dict):
                raise BiasboardError(f"method {value['name']!r}: params must be a mapping")
            return cls(value["name"], tuple(sorted(params.items())))
        raise BiasboardError(f"method entry {value!r}: expected a name or {{name: ..., params: {{...}}}}")

    @property
    def label(self) -> str:
        if not self.params:
            return self.name
        return f"{self.name}(" + ",".join(f"{k}={v}" for k, v in self.params) + ")"


@dataclass(frozen=True)
class TaskSpec:
    """``task`` or ``task:variant``; without a variant a matrix takes every variant the model supports.

    The mapping form ``{task: crows_pairs:causal_sum, extra: {eval_sample: 500}, models: [zoo:smollm2-135m]}`` adds
    options for this entry's cells only (merged over the matrix's ``options.extra``; part of their cell keys) and,
    with ``models``, restricts the entry to those model ids: an evaluation size that suits a slow model without
    shrinking the others.
    """

    name: str
    variant: str | None = None
    extra: tuple[tuple[str, Any], ...] = ()
    models: tuple[str, ...] = ()
    """Model ids this entry applies to (empty: every model of the matrix)."""

    @classmethod
    def parse(cls, value) -> "TaskSpec":
        extra: dict[str, Any] = {}
        models: list[str] = []
        if isinstance(value, dict):
            if "task" not in value or set(value) - {"task", "extra", "models"}:
                raise BiasboardError(f"task entry {value!r}: expected {{task: 'task[:variant]', extra: {{...}}, "
                                     "models: [...]}")
            extra, models = value.get("extra") or {}, value.get("models") or []
            if not isinstance(extra, dict):
                raise BiasboardError(f"task {value['task']!r}: extra must be a mapping")
            if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
                raise BiasboardError(f"task {value['task']!r}: models must be a list of model ids")
            value = value["task"]
        if not isinstance(value, str) or not value:
            raise BiasboardError(f"task entry {value!r}: expected 'task' or 'task:variant'")
        name, _, variant = value.partition(":")
        task = TASKS.get(name)
        if variant and variant not in task.variants:
            raise BiasboardError(f"task {name!r} has no variant {variant!r}; variants: {', '.join(task.variants)}")
        return cls(name, variant or None, tuple(sorted(extra.items())), tuple(models))


@dataclass(frozen=True)
class Matrix:
    """A named grid of cells."""

    name: str
    models: tuple[ModelSpec, ...]
    methods: tuple[MethodSpec, ...]
    tasks: tuple[TaskSpec, ...]
    seeds: tuple[int, ...] = (0,)
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    """Run options: batch_size, n_bootstrap, extra (passed to tasks as ctx.extra)."""
    exclude: tuple[dict[str, Any], ...] = ()
    """Pairings to leave out, e.g. ``{model: zoo:smollm2-135m, task: seat}`` (keys: model, method, task, variant,
    seed); an entry matches a cell when every key it gives matches."""

    def excludes(self, model: str, method: str, task: str, variant: str, seed: int) -> bool:
        cell = {"model": model, "method": method, "task": task, "variant": variant, "seed": seed}
        return any(all(cell[k] == v for k, v in rule.items()) for rule in self.exclude)

    @classmethod
    def load(cls, path: str | Path) -> "Matrix":
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise BiasboardError(f"matrix file {path} not found") from None
        except yaml.YAMLError as exc:
            raise DataError(f"not valid YAML: {exc}", path=path) from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<matrix>") -> "Matrix":
        if not isinstance(data, dict):
            raise DataError("a matrix is a mapping with models, methods, tasks, seeds", path=source)
        allowed = {"name", "description", "models", "methods", "tasks", "seeds", "options", "exclude"}
        unknown = set(data) - allowed
        if unknown:
            raise DataError(f"unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}", path=source)
        for required in ("models", "tasks"):
            if not data.get(required):
                raise DataError("missing or empty", path=source, field=required)

        def parse_list(key, parser):
            items = data.get(key) or []
            if not isinstance(items, list):
                raise DataError("must be a list", path=source, field=key)
            out = []
            for i, item in enumerate(items):
                try:
                    out.append(parser(item))
                except BiasboardError as exc:
                    raise DataError(str(exc), path=source, row=i + 1, field=key) from None
            return tuple(out)

        exclude = data.get("exclude") or []
        rule_keys = {"model", "method", "task", "variant", "seed"}
        for i, rule in enumerate(exclude if isinstance(exclude, list) else [None]):
            if not isinstance(rule, dict) or not rule or set(rule) - rule_keys:
                raise DataError(f"each entry is a mapping with keys among {sorted(rule_keys)}", path=source,
                                row=i + 1, field="exclude")
        seeds = data.get("seeds", [0])
        if not isinstance(seeds, list) or not all(isinstance(s, int) for s in seeds):
            raise DataError("must be a list of integers", path=source, field="seeds")
        models, tasks = parse_list("models", ModelSpec.parse), parse_list("tasks", TaskSpec.parse)
        for i, tspec in enumerate(tasks):
            unknown = sorted(set(tspec.models) - {m.id for m in models})
            if unknown:
                raise DataError(f"task entry {tspec.name!r} names models {unknown} that the matrix does not list",
                                path=source, row=i + 1, field="tasks")
        return cls(name=str(data.get("name", Path(source).stem)), description=str(data.get("description", "")),
                   models=models,
                   methods=parse_list("methods", MethodSpec.parse) if data.get("methods") else (MethodSpec("none"),),
                   tasks=tasks, seeds=tuple(seeds), options=dict(data.get("options") or {}), exclude=tuple(exclude))


@dataclass(frozen=True)
class Cell:
    """One (model, method+params, task+variant, seed) with everything resolved and its cache key."""

    model: ResolvedModel
    method: MethodSpec
    params: tuple[tuple[str, Any], ...]
    task: str
    variant: str
    seed: int
    key: str
    data_sha256: str
    extra: tuple[tuple[str, Any], ...] = ()
    """Task-level options of the matrix entry (merged over the run's ``extra`` when the cell is evaluated)."""

    @property
    def label(self) -> str:
        return f"{self.model.spec.id} | {self.method.label} | {self.task}:{self.variant} | seed {self.seed}"


@dataclass(frozen=True)
class Skipped:
    """A pairing the matrix asked for that cannot run (e.g. an MLM-only variant on a causal LM)."""

    model: str
    method: str
    task: str
    reason: str


def compatible(family: str, method_cls, task_cls, variant: str) -> str | None:
    """Why this pairing cannot run, or None when it can."""
    if family not in task_cls.variants[variant].families:
        return f"{task_cls.name}:{variant} supports {', '.join(task_cls.variants[variant].families)}, not {family}"
    if family not in method_cls.families:
        return f"method {method_cls.name} supports {', '.join(method_cls.families)}, not {family}"
    if not hasattr(method_cls, "apply") and not getattr(task_cls, "fine_tunes", False):
        return f"method {method_cls.name} changes fine-tuning data/loss; {task_cls.name} does not fine-tune"
    return None


def cell_key(*, model: ResolvedModel, method_cls, params, task_cls, variant: str, data_sha256: str, seed: int,
             extra: dict[str, Any] | None = None) -> str:
    return json_sha256({
        "extra": dict(extra or {}),
        "harness": harness.__version__,
        "model": model.spec.id, "family": model.family, "dtype": model.spec.dtype, "revision": model.spec.revision,
        "weights_sha256": model.weights_sha256,
        "method": method_cls.name, "method_version": method_cls.version, "params": dict(params),
        "task": task_cls.name, "task_version": task_cls.version, "variant": variant,
        "data_sha256": data_sha256, "seed": seed,
    })


def data_digest(task_cls, variant: str) -> str:
    files = task_cls().data_files(variant)
    return files_sha256(files) if files else json_sha256({"task": task_cls.name, "variant": variant, "generated": True})


def plan(matrix: Matrix) -> tuple[list[Cell], list[Skipped]]:
    """Expand a matrix into runnable cells (with keys) and skipped pairings (with reasons)."""
    cells, skipped = [], []
    resolved = [resolve_model(m) for m in matrix.models]
    data_cache: dict[tuple[str, str], str] = {}
    for model in resolved:
        for mspec in matrix.methods:
            method_cls = METHODS.get(mspec.name)
            params = tuple(sorted(method_cls().resolve_params(dict(mspec.params)).items()))
            for tspec in matrix.tasks:
                if tspec.models and model.spec.id not in tspec.models:
                    continue
                task_cls = TASKS.get(tspec.name)
                variants = [tspec.variant] if tspec.variant else list(task_cls.variants)
                for variant in variants:
                    why = compatible(model.family, method_cls, task_cls, variant)
                    if why:
                        if tspec.variant or model.family in task_cls.variants[variant].families:
                            skipped.append(Skipped(model.spec.id, mspec.label, f"{tspec.name}:{variant}", why))
                        continue
                    if (tspec.name, variant) not in data_cache:
                        data_cache[(tspec.name, variant)] = data_digest(task_cls, variant)
                    dsha = data_cache[(tspec.name, variant)]
                    for seed in matrix.seeds:
                        if matrix.excludes(model.spec.id, mspec.name, tspec.name, variant, seed):
                            continue
                        key = cell_key(model=model, method_cls=method_cls, params=params, task_cls=task_cls,
                                       variant=variant, data_sha256=dsha, seed=seed,
                                       extra={**(matrix.options.get("extra") or {}), **dict(tspec.extra)})
                        cells.append(Cell(model, mspec, params, tspec.name, variant, seed, key, dsha, tspec.extra))
    return cells, skipped
