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

import attrs
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg import sql

from updater_stats import (
    BackendError,
    Collector,
    StoredEvent,
    UpdaterStatsError,
    backend_from_url,
)
from updater_stats._models import BOOLEAN_FIELDS, REQUIRED_FIELDS
from updater_stats.backends.postgres import (
    SCHEMA_VERSION,
    PostgresBackend,
    escape,
    from_jsonb,
    to_jsonb,
    unescape,
)
from updater_stats.testing import assert_same_events, stored_event

from ..conftest import VALID_EVENT, body
from ..doc_blocks import ROOT, blocks
from ..helpers import V1_FIELDS, legacy_key
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
    assert version == (SCHEMA_VERSION,) == (2,)
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
    assert types["truncated"] == "ARRAY"
    # Only what every event has is NOT NULL: the identifying fields and what the server adds.
    assert not_null_columns(conn, schema) == {
        "id",
        "received_at",
        "action_known",
        *REQUIRED_FIELDS,
        *BOOLEAN_FIELDS,
    }


def not_null_columns(conn, schema: str) -> set[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = 'events' AND is_nullable = 'NO'",
        [schema],
    )
    return {name for (name,) in rows}


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


def columns(conn, schema: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT column_name, data_type, udt_name, is_nullable, column_default, is_identity "
        "FROM information_schema.columns WHERE table_schema = %s AND table_name = 'events' "
        "ORDER BY ordinal_position",
        [schema],
    ).fetchall()


def test_the_docs_show_the_real_table_and_working_queries(backend: PostgresBackend, conn):
    create, report = blocks(ROOT / "docs" / "postgres.md", "sql")
    backend.ping()
    shown = servers.unique_name("docs")
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(shown)))
    conn.execute(create.replace("updater_stats.", f"{shown}."))

    # The table the page shows is the table the backend makes (migrated up from version 1).
    assert columns(conn, shown) == columns(conn, backend.schema)
    backend.write(
        [
            stored_event(timestamp=i, action="app_crash", metadata={"duration_ms": "10"})
            for i in range(2)
        ]
    )
    rows = conn.execute(report.replace("updater_stats.", f"{backend.schema}.")).fetchall()
    assert rows == [("1.4.2", 2, 10)]


# -- schema version 2: absent fields and cut fields -----------------------------------------

# Schema version 1 as updater-stats 0.x created it: a copy, so that a change to the code's
# migrations cannot change what this test migrates from.
V1_DDL = (
    """
    CREATE TABLE {schema}.events (
        id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        event_key        text,
        received_at      timestamptz NOT NULL,
        device_ts        bigint,
        action_known     boolean NOT NULL,
        app_id           text NOT NULL,
        device_id        text NOT NULL,
        platform         text NOT NULL,
        action           text NOT NULL,
        version_name     text NOT NULL,
        old_version_name text,
        version_build    text NOT NULL,
        version_code     text NOT NULL,
        version_os       text NOT NULL,
        plugin_version   text NOT NULL,
        custom_id        text,
        is_prod          boolean NOT NULL,
        is_emulator      boolean NOT NULL,
        install_source   text,
        default_channel  text,
        channel          text,
        key_id           text,
        metadata         jsonb,
        extras           jsonb
    )
    """,
    (
        "CREATE UNIQUE INDEX events_event_key ON {schema}.events (event_key) "
        "WHERE event_key IS NOT NULL"
    ),
    "CREATE INDEX events_app_version ON {schema}.events (app_id, version_name, action)",
    "CREATE INDEX events_app_received ON {schema}.events (app_id, received_at)",
    "CREATE INDEX events_app_action_received ON {schema}.events (app_id, action, received_at)",
    "CREATE INDEX events_app_device ON {schema}.events (app_id, device_id, received_at)",
    "CREATE INDEX events_received_brin ON {schema}.events USING brin (received_at)",
)


def v1_store(conn, schema: str, events: list[StoredEvent]) -> None:
    """A schema at version 1 holding *events*, rows as version 1 wrote them."""
    name = sql.Identifier(schema)
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(name))
    conn.execute(sql.SQL("CREATE TABLE {}.schema_version (version integer NOT NULL)").format(name))
    conn.execute(sql.SQL("INSERT INTO {}.schema_version VALUES (1)").format(name))
    for statement in V1_DDL:
        conn.execute(sql.SQL(statement).format(schema=name))
    insert = sql.SQL(
        "INSERT INTO {}.events (event_key, received_at, device_ts, action_known, {}, metadata, "
        "extras) VALUES ({})"
    ).format(
        name,
        sql.SQL(", ").join(map(sql.Identifier, V1_FIELDS)),
        sql.SQL(", ").join(sql.Placeholder() * (len(V1_FIELDS) + 6)),
    )
    for stored in events:
        event = stored.event
        values = [getattr(event, field) for field in V1_FIELDS]
        conn.execute(
            insert,
            [
                stored.key,
                stored.received_at,
                event.timestamp,
                event.action_known,
                *(escape(value) if isinstance(value, str) else value for value in values),
                None if event.metadata is None else to_jsonb(dict(event.metadata)),
                to_jsonb(dict(event.extras)) if event.extras else None,
            ],
        )


def as_v1(stored: StoredEvent) -> StoredEvent:
    return attrs.evolve(stored, key=legacy_key(stored.event))


ABSENT = dict.fromkeys(
    ("platform", "version_build", "version_code", "version_os", "plugin_version")
)


def cut(stored: StoredEvent, *paths: str) -> StoredEvent:
    return attrs.evolve(stored, truncated=tuple(sorted(paths)))


def test_a_version_1_schema_with_rows_is_migrated_on_open_and_keeps_them(url: str, conn):
    schema = servers.unique_name("v1")
    old = [
        as_v1(stored_event(timestamp=1, custom_id="user-1", metadata={"k": "v"}, stats_mode="b")),
        as_v1(stored_event(timestamp=2, version_name="1.0\x00beta", metadata={"k\x00": "\x10"})),
        as_v1(stored_event(timestamp=None, action="app_crash", blob=[1e16, -0.0])),
        as_v1(stored_event(timestamp=3, is_prod=False, channel="", defaultChannel="beta")),
    ]
    v1_store(conn, schema, old)
    backend = PostgresBackend(url, schema=schema)

    read = list(backend.events())

    assert_same_events(read, old)
    assert [stored.truncated for stored in read] == [()] * len(old)
    version = conn.execute(
        sql.SQL("SELECT version FROM {}.schema_version").format(sql.Identifier(schema))
    ).fetchone()
    assert version == (SCHEMA_VERSION,)
    assert not_null_columns(conn, schema) == {
        "id",
        "received_at",
        "action_known",
        *REQUIRED_FIELDS,
        *BOOLEAN_FIELDS,
    }

    # The migrated table takes what version 1 could not hold.
    new = [
        stored_event(timestamp=10, **ABSENT),
        cut(stored_event(timestamp=11, custom_id="c" * 10), "custom_id", "metadata.stack"),
    ]
    assert backend.write(new).inserted == 2
    read = list(backend.events())
    assert_same_events(read, old + new)
    assert [stored.truncated for stored in read[-2:]] == [(), ("custom_id", "metadata.stack")]
    # Rows stored before the upgrade keep their version 1 keys: the same event sent again
    # now has a key of its whole content, and is stored a second time (docs/postgres.md).
    resent = stored_event(timestamp=1, custom_id="user-1", metadata={"k": "v"}, stats_mode="b")
    assert resent.key != old[0].key
    assert backend.write([resent]).inserted == 1
    backend.close()


def test_absent_fields_and_cut_fields_read_back_exactly(backend: PostgresBackend, conn):
    # Array literal syntax in the paths: quotes, backslashes, braces, commas, spaces.
    literal_paths = ('metadata.q"uote', "metadata.back\\slash", "metadata.{a,b}", "metadata. é ")
    plain = [
        stored_event(timestamp=1, **ABSENT),
        *(stored_event(timestamp=2 + n, **{field: None}) for n, field in enumerate(ABSENT)),
        cut(stored_event(timestamp=10), "custom_id"),
        cut(stored_event(timestamp=11, platform=None), "extras", "metadata", "metadata.stack"),
        cut(stored_event(timestamp=12, platform="", version_os=""), *literal_paths),
    ]
    # A NUL in a path: this batch is written with every string escaped.
    odd_paths = ("metadata.a\x00b", "metadata.\x10", *literal_paths)
    odd = [cut(stored_event(timestamp=20), *odd_paths), stored_event(timestamp=21, **ABSENT)]

    assert backend.write(plain).inserted == len(plain)
    assert backend.write(odd).inserted == len(odd)

    read = list(backend.events())
    assert_same_events(read, plain + odd)
    assert [stored.truncated for stored in read] == [stored.truncated for stored in plain + odd]
    rows = raw_rows(conn, backend)
    assert [row["platform"] for row in rows[:2]] == [None, None]
    assert rows[-3]["platform"] == rows[-3]["version_os"] == ""  # empty is not absent
    assert [row["truncated"] for row in rows[:6]] == [None] * 6  # nothing cut: NULL
    assert rows[-3]["truncated"] == sorted(literal_paths)  # stored as they are
    assert rows[-2]["truncated"] == sorted(escape(path) for path in odd_paths)
    # Plain text[]: SQL finds the events whose custom_id was cut.
    query = sql.SQL("SELECT device_ts FROM {}.events WHERE 'custom_id' = ANY(truncated)")
    assert conn.execute(query.format(sql.Identifier(backend.schema))).fetchall() == [(10,)]
