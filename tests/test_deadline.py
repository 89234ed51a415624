"""Every request is answered within the collector's deadline, whatever storage is doing.

Real stalls, not stand-ins: a SQLite file whose write lock another connection holds, a
PostgreSQL table locked by another session, a PostgreSQL server stopped with SIGSTOP, a
writer queue full behind a write that hangs. Each test uses a 1 s deadline and allows a
generous margin, still far under the 10 s after which Android devices give up. Events whose
caller got a 503 before their write began are never stored; a re-sent batch is stored once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from updater_stats import (
    BackendError,
    Collector,
    MemoryBackend,
    StorageBackend,
    StoredEvent,
    WriteResult,
)
from updater_stats.backends import Batching

from .conftest import VALID_EVENT, body

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


class Timed(threading.Thread):
    """Runs *call* in a thread: what it returned or raised, and when it finished."""

    def __init__(self, call: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.call = call
        self.result: Any = None
        self.error: BaseException | None = None
        self.took: float | None = None
        self.start()

    def run(self) -> None:
        started = time.monotonic()
        try:
            self.result = self.call()
        except BaseException as exc:
            self.error = exc
        self.took = time.monotonic() - started

    def outcome(self, within: float = 30) -> tuple[Any, BaseException | None, float]:
        self.join(within)
        assert not self.is_alive(), "the call never returned"
        assert self.took is not None
        return self.result, self.error, self.took


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
