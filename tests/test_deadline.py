"""Every request is answered within the collector's deadline, whatever storage is doing.

Real stalls, not stand-ins: a SQLite file whose write lock another connection holds, a
PostgreSQL table locked by another session, a PostgreSQL server stopped with SIGSTOP, a
writer queue full behind a write that hangs. Each test uses a 1 s deadline and allows a
generous margin, still far under the 10 s after which Android devices give up. Events whose
caller got a 503 before their write began are never stored; a re-sent batch is stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from updater_stats import (
    BackendError,
    Collector,
    MemoryBackend,
    SQLiteBackend,
    StorageBackend,
    StoredEvent,
    WriteResult,
)
from updater_stats.backends import Batching
from updater_stats.testing import stored_event

from .conftest import VALID_EVENT, body
from .helpers import Timed, child_processes
from .live_server import Server

DEADLINE = 1.0
#: Late answers allowed past the deadline: scheduling on a shared 2-core machine, and HTTP.
SLACK = 1.0


def batch(first: int, size: int = 5) -> list[dict[str, Any]]:
    """A device's queued batch: events with timestamps, so a re-send is a duplicate."""
    return [{**VALID_EVENT, "timestamp": ts} for ts in range(first, first + size)]


def timestamps(events: Sequence[StoredEvent]) -> list[int | None]:
    return sorted((e.event.timestamp for e in events), key=lambda ts: -1 if ts is None else ts)


def stored_timestamps(backend: StorageBackend) -> list[int | None]:
    return timestamps(list(backend.events()))  # type: ignore[attr-defined]


def refused_in_time(call: Callable[[], object]) -> BackendError:
    """Run *call*, which must raise `BackendError` (503) within the deadline and the slack."""
    started = time.monotonic()
    with pytest.raises(BackendError) as info:
        call()
    took = time.monotonic() - started
    assert took < DEADLINE + SLACK, f"answered after {took:.2f} s, deadline {DEADLINE} s"
    assert info.value.status_code == 503
    return info.value


# -- a writer queue full behind a write that hangs ------------------------------------------


class HangingBackend(MemoryBackend):
    """A memory backend whose writes wait for `release()`, ignoring any deadline."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.started = threading.Event()

    def write(self, events: Sequence[StoredEvent]) -> WriteResult:
        self.started.set()
        assert self.gate.wait(30), "the test never released the gate"
        return super().write(events)


def test_a_full_writer_queue_is_503_within_the_deadline_for_every_caller():
    backend = HangingBackend()
    collector = Collector(
        backend, batching=Batching(max_delay=0, max_pending_events=10), deadline=DEADLINE
    )
    hanging = Timed(lambda: collector.handle(body(batch(0))))  # its write hangs
    assert backend.started.wait(5)
    queued = Timed(lambda: collector.handle(body(batch(10, 10))))  # fills the queue
    time.sleep(0.1)
    waiting = Timed(lambda: collector.handle(body(batch(20))))  # finds no room

    async def async_waiting() -> None:
        await collector.ahandle(body(batch(30)))

    error = refused_in_time(lambda: asyncio.run(async_waiting()))
    # It waited for room until its deadline, or got room when the queued request expired
    # (it came earlier, so its deadline passes first), then waited in the queue.
    assert error.code in {"storage_overloaded", "storage_timeout"}
    outcomes = {name: call.outcome() for name, call in [("hanging", hanging), ("queued", queued)]}
    outcomes["waiting"] = waiting.outcome()
    backend.gate.set()

    for name, (_, error, took) in outcomes.items():
        assert isinstance(error, BackendError), name
        assert took < DEADLINE + SLACK, f"{name} answered after {took:.2f} s"
    assert outcomes["hanging"][1].code == "storage_timeout"  # type: ignore[union-attr]
    assert outcomes["queued"][1].code == "storage_timeout"  # type: ignore[union-attr]
    assert outcomes["waiting"][1].code in {  # type: ignore[union-attr]
        "storage_overloaded",
        "storage_timeout",
    }
    assert collector._writer.flush(5)
    # Only the write that hung commits (after its caller's 503): re-sent, it is a duplicate.
    assert stored_timestamps(backend) == list(range(5))
    for first in (0, 10, 20, 30):
        collector.handle(body(batch(first, 10 if first == 10 else 5)))
    assert stored_timestamps(backend) == [*range(5), *range(10, 25), *range(30, 35)]
    collector.close()


# -- SQLite: another connection holds the write lock ----------------------------------------


@contextlib.contextmanager
def write_locked(path: Path, mode: str = "IMMEDIATE") -> Iterator[None]:
    """Another connection (as another process would) holds the file's write lock."""
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute(f"BEGIN {mode}")
        yield
        blocker.execute("ROLLBACK")
    finally:
        blocker.close()


def sqlite_file(tmp_path: Path) -> Path:
    path = tmp_path / "stats.sqlite3"
    created = SQLiteBackend(path)
    created.ping()  # the file and its schema exist before the lock is taken
    created.close()
    return path


@pytest.mark.parametrize("mode", ["IMMEDIATE", "EXCLUSIVE"])
def test_a_locked_sqlite_file_is_503_within_the_deadline_and_nothing_is_stored_late(
    tmp_path: Path, mode: str
):
    path = sqlite_file(tmp_path)
    # The backend's own timeout (5 s) is longer than the deadline: the deadline bounds it.
    collector = Collector(SQLiteBackend(path), deadline=DEADLINE)
    sent = body(batch(100))
    with write_locked(path, mode):
        error = refused_in_time(lambda: collector.handle(sent))
        assert error.code == "storage_timeout"
        assert error.body["error"] == "storage_timeout"
        error = refused_in_time(lambda: asyncio.run(collector.ahandle(sent)))
        assert error.code == "storage_timeout"
    # The lock is gone: had a refused write waited on, it would commit now.
    assert collector._writer.flush(5)
    assert stored_timestamps(collector.backend) == []

    assert collector.handle(sent)["status"] == "ok"  # the device's retry
    assert collector.handle(sent)["status"] == "ok"  # and one whose answer was lost
    assert stored_timestamps(collector.backend) == list(range(100, 105))
    assert collector.metrics.snapshot().requests["storage_timeout"] == 2
    collector.close()


def test_a_purge_waiting_on_the_file_delays_no_answer_past_the_deadline(tmp_path: Path):
    path = sqlite_file(tmp_path)
    backend = SQLiteBackend(path)
    collector = Collector(backend, deadline=DEADLINE)
    sent = body(batch(100))
    with write_locked(path):
        # The purge holds the backend while it waits (up to 5 s) for the file's write lock.
        purge = Timed(lambda: collector.purge(older_than=dt.timedelta(days=1)))
        time.sleep(0.1)
        error = refused_in_time(lambda: collector.handle(sent))
        assert error.code == "storage_timeout"
    assert purge.outcome()[1] is None
    assert stored_timestamps(backend) == []
    assert collector.handle(sent)["status"] == "ok"
    assert stored_timestamps(backend) == list(range(100, 105))
    collector.close()


def test_a_write_waits_for_the_lock_when_it_frees_in_time(tmp_path: Path):
    path = sqlite_file(tmp_path)
    collector = Collector(SQLiteBackend(path), deadline=DEADLINE)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    request = Timed(lambda: collector.handle(body(batch(1))))
    time.sleep(DEADLINE / 4)
    blocker.execute("ROLLBACK")
    blocker.close()

    answer, error, _ = request.outcome()

    assert error is None
    assert answer["status"] == "ok"
    assert stored_timestamps(collector.backend) == list(range(1, 6))
    collector.close()


def test_a_locked_sqlite_file_is_503_within_the_deadline_over_http(tmp_path: Path):
    pytest.importorskip("uvicorn")

    path = sqlite_file(tmp_path)
    server = Server(tmp_path, "--deadline", str(DEADLINE), storage=f"sqlite:///{path}")
    try:
        sent = body(batch(200))
        with write_locked(path):
            started = time.monotonic()
            status, answer = server.request("POST", data=sent)
            took = time.monotonic() - started
            assert (status, answer["error"]) == (503, "storage_timeout")
            assert took < DEADLINE + SLACK, f"answered after {took:.2f} s"
        assert server.request("POST", data=sent)[0] == 200
        assert server.request("POST", data=sent)[0] == 200
    finally:
        assert server.stop(), server.output
    backend = SQLiteBackend(path)
    try:
        assert stored_timestamps(backend) == list(range(200, 205))
    finally:
        backend.close()


# -- PostgreSQL: a table locked by another session, a server stopped with SIGSTOP ------------


def postgres_collector(url: str, **options: Any) -> Collector:
    """A collector with the test deadline over a schema of its own on the server at *url*."""
    # Here, not at the top: the driver is imported only when a PostgreSQL test runs.
    from updater_stats.backends.postgres import PostgresBackend  # noqa: PLC0415

    from .backends import servers  # noqa: PLC0415

    backend = PostgresBackend(url, schema=servers.unique_name("deadline"), **options)
    return Collector(backend, deadline=DEADLINE)


def test_a_locked_postgresql_table_is_503_within_the_deadline_and_nothing_is_stored_late():
    psycopg = pytest.importorskip("psycopg")
    from .backends import servers  # noqa: PLC0415

    url = servers.postgres_url()
    collector = postgres_collector(url)
    backend = collector.backend
    assert collector.handle(body(batch(0, 1)))["status"] == "ok"  # schema and a connection
    sent = body(batch(100))
    with psycopg.connect(url, connect_timeout=5) as locker:
        locker.execute(f"LOCK TABLE {backend.schema}.events IN ACCESS EXCLUSIVE MODE")  # type: ignore[attr-defined]
        error = refused_in_time(lambda: collector.handle(sent))
        assert error.code == "storage_timeout"
        error = refused_in_time(lambda: asyncio.run(collector.ahandle(sent)))
        assert error.code == "storage_timeout"
        locker.rollback()  # the lock goes: an insert still waiting would commit now
    assert collector._writer.flush(5)
    time.sleep(0.2)
    assert stored_timestamps(backend) == [0]

    assert collector.handle(sent)["status"] == "ok"
    assert collector.handle(sent)["status"] == "ok"
    assert stored_timestamps(backend) == [0, *range(100, 105)]
    # The insert that runs past its deadline was cancelled by the server (lock_timeout), which
    # leaves the session usable for the writes after it, and erasure is not bounded by it.
    assert collector.forget(device_id=VALID_EVENT["device_id"]) == 6
    # A plain write, with no deadline, is not bound by what the collector's writes set.
    with psycopg.connect(url, connect_timeout=5) as locker:
        locker.execute(f"LOCK TABLE {backend.schema}.events IN ACCESS EXCLUSIVE MODE")  # type: ignore[attr-defined]
        plain = Timed(lambda: backend.write([stored_event(timestamp=7)]))
        time.sleep(DEADLINE * 1.5)
        locker.rollback()
    _, error, took = plain.outcome()
    assert error is None
    assert took >= DEADLINE * 1.5
    collector.close()


def test_a_locked_postgresql_table_is_503_within_the_deadline_over_http(tmp_path: Path):
    psycopg = pytest.importorskip("psycopg")
    pytest.importorskip("uvicorn")
    from .backends import servers  # noqa: PLC0415

    url = servers.postgres_url()
    schema = servers.unique_name("deadline")
    storage = f"{url}?schema={schema}"
    server = Server(tmp_path, "--deadline", str(DEADLINE), storage=storage)
    try:
        assert server.request("POST", data=body(batch(0, 1)))[0] == 200  # creates the table
        sent = body(batch(100))
        with psycopg.connect(url, connect_timeout=5) as locker:
            locker.execute(f"LOCK TABLE {schema}.events IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            status, answer = server.request("POST", data=sent)
            took = time.monotonic() - started
            assert (status, answer["error"]) == (503, "storage_timeout")
            assert took < DEADLINE + SLACK, f"answered after {took:.2f} s"
            locker.rollback()
        assert server.request("POST", data=sent)[0] == 200
        assert server.request("POST", data=sent)[0] == 200
    finally:
        assert server.stop(), server.output
    from updater_stats.backends.postgres import PostgresBackend  # noqa: PLC0415

    backend = PostgresBackend(url, schema=schema)
    try:
        assert stored_timestamps(backend) == [0, *range(100, 105)]
    finally:
        backend.close()


@contextlib.contextmanager
def stopped(data_dir: Path) -> Iterator[None]:
    """The PostgreSQL server of *data_dir* stopped with SIGSTOP, postmaster and backends alike."""
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    pids = [postmaster, *child_processes(postmaster)]
    try:
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def test_a_stopped_postgresql_server_is_503_within_the_deadline_and_a_resend_is_stored_once():
    pytest.importorskip("psycopg")
    from .backends import servers  # noqa: PLC0415

    database = servers.new_postgres_server()  # its own: the others' tests must not stall
    collector = postgres_collector(database.url, pool_timeout=1)
    backend = collector.backend
    try:
        assert collector.handle(body(batch(0, 1)))["status"] == "ok"
        with stopped(database.data):
            in_flight = Timed(lambda: collector.handle(body(batch(100))))
            time.sleep(0.2)  # its insert is on its way to the stopped server
            queued = Timed(lambda: collector.handle(body(batch(200))))
            queued_async = Timed(lambda: asyncio.run(collector.ahandle(body(batch(300)))))
            answers = {
                "in flight": in_flight.outcome(),
                "queued": queued.outcome(),
                "queued (async)": queued_async.outcome(),
            }
            for name, (_, error, took) in answers.items():
                assert isinstance(error, BackendError), name
                assert error.code == "storage_timeout", name
                assert took < DEADLINE + SLACK, f"{name} answered after {took:.2f} s"
        # The server runs again: the insert sent before the stop may commit now, after its
        # caller's 503. The requests queued behind it were never written.
        assert collector._writer.flush(10)
        stored = stored_timestamps(backend)
        assert set(stored) - {0} <= set(range(100, 105))
        assert not set(stored) & {*range(200, 205), *range(300, 305)}

        for first in (100, 200, 300):  # the devices re-send what got 503
            assert collector.handle(body(batch(first)))["status"] == "ok"
        assert stored_timestamps(backend) == [
            0,
            *range(100, 105),
            *range(200, 205),
            *range(300, 305),
        ]
    finally:
        collector.close()
        database.destroy()
