"""What the ASGI and WSGI apps share: routing, header checks and JSON answers.

The two apps differ only in how they read a body and send an answer; every
decision about a request is made here, once.
"""

from __future__ import annotations

import enum
import logging
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import attrs

from ._batching import DEFAULT_DEADLINE
from ._collector import DEFAULT_STORAGE_URL, STORAGE_ENV_VAR, Collector
from ._logthrottle import LogThrottle
from ._models import Response
from ._policy import Policy
from ._prometheus import PrometheusExporter, exporter_for
from .backends import StorageBackend, backend_from_url
from .exceptions import BackendError
from .privacy import Privacy

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


def _normal_path(path: str) -> str:
    return "/" + path.strip("/")


@attrs.frozen
class HttpSettings:
    """Where the apps listen inside a server.

    Attributes:
        path: The stats path devices POST to (and operators GET). ``/`` is always served too.
        ready_path: Answers 200 when storage answers, 503 otherwise (the reason is logged).
        body_timeout: Seconds a client has to send its whole body; a slower one gets 408,
            which devices retry, and its connection stops holding the server.
        metrics_path: Where the Prometheus text is served; `None`: nowhere.
    """

    path: str = attrs.field(default="/stats", converter=_normal_path)
    ready_path: str = attrs.field(default="/ready", converter=_normal_path)
    body_timeout: float = 30.0
    metrics_path: str | None = attrs.field(
        default=None, converter=attrs.converters.optional(_normal_path)
    )

    def __attrs_post_init__(self) -> None:
        if self.metrics_path is not None and self.metrics_path in {self.path, "/"}:
            raise ValueError(f"metrics_path {self.metrics_path!r} is where devices POST")

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
    """What both apps hold, and the answers that need no body."""

    def __init__(  # noqa: PLR0913 - keyword-only options, each with a default
        self,
        storage: str | StorageBackend | Collector | None = None,
        *,
        path: str = "/stats",
        ready_path: str = "/ready",
        policy: Policy | None = None,
        body_timeout: float = 30.0,
        privacy: Privacy | None = None,
        metrics: bool = False,
        metrics_path: str = "/metrics",
        deadline: float = DEFAULT_DEADLINE,
    ) -> None:
        self.settings = HttpSettings(
            path, ready_path, body_timeout, metrics_path if metrics else None
        )
        self.collector = collector_for(storage, policy, privacy, deadline)
        self._log_throttle = LogThrottle()
        # A collector handed in belongs to the caller, who closes it.
        self._owns_collector = not isinstance(storage, Collector)
        self.exporter: PrometheusExporter | None = None
        if metrics:
            try:
                # Now, not at the first scrape: a missing extra is a start-up error.
                self.exporter = exporter_for(self.collector.metrics)
            except BaseException:
                self.close()
                raise

    def metrics_page(self, method: str, path: str) -> tuple[bytes, str] | None:
        """The Prometheus text and its content type for a scrape; `None` for other requests."""
        if self.exporter is None or self.settings.route(method, path) is not Route.METRICS:
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
        route = self.settings.route(method, path)
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


#: Comma-separated ``app_id`` values the apps built from the environment accept.
ALLOWED_APPS_ENV_VAR = "UPDATER_STATS_ALLOWED_APPS"
#: ``1``: the apps built from the environment serve ``/metrics`` (``serve --metrics`` sets it).
METRICS_ENV_VAR = "UPDATER_STATS_METRICS"


def metrics_from_env() -> bool:
    """Whether ``UPDATER_STATS_METRICS`` asks for ``/metrics``."""
    return os.environ.get(METRICS_ENV_VAR, "").strip().lower() in {"1", "true", "yes", "on"}


def policy_from_env() -> Policy:
    """The default `Policy`, with the allow-list from ``UPDATER_STATS_ALLOWED_APPS`` if set."""
    raw = os.environ.get(ALLOWED_APPS_ENV_VAR, "")
    allowed = {part.strip() for part in raw.split(",") if part.strip()}
    return Policy(allowed_app_ids=allowed or None)


def collector_for(
    storage: str | StorageBackend | Collector | None,
    policy: Policy | None,
    privacy: Privacy | None = None,
    deadline: float = DEFAULT_DEADLINE,
) -> Collector:
    """The collector an app uses: the one given, or a new one over a backend or storage URL.

    ``None`` means the ``UPDATER_STATS_STORAGE`` environment variable, then the default SQLite file.
    A collector given keeps its own policy, privacy and deadline.
    """
    if isinstance(storage, Collector):
        return storage
    if storage is None:
        storage = os.environ.get(STORAGE_ENV_VAR) or DEFAULT_STORAGE_URL
    backend = backend_from_url(storage) if isinstance(storage, str) else storage
    return Collector(backend, policy=policy or Policy(), privacy=privacy, deadline=deadline)


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
