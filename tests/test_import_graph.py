"""The import graph runs one way: no cycles between polybuild's packages or modules, the
lowest layers (errors, _version, platforms) import nothing above them, and only the CLI
imports the package root (the public API) or the CLI.

Every import statement counts, wherever it stands: an import inside a function or under
`if TYPE_CHECKING:` hides a dependency from the interpreter, not from the design, so it cannot
break a cycle. The graph is read from the source with `ast`; nothing is imported.
"""

from __future__ import annotations

import ast
import functools
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import polybuild

SOURCE = Path(polybuild.__file__).parent
ROOT = "polybuild"

# The bottom of the graph and what each part of it may import (besides itself).
LOWEST: Mapping[str, frozenset[str]] = {
    "_version": frozenset(),
    "errors": frozenset(),
    "platforms": frozenset({"errors"}),
    "tarstream": frozenset(),
}
# Who may import the package root (`from polybuild import __version__`) and the CLI.
TOP: Mapping[str, frozenset[str]] = {
    ROOT: frozenset({"cli", "__main__"}),
    "cli": frozenset({"__main__"}),
}


@dataclass(frozen=True, slots=True)
class Import:
    """One import statement's edge: `importer` (a module) imports `imported` (a module)."""

    importer: str
    imported: str
    line: int

    def __str__(self) -> str:
        return f"{self.importer}:{self.line} imports {self.imported}"


def module_names() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    names: dict[str, Path] = {}
    for path in sorted(SOURCE.rglob("*.py")):
        parts = [ROOT, *path.relative_to(SOURCE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imports_of(name: str, path: Path, modules: Mapping[str, Path]) -> Iterator[Import]:
    """The polybuild modules one module imports, from every import statement in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            # `from pkg import mod` depends on the module; `from pkg import name` on pkg.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if target == ROOT or target.startswith(ROOT + "."):
                yield Import(name, target, node.lineno)


@functools.cache
def all_imports() -> tuple[Import, ...]:
    modules = module_names()
    return tuple(edge for name, path in modules.items() for edge in imports_of(name, path, modules))


def part(module: str) -> str:
    """The top-level part a module belongs to: `image` for polybuild.image.store, the root
    package for `polybuild` itself, `errors` for polybuild.errors."""
    return module.split(".")[1] if "." in module else ROOT


def cycles(edges: Mapping[str, Mapping[str, Import]]) -> list[list[str]]:
    """One cycle (a list of nodes, first repeated last) per strongly connected component."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def connect(node: str) -> None:  # Tarjan's algorithm; the graph is small
        index[node] = low[node] = len(index)
        stack.append(node)
        for successor in sorted(edges.get(node, {})):
            if successor not in index:
                connect(successor)
                low[node] = min(low[node], low[successor])
            elif successor in stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component: list[str] = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return [_cycle_through(component, edges) for component in components]


def _cycle_through(component: list[str], edges: Mapping[str, Mapping[str, Import]]) -> list[str]:
    """A shortest path from the component's first node back to itself, inside the component."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for successor in sorted(edges.get(node, {})):
                if successor == start:
                    return [*paths[node], start]
                if successor in members and successor not in paths:
                    paths[successor] = [*paths[node], successor]
                    following.append(successor)
        frontier = following
    raise AssertionError(f"no cycle through {component}")


def describe(cycle: list[str], edges: Mapping[str, Mapping[str, Import]]) -> str:
    steps = [str(edges[a][b]) for a, b in itertools.pairwise(cycle)]
    return " -> ".join(cycle) + "\n    " + "\n    ".join(steps)


def module_graph(imports: tuple[Import, ...]) -> dict[str, dict[str, Import]]:
    graph: dict[str, dict[str, Import]] = {}
    for edge in imports:
        if edge.imported != edge.importer:
            graph.setdefault(edge.importer, {}).setdefault(edge.imported, edge)
    return graph


def package_graph(imports: tuple[Import, ...]) -> dict[str, dict[str, Import]]:
    graph: dict[str, dict[str, Import]] = {}
    for edge in imports:
        source, target = part(edge.importer), part(edge.imported)
        if source != target:
            graph.setdefault(source, {}).setdefault(target, edge)
    return graph


def test_no_cycles_between_packages() -> None:
    graph = package_graph(all_imports())
    found = cycles(graph)
    assert not found, "import cycles between packages:\n" + "\n".join(
        describe(cycle, graph) for cycle in found
    )


def test_no_cycles_between_modules() -> None:
    graph = module_graph(all_imports())
    found = cycles(graph)
    assert not found, "import cycles between modules:\n" + "\n".join(
        describe(cycle, graph) for cycle in found
    )


def test_the_lowest_layers_import_nothing_above_them() -> None:
    wrong = [
        str(edge)
        for edge in all_imports()
        if part(edge.importer) in LOWEST
        and part(edge.imported) != part(edge.importer)
        and part(edge.imported) not in LOWEST[part(edge.importer)]
    ]
    assert not wrong, "the bottom of the graph imports upwards:\n" + "\n".join(wrong)


def test_only_the_cli_imports_the_top() -> None:
    wrong = [
        str(edge)
        for edge in all_imports()
        if part(edge.imported) in TOP
        and part(edge.importer) != part(edge.imported)
        and part(edge.importer) not in TOP[part(edge.imported)]
    ]
    assert not wrong, "\n".join(wrong)


def test_the_graph_is_read() -> None:
    """Guards the reader itself: known edges of each kind are found."""
    edges = {(edge.importer, edge.imported) for edge in all_imports()}
    assert ("polybuild.platforms", "polybuild.platforms.specifier") in edges  # absolute
    assert ("polybuild.binfmt.handlers", "polybuild.syscalls") in edges  # from pkg import mod
    assert ("polybuild.cli", "polybuild") in edges  # the package root
    assert ("polybuild", "polybuild.imagebuild.api") in edges  # inside a function
    assert ("polybuild", "polybuild.imagebuild.request") in edges  # under TYPE_CHECKING
