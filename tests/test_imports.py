"""The package's import graph, read from the source: no module imports one that imports it back, and none
imports another's private names.

Every ``import`` between ``helpers`` modules counts, also those inside functions (they run later, but a cycle
there still means two modules that cannot be read, tested or moved one without the other).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "helpers"


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                edges.add(node.module)
                edges.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                edges.update(a.name for a in node.names)
        # the top-level package only re-exports lazily (``helpers.__getattr__``): an edge to it is no import
        graph[name] = {e for e in edges if e in modules and e not in (name, "helpers")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_of_helpers_imports_one_that_imports_it_back() -> None:
    graph = import_graph()
    assert "helpers.walks.folder" in graph and "helpers.render" in graph
    assert cycles(graph) == []


def private_imports(source: str) -> list[str]:
    """``module.name`` for every private name (``_x``, not dunders) imported from a ``helpers`` module, at any
    depth of the source (inside functions too)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and (
                node.module == "helpers" or node.module.startswith("helpers.")):
            found += [f"{node.module}.{a.name}" for a in node.names
                      if a.name.startswith("_") and not a.name.startswith("__")]
    return found


def test_the_private_import_finder_finds_one_inside_a_function() -> None:
    source = ("from helpers.devices import make_generator as _g, _check_seed\n"
              "def f():\n    from helpers.media import _normalise_pil_mode\n    from os import _exit\n")
    assert private_imports(source) == ["helpers.devices._check_seed", "helpers.media._normalise_pil_mode"]


def test_no_module_of_helpers_imports_another_modules_private_names() -> None:
    found = {str(p.relative_to(ROOT)): private_imports(p.read_text(encoding="utf-8"))
             for p in sorted(PACKAGE.rglob("*.py"))}
    assert {path: names for path, names in found.items() if names} == {}


def test_frames_know_nothing_of_walk_folders() -> None:
    graph = import_graph()
    assert not any(e.startswith("helpers.walks") for e in graph["helpers.render"])


def test_the_command_line_lives_in_helpers_walks() -> None:
    run = subprocess.run([sys.executable, "-m", "helpers.walks", "--help"], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert run.returncode == 0 and "WALK" in run.stdout.upper()
    old = subprocess.run([sys.executable, "-m", "helpers.render", "walk.yaml"], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert old.returncode == 1 and "python -m helpers.walks" in old.stderr


def test_the_public_api_is_listed_once_and_loads_nothing_at_import() -> None:
    import helpers

    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    checked = {a.asname or a.name: node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
               and node.module and node.module.startswith("helpers.") for a in node.names}
    # the explicit imports (for readers and type checkers) name exactly the lazily loaded exports
    assert {n: f"helpers.{m}" for n, m in helpers._EXPORTS.items()} == checked
    assert helpers.__all__ == sorted(helpers._EXPORTS) + ["__version__"]
    for name in ("atomic_write", "describe_device", "speed_options"):  # plumbing stays in its module
        assert name not in helpers.__all__
    run = subprocess.run([sys.executable, "-c", "import sys, helpers; print('torch' in sys.modules)"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.stdout.strip() == "False"


def test_what_a_pipeline_is_lives_in_one_leaf() -> None:
    graph = import_graph()
    assert graph["helpers.pipeline_info"] <= {"helpers.checks"}
    assert "helpers.pipeline_info" in graph["helpers.render"] and "helpers.pipeline_info" in graph["helpers.walks.folder"]
