"""Contract tests over EVERY registered method: it has a manifest, and `biasboard validate` passes on it.

Validation runs the real checklist (manifest, import, hook signatures, params, a smoke cell on a tiny model of a
family the method supports, the same seed twice, offline, safetensors-only) in a subprocess per method.
"""
from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from biasboard.harness.registry import METHODS
from biasboard.harness.submission import load_manifest, validate

NAMES = METHODS.names()
TEMPLATE = Path(__file__).resolve().parents[1] / "submissions" / "_template"


def folder_of(name: str) -> Path:
    return Path(inspect.getfile(METHODS.get(name))).parent


def test_the_template_is_not_an_official_method():
    assert "my_method" not in NAMES
    assert load_manifest(TEMPLATE)["name"] == "my_method"


@pytest.mark.parametrize("name", NAMES)
def test_every_method_has_a_manifest_that_matches_its_name(name):
    manifest = load_manifest(folder_of(name))
    assert manifest["name"] == name
    assert manifest["version"] == str(METHODS.get(name).version)


@pytest.mark.parametrize("name", [n for n in NAMES if callable(getattr(METHODS.get(n), "represent", None))])
def test_representation_hooks_are_declared(name):
    """A method with ``represent`` says so: kind ``representation`` and the hook in its manifest (the runner
    installs it on the final hidden states; tests/test_represent_hook.py checks the installation)."""
    assert METHODS.get(name).kind == "representation"
    assert "represent" in load_manifest(folder_of(name))["hooks"]


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_every_method_validates_and_runs_its_smoke_cell(name):
    """Each method in its own subprocess and time limit, so one slow or hanging method cannot sink the others."""
    checklist = validate(folder_of(name), timeout=600)
    assert checklist.method == name, checklist.render()
    assert checklist.passed, checklist.render()
    assert checklist.get("smoke").ok and checklist.get("determinism").ok, checklist.render()
