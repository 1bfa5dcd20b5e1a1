"""The floor plan holds: the engine imports nothing above it, its modules form no import cycle, and the light
commands stay light (no torch or scipy for --help or building the site)."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ABOVE_ENGINE = ("biasboard.tasks", "biasboard.submissions", "biasboard.leaderboard")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return "biasboard." + ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports included), as absolute names."""
    tree = ast.parse(path.read_text(), filename=str(path))
    own = _module_name(path) if ROOT in path.parents else path.stem
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def engine_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in (ROOT / "harness").rglob("*.py")}
    return {name: {m for m in _imports(path) if m in files and m != name} | {m for m in _imports(path) if m.startswith(ABOVE_ENGINE)}
            for name, path in files.items()}


def test_engine_imports_nothing_above_it():
    offenders = sorted(f"{mod} imports {dep}" for mod, deps in engine_graph().items() for dep in deps
                       if dep.startswith(ABOVE_ENGINE))
    assert offenders == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _is_package_parent(a: str, b: str) -> bool:
    return b.startswith(a + ".") or a.startswith(b + ".")


def test_engine_modules_form_no_import_cycle():
    # A package's __init__ re-exporting its submodules is not a cycle of meaning; every other edge counts,
    # function-level imports included (hiding a cycle inside a function does not remove it).
    graph = {mod: {d for d in deps if not _is_package_parent(mod, d)} for mod, deps in engine_graph().items()}
    assert _cycles(graph) == []


def test_the_graph_walker_sees_function_level_imports(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from biasboard.tasks.seat import Seat\n    import biasboard.leaderboard.site\n")
    assert {"biasboard.tasks.seat", "biasboard.leaderboard.site"} <= _imports(src)
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


PROBE = """
import json, sys
from biasboard.harness.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(m for m in ("torch", "scipy", "transformers", "biasboard.tasks", "biasboard.submissions")
                        if m in sys.modules)), file=sys.stderr)
"""


def _heavy_imports(args: list[str], cwd: Path) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=cwd, timeout=120)
    return json.loads(proc.stderr.strip().splitlines()[-1])


def test_help_imports_neither_torch_nor_scipy(tmp_path):
    assert _heavy_imports(["--help"], tmp_path) == []


@pytest.mark.parametrize("args", [["list", "tasks"], ["list", "methods"]])
def test_listing_plugins_works_from_a_clean_process(tmp_path, args):
    proc = subprocess.run([sys.executable, "-m", "biasboard.harness.cli", *args], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr


def test_building_the_site_imports_neither_torch_nor_scipy(tmp_path):
    from tests.leaderboard_fixtures import quick_board, write_store  # real-shaped records, no model run

    store = tmp_path / "results.sqlite"
    write_store(store, *quick_board())
    assert _heavy_imports(["leaderboard", "build", "--store", str(store), "--out", str(tmp_path / "site")],
                          tmp_path) == []
    assert (tmp_path / "site" / "index.html").is_file()
