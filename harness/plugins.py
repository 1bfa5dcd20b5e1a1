"""The parts above the engine, found by name at run time: the site builder and the packaged matrices.

The engine never imports ``leaderboard`` (dependencies run one way); like tasks and methods, these arrive through
entry points of the ``biasboard.site`` group, so another distribution can ship its own site builder or matrices.
"""
from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any, Callable

from biasboard.harness.errors import BiasboardError

SITE_GROUP = "biasboard.site"


def _entry_point(name: str) -> Any:
    for ep in importlib.metadata.entry_points(group=SITE_GROUP):
        if ep.name == name:
            return ep.load()
    raise BiasboardError(f"no {name!r} entry point in group {SITE_GROUP!r}: is biasboard installed "
                         f"(pip install -e .)?")


def site_builder() -> Callable[[Path, Path], Path]:
    """``build(store_path, out_dir) -> index.html``."""
    return _entry_point("build")


def matrices_dir() -> Path:
    """The folder of the packaged matrices (quick, official, downstream, ...)."""
    return Path(_entry_point("matrices"))


def packaged_matrix(name: str) -> Path:
    """The packaged matrix ``name`` (``quick`` -> ``.../matrices/quick.yaml``)."""
    path = matrices_dir() / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in matrices_dir().glob("*.yaml")))
        raise BiasboardError(f"no packaged matrix {name!r}; packaged matrices: {known}")
    return path
