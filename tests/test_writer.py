"""The group-commit writer: grouping, acknowledgement after commit, failure isolation, bounds."""

from __future__ import annotations

import asyncio
import gzip
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import pytest

from updater_stats import BackendError, Collector, MemoryBackend, StoredEvent, WriteResult
from updater_stats._writer import BatchWriter
from updater_stats.backends import Batching
from updater_stats.testing import stored_event

from .conftest import VALID_EVENT, body
from .helpers import Timed


class GatedBackend(MemoryBackend):
    """A memory backend whose writes wait for `release()`; it records every batch it gets."""

    def __init__(self, fail_when: Callable[[Sequence[StoredEvent]], bool] | None = None) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.batches: list[list[StoredEvent]] = []
        self.started = threading.Semaphore(0)
        self.fail_when = fail_when

    def release(self) -> None:
        self.gate.set()

    def write(self, events: Sequence[StoredEvent]) -> WriteResult:
        self.batches.append(list(events))
        self.started.release()
        assert self.gate.wait(10), "the test never released the gate"
        if self.fail_when is not None and self.fail_when(events):
            raise OSError("disk on fire")
        return super().write(events)

    def wait_for_write(self) -> None:
        assert self.started.acquire(timeout=5), "no write started"


def make_writer(
    write: Callable[[Sequence[StoredEvent]], object],
    batching: Batching | None = None,
    *,
    deadline: float = 5.0,
) -> BatchWriter:
    """A writer over a backend's plain ``write``, which is not told the write's deadline."""
    return BatchWriter(lambda batch, _by: write(batch), batching, deadline=deadline)


def events(*timestamps: int) -> list[StoredEvent]:
    return [stored_event(timestamp=ts) for ts in timestamps]


class Caller(threading.Thread):
    """Calls `writer.write(batch)` in a thread and keeps the outcome."""

    def __init__(self, writer: BatchWriter, batch: Sequence[StoredEvent]) -> None:
        super().__init__()
        self.writer, self.batch = writer, batch
        self.error: BaseException | None = None
        self.returned_at: float | None = None
        self.start()

    def run(self) -> None:
        try:
            self.writer.write(self.batch)
            self.returned_at = time.monotonic()
        except BaseException as exc:
            self.error = exc

    def outcome(self) -> BaseException | None:
        self.join(10)
        assert not self.is_alive()
        return self.error


def wait_until(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the condition"
        time.sleep(0.001)


def queued(writer: BatchWriter) -> int:
    return writer._queued_events


def test_callers_arriving_during_a_write_share_the_next_one():
    backend = GatedBackend()
    writer = make_writer(backend.write, Batching(max_delay=0))
    first = Caller(writer, events(0))
    backend.wait_for_write()
    others = [Caller(writer, events(i)) for i in range(1, 11)]
    wait_until(lambda: queued(writer) == 10)

    backend.release()

    assert [c.outcome() for c in [first, *others]] == [None] * 11
    assert [len(batch) for batch in backend.batches] == [1, 10]
    assert writer.writes == 2
    assert sorted(e.event.timestamp for e in backend.events()) == list(range(11))


class CountingCondition(threading.Condition):
    """A condition that counts the wake-ups it is asked for."""

    def __init__(self, lock: Any) -> None:
        super().__init__(lock)
        self.notified = 0

    def notify(self, n: int = 1) -> None:
        self.notified += 1
        super().notify(n)


def test_callers_do_not_wake_the_writer_while_it_writes_nor_before_the_batch_is_full():
    backend = GatedBackend()
    writer = make_writer(backend.write, Batching(max_delay=60, max_events=8))
    writer._work = CountingCondition(writer._lock)
    first = Caller(writer, events(0))
    backend.wait_for_write()
    woken_for_the_first = writer._work.notified
    others = [Caller(writer, events(i)) for i in range(1, 8)]
    wait_until(lambda: queued(writer) == 7)

    assert writer._work.notified == woken_for_the_first  # it is writing: nobody to wake
    backend.release()
    # The writer holds the next batch open (max_delay, longer than the callers' deadline) until
    # the last caller fills it up to max_events: woken once then, not once per caller. Were
    # that wake-up lost, every caller would get a 503 at its deadline instead.
    last = Caller(writer, events(8))
    assert [c.outcome() for c in [first, *others, last]] == [None] * 9
    assert sorted(e.event.timestamp for e in backend.events()) == list(range(9))
    assert writer._work.notified <= woken_for_the_first + 1
    assert writer.writes <= 3


def test_a_caller_is_answered_only_after_its_events_are_committed():
    backend = GatedBackend()
    writer = make_writer(backend.write)
    caller = Caller(writer, events(1))
    backend.wait_for_write()

    time.sleep(0.2)
    assert caller.is_alive()  # still waiting: nothing is committed yet
    assert len(backend) == 0
    backend.release()

    assert caller.outcome() is None
    assert len(backend) == 1


def test_a_failing_write_fails_exactly_the_callers_in_it():
    poison = stored_event(timestamp=666)
    backend = GatedBackend(fail_when=lambda batch: poison in batch)
    writer = make_writer(backend.write, Batching(max_delay=0))
    before = Caller(writer, events(1))
    backend.wait_for_write()
    victims = [Caller(writer, [poison]), Caller(writer, events(2, 3))]
    wait_until(lambda: queued(writer) == 3)

    backend.release()
    errors = [c.outcome() for c in victims]
    after = Caller(writer, events(4))

    assert before.outcome() is None
    assert after.outcome() is None
    assert all(isinstance(e, BackendError) and e.status_code == 503 for e in errors)
    assert "OSError: disk on fire" in str(errors[0])
    assert errors[0] is not errors[1]  # each caller raises its own copy, tracebacks apart
    assert sorted(e.event.timestamp for e in backend.events()) == [1, 4]


def test_batches_stop_at_max_events_but_never_split_a_request():
    backend = GatedBackend()
    writer = make_writer(backend.write, Batching(max_events=5, max_delay=0))
    first = Caller(writer, events(0))
    backend.wait_for_write()
    callers = [Caller(writer, events(10 * n + 1, 10 * n + 2, 10 * n + 3)) for n in range(1, 4)]
    wait_until(lambda: queued(writer) == 9)
    big = Caller(writer, events(*range(100, 107)))
    wait_until(lambda: queued(writer) == 16)

    backend.release()

    assert [c.outcome() for c in [first, *callers, big]] == [None] * 5
    assert [len(batch) for batch in backend.batches] == [1, 3, 3, 3, 7]


def test_a_full_queue_makes_callers_wait_and_then_answers_503():
    backend = GatedBackend()
    writer = make_writer(backend.write, Batching(max_pending_events=4, max_delay=0))
    writing = Caller(writer, events(0))
    backend.wait_for_write()
    waiting = [Caller(writer, events(1, 2)), Caller(writer, events(3, 4))]
    wait_until(lambda: queued(writer) == 4)

    started = time.monotonic()
    with pytest.raises(BackendError) as info:
        # Its body was read 4.7 s ago: 0.3 s of its 5 s are left; those queued keep theirs.
        writer.write(events(5), since=started - 4.7)
    waited = time.monotonic() - started
    assert 0.25 <= waited < 1.5  # it waited for room, and no longer than its deadline
    assert info.value.code == "storage_overloaded"
    assert info.value.status_code == 503
    assert "storage is overloaded: 4 events are waiting" in info.value.message
    assert queued(writer) == 4  # the queue did not grow past its bound
    backend.release()
    assert [c.outcome() for c in (writing, *waiting)] == [None] * 3


def test_room_freed_by_a_write_lets_a_waiting_caller_in():
    backend = GatedBackend()
    writer = make_writer(backend.write, Batching(max_pending_events=2, max_delay=0))
    writing = Caller(writer, events(0))
    backend.wait_for_write()
    queued_caller = Caller(writer, events(1, 2))
    wait_until(lambda: queued(writer) == 2)
    waiting = Caller(writer, events(3))
    time.sleep(0.1)
    assert queued(writer) == 2  # waits outside the queue

    backend.release()

    assert [c.outcome() for c in (writing, queued_caller, waiting)] == [None] * 3
    assert sorted(e.event.timestamp for e in backend.events()) == [0, 1, 2, 3]


def test_a_caller_past_its_deadline_gets_503_and_its_queued_events_are_dropped():
    backend = GatedBackend()
    writer = make_writer(backend.write, Batching(max_delay=0), deadline=0.3)
    writing = Caller(writer, events(1))
    backend.wait_for_write()
    late = Caller(writer, events(2))

    late_error = late.outcome()
    writing_error = writing.outcome()
    backend.release()
    writer.flush(5)

    assert isinstance(late_error, BackendError)
    assert "did not take the events" in str(late_error)
    assert late_error.code == "storage_timeout"
    # The write in progress may still commit: 503 is safe (a retry is deduplicated by key).
    assert isinstance(writing_error, BackendError)
    assert "did not confirm" in str(writing_error)
    assert writing_error.code == "storage_timeout"
    assert [e.event.timestamp for e in backend.events()] == [1]
    assert [len(batch) for batch in backend.batches] == [1]


def test_a_lone_request_is_written_at_once():
    backend = MemoryBackend()
    writer = make_writer(backend.write, Batching(max_delay=2.0))

    started = time.monotonic()
    for ts in range(5):
        writer.write(events(ts))

    assert time.monotonic() - started < 1.0
    assert writer.writes == 5


def test_concurrent_requests_wait_for_each_other_up_to_max_delay():
    backend = MemoryBackend()
    writer = make_writer(backend.write, Batching(max_delay=0.5, delay_lone_requests=True))
    start = threading.Barrier(12)

    def call(ts: int) -> None:
        start.wait()
        writer.write(events(ts))

    threads = [threading.Thread(target=call, args=(ts,)) for ts in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert len(backend) == 12
    assert writer.writes <= 2


def test_delay_lone_requests_holds_even_a_single_request():
    writer = make_writer(MemoryBackend().write, Batching(max_delay=0.2, delay_lone_requests=True))

    started = time.monotonic()
    writer.write(events(1))

    assert time.monotonic() - started >= 0.19


def test_a_batch_closes_early_once_max_events_are_waiting():
    writer = make_writer(
        MemoryBackend().write, Batching(max_events=3, max_delay=5, delay_lone_requests=True)
    )

    started = time.monotonic()
    writer.write(events(1, 2, 3))

    assert time.monotonic() - started < 1


def test_close_writes_what_is_queued_then_refuses_more():
    backend = GatedBackend()
    writer = make_writer(backend.write, Batching(max_delay=0))
    callers = [Caller(writer, events(0))]
    backend.wait_for_write()
    callers += [Caller(writer, events(ts)) for ts in (1, 2, 3)]
    wait_until(lambda: queued(writer) == 3)
    closing = threading.Thread(target=writer.close)
    closing.start()

    backend.release()
    closing.join(10)

    assert [c.outcome() for c in callers] == [None] * 4
    assert sorted(e.event.timestamp for e in backend.events()) == [0, 1, 2, 3]
    with pytest.raises(BackendError, match="closed"):
        writer.write(events(4))


def test_flush_waits_for_queued_and_running_writes():
    backend = GatedBackend()
    writer = make_writer(backend.write)
    assert writer.flush(0.1) is True  # nothing to wait for
    caller = Caller(writer, events(1))
    backend.wait_for_write()

    assert writer.flush(0.1) is False
    backend.release()
    assert writer.flush(5) is True
    assert caller.outcome() is None


def test_an_idle_writer_thread_exits_and_a_new_one_starts_on_demand():
    writer = make_writer(MemoryBackend().write)
    writer.write(events(1))
    thread = writer._thread
    assert thread is not None

    thread.join(5)  # exits by itself after a second without work

    assert not thread.is_alive()
    writer.write(events(2))
    assert writer.writes == 2


def test_async_callers_share_writes_without_a_thread_each():
    class Slow(MemoryBackend):
        def write(self, events: Sequence[StoredEvent]) -> WriteResult:
            time.sleep(0.02)
            return super().write(events)

    backend = Slow()
    writer = make_writer(backend.write, Batching(max_delay=0.01))
    threads_seen: list[int] = []
    before = threading.active_count()

    async def main() -> None:
        async def one(ts: int) -> None:
            threads_seen.append(threading.active_count())
            await writer.awrite(events(ts))

        await asyncio.gather(*(one(ts) for ts in range(300)))

    asyncio.run(main())

    assert len(backend) == 300
    assert writer.writes < 30
    assert max(threads_seen) - before <= 1  # the writer's; the waiting requests hold none


def test_async_caller_gets_the_write_error():
    backend = GatedBackend(fail_when=lambda batch: True)
    backend.release()
    writer = make_writer(backend.write)

    with pytest.raises(BackendError, match="disk on fire"):
        asyncio.run(writer.awrite(events(1)))


def test_a_cancelled_async_caller_withdraws_its_queued_events():
    backend = GatedBackend()
    writer = make_writer(backend.write, Batching(max_delay=0))
    first = Caller(writer, events(1))
    backend.wait_for_write()

    async def main() -> None:
        task = asyncio.ensure_future(writer.awrite(events(2)))
        await asyncio.sleep(0.05)
        assert queued(writer) == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert queued(writer) == 0

    asyncio.run(main())
    backend.release()

    assert first.outcome() is None
    assert writer.flush(5)
    assert [e.event.timestamp for e in backend.events()] == [1]


def test_async_caller_past_its_deadline_gets_503():
    backend = GatedBackend()
    writer = make_writer(backend.write, Batching(max_delay=0), deadline=0.2)
    first = Caller(writer, events(1))
    backend.wait_for_write()

    with pytest.raises(BackendError, match="did not take the events"):
        asyncio.run(writer.awrite(events(2)))
    backend.release()
    assert isinstance(first.outcome(), BackendError)


@pytest.mark.parametrize(
    "options",
    [{"max_events": 0}, {"max_delay": -1}, {"max_pending_events": 0}],
)
def test_batching_refuses_impossible_settings(options: dict[str, Any]):
    with pytest.raises(ValueError, match=next(iter(options))):
        Batching(**options)


@pytest.mark.parametrize("deadline", [0, -1.0, float("nan"), float("inf")])
def test_a_collector_refuses_an_impossible_deadline(deadline: float):
    with pytest.raises(ValueError, match="deadline"):
        Collector(MemoryBackend(), deadline=deadline)


def test_a_collectors_deadline_is_its_writers_and_is_set_once():
    collector = Collector(MemoryBackend(), deadline=2)
    assert collector._writer.deadline == 2.0
    with pytest.raises(attrs.exceptions.FrozenAttributeError):
        collector.deadline = 3.0


# -- deadlines -----------------------------------------------------------------------------


def test_a_caller_whose_write_hangs_is_answered_at_its_deadline_not_when_the_write_ends():
    backend = GatedBackend()
    writer = make_writer(backend.write, Batching(max_delay=0), deadline=0.5)
    writing = Timed(lambda: writer.write(events(1)))
    backend.wait_for_write()
    queued_behind = Timed(lambda: writer.write(events(2)))

    _, writing_error, writing_took = writing.outcome()
    _, queued_error, queued_took = queued_behind.outcome()
    backend.release()

    assert isinstance(writing_error, BackendError)
    assert writing_error.status_code == 503
    assert isinstance(queued_error, BackendError)
    assert queued_error.status_code == 503
    assert 0.45 <= writing_took < 1.5
    assert 0.45 <= queued_took < 1.5
    assert writer.flush(5)
    # The hanging write committed after its caller's 503; the queued caller's never started.
    assert [e.event.timestamp for e in backend.events()] == [1]
    assert [len(batch) for batch in backend.batches] == [1]


def test_the_writer_never_starts_a_request_whose_deadline_is_too_near():
    backend = GatedBackend()
    backend.release()
    writer = make_writer(backend.write, Batching(max_delay=0), deadline=1.0)

    started = time.monotonic()
    with pytest.raises(BackendError) as info:
        # Read 0.95 s ago: 50 ms left, less than the 100 ms an answer is given.
        writer.write(events(1), since=started - 0.95)

    assert info.value.code == "storage_timeout"
    assert "not stored" in info.value.message
    assert time.monotonic() - started < 0.5  # answered at once, not at the deadline
    assert backend.batches == []  # never written
    writer.write(events(2))  # a request with time left is written as usual
    assert [e.event.timestamp for e in backend.events()] == [2]


def test_an_async_request_whose_deadline_is_too_near_is_answered_at_once_and_not_written():
    backend = GatedBackend()
    backend.release()
    writer = make_writer(backend.write, Batching(max_delay=0), deadline=1.0)

    async def main() -> float:
        started = time.monotonic()
        with pytest.raises(BackendError, match="not stored"):
            await writer.awrite(events(1), since=started - 0.95)
        return time.monotonic() - started

    assert asyncio.run(main()) < 0.5
    assert backend.batches == []


def test_a_write_is_given_its_earliest_callers_deadline_less_a_margin():
    seen: list[tuple[int, float]] = []
    gate = threading.Event()
    started = threading.Event()

    def write(batch: Sequence[StoredEvent], write_by: float) -> WriteResult:
        seen.append((len(batch), write_by))
        started.set()
        assert gate.wait(10)
        return WriteResult(inserted=len(batch))

    writer = BatchWriter(write, Batching(max_delay=0), deadline=2.0)
    first = Timed(lambda: writer.write(events(0)))
    assert started.wait(5)
    now = time.monotonic()
    fresh = Timed(lambda: writer.write(events(1), since=now))
    older = Timed(lambda: writer.write(events(2, 3), since=now - 1.0))
    wait_until(lambda: queued(writer) == 3)
    gate.set()

    assert fresh.outcome()[1] is None
    assert older.outcome()[1] is None
    assert first.outcome()[1] is None
    assert [size for size, _ in seen] == [1, 3]
    # The older caller's deadline (now + 1 s), less the margin (a tenth of the deadline).
    assert seen[1][1] == pytest.approx(now + 1.0 - 0.2, abs=1e-6)


# -- through the collector -----------------------------------------------------------------


def test_collector_close_answers_every_queued_request_then_closes_the_backend():
    backend = GatedBackend()
    collector = Collector(backend, batching=Batching(max_delay=0))
    answers: list[Any] = []

    def send(ts: int) -> None:
        answers.append(collector.handle(body({**VALID_EVENT, "timestamp": ts})))

    threads = [threading.Thread(target=send, args=(0,))]
    threads[0].start()
    backend.wait_for_write()
    threads += [threading.Thread(target=send, args=(ts,)) for ts in (1, 2)]
    for thread in threads[1:]:
        thread.start()
    wait_until(lambda: queued(collector._writer) == 2)
    closing = threading.Thread(target=collector.close)
    closing.start()
    backend.release()
    closing.join(10)
    for thread in threads:
        thread.join(10)

    assert answers == [{"status": "ok"}] * 3
    assert sorted(e.event.timestamp for e in backend.events()) == [0, 1, 2]
    with pytest.raises(BackendError):
        backend.ping()  # closed, after the queued writes


def test_collector_takes_the_backends_batching_unless_given_one():
    class Declares(MemoryBackend):
        batching = Batching(max_events=7)

    assert Collector(Declares())._writer.batching.max_events == 7
    assert Collector(Declares(), batching=Batching(max_events=3))._writer.batching.max_events == 3
    assert Collector(MemoryBackend())._writer.batching == Batching()


def test_collector_groups_concurrent_requests_into_few_writes():
    backend = MemoryBackend()
    collector = Collector(backend, batching=Batching(max_delay=0.05))
    start = threading.Barrier(16)

    def send(worker: int) -> None:
        start.wait()
        for i in range(10):
            collector.handle(body({**VALID_EVENT, "timestamp": worker * 100 + i}))

    threads = [threading.Thread(target=send, args=(w,)) for w in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert len(backend) == 160
    assert collector._writer.writes < 80


def test_ahandle_shares_writes_across_coroutines_for_every_body_kind():
    class Slow(MemoryBackend):
        def write(self, events: Sequence[StoredEvent]) -> WriteResult:
            time.sleep(0.01)
            return super().write(events)

    backend = Slow()
    collector = Collector(backend, batching=Batching(max_delay=0.01))
    small = [body({**VALID_EVENT, "timestamp": ts}) for ts in range(200)]
    # Decoded in a worker thread: gzip (it may expand 16 MiB) and bodies over 64 KiB.
    zipped = gzip.compress(body({**VALID_EVENT, "timestamp": 1000}))
    large = body(
        [{**VALID_EVENT, "timestamp": 2000 + i, "metadata": {"m": "x" * 600}} for i in range(200)]
    )
    assert len(large) > 64 * 1024

    async def main() -> list[dict[str, Any]]:
        return await asyncio.gather(*(collector.ahandle(raw) for raw in [*small, zipped, large]))

    answers = asyncio.run(main())

    assert answers[:201] == [{"status": "ok"}] * 201
    assert len(answers[201]["results"]) == 200
    assert len(backend) == 401
    assert collector._writer.writes < 40
