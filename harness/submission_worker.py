"""The validation subprocess: import a submission under guards, check its class, smoke-run it once.

Run by ``harness.submission.validate`` as ``python -m biasboard.harness.submission_worker --results-fd W --key-fd K
--run N --caches DIR PATH...``, twice: run 1 does every check and one smoke run, run 2 (a separate process with a
fresh cache) only the smoke run, so the parent compares the two outcomes for determinism itself.

Why a pipe and a key: the results go to a pipe the parent created (no file a submission could append to), one
JSON line per message, each with a sequence number and an HMAC under a per-run key read from another inherited
pipe and closed before any submission code is imported. The parent ignores lines that do not authenticate and
fails the run's sandbox check when it sees one. Each finished check is sent at once (with a ``step`` line before
each long step), so when the parent kills this process at the time limit it still knows where it stopped.
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import importlib
import importlib.metadata
import importlib.util
import inspect
import json
import os
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biasboard.harness.errors import BiasboardError, DataError, UnsupportedError
from biasboard.harness.record import CellRecord
from biasboard.harness.sandbox import Guards, install_guards
from biasboard.harness.submission import SHARED_CACHE_DIRS, contract_problems, prepare_cache

__all__ = ["contract_problems", "fresh_cache", "main", "outcome", "smoke_extra", "smoke_run"]

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


class Channel:
    """Writes authenticated messages to the results pipe: ``{"seq", "body", "mac"}`` per line."""

    def __init__(self, fd: int, key: bytes) -> None:
        self._fd, self._mac, self._seq = fd, hmac.new(key, digestmod=hashlib.sha256), 0

    def send(self, body: dict[str, Any]) -> None:
        text = json.dumps(body, sort_keys=True, default=str)
        mac = self._mac.copy()
        mac.update(f"{self._seq}:{text}".encode())
        line = json.dumps({"seq": self._seq, "body": json.loads(text), "mac": mac.hexdigest()}) + "\n"
        self._seq += 1
        data = line.encode()
        while data:
            data = data[os.write(self._fd, data):]


@dataclass
class Reporter:
    """The messages about one submission folder (``index`` in the command line)."""

    channel: Channel
    index: int = 0

    def _write(self, row: dict[str, Any]) -> None:
        self.channel.send({"index": self.index, **row})

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
    """``biasboard.submissions.perturb`` (or an installed ``some_plugin``) when the folder is the package importable
    under that name, else None (then it is imported from its path, like ``--include``)."""
    parts, cur = [folder.name], folder.parent
    while (cur / "__init__.py").exists():
        parts.insert(0, cur.name)
        cur = cur.parent
    for prefix in ("", "biasboard."):  # built-in submissions install as biasboard.submissions
        try:
            spec = importlib.util.find_spec(prefix + parts[0])
        except (ImportError, ValueError):
            continue
        if spec is None or not spec.submodule_search_locations:
            continue
        if any(Path(loc).resolve() == (cur / parts[0]).resolve() for loc in spec.submodule_search_locations):
            return prefix + ".".join(parts)
    return None


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
    """An empty cache folder with the shared model folders linked in (see ``submission.prepare_cache``)."""
    return prepare_cache(root)


def smoke_run(method: str, model: str, task: str, extra: dict[str, Any], cache: Path, *,
              batch_size: int = 8, params: dict[str, Any] | None = None) -> tuple[CellRecord, list[dict]]:
    """Evaluate one cell through the real planner and runner, with ``cache`` as the biasboard cache."""
    from biasboard.harness.matrix import Matrix, plan
    from biasboard.harness.runner import evaluate_cell

    from biasboard.harness.runner import seed_everything

    os.environ["BIASBOARD_CACHE"] = str(cache)
    seed_everything(0)  # each run starts from the same global RNG state, as a fresh process would
    method_entry = {"name": method, "params": dict(params)} if params else method
    matrix = Matrix.from_dict({"name": "smoke", "models": [model], "methods": [method_entry], "tasks": [task],
                               "options": {"extra": extra}})
    cells, skipped = plan(matrix)
    if not cells:
        raise UnsupportedError("; ".join(s.reason for s in skipped) or f"{task} cannot run {method} on {model}")
    return evaluate_cell(cells[0], extra=extra, batch_size=batch_size, n_bootstrap=200)


def outcome(record: CellRecord, examples: list[dict]) -> dict[str, Any]:
    """What must be identical between two runs with the same seed (timings and paths left out), as the JSON the
    parent receives."""
    data = record.to_json()
    return {k: data.get(k) for k in ("metrics", "groups", "notes", "flags")} | {"examples": examples}




def validate_one(folder: Path, out: Reporter, guards: Guards, *, smoke: bool, run: int, cache: Path) -> None:
    """Run 1: import, hooks, agreement, params, then one smoke run. Run 2: import and the smoke run only.

    The smoke run's outcome is sent to the parent, which judges the smoke, determinism and weights checks."""
    from biasboard.harness.submission import load_manifest

    try:
        manifest = load_manifest(folder)
    except DataError:
        manifest = None  # the parent already reported the manifest line
    out.step("import")
    n_net, n_loads, n_procs = len(guards.network), len(guards.unsafe_loads), len(guards.processes)
    n_writes = len(guards.writes)
    guards.code_roots = sorted({str(folder), os.path.realpath(folder)})
    guards.on_note = lambda kind, line: out._write({"note": kind, "line": line})  # at once: it may never finish
    imp = import_submission(folder, manifest)
    cls = imp.cls if not (imp.rejected or imp.error) else None
    if run == 1:
        _report_class(out, imp, manifest)
    if cls is not None and smoke:
        out.step("smoke" if run == 1 else "determinism")
        try:
            model, task, extra = choose_smoke(cls, manifest)
            params = ((manifest or {}).get("smoke") or {}).get("params") or {}
            record, examples = smoke_run(cls.name, model, task, extra, cache, params=params)
            out._write({"run": run, "model": model, "task": task, "outcome": outcome(record, examples)})
        except BaseException as exc:  # noqa: BLE001 - the submission's failure is the finding
            if isinstance(exc, KeyboardInterrupt):
                raise
            out._write({"run": run, "error": f"{type(exc).__name__}: {exc}{_where(exc, folder)}"})
    from biasboard.harness.load_audit import unpicklers_defined_in

    for line in unpicklers_defined_in(guards.code_roots):  # one used before any import was not audited
        guards.unsafe_load(f"{line} (its loads resolve globals the audit may not see)")
    out._write({"run": run, "network": guards.network[n_net:], "unsafe_loads": guards.unsafe_loads[n_loads:],
                "processes": guards.processes[n_procs:], "writes": guards.writes[n_writes:]})


def _report_class(out: Reporter, imp: Imported, manifest: dict | None) -> None:
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
        for name in ("agreement", "params"):
            out.check(name, None, "not run: no registered method class")
        return
    if manifest is None:
        out.check("agreement", False, "no valid manifest to compare with (see the manifest line)")
    else:
        problems = agreement_problems(cls, manifest)
        out.check("agreement", not problems, "; ".join(problems) or "name, version, families, hooks, params agree")
    problems = params_problems(cls, manifest)
    out.check("params", not problems, "; ".join(problems) or
              (f"defaults {cls.params} validate; unknown names are rejected" if cls.params else "no parameters"))


def _env_paths(name: str) -> list[str]:
    return sorted({os.path.realpath(p) for p in os.environ.get(name, "").split(os.pathsep) if p})


def writable(scratch: Path) -> list[str]:
    """Where the worker may write: its scratch folder (caches), its temporary folder, /dev, and the folders the
    parent names in BIASBOARD_WORKER_WRITABLE (the sandbox's private /tmp and home)."""
    import tempfile

    return sorted({os.path.realpath(p) for p in [scratch, tempfile.gettempdir(), "/dev"]} |
                  set(_env_paths("BIASBOARD_WORKER_WRITABLE")))


def read_key(fd: int) -> bytes:
    """The run's secret from the inherited pipe, which is closed at once (before any submission code runs)."""
    chunks = []
    while chunk := os.read(fd, 256):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m biasboard.harness.submission_worker")
    parser.add_argument("--results-fd", required=True, type=int)
    parser.add_argument("--key-fd", required=True, type=int)
    parser.add_argument("--run", type=int, choices=(1, 2), default=1)
    parser.add_argument("--caches", required=True, type=Path, help="folder with one fresh cache per PATH: N/cache")
    parser.add_argument("--no-smoke", action="store_true")
    parser.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args(argv)
    channel = Channel(args.results_fd, read_key(args.key_fd))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    guards = install_guards(audit=True)
    guards.write_roots, guards.read_only_roots = writable(args.caches), _env_paths("BIASBOARD_WORKER_READONLY")
    import biasboard.harness.registry  # noqa: F401 - the registry module itself is trusted; load it before the guards matter

    for i, folder in enumerate(args.paths):
        validate_one(folder, Reporter(channel, i), guards, smoke=not args.no_smoke, run=args.run,
                     cache=args.caches / str(i) / "cache")
    channel.send({"done": True})
    return 0


if __name__ == "__main__":
    sys.exit(main())
