"""kill -9 mid-stream: every event whose request got a 200 is stored, once, after a restart.

On SQLite and on PostgreSQL (a throwaway server, see tests/backends/servers.py)."""

from __future__ import annotations

import http.client
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from updater_stats import SQLiteBackend, StorageBackend
from updater_stats.backends.postgres import PostgresBackend

from .backends import servers
from .conftest import VALID_EVENT, body
from .helpers import stored_timestamps
from .live_server import Server

pytest.importorskip("uvicorn")


def test_kill_9_loses_no_acknowledged_event_and_retries_store_once(tmp_path: Path):
    database = tmp_path / "served.sqlite3"
    crash_and_recover(tmp_path, f"sqlite:///{database}", lambda: SQLiteBackend(database))


def test_kill_9_with_postgresql(tmp_path: Path):
    url = f"{servers.postgres_url()}?schema={servers.unique_name('crash')}"
    crash_and_recover(tmp_path, url, lambda: PostgresBackend.from_url(url))


def crash_and_recover(
    tmp_path: Path, storage: str, open_backend: Callable[[], StorageBackend]
) -> None:
    # One process: a kill -9 of uvicorn's supervisor would leave its workers serving.
    server = Server(tmp_path, "--workers", "1", storage=storage)
    acked: set[int] = set()
    sent: set[int] = set()
    lock = threading.Lock()
    killed = threading.Event()

    def device(worker: int) -> None:
        # Each device sends a batch of 3 queued events at a time, as current plugins do.
        for i in range(100_000):
            if killed.is_set():
                return
            stamps = [worker * 10_000_000 + i * 3 + k for k in range(3)]
            with lock:
                sent.update(stamps)
            batch = [{**VALID_EVENT, "timestamp": ts} for ts in stamps]
            try:
                status, _ = server.request("POST", data=body(batch))
            except (OSError, http.client.HTTPException):
                return  # the server died, maybe mid-answer: these stay queued on the device
            if status == 200:
                with lock:
                    acked.update(stamps)

    devices = [threading.Thread(target=device, args=(w,)) for w in range(8)]
    for thread in devices:
        thread.start()
    time.sleep(1.0)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(10)
    killed.set()
    for thread in devices:
        thread.join(30)
    server.stop()

    assert len(acked) > 100
    stored = stored_timestamps(open_backend)
    assert len(stored) == len(set(stored))  # nothing twice
    assert acked <= set(stored)  # nothing acknowledged was lost

    # The devices send everything again that was never acknowledged; the server is back.
    restarted = Server(tmp_path, storage=storage)
    try:
        unacked = sorted(sent - acked)
        for start in range(0, len(unacked), 200):
            chunk = unacked[start : start + 200]
            batch = [{**VALID_EVENT, "timestamp": ts} for ts in chunk]
            assert restarted.request("POST", data=body(batch))[0] == 200
    finally:
        assert restarted.stop(), restarted.output
    assert sorted(stored_timestamps(open_backend)) == sorted(sent)  # every event exactly once
