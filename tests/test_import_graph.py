"""The package's import graph keeps its shape: backends below the core's intake machinery,
each backend's insides private to the backends, and no import cycle.

The graph is read from the sources (every ``import``, including those inside functions), so
an import added anywhere is seen without running it. Imports under ``if TYPE_CHECKING:`` are
left out: they never run, and naming a type is no dependency.
"""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "updater_stats"
BACKENDS = f"{PACKAGE}.backends"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted((SRC / PACKAGE).rglob("*.py"))}


MODULES = _modules()


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of *tree* but those under ``if TYPE_CHECKING:``."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and ast.unparse(node.test) in _TYPE_CHECKING:
            todo.extend(node.orelse)
        else:
            todo.extend(ast.iter_child_nodes(node))


_TYPE_CHECKING = {"TYPE_CHECKING", "typing.TYPE_CHECKING"}


def _imports(name: str, path: Path) -> Iterator[str]:
    """The package's modules *name* imports, by absolute name."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import mod` imports the module pkg.mod; `from mod import name`, mod.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        yield from (target for target in targets if target in MODULES)


GRAPH = {name: sorted(set(_imports(name, path))) for name, path in MODULES.items()}


def _reachable(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in GRAPH[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _is_private_to_backends(name: str) -> bool:
    """A module below ``backends`` that is not a public face: ``backends._url``,
    ``backends.sqlite._backend`` and the like."""
    if not name.startswith(f"{BACKENDS}."):
        return False
    return any(part.startswith("_") for part in name.removeprefix(f"{BACKENDS}.").split("."))


def test_the_graph_is_read():
    # A guard for the test itself: it sees the modules and imports that certainly exist,
    # inside functions too, and leaves out the type-only ones.
    assert f"{BACKENDS}.sqlite._backend" in MODULES
    assert f"{PACKAGE}._storage" in GRAPH[f"{BACKENDS}"]
    assert f"{PACKAGE}._writer" in GRAPH[f"{PACKAGE}._collector"]
    assert f"{PACKAGE}.dashboard" in GRAPH[f"{PACKAGE}.cli"]  # inside `serve`
    assert f"{PACKAGE}._counts" not in GRAPH[f"{PACKAGE}._storage"]  # only for its types


@pytest.mark.parametrize("backend", sorted(n for n in MODULES if n.startswith(BACKENDS)))
def test_no_backend_reaches_the_writer_or_the_collector(backend: str):
    reached = _reachable(backend)
    assert not reached & {f"{PACKAGE}._writer", f"{PACKAGE}._collector"}, backend


def test_outside_the_backends_no_module_imports_their_insides():
    offenders = {
        name: [target for target in targets if _is_private_to_backends(target)]
        for name, targets in GRAPH.items()
        if not name.startswith(BACKENDS)
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_no_import_cycle():
    sorter = graphlib.TopologicalSorter(GRAPH)
    try:
        sorter.prepare()
    except graphlib.CycleError as error:
        pytest.fail(f"import cycle: {' -> '.join(error.args[1])}")
