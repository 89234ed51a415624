"""The async examples store events in a worker thread: the event loop serves others meanwhile."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from updater_stats import Collector, MemoryBackend, StoredEvent, WriteResult

from ..conftest import fixture_bytes, stored
from .conftest import CALL_TIMEOUT, StatsClient

#: How long a held write waits to be released; a blocked event loop cannot release it.
GATE_TIMEOUT = 5.0


class GatedBackend(MemoryBackend):
    """Holds each write until `release` is set, and records whether that happened in time."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.released_in_time: list[bool] = []

    def write(self, events: Sequence[StoredEvent]) -> WriteResult:
        self.entered.set()
        self.released_in_time.append(self.release.wait(GATE_TIMEOUT))
        return super().write(events)


def test_a_slow_write_does_not_block_the_event_loop(
    async_stats_client: StatsClient, configure: Callable[..., Collector]
) -> None:
    backend = GatedBackend()
    configure(backend)

    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            posting = pool.submit(async_stats_client.post, fixture_bytes("ios_batch"))
            assert backend.entered.wait(CALL_TIMEOUT), "the write never started"
            # Served by the same event loop while the write is held in its worker thread; had
            # the write run on the loop, this would wait until the gate gave up.
            health = async_stats_client.get()
        finally:
            backend.release.set()
        answer = posting.result(CALL_TIMEOUT)

    assert health.status == 200
    assert backend.released_in_time == [True]
    assert answer.status == 200
    assert len(stored(backend)) == 3
