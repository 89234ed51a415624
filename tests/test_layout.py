"""The test suite's own layout: test modules share helpers through helper modules and conftest.py,
never by importing one another."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).parent


def imported_test_modules(source: str, package: tuple[str, ...]) -> list[str]:
    """The suite's `test_*` modules that *source*, a module of *package*, imports (dotted)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) + 1 - node.level]) if node.level else []
            module = [*base, *(node.module.split(".") if node.module else [])]
            # `from . import test_x` imports a module too; and a `test_*` function imported
            # into a test module would run twice.
            targets = [[*module, alias.name] for alias in node.names]
        elif isinstance(node, ast.Import):
            targets = [alias.name.split(".") for alias in node.names]
        else:
            continue
        found += [
            ".".join(target)
            for target in targets
            if target[0] == TESTS.name and any(part.startswith("test_") for part in target[1:])
        ]
    return found


@pytest.mark.parametrize(
    ("source", "package", "expected"),
    [
        ("from .test_wire import json_values", ("tests",), ["tests.test_wire.json_values"]),
        ("from ..test_docs import ROOT", ("tests", "backends"), ["tests.test_docs.ROOT"]),
        (
            "from .test_recount import QUERIES",
            ("tests", "reports"),
            ["tests.reports.test_recount.QUERIES"],
        ),
        ("from . import test_wire", ("tests",), ["tests.test_wire"]),
        ("import tests.test_server", ("tests",), ["tests.test_server"]),
        ("from tests.test_asgi import call", ("tests", "examples"), ["tests.test_asgi.call"]),
        ("def f():\n    from .test_server import Server", ("tests",), ["tests.test_server.Server"]),
        ("from .wire_strategies import json_values", ("tests",), []),
        ("from ..backends import servers", ("tests", "reports"), []),
        ("from aiohttp.test_utils import TestClient", ("tests",), []),
        ("import test_utils", ("tests",), []),
    ],
)
def test_the_check_finds_imports_of_test_modules_in_every_form(source, package, expected):
    assert imported_test_modules(source, package) == expected


def test_no_module_of_the_suite_imports_a_test_module():
    offenders = [
        f"{path.relative_to(TESTS.parent)} imports {name}"
        for path in sorted(TESTS.rglob("*.py"))
        for name in imported_test_modules(
            path.read_text(), path.relative_to(TESTS.parent).parent.parts
        )
    ]
    assert not offenders, (
        "share helpers through a helper module or conftest.py instead:\n" + "\n".join(offenders)
    )
