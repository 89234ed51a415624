"""PostgreSQL specifics: schema, indexes, the NUL rule, migrations, URLs, outages.

The contract suite (test_contract.py) and the endpoint tests already run here.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg import sql

from updater_stats import BackendError, Collector, UpdaterStatsError, backend_from_url
from updater_stats.backends.postgres import (
    _V1,
    SCHEMA_VERSION,
    PostgresBackend,
    escape,
    from_jsonb,
    to_jsonb,
    unescape,
)
from updater_stats.testing import assert_same_events, stored_event

from ..conftest import VALID_EVENT, body
from ..test_docs import ROOT, blocks
from . import servers


@pytest.fixture
def url() -> str:
    return servers.postgres_url()


@pytest.fixture
def backend() -> Iterator[PostgresBackend]:
    backend = servers.postgres_backend()
    yield backend
    backend.close()


@pytest.fixture
def conn(url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(url, autocommit=True) as conn:
        yield conn


def test_schema_tables_indexes_and_version(backend: PostgresBackend, conn):
    backend.ping()

    schema = backend.schema
    version = conn.execute(
        sql.SQL("SELECT version FROM {}.schema_version").format(sql.Identifier(schema))
    ).fetchone()
    assert version == (SCHEMA_VERSION,) == (1,)
    indexes = {
        row[0]
        for row in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s", [schema])
    }
    assert {
        "events_pkey",
        "events_event_key",
        "events_app_version",
        "events_app_received",
        "events_app_action_received",
        "events_app_device",
        "events_received_brin",
    } <= indexes
    types = dict(
        conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = 'events'",
            [schema],
        ).fetchall()
    )
    assert types["metadata"] == types["extras"] == "jsonb"
    assert types["received_at"] == "timestamp with time zone"
    assert types["device_ts"] == "bigint"


def raw_rows(conn, backend: PostgresBackend) -> list[dict[str, Any]]:
    cursor = conn.cursor(row_factory=psycopg.rows.dict_row)
    query = sql.SQL("SELECT * FROM {}.events ORDER BY id").format(sql.Identifier(backend.schema))
    return cursor.execute(query).fetchall()


def test_plain_text_is_stored_as_is_and_jsonb_is_queryable(backend: PostgresBackend, conn):
    event = stored_event(
        custom_id="user-1",
        defaultChannel="beta",
        metadata={"duration_ms": "1500"},
        stats_mode="batch",
        ratio=0.25,
        count=3,
    )
    backend.write([event])

    (row,) = raw_rows(conn, backend)
    assert row["custom_id"] == "user-1"
    assert row["default_channel"] == "beta"
    assert row["event_key"] == event.key
    assert row["device_ts"] == VALID_EVENT["timestamp"]
    assert row["received_at"] == event.received_at
    query = sql.SQL(
        "SELECT metadata->>'duration_ms', extras->>'stats_mode', (extras->>'ratio')::float8,"
        " jsonb_typeof(extras->'count') FROM {}.events"
    ).format(sql.Identifier(backend.schema))
    assert conn.execute(query).fetchone() == ("1500", "batch", 0.25, "number")


def test_nul_is_stored_escaped_and_reads_back_exactly(backend: PostgresBackend, conn):
    event = stored_event(
        version_name="1.0\x00beta",
        custom_id="\x10",
        metadata={"k\x00": "v\x00"},
        blob=["\x00", 1e16, -0.0],
    )
    backend.write([event])

    (row,) = raw_rows(conn, backend)
    assert row["version_name"] == "1.0\x100beta"
    assert row["custom_id"] == "\x101"
    assert row["metadata"] == {"k\x100": "v\x100"}
    assert row["extras"] == {"blob": ["\x100", 1e16, "\x10f-0.0"]}
    assert_same_events(backend.events(), [event])


def test_a_batch_with_nul_everywhere_is_stored_whole(backend: PostgresBackend):
    # The NUL rule never costs a batch: every event is stored, none refused.
    collector = Collector(backend)
    batch = [{**VALID_EVENT, "timestamp": i, "version_name": "\x00" * i} for i in range(50)]

    answer = collector.handle(body(batch))

    assert {r["status"] for r in answer["results"]} == {"ok"}
    assert [e.event.version_name for e in backend.events()] == ["\x00" * i for i in range(50)]


@given(st.text(alphabet=st.characters(codec=None)))
def test_escape_round_trips_any_text_into_text_postgres_accepts(text: str):
    escaped = escape(text)

    assert unescape(escaped) == text
    assert "\x00" not in escaped
    escaped.encode("utf-8")  # no lone surrogate left
    if "\x00" not in text and "\x10" not in text and escaped.isprintable():
        assert escaped == text


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(codec="utf-8")),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(alphabet=st.characters(codec="utf-8"), max_size=8), inner, max_size=4
        )
    ),
    max_leaves=12,
)


def strictly_equal(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strictly_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(strictly_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@settings(max_examples=150)
@given(json_values)
def test_any_json_value_survives_a_trip_through_jsonb(value: Any):
    with psycopg.connect(servers.postgres_url(), autocommit=True) as conn:
        (text,) = conn.execute("SELECT %s::jsonb::text", [to_jsonb(value)]).fetchone()

    assert strictly_equal(from_jsonb(json.loads(text)), value)


def test_an_empty_version_table_is_migrated(url: str, conn):
    schema = servers.unique_name("old")
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    conn.execute(
        sql.SQL("CREATE TABLE {}.schema_version (version integer NOT NULL)").format(
            sql.Identifier(schema)
        )
    )
    conn.execute(sql.SQL("INSERT INTO {}.schema_version VALUES (0)").format(sql.Identifier(schema)))
    backend = PostgresBackend(url, schema=schema)

    backend.write([stored_event()])

    assert len(list(backend.events())) == 1
    backend.close()


def test_a_newer_schema_is_refused_with_a_clear_error(backend: PostgresBackend, conn):
    backend.ping()
    conn.execute(
        sql.SQL("UPDATE {}.schema_version SET version = %s").format(sql.Identifier(backend.schema)),
        [SCHEMA_VERSION + 1],
    )
    newer = PostgresBackend(servers.postgres_url(), schema=backend.schema)

    with pytest.raises(BackendError, match="newer than this updater-stats") as info:
        Collector(newer).handle(body(VALID_EVENT))

    assert info.value.status_code == 503
    newer.close()


def test_processes_starting_together_migrate_once(url: str):
    schema = servers.unique_name("race")
    backends = [PostgresBackend(url, schema=schema) for _ in range(4)]
    errors: list[BaseException] = []

    def start(backend: PostgresBackend, ts: int) -> None:
        try:
            backend.write([stored_event(timestamp=ts)])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(b, i)) for i, b in enumerate(backends)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert sorted(e.event.timestamp for e in backends[0].events()) == [0, 1, 2, 3]
    for backend in backends:
        backend.close()


def test_a_database_that_is_not_utf8_is_refused(url: str, conn):
    name = servers.unique_name("ascii")
    conn.execute(
        sql.SQL("CREATE DATABASE {} ENCODING 'SQL_ASCII' TEMPLATE template0 LOCALE 'C'").format(
            sql.Identifier(name)
        )
    )
    backend = PostgresBackend(url.rsplit("/", 1)[0] + "/" + name)

    with pytest.raises(UpdaterStatsError, match="must use UTF8 encoding"):
        backend.ping()
    backend.close()


def test_urls(url: str):
    backend = backend_from_url(f"{url}?schema=custom_one&pool_size=2&application_name=probe")
    alias = backend_from_url(url.replace("postgresql://", "postgres://", 1))

    assert isinstance(backend, PostgresBackend)
    assert isinstance(alias, PostgresBackend)
    assert backend.schema == "custom_one"
    assert backend._pool.max_size == 2
    backend.ping()  # libpq accepted what was left of the URL
    with backend._pool.connection() as conn:
        assert conn.execute("SHOW application_name").fetchone() == ("probe",)
    backend.close()
    alias.close()


def test_a_bad_url_option_is_a_configuration_error():
    with pytest.raises(UpdaterStatsError, match="bad PostgreSQL URL"):
        backend_from_url("postgresql://localhost/db?pool_size=many")


def test_nothing_connects_before_first_use():
    # Port 1 on loopback: nobody listens. Creating the backend must not fail or wait.
    started = time.monotonic()
    backend = backend_from_url("postgresql://nobody@127.0.0.1:1/db?pool_timeout=0.5")
    assert time.monotonic() - started < 0.5

    with pytest.raises(BackendError) as info:
        Collector(backend).handle(body(VALID_EVENT))
    assert info.value.status_code == 503
    backend.close()


def test_a_server_down_at_start_is_503_then_used_once_it_is_up():
    server = servers.new_postgres_server()
    server.stop()
    backend = PostgresBackend(server.url, pool_timeout=1)
    collector = Collector(backend)

    with pytest.raises(BackendError) as info:
        collector.handle(body(VALID_EVENT))
    assert info.value.status_code == 503

    server.start()
    assert _eventually_ok(collector, {**VALID_EVENT, "timestamp": 2}, within=20)
    assert [e.event.timestamp for e in backend.events()] == [2]
    collector.close()
    server.destroy()


def _ok(collector: Collector, event: dict[str, Any]) -> bool:
    try:
        return collector.handle(body(event)) == {"status": "ok"}
    except BackendError:
        return False


def _eventually_ok(collector: Collector, event: dict[str, Any], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if _ok(collector, event):
            return True
        time.sleep(0.1)
    return False


def test_stopping_postgres_mid_stream_loses_nothing_acknowledged():
    server = servers.new_postgres_server()
    backend = PostgresBackend(server.url, pool_timeout=1)
    collector = Collector(backend, deadline=5)
    outcomes: dict[int, str] = {}
    unexpected: list[BaseException] = []
    stop_sending = threading.Event()
    counter = iter(range(10**9))
    lock = threading.Lock()

    def send() -> None:
        while not stop_sending.is_set():
            with lock:
                ts = next(counter)
            try:
                collector.handle(body({**VALID_EVENT, "timestamp": ts}))
                outcomes[ts] = "ok"
            except BackendError as exc:
                assert exc.status_code == 503
                outcomes[ts] = "503"
                time.sleep(0.05)  # a device retries on its next tick, not at once
            except BaseException as exc:
                unexpected.append(exc)
                return

    senders = [threading.Thread(target=send) for _ in range(8)]
    for thread in senders:
        thread.start()
    time.sleep(0.5)
    server.stop()  # fast shutdown: open sessions are cut off mid-stream
    stopped_at = len(outcomes)
    time.sleep(1.5)
    during_outage = dict(outcomes)
    server.start()
    recovered = _eventually_ok(collector, {**VALID_EVENT, "timestamp": 10**12}, within=30)
    time.sleep(0.5)  # keep sending a while after recovery
    stop_sending.set()
    for thread in senders:
        thread.join(30)

    assert unexpected == []
    assert recovered, "writes did not succeed again after PostgreSQL came back"
    assert stopped_at > 0
    assert "503" in during_outage.values()  # the outage was felt
    acknowledged = {ts for ts, outcome in outcomes.items() if outcome == "ok"}
    stored = {e.event.timestamp for e in backend.events()}
    assert acknowledged <= stored  # every "ok" is stored
    # The senders' own calls succeed again after the restart, with no restart of ours.
    assert any(outcome == "ok" for ts, outcome in outcomes.items() if ts > max(during_outage))
    collector.close()
    server.destroy()


def test_received_at_keeps_microseconds(backend: PostgresBackend):
    moment = dt.datetime(2026, 5, 4, 3, 2, 1, 654321, tzinfo=dt.timezone.utc)
    backend.write([stored_event(received_at=moment)])

    (read,) = backend.events()
    assert read.received_at == moment


def test_the_docs_show_the_real_table_and_working_queries(backend: PostgresBackend, conn):
    create, report = blocks(ROOT / "docs" / "postgres.md", "sql")

    assert " ".join(create.split()) == " ".join(
        (_V1[0].replace("{schema}", "updater_stats").strip() + ";").split()
    )
    backend.write(
        [
            stored_event(timestamp=i, action="app_crash", metadata={"duration_ms": "10"})
            for i in range(2)
        ]
    )
    rows = conn.execute(report.replace("updater_stats.", f"{backend.schema}.")).fetchall()
    assert rows == [("1.4.2", 2, 10)]
