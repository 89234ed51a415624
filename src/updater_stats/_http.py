"""What the ASGI and WSGI apps share: routing, header checks and JSON answers.

The two apps differ only in how they read a body and send an answer; every
decision about a request is made here, once.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import attrs

from ._collector import Collector
from ._logthrottle import LogThrottle
from ._models import Response
from ._prometheus import PrometheusExporter, exporter_for
from ._settings import AppSettings, merged, storage_from_env
from .backends import StorageBackend, backend_from_url
from .exceptions import BackendError

log = logging.getLogger("updater_stats")
intake_log = logging.getLogger("updater_stats.intake")

_GZIP_MAGIC = b"\x1f\x8b"
_IDENTITY = frozenset({"", "identity"})
_GZIP = frozenset({"gzip", "x-gzip"})


class Route(enum.Enum):
    STATS = "stats"
    HEALTH = "health"
    READY = "ready"
    METRICS = "metrics"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NOT_FOUND = "not_found"


@attrs.frozen
class Routes:
    """Which route a request takes, from an app's `AppSettings` (whose paths are normalised).

    Attributes:
        path: The stats path; ``/`` is always served too.
        ready_path: The readiness check.
        metrics_path: Where the Prometheus text is served; `None`: nowhere.
    """

    path: str
    ready_path: str
    metrics_path: str | None

    @classmethod
    def of(cls, settings: AppSettings) -> Routes:
        return cls(
            settings.path, settings.ready_path, settings.metrics_path if settings.metrics else None
        )

    def route(self, method: str, path: str) -> Route:
        if path != "/":
            path = path.rstrip("/")
        if path == self.metrics_path:
            return Route.METRICS if method in {"GET", "HEAD"} else Route.METHOD_NOT_ALLOWED
        if path == self.ready_path:
            return Route.READY if method in {"GET", "HEAD"} else Route.METHOD_NOT_ALLOWED
        if path not in {self.path, "/"}:
            return Route.NOT_FOUND
        if method == "POST":
            return Route.STATS
        if method in {"GET", "HEAD"}:
            return Route.HEALTH
        return Route.METHOD_NOT_ALLOWED


OK = Response(200, {"status": "ok"})
NOT_FOUND = Response(404, {"error": "not_found", "message": "no such path"})


def method_not_allowed(method: str) -> Response:
    return Response(
        405,
        {"error": "method_not_allowed", "message": f"{method} is not allowed: use POST or GET"},
    )


def body_timed_out(seconds: float) -> Response:
    return Response(
        408,
        {"error": "request_timeout", "message": f"the body did not arrive within {seconds:g} s"},
    )


def overloaded() -> Response:
    return Response(
        503,
        {
            "error": "overloaded",
            "message": (
                "too many large requests at once: the events were not stored, send them again"
            ),
        },
    )


def too_large(limit: int) -> Response:
    return Response(413, {"error": "body_too_large", "message": f"the body is over {limit} bytes"})


def content_length_problem(value: str | None, limit: int) -> Response | None:
    """Refuse a declared length over the cap before a byte of the body is read."""
    if value is None or value == "":
        return None
    if not value.isdigit():
        return Response(400, {"error": "invalid_header", "message": "bad Content-Length"})
    if int(value) > limit:
        return too_large(limit)
    return None


def encoding_problem(content_encoding: str | None, body: bytes) -> Response | None:
    """`None` when the collector can read the body as sent; it gunzips by the gzip magic."""
    encoding = (content_encoding or "").strip().lower()
    if encoding in _IDENTITY:
        return None
    if encoding in _GZIP:
        if body.startswith(_GZIP_MAGIC):
            return None
        return Response(
            400, {"error": "invalid_gzip", "message": "Content-Encoding is gzip, the body is not"}
        )
    return Response(
        415,
        {
            "error": "unsupported_encoding",
            "message": f"Content-Encoding {encoding!r} is not supported: send gzip or nothing",
        },
    )


def readiness(collector: Collector) -> Response:
    try:
        collector.ping()
    except BackendError as error:
        log.warning("readiness check: storage does not answer: %s", error.message)
        return Response(503, {"status": "unavailable", **error.body})
    return Response(200, {"status": "ok", "storage": "ok"})


def json_headers(response: Response, payload: bytes) -> list[tuple[str, str]]:
    headers = [
        ("content-type", "application/json"),
        ("content-length", str(len(payload))),
        ("cache-control", "no-store"),
    ]
    if response.status_code == 405:
        headers.append(("allow", "GET, HEAD, POST"))
    return headers


class StatsAppBase:
    """What both apps hold, and the answers that need no body.

    Built from *settings* (default: `AppSettings()`), with *storage*, when given, and
    each keyword in *options* replacing that field of it: see `asgi.create_app`.
    """

    def __init__(
        self,
        storage: str | StorageBackend | Collector | None = None,
        *,
        settings: AppSettings | None = None,
        **options: Any,
    ) -> None:
        #: The settings the app was built from (``storage`` as given: `None` stays `None`).
        self.settings = merged(settings, storage, options)
        self.routes = Routes.of(self.settings)
        self.collector = collector_for(self.settings)
        self._log_throttle = LogThrottle()
        # A collector handed in belongs to the caller, who closes it.
        self._owns_collector = not isinstance(self.settings.storage, Collector)
        self.exporter: PrometheusExporter | None = None
        if self.settings.metrics:
            try:
                # Now, not at the first scrape: a missing extra is a start-up error.
                self.exporter = exporter_for(self.collector.metrics)
            except BaseException:
                self.close()
                raise

    def metrics_page(self, method: str, path: str) -> tuple[bytes, str] | None:
        """The Prometheus text and its content type for a scrape; `None` for other requests."""
        if self.exporter is None or self.routes.route(method, path) is not Route.METRICS:
            return None
        return self.exporter.render(), self.exporter.content_type

    def refused(self, response: Response) -> Response:
        """*response*, a refusal made before the collector saw the body, counted and logged."""
        code = str(response.body.get("error", response.status_code))
        self.collector.metrics.request(code)
        held = self._log_throttle.admit(code)  # once per code per interval, not per request
        if held is not None:
            intake_log.info(
                "rejected request: code=%s" + (f" held_back={held}" if held else ""),
                code,
                extra={"updater_stats": {"code": code, "held_back": held}},
            )
        return response

    def answer_without_body(self, method: str, path: str) -> Response | None:
        """The answer for every request but a stats POST, which gets `None`."""
        route = self.routes.route(method, path)
        if route is Route.STATS:
            return None
        if route is Route.HEALTH:
            return OK
        if route is Route.READY:
            return readiness(self.collector)
        if route is Route.NOT_FOUND or route is Route.METRICS:  # a scrape: see metrics_page
            return NOT_FOUND
        return method_not_allowed(method)

    def close(self) -> None:
        """Close the collector this app created (a collector passed in stays open)."""
        if self._owns_collector:
            self.collector.close()


def collector_for(settings: AppSettings) -> Collector:
    """The collector an app uses: the one given, or a new one over a backend or storage URL.

    ``None`` means the ``UPDATER_STATS_STORAGE`` environment variable, then the default SQLite file.
    A collector given keeps its own policy, privacy and deadline.
    """
    storage = settings.storage
    if isinstance(storage, Collector):
        return storage
    if storage is None:
        storage = storage_from_env()
    backend = backend_from_url(storage) if isinstance(storage, str) else storage
    return Collector(
        backend, policy=settings.policy, privacy=settings.privacy, deadline=settings.deadline
    )


# -- ASGI: what the stats app and the dashboard share ---------------------------------------

#: The ASGI types, as the apps use them.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class Disconnected(Exception):  # noqa: N818 - a signal, not an error for users.
    """The client went away before its body arrived."""


async def read_chunks(receive: Receive, limit: int) -> bytes | None:
    """A request's whole body from *receive*, or `None` once it passes *limit* bytes.

    Raises:
        Disconnected: the client went away first.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def serve_lifespan(receive: Receive, send: Send, close: Callable[[], None]) -> None:
    """Answer an ASGI lifespan: startup at once, and *close* before shutdown completes."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            close()
            await send({"type": "lifespan.shutdown.complete"})
            return
