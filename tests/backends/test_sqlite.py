from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from updater_stats import (
    BackendError,
    Collector,
    SQLiteBackend,
    StoredEvent,
    WriteResult,
    parse_event,
)
from updater_stats.backends._sql import QueryBuilder
from updater_stats.backends.sqlite import SCHEMA_VERSION
from updater_stats.backends.sqlite import _backend as sqlite_backend
from updater_stats.backends.sqlite import _transaction as sqlite_transaction
from updater_stats.backends.sqlite._reports import SQLITE
from updater_stats.reports import ReportQuery

from ..conftest import VALID_EVENT, body, fixture_bytes
from ..helpers import legacy_key

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.timezone.utc)


def stored_event(**overrides) -> StoredEvent:
    event = parse_event({**VALID_EVENT, **overrides})
    return StoredEvent.from_event(event, NOW)


def test_file_uses_wal_and_a_schema_version(tmp_path: Path):
    path = tmp_path / "s.sqlite3"
    backend = SQLiteBackend(path)
    backend.write([stored_event()])
    backend.close()

    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6
    indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert indexes == {
        "events_app_received",
        "events_app_action_received",
        "events_app_device",
        "events_device_ts_key",
        "events_app_custom",
    }
    conn.close()


def test_the_wal_is_checkpointed_every_8000_pages(tmp_path: Path):
    backend = SQLiteBackend(tmp_path / "s.sqlite3")
    assert backend._connect().execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 8000
    backend.close()


def test_a_version_1_file_is_migrated_with_its_rows_ids_and_keys(tmp_path: Path):
    path = tmp_path / "v1.sqlite3"
    old_rows = [stored_event(timestamp=i) for i in range(5)] + [stored_event(timestamp=None)]
    with closing(sqlite3.connect(path)) as conn, conn:
        sqlite_backend._v1(conn)  # a file as the first schema left it, with rows in it
        conn.execute("PRAGMA user_version = 1")
        insert_before_v4(conn, old_rows)
    with closing(sqlite3.connect(path)) as conn:
        (v1_table,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'events'").fetchone()
    assert "event_key        TEXT UNIQUE" in v1_table

    migrated = SQLiteBackend(path)
    result = migrated.write([stored_event(timestamp=3), stored_event(timestamp=99)])

    assert (result.inserted, result.duplicates) == (1, 1)  # keys stored under v1 still count
    assert [e.event.timestamp for e in migrated.events()] == [0, 1, 2, 3, 4, None, 99]
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        ids = [row[0] for row in conn.execute("SELECT id FROM events ORDER BY id")]
        assert ids == [1, 2, 3, 4, 5, 6, 7]  # storage order survives the rebuild
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert "events_v1" not in tables
    migrated.close()


def test_a_version_2_file_loses_only_the_unused_version_index(tmp_path: Path):
    path = tmp_path / "v2.sqlite3"
    rows = [stored_event(timestamp=i) for i in range(3)]
    with closing(sqlite3.connect(path)) as conn, conn:
        sqlite_backend._v1(conn)
        sqlite_backend._v2(conn)  # a file as schema version 2 left it, with rows in it
        conn.execute("PRAGMA user_version = 2")
        insert_before_v4(conn, rows)

    migrated = SQLiteBackend(path)
    assert migrated.write(rows[:1]) == WriteResult(inserted=0, duplicates=1)
    assert [e.key for e in migrated.events()] == [e.key for e in rows]
    migrated.close()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "events_app_version" not in names
    assert {"events_device_ts_key", "events_app_received", "events_app_device"} <= names


def insert_before_v4(conn: sqlite3.Connection, events: list[StoredEvent]) -> None:
    """Insert rows as schema versions 1 to 3 hold them: no `truncated` column."""
    columns = sqlite_backend._COLUMNS[:-1]
    assert sqlite_backend._COLUMNS[-1] == "truncated"
    conn.executemany(
        f"INSERT INTO events ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
        [row[:-1] for row in sqlite_backend._rows(events)],
    )


def test_a_version_3_file_gains_optional_fields_and_cut_notes(tmp_path: Path):
    path = tmp_path / "v3.sqlite3"
    rows = [stored_event(timestamp=i, metadata={"n": str(i)}) for i in range(3)]
    rows.append(stored_event(timestamp=None))
    with closing(sqlite3.connect(path)) as conn, conn:
        for migration in (sqlite_backend._v1, sqlite_backend._v2, sqlite_backend._v3):
            migration(conn)  # a file as schema version 3 left it, with rows in it
        conn.execute("PRAGMA user_version = 3")
        insert_before_v4(conn, rows)
        # ... and one of them keyed as releases before content keys did.
        conn.execute("UPDATE events SET event_key = ? WHERE id = 1", [legacy_key(rows[0].event)])
    with closing(sqlite3.connect(path)) as conn:
        (v3_table,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'events'").fetchone()
    assert "platform         TEXT NOT NULL" in v3_table
    assert "truncated" not in v3_table

    migrated = SQLiteBackend(path)
    bare = StoredEvent.from_event(
        parse_event(
            {k: v for k, v in VALID_EVENT.items() if k not in {"platform", "plugin_version"}}
        ),
        NOW,
    )
    cut = attrs.evolve(stored_event(timestamp=50), truncated=("custom_id", "metadata.stack"))
    # The same batch re-sent after the upgrade: the event keyed the old way is stored again
    # (its new key is not the old one); the others were keyed the new way and are known.
    resent = migrated.write(rows[:3])
    assert (resent.inserted, resent.duplicates) == (1, 2)
    assert migrated.write([bare, cut]) == WriteResult(inserted=2, duplicates=0)

    read = list(migrated.events())
    migrated.close()
    assert [e.event.to_wire() for e in read] == [
        *(e.event.to_wire() for e in rows),
        rows[0].event.to_wire(),
        bare.event.to_wire(),
        cut.event.to_wire(),
    ]
    assert read[0].key == legacy_key(rows[0].event)
    assert [e.truncated for e in read] == [(), (), (), (), (), (), ("custom_id", "metadata.stack")]
    assert read[5].event.platform is None
    assert read[5].event.plugin_version is None
    with closing(sqlite3.connect(path)) as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM events ORDER BY id")]
        assert ids == list(range(1, 8))  # storage order survives the rebuild
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "events_v3" not in names
    assert {"events_device_ts_key", "events_app_received", "events_app_device"} <= names


def test_a_version_5_file_keeps_every_row_and_still_refuses_duplicates(tmp_path: Path):
    path = tmp_path / "v5.sqlite3"
    rows = [
        *(stored_event(timestamp=i, metadata={"n": str(i)}) for i in range(4)),
        stored_event(timestamp=None),
        stored_event(timestamp=None),  # keyless twins: both kept, as every release kept them
        stored_event(timestamp=2, app_id="com.other.app"),  # another app, the same time
        stored_event(timestamp=2, device_id="7d7c1d0c-2b44-4f7e-9d4c-2f5b1a3c9e01"),
    ]
    with pytest.MonkeyPatch.context() as patch:  # written as a schema 5 release writes
        patch.setattr(sqlite_backend, "_MIGRATIONS", sqlite_backend._MIGRATIONS[:5])
        patch.setattr(sqlite_backend, "SCHEMA_VERSION", 5)
        v5 = SQLiteBackend(path)
        assert v5.write(rows).inserted == len(rows)
        v5.close()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 5
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "events_app_device_key" in names

    migrated = SQLiteBackend(path)
    # Every keyed event again, alone and in a write of several apps: each one a duplicate.
    assert migrated.write(rows[:4]) == WriteResult(inserted=0, duplicates=4)
    resent = migrated.write([rows[6], rows[0], stored_event(timestamp=99)])
    assert (resent.inserted, resent.duplicates, resent.duplicate_indexes) == (1, 2, (0, 1))
    assert migrated.write(rows[7:]) == WriteResult(inserted=0, duplicates=1)
    # Keyless events are never duplicates, before the upgrade or after.
    assert migrated.write(rows[4:5]) == WriteResult(inserted=1, duplicates=0)

    read = list(migrated.events())
    migrated.close()
    assert read[: len(rows)] == rows
    assert [e.event.timestamp for e in read[len(rows) :]] == [99, None]
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        ids = [row[0] for row in conn.execute("SELECT id FROM events ORDER BY id")]
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert ids == list(range(1, len(rows) + 3))
    assert "events_app_device_key" not in names
    assert "events_device_ts_key" in names


def test_no_report_query_needs_the_dropped_version_index(tmp_path: Path):
    # Schema 3 dropped (app_id, version_name, action) because no report used it: if one
    # would, SQLite's plan for it on a schema 2 file names the index.
    path = tmp_path / "v2.sqlite3"
    with closing(sqlite3.connect(path)) as conn, conn:
        sqlite_backend._v1(conn)
        sqlite_backend._v2(conn)
    builder = QueryBuilder(SQLITE)
    since = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    queries = [ReportQuery(app_id="com.example.app"), ReportQuery(app_id="a.b", since=since)]
    statements = []
    for query in queries:
        statements += [
            builder.versions(query, ["6.0.0"]),
            builder.failures(query, ["6.0.0"]),
            builder.daily(query, ["6.0.0"]),
            builder.rollbacks(query),
            builder.replacements(query),
            builder.funnel(query),
            builder.running(query),
            builder.active_total(query),
            builder.active_by_day(query),
            builder.latency(query),
            builder.download_fail_plugins(query),
        ]
    with closing(sqlite3.connect(path)) as conn:
        for sql, params in statements:
            plan = " ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            assert "events_app_version" not in plan, sql


def test_every_field_is_stored_in_its_own_column(tmp_path: Path):
    path = tmp_path / "s.sqlite3"
    backend = SQLiteBackend(path)
    event = stored_event(
        defaultChannel="beta",
        custom_id="user-1",
        install_source="testflight",
        key_id="k1",
        channel="c",
        metadata={"duration_ms": "1500"},
        stats_mode="batch",
    )
    backend.write([event])
    backend.close()

    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    row = conn.execute("SELECT * FROM events").fetchone()
    assert row["default_channel"] == "beta"
    assert row["custom_id"] == "user-1"
    assert row["device_ts"] == VALID_EVENT["timestamp"]
    assert row["received_at"] == int(NOW.timestamp() * 1000)
    assert row["action_known"] == 1
    assert row["event_key"] == event.key
    assert json.loads(row["metadata"]) == {"duration_ms": "1500"}
    assert json.loads(row["extras"]) == {"stats_mode": "batch"}


def test_events_survive_reopening_and_read_back_losslessly(tmp_path: Path):
    path = tmp_path / "s.sqlite3"
    first = SQLiteBackend(path)
    written = [
        stored_event(timestamp=1, metadata={}, custom_id=""),
        stored_event(timestamp=None, action="app_nav2", weird={"a": [1, None, 2.5, "é"]}),
        stored_event(timestamp=3, version_name="", metadata={"emoji": "🚀\u0000x"}),
    ]
    first.write(written)
    first.close()

    reopened = SQLiteBackend(path)
    assert list(reopened.events()) == written
    reopened.close()


def test_events_reads_in_chunks_and_filters_by_app(tmp_path: Path):
    backend = SQLiteBackend(tmp_path / "s.sqlite3")
    backend.write([stored_event(timestamp=i, app_id=f"com.app.n{i % 2}") for i in range(25)])

    assert [e.event.timestamp for e in backend.events(chunk_size=4)] == list(range(25))
    assert [e.event.timestamp for e in backend.events(app_id="com.app.n1", chunk_size=3)] == list(
        range(1, 25, 2)
    )


def test_write_reports_new_and_duplicate_events(tmp_path: Path):
    backend = SQLiteBackend(tmp_path / "s.sqlite3")
    a, b = stored_event(timestamp=1), stored_event(timestamp=2)
    keyless = stored_event(timestamp=None)

    assert backend.write([a, b, keyless]).inserted == 3
    result = backend.write([a, b, keyless, keyless])
    assert (result.inserted, result.duplicates) == (2, 2)


def test_an_empty_database_file_is_migrated(tmp_path: Path):
    path = tmp_path / "old.sqlite3"
    sqlite3.connect(path).close()  # schema version 0: nothing in it

    backend = SQLiteBackend(path)
    backend.write([stored_event()])

    assert len(list(backend.events())) == 1


def test_a_newer_schema_is_refused_with_a_clear_error(tmp_path: Path):
    path = tmp_path / "new.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    collector = Collector(SQLiteBackend(path))

    with pytest.raises(BackendError, match="newer than this updater-stats"):
        collector.handle(body(VALID_EVENT))


def test_unopenable_path_is_503_and_recovers_when_it_appears(tmp_path: Path):
    missing_dir = tmp_path / "not-yet"
    collector = Collector(SQLiteBackend(missing_dir / "s.sqlite3"))

    with pytest.raises(BackendError) as info:
        collector.handle(body(VALID_EVENT))
    assert info.value.status_code == 503

    missing_dir.mkdir()
    assert collector.handle(body(VALID_EVENT)) == {"status": "ok"}


def test_full_disk_is_503_and_stores_nothing_of_the_batch(tmp_path: Path):
    backend = SQLiteBackend(tmp_path / "s.sqlite3")
    collector = Collector(backend)
    collector.handle(body(VALID_EVENT))
    conn = backend._connect()
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")  # the "disk" is now full
    big = [{**VALID_EVENT, "timestamp": i, "metadata": {"m": "x" * 2000}} for i in range(50)]

    with pytest.raises(BackendError, match="full") as info:
        collector.handle(body(big))

    assert info.value.status_code == 503
    assert len(list(backend.events())) == 1
    conn.execute("PRAGMA max_page_count = 1073741823")  # space again: the retry succeeds
    collector.handle(body(big))
    assert len(list(backend.events())) == 51


def test_a_lock_held_elsewhere_is_503_not_a_crash(tmp_path: Path):
    path = tmp_path / "s.sqlite3"
    SQLiteBackend(path).write([stored_event(timestamp=1)])
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    collector = Collector(SQLiteBackend(path, timeout=0.2))

    with pytest.raises(BackendError, match="locked"):
        collector.handle(body({**VALID_EVENT, "timestamp": 2}))

    blocker.execute("ROLLBACK")
    assert collector.handle(body({**VALID_EVENT, "timestamp": 2})) == {"status": "ok"}
    assert [e.event.timestamp for e in collector.backend.events()] == [1, 2]


def test_many_threads_lose_and_double_nothing(tmp_path: Path):
    collector = Collector(SQLiteBackend(tmp_path / "s.sqlite3"))
    per_thread, threads = 60, 8
    errors: list[BaseException] = []

    def send(worker: int) -> None:
        try:
            for i in range(per_thread):
                ts = worker * 1000 + i
                # Each event twice (a retry), plus one keyless event.
                event = {**VALID_EVENT, "timestamp": ts}
                assert collector.handle(body([event, event])) == {
                    "status": "ok",
                    "results": [{"status": "ok", "index": 0}, {"status": "ok", "index": 1}],
                }
                collector.handle(body({**VALID_EVENT, "timestamp": None, "version_code": str(ts)}))
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=send, args=(w,)) for w in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()

    assert errors == []
    events = list(collector.backend.events())
    timestamps = sorted(e.event.timestamp for e in events if e.event.timestamp is not None)
    codes = sorted(e.event.version_code for e in events if e.event.timestamp is None)
    expected = sorted(w * 1000 + i for w in range(threads) for i in range(per_thread))
    assert timestamps == expected
    assert codes == sorted(str(t) for t in expected)


def _write_from_process(path: str, start: int, count: int) -> None:
    collector = Collector(SQLiteBackend(path))
    for i in range(start, start + count):
        collector.handle(body({**VALID_EVENT, "timestamp": i}))
    collector.close()


def test_several_processes_share_one_file(tmp_path: Path):
    path = str(tmp_path / "s.sqlite3")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_from_process, args=(path, p * 100, 50)) for p in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]

    stored = sorted(e.event.timestamp for e in SQLiteBackend(path).events())
    assert stored == sorted(p * 100 + i for p in range(3) for i in range(50))


def test_memory_database_is_private_to_the_backend():
    one, two = SQLiteBackend(":memory:"), SQLiteBackend(":memory:")
    one.write([stored_event()])

    assert len(list(one.events())) == 1
    assert list(two.events()) == []


def test_fixture_batch_end_to_end(tmp_path: Path):
    collector = Collector(SQLiteBackend(tmp_path / "s.sqlite3"))
    collector.handle(fixture_bytes("ios_batch"))

    actions = [e.event.action for e in collector.backend.events()]
    assert actions == ["set", "update_fail", "reset"]


def test_ping_and_close(tmp_path: Path):
    backend = SQLiteBackend(tmp_path / "s.sqlite3")
    backend.ping()
    backend.close()
    with pytest.raises(BackendError, match="closed"):
        backend.ping()
    with pytest.raises(BackendError, match="closed"):
        backend.write([stored_event()])


def test_a_migration_blocked_by_another_writer_is_a_clear_503(tmp_path: Path):
    path = tmp_path / "new.sqlite3"
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock on a new file

    with pytest.raises(BackendError, match="locked"):
        SQLiteBackend(path, timeout=0.1).ping()

    blocker.execute("ROLLBACK")
    blocker.close()


def test_an_up_to_date_file_opens_without_a_write_lock(tmp_path: Path):
    path = tmp_path / "s.sqlite3"
    SQLiteBackend(path).write([stored_event()])
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # a writer busy elsewhere

    reader = SQLiteBackend(path, timeout=0.1)
    assert len(list(reader.events())) == 1  # reading needs no write lock

    blocker.execute("ROLLBACK")
    blocker.close()
    reader.close()


@given(count=st.integers(1, 5000))
def test_statements_come_in_a_few_sizes_that_hold_every_row(count: int):
    size = sqlite_backend._statement_rows(count)
    assert size >= count
    assert size < 2 * count or size - count < 256  # little padding
    sizes = {sqlite_backend._statement_rows(n) for n in range(1, 1025)}
    assert sizes == {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 768, 1024}


def test_rows_per_statement_respects_sqlites_parameter_limit():
    conn = sqlite3.connect(":memory:")
    columns = len(sqlite_backend._COLUMNS)
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    assert sqlite_backend._rows_per_statement(conn) == 32  # 999 // 23 = 43 rows fit: 32
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32766)
    assert sqlite_backend._rows_per_statement(conn) == 1024  # 1 424 fit
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 700 * columns)
    assert sqlite_backend._rows_per_statement(conn) == 512
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, columns - 1)
    assert sqlite_backend._rows_per_statement(conn) == 1  # fewer than a row's: still one
    conn.close()


def _statements_of_write(backend: SQLiteBackend, events: list[StoredEvent]) -> list[str]:
    backend.write([])  # opens the file
    statements: list[str] = []
    assert backend._conn is not None
    backend._conn.set_trace_callback(statements.append)
    backend.write(events)
    backend._conn.set_trace_callback(None)
    return statements


@pytest.mark.parametrize("count", [1, 129, 200, 1000])
def test_a_write_is_one_statement_padded_rows_and_all(tmp_path: Path, count: int):
    # Each statement gives the GIL back to busy request threads and may wait to get it
    # again: a write of a thousand events must not be a thousand statements.
    backend = SQLiteBackend(tmp_path / "s.sqlite3")
    events = [stored_event(timestamp=i) for i in range(count)]
    statements = _statements_of_write(backend, events)
    assert len(statements) == 1, statements[:3]
    assert statements[0].startswith("INSERT OR IGNORE INTO events")
    # The rows of NULLs that fill the statement up are neither stored nor counted.
    assert [e.key for e in backend.events()] == [e.key for e in events]
    assert backend.write(events) == WriteResult(inserted=0, duplicates=count)
    backend.close()


def test_a_write_past_one_statement_is_one_transaction(tmp_path: Path):
    backend = SQLiteBackend(tmp_path / "s.sqlite3")
    events = [stored_event(timestamp=i) for i in range(2500)]
    statements = _statements_of_write(backend, events)
    assert statements[0] == "BEGIN IMMEDIATE"
    assert statements[-1] == "COMMIT"
    assert len(statements) == 5  # 1 024 + 1 024 + 452 rows
    assert sum(1 for _ in backend.events()) == 2500
    backend.close()


def test_several_apps_with_duplicates_across_chunks_name_each_position(tmp_path: Path):
    backend = SQLiteBackend(tmp_path / "s.sqlite3")
    backend.write([stored_event(app_id="com.example.b", timestamp=i) for i in range(0, 2100, 3)])
    mixed = [
        stored_event(app_id="com.example.a" if i % 2 else "com.example.b", timestamp=i)
        for i in range(2100)
    ]
    mixed.append(mixed[1])  # a duplicate inside the write too
    result = backend.write(mixed)
    expected = (*(i for i in range(2100) if i % 2 == 0 and i % 3 == 0), 2100)
    assert result.duplicate_indexes == expected
    assert result == WriteResult(inserted=2101 - len(expected), duplicates=len(expected))
    assert sum(1 for _ in backend.events()) == 700 + 2101 - len(expected)
    backend.close()


def test_a_failing_chunk_stores_nothing_of_the_write(tmp_path: Path):
    backend = SQLiteBackend(tmp_path / "s.sqlite3")
    backend.write([])
    assert backend._conn is not None
    # The last chunk breaks a constraint after the first ones were inserted.
    backend._conn.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.device_ts = 2999 "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    with pytest.raises(BackendError):
        backend.write([stored_event(timestamp=i) for i in range(3000)])
    assert sum(1 for _ in backend.events()) == 0
    backend.close()


def test_without_getlimit_a_statement_fits_sqlites_smallest_default(monkeypatch):
    monkeypatch.delattr(sqlite3, "SQLITE_LIMIT_VARIABLE_NUMBER")
    with closing(sqlite3.connect(":memory:")) as conn:
        assert sqlite_backend._rows_per_statement(conn) == 32  # 999 parameters: 43 rows fit


class _LockedFor:
    """A connection whose ``PRAGMA journal_mode = WAL`` finds the file locked *times* times."""

    def __init__(self, times: int, error: str = "database is locked") -> None:
        self.times, self.error, self.calls = times, error, 0

    def execute(self, sql: str):
        assert sql == "PRAGMA journal_mode = WAL"
        self.calls += 1
        if self.calls <= self.times:
            raise sqlite3.OperationalError(self.error)
        return self

    def fetchone(self):
        return ("wal",)


def test_turning_a_file_to_wal_waits_out_another_connection_doing_it():
    locked = _LockedFor(3)
    assert sqlite_transaction.into_wal(locked, timeout=5) == "wal"  # type: ignore[arg-type]
    assert locked.calls == 4
    # A lock that outlasts the timeout is the error; any other error is raised at once.
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        sqlite_transaction.into_wal(_LockedFor(10**6), timeout=0.05)  # type: ignore[arg-type]
    other = _LockedFor(1, "disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        sqlite_transaction.into_wal(other, timeout=5)  # type: ignore[arg-type]
    assert other.calls == 1


def test_backends_opening_a_new_file_at_once_all_write(tmp_path: Path):
    # serve's workers on their first requests: each connection turns the new file to WAL, and
    # SQLite answered one of them "database is locked" at once (about 1 run in 20 here).
    for run in range(60):
        path = tmp_path / f"new-{run}.sqlite3"
        errors: list[BaseException] = []

        def write(number: int, path: Path = path, errors: list[BaseException] = errors) -> None:
            backend = SQLiteBackend(path)
            try:
                backend.write([stored_event(timestamp=number)])
            except BaseException as exc:  # counted, then asserted on
                errors.append(exc)
            finally:
                backend.close()

        threads = [threading.Thread(target=write, args=(n,)) for n in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [], (run, errors)
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 3
