"""The docs build's check that every public name has a docstring (a MkDocs hook).

"Public" is what the API reference shows: every name in the ``__all__`` of a
module in `MODULES` and, for classes, their public methods and properties,
inherited ones included. Fields of attrs classes and enum members are
described in their class docstring (its ``Attributes`` section), so they need
none of their own; nor do the ``test_*`` methods of the contract suites, whose
names are the sentences pytest reports. A ``#:`` comment above a constant is
its docstring, as the reference renders it (griffe-sphinx).

``mkdocs build`` calls `on_config` before anything is built and stops, naming
each name without a docstring; ``python -m scripts.docs_docstrings`` prints
the same list.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import griffe

ROOT = Path(__file__).resolve().parent.parent

#: The modules the API reference (docs/api/) renders, each by its ``__all__``.
MODULES = (
    "updater_stats",
    "updater_stats.backends",
    "updater_stats.backends.sqlite",
    "updater_stats.backends.postgres",
    "updater_stats.backends.clickhouse",
    "updater_stats.reports",
    "updater_stats.privacy",
    "updater_stats.dashboard",
    "updater_stats.asgi",
    "updater_stats.wsgi",
    "updater_stats.testing",
)


def load(package: str = "updater_stats", search_path: Path = ROOT / "src") -> griffe.Module:
    """Read *package*'s sources the way the API reference does, without importing them."""
    loader = griffe.GriffeLoader(
        extensions=griffe.load_extensions(
            "griffe_sphinx", str(ROOT / "scripts" / "griffe_attrs.py")
        ),
        search_paths=[str(search_path)],
    )
    root = loader.load(package)
    loader.resolve_aliases(external=False)
    assert isinstance(root, griffe.Module)  # noqa: S101 - a package name loads a module
    return root


def _target(obj: Any) -> Any:
    return obj.final_target if obj.is_alias else obj


def _needs_docstring(name: str, member: Any) -> bool:
    if name.startswith(("_", "test_")):
        return False
    return bool(member.is_function or "property" in member.labels)


def missing_docstrings(root: griffe.Module, modules: Iterable[str]) -> list[str]:
    """The dotted names, among *modules*' exports, that have no docstring."""
    missing: list[str] = []
    for dotted in modules:
        module = root if dotted == root.path else root[dotted.removeprefix(root.path + ".")]
        if module.exports is None:
            missing.append(f"{dotted} (no __all__: its public names are unknown)")
            continue
        for export in module.exports:
            name = str(export)
            obj = _target(module[name])
            if not obj.docstring:
                missing.append(f"{dotted}.{name}")
            if obj.is_class:
                missing.extend(
                    f"{dotted}.{name}.{member_name}"
                    for member_name, member in obj.all_members.items()
                    if _needs_docstring(member_name, _target(member))
                    and not _target(member).docstring
                )
    return missing


def _message(missing: Sequence[str]) -> str:
    return "public names without a docstring:\n" + "\n".join(f"  {name}" for name in missing)


def on_config(config: Any) -> Any:
    """MkDocs hook: stop the build if a public name has no docstring."""
    from mkdocs.exceptions import PluginError  # noqa: PLC0415 - only MkDocs calls this.

    missing = missing_docstrings(load(), MODULES)
    if missing:
        raise PluginError(_message(missing))
    return config


if __name__ == "__main__":
    found = missing_docstrings(load(), MODULES)
    print(_message(found) if found else "every public name has a docstring")
    sys.exit(1 if found else 0)
