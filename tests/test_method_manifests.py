"""One source of truth per method: the class is the truth and every built-in ``manifest.yaml`` must agree with it.

Why: the manifests and the classes had drifted (six manifests stated a causal-LM step budget of 8 while the code
used 4). The check is the validator's own ``agreement_problems`` (name, version, kind, families, hooks, parameter
names and defaults), plus the family defaults that parameter descriptions quote, plus the template that
``biasboard new-method`` copies.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from biasboard.harness.registry import METHODS
from biasboard.harness.submission import load_manifest
from biasboard.harness.submission_worker import agreement_problems

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = sorted(p.parent for p in (ROOT / "submissions").glob("*/manifest.yaml") if p.parent.name != "_template")
FAMILY_DEFAULT = re.compile(r"family default \(([^)]*)\)")
DEFAULT_TABLES = {"steps": "AUTO_STEPS", "max_length": "AUTO_MAX_LENGTH"}


def test_every_built_in_method_with_a_manifest_is_checked():
    names = {load_manifest(folder)["name"] for folder in FOLDERS}
    assert len(FOLDERS) >= 16 and names <= set(METHODS.names())


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_manifest_agrees_with_class(folder):
    manifest = load_manifest(folder)
    cls = METHODS.get(manifest["name"])
    assert cls.__module__ == f"biasboard.submissions.{folder.name}", "the manifest names another folder's method"
    assert agreement_problems(cls, manifest) == []


def _code_table(cls, table: str) -> dict:
    """The family-default table (``AUTO_STEPS`` ...) of the fine-tuning code ``cls`` uses: in the module of a base
    class, or in the module that defines the ``train_config`` the method's module calls."""
    modules = [sys.modules[c.__module__] for c in cls.__mro__]
    modules += [sys.modules[m.train_config.__module__] for m in modules if hasattr(m, "train_config")]
    for module in modules:
        if hasattr(module, table):
            return getattr(module, table)
    raise AssertionError(f"{cls.__name__}: no {table} in the code it uses")


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_quoted_family_defaults_match_the_code(folder):
    manifest = load_manifest(folder)
    cls = METHODS.get(manifest["name"])
    for name, spec in manifest["params"].items():
        quoted = FAMILY_DEFAULT.search(spec.get("description", ""))
        if not quoted:
            continue
        stated = {family: int(n) for family, n in re.findall(r"(\w+) (\d+)", quoted.group(1))}
        assert stated, f"params.{name}: unreadable family defaults {quoted.group(0)!r}"
        code = _code_table(cls, DEFAULT_TABLES[name])
        assert stated == {family: code[family] for family in stated}, f"params.{name}.description"


def test_a_drifted_manifest_is_caught():
    """The check can fail: a changed default, a missing family or an extra hook are each named."""
    manifest = load_manifest(ROOT / "submissions" / "perturb")
    cls = METHODS.get("perturb")
    drifted = dict(manifest, families=manifest["families"][:-1], hooks=["apply", "transform_data"],
                   params={"sigma": dict(manifest["params"]["sigma"], default=0.05)})
    problems = " ".join(agreement_problems(cls, drifted))
    assert "families" in problems and "hooks" in problems and "params.sigma.default" in problems


def test_new_method_template_agrees(tmp_path):
    """What ``biasboard new-method`` writes passes the same check (in a subprocess: registering the copy here
    would add a method to this process's registry)."""
    subprocess.run([sys.executable, "-m", "biasboard.harness.cli", "new-method", "drift_probe", "--dir",
                    str(tmp_path)], check=True, capture_output=True, cwd=tmp_path)
    script = (
        "import sys; from pathlib import Path\n"
        "from biasboard.harness.commands.submission import import_method\n"
        "from biasboard.harness.submission import load_manifest\n"
        "from biasboard.harness.submission_worker import agreement_problems\n"
        "folder = Path(sys.argv[1]); manifest = load_manifest(folder)\n"
        "print('|'.join(agreement_problems(import_method(folder, manifest['name']), manifest)) or 'AGREE')\n")
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "drift_probe")], capture_output=True,
                         text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "AGREE"
