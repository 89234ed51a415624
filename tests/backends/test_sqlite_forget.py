"""`SQLiteBackend.forget` searches its indexes: a DELETE holds the file's write lock until it
ends, and devices' writes wait for it, so it must never read the whole table."""

from __future__ import annotations

import itertools
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from updater_stats import SQLiteBackend, StoredEvent

from ..helpers import traced
from ..reports.build import device, event

APPS = ("com.example.app", "com.example.other", "org.example.third")


def population() -> list[StoredEvent]:
    """Devices 1 to 4 in each app, user ids "u<n>", "" (no user) or absent."""
    users = {1: "u1", 2: "u2", 3: ""}  # device 4 sends none
    return [
        event(action, "1.0.0", dev=dev, app_id=app, ts=None, **custom)
        for app, dev, action in itertools.product(APPS, (1, 2, 3, 4), ("set", "download_complete"))
        for custom in [{"custom_id": users[dev]} if dev in users else {}]
    ]


def remaining(path: Path) -> set[tuple[str, str, str | None]]:
    """(app, device, user) of the events left: each stands for its device's two events."""
    with closing(sqlite3.connect(path)) as conn:
        return set(conn.execute("SELECT app_id, device_id, custom_id FROM events"))


@pytest.fixture
def backend(tmp_path: Path) -> SQLiteBackend:
    backend = SQLiteBackend(tmp_path / "stats.sqlite3")
    backend.write(population())
    return backend


@pytest.mark.parametrize(
    ("asked", "gone"),
    [
        # Without an app: every app's events of the device or user, and no other.
        ({"device_ids": [device(1)]}, lambda app, dev, custom: dev == device(1)),
        ({"custom_ids": ["u2"]}, lambda app, dev, custom: custom == "u2"),
        (
            {"device_ids": [device(1), device(4)], "custom_ids": ["u2"]},
            lambda app, dev, custom: dev in {device(1), device(4)} or custom == "u2",
        ),
        # With an app: that app's only.
        (
            {"device_ids": [device(2)], "custom_ids": ["u1"], "app_id": APPS[1]},
            lambda app, dev, custom: app == APPS[1] and custom in {"u1", "u2"},
        ),
        # "" is a value like any other for the library (the command line refuses it).
        ({"custom_ids": [""]}, lambda app, dev, custom: custom == ""),
        (
            {"custom_ids": ["", "u1"], "app_id": APPS[2]},
            lambda app, dev, custom: app == APPS[2] and custom in {"", "u1"},
        ),
        ({"device_ids": [device(99)], "custom_ids": ["nobody"]}, lambda app, dev, custom: False),
    ],
)
def test_forget_deletes_what_it_is_asked_and_nothing_else(backend, asked, gone):
    before = remaining(Path(backend.path))

    deleted = backend.forget(**asked)

    expected = {row for row in before if not gone(*row)}
    assert remaining(Path(backend.path)) == expected
    assert deleted == 2 * (len(before) - len(expected))  # two events of each device and app


@pytest.mark.parametrize(
    "asked",
    [
        {"device_ids": [device(1)]},
        {"device_ids": [device(1), device(2)], "app_id": APPS[0]},
        {"custom_ids": ["u1"]},
        {"custom_ids": ["u1", "u2"], "app_id": APPS[1]},
        {"device_ids": [device(3)], "custom_ids": ["u1", "u2"]},
    ],
)
def test_forget_never_reads_the_whole_table(backend, asked, monkeypatch):
    with traced(monkeypatch) as statements:
        backend.close()  # opened again while traced
        reopened = SQLiteBackend(backend.path)
        assert reopened.forget(**asked) > 0
        reopened.close()
    deletes = [sql for sql in statements if "DELETE FROM events" in sql]
    assert deletes
    with closing(sqlite3.connect(backend.path)) as conn:
        for sql in deletes:
            plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
            assert "SCAN events" not in plan, (sql, plan)
            # Straight to the device's or the user's rows, not through all of an app's.
            searched = "device_id" if "device_id IN" in sql else "custom_id"
            assert any(f"(app_id=? AND {searched}=?)" in step for step in plan), (sql, plan)
