"""The public contract suites, run unchanged against every built-in backend and the docs' example.

The `backend` fixture of tests/conftest.py is parametrized over all built-in backends; the
reports contract runs on those that can be reported on.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from updater_stats import StorageBackend
from updater_stats.testing import BackendContract, ForgetContract, PurgeContract, ReportsContract

from ..conftest import BACKENDS, make_backend
from ..doc_blocks import ROOT, blocks


class TestEveryBuiltInBackend(BackendContract, ForgetContract, PurgeContract):
    pass


class TestEveryBuiltInBackendsReports(ReportsContract):
    """The SQL backends' own read sides, and `MemoryBackend` through the reference."""

    # An in-memory SQLite database cannot be opened a second time, for its read side.
    @pytest.fixture(params=[name for name in BACKENDS if name != "sqlite-memory"])
    def backend(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageBackend]:
        backend = make_backend(request.param, tmp_path)
        yield backend
        backend.close()


@pytest.fixture(scope="module")
def docs_backend_class(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """`JsonLinesBackend`, from the code blocks of the "Write your own backend" page."""
    namespace: dict[str, Any] = {"__name__": "docs_custom_backends"}
    here = Path.cwd()
    os.chdir(tmp_path_factory.mktemp("docs"))  # the page's example writes a file
    try:
        page = ROOT / "docs" / "custom-backends.md"
        for code in blocks(page, "python"):
            exec(compile(code, str(page), "exec"), namespace)
    finally:
        os.chdir(here)
    # The page's own test class is the one this file runs.
    assert issubclass(namespace["TestJsonLinesBackend"], BackendContract)
    assert issubclass(namespace["TestJsonLinesBackend"], ReportsContract)
    return namespace["JsonLinesBackend"]


class TestTheDocsExampleBackend(BackendContract, ReportsContract):
    @pytest.fixture
    def backend(self, docs_backend_class: Any, tmp_path: Path) -> Iterator[Any]:
        backend = docs_backend_class(tmp_path / "events.jsonl")
        yield backend
        backend.close()
