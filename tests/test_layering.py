"""The package's layering: every import between edgeprune's units (a sub-package or a top-level
module) goes downward in LAYERS, and no modules import each other in a circle. The imports are
read from the sources (ast), lazy imports inside functions and TYPE_CHECKING imports included;
nothing is imported."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "edgeprune"

# Top to bottom, written once: a unit may import its own modules and units of lower layers only.
# Units in one layer may import each other (the layering test still refuses a circle).
LAYERS = (
    ("cli", "edgeprune", "testing"),  # the command line, the package's callable stages, test helpers
    ("search",),
    ("profile",),
    ("compile",),
    ("quantize",),
    ("prune",),
    ("task", "taskdata", "taskfile"),
    ("models",),
    ("reference", "artefact", "targets", "errors", "_atomic", "_lazy", "_modelargs", "_stage"),
)
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _known(name: str, modules: set[str]) -> str:
    """The longest prefix of `name` that is one of edgeprune's modules."""
    while name not in modules:
        name = name.rpartition(".")[0]
    return name


def _imports(path: Path, name: str, modules: set[str]) -> set[str]:
    """The edgeprune modules that the module `name` at `path` imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[:len(package.split(".")) - node.level + 1], *filter(None, [base])])
            targets = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {_known(t, modules) for t in targets if t.split(".")[0] == "edgeprune"}
    return found - {name}


def _graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: _imports(path, name, set(paths)) for name, path in paths.items()}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of imports in `graph`, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


GRAPH = _graph()


def test_every_unit_has_a_layer():
    assert {_unit(m) for m in GRAPH} == set(RANK)


def test_imports_go_downward():
    upward = sorted(f"{m} imports {t}, from a higher layer"
                    for m, targets in GRAPH.items() for t in targets
                    if _unit(m) != _unit(t) and RANK[_unit(t)] < RANK[_unit(m)])
    assert not upward, "\n".join(upward)


def test_no_circular_imports_between_units():
    units: dict[str, set[str]] = {}
    for m, targets in GRAPH.items():
        units.setdefault(_unit(m), set()).update(_unit(t) for t in targets if _unit(t) != _unit(m))
    assert _cycle(units) is None, " -> ".join(_cycle(units))


def test_no_circular_imports_between_modules():
    assert _cycle(GRAPH) is None, " -> ".join(_cycle(GRAPH))


@pytest.mark.parametrize("graph, circle", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
    ({"a": {"b", "c"}, "b": {"c"}, "c": set()}, None),
])
def test_the_circle_finder_finds_circles(graph, circle):
    assert _cycle(graph) == circle


def test_the_walk_sees_every_kind_of_import():
    """Top-level, lazy (inside a function), relative-free `from edgeprune import x` and
    TYPE_CHECKING imports, each seen on a module known to have one."""
    assert "edgeprune.targets" in GRAPH["edgeprune.compile.api"]
    assert "edgeprune.reference" in GRAPH["edgeprune.profile.commands"]  # inside _run
    assert "edgeprune.search" in GRAPH["edgeprune"]
    assert "edgeprune.search.candidate" in GRAPH["edgeprune.search.results"]  # TYPE_CHECKING
