"""biasboard installs beside other distributions that own the generic names ``tasks`` and ``leaderboard``.

Why: the project's folders are ``harness/``, ``tasks/``, ``submissions/`` and ``leaderboard/``; installed, they
must live under ``biasboard.`` so that another package called ``tasks`` neither breaks biasboard nor is broken by
it. The test builds fresh virtual environments offline: no pip inside them, and this environment's installed
packages (torch, setuptools, pip, ...) reached through a ``.pth`` line pointing at a folder of links to them, with
biasboard's own installation left out. It installs an unrelated distribution that provides ``tasks`` and
``leaderboard``, then biasboard from a copy of this checkout, once as a regular (non-editable) install and once
editable, and checks both imports and the CLI.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ("harness", "tasks", "submissions", "leaderboard", "setup.py", "pyproject.toml", "README.md")
UNRELATED_PYPROJECT = """\
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "unrelated-generic-names"
version = "1.0"

[tool.setuptools]
packages = ["tasks", "leaderboard"]
"""
CHECK = """\
import tasks, leaderboard
assert tasks.ORIGIN == leaderboard.ORIGIN == "unrelated", (tasks.__file__, leaderboard.__file__)
import biasboard.harness
from biasboard.harness.registry import TASKS
cls = TASKS.get("crows_pairs")
import biasboard.tasks
assert biasboard.tasks.__file__ != tasks.__file__
print(biasboard.harness.__file__)
print(cls.__module__)
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return env | {"PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONNOUSERSITE": "1"}


def _run(args, cwd: Path) -> subprocess.CompletedProcess:
    out = subprocess.run([str(a) for a in args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"{' '.join(map(str, args))}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def _links_to_installed(tmp: Path) -> Path:
    """A folder of links to this environment's installed packages, biasboard's own installation left out."""
    farm = tmp / "installed"
    farm.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        name = entry.name.lower()
        if name.startswith(("biasboard", "__editable__")) or name.endswith(".pth") or name == "__pycache__":
            continue
        (farm / entry.name).symlink_to(entry)
    return farm


def _venv(where: Path, installed: Path) -> Path:
    """A fresh venv without pip that sees ``installed`` through a .pth line; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120)
    python = where / "bin" / "python"
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], where).stdout
    (Path(purelib.strip()) / "installed-packages.pth").write_text(f"{installed}\n")
    return python


def _unrelated(tmp: Path) -> Path:
    src = tmp / "unrelated"
    for package in ("tasks", "leaderboard"):
        (src / package).mkdir(parents=True)
        (src / package / "__init__.py").write_text('ORIGIN = "unrelated"\n')
    (src / "pyproject.toml").write_text(UNRELATED_PYPROJECT)
    return src


def _copy_of_checkout(tmp: Path) -> Path:
    """The files a build reads, copied, so that building writes nothing into the checkout."""
    dest = tmp / "biasboard-src"
    dest.mkdir()
    for name in SOURCE:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, dest / name)
    return dest


@pytest.mark.slow
@pytest.mark.parametrize("editable", [False, True], ids=["regular", "editable"])
def test_installs_beside_an_unrelated_tasks_package(tmp_path, editable):
    installed = _links_to_installed(tmp_path)
    python = _venv(tmp_path / "venv", installed)
    pip = [python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q"]
    _run(pip + [_unrelated(tmp_path)], tmp_path)
    source = _copy_of_checkout(tmp_path)
    _run(pip + (["-e"] if editable else []) + [source], tmp_path)

    work = tmp_path / "elsewhere"  # not the checkout: '' on sys.path must not find its tasks/ folder
    work.mkdir()
    harness_file, task_module = _run([python, "-c", CHECK], work).stdout.split()
    expected = source / "harness" if editable else tmp_path / "venv"
    assert Path(harness_file).resolve().is_relative_to(expected.resolve()), harness_file
    assert task_module == "biasboard.tasks.crows_pairs"

    listing = _run([tmp_path / "venv" / "bin" / "biasboard", "list", "tasks"], work).stdout
    assert "crows_pairs:pll_unmodified" in listing and "seat:mean" in listing
    assert _run([python, "-c", "import tasks; print(tasks.ORIGIN)"], work).stdout.strip() == "unrelated"
