"""Whatever a client sends, both apps answer with JSON and a status a device can act on."""

from __future__ import annotations

import io
import json

from hypothesis import given
from hypothesis import strategies as st

from updater_stats import MemoryBackend, Policy
from updater_stats.asgi import create_app as create_asgi_app
from updater_stats.wsgi import create_app as create_wsgi_app

from .asgi_calls import call

ALLOWED = {200, 400, 404, 405, 413, 415}

methods = st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"])
paths = st.sampled_from(["/", "/stats", "/stats/", "/ready", "/x", "/stats/extra", ""])
header_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20)
headers = st.fixed_dictionaries(
    {},
    optional={
        "content-length": header_values | st.integers(0, 10**9).map(str),
        "content-encoding": header_values | st.sampled_from(["gzip", "identity", "br"]),
        "content-type": header_values,
    },
)
bodies = st.lists(st.binary(max_size=64), max_size=4)


@given(methods, paths, headers, bodies)
def test_asgi_answers_everything_with_json(method, path, header_map, chunks):
    app = create_asgi_app(MemoryBackend(), policy=Policy(max_body_bytes=128))

    answer = call(app, method=method, path=path or "/", chunks=chunks or [b""], headers=header_map)

    assert answer.status in ALLOWED
    if method != "HEAD":
        assert isinstance(json.loads(answer.body), dict)


@given(methods, paths, headers, st.binary(max_size=256))
def test_wsgi_answers_everything_with_json(method, path, header_map, data):
    app = create_wsgi_app(MemoryBackend(), policy=Policy(max_body_bytes=128))
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "CONTENT_LENGTH": header_map.get("content-length", ""),
        "HTTP_CONTENT_ENCODING": header_map.get("content-encoding", ""),
        "wsgi.input": io.BytesIO(data),
    }
    started = []

    content = b"".join(app(environ, lambda status, hdrs: started.append(status)))

    assert int(started[0].split()[0]) in ALLOWED
    if method != "HEAD":
        assert isinstance(json.loads(content), dict)
