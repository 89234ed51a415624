"""The stats endpoint as a plain ASGI application: no web framework needed.

Run it with any ASGI server (``updater-stats serve`` uses uvicorn)::

    uvicorn --factory updater_stats.asgi:create_app_from_env

or mount it inside an ASGI framework (Starlette, FastAPI, Litestar).
Storage never runs on the event loop: events are stored in a worker thread
and the answer is sent once they are committed. The app's options are the
fields of `AppSettings`, which the WSGI app takes too.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Iterable
from typing import Any

from . import _http
from ._budget import BodyBudget
from ._collector import Collector
from ._deadlines import LoopDeadlines
from ._http import Disconnected, Message, Receive, Scope, Send, read_chunks
from ._models import Response
from ._settings import BYTES_IN_FLIGHT_ENV_VAR, DEFAULT_BYTES_IN_FLIGHT, PATH_ENV_VAR, AppSettings
from .backends import StorageBackend

__all__ = [
    "BYTES_IN_FLIGHT_ENV_VAR",
    "DEFAULT_BYTES_IN_FLIGHT",
    "PATH_ENV_VAR",
    "AppSettings",
    "StatsASGIApp",
    "create_app",
    "create_app_from_env",
]

log = logging.getLogger("updater_stats")

#: Bodies this small are not worth queueing: they take no share of the budget.
_SMALL_BODY = 64 * 1024


class _TooSlow(Exception):  # noqa: N818 - a signal, not an error for users.
    """The client did not send its whole body in time."""


class StatsASGIApp(_http.StatsAppBase):
    """An ASGI 3 application serving the stats endpoint.

    - ``POST`` on the stats path (or ``/``): the collector's answer.
    - ``GET``/``HEAD`` on it: ``{"status": "ok"}``, the operators' health check.
    - ``GET`` on ``ready_path``: 200 when storage answers, 503 when not (the reason is logged).
    - ``GET`` on ``metrics_path``, when ``metrics=True``: the intake counters as Prometheus text.
    - Other methods: 405; other paths: 404; always a JSON body.
    - A body that does not arrive within ``body_timeout`` seconds: 408 (devices retry).
    - Bodies over 64 KiB hold a share of ``max_bytes_in_flight`` (default 64 MiB) until they
      are answered; one that finds no room within ``body_timeout`` seconds gets 503 (devices
      retry). Memory then stays bounded under a flood of maximum-size bodies.

    Takes what `create_app` takes. The lifespan shutdown closes the collector the app
    created (flushing storage).
    """

    def __init__(
        self,
        storage: str | StorageBackend | Collector | None = None,
        *,
        settings: AppSettings | None = None,
        **options: Any,
    ) -> None:
        super().__init__(storage, settings=settings, **options)
        self.budget = BodyBudget(self.settings.max_bytes_in_flight)
        self._body_clock = _BodyClock(self.settings.body_timeout)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        page = self.metrics_page(method, _app_path(scope))
        if page is not None:
            text, content_type = page
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", content_type.encode()),
                        (b"content-length", str(len(text)).encode()),
                        (b"cache-control", b"no-store"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b"" if method == "HEAD" else text})
            return
        try:
            response = await self._respond(scope, receive)
        except Disconnected:
            return
        payload = response.json()
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": _response_headers(response, payload),
            }
        )
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else payload})

    async def _respond(self, scope: Scope, receive: Receive) -> Response:
        answer = self.answer_without_body(scope["method"], _app_path(scope))
        if answer is not None:
            return answer
        declared, encoding = _length_and_encoding(scope["headers"])
        limit = self.collector.policy.max_body_bytes
        problem = _http.content_length_problem(
            None if declared is None else declared.decode("latin-1"), limit
        )
        if problem is not None:
            return self.refused(problem)
        # A body of unknown length may be as large as the cap: it is charged as such.
        size = int(declared) if declared else limit
        charge = size if size > _SMALL_BODY else 0
        if charge and not await self.budget.acquire(charge, self.settings.body_timeout):
            return self.refused(_http.overloaded())
        try:
            return await self._read_and_store(receive, encoding, limit)
        finally:
            if charge:
                self.budget.release(charge)

    async def _read_and_store(
        self, receive: Receive, encoding: bytes | None, limit: int
    ) -> Response:
        try:
            body = await _read_body(receive, limit, self._body_clock)
        except _TooSlow:
            return self.refused(_http.body_timed_out(self.settings.body_timeout))
        if body is None:
            return self.refused(_http.too_large(limit))
        if encoding is not None:
            problem = _http.encoding_problem(encoding.decode("latin-1"), body)
            if problem is not None:
                return self.refused(problem)
        return await self.collector.arespond(body)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await _http.serve_lifespan(receive, send, self.close)


def _app_path(scope: Scope) -> str:
    """The request path inside the app: without the prefix it is mounted under."""
    path: str = scope["path"]
    root_path = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :] or "/"
    return path


def _length_and_encoding(
    headers: Iterable[tuple[bytes, bytes]],
) -> tuple[bytes | None, bytes | None]:
    """The ``Content-Length`` and ``Content-Encoding`` values, the last of each as sent."""
    length = encoding = None
    for name, value in headers:
        if len(name) == 14 and name.lower() == b"content-length":
            length = value
        elif len(name) == 16 and name.lower() == b"content-encoding":
            encoding = value
    return length, encoding


_OK_PAYLOAD = _http.OK.json()  # the same bytes object every time
_OK_HEADERS = tuple(
    (name.encode(), value.encode()) for name, value in _http.json_headers(_http.OK, _OK_PAYLOAD)
)


def _response_headers(response: Response, payload: bytes) -> list[tuple[bytes, bytes]]:
    if payload is _OK_PAYLOAD and response.status_code == 200:
        # Nearly every answer: encoded once. A new list, as middleware may add to it.
        return list(_OK_HEADERS)
    headers = _http.json_headers(response, payload)
    if response.status_code in {408, 413}:
        # The rest of the body may still be on its way: the connection cannot carry another
        # request, and closing it frees the server at once. (WSGI servers decide this
        # themselves: PEP 3333 keeps hop-by-hop headers from apps.)
        headers.append(("connection", "close"))
    return [(name.encode(), value.encode()) for name, value in headers]


#: Whether `_read_body` cancels itself with one timer (it needs `Task.uncancel`, 3.11+).
_ONE_TIMER = True


class _BodyClock:
    """Cancels the body reads that outlast *timeout* seconds, under one timer per loop."""

    __slots__ = ("deadlines", "late", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.deadlines: LoopDeadlines[asyncio.Task[Any]] = LoopDeadlines(self._cancel)
        self.late: set[asyncio.Task[Any]] = set()  # the tasks this clock cancelled

    def _cancel(self, task: asyncio.Task[Any]) -> None:
        self.late.add(task)
        task.cancel()


async def _read_body(receive: Receive, limit: int, clock: _BodyClock) -> bytes | None:
    """The whole body, or `None` as soon as it passes *limit* bytes (chunked bodies too).

    Raises `_TooSlow` when the body takes longer than the clock's timeout: ASGI servers wait
    for a body as long as the client likes, and a client that never finishes would hold a
    connection and its buffered bytes for ever.
    """
    task = asyncio.current_task()
    if sys.version_info >= (3, 11) and _ONE_TIMER and task is not None:
        # One deadline for the whole body that cancels this task, as `asyncio.timeout` does
        # with more bookkeeping (an eighth of the app's time on single events, by py-spy),
        # and as an entry under the loop's one deadline timer, not a timer of its own (2.8 µs
        # on uvloop). `asyncio.wait_for` around each message started a task per message.
        cancelling = task.cancelling()
        deadlines = clock.deadlines.on(task.get_loop())
        deadlines.add(task, time.monotonic() + clock.timeout)
        try:
            return await read_chunks(receive, limit)
        except asyncio.CancelledError:
            # Ours only if no one else cancelled the task meanwhile: theirs is passed on.
            if task in clock.late and task.uncancel() <= cancelling:
                raise _TooSlow from None
            raise
        finally:
            deadlines.discard(task)
            clock.late.discard(task)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + clock.timeout

    async def receive_in_time() -> Message:  # Python 3.10: no asyncio.timeout yet
        try:
            return await asyncio.wait_for(receive(), max(deadline - loop.time(), 0))
        except asyncio.TimeoutError:
            raise _TooSlow from None

    return await read_chunks(receive_in_time, limit)


def create_app(
    storage: str | StorageBackend | Collector | None = None,
    *,
    settings: AppSettings | None = None,
    **options: Any,
) -> StatsASGIApp:
    """An ASGI app (`StatsASGIApp`) built from *settings*, or from *storage* and keywords.

    Each keyword is a field of `AppSettings` (``path``, ``ready_path``, ``policy``,
    ``body_timeout``, ``privacy``, ``metrics``, ``metrics_path``, ``max_bytes_in_flight``,
    ``deadline``) and replaces that field of *settings* (default: ``AppSettings()``);
    *storage*, when given, replaces ``settings.storage``. So ``create_app(url, metrics=True)``
    and ``create_app(settings=AppSettings(storage=url, metrics=True))`` build the same app.

    The keywords are the short form, kept from before `AppSettings`; an `AppSettings` is
    the form to share with the WSGI app or between apps, and the one type checkers check
    field by field (they see the keywords as ``Any``).

    Args:
        storage: A storage URL, a backend, a `Collector`, or `None` (see `AppSettings`).
        settings: What the app is built from.
        **options: Fields of `AppSettings`, each replacing the one in *settings*.

    Raises:
        ConfigurationError: a bad value, an unknown storage URL, a missing extra.
        TypeError: a keyword that is no field of `AppSettings`.
    """
    return StatsASGIApp(storage, settings=settings, **options)


def create_app_from_env() -> StatsASGIApp:
    """`create_app` with `AppSettings.from_env`: one app per worker process (``serve`` runs it).

    Raises:
        ConfigurationError: a variable holds a bad value; the message names it.
    """
    return create_app(settings=AppSettings.from_env())
