"""The docs' JSON-lines example backend (docs/custom-backends.md), installed the way a user
ships one: a module holding the page's code, and the metadata pip writes for a package whose
entry point registers the ``jsonl`` storage URL scheme. It has ``write``, ``close`` and
``events`` and nothing else: no SQL, no read side of its own."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from updater_stats.backends import URL_SCHEMES_GROUP

PAGE = Path(__file__).parent.parent / "docs" / "custom-backends.md"
MODULE = "docs_jsonl_backend"


def backend_code() -> str:
    """The page's first Python block: the backend class and its imports."""
    found = re.search(r"^```python\n(.*?)^```$", PAGE.read_text(), re.MULTILINE | re.DOTALL)
    assert found is not None
    assert "class JsonLinesBackend" in found.group(1)
    return found.group(1)


def install_jsonl_scheme(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Install the page's backend in *folder* as a package registering ``jsonl://``; return
    the backend class (``jsonl:///abs/path.jsonl`` names a file)."""
    site = folder / "site"
    site.mkdir()
    (site / f"{MODULE}.py").write_text(backend_code())
    info = site / "docs_jsonl_backend-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: docs-jsonl-backend\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text(
        f"[{URL_SCHEMES_GROUP}]\njsonl = {MODULE}:JsonLinesBackend.from_url\n"
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, MODULE, raising=False)
    importlib.invalidate_caches()
    return importlib.import_module(MODULE).JsonLinesBackend
