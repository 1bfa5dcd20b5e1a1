"""Issue 16 item 6: unsafe deserialisation reached through an alias is seen at run time, refused, and named.

The audit hook cannot be removed, so the unit test runs it in a fresh interpreter; the validation test runs the
hostile fixtures (tests/fixtures/hostile_pickle_alias, hostile_torch_alias) through `biasboard validate`.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from biasboard.harness.submission import scan_unsafe_loads, validate_many

FIXTURES = Path(__file__).resolve().parent / "fixtures"

CODE = """
import io, marshal, pickle
import numpy as np
from pickle import loads as l


class Evil:
    def __reduce__(self):
        return exec, ("import builtins; builtins.PWNED = True",)


def attempt(fn):
    try:
        fn()
        return "ran"
    except Exception as exc:
        return type(exc).__name__


np.save("obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
class Own(pickle.Unpickler):  # resolves globals itself, without the base class (and its audit event)
    def find_class(self, module, name):
        return getattr(__import__(module), name)


def own_loads(blob):
    return Own(io.BytesIO(blob)).load()


import json.tool  # noqa: E402,F401 - an import after the class: the audit wraps Own.find_class here

results = {
    "own_unpickler": attempt(lambda: own_loads(pickle.dumps(Evil()))),
    "alias": attempt(lambda: l(pickle.dumps(Evil()))),
    "numpy": attempt(lambda: np.load("obj.npy", allow_pickle=True)),
    "marshal": attempt(lambda: marshal.loads(marshal.dumps(1))),
    "no_globals": attempt(lambda: pickle.loads(pickle.dumps({"a": [1, 2.0, "x"]}))),
    "import_after_hook": attempt(lambda: __import__("json.tool")),
}
"""

DRIVER = """
import builtins, json, sys
from biasboard.harness.load_audit import install_load_audit
root, seen = sys.argv[1], []
install_load_audit(lambda: [root], seen.append)
sys.path.insert(0, root)
import sub
from biasboard.harness.load_audit import unpicklers_defined_in
print(json.dumps({"results": sub.results, "seen": seen, "pwned": hasattr(builtins, "PWNED"),
                  "defined": unpicklers_defined_in([root])}))
"""


def test_aliased_loads_are_refused_and_named_imports_and_plain_data_are_not(tmp_path):
    """torch is left out to keep this fast; the validation test below covers torch.serialization.load and
    torch.load(weights_only=True)."""
    root = tmp_path / "code"
    root.mkdir()
    (root / "sub.py").write_text(textwrap.dedent(CODE))
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(root)], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["pwned"] is False
    assert out["results"] == {"own_unpickler": "UnpicklingError", "alias": "UnpicklingError",
                              "numpy": "UnpicklingError", "marshal": "ValueError", "no_globals": "ran",
                              "import_after_hook": "ran"}
    seen = out["seen"]
    assert len(seen) == 4, seen
    own, alias, numpy, marshal = seen
    assert own.startswith("unpickling global builtins.exec at code/sub.py:") and "Own(io.BytesIO(blob)).load()" in own
    assert out["defined"] == ["defines an Unpickler subclass: Own.find_class at code/sub.py:22"]
    assert alias.startswith("unpickling global builtins.exec at code/sub.py:") and "l(pickle.dumps(Evil()))" in alias
    assert " via numpy." in numpy and "allow_pickle=True" in numpy
    assert marshal.startswith("marshal.loads(...)") and "code/sub.py:" in marshal
    found = scan_unsafe_loads(root)  # the static scan sees the plain calls, never the alias
    assert [f.split(": ")[1] for f in found] == ["np.load(...)", "pickle.loads(...)"], found


@pytest.mark.slow
def test_hostile_alias_fixtures_fail_validation_naming_the_call_site(tmp_path):
    """The static scan misses both; the worker's audit refuses every load (the payloads never ran: agreement
    would show version "pwned") and the checklist names file, line and call."""
    folders = []
    for name in ("hostile_pickle_alias", "hostile_torch_alias"):
        shutil.copytree(FIXTURES / name, tmp_path / name)
        folders.append(tmp_path / name)
        assert scan_unsafe_loads(tmp_path / name) == []
    pickled, torched = validate_many(folders, smoke=False, timeout=180)
    for checklist in (pickled, torched):
        assert checklist.get("safe_loading").status == "FAIL", checklist.render()
        assert checklist.get("agreement").status == "PASS", checklist.render()
        assert not checklist.passed
    detail = pickled.get("safe_loading").detail
    assert "unpickling global builtins.exec at hostile_pickle_alias/__init__.py:24 `l(BLOB)`: refused" in detail
    assert "hostile_pickle_alias/__init__.py:29 `getattr(__import__(\"pic\" + \"kle\")" in detail
    assert "marshal.loads(...) (code objects from bytes) at hostile_pickle_alias/__init__.py:34" in detail
    assert "defines an Unpickler subclass: Mine.find_class at hostile_pickle_alias/__init__.py:41" in detail
    detail = torched.get("safe_loading").detail
    assert "via torch.serialization.load at hostile_torch_alias/__init__.py:27 " \
           "`fetch(folder / \"evil.pt\", weights_only=False)`" in detail
    assert "weights-only load with globals added by add_safe_globals (builtins.exec) via torch.serialization.load " \
           "at hostile_torch_alias/__init__.py:32" in detail
    assert "plain.pt" not in detail  # a plain weights-only load is fine
    weights = torched.get("weights")
    assert weights.status == "FAIL" and "__init__.py:27" in weights.detail and "__init__.py:32" in weights.detail
