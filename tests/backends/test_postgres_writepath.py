"""PostgreSQL writes: one statement per batch, escaping only when the batch needs it.

The contract suite proves what any write stores; these pin the shortcuts of the write path.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import attrs
import psycopg
import pytest
from psycopg import sql

from updater_stats.backends.postgres import PostgresBackend
from updater_stats.testing import assert_same_events, stored_event

from . import servers


@pytest.fixture
def backend() -> Iterator[PostgresBackend]:
    backend = servers.postgres_backend()
    yield backend
    backend.close()


def column(backend: PostgresBackend, name: str) -> list[Any]:
    query = sql.SQL("SELECT {} FROM {}.events ORDER BY id").format(
        sql.Identifier(name), sql.Identifier(backend.schema)
    )
    with psycopg.connect(servers.postgres_url()) as conn:
        return [value for (value,) in conn.execute(query)]


def test_one_event_needing_escapes_leaves_the_others_as_they_are(backend: PostgresBackend):
    events = [
        stored_event(timestamp=1, version_name="1.0"),
        stored_event(timestamp=2, version_name="1.0\x00beta", metadata={"k": "v\x00"}),
        stored_event(timestamp=3, version_name="\\u0000 typed, not a NUL"),
    ]

    backend.write(events)

    assert column(backend, "version_name") == ["1.0", "1.0\x100beta", "\\u0000 typed, not a NUL"]
    assert_same_events(backend.events(), events)


def test_lone_surrogates_from_outside_the_collector_are_stored_escaped(backend: PostgresBackend):
    plain = stored_event(timestamp=1)
    odd = attrs.evolve(
        stored_event(timestamp=2),
        event=attrs.evolve(plain.event, timestamp=2, custom_id="a\ud800", metadata={"\udfff": "é"}),
    )

    backend.write([plain, odd])

    assert column(backend, "custom_id") == [plain.event.custom_id, "a\x10ud800"]
    assert_same_events(backend.events(), [plain, odd])


def test_a_connection_the_server_closed_in_the_pool_costs_no_write():
    # Sessions of a name of their own: other backends of the run reconnect their pools as
    # `updater-stats`, and must neither be terminated nor waited for here.
    name = servers.unique_name("pool")
    backend = servers.postgres_backend(application_name=name)
    try:
        backend.write([stored_event(timestamp=1)])
        with psycopg.connect(servers.postgres_url(), autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                [name],
            )
            # Terminating only signals the session: wait until it is gone, as after a restart.
            deadline = time.monotonic() + 10
            while admin.execute(
                "SELECT 1 FROM pg_stat_activity WHERE application_name = %s", [name]
            ).fetchone():
                assert time.monotonic() < deadline
                time.sleep(0.01)

        result = backend.write([stored_event(timestamp=2)])  # the pool's check replaces it

        assert result.inserted == 1
        assert [e.event.timestamp for e in backend.events()] == [1, 2]
    finally:
        backend.close()
