"""The API reference's machinery: the docstring check (scripts/docs_docstrings.py) and the
attrs signatures (scripts/griffe_attrs.py) that docs/api/ is built with."""

from __future__ import annotations

import importlib
import inspect
import textwrap
from pathlib import Path

import attrs
import griffe
import pytest
from scripts.docs_docstrings import MODULES, load, missing_docstrings

UNDOCUMENTED = '''
"""A package with some of everything."""

__all__ = ["CONST", "NOTED", "Thing", "bare", "documented"]

CONST = 1

#: A constant with a Sphinx comment.
NOTED = 2


def documented():
    """Says what it does."""


def bare():
    pass


class Thing:
    """Documented itself."""

    field = 3

    def run(self):
        pass

    @property
    def size(self):
        return 0

    def kept(self):
        """Documented."""

    def _private(self):
        pass

    def test_a_sentence(self):
        pass


def not_exported():
    pass
'''


def test_every_public_name_of_the_package_has_a_docstring():
    assert missing_docstrings(load(), MODULES) == []


def test_the_check_names_each_undocumented_public_name(tmp_path: Path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text(UNDOCUMENTED)
    (tmp_path / "pkg" / "loose.py").write_text('"""No __all__ here."""\n\ndef f():\n    pass\n')
    missing = missing_docstrings(load("pkg", tmp_path), ["pkg", "pkg.loose"])
    assert missing == [
        "pkg.CONST",
        "pkg.Thing.run",
        "pkg.Thing.size",
        "pkg.bare",
        "pkg.loose (no __all__: its public names are unknown)",
    ]


def test_the_check_sees_names_inherited_from_a_private_base(tmp_path: Path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "_base.py").write_text(
        'class Base:\n    """Base."""\n\n    def shared(self):\n        pass\n'
    )
    (tmp_path / "pkg" / "__init__.py").write_text(
        textwrap.dedent('''
            """Re-exports."""
            from ._base import Base

            __all__ = ["Child"]


            class Child(Base):
                """A public class whose method comes from a private one."""
        ''')
    )
    assert missing_docstrings(load("pkg", tmp_path), ["pkg"]) == ["pkg.Child.shared"]


def _attrs_classes() -> list[object]:
    root = load()
    found: dict[str, tuple[type, griffe.Class]] = {}
    for dotted in MODULES:
        module = importlib.import_module(dotted)
        static = root if dotted == root.path else root[dotted.removeprefix("updater_stats.")]
        for name in module.__all__:
            value = getattr(module, name)
            if isinstance(value, type) and attrs.has(value):
                target = static[name].final_target if static[name].is_alias else static[name]
                found[target.path] = (value, target)
    return [pytest.param(*found[path], id=path) for path in sorted(found)]


@pytest.mark.parametrize(("runtime", "static"), _attrs_classes())
def test_attrs_signatures_in_the_reference_are_the_real_ones(runtime: type, static: griffe.Class):
    real = [
        (p.name, p.kind.name.lower(), p.default is not inspect.Parameter.empty)
        for p in inspect.signature(runtime).parameters.values()
    ]
    shown = [
        (p.name, p.kind.name, p.default is not None)
        for p in static.members["__init__"].parameters
        if p.name != "self"
    ]
    assert shown == real
