"""``serve``'s connections must send a request's headers in time, or be closed.

uvicorn times out a kept-alive connection that sends nothing after a response, but not one
that has sent nothing since it opened, nor one that sends a request's headers a byte at a
time: each holds a socket and a file descriptor for as long as its client likes, and a few
thousand of them (one machine's worth of "slowloris" clients) leave none for devices. The
ASGI app bounds the time a body takes (`AppSettings.body_timeout`); what comes before the
body is the server's to bound, and this module does it for ``serve``.

A connection has ``--header-timeout`` seconds (`header_timeout_from_env`: ``serve`` hands
them to its workers), from when it opened or from the end of its last
answer, to send the whole request line and headers of its next request; past that it is
closed (without an answer: there is no request to answer). The check runs once a second on
each event loop, over the connections of that loop, so a connection is closed up to two
seconds late, and a request costs the check nothing.

``serve`` passes `http_protocol()` to uvicorn: its HTTP protocol (httptools where installed,
else h11, as uvicorn would pick) with the check added, each in a module of its own
(``_header_deadline_httptools``, ``_header_deadline_h11``) since each imports a parser that
only the ``server`` extra installs; this one imports neither.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from typing import Any

from ._settings import header_timeout_from_env

__all__ = ["HeaderDeadline", "http_protocol"]

log = logging.getLogger("updater_stats")

# Seconds between two looks at a loop's connections.
_SWEEP_SECONDS = 1.0


class _Sweeper:
    """The connections of one event loop, looked at every `_SWEEP_SECONDS` while there are any.

    A connection waits for headers while it has no request, or its last request's answer is
    complete. It is timed from when it opened, or from the first look that found it waiting
    after another request (which its last cycle, a new object each request, tells).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self._loop = loop
        self._timeout = timeout
        self._connections: set[HeaderDeadline] = set()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, connection: HeaderDeadline) -> None:
        self._connections.add(connection)
        if self._timer is None:
            self._timer = self._loop.call_later(_SWEEP_SECONDS, self._sweep)

    def discard(self, connection: HeaderDeadline) -> None:
        self._connections.discard(connection)

    def _sweep(self) -> None:
        self._timer = None
        now = self._loop.time()
        for connection in list(self._connections):
            cycle = connection.cycle
            if cycle is not None and not cycle.response_complete:
                continue  # a request is being read or answered: the app bounds that
            if cycle is not connection.timed_cycle:  # another request since the last look
                connection.timed_cycle, connection.waiting_since = cycle, now
            elif now - connection.waiting_since >= self._timeout:
                self._connections.discard(connection)
                log.debug("closed a connection that sent no request headers in %gs", self._timeout)
                connection.transport.close()
        if self._connections:
            self._timer = self._loop.call_later(_SWEEP_SECONDS, self._sweep)
        else:
            _sweepers.pop(self._loop, None)


_sweepers: dict[asyncio.AbstractEventLoop, _Sweeper] = {}


class HeaderDeadline:
    """Mixed into a uvicorn HTTP protocol: its connections are closed by `_Sweeper`.

    Needs of the protocol: ``loop``, ``transport`` and ``cycle`` (the request being read or
    answered, with ``response_complete``), as uvicorn's httptools and h11 protocols have them.
    """

    # Set by the protocol (uvicorn's attributes).
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    cycle: Any
    # The last request seen by the sweeper, and when it first found the connection waiting.
    timed_cycle: Any = None
    waiting_since: float = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self.timed_cycle, self.waiting_since = None, self.loop.time()
        sweeper = _sweepers.get(self.loop)
        if sweeper is None:
            sweeper = _sweepers[self.loop] = _Sweeper(self.loop, header_timeout_from_env())
        sweeper.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        sweeper = _sweepers.get(self.loop)
        if sweeper is not None:
            sweeper.discard(self)
        super().connection_lost(exc)  # type: ignore[misc]


def http_protocol() -> str:
    """What ``serve`` gives uvicorn as its HTTP protocol: where uvicorn would use httptools
    (installed), httptools with the deadline; else h11 with it. An import string, which
    uvicorn's worker processes import for themselves."""
    if importlib.util.find_spec("httptools") is not None:
        return "updater_stats._header_deadline_httptools:HttpToolsWithHeaderDeadline"
    return "updater_stats._header_deadline_h11:H11WithHeaderDeadline"
