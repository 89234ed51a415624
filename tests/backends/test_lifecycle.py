"""Erasure and retention per backend: what the contract suite cannot see from outside.

How each backend deletes (on disk, in batches, by partition, by TTL), and the
collector's and the module's `forget` / `purge` over them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import updater_stats
from updater_stats import (
    Collector,
    ConfigurationError,
    MemoryBackend,
    SQLiteBackend,
    StorageBackend,
    SupportsForget,
    SupportsPurge,
    WriteResult,
    backend_from_url,
)
from updater_stats.backends.clickhouse import ClickHouseBackend, create_statements, ttl_expression
from updater_stats.backends.postgres import PostgresBackend
from updater_stats.backends.sqlite import _backend as sqlite_module
from updater_stats.testing import stored_event, wire_event

from ..conftest import body, stored
from . import servers

DEVICE = "0b5e5c1a-93b4-4f0e-a3a2-1f7f6f3b2d10"
SECRET_USER = "erase-me-please@example.com"
NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.timezone.utc)


def test_every_built_in_backend_supports_both(backend: StorageBackend):
    assert isinstance(backend, SupportsForget)
    assert isinstance(backend, SupportsPurge)


def test_forget_and_purge_scoped_to_one_app_on_every_backend(backend: StorageBackend):
    old = NOW - dt.timedelta(days=40)
    events = [
        stored_event(received_at=received, app_id=app, device_id=DEVICE, timestamp=n)
        for n, (app, received) in enumerate(
            [("com.a.app", old), ("com.b.app", old), ("com.a.app", NOW), ("com.b.app", NOW)]
        )
    ]
    backend.write(events)
    cutoff = NOW - dt.timedelta(days=30)
    assert backend.purge(older_than=cutoff, app_id="com.a.app") == 1
    assert backend.purge(older_than=cutoff, app_id="com.none") == 0
    assert backend.forget(device_ids=[DEVICE], app_id="com.b.app") == 2
    assert [(e.event.app_id, e.received_at) for e in stored(backend)] == [("com.a.app", NOW)]
    # Unscoped calls, as before the app filter, still reach every app.
    assert backend.forget(device_ids=[DEVICE]) == 1


class _UnscopedBackend(MemoryBackend):
    """A custom backend written before the app filter: forget and purge take no app_id."""

    def forget(self, *, device_ids=(), custom_ids=()):  # type: ignore[override]
        return super().forget(device_ids=device_ids, custom_ids=custom_ids)

    def purge(self, *, older_than):  # type: ignore[override]
        return super().purge(older_than=older_than)


def test_a_backend_without_the_app_filter_still_serves_unscoped_calls():
    backend = _UnscopedBackend()
    collector = Collector(backend, clock=lambda: NOW)
    collector.handle(body(wire_event(device_id=DEVICE)))
    assert collector.purge(older_than=dt.timedelta(days=1)) == 0
    assert collector.forget(device_id=DEVICE) == 1


def test_duplicate_indexes_do_not_change_equality():
    assert WriteResult(1, 1, duplicate_indexes=(1,)) == WriteResult(inserted=1, duplicates=1)


# -- the collector and the module functions ------------------------------------------------------


def test_collector_purge_takes_an_age_from_its_clock():
    backend = MemoryBackend()
    for days in (40, 20, 1):
        Collector(backend, clock=lambda days=days: NOW - dt.timedelta(days=days)).handle(
            body(wire_event(timestamp=days))
        )
    collector = Collector(backend, clock=lambda: NOW)

    assert collector.purge(older_than=dt.timedelta(days=30)) == 1
    assert collector.purge(older_than=NOW - dt.timedelta(days=10)) == 1
    assert [e.event.timestamp for e in backend.events()] == [1]
    with pytest.raises(ValueError, match="positive"):
        collector.purge(older_than=dt.timedelta(0))
    with pytest.raises(ValueError, match="timezone-aware"):
        collector.purge(older_than=dt.datetime(2026, 1, 1))  # noqa: DTZ001


def test_forget_writes_what_is_queued_first():
    backend = MemoryBackend()
    collector = Collector(backend)
    collector.handle(body(wire_event(device_id=DEVICE)))
    assert collector.forget(device_id=DEVICE) == 1
    assert len(backend) == 0


class _WriteOnly:
    def write(self, events: object) -> WriteResult:
        return WriteResult(0)

    def close(self) -> None:
        pass


def test_a_backend_without_forget_or_purge_is_a_configuration_error():
    collector = Collector(_WriteOnly())
    with pytest.raises(ConfigurationError, match="_WriteOnly cannot erase events"):
        collector.forget(device_id=DEVICE)
    with pytest.raises(ConfigurationError, match="_WriteOnly cannot purge events"):
        collector.purge(older_than=dt.timedelta(days=1))


def test_the_module_functions_use_the_default_collector(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setattr("updater_stats._collector._default", None)
    monkeypatch.setenv("UPDATER_STATS_PSEUDONYM_SECRET", "0123456789abcdef0123")
    backend = SQLiteBackend(tmp_path / "default.sqlite3")
    collector = updater_stats.configure(backend)  # privacy from the environment
    try:
        updater_stats.handle(body([wire_event(timestamp=1, custom_id=SECRET_USER)]))
        assert collector.privacy is not None
        assert SECRET_USER not in repr(stored(backend))

        assert updater_stats.forget(custom_id=SECRET_USER) == 1
        updater_stats.handle(body([wire_event(timestamp=2)]))
        assert updater_stats.purge(older_than=dt.timedelta(minutes=1)) == 0
        assert (
            updater_stats.purge(older_than=dt.datetime.now(dt.timezone.utc) + dt.timedelta(1)) == 1
        )
    finally:
        updater_stats._collector._close_default()


# -- SQLite ----------------------------------------------------------------------------------


def test_sqlite_forget_leaves_no_copy_in_the_files(tmp_path: Path):
    path = tmp_path / "stats.sqlite3"
    backend = SQLiteBackend(path)
    events = [stored_event(timestamp=ts, custom_id=SECRET_USER) for ts in range(50)]
    backend.write([*events, stored_event(timestamp=99, custom_id="keep-me")])
    assert SECRET_USER.encode() in b"".join(p.read_bytes() for p in tmp_path.iterdir())

    assert backend.forget(custom_ids=[SECRET_USER]) == 50

    on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert SECRET_USER.encode() not in on_disk  # overwritten, and the WAL emptied
    assert b"keep-me" in on_disk
    backend.close()


def test_sqlite_purges_in_small_transactions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(sqlite_module, "PURGE_CHUNK", 4)
    backend = SQLiteBackend(tmp_path / "stats.sqlite3")
    old = [stored_event(timestamp=ts, received_at=NOW - dt.timedelta(days=100)) for ts in range(9)]
    new = [stored_event(timestamp=100 + ts, received_at=NOW) for ts in range(3)]
    backend.write([*old[:5], *new, *old[5:]])
    statements: list[str] = []
    assert backend._conn is not None
    backend._conn.set_trace_callback(statements.append)

    assert backend.purge(older_than=NOW - dt.timedelta(days=1)) == 9

    assert sum(s.startswith("DELETE") for s in statements) == 3  # 4 + 4 + 1
    assert statements.count("COMMIT") == 3
    assert [e.event.timestamp for e in backend.events()] == [100, 101, 102]
    backend.close()


# -- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture
def postgres() -> Iterator[PostgresBackend]:
    backend = servers.postgres_backend(purge_batch_size=3)
    yield backend
    backend.close()


def test_postgres_purges_in_batches_of_its_own_transactions(postgres: PostgresBackend):
    old = [stored_event(timestamp=ts, received_at=NOW - dt.timedelta(days=100)) for ts in range(8)]
    new = [stored_event(timestamp=100 + ts, received_at=NOW) for ts in range(2)]
    postgres.write([*old, *new])
    with psycopg.connect(postgres.conninfo, autocommit=True) as conn:
        (before,) = conn.execute("SELECT txid_current()").fetchone() or (0,)

        assert postgres.purge(older_than=NOW - dt.timedelta(days=1)) == 8

        (after,) = conn.execute("SELECT txid_current()").fetchone() or (0,)
    # 3 + 3 + 2: three deleting transactions (and this connection's two txid_current calls).
    assert after - before == 4
    assert [e.event.timestamp for e in postgres.events()] == [100, 101]


def test_postgres_url_takes_the_purge_batch_size():
    backend = backend_from_url("postgresql://u@localhost/db?purge_batch_size=500")
    assert isinstance(backend, PostgresBackend)
    assert backend.purge_batch_size == 500
    backend.close()
    with pytest.raises(ValueError, match="purge_batch_size"):
        PostgresBackend("postgresql://u@localhost/db", purge_batch_size=0)


# -- ClickHouse ------------------------------------------------------------------------------


def _rows(backend: ClickHouseBackend, sql: str) -> list[tuple]:
    backend.ping()
    assert backend._client is not None
    return backend._client.query(sql, parameters={"db": backend.database}).result_rows


def test_clickhouse_forget_is_a_mutation_done_when_it_returns():
    backend = servers.clickhouse_backend()
    backend.write([stored_event(timestamp=ts, custom_id=SECRET_USER) for ts in range(3)])
    backend.write([stored_event(timestamp=9, custom_id="keep-me")])

    assert backend.forget(custom_ids=[SECRET_USER]) == 3

    ((command, done),) = _rows(
        backend, "SELECT command, is_done FROM system.mutations WHERE database = {db:String}"
    )
    assert "DELETE WHERE" in str(command)
    assert done == 1
    # Gone from the parts themselves, not hidden behind a lightweight-delete mask.
    assert _rows(
        backend,
        "SELECT count() FROM {db:Identifier}.events SETTINGS apply_deleted_mask = 0",
    ) == [(1,)]
    backend.close()


def test_clickhouse_purge_drops_whole_months_and_rewrites_only_the_last():
    backend = servers.clickhouse_backend()
    moments = [
        dt.datetime(2026, 1, 10, tzinfo=dt.timezone.utc),
        dt.datetime(2026, 2, 10, tzinfo=dt.timezone.utc),
        dt.datetime(2026, 3, 5, tzinfo=dt.timezone.utc),
        dt.datetime(2026, 3, 20, tzinfo=dt.timezone.utc),
    ]
    backend.write([stored_event(timestamp=i, received_at=m) for i, m in enumerate(moments)])

    assert backend.purge(older_than=dt.datetime(2026, 3, 10, tzinfo=dt.timezone.utc)) == 3

    partitions = _rows(
        backend,
        "SELECT DISTINCT partition FROM system.parts "
        "WHERE database = {db:String} AND active ORDER BY partition",
    )
    assert partitions == [("202603",)]
    commands = [
        str(c)
        for (c,) in _rows(
            backend, "SELECT command FROM system.mutations WHERE database = {db:String}"
        )
    ]
    assert len(commands) == 1
    assert "IN PARTITION 202603" in commands[0]
    assert [e.event.timestamp for e in backend.events()] == [3]
    backend.close()


def test_clickhouse_table_ttl_expires_old_events():
    backend = servers.clickhouse_backend(ttl=dt.timedelta(days=90))
    now = dt.datetime.now(dt.timezone.utc)
    backend.write(
        [
            stored_event(timestamp=1, received_at=now - dt.timedelta(days=91)),
            stored_event(timestamp=2, received_at=now - dt.timedelta(days=89)),
        ]
    )
    ((create,),) = _rows(
        backend,
        "SELECT create_table_query FROM system.tables WHERE database = {db:String}",
    )
    assert "TTL toDateTime(received_at) + toIntervalDay(90)" in str(create)

    _rows(backend, "OPTIMIZE TABLE {db:Identifier}.events FINAL")  # merges apply TTLs

    assert [e.event.timestamp for e in backend.events()] == [2]
    backend.close()


def test_clickhouse_ttl_is_added_to_an_existing_table():
    plain = servers.clickhouse_backend()
    plain.write([stored_event()])
    with_ttl = ClickHouseBackend(
        "chdb://memory",
        database=plain.database,
        ttl=dt.timedelta(hours=36),
        batching=plain.batching,
    )
    with_ttl.ping()

    ((create,),) = _rows(
        plain, "SELECT create_table_query FROM system.tables WHERE database = {db:String}"
    )
    assert "TTL toDateTime(received_at) + toIntervalSecond(129600)" in str(create)
    with_ttl.close()
    plain.close()


def test_clickhouse_ttl_in_urls_and_statements():
    backend = backend_from_url("clickhouse://ch.internal/stats?ttl_days=30")
    assert isinstance(backend, ClickHouseBackend)
    assert backend.ttl == dt.timedelta(days=30)
    backend.close()
    with pytest.raises(ConfigurationError):
        backend_from_url("clickhouse://ch.internal/stats?ttl_days=0")
    with pytest.raises(ValueError, match="at least one second"):
        ttl_expression(dt.timedelta(0))
    _, local, distributed = create_statements("s", cluster="main", ttl=dt.timedelta(days=7))
    assert "\nTTL toDateTime(received_at) + toIntervalDay(7)\n" in local
    assert "TTL" not in distributed  # a Distributed table holds no rows to expire
    assert all("TTL" not in s for s in create_statements("s"))
