"""Helpers shared by the leaderboard, regress and baseline subcommands."""
from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Any, Callable

from harness.errors import BiasboardError


def default_store() -> Path:
    """The store ``biasboard run`` writes by default."""
    from harness.paths import output_dir
    from harness.runner import default_store_path

    return default_store_path(output_dir())


def load_store(path: str | Path | None) -> tuple[Path, list[dict[str, Any]], Callable[[str], list[dict]]]:
    """(path, all records (finished and failed, each with ``status``), examples lookup) of an existing store."""
    from harness.store import Store

    path = Path(path) if path else default_store()
    if not path.is_file():
        raise BiasboardError(f"results store {path} does not exist; run `biasboard run` first or pass --store")
    try:
        store = Store(path)
        records = store.records(status=None)
    except sqlite3.DatabaseError as exc:
        raise BiasboardError(f"{path} is not a biasboard results store (SQLite): {exc}") from None
    return path, records, store.examples


def guarded(func: Callable[[Any], int]) -> Callable[[Any], int]:
    """Print a BiasboardError as one line on stderr and exit 2, never a traceback."""
    def run(args) -> int:
        try:
            return func(args)
        except BiasboardError as exc:
            print(f"biasboard: error: {exc}", file=sys.stderr)
            return 2
    run.__name__ = func.__name__
    run.__doc__ = func.__doc__
    return run
