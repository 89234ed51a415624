"""How many bytes of request bodies an app holds at once: memory that stays bounded.

A maximum-size body (16 MiB) costs several times its size while it is parsed
and validated. Without a bound, a flood of them grows memory with every
connection; with one, large requests take turns and small ones never wait.
"""

from __future__ import annotations

import asyncio
import collections

__all__ = ["BodyBudget"]


class BodyBudget:
    """Bytes that request bodies in flight may hold, shared by the requests of one app.

    `acquire` waits its turn (first come, first served) for room, up to a timeout;
    `take` is the no-wait form for bodies whose size is only known as they arrive.
    A single request larger than the whole budget is admitted when nothing else
    is in flight, so a legitimate maximum-size body is never refused for size.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a body budget must be at least 1 byte, got {limit}")
        self.limit = limit
        self.in_use = 0
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    def _fits(self, size: int) -> bool:
        return self.in_use == 0 or self.in_use + size <= self.limit

    def take(self, size: int) -> bool:
        """Take *size* bytes now if they fit and nobody waits before us; never waits."""
        if self._waiters or not self._fits(size):
            return False
        self.in_use += size
        return True

    async def acquire(self, size: int, timeout: float) -> bool:
        """Take *size* bytes, waiting up to *timeout* seconds for room; whether it did."""
        if self.take(size):
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (size, waiter)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except asyncio.TimeoutError:
            self._give_up(entry)
            return False
        except asyncio.CancelledError:  # the client went away while waiting
            self._give_up(entry)
            raise
        return True

    def _give_up(self, entry: tuple[int, asyncio.Future[None]]) -> None:
        size, waiter = entry
        if waiter.done() and not waiter.cancelled():
            self.release(size)  # granted just as we gave up: hand it on
            return
        self._waiters.remove(entry)
        waiter.cancel()
        self._wake()  # the head of the queue changed: someone behind may fit now

    def release(self, size: int) -> None:
        """Give back *size* bytes and let waiting requests in, in order."""
        self.in_use -= size
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._fits(self._waiters[0][0]):
            size, waiter = self._waiters.popleft()
            if waiter.done():
                continue
            self.in_use += size
            waiter.set_result(None)
