"""Method submissions: the manifest schema and the validation checklist ``biasboard validate`` prints.

Why: a submission is someone else's code. Before it reaches the leaderboard we check, line by line, that its
manifest is complete, that it registers cleanly, that its parameters validate, and that a smoke cell on a tiny
model runs, is reproducible, stays offline and writes only safetensors. Everything that executes submission code
runs in a separate interpreter (``harness.submission_worker``; this module never imports it) with resource limits
and a time limit, inside bubblewrap where it works (``harness.sandbox``). The worker's answers come over an
authenticated pipe; the smoke, determinism (two separate worker processes), weights, offline and sandbox lines are
judged here from what the parent itself observes.
"""
from __future__ import annotations

import ast
import hashlib
import hmac
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from biasboard.harness import strict_yaml
from biasboard.harness.errors import BiasboardError, DataError
from biasboard.harness.registry import FAMILIES, METHOD_HOOKS, METHOD_KINDS
from biasboard.harness.sandbox import (Isolation, Limits, Outcome, classify_written_file, isolation, new_key,
                                       run_isolated, written_files)

__all__ = ["CHECKS", "Check", "Checklist", "MANIFEST_SCHEMA", "load_manifest", "param_errors", "scan_unsafe_loads",
           "validate", "validate_many"]

MANIFEST = "manifest.yaml"
PARAM_TYPES = {"int": int, "float": float, "bool": bool, "str": str}

MANIFEST_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["name", "version", "authors", "citation", "license", "families", "hooks", "params"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": "^[A-Za-z0-9_]+$"},
        "version": {"type": "string", "minLength": 1},
        "authors": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
        "citation": {"type": "string"},
        "paper": {"type": "string"},
        "license": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "kind": {"enum": list(METHOD_KINDS)},
        "families": {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"enum": list(FAMILIES)}},
        "hooks": {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"enum": list(METHOD_HOOKS)}},
        "params": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["type", "default"], "additionalProperties": False,
            "properties": {"type": {"enum": list(PARAM_TYPES)}, "default": {},
                           "range": {"type": "array", "minItems": 1},
                           "choices": {"type": "array", "minItems": 1},
                           "description": {"type": "string"}}}},
        "smoke": {"type": "object", "additionalProperties": False, "required": ["model", "task"],
                  "properties": {"model": {"type": "string"}, "task": {"type": "string"}, "extra": {"type": "object"},
                                 "params": {"type": "object"}}},
    },
}
"""What ``manifest.yaml`` holds. ``params.<name>.range`` is ``[low, high]`` (inclusive) for numbers; for strings it
lists the allowed values, like ``choices``. ``smoke`` optionally names the smoke cell (model, task:variant, extra,
and method params where the defaults do not fit the tiny model, e.g. INLP's 80 rounds on a 128-wide model)."""

CHECKS: tuple[tuple[str, str], ...] = (
    ("manifest", "manifest.yaml follows the schema"),
    ("safe_loading", "code never unpickles (pickle, joblib, torch.load without weights_only=True): source scan "
                     "and run-time audit"),
    ("import", "the module imports on its own in a fresh interpreter"),
    ("hooks", "the class registers and its hooks match the documented signatures"),
    ("agreement", "the manifest agrees with the registered class"),
    ("params", "parameters validate (types, ranges, unknown names rejected)"),
    ("smoke", "a smoke cell on a tiny model and a tiny task finishes with n and CIs"),
    ("determinism", "the same seed twice gives identical results"),
    ("offline", "no network access attempted (sockets blocked, HF_HUB_OFFLINE=1)"),
    ("weights", "weights it writes are safetensors; torch.load only with weights_only=True"),
    ("sandbox", "stayed within its limits, sent only authenticated results, left no process running"),
)
"""The checklist, in the order it is printed: (id, what it checks)."""
TITLES = dict(CHECKS)


@dataclass(frozen=True)
class Check:
    """One line of the checklist."""

    name: str
    """Check id, one of ``CHECKS``."""
    ok: bool | None
    """True pass, False fail, None not run (an earlier failure made it meaningless)."""
    detail: str = ""
    """The reason, in words."""

    @property
    def status(self) -> str:
        return {True: "PASS", False: "FAIL", None: "SKIP"}[self.ok]


@dataclass
class Checklist:
    """The result of validating one submission folder."""

    path: str
    checks: list[Check] = field(default_factory=list)
    method: str = ""
    """The registered method name, once known."""
    isolation: str = ""
    """Which isolation the worker had, in words (``isolation: bubblewrap ...`` or ``not isolated: ...``)."""

    @property
    def passed(self) -> bool:
        return all(c.ok is not False for c in self.checks) and any(c.ok for c in self.checks)

    def get(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def render(self) -> str:
        lines = [f"validate {self.path}" + (f" (method {self.method})" if self.method else "")]
        if self.isolation:
            lines.append(f"  {self.isolation}")
        for c in self.checks:
            lines.append(f"  {c.status}  {c.name:<12} {TITLES.get(c.name, '')}")
            if c.detail:
                lines.append(f"        {c.detail}")
        bad = sum(c.ok is False for c in self.checks)
        lines.append(f"{'PASSED' if self.passed else 'FAILED'}: {sum(bool(c.ok) for c in self.checks)} passed, "
                     f"{bad} failed, {sum(c.ok is None for c in self.checks)} skipped")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "method": self.method, "passed": self.passed, "isolation": self.isolation,
                "checks": [{"name": c.name, "status": c.status, "detail": c.detail} for c in self.checks]}


# --- manifest -----------------------------------------------------------------------------------------------------
def load_manifest(folder: str | Path) -> dict[str, Any]:
    """Read and validate ``folder/manifest.yaml``; a DataError names the file and the field that is wrong."""
    import jsonschema

    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise DataError(f"missing {MANIFEST} (copy submissions/_template/{MANIFEST})", path=path)
    try:
        data = strict_yaml.load(path.read_text())
    except yaml.YAMLError as exc:
        raise DataError(f"not valid YAML: {exc}", path=path) from None
    validator = jsonschema.Draft202012Validator(MANIFEST_SCHEMA)
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.path), list(map(str, e.path))))
    if errors:
        err = errors[0]
        where = ".".join(str(p) for p in err.path) or None
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise DataError(err.message + more, path=path, field=where)
    for name, spec in data["params"].items():
        problem = _param_spec_error(spec)
        if problem:
            raise DataError(problem, path=path, field=f"params.{name}")
    return data


def _param_spec_error(spec: dict[str, Any]) -> str | None:
    if spec["type"] in ("int", "float") and "range" in spec:
        rng = spec["range"]
        if len(rng) != 2 or not all(_is_type(v, "float") for v in rng) or rng[0] > rng[1]:
            return f"range must be [low, high] numbers with low <= high, got {rng!r}"
    if spec["type"] in ("bool",) and ("range" in spec or "choices" in spec):
        return "a bool parameter takes no range or choices"
    return _value_error(spec, spec["default"], what="default")


def _is_type(value: Any, kind: str) -> bool:
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, PARAM_TYPES[kind])


def _value_error(spec: dict[str, Any], value: Any, *, what: str = "value") -> str | None:
    kind = spec["type"]
    if not _is_type(value, kind):
        return f"{what} {value!r} is not of type {kind}"
    allowed = spec.get("choices") or (spec.get("range") if kind == "str" else None)
    if allowed is not None and value not in allowed:
        return f"{what} {value!r} is not one of {allowed}"
    if kind in ("int", "float") and "range" in spec:
        lo, hi = spec["range"]
        if not lo <= value <= hi:
            return f"{what} {value!r} is outside the range [{lo}, {hi}]"
    return None


def param_errors(manifest: dict[str, Any], values: dict[str, Any]) -> list[str]:
    """Problems with parameter ``values`` against the manifest (unknown names, types, ranges); empty when valid.

    >>> m = {"params": {"sigma": {"type": "float", "default": 0.01, "range": [0.0, 1.0]}}}
    >>> param_errors(m, {"sigma": 0.5}), param_errors(m, {"sigma": 2.0}), param_errors(m, {"sgma": 0.1})
    ([], ['sigma: value 2.0 is outside the range [0.0, 1.0]'], ["unknown parameter 'sgma'; valid: ['sigma']"])
    """
    specs = manifest.get("params") or {}
    out = []
    for name, value in values.items():
        if name not in specs:
            out.append(f"unknown parameter {name!r}; valid: {sorted(specs)}")
            continue
        problem = _value_error(specs[name], value)
        if problem:
            out.append(f"{name}: {problem}")
    return out


# --- static scan for unpickling -----------------------------------------------------------------------------------
UNSAFE_CALLS = {"pickle.load", "pickle.loads", "cPickle.load", "dill.load", "dill.loads", "joblib.load",
                "cloudpickle.load", "cloudpickle.loads", "torch.package.PackageImporter"}


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def scan_unsafe_loads(folder: str | Path) -> list[str]:
    """Calls in the submission's Python files that can unpickle: ``file:line: call``. Static, so cheap and safe.

    ``torch.load`` must pass ``weights_only=True``; ``numpy.load`` must not pass ``allow_pickle=True``.
    """
    found = []
    for py in sorted(Path(folder).rglob("*.py")):
        try:
            tree = ast.parse(py.read_text(), filename=str(py))
        except SyntaxError:
            continue  # the import check reports it with the interpreter's message
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _dotted(node.func)
            kwargs = {k.arg: k.value for k in node.keywords if k.arg}
            bad = name in UNSAFE_CALLS
            if name == "torch.load" or name.endswith(".torch.load"):
                flag = kwargs.get("weights_only")
                bad = not (isinstance(flag, ast.Constant) and flag.value is True)
            if name in ("np.load", "numpy.load"):
                flag = kwargs.get("allow_pickle")
                bad = isinstance(flag, ast.Constant) and flag.value is True
            if bad:
                found.append(f"{py.name}:{node.lineno}: {name}(...)")
    return found


# --- running the checks -------------------------------------------------------------------------------------------
DEFAULT_TIMEOUT = 900.0
"""Seconds the whole validation subprocess may take (import, two smoke runs)."""


def validate(path: str | Path, *, timeout: float = DEFAULT_TIMEOUT, smoke: bool = True) -> Checklist:
    """Run every check on one submission folder (code runs in a subprocess with a time limit)."""
    return validate_many([path], timeout=timeout, smoke=smoke)[0]


def validate_many(paths: list[str | Path], *, timeout: float = DEFAULT_TIMEOUT, smoke: bool = True,
                  limits: Limits | None = None) -> list[Checklist]:
    """Validate several folders with two worker processes in all (the contract tests share interpreter start-up)."""
    folders = [Path(p) for p in paths]
    for folder in folders:
        if not folder.is_dir():
            raise BiasboardError(f"{folder}: not a folder; expected a submission folder such as submissions/NAME")
    limits = limits or Limits(cpu_seconds=int(timeout) + 5)
    iso = isolation()
    lists = [_static_checks(f) for f in folders]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="biasboard-validate-") as tmp:
        scratch = Path(tmp)
        first = _worker_run(folders, run=1, smoke=smoke, scratch=scratch / "run1", timeout=timeout, limits=limits)
        again = [i for i in range(len(folders)) if "outcome" in first.result(i)]
        left = timeout - (time.monotonic() - started)
        second = _worker_run([folders[i] for i in again], run=2, smoke=True, scratch=scratch / "run2",
                             timeout=max(left, 1.0), limits=limits) if again else None
        bad_files = [bad_weight_files(scratch / "run1" / str(i)) +
                     (bad_weight_files(scratch / "run2" / str(again.index(i))) if second and i in again else [])
                     for i in range(len(folders))]
    tampered = [] if iso.isolated else _zoo_tampering()
    sandbox = _sandbox_check(iso, limits, [r for r in (first, second) if r], tampered)
    for i, checklist in enumerate(lists):
        checklist.isolation = iso.describe()
        run2 = second.view(again.index(i)) if second and i in again else None
        _compose(checklist, first.view(i), run2, bad_files[i], iso, smoke=smoke, timeout=timeout)
        checklist.checks.append(_own_sandbox_line(sandbox, [v for v in (first.view(i), run2) if v], iso))
        order = [name for name, _ in CHECKS]
        checklist.checks.sort(key=lambda c: order.index(c.name))
    return lists


SHARED_CACHE_DIRS = ("models", "converted", "data")
"""Cache folders of the shared cache each worker's fresh cache sees (read-only inside the sandbox)."""


def prepare_cache(root: Path) -> Path:
    """An empty cache folder with the shared model folders linked in, so zoo models are found offline.

    ``converted`` is a real folder holding one link per finished conversion: a conversion missing from the shared
    cache is then made in the worker's own cache instead of failing on the read-only shared one."""
    from biasboard.harness.paths import cache_dir

    shared = Path(os.environ.get("BIASBOARD_SHARED_CACHE") or cache_dir())
    root.mkdir(parents=True)
    for name in SHARED_CACHE_DIRS:
        if not (shared / name).is_dir():
            continue
        if name == "converted":
            (root / name).mkdir()
            for sub in (shared / name).iterdir():
                if sub.is_dir() and not sub.name.endswith(".tmp"):
                    (root / name / sub.name).symlink_to(sub.resolve(), target_is_directory=True)
        else:
            (root / name).symlink_to((shared / name).resolve(), target_is_directory=True)
    return root


class WorkerRun:
    """One worker process: its authenticated messages, how it ended, and what the channel saw."""

    def __init__(self, messages: list[dict], done: bool, bad_lines: int, outcome: Outcome, n: int) -> None:
        self.messages, self.done, self.bad_lines, self.outcome, self.n = messages, done, bad_lines, outcome, n

    def view(self, index: int) -> "RunView":
        return RunView(self, [m for m in self.messages if m.get("index") == index])

    def result(self, index: int) -> dict:
        return self.view(index).result


@dataclass
class RunView:
    """One worker run's messages about one folder."""

    run: WorkerRun
    messages: list[dict]

    @property
    def result(self) -> dict:
        """The smoke run's message: ``{outcome, model, task}`` or ``{error}``, or {} when none came."""
        return next((m for m in self.messages if "run" in m and ("outcome" in m or "error" in m)), {})

    @property
    def guards(self) -> dict | None:
        return next((m for m in self.messages if "network" in m), None)

    @property
    def step(self) -> str | None:
        steps = [m["step"] for m in self.messages if "step" in m]
        return steps[-1] if steps else None

    def why(self, timeout: float) -> str:
        o = self.run.outcome
        where = f" during {self.step}" if self.step else ""
        if o.timed_out:
            return f"timed out after {timeout:g} s{where}"
        code = o.code if o.code is None or o.code >= 0 else f"{o.code} (killed by signal {-o.code})"
        return f"the validation process exited with code {code}{where}" + (f": {o.stderr_tail}" if o.stderr_tail
                                                                            else "")


def _worker_run(folders: list[Path], *, run: int, smoke: bool, scratch: Path, timeout: float,
                limits: Limits) -> WorkerRun:
    """Start one worker on ``folders`` and collect its authenticated messages (see ``submission_worker``)."""
    scratch.mkdir(parents=True)
    for i in range(len(folders)):
        prepare_cache(scratch / str(i) / "cache")
    key = new_key()
    res_r, res_w = os.pipe()
    key_r, key_w = os.pipe()
    os.write(key_w, key)
    os.close(key_w)
    cmd = [sys.executable, "-m", "biasboard.harness.submission_worker", "--results-fd", str(res_w),
           "--key-fd", str(key_r), "--run", str(run), "--caches", str(scratch.resolve())]
    cmd += [] if smoke else ["--no-smoke"]
    cmd += [str(f.resolve()) for f in folders]
    raw: list[bytes] = []
    reader = threading.Thread(target=lambda: raw.append(_read_all(res_r)), daemon=True)
    reader.start()

    def close_child_ends() -> None:
        os.close(res_w)
        os.close(key_r)

    env = _worker_env()
    env["TMPDIR"] = str((scratch / "tmp").resolve())  # its own temporary folder, isolated or not
    (scratch / "tmp").mkdir()
    if isolation().isolated:  # /tmp and home are private tmpfs in the sandbox: nothing of the host's is there
        env["BIASBOARD_WORKER_WRITABLE"] = os.pathsep.join(["/tmp", "/home", str(Path.home())])
    read_only = [Path(env["BIASBOARD_SHARED_CACHE"]), Path(env["BIASBOARD_DATA_DIR"]), _project_root(),
                 *[f.resolve() for f in folders]]
    env["BIASBOARD_WORKER_READONLY"] = os.pathsep.join(str(p) for p in read_only)
    try:
        outcome = run_isolated(cmd, timeout=timeout, env=env, scratch=scratch, read_only=read_only, limits=limits,
                               pass_fds=(res_w, key_r), on_start=close_child_ends)
    except BaseException:
        for fd in (res_w, key_r):
            try:
                os.close(fd)
            except OSError:
                pass
        raise
    reader.join(timeout=10)
    messages, done, bad = authenticated(b"".join(raw), key)
    return WorkerRun(messages, done, bad, outcome, len(folders))


def _read_all(fd: int) -> bytes:
    chunks = []
    with os.fdopen(fd, "rb") as fh:
        while chunk := fh.read(1 << 16):
            chunks.append(chunk)
    return b"".join(chunks)


def authenticated(data: bytes, key: bytes) -> tuple[list[dict], bool, int]:
    """(messages whose HMAC and sequence number check out, whether the signed ``done`` came, lines rejected)."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    messages, done, bad, seq = [], False, 0, 0
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            text = json.dumps(row["body"], sort_keys=True)
            want = mac.copy()
            want.update(f"{seq}:{text}".encode())
            ok = row["seq"] == seq and hmac.compare_digest(want.hexdigest(), str(row["mac"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            ok = False
        if not ok or done:
            bad += 1
            continue
        seq += 1
        if row["body"].get("done") is True:
            done = True
        else:
            messages.append(row["body"])
    return messages, done, bad


def _project_root() -> Path:
    import biasboard.harness

    return Path(biasboard.harness.__file__).resolve().parents[1]


def _zoo_tampering() -> list[str]:
    """Zoo files that no longer match their pins, hashed afresh (an unisolated worker could have rewritten them,
    and the digest memo with them)."""
    from biasboard.harness.models.zoo import ZOO, local_path, pin_problems

    problems = []
    for alias in ZOO:
        path = local_path(alias)
        if path is not None:
            problems += [f"zoo:{alias}: {p}" for p in pin_problems(alias, path, trust_memo=False)]
    return problems


def _own_sandbox_line(shared: Check, views: list[RunView], iso: Isolation) -> Check:
    """The sandbox line of one folder: the run-wide findings plus the processes it started and the files it tried
    to write outside its folders."""
    problems = []
    started = [str(x) for v in views if v.guards for x in v.guards.get("processes") or []]
    if started:
        problems.append(f"started {len(started)} process(es), which the in-process guards cannot see into: "
                        f"{'; '.join(started[:2])}")
    writes = runtime_notes(views, "writes")
    if writes:
        fate = "isolated: they cannot reach the host's files" if iso.isolated else "not isolated: they may have worked"
        more = f" (and {len(writes) - 3} more)" if len(writes) > 3 else ""
        problems.append(f"tried to write outside its own folders ({fate}): "
                        f"{'; '.join(writes[:3])}{more}")
    return Check("sandbox", False, "; ".join(problems + [shared.detail])) if problems else shared


def _sandbox_check(iso: Isolation, limits: Limits, runs: list[WorkerRun], tampered: list[str]) -> Check:
    problems = []
    bad = sum(r.bad_lines for r in runs)
    if bad:
        problems.append(f"{bad} line(s) on the results channel did not authenticate (written by the submission?)")
    for r in runs:
        if r.outcome.leftovers:
            problems.append(f"{len(r.outcome.leftovers)} process(es) still running when the worker ended, killed: "
                            + ", ".join(r.outcome.leftovers[:3]))
        if r.outcome.code == 0 and not r.done:
            problems.append("the worker exited with code 0 before it finished (os._exit from the submission?)")
        if r.outcome.code is not None and r.outcome.code < 0 and not r.outcome.timed_out:
            problems.append(f"the worker was killed by signal {-r.outcome.code} (a resource limit?)")
    peak = max((r.outcome.peak_rss for r in runs), default=0)
    if peak > limits.memory_budget:
        problems.append(f"peak memory {peak / (1 << 20):.0f} MiB is over the budget of "
                        f"{limits.memory_budget / (1 << 20):.0f} MiB")
    problems += tampered
    detail = f"{iso.describe()}; peak memory {peak / (1 << 20):.0f} MiB; {limits.describe()}"
    return Check("sandbox", not problems, "; ".join(problems + [detail]))


def _compose(checklist: Checklist, first: RunView, second: RunView | None, bad_files: list[str], iso: Isolation,
             *, smoke: bool, timeout: float) -> None:
    """The worker-reported lines of run 1, then the lines the parent judges (smoke, determinism, offline, weights)."""
    for m in first.messages:
        if "method" in m:
            checklist.method = str(m["method"])
        elif "check" in m and m["check"] in ("import", "hooks", "agreement", "params") and not checklist.get(m["check"]):
            checklist.checks.append(Check(m["check"], m["ok"] if m["ok"] in (True, False, None) else False,
                                          str(m.get("detail", ""))))
    has_class = bool(checklist.get("hooks") and checklist.get("hooks").ok)
    res1 = first.result
    res2 = second.result if second else {}
    if not has_class:
        pass  # import/hooks lines say why; smoke, determinism and weights are not run
    elif not smoke:
        for name in ("smoke", "determinism"):
            checklist.checks.append(Check(name, None, "not run (--no-smoke)"))
        torch_loads = [u for u in runtime_unsafe_loads([first]) if _weights_load(u)]
        checklist.checks.append(Check("weights", False, "; ".join(torch_loads[:3])) if torch_loads else
                                Check("weights", None, "not run (--no-smoke)"))
    elif "error" in res1:
        checklist.checks.append(Check("smoke", False, res1["error"]))
        checklist.checks.append(Check("determinism", None, "not run: the smoke cell failed"))
    elif "outcome" in res1:
        a = res1["outcome"]
        problems, note = contract_problems(a)
        headline, m = next(iter(a["metrics"].items())) if a.get("metrics") else ("-", {})
        summary = f"{res1['model']} x {res1['task']}: {headline} = {m.get('value')} (n={m.get('n')}, ci95={m.get('ci95')})"
        checklist.checks.append(Check("smoke", not problems, "; ".join([summary] + problems + ([note] if note else []))))
        if "error" in res2:
            checklist.checks.append(Check("determinism", False, f"the second run failed: {res2['error']}"))
        elif "outcome" in res2:
            b = res2["outcome"]
            same = json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
            checklist.checks.append(Check("determinism", same, "two worker processes with seed 0 gave identical "
                                          "metrics and per-example rows" if same else
                                          f"two runs with seed 0 differ: {first_difference(a, b)}"))
    guards = [g for g in (first.guards, second.guards if second else None) if g]
    loads = runtime_unsafe_loads([v for v in (first, second) if v])
    if loads:
        _fail_safe_loading(checklist, loads)
    if first.guards is not None:
        attempts = [a for g in guards for a in g.get("network") or []]
        if attempts:
            checklist.checks.append(Check("offline", False, f"{len(attempts)} blocked attempt(s): " +
                                          "; ".join(map(str, attempts[:3]))))
        elif iso.isolated:
            checklist.checks.append(Check("offline", True, "no network attempt seen, and the worker had no network "
                                                           "(bubblewrap network namespace)"))
        else:
            checklist.checks.append(Check("offline", None, "not isolated: Python-level guards only, which saw no "
                                                           "network attempt (install bubblewrap for a real check)"))
    if has_class and smoke and ("outcome" in res1 or "error" in res1):
        problems = [u for u in loads if _weights_load(u)] + bad_files
        checklist.checks.append(Check("weights", not problems, "; ".join(problems[:3]) or
                                      "no pickled weights written; no unsafe torch.load"))
    done = {c.name for c in checklist.checks}
    first_missing = True
    for name, _ in CHECKS:
        if name in done or name in ("manifest", "safe_loading", "sandbox"):
            continue
        view = second if name == "determinism" and second is not None else first
        if not has_class and name in ("smoke", "determinism", "weights") and checklist.get("hooks"):
            checklist.checks.append(Check(name, None, "not run: no registered method class"))
        elif first_missing:
            checklist.checks.append(Check(name, False, view.why(timeout)))
            first_missing = False
        else:
            checklist.checks.append(Check(name, None, "not run: " + view.why(timeout).split(":")[0]))


def runtime_notes(views: list[RunView], kind: str) -> list[str]:
    """What the worker's guards saw of ``kind`` (``unsafe_loads``, ``writes``), sent at once and again at the end,
    once each."""
    lines = [m.get("line") for v in views for m in v.messages if m.get("note") == kind]
    lines += [u for v in views if v.guards for u in v.guards.get(kind) or []]
    return list(dict.fromkeys(map(str, lines)))


def runtime_unsafe_loads(views: list[RunView]) -> list[str]:
    """Unsafe loads the worker's audit hook and torch.load guard saw."""
    return runtime_notes(views, "unsafe_loads")


def _weights_load(line: str) -> bool:
    """Whether an unsafe-load line is a weights load (torch.load or np.load), which fails the weights line too."""
    return line.startswith("torch.load(") or " via torch." in line or " via numpy." in line


def _fail_safe_loading(checklist: Checklist, loads: list[str]) -> None:
    """The static scan's line, failed with what the code did at run time (an alias the scan cannot see)."""
    static = checklist.get("safe_loading")
    found = [] if static is None or static.ok else [static.detail]
    more = f" (and {len(loads) - 5} more)" if len(loads) > 5 else ""
    detail = "; ".join(found + [f"at run time: {'; '.join(loads[:5])}{more}"])
    checklist.checks = [c for c in checklist.checks if c.name != "safe_loading"] + [
        Check("safe_loading", False, detail)]


def contract_problems(record: "dict | CellRecord") -> tuple[list[str], str]:
    """(result-contract violations, a note). Every metric with a value needs n and a CI or a p-value.

    A headline without a value (NaN) is only noted: at smoke sizes some tasks cannot compute it (e.g. a TPR gap
    needs both genders in every occupation); the per-example rows are still compared by the determinism check.
    """
    if hasattr(record, "to_json"):  # a CellRecord from the runner; the worker's outcome is already JSON
        record = record.to_json()
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


def first_difference(a: dict, b: dict) -> str:
    """The first place two smoke outcomes differ, in words."""
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
    """Files a worker wrote under ``root`` that are pickles posing as weights (symlinked shared folders skipped)."""
    if not root.is_dir():
        return []
    return [f"{p.relative_to(root)}: {why}" for p in written_files(root) if (why := classify_written_file(p))]


def _static_checks(folder: Path) -> Checklist:
    checklist = Checklist(path=str(folder))
    try:
        manifest = load_manifest(folder)
        checklist.checks.append(Check("manifest", True, f"{manifest['name']} {manifest['version']}, "
                                      f"families {', '.join(manifest['families'])}, hooks {', '.join(manifest['hooks'])}"))
    except DataError as exc:
        checklist.checks.append(Check("manifest", False, str(exc)))
    unsafe = scan_unsafe_loads(folder)
    checklist.checks.append(Check("safe_loading", not unsafe, "; ".join(unsafe) if unsafe else
                                  "no pickle/joblib loads, torch.load only with weights_only=True"))
    return checklist


def _worker_env() -> dict[str, str]:
    from biasboard.harness.paths import cache_dir, data_dirs

    env = dict(os.environ)
    data = next((d for d in data_dirs() if d.is_dir()), data_dirs()[0])
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false", "PYTHONDONTWRITEBYTECODE": "1",
                "BIASBOARD_SHARED_CACHE": str(cache_dir().resolve()), "BIASBOARD_DATA_DIR": str(data.resolve())})
    return env
