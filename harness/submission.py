"""Method submissions: the manifest schema and the validation checklist ``biasboard validate`` prints.

Why: a submission is someone else's code. Before it reaches the leaderboard we check, line by line, that its
manifest is complete, that it registers cleanly, that its parameters validate, and that a smoke cell on a tiny
model runs, is reproducible, stays offline and writes only safetensors. Everything that executes submission code
runs in a separate interpreter with a time limit (``harness.submission_worker``); this module never imports it.
"""
from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from biasboard.harness.errors import BiasboardError, DataError
from biasboard.harness.registry import FAMILIES, METHOD_HOOKS, METHOD_KINDS

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
                  "properties": {"model": {"type": "string"}, "task": {"type": "string"}, "extra": {"type": "object"}}},
    },
}
"""What ``manifest.yaml`` holds. ``params.<name>.range`` is ``[low, high]`` (inclusive) for numbers; for strings it
lists the allowed values, like ``choices``. ``smoke`` optionally names the smoke cell (model, task:variant, extra)."""

CHECKS: tuple[tuple[str, str], ...] = (
    ("manifest", "manifest.yaml follows the schema"),
    ("safe_loading", "source never unpickles (pickle, joblib, torch.load without weights_only=True)"),
    ("import", "the module imports on its own in a fresh interpreter"),
    ("hooks", "the class registers and its hooks match the documented signatures"),
    ("agreement", "the manifest agrees with the registered class"),
    ("params", "parameters validate (types, ranges, unknown names rejected)"),
    ("smoke", "a smoke cell on a tiny model and a tiny task finishes with n and CIs"),
    ("determinism", "the same seed twice gives identical results"),
    ("offline", "no network access attempted (sockets blocked, HF_HUB_OFFLINE=1)"),
    ("weights", "weights it writes are safetensors; torch.load only with weights_only=True"),
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

    @property
    def passed(self) -> bool:
        return all(c.ok is not False for c in self.checks) and any(c.ok for c in self.checks)

    def get(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def render(self) -> str:
        lines = [f"validate {self.path}" + (f" (method {self.method})" if self.method else "")]
        for c in self.checks:
            lines.append(f"  {c.status}  {c.name:<12} {TITLES.get(c.name, '')}")
            if c.detail:
                lines.append(f"        {c.detail}")
        bad = sum(c.ok is False for c in self.checks)
        lines.append(f"{'PASSED' if self.passed else 'FAILED'}: {sum(bool(c.ok) for c in self.checks)} passed, "
                     f"{bad} failed, {sum(c.ok is None for c in self.checks)} skipped")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "method": self.method, "passed": self.passed,
                "checks": [{"name": c.name, "status": c.status, "detail": c.detail} for c in self.checks]}


# --- manifest -----------------------------------------------------------------------------------------------------
def load_manifest(folder: str | Path) -> dict[str, Any]:
    """Read and validate ``folder/manifest.yaml``; a DataError names the file and the field that is wrong."""
    import jsonschema

    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise DataError(f"missing {MANIFEST} (copy submissions/_template/{MANIFEST})", path=path)
    try:
        data = yaml.safe_load(path.read_text())
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


def validate_many(paths: list[str | Path], *, timeout: float = DEFAULT_TIMEOUT, smoke: bool = True) -> list[Checklist]:
    """Validate several folders in one subprocess (the contract tests do this to share interpreter start-up)."""
    folders = [Path(p) for p in paths]
    for folder in folders:
        if not folder.is_dir():
            raise BiasboardError(f"{folder}: not a folder; expected a submission folder such as submissions/NAME")
    lists = [_static_checks(f) for f in folders]
    with tempfile.TemporaryDirectory(prefix="biasboard-validate-") as tmp:
        results = Path(tmp) / "results.jsonl"
        cmd = [sys.executable, "-m", "biasboard.harness.submission_worker", "--results", str(results)]
        cmd += [] if smoke else ["--no-smoke"]
        cmd += [str(f.resolve()) for f in folders]
        code, tail, timed_out = _run_limited(cmd, timeout=timeout, env=_worker_env())
        rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()] \
            if results.exists() else []
    for i, checklist in enumerate(lists):
        step = None
        for row in rows:
            if row["index"] != i:
                continue
            if "step" in row:
                step = row["step"]
            elif "method" in row:
                checklist.method = row["method"]
            else:
                checklist.checks.append(Check(row["check"], row["ok"], row["detail"]))
                step = None
        done = {c.name for c in checklist.checks}
        missing = [name for name, _ in CHECKS if name not in done]
        if missing:
            why = (f"timed out after {timeout:g} s" if timed_out else f"the validation process exited with code {code}")
            where = f" during {step}" if step else ""
            first = True
            for name in missing:
                if first and (step is None or name == step or name in ("smoke", "import")):
                    detail = f"{why}{where}" + (f": {tail}" if tail and not timed_out else "")
                    checklist.checks.append(Check(name, False, detail))
                    first = False
                else:
                    checklist.checks.append(Check(name, None, "not run: " + why))
        order = [name for name, _ in CHECKS]
        checklist.checks.sort(key=lambda c: order.index(c.name))
    return lists


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
    from biasboard.harness.paths import cache_dir

    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false", "BIASBOARD_SHARED_CACHE": str(cache_dir())})
    return env


def _run_limited(cmd: list[str], *, timeout: float, env: dict[str, str]) -> tuple[int | None, str, bool]:
    """Run ``cmd`` in its own process group; kill the whole group at the time limit. (exit code, stderr tail, timed out)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        timed_out = True
    lines = [ln for ln in (err or "").strip().splitlines() if ln.strip() and "Warning" not in ln]
    return proc.returncode, (lines[-1][-400:] if lines else ""), timed_out
