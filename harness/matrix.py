"""Evaluation matrices: models x methods x tasks x seeds, read from YAML, expanded into cells with cache keys.

A cell's key is a digest of everything that determines its result: the harness version, the resolved weights
digest, the method's name, version and resolved parameters, the task's name, version and variant, the data digest,
the seed, the task options (``extra``) and the bootstrap size. Settings that cannot change a number (batch size,
progress bars, quiet) are not in it. A finished cell is never recomputed unless forced.

Everything that can be checked without a model is checked here, when the matrix is read: option types and ranges,
method parameters against their declarations, seeds, and ``extra`` keys against the keys tasks and methods declare.
"""
from __future__ import annotations

import difflib
import inspect
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import biasboard.harness as harness
from biasboard.harness.digest import files_sha256, json_sha256
from biasboard.harness import strict_yaml
from biasboard.harness.errors import BiasboardError, DataError
from biasboard.harness.models.handles import ModelSpec, ResolvedModel, resolve_model
from biasboard.harness.registry import METHODS, TASKS

DEFAULT_N_BOOTSTRAP = 1000
OPTION_KEYS = ("batch_size", "n_bootstrap", "extra")
"""Keys of a matrix's ``options``: ``n_bootstrap`` and ``extra`` are in the cell key, ``batch_size`` is not."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def did_you_mean(name: str, known) -> str:
    close = difflib.get_close_matches(str(name), sorted(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_options(options: Any, *, source: str) -> dict[str, Any]:
    """The ``options`` mapping, or a DataError naming the bad field."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise DataError(f"must be a mapping with keys among {list(OPTION_KEYS)}, got {options!r}", path=source,
                        field="options")
    for key in options:
        if key not in OPTION_KEYS:
            raise DataError(f"unknown option{did_you_mean(key, OPTION_KEYS)} (options: {', '.join(OPTION_KEYS)})",
                            path=source, field=f"options.{key}")
    for key in ("batch_size", "n_bootstrap"):
        if key in options and (not _is_int(options[key]) or options[key] < 1):
            raise DataError(f"must be a positive integer, got {options[key]!r}", path=source, field=f"options.{key}")
    if not isinstance(options.get("extra") or {}, dict):
        raise DataError(f"must be a mapping, got {options['extra']!r}", path=source, field="options.extra")
    return dict(options)


def _manifest_of(method_cls) -> dict[str, Any] | None:
    """The submission manifest next to the method's module, when it has one (it declares types and ranges)."""
    try:
        folder = Path(inspect.getfile(method_cls)).parent
    except (TypeError, OSError):
        return None
    if not (folder / "manifest.yaml").is_file():
        return None
    from biasboard.harness.submission import load_manifest

    return load_manifest(folder)


def _type_error(name: str, value: Any, default: Any) -> str | None:
    """A value of another type than the parameter's default (bool, int, float, str, list); None defaults any."""
    if default is None:
        return None
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = _is_int(value)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif isinstance(default, (list, tuple)):
        ok = isinstance(value, (list, tuple))
    else:
        ok = isinstance(value, type(default))
    return None if ok else f"{name}: value {value!r} is not of type {type(default).__name__}"


def check_method_params(mspec: "MethodSpec") -> None:
    """Parameter names, types and ranges against the method's declaration (its manifest when it has one, else the
    types of its defaults): a bad value fails when the matrix is read, before any model loads."""
    method_cls = METHODS.get(mspec.name)
    given = dict(mspec.params)
    method_cls().resolve_params(given)  # unknown names
    manifest = _manifest_of(method_cls)
    if manifest is not None:
        from biasboard.harness.submission import param_errors

        problems = param_errors(manifest, given)
    else:
        problems = [e for k, v in given.items() if (e := _type_error(k, v, method_cls.params.get(k)))]
    if problems:
        raise BiasboardError(f"method {mspec.name!r}: " + "; ".join(problems))


def declared_extra_keys(cls) -> set[str] | None:
    """The ``ctx.extra`` keys a task or method class declares it reads (``extra_keys``); None when a task does
    not declare them (then any key is accepted for it)."""
    keys = getattr(cls, "extra_keys", None)
    return None if keys is None else set(keys)


def all_known_extra_keys() -> set[str]:
    """Every ``extra`` key any registered task or method declares (for did-you-mean on an unknown key)."""
    known: set[str] = set()
    for registry in (TASKS, METHODS):
        for name in registry.names():
            try:
                known |= declared_extra_keys(registry.get(name)) or set()
            except Exception:  # a plugin that fails to import has no say here
                continue
    return known


def check_extra(matrix_extra: dict[str, Any], tasks: tuple["TaskSpec", ...], methods: tuple["MethodSpec", ...], *,
                source: str) -> list[str]:
    """Errors for ``extra`` keys no task or method reads (with a did-you-mean) and for a task entry's key its task
    ignores; warnings (returned) for a matrix-wide key some tasks of the matrix ignore."""
    method_keys: set[str] = set()
    for m in methods:
        method_keys |= declared_extra_keys(METHODS.get(m.name)) or set()
    reads = {t.name: declared_extra_keys(TASKS.get(t.name)) for t in tasks}
    for i, tspec in enumerate(tasks):
        own = reads[tspec.name]
        for key, _ in tspec.extra:
            if own is not None and key not in own | method_keys:
                hint = "" if key in all_known_extra_keys() else did_you_mean(key, own | method_keys)
                raise DataError(f"task {tspec.name!r} does not read extra key {key!r}{hint} (it reads: "
                                f"{', '.join(sorted(own)) or '-'})", path=source, row=i + 1, field="tasks")
    warnings = []
    for key in matrix_extra:
        ignoring = sorted(n for n, own in reads.items() if own is not None and key not in own | method_keys)
        if not ignoring:
            continue
        if len(ignoring) == len(reads):
            known = all_known_extra_keys()
            if key not in known:
                raise DataError(f"no task or method reads this key{did_you_mean(key, known)}", path=source,
                                field=f"options.extra.{key}")
        warnings.append(f"{source}: options.extra.{key} is ignored by task(s) {', '.join(ignoring)}")
    return warnings


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
    warnings: tuple[str, ...] = ()
    """Problems that do not stop the run (e.g. an ``extra`` key some tasks ignore); commands print them."""

    def excludes(self, model: str, method: str, task: str, variant: str, seed: int) -> bool:
        cell = {"model": model, "method": method, "task": task, "variant": variant, "seed": seed}
        return any(all(cell[k] == v for k, v in rule.items()) for rule in self.exclude)

    @classmethod
    def load(cls, path: str | Path) -> "Matrix":
        path = Path(path)
        try:
            raw = path.read_bytes()
            text = raw.decode("utf-8")
            data = strict_yaml.load(text)
        except FileNotFoundError:
            raise BiasboardError(f"matrix file {path} not found") from None
        except IsADirectoryError:
            raise BiasboardError(f"matrix file {path} is a directory") from None
        except UnicodeDecodeError as exc:
            line = raw[:exc.start].count(b"\n") + 1
            raise DataError(f"not UTF-8: byte 0x{raw[exc.start]:02x} at line {line}", path=path) from None
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
        if not isinstance(seeds, list) or not seeds or not all(_is_int(s) and 0 <= s < 2 ** 32 for s in seeds):
            raise DataError(f"must be a non-empty list of integers in [0, 2**32), got {seeds!r}", path=source,
                            field="seeds")
        if "methods" in data and not data["methods"]:
            raise DataError("empty; leave the key out to evaluate the models as they are (method none)",
                            path=source, field="methods")
        options = check_options(data.get("options"), source=source)
        models, tasks = parse_list("models", ModelSpec.parse), parse_list("tasks", TaskSpec.parse)

        def parse_method(value) -> MethodSpec:
            mspec = MethodSpec.parse(value)
            check_method_params(mspec)
            return mspec

        methods = parse_list("methods", parse_method) if data.get("methods") else (MethodSpec("none"),)
        warnings = check_extra(options.get("extra") or {}, tasks, methods, source=source)
        for i, tspec in enumerate(tasks):
            unknown = sorted(set(tspec.models) - {m.id for m in models})
            if unknown:
                raise DataError(f"task entry {tspec.name!r} names models {unknown} that the matrix does not list",
                                path=source, row=i + 1, field="tasks")
        return cls(name=str(data.get("name", Path(source).stem)), description=str(data.get("description", "")),
                   models=models, methods=methods, tasks=tasks, seeds=tuple(seeds), options=options,
                   exclude=tuple(exclude), warnings=tuple(warnings))

    def print_warnings(self, file=None) -> None:
        for warning in self.warnings:
            print(f"biasboard: warning: {warning}", file=file or sys.stderr)


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
    """Task options of the cell: the matrix's ``options.extra`` with the entry's own ``extra`` over it."""
    n_bootstrap: int = DEFAULT_N_BOOTSTRAP
    """Bootstrap resamples for the cell's confidence intervals (in the key: it changes the stored CI)."""
    data_warnings: tuple[str, ...] = ()
    """Data files whose sha256 differs from the pinned digest (a modified or truncated copy): flagged in the
    result."""

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
    if getattr(method_cls, "tasks", ()) and task_cls.name not in method_cls.tasks:
        return f"method {method_cls.name} applies to {', '.join(method_cls.tasks)} only, not {task_cls.name}"
    changes_model = hasattr(method_cls, "apply") or hasattr(method_cls, "represent")
    if not changes_model and not getattr(task_cls, "fine_tunes", False):
        return f"method {method_cls.name} changes fine-tuning data/loss; {task_cls.name} does not fine-tune"
    return None


def cell_key(*, model: ResolvedModel, method_cls, params, task_cls, variant: str, data_sha256: str, seed: int,
             extra: dict[str, Any] | None = None, n_bootstrap: int = DEFAULT_N_BOOTSTRAP) -> str:
    """Digest of everything that determines a cell's numbers. ``n_bootstrap`` enters only when it is not the
    default, so keys of default runs stay what they were (their cached results remain valid)."""
    content = {
        "extra": dict(extra or {}),
        "harness": harness.__version__,
        "model": model.spec.id, "family": model.family, "dtype": model.spec.dtype, "revision": model.spec.revision,
        "weights_sha256": model.weights_sha256,
        "method": method_cls.name, "method_version": method_cls.version, "params": dict(params),
        "task": task_cls.name, "task_version": task_cls.version, "variant": variant,
        "data_sha256": data_sha256, "seed": seed,
    }
    if n_bootstrap != DEFAULT_N_BOOTSTRAP:
        content["n_bootstrap"] = int(n_bootstrap)
    return json_sha256(content)


def data_digest(task_cls, variant: str) -> str:
    files = task_cls().data_files(variant)
    return files_sha256(files) if files else json_sha256({"task": task_cls.name, "variant": variant, "generated": True})


def pinned_data_mismatches(task_cls, variant: str) -> tuple[str, ...]:
    """One message per data file of the task whose sha256 differs from the digest its ``DataSource`` pins (the
    original file at a pinned commit): a locally modified or truncated copy still runs, but its results say so."""
    from biasboard.harness.data import SOURCES, file_matches_source

    out = []
    for path in task_cls().data_files(variant):
        for src in SOURCES.get(task_cls.name, []):
            problem = file_matches_source(Path(path), src)
            if problem:
                out.append(problem)
    return tuple(out)


def plan(matrix: Matrix) -> tuple[list[Cell], list[Skipped]]:
    """Expand a matrix into runnable cells (with keys) and skipped pairings (with reasons)."""
    cells, skipped = [], []
    resolved = [resolve_model(m) for m in matrix.models]
    data_cache: dict[tuple[str, str], str] = {}
    pinned: dict[tuple[str, str], tuple[str, ...]] = {}
    n_bootstrap = int(matrix.options.get("n_bootstrap", DEFAULT_N_BOOTSTRAP))
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
                        pinned[(tspec.name, variant)] = pinned_data_mismatches(task_cls, variant)
                    dsha = data_cache[(tspec.name, variant)]
                    extra = {**(matrix.options.get("extra") or {}), **dict(tspec.extra)}
                    for seed in matrix.seeds:
                        if matrix.excludes(model.spec.id, mspec.name, tspec.name, variant, seed):
                            continue
                        key = cell_key(model=model, method_cls=method_cls, params=params, task_cls=task_cls,
                                       variant=variant, data_sha256=dsha, seed=seed, extra=extra,
                                       n_bootstrap=n_bootstrap)
                        cells.append(Cell(model, mspec, params, tspec.name, variant, seed, key, dsha,
                                          tuple(sorted(extra.items())), n_bootstrap, pinned[(tspec.name, variant)]))
    return cells, skipped
