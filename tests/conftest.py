from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from updater_stats import Collector, MemoryBackend, SQLiteBackend, StorageBackend, StoredEvent
from updater_stats.testing import BASE_EVENT

FIXTURES = Path(__file__).parent / "fixtures"

# CI runs more examples than a developer's quick loop; neither depends on timing.
settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


VALID_EVENT: dict[str, Any] = dict(BASE_EVENT)


@pytest.fixture
def make_event() -> Callable[..., dict[str, Any]]:
    """A valid wire event; keyword arguments override or (with None) remove fields."""

    def make(**overrides: Any) -> dict[str, Any]:
        event = dict(VALID_EVENT)
        for key, value in overrides.items():
            if value is _REMOVE:
                event.pop(key, None)
            else:
                event[key] = value
        return event

    return make


class _Remove:
    def __repr__(self) -> str:
        return "REMOVE"


_REMOVE = _Remove()


@pytest.fixture
def remove() -> _Remove:
    """Pass as an override to `make_event` to leave a field out."""
    return _REMOVE


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


BACKENDS = ["memory", "sqlite-file", "sqlite-memory", "postgres", "clickhouse"]


def make_backend(kind: str, tmp_path: Path) -> StorageBackend:
    if kind == "memory":
        return MemoryBackend()
    if kind == "sqlite-file":
        return SQLiteBackend(tmp_path / "stats.sqlite3")
    if kind == "sqlite-memory":
        return SQLiteBackend(":memory:")
    # The server backends: a real PostgreSQL and the ClickHouse engine in-process (chdb),
    # each test in a fresh schema or database of its own.
    from .backends import servers  # noqa: PLC0415 - imports the drivers only when needed

    if kind == "postgres":
        return servers.postgres_backend()
    if kind == "clickhouse":
        return servers.clickhouse_backend()
    raise AssertionError(kind)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageBackend]:
    backend = make_backend(request.param, tmp_path)
    yield backend
    backend.close()


@pytest.fixture
def collector(backend: StorageBackend) -> Collector:
    return Collector(backend)


def stored(backend: StorageBackend) -> list[StoredEvent]:
    """Every event a built-in backend holds, in storage order."""
    return list(backend.events())  # type: ignore[attr-defined]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failure: every backend, framework and extra is installed there.

    On a developer's machine, tests that need a missing server or framework may skip.
    """
    if not os.environ.get("CI") or exitstatus != 0:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped:
        names = ", ".join(report.nodeid for report in skipped[:10])
        reporter.write_line(
            f"CI must run every test, but {len(skipped)} skipped: {names}", red=True
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
