"""The validation subprocess: import a submission under guards, check its class, smoke-run it twice.

Run by ``harness.submission.validate`` as ``python -m harness.submission_worker --results FILE PATH...``; never
imported by the parent. Each finished check is appended to FILE as one JSON line (with a ``step`` line before
each long step), so when the parent kills this process at the time limit it still knows what passed and where
it stopped.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import inspect
import json
import os
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biasboard.harness.errors import BiasboardError, DataError, UnsupportedError
from biasboard.harness.sandbox import Guards, classify_written_file, install_guards, written_files

SMOKE_EXTRA = {"max_examples": 10, "epochs": 1}
"""Smoke settings passed to tasks as ``ctx.extra``: ten examples, one training epoch."""
SMOKE_EXTRA_BY_TASK = {"seat": {"max_examples": 1}, "weat": {"max_examples": 1}}
"""Tasks whose ``max_examples`` counts something bigger (SEAT/WEAT: whole association tests)."""


def smoke_extra(task: str) -> dict[str, Any]:
    """The smoke ``ctx.extra`` for ``task`` or ``task:variant``."""
    return {**SMOKE_EXTRA, **SMOKE_EXTRA_BY_TASK.get(task.partition(":")[0], {})}
SMOKE_CELLS = (
    ("mlm", "zoo:splade-tiny", "crows_pairs:pll_unmodified"),
    ("mlm", "zoo:splade-tiny", "bios:synthetic"),
    ("encoder", "zoo:minilm-l6", "seat:mean"),
    ("encoder", "zoo:minilm-l6", "bios:synthetic"),
    ("clm", "zoo:smollm2-135m", "crows_pairs:causal_sum"),
    ("clm", "zoo:smollm2-135m", "bios:synthetic"),
    ("wordvec", "zoo:glove-6b-50d", "weat:sent_bias"),
    ("vision", "vision:small-cnn", "worst_group:digits_rho90"),
)
"""Candidate smoke cells, cheapest first: (family, tiny model, task:variant). The first the method can run wins."""
SHARED_CACHE_DIRS = ("models", "converted", "data")
"""Read-mostly cache folders linked into each run's fresh cache, so zoo models are found offline."""


@dataclass
class Reporter:
    """Appends JSON lines to the results file, flushed at once."""

    path: Path
    index: int = 0

    def _write(self, row: dict[str, Any]) -> None:
        with self.path.open("a") as fh:
            fh.write(json.dumps({"index": self.index, **row}, default=str) + "\n")

    def step(self, name: str) -> None:
        self._write({"step": name})

    def check(self, name: str, ok: bool | None, detail: str) -> None:
        self._write({"check": name, "ok": ok, "detail": detail})

    def method(self, name: str) -> None:
        self._write({"method": name})


@dataclass
class Imported:
    module: str = ""
    cls: Any = None
    error: str = ""
    rejected: list[str] = field(default_factory=list)
    """Messages of the registry's checks that refused a class during the import."""


def _dotted_name(folder: Path) -> str | None:
    """``submissions.perturb`` (or an installed ``some_plugin``) when the folder is the package importable under
    that name, else None (then it is imported from its path, like ``--include``)."""
    parts, cur = [folder.name], folder.parent
    while (cur / "__init__.py").exists():
        parts.insert(0, cur.name)
        cur = cur.parent
    spec = importlib.util.find_spec(parts[0])
    if spec is None or not spec.submodule_search_locations:
        return None
    if Path(list(spec.submodule_search_locations)[0]).resolve() != (cur / parts[0]).resolve():
        return None
    return ".".join(parts)


def _where(exc: BaseException, folder: Path) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if str(folder) in f.filename]
    return f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""


def import_submission(folder: Path, manifest: dict | None) -> Imported:
    """Import the folder's module and find the method class it registered."""
    from biasboard.harness.registry import METHODS, RegistryError, include_path

    out = Imported()
    orig_register = METHODS.register

    def register(obj, *args, **kwargs):
        try:
            return orig_register(obj, *args, **kwargs)
        except RegistryError as exc:
            out.rejected.append(str(exc))
            raise

    METHODS.register = register
    try:
        dotted = _dotted_name(folder)
        if dotted:
            importlib.import_module(dotted)
            out.module = dotted
        else:
            METHODS.names()  # load the built-ins first so a clash of names is caught
            out.module = include_path(folder)[0]
        for ep in importlib.metadata.entry_points(group="biasboard.methods"):
            if ep.value.partition(":")[0].split(".")[0] == out.module.split(".")[0]:
                METHODS.get(ep.name)  # an outside package registers through its entry point: load it now
    except BaseException as exc:  # noqa: BLE001 - anything the submission raises is reported, not propagated
        cause = exc.__cause__ if isinstance(exc, RegistryError) and exc.__cause__ else exc
        out.error = f"{type(cause).__name__}: {cause}{_where(cause, folder)}"
        return out
    finally:
        METHODS.register = orig_register
    mine = {name: obj for name, obj in METHODS._entries.items()
            if not isinstance(obj, str) and (obj.__module__ == out.module or obj.__module__.startswith(out.module + "."))}
    if manifest and manifest.get("name") in mine:
        out.cls = mine[manifest["name"]]
    elif len(mine) == 1:
        out.cls = next(iter(mine.values()))
    elif mine:
        out.error = f"the module registered several methods ({', '.join(sorted(mine))}); one folder, one method"
    return out


def implemented_hooks(cls) -> list[str]:
    from biasboard.harness.registry import METHOD_HOOKS

    return [h for h in METHOD_HOOKS if callable(getattr(cls, h, None))]


def agreement_problems(cls, manifest: dict) -> list[str]:
    """Where the manifest and the registered class disagree."""
    problems = []
    for attr in ("name", "version"):
        if str(getattr(cls, attr)) != str(manifest[attr]):
            problems.append(f"{attr}: manifest {manifest[attr]!r}, class {getattr(cls, attr)!r}")
    if set(cls.families) != set(manifest["families"]):
        problems.append(f"families: manifest {sorted(manifest['families'])}, class {sorted(cls.families)}")
    if set(implemented_hooks(cls)) != set(manifest["hooks"]):
        problems.append(f"hooks: manifest {sorted(manifest['hooks'])}, class implements {implemented_hooks(cls)}")
    if manifest.get("kind") and manifest["kind"] != cls.kind:
        problems.append(f"kind: manifest {manifest['kind']!r}, class {cls.kind!r}")
    declared = manifest["params"]
    if set(declared) != set(cls.params):
        problems.append(f"params: manifest {sorted(declared)}, class {sorted(cls.params)}")
    for name in set(declared) & set(cls.params):
        if declared[name]["default"] != cls.params[name]:
            problems.append(f"params.{name}.default: manifest {declared[name]['default']!r}, "
                            f"class {cls.params[name]!r}")
    if not (manifest["citation"] or cls.kind == "identity"):
        problems.append("citation: empty (cite the paper the method comes from)")
    return problems


def params_problems(cls, manifest: dict | None) -> list[str]:
    from biasboard.harness.submission import param_errors

    problems = []
    instance = cls()
    try:
        instance.resolve_params(dict(cls.params))
    except BiasboardError as exc:
        problems.append(f"defaults rejected: {exc}")
    try:
        instance.resolve_params({"__no_such_parameter__": 1})
        problems.append("resolve_params accepted an unknown parameter name (it must raise)")
    except BiasboardError:
        pass
    for name, value in cls.params.items():
        if not isinstance(value, (int, float, bool, str)) and value is not None:
            problems.append(f"{name}: default {value!r} is not a plain int, float, bool or str")
    if manifest:
        problems += param_errors(manifest, dict(cls.params))
    return problems


def choose_smoke(cls, manifest: dict | None) -> tuple[str, str, dict[str, Any]]:
    """(model, task:variant, extra) of the smoke cell: the manifest's ``smoke`` entry or the first fitting one."""
    from biasboard.harness.matrix import compatible
    from biasboard.harness.registry import TASKS

    if manifest and manifest.get("smoke"):
        s = manifest["smoke"]
        return s["model"], s["task"], {**smoke_extra(s["task"]), **(s.get("extra") or {})}
    for family, model, spec in SMOKE_CELLS:
        task, _, variant = spec.partition(":")
        if family not in cls.families or task not in TASKS or variant not in TASKS.get(task).variants:
            continue
        if compatible(family, cls, TASKS.get(task), variant) is None:
            return model, spec, smoke_extra(spec)
    raise UnsupportedError(f"no smoke cell fits families {list(cls.families)} with kind {cls.kind!r}; add "
                           f"`smoke: {{model: ..., task: ...}}` to manifest.yaml")


def fresh_cache(root: Path) -> Path:
    """An empty cache folder with the shared model folders linked in."""
    from biasboard.harness.paths import cache_dir

    shared = Path(os.environ.get("BIASBOARD_SHARED_CACHE") or cache_dir())
    root.mkdir(parents=True)
    for name in SHARED_CACHE_DIRS:
        if (shared / name).is_dir():
            (root / name).symlink_to((shared / name).resolve(), target_is_directory=True)
    return root


def smoke_run(method: str, model: str, task: str, extra: dict[str, Any], cache: Path, *,
              batch_size: int = 8) -> tuple[dict, list[dict]]:
    """Evaluate one cell through the real planner and runner, with ``cache`` as the biasboard cache."""
    from biasboard.harness.matrix import Matrix, plan
    from biasboard.harness.runner import evaluate_cell

    from biasboard.harness.runner import seed_everything

    os.environ["BIASBOARD_CACHE"] = str(cache)
    seed_everything(0)  # each run starts from the same global RNG state, as a fresh process would
    matrix = Matrix.from_dict({"name": "smoke", "models": [model], "methods": [method], "tasks": [task],
                               "options": {"extra": extra}})
    cells, skipped = plan(matrix)
    if not cells:
        raise UnsupportedError("; ".join(s.reason for s in skipped) or f"{task} cannot run {method} on {model}")
    return evaluate_cell(cells[0], extra=extra, batch_size=batch_size, n_bootstrap=200)


def contract_problems(record: dict) -> tuple[list[str], str]:
    """(result-contract violations, a note). Every metric with a value needs n and a CI or a p-value.

    A headline without a value (NaN) is only noted: at smoke sizes some tasks cannot compute it (e.g. a TPR gap
    needs both genders in every occupation); the per-example rows are still compared by the determinism check.
    """
    metrics = record.get("metrics") or {}
    if not metrics:
        return ["no metrics"], ""
    headline = next(iter(metrics))
    note = "" if metrics[headline].get("value") is not None else \
        f"note: {headline} has no value at smoke size (too few examples per group)"
    problems = []
    for name, m in metrics.items():
        if m.get("value") is None:
            continue
        if not m.get("n"):
            problems.append(f"{name}: n missing or 0")
        elif m.get("ci95") is None and m.get("p_value") is None:
            problems.append(f"{name}: neither ci95 nor p_value")
    return problems, note


def outcome(record: dict, examples: list[dict]) -> dict[str, Any]:
    """What must be identical between two runs with the same seed (timings and paths left out)."""
    return {k: record.get(k) for k in ("metrics", "groups", "notes", "flags")} | {"examples": examples}


def first_difference(a: dict, b: dict) -> str:
    for name in sorted(set(a["metrics"]) | set(b["metrics"])):
        va, vb = (a["metrics"].get(name) or {}).get("value"), (b["metrics"].get(name) or {}).get("value")
        if va != vb:
            return f"{name}: {va} then {vb}"
    if len(a["examples"]) != len(b["examples"]):
        return f"{len(a['examples'])} then {len(b['examples'])} example rows"
    for i, (x, y) in enumerate(zip(a["examples"], b["examples"])):
        if x != y:
            keys = [k for k in x if x.get(k) != y.get(k)]
            return f"example {x.get('id', i)}: {', '.join(f'{k} {x.get(k)} then {y.get(k)}' for k in keys[:2])}"
    for key in ("groups", "notes", "flags"):
        if a[key] != b[key]:
            if key == "notes":
                diff = [(x, y) for x, y in zip(a[key] or [], b[key] or []) if x != y]
                if diff:
                    return f"note {diff[0][0]!r} then {diff[0][1]!r}"
            return f"{key} differ"
    return "outputs differ"


def bad_weight_files(root: Path) -> list[str]:
    return [f"{p.relative_to(root)}: {why}" for p in written_files(root) if (why := classify_written_file(p))]


def validate_one(folder: Path, out: Reporter, guards: Guards, *, smoke: bool) -> None:
    from biasboard.harness.submission import load_manifest

    try:
        manifest = load_manifest(folder)
    except DataError:
        manifest = None  # the parent already reported the manifest line
    out.step("import")
    n_net = len(guards.network)
    imp = import_submission(folder, manifest)
    if imp.rejected:
        out.check("import", True, "the module ran until the registry refused its class")
        out.check("hooks", False, imp.rejected[0])
    elif imp.error:
        out.check("import", False, imp.error)
        out.check("hooks", None, "not run: the module did not import")
    elif imp.cls is None:
        out.check("import", True, f"imported as {imp.module}")
        out.check("hooks", False, "the module registered no method: decorate the class with @register_method")
    else:
        cls = imp.cls
        out.method(cls.name)
        out.check("import", True, f"imported as {imp.module}")
        sigs = ", ".join(f"{h}{tuple(p for p in inspect.signature(getattr(cls, h)).parameters if p != 'self')}"
                         for h in implemented_hooks(cls))
        out.check("hooks", True, f"registered {cls.name!r} (kind {cls.kind}): {sigs}")
    cls = imp.cls if not (imp.rejected or imp.error) else None
    if cls is None:
        for name in ("agreement", "params", "smoke", "determinism"):
            out.check(name, None, "not run: no registered method class")
        _offline(out, guards, n_net)
        out.check("weights", None, "not run: no registered method class")
        return
    if manifest is None:
        out.check("agreement", False, "no valid manifest to compare with (see the manifest line)")
    else:
        problems = agreement_problems(cls, manifest)
        out.check("agreement", not problems, "; ".join(problems) or "name, version, families, hooks, params agree")
    problems = params_problems(cls, manifest)
    out.check("params", not problems, "; ".join(problems) or
              (f"defaults {cls.params} validate; unknown names are rejected" if cls.params else "no parameters"))
    if not smoke:
        for name in ("smoke", "determinism"):
            out.check(name, None, "not run (--no-smoke)")
        _offline(out, guards, n_net)
        out.check("weights", None, "not run (--no-smoke)")
        return
    n_loads = len(guards.unsafe_loads)
    with tempfile.TemporaryDirectory(prefix="biasboard-smoke-") as tmp:
        runs, bad_files = [], []
        try:
            model, task, extra = choose_smoke(cls, manifest)
            for attempt in (1, 2):
                out.step("smoke" if attempt == 1 else "determinism")
                cache = fresh_cache(Path(tmp) / f"cache{attempt}")
                runs.append(smoke_run(cls.name, model, task, extra, cache))
                bad_files += [f"run {attempt}: {b}" for b in bad_weight_files(cache)]
        except BaseException as exc:  # noqa: BLE001 - the submission's failure is the finding
            if isinstance(exc, KeyboardInterrupt):
                raise
            detail = f"{type(exc).__name__}: {exc}{_where(exc, folder)}"
            if not runs:
                out.check("smoke", False, detail)
                out.check("determinism", None, "not run: the smoke cell failed")
            else:
                out.check("smoke", True, f"{model} x {task} finished once")
                out.check("determinism", False, f"the second run failed: {detail}")
        else:
            record = runs[0][0]
            problems, note = contract_problems(record)
            headline, m = next(iter(record["metrics"].items()))
            summary = f"{model} x {task}: {headline} = {m.get('value')} (n={m.get('n')}, ci95={m.get('ci95')})"
            out.check("smoke", not problems, "; ".join([summary] + problems + ([note] if note else [])))
            a, b = outcome(*runs[0]), outcome(*runs[1])
            same = json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)
            out.check("determinism", same, "two runs with seed 0 gave identical metrics and per-example rows" if same
                      else f"two runs with seed 0 differ: {first_difference(a, b)}")
    _offline(out, guards, n_net)
    unsafe = guards.unsafe_loads[n_loads:]
    problems = unsafe + bad_files
    out.check("weights", not problems, "; ".join(problems[:3]) or "no pickled weights written; no unsafe torch.load")


def _offline(out: Reporter, guards: Guards, since: int) -> None:
    attempts = guards.network[since:]
    out.check("offline", not attempts, f"{len(attempts)} blocked attempt(s): " + "; ".join(attempts[:3]) if attempts
              else "no network access attempted")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.submission_worker")
    parser.add_argument("--results", required=True, type=Path)
    parser.add_argument("--no-smoke", action="store_true")
    parser.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    guards = install_guards()
    import biasboard.harness.registry  # noqa: F401 - the registry module itself is trusted; load it before the guards matter

    for i, folder in enumerate(args.paths):
        validate_one(folder, Reporter(args.results, i), guards, smoke=not args.no_smoke)
    return 0


if __name__ == "__main__":
    sys.exit(main())
