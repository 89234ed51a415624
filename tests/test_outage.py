"""Storage going away under a running endpoint: 503 while it is gone, 200 again by itself.

Never a 200 for an event that was not stored. The SQLite case fills a real (tiny)
filesystem; the PostgreSQL case stops a real server mid-load.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from updater_stats import SQLiteBackend
from updater_stats.backends.postgres import PostgresBackend

from .backends import servers
from .conftest import VALID_EVENT, body
from .helpers import stored_timestamps
from .live_server import Server

pytest.importorskip("uvicorn")


@contextlib.contextmanager
def tiny_filesystem(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of *size* mounted at *path*: a disk that really fills up."""
    path.mkdir()
    if os.geteuid() != 0:
        servers.skip_or_fail("mounting a tmpfs needs root")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        servers.skip_or_fail(f"cannot mount a tmpfs: {result.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path) -> Path:
    """Fill the filesystem of *directory* to the last byte; remove the file to free it."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (65536, 1):  # big writes first, then the last few bytes
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


class Load:
    """Devices posting batches of 20 events until told to stop; what each answer was."""

    def __init__(self, server: Server, devices: int = 4) -> None:
        self.server = server
        self.acked: set[int] = set()
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.counter = iter(range(10**9))
        self.threads = [threading.Thread(target=self._device) for _ in range(devices)]
        for thread in self.threads:
            thread.start()

    def _device(self) -> None:
        while not self.stopping.is_set():
            with self.lock:
                first = next(self.counter) * 20
            stamps = list(range(first, first + 20))
            batch = [
                {**VALID_EVENT, "timestamp": ts, "metadata": {"m": "x" * 500}} for ts in stamps
            ]
            status, _ = self.server.request("POST", data=body(batch))
            with self.lock:
                self.statuses.append(status)
                if status == 200:
                    self.acked.update(stamps)
            if status != 200:
                time.sleep(0.05)  # devices retry on their next tick

    def count(self, status: int) -> int:
        with self.lock:
            return self.statuses.count(status)

    def wait_for(self, status: int, after: int, within: float = 30) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.count(status) > after:
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(30)


def test_a_full_disk_is_503_and_the_endpoint_recovers_by_itself(tmp_path: Path):
    with tiny_filesystem(tmp_path / "disk", "4m") as disk:
        database = disk / "stats.sqlite3"
        server = Server(tmp_path, storage=f"sqlite:///{database}")
        try:
            load = Load(server)
            assert load.wait_for(200, after=5)
            filler = fill(disk)
            assert load.wait_for(503, after=3), "a full disk must be answered with 503"
            oks_while_full = load.count(200)
            time.sleep(0.3)
            assert load.count(200) - oks_while_full <= 4  # at most the writes already in flight
            filler.unlink()  # space again: no restart, no operator
            assert load.wait_for(200, after=load.count(200) + 5), "no recovery after the disk freed"
            load.stop()
        finally:
            assert server.stop(), server.output
        assert set(load.statuses) <= {200, 503}
        stored = stored_timestamps(lambda: SQLiteBackend(database))
        assert len(stored) == len(set(stored))
        assert load.acked <= set(stored)


def test_postgresql_stopping_is_503_and_the_endpoint_recovers_by_itself(tmp_path: Path):
    database = servers.new_postgres_server()
    url = f"{database.url}?pool_timeout=1"
    server = Server(tmp_path, storage=url)
    try:
        load = Load(server)
        assert load.wait_for(200, after=5)
        database.stop()
        assert load.wait_for(503, after=3), "a stopped database must be answered with 503"
        database.start()
        assert load.wait_for(200, after=load.count(200) + 5), (
            "no recovery after PostgreSQL came back"
        )
        load.stop()
    finally:
        assert server.stop(), server.output
    assert set(load.statuses) <= {200, 503}
    stored = stored_timestamps(lambda: PostgresBackend.from_url(url))
    assert len(stored) == len(set(stored))
    assert load.acked <= set(stored)
    database.destroy()


@pytest.fixture(autouse=True)
def _bounded() -> Iterator[None]:
    started = time.monotonic()
    yield
    assert time.monotonic() - started < 120, "an outage test must stay bounded"
