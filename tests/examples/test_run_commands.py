"""The sync examples' run commands, from their headers, serve a real request on 127.0.0.1.

The ASGI examples' commands run in test_uvicorn.py; aiohttp's is its ``__main__`` block on a
fixed port, and its app is served on a real socket by aiohttp's TestServer in the other tests.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from updater_stats import SQLiteBackend

from ..conftest import fixture_bytes, load_fixture, stored
from .conftest import Server

httpx = pytest.importorskip("httpx")


@pytest.mark.parametrize(("name", "framework"), [("flask_app", "flask"), ("django_app", "django")])
def test_run_command_serves_the_stats_route(
    serve: Callable[[str, Path], Server], tmp_path: Path, name: str, framework: str
) -> None:
    pytest.importorskip(framework)
    database = tmp_path / "stats.sqlite3"
    server = serve(name, database)

    health = httpx.get(server.url, timeout=10.0)
    answer = httpx.post(
        server.url,
        content=fixture_bytes("ios_batch"),
        headers={"Content-Type": "application/json"},
        timeout=10.0,
    )
    server.stop()

    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert answer.status_code == 200
    assert [r["status"] for r in answer.json()["results"]] == ["ok"] * 3
    backend = SQLiteBackend(database)
    try:
        timestamps = [e.event.timestamp for e in stored(backend)]
    finally:
        backend.close()
    assert timestamps == [e["timestamp"] for e in load_fixture("ios_batch")]
