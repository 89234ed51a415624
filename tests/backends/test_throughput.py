"""20 000 single-event requests from 32 threads through `handle()`, into every backend."""

from __future__ import annotations

import threading
import time

from updater_stats import Collector, StorageBackend
from updater_stats.backends.clickhouse import ClickHouseBackend

from ..conftest import VALID_EVENT, body, stored

REQUESTS, THREADS = 20_000, 32


def test_every_request_is_stored_exactly_once(backend: StorageBackend):
    collector = Collector(backend)
    clickhouse_inserts_before = _server_inserts(backend)
    bodies = [body({**VALID_EVENT, "timestamp": ts}) for ts in range(REQUESTS)]
    answers: list[list[dict]] = [[] for _ in range(THREADS)]
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def send(worker: int) -> None:
        try:
            start.wait()
            for raw in bodies[worker::THREADS]:
                answers[worker].append(collector.handle(raw))
        except BaseException as exc:
            errors.append(exc)

    began = time.monotonic()
    threads = [threading.Thread(target=send, args=(w,)) for w in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(240)
    elapsed = time.monotonic() - began

    assert errors == []
    assert sum(len(a) for a in answers) == REQUESTS
    assert all(answer == {"status": "ok"} for a in answers for answer in a)
    timestamps = [e.event.timestamp for e in stored(backend)]
    assert len(timestamps) == REQUESTS
    assert sorted(timestamps) == list(range(REQUESTS))  # every event, each exactly once
    writes = collector._writer.writes
    assert writes < REQUESTS / 4, f"{writes} storage writes for {REQUESTS} requests"
    if isinstance(backend, ClickHouseBackend):
        # Counted by ClickHouse itself: far fewer INSERT statements than requests.
        received = _server_inserts(backend) - clickhouse_inserts_before
        assert received == backend.inserts == writes
        assert received < REQUESTS / 10
    assert elapsed < 120, f"{elapsed:.0f}s for {REQUESTS} requests"


def _server_inserts(backend: StorageBackend) -> int:
    if not isinstance(backend, ClickHouseBackend):
        return 0
    backend.ping()
    client = backend._client
    assert client is not None
    rows = client.query("SELECT value FROM system.events WHERE event = 'InsertQuery'").result_rows
    return int(rows[0][0]) if rows else 0
