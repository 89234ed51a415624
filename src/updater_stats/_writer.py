"""The group-commit writer: concurrent requests share one storage write.

Every `Collector` owns one `BatchWriter`. A caller hands it the events of one
request and waits; a writer thread takes whatever requests are queued (whole
requests, never split), writes them to the backend in one `write` call, and
then wakes each caller with the outcome of that one write. So:

- a caller is answered only after its events are committed;
- a failing write fails exactly the callers whose events were in it;
- storage sees one write per batch, not one per request.

Sync callers block on a `threading.Event`; async callers await an asyncio
future that the writer thread resolves with ``call_soon_threadsafe``. The
queue is bounded: when storage is slower than intake, callers wait for room.

Every caller has a deadline (`DEFAULT_DEADLINE` seconds from when its body was
read), and is answered by then whatever storage does:

- a caller still waiting for room, or still queued, at its deadline is taken
  out and gets a `BackendError` (503): its events are never written;
- the writer never starts writing a request whose deadline has passed (or is
  too near for a write to finish): it is answered 503 at once instead;
- a write is given the earliest deadline of its callers (less a margin), which
  backends that support it (`SupportsDeadline`) do not wait past;
- a caller whose write is still running at its deadline gets a 503 then,
  without waiting for the write, which may still commit: see `_give_up`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence

from ._batching import DEFAULT_DEADLINE, Batching
from ._deadlines import LoopDeadlines
from ._models import StoredEvent
from .exceptions import BackendError

__all__ = ["BatchWriter"]

log = logging.getLogger("updater_stats")

# A writer thread with nothing to do for this long exits; the next request starts a new one.
# Collectors that are never closed (tests, short scripts) then leave no thread behind.
_IDLE_EXIT_SECONDS = 1.0

# The time a write needs to be answered once it is done, taken off its deadline: no write
# starts for a caller with less than this left, and backends stop waiting this much earlier.
_MAX_MARGIN = 0.25


_QUEUED, _TAKEN, _DONE, _ABANDONED = range(4)


class _Ticket:
    """One caller's events, its deadline, and the way to tell that caller the outcome.

    A sync caller waits on *notify* (a `threading.Event`'s ``set``); an async
    caller on *future*, resolved in its *loop*. *deadline* is a `time.monotonic` value.
    """

    __slots__ = ("arrived", "deadline", "error", "events", "future", "loop", "notify", "state")

    def __init__(
        self,
        events: Sequence[StoredEvent],
        deadline: float,
        notify: Callable[[], None] | None = None,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        future: asyncio.Future[None] | None = None,
    ) -> None:
        self.events = events
        self.deadline = deadline
        self.notify = notify
        self.loop = loop
        self.future = future
        self.arrived = time.monotonic()
        self.state = _QUEUED
        self.error: BackendError | None = None


class _DeadlinePassed(Exception):  # noqa: N818 - a signal inside awrite, never raised to callers.
    """An async caller's deadline passed before its write was confirmed."""


def _timed_out(message: str) -> BackendError:
    return BackendError(message, code="storage_timeout")


def _per_caller(error: BackendError) -> BackendError:
    """A fresh copy of a batch's error for one caller.

    Several threads raise the outcome of one write at once; raising one shared
    instance would have them overwrite each other's traceback.
    """
    copy = BackendError(error.message, code=error.code, more_info=error.more_info)
    copy.__cause__ = error.__cause__ or error
    return copy


def _settle(future: asyncio.Future[None], error: BackendError | None) -> None:
    if future.done():  # the caller gave up (timeout or cancellation)
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(_per_caller(error))


def _settle_all(tickets: list[_Ticket]) -> None:
    """Resolve the futures of one write's async callers: one loop wake-up for all of them."""
    for ticket in tickets:
        if ticket.future is not None:
            _settle(ticket.future, ticket.error)


def _expire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_exception(_DeadlinePassed())


class BatchWriter:
    """Groups the events of concurrent callers into single backend writes (group commit).

    Args:
        write: Stores a batch: the backend's ``write``, given the events and the
            moment (a `time.monotonic` value) it must not wait past.
        batching: Batch size, delay and bounds.
        deadline: Seconds from a caller's start (see `write`) to its answer.
    """

    def __init__(
        self,
        write: Callable[[Sequence[StoredEvent], float], object],
        batching: Batching | None = None,
        *,
        deadline: float = DEFAULT_DEADLINE,
    ) -> None:
        if not deadline > 0:
            raise ValueError(f"deadline must be more than 0 seconds, got {deadline!r}")
        self._write = write
        self.batching = batching or Batching()
        self.deadline = deadline
        # A tenth of the deadline, at most _MAX_MARGIN: 0.25 s of the default 5 s.
        self._margin = min(_MAX_MARGIN, deadline / 10)
        self._deadlines: LoopDeadlines[asyncio.Future[None]] = LoopDeadlines(_expire)
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # requests queued, or closing
        self._room = threading.Condition(self._lock)  # queue space freed, or closing
        self._idle = threading.Condition(self._lock)  # nothing queued nor being written
        self._queue: collections.deque[_Ticket] = collections.deque()
        self._queued_events = 0
        self._writing = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._last_batch_requests = 0
        self._last_write_end = 0.0
        # While the writer thread waits for requests: how many queued requests it waits for
        # (a full batch wakes it too); `None` while it writes, or once it has been woken.
        # Callers queue without waking it otherwise: a wake-up per request cost a thread
        # switch and the interpreter lock each time (2-4 % of the CPU per single-event request).
        self._wanted: float | None = None
        #: Storage writes done so far (for tests and monitoring).
        self.writes = 0

    def __repr__(self) -> str:
        return f"<BatchWriter {self._queued_events} events queued, {self.writes} writes>"

    # -- callers ---------------------------------------------------------------------------

    def write(self, events: Sequence[StoredEvent], *, since: float | None = None) -> None:
        """Store *events* with other callers' events; return once they are committed.

        *since* is when the caller's deadline started counting (a `time.monotonic`
        value: when its body was read); now by default.

        Raises:
            BackendError: the write failed, the writer is closed, or the
                deadline passed first (code ``storage_timeout``, or
                ``storage_overloaded`` while the queue was full).
        """
        if not events:
            return
        deadline = (time.monotonic() if since is None else since) + self.deadline
        done = threading.Event()
        ticket = _Ticket(events, deadline, done.set)
        with self._lock:
            self._wait_for_room(ticket)
            self._enqueue(ticket)
        if not done.wait(max(0.0, deadline - time.monotonic())):
            self._give_up(ticket)
        with self._lock:  # the writer set the outcome under the lock
            error = ticket.error
        if error is not None:
            raise _per_caller(error)

    async def awrite(self, events: Sequence[StoredEvent], *, since: float | None = None) -> None:
        """`write` for coroutines: waits on the event loop, holds no thread while it waits."""
        if not events:
            return
        deadline = (time.monotonic() if since is None else since) + self.deadline
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        ticket = _Ticket(events, deadline, loop=loop, future=future)
        with self._lock:
            has_room = self._has_room(ticket)
            if has_room:
                self._check_open()
                self._enqueue(ticket)
        if not has_room:
            # Rare (storage is behind): wait for room in a worker thread, not on the loop.
            await asyncio.to_thread(self._enqueue_when_room, ticket)
        # The deadline as an entry under the loop's one deadline timer, not a timer of its own
        # (2.8 µs a request on uvloop), nor asyncio.wait_for, which adds a second future, a
        # callback and a timer.
        deadlines = self._deadlines.on(loop)
        deadlines.add(future, deadline)
        try:
            await future
        except _DeadlinePassed:
            self._give_up(ticket)  # returns only when the write finished just in time
            with self._lock:
                error = ticket.error
            if error is not None:
                raise _per_caller(error) from None
        except asyncio.CancelledError:
            # The client went away: its events need not be written if they still wait.
            self._withdraw(ticket)
            raise
        finally:
            deadlines.discard(future)

    def _enqueue_when_room(self, ticket: _Ticket) -> None:
        with self._lock:
            self._wait_for_room(ticket)
            self._enqueue(ticket)

    def _check_open(self) -> None:
        if self._closed:
            raise BackendError("the collector is closed: storage takes no more events")

    def _has_room(self, ticket: _Ticket) -> bool:
        # An empty queue always takes a request, however large: it would never fit otherwise.
        return (
            self._queued_events == 0
            or self._queued_events + len(ticket.events) <= self.batching.max_pending_events
        )

    def _wait_for_room(self, ticket: _Ticket) -> None:
        """Hold the lock."""
        self._check_open()
        while not self._has_room(ticket):
            remaining = ticket.deadline - time.monotonic()
            if remaining <= 0:
                raise BackendError(
                    f"storage is overloaded: {self._queued_events} events are waiting to be "
                    "written",
                    code="storage_overloaded",
                )
            self._room.wait(remaining)
            self._check_open()

    def _enqueue(self, ticket: _Ticket) -> None:
        """Hold the lock."""
        self._queue.append(ticket)
        self._queued_events += len(ticket.events)
        thread = self._thread
        if thread is None or not thread.is_alive():  # not started, idle-exited, or lost in a fork
            self._thread = threading.Thread(
                target=self._run, name="updater-stats-writer", daemon=True
            )
            self._thread.start()
        wanted = self._wanted
        if wanted is not None and (
            len(self._queue) >= wanted or self._queued_events >= self.batching.max_events
        ):
            self._wanted = None
            self._work.notify()

    def _withdraw(self, ticket: _Ticket) -> bool:
        """Take a ticket that no one waits for out of the queue; False once it is being written."""
        with self._lock:
            return self._take_out(ticket)

    def _take_out(self, ticket: _Ticket) -> bool:
        """`_withdraw`, holding the lock."""
        if ticket.state != _QUEUED:
            return False
        self._queue.remove(ticket)
        self._queued_events -= len(ticket.events)
        ticket.state = _ABANDONED
        self._room.notify_all()
        self._notify_if_idle()
        return True

    def _give_up(self, ticket: _Ticket) -> None:
        """The caller's deadline passed: raise, unless the write finished just in time."""
        with self._lock:
            if ticket.state == _DONE:
                return
            self._take_out(ticket)  # if still queued: it will never be written
            being_written = ticket.state == _TAKEN
        if not being_written:  # taken out now, or by the writer when it came too late
            raise _timed_out(
                f"storage did not take the events within {self.deadline:g} seconds: "
                "they were not stored"
            )
        # Being written now: they may still be stored. A 503 is safe: a device re-sends only
        # events with a timestamp, and those are deduplicated by key. Acknowledging events
        # not known to be stored is not.
        raise _timed_out(f"storage did not confirm the write within {self.deadline:g} seconds")

    # -- lifecycle -------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued request is written; False if *timeout* passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._queue or self._writing:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def close(self) -> None:
        """Write what is queued, then stop: later requests get a `BackendError`."""
        with self._lock:
            self._closed = True
            thread = self._thread
            self._work.notify_all()
            self._room.notify_all()  # callers waiting for room will not get any
        if thread is not None and thread is not threading.current_thread():
            # What is queued is written within its callers' deadlines or not at all, so
            # this is one deadline and one write, unless storage ignores its deadline.
            wait = 2 * self.deadline
            thread.join(wait)
            if thread.is_alive():
                log.warning("the storage writer did not finish within %gs", wait)

    # -- the writer thread -----------------------------------------------------------------

    def _notify_if_idle(self) -> None:
        """Hold the lock."""
        if not self._queue and not self._writing:
            self._idle.notify_all()

    def _next_batch(self, expired: list[_Ticket]) -> list[_Ticket] | None:
        """Wait for requests and take a batch of them; None when the thread should exit.

        Requests too near their deadline to be written are put in *expired*, answered.
        """
        batching = self.batching
        with self._lock:
            while not self._queue:
                if self._closed:
                    self._thread = None
                    return None
                self._wanted = 1
                woken = self._work.wait(_IDLE_EXIT_SECONDS)
                self._wanted = None
                if not woken and not self._queue:
                    self._thread = None  # idle: the next request starts a new thread
                    return None
            if batching.max_delay > 0 and (
                batching.delay_lone_requests
                or self._last_batch_requests > 1
                or len(self._queue) > 1
            ):
                # Hold the batch open for more requests: up to max_delay after the oldest came,
                # or after the last write ended, when the callers it answered may come back.
                opened = max(self._queue[0].arrived, self._last_write_end)
                close_at = opened + batching.max_delay
                # Clients that wait for their answer before sending again (every device, every
                # keep-alive connection) come back in about the number the last write answered.
                # Once they are all queued, nobody else is on the way: holding the batch open
                # longer only delays them. Measured under `benchmarks/http_path.py` with 32
                # connections: single-event requests/s up by about a fifth.
                enough = 0 if batching.delay_lone_requests else self._last_batch_requests
                while (
                    self._queue
                    and self._queued_events < batching.max_events
                    and (enough < 2 or len(self._queue) < enough)
                ):
                    remaining = close_at - time.monotonic()
                    if self._closed or remaining <= 0:
                        break
                    self._wanted = enough if enough >= 2 else math.inf
                    self._work.wait(remaining)
                    self._wanted = None
            batch: list[_Ticket] = []
            size = 0
            # A caller with less than the margin left would have its 503 before the write
            # could answer it: it is answered now, and its events are never written.
            too_late = time.monotonic() + self._margin
            while self._queue and (
                not batch or size + len(self._queue[0].events) <= batching.max_events
            ):
                ticket = self._queue.popleft()
                self._queued_events -= len(ticket.events)
                if ticket.deadline <= too_late:
                    ticket.state = _ABANDONED
                    ticket.error = _timed_out(
                        f"storage did not take the events within {self.deadline:g} seconds: "
                        "they were not stored"
                    )
                    expired.append(ticket)
                    continue
                ticket.state = _TAKEN
                size += len(ticket.events)
                batch.append(ticket)
            self._writing = bool(batch)
            self._room.notify_all()
            return batch

    def _run(self) -> None:
        expired: list[_Ticket] = []
        while (batch := self._next_batch(expired)) is not None:
            if expired:
                self._answer(expired)
                expired.clear()
            if not batch:  # every request queued was withdrawn or expired during the delay
                with self._lock:
                    self._notify_if_idle()
                continue
            # The write must be done in time to answer its most pressed caller.
            write_by = min(ticket.deadline for ticket in batch) - self._margin
            error = self._commit([stored for ticket in batch for stored in ticket.events], write_by)
            with self._lock:
                self.writes += 1
                self._last_batch_requests = len(batch)
                self._last_write_end = time.monotonic()
                for ticket in batch:
                    ticket.error = error
                    ticket.state = _DONE
                self._writing = False
                self._notify_if_idle()
            self._answer(batch)

    @staticmethod
    def _answer(batch: list[_Ticket]) -> None:
        """Wake the callers of one write: each sync caller, and each event loop once.

        Every ``call_soon_threadsafe`` writes to the loop's wake-up pipe; one per loop
        instead of one per request saved about a tenth of the event loop's time under
        load with single-event requests (py-spy, ``benchmarks/http_path.py``).
        """
        by_loop: dict[asyncio.AbstractEventLoop, list[_Ticket]] = {}
        for ticket in batch:
            if ticket.loop is None:
                if ticket.notify is not None:
                    ticket.notify()
            else:
                by_loop.setdefault(ticket.loop, []).append(ticket)
        for loop, tickets in by_loop.items():
            # RuntimeError: the loop was closed, so nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle_all, tickets)

    def _commit(self, events: list[StoredEvent], write_by: float) -> BackendError | None:
        """Write one batch, by *write_by*; the error each of its callers gets, or None."""
        try:
            result = self._write(events, write_by)
        except BackendError as exc:
            log.warning("storage write of %d events failed", len(events), exc_info=True)
            return exc
        except Exception as exc:
            # Whatever a backend raises, devices must hear "retry later", not a crash.
            log.warning("storage write of %d events failed", len(events), exc_info=True)
            error = BackendError(f"storage failed: {type(exc).__name__}: {exc}")
            error.__cause__ = exc
            return error
        inserted = getattr(result, "inserted", None)
        duplicates = getattr(result, "duplicates", None)
        if not isinstance(inserted, int) or not isinstance(duplicates, int):
            return BackendError(f"storage returned {result!r}, not a WriteResult")
        if inserted + duplicates != len(events):
            # A backend that cannot account for every event may have lost one: do not ack.
            return BackendError(
                f"storage accounted for {inserted + duplicates} of {len(events)} events"
            )
        return None
