"""The package's imports form no circle and run one way: every ``import`` of every file under
``src/seesaw_losses``, those inside functions included, read with ``ast`` (relative imports resolved), as a graph of
the package's modules. Imports under ``if TYPE_CHECKING:`` (annotations only, never run) are not edges."""

import ast
from pathlib import Path
from typing import Dict, List, Sequence, Set

import pytest

import seesaw_losses

ROOT = Path(seesaw_losses.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.AST, importer: str, is_package: bool, modules: Set[str]) -> List[str]:
    """The modules an import statement imports: ``import a.b`` -> ``a.b``; ``from a import b`` -> ``a.b`` when
    it is a module, else ``a`` (relative forms resolved against ``importer``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    module = node.module or ""
    if node.level:
        base = importer.split(".") if is_package else importer.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        module = ".".join(base + ([module] if module else []))
    return [f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules else module for alias in node.names]


def _type_checking_only(tree: ast.AST) -> Set[ast.AST]:
    """The import statements inside ``if TYPE_CHECKING:`` blocks."""
    guarded = [node for node in ast.walk(tree) if isinstance(node, ast.If)
               and "TYPE_CHECKING" in (getattr(node.test, "id", None), getattr(node.test, "attr", None))]
    return {inner for node in guarded for statement in node.body for inner in ast.walk(statement)}


def import_graph(annotations: bool = False) -> Dict[str, Set[str]]:
    """``{module: the package's modules it imports}``, with the imports under ``if TYPE_CHECKING:`` when
    ``annotations``. Its own packages do not count: they are always imported before it (``from . import
    DataError`` reads a package already there), and importing a submodule counts as importing that module only."""
    files = {_module_name(path): path for path in ROOT.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        annotations_only = set() if annotations else _type_checking_only(tree)
        named = {target for node in ast.walk(tree) if node not in annotations_only
                 for target in _imported(node, name, path.name == "__init__.py", set(files))}
        graph[name] = {target for target in named
                       if target in files and target != name and not name.startswith(target + ".")}
    return graph


def circles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """One circle (``[a, b, ..., a]``) per strongly connected group of more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    groups: List[Set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_path_within(group, graph) for group in groups]


def _path_within(group: Set[str], graph: Dict[str, Set[str]]) -> List[str]:
    """A circle through the group's first module, by breadth-first search inside the group."""
    start = min(group)
    parents = {start: None}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & group):
            if nxt == start:
                path = [node]
                while parents[path[-1]] is not None:
                    path.append(parents[path[-1]])
                return [start] + path[::-1][1:] + [start] if path[-1] == start else path[::-1] + [start]
            if nxt not in parents:
                parents[nxt] = node
                queue.append(nxt)
    return sorted(group)


def test_the_package_has_no_import_circle():
    found = circles(import_graph())
    assert not found, "import circles:\n" + "\n".join(" -> ".join(circle) for circle in found)


def test_the_circle_finder_finds_and_prints_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert circles(graph) == [["a", "b", "c", "a"]]


def test_the_graph_sees_function_level_and_relative_imports():
    graph = import_graph()
    assert "seesaw_losses.functional._triton" in graph["seesaw_losses.functional._fused"]   # inside a function
    assert "seesaw_losses.registry" in graph["seesaw_losses.modules.focal"]                  # from ..registry


def test_the_registry_and_the_triton_engine_are_leaves_of_the_losses():
    graph = import_graph()
    assert graph["seesaw_losses.registry"] == set()
    losses = {name for name in graph if name.startswith("seesaw_losses.functional.") and
              not name.rsplit(".", 1)[1].startswith("_")}
    assert not graph["seesaw_losses.functional._triton"] & losses


EXPERIMENTS = "seesaw_losses.experiments"


def _imports_within(graph: Dict[str, Set[str]], room: str) -> Dict[str, Set[str]]:
    """``{module of room: the experiments modules it imports}`` for the modules of ``room`` (a module or package
    under experiments)."""
    prefix = f"{EXPERIMENTS}.{room}"
    return {name: {target for target in targets if target.startswith(EXPERIMENTS + ".")}
            for name, targets in graph.items() if name == prefix or name.startswith(prefix + ".")}


def _rooms_reached(imports: Dict[str, Set[str]], rooms: Sequence[str]) -> List[str]:
    return sorted(f"{name} -> {target}" for name, targets in imports.items() for target in targets
                  for room in rooms if target == f"{EXPERIMENTS}.{room}" or target.startswith(f"{EXPERIMENTS}.{room}."))


@pytest.mark.parametrize("room, never", [
    ("run", ["api", "tuning", "trainers", "data", "models", "evaluation", "reporting", "losses", "statistics"]),
    ("result", ["api", "tuning", "trainers", "data", "models", "evaluation", "reporting", "losses"]),
    ("trainers", ["api", "tuning", "reporting", "statistics"]),
    ("data", ["api", "tuning", "trainers", "models", "evaluation", "reporting", "run"]),
    ("models", ["api", "tuning", "trainers", "data", "evaluation", "reporting"]),
    ("evaluation", ["api", "tuning", "trainers", "data", "models", "reporting"]),
    ("reporting", ["api", "data", "trainers", "models", "tuning"]),
    ("statistics", ["api", "trainers", "data", "models", "evaluation", "reporting"]),
])
def test_the_comparison_runs_one_way(room, never):
    """data -> model -> trainer -> evaluation -> statistics -> reporting: a room never imports what runs after it,
    nor the orchestration (``api``) that ties them; the report draws from results and artifacts, not the data."""
    imports = _imports_within(import_graph(), room)
    assert imports, f"no module {room!r} under {EXPERIMENTS}"
    assert not _rooms_reached(imports, never)


def test_the_experiments_have_no_circle_even_through_annotations():
    """A module that annotates with another's classes imports it for the reader and the type checker: the
    report's annotations name the results, which the report never calls back."""
    graph = import_graph(annotations=True)
    inside = {name: targets & {t for t in graph if t.startswith(EXPERIMENTS + ".")}
              for name, targets in graph.items() if name.startswith(EXPERIMENTS + ".")}
    found = circles(inside)
    assert not found, "import circles:\n" + "\n".join(" -> ".join(circle) for circle in found)


def test_the_experiments_import_nothing_from_the_benchmarks():
    graph = import_graph(annotations=True)
    reached = sorted(f"{name} -> {target}" for name, targets in graph.items() if name.startswith(EXPERIMENTS + ".")
                     for target in targets if target.startswith("seesaw_losses.bench"))
    assert not reached


def test_the_direction_check_sees_an_edge_that_runs_back():
    imports = {f"{EXPERIMENTS}.reporting.plots": {f"{EXPERIMENTS}.data.patches"}}
    assert _rooms_reached(imports, ["data"]) == [f"{EXPERIMENTS}.reporting.plots -> {EXPERIMENTS}.data.patches"]
