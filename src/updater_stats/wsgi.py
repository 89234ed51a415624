"""The stats endpoint as a plain WSGI application: no web framework needed.

Run it with any WSGI server (gunicorn, uWSGI, waitress, the standard
library's ``wsgiref``) or mount it inside Flask or Django with a WSGI
dispatcher. Each request's events are committed before it is answered.
The app's options are the fields of `AppSettings`, as for the ASGI app.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import IO, Any

from . import _http
from ._collector import Collector
from ._models import Response
from ._settings import AppSettings
from .backends import StorageBackend

__all__ = ["AppSettings", "StatsWSGIApp", "create_app", "create_app_from_env"]

StartResponse = Callable[..., Any]

_CHUNK = 64 * 1024

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class StatsWSGIApp(_http.StatsAppBase):
    """A WSGI application serving the stats endpoint; the same routes as `StatsASGIApp`.

    Takes what `create_app` takes. Call `close` on shutdown to flush and close the
    storage it created.
    """

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        page = self.metrics_page(method, environ.get("PATH_INFO", "") or "/")
        if page is not None:
            text, content_type = page
            start_response(
                "200 OK",
                [
                    ("content-type", content_type),
                    ("content-length", str(len(text))),
                    ("cache-control", "no-store"),
                ],
            )
            return [b"" if method == "HEAD" else text]
        response = self._respond(environ)
        payload = response.json()
        status = f"{response.status_code} {_REASONS.get(response.status_code, '')}".rstrip()
        start_response(status, _http.json_headers(response, payload))
        return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else payload]

    def _respond(self, environ: dict[str, Any]) -> Response:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "") or "/"
        answer = self.answer_without_body(method, path)
        if answer is not None:
            return answer
        limit = self.collector.policy.max_body_bytes
        declared = environ.get("CONTENT_LENGTH")
        problem = _http.content_length_problem(declared, limit)
        if problem is not None:
            return self.refused(problem)
        stream: IO[bytes] = environ["wsgi.input"]
        if declared:
            body = _read_upto(stream, int(declared), limit)
        elif environ.get("wsgi.input_terminated"):
            # A server that de-chunks for us: read to the end, within the cap.
            body = _read_upto(stream, None, limit)
        else:
            # PEP 3333: with no length and no terminated input, nothing may be read.
            body = b""
        if body is None:
            return self.refused(_http.too_large(limit))
        problem = _http.encoding_problem(environ.get("HTTP_CONTENT_ENCODING"), body)
        if problem is not None:
            return self.refused(problem)
        return self.collector.respond(body)


def _read_upto(stream: IO[bytes], length: int | None, limit: int) -> bytes | None:
    """Read *length* bytes (or to the end), or `None` once more than *limit* arrive."""
    chunks: list[bytes] = []
    size = 0
    while length is None or size < length:
        want = _CHUNK if length is None else min(_CHUNK, length - size)
        chunk = stream.read(want)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    storage: str | StorageBackend | Collector | None = None,
    *,
    settings: AppSettings | None = None,
    **options: Any,
) -> StatsWSGIApp:
    """A WSGI app (`StatsWSGIApp`) built from *settings*, or from *storage* and keywords.

    As `asgi.create_app`: each keyword is a field of `AppSettings` and replaces that
    field of *settings* (default: ``AppSettings()``), and *storage*, when given, replaces
    ``settings.storage``. The same settings build the same app under ASGI and WSGI;
    ``body_timeout`` and ``max_bytes_in_flight`` are the ASGI app's alone (a WSGI
    server reads bodies and times them out itself), and are accepted and unused here.

    Raises:
        ConfigurationError: a bad value, an unknown storage URL, a missing extra.
        TypeError: a keyword that is no field of `AppSettings`.
    """
    return StatsWSGIApp(storage, settings=settings, **options)


def create_app_from_env() -> StatsWSGIApp:
    """`create_app` with `AppSettings.from_env`, as `asgi.create_app_from_env` is.

    Raises:
        ConfigurationError: a variable holds a bad value; the message names it.
    """
    return create_app(settings=AppSettings.from_env())
