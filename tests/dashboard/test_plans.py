"""The device inventory's queries on SQLite: each is an index search, none reads the app whole.

Schema 5 added ``events_app_custom`` for the search by ``custom_id``; a schema 4 file gets it
when it is opened."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from updater_stats import SQLiteBackend
from updater_stats._inventory import DashboardData
from updater_stats.backends.sqlite import _backend as sqlite_backend
from updater_stats.reports import reports_for

from ..reports.build import APP, device, event


def plans(path: Path) -> dict[str, str]:
    backend = SQLiteBackend(path)
    backend.write([event("set", "1.0.0", dev=1, custom_id="user-1"), event("app_crash", "1.0.0")])
    data = DashboardData(reports_for(backend))
    captured: dict[str, tuple[str, list[object]]] = {}
    source = data.inventory
    fetch = source._fetch  # type: ignore[attr-defined]

    def spy(statement: tuple[str, list[object]]) -> object:
        captured.setdefault(name, statement)
        return fetch(statement)

    source._fetch = spy  # type: ignore[attr-defined]
    calls = {
        "search": lambda: data.search_devices(APP, "user-1"),
        "device": lambda: data.device(APP, device(1)),
        "timeline": lambda: data.timeline(APP, device(1), offset=50),
        "list": lambda: data.list_devices(APP, after=device(0)),
        "apps": data.apps,
    }
    for name, call in calls.items():  # noqa: B007 - spy reads name
        call()
    data.close()
    backend.close()
    with closing(sqlite3.connect(path)) as conn:
        return {
            name: " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            for name, (sql, params) in captured.items()
        }


def test_every_inventory_query_searches_an_index(tmp_path: Path):
    found = plans(tmp_path / "stats.sqlite3")

    assert set(found) == {"search", "device", "timeline", "list", "apps"}
    for name, plan in found.items():
        assert "SCAN" not in plan, (name, plan)
        assert "USING" in plan, (name, plan)
    assert "events_app_custom (app_id=? AND custom_id=?)" in found["search"]
    assert "(app_id=? AND device_id=?)" in found["search"]


def test_a_schema_4_file_gets_the_custom_id_index(tmp_path: Path):
    path = tmp_path / "v4.sqlite3"
    with closing(sqlite3.connect(path)) as conn, conn:
        for migration in sqlite_backend._MIGRATIONS[:4]:
            migration(conn)
        conn.execute("PRAGMA user_version = 4")
    backend = SQLiteBackend(path)
    backend.write([event("set", "1.0.0", custom_id="user-1")])
    backend.close()

    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == sqlite_backend.SCHEMA_VERSION
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "events_app_custom" in names
