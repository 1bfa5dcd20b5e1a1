"""Outside packages register methods through the `biasboard.methods` entry point: installed, listed, runnable.

The example package is installed with pip into a private target folder (put on PYTHONPATH for the subprocesses)
rather than into the shared virtual environment, so tests running in parallel never see it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "example_plugin"


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("plugin")
    src = root / "src"
    shutil.copytree(FIXTURE, src)  # building writes egg-info next to the sources: keep the repo clean
    target = root / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                           "--quiet", "--target", str(target), str(src)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]),
               HF_HUB_OFFLINE="1")
    return env, target


def biasboard(env, *args):
    return subprocess.run([sys.executable, "-m", "biasboard.harness.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def test_entry_point_method_is_listed(plugin_env):
    env, target = plugin_env
    assert list(target.glob("biasboard_example_plugin-*.dist-info/entry_points.txt"))
    proc = biasboard(env, "list", "methods")
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("example_zero_bias"))
    assert "weights" in line and "mlm,clm,encoder" in line
    assert "example_zero_bias" not in biasboard(dict(os.environ), "list", "methods").stdout  # not installed here


@pytest.mark.slow
def test_entry_point_method_runs_and_validates(plugin_env, tmp_path):
    env, target = plugin_env
    proc = biasboard(env, "eval", "--model", "zoo:splade-tiny", "--task", "crows_pairs:pll_unmodified",
                     "--method", "example_zero_bias", "--max-examples", "10", "--n-bootstrap", "100", "--json",
                     "--no-cache")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["method"] == "example_zero_bias"
    assert result["provenance"]["lineage"] == ["example_zero_bias"]
    assert result["metrics"]["stereotype_score"]["n"] == 10
    proc = biasboard(env, "validate", str(target / "biasboard_example_plugin"), "--no-smoke")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "imported as" in proc.stdout and "PASSED" in proc.stdout
