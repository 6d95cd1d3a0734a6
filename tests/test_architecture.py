"""The package's import graph has no cycles, and its leaves import nothing of the package but `types`.

Every import counts, including those inside functions (a lazy import hides a cycle, it does not
remove it); only imports under `if TYPE_CHECKING:` are left out, as they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# the installed package `anycapeval` is the repo's anycapeval/ plus these top-level folders (pyproject.toml)
PACKAGES = {"anycapeval": ROOT / "anycapeval", "anycapeval.acm": ROOT / "acm",
            "anycapeval.leaderboard": ROOT / "leaderboard"}
# the leaves: they import nothing of the package but `types` (which imports nothing), so any module
# may import them — the nouns, the task file's fields, and the file readers everything shares
LEAVES = ("anycapeval.types", "anycapeval.files", "anycapeval.task_config")
# The one lazy import allowed to close a loop: `anycapeval.__getattr__` (PEP 562) imports the Python
# API on first use of `anycapeval.evaluate`, and the API's modules read `anycapeval.__version__`.
LAZY_PACKAGE_ATTRIBUTES = {("anycapeval", "anycapeval.api"), ("anycapeval", "anycapeval.leaderboard")}


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join([package, *parts])] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The package modules `module` imports (a `from X import name` counts X.name when that is a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # `from . import mod` imports mod; `from . import name` imports .
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in known else target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    out = set()
    for name in found:
        # `import anycapeval.scorers.mia` also runs anycapeval.scorers; keep the deepest known module
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name != module:
            out.add(name)
    return out


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {m: _imports(m, p, set(modules)) for m, p in modules.items()}
    for importer, imported in LAZY_PACKAGE_ATTRIBUTES:
        graph[importer].discard(imported)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def test_the_package_has_no_import_cycle():
    assert cycles(import_graph()) == []


def test_the_graph_sees_imports_inside_functions_and_of_submodules():
    graph = import_graph()
    assert "anycapeval.scorers.kpd" in graph["anycapeval.scorers"]  # `from .kpd import ...`
    assert "anycapeval.api" in graph["anycapeval.cli"]  # `from .api import run_results` inside cmd_run


@pytest.mark.parametrize("leaf", LEAVES)
def test_leaves_import_nothing_of_the_package_but_types(leaf):
    assert import_graph()[leaf] <= {"anycapeval.types"}
    assert import_graph()["anycapeval.types"] == set()


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
