"""Calling a WSGI app in-process: an environ built by hand, the answer and what was read."""

from __future__ import annotations

import io
from typing import Any
from wsgiref.util import setup_testing_defaults

from updater_stats.wsgi import StatsWSGIApp


class ReadCounter(io.BytesIO):
    """A request body that counts the bytes the app read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk


def call(
    app: StatsWSGIApp,
    method: str = "POST",
    path: str = "/stats",
    data: bytes = b"",
    environ: dict[str, Any] | None = None,
) -> tuple[int, dict[str, str], bytes, ReadCounter]:
    """One request through the app: its status, headers, body, and the body stream it read."""
    stream = ReadCounter(data)
    env: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "CONTENT_LENGTH": str(len(data)) if data else "",
        "wsgi.input": stream,
    }
    env.update(environ or {})
    setup_testing_defaults(env)
    started: list[Any] = []
    content = b"".join(app(env, lambda status, headers: started.append((status, headers))))
    status, headers = started[0]
    return int(status.split()[0]), dict(headers), content, stream
