"""The suite's own modules import each other without circles, and none imports a test module
(conftest.py or a test_*.py: what several need lives in a helper module such as support.py): read
from the source with `ast`, imports inside functions included (a lazy import only hides a circle)."""
from __future__ import annotations

import ast
from pathlib import Path

from support import ROOT

E2E = ROOT / "e2e"
MODULES = {p.stem: p for p in [*E2E.glob("*.py"), *(E2E / "tests").glob("*.py")]}
TEST_MODULES = {name for name in MODULES if name == "conftest" or name.startswith("test_")}


def imports_of(path: Path) -> set[str]:
    """The suite's modules that `path` imports (`import a.b` and `from a import b` count as `a`)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & MODULES.keys()


def cycle_in(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of `graph` as a path that ends where it starts, or None (depth-first search)."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        path.append(node)
        for target in sorted(graph[node]):
            if found := visit(target):
                return found
        path.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        if found := visit(node):
            return found
    return None


GRAPH = {name: imports_of(path) for name, path in MODULES.items()}


def test_the_cycle_finder_finds_a_circle_and_passes_a_tree():
    assert cycle_in({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle_in({"a": {"a"}}) == ["a", "a"]
    assert cycle_in({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_suites_modules_import_each_other_without_circles():
    assert {"support", "conftest", "ecs_sidecar", "test_imports"} <= MODULES.keys()
    assert cycle_in(GRAPH) is None, " -> ".join(cycle_in(GRAPH))


def test_no_module_imports_a_test_module():
    wrong = {name: sorted(imported & TEST_MODULES) for name, imported in GRAPH.items()}
    assert not {name: mods for name, mods in wrong.items() if mods}
