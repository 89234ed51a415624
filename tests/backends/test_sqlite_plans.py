"""Schema 6 moved the key's uniqueness to an index led by the device time: no query is worse.

Every statement the SQLite backend and its read sides run (writes, the reports, the device
inventory, reading, forget, purge) is traced while they answer, then planned by SQLite on the
schema 6 file and on the same file with the schema 5 key index in its place: the plans are the
same, but for the one that used the old index as a covering index of ``(app_id, device_id)``,
which ``events_app_device`` is too. So no statement reads more of the table than it did.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from updater_stats import SQLiteBackend
from updater_stats._inventory import DashboardData
from updater_stats.reports import ReportQuery, reports_for

from ..helpers import traced
from ..reports.build import APP, NOW, device, event

_KINDS = ("SELECT", "WITH", "INSERT", "DELETE", "UPDATE")


def run_everything(backend: SQLiteBackend) -> None:
    known = event("set", "1.0.0", dev=1, custom_id="user-1")
    backend.write([known, event("app_crash", "1.0.0", dev=2), event("get", "1.0.0", ts=None)])
    backend.write([known, event("set", "1.0.0", app_id="com.other.app")])  # _find_duplicates
    data = DashboardData(reports_for(backend))
    for query in (ReportQuery(app_id=APP), ReportQuery(app_id=APP, since=NOW - dt.timedelta(7))):
        data.versions(query)
        data.version(query, "1.0.0")
        data.adoption(query)
        data.active(query)
        data.daily(query)
        data.funnel(query)
        data.latency(query)
        data.daily_rates(query)
        data.failing_devices(query, "1.0.0")
    data.apps()
    data.search_devices(APP, "user-1")
    data.search_devices(APP, device(1))
    data.list_devices(APP)
    data.list_devices(APP, after=device(0))
    data.device(APP, device(1))
    data.timeline(APP, device(1), offset=0)
    data.close()
    list(backend.events())
    list(backend.events(app_id=APP, since=NOW - dt.timedelta(days=1)))
    backend.forget(device_ids=[device(9)])
    backend.forget(custom_ids=["nobody"], app_id=APP)
    backend.purge(older_than=NOW - dt.timedelta(days=400))
    backend.purge(older_than=NOW - dt.timedelta(days=400), app_id=APP)


def plans(path: Path, statements: list[str]) -> dict[str, str]:
    with closing(sqlite3.connect(path)) as conn:
        return {
            sql: " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
            for sql in statements
        }


def test_no_statement_reads_more_than_with_the_schema_5_key_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = tmp_path / "s.sqlite3"
    with traced(monkeypatch) as statements:
        backend = SQLiteBackend(path)
        backend.ping()
        statements.clear()  # the schema's creation: only the work's statements count
        run_everything(backend)
        backend.close()
    work = [sql for sql in dict.fromkeys(statements) if sql.lstrip().upper().startswith(_KINDS)]
    assert len(work) > 30, work
    assert {sql.split()[0] for sql in work} == {"SELECT", "WITH", "INSERT", "DELETE"}, work
    now = plans(path, work)
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("DROP INDEX events_device_ts_key")
        conn.execute(
            "CREATE UNIQUE INDEX events_app_device_key ON events (app_id, device_id, event_key)"
        )
    before = plans(path, work)

    changed = {sql: (before[sql], now[sql]) for sql in work if before[sql] != now[sql]}
    for sql, (old, new) in changed.items():
        assert old.replace("events_app_device_key", "events_app_device") == new, (sql, old, new)
    # The device search, by device_id and by custom_id, and forget's DELETE of a device's events.
    assert len(changed) == 3, changed
    assert not any("events_app_device_key" in plan for plan in now.values())
