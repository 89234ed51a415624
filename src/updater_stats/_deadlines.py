"""Deadlines on an event loop, kept in a heap under one timer instead of a timer each.

A timer per request (``loop.call_at``, then ``TimerHandle.cancel`` when the request ends in
time, as nearly all do) costs about 2.8 µs on uvloop, and each request had two: one for its
body, one for its answer. Here a deadline is a heap entry and a dictionary entry (about
0.4 µs), and one timer per loop waits for the earliest. A key fires when its deadline comes,
as with a timer of its own: never before, and no later than the loop runs the timer.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["Deadlines", "LoopDeadlines"]

K = TypeVar("K", bound=Hashable)

# Keys discarded in time stay in the heap until the timer passes them or the heap is rebuilt,
# when it holds this many more entries than twice the keys pending: a rebuild of a hundred
# entries every hundred requests or so under load.
_SLACK = 64


class Deadlines(Generic[K]):
    """The deadlines of one event loop: *fire* is called with each key whose deadline came.

    Use it from the loop's thread only.
    """

    __slots__ = ("_at", "_count", "_due", "_fire", "_heap", "_timer", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, fire: Callable[[K], object]) -> None:
        self.loop = loop
        self._fire = fire
        self._due: dict[K, int] = {}  # each pending key, and the number of its heap entry
        self._heap: list[tuple[float, int, K]] = []  # (deadline, number, key), stale ones too
        self._count = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._at = math.inf  # the deadline the timer waits for

    def add(self, key: K, deadline: float) -> None:
        """Fire *key* at *deadline*, a `time.monotonic` value, unless `discard` comes first."""
        heap, due = self._heap, self._due
        if len(heap) > 2 * len(due) + _SLACK:
            heap[:] = [entry for entry in heap if due.get(entry[2]) == entry[1]]
            heapq.heapify(heap)
        number = next(self._count)
        due[key] = number
        heapq.heappush(heap, (deadline, number, key))
        if deadline < self._at:  # rare under load: later requests have later deadlines
            self._wait_for(deadline)

    def discard(self, key: K) -> None:
        """Forget *key*: it ended in time."""
        self._due.pop(key, None)

    def _wait_for(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._at = deadline
        self._timer = self.loop.call_later(max(0.0, deadline - time.monotonic()), self._check)

    def _check(self) -> None:
        self._timer, self._at = None, math.inf
        heap, due = self._heap, self._due
        now = time.monotonic()
        while heap:
            deadline, number, key = heap[0]
            if due.get(key) != number:  # discarded in time
                heapq.heappop(heap)
            elif deadline > now:
                self._wait_for(deadline)
                return
            else:
                heapq.heappop(heap)
                del due[key]
                self._fire(key)


class LoopDeadlines(Generic[K]):
    """The `Deadlines` of the running event loop, made when a loop first needs them.

    A caller keeps the `Deadlines` it added a key to until it discards the key: another loop
    (in another thread) may have its own meanwhile. Only the last loop's are kept here, so
    an app called from many short-lived loops (`asyncio.run` per call) keeps none of them;
    loops taking turns each make new ones, which works, more slowly.
    """

    __slots__ = ("_fire", "_last")

    def __init__(self, fire: Callable[[K], object]) -> None:
        self._fire = fire
        self._last: Deadlines[K] | None = None

    def on(self, loop: asyncio.AbstractEventLoop) -> Deadlines[K]:
        """The deadlines of *loop*."""
        last = self._last
        if last is not None and last.loop is loop:  # nearly always: one loop per process
            return last
        made = Deadlines(loop, self._fire)
        self._last = made
        return made
