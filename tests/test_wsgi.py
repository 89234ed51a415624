"""The WSGI app, in-process and under the standard library's WSGI server."""

from __future__ import annotations

import gzip
import http.client
import json
import threading
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from updater_stats import Collector, MemoryBackend, Policy
from updater_stats.wsgi import StatsWSGIApp, create_app, create_app_from_env

from .conftest import VALID_EVENT, body, fixture_bytes, load_fixture
from .live_server import raw_exchange
from .wsgi_calls import call


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend()


@pytest.fixture
def app(backend: MemoryBackend) -> StatsWSGIApp:
    return create_app(backend)


def test_post_event_and_batch(app, backend):
    status, headers, content, _ = call(app, data=body(VALID_EVENT))
    assert (status, json.loads(content)) == (200, {"status": "ok"})
    assert headers["content-type"] == "application/json"

    status, _, content, _ = call(app, path="/", data=fixture_bytes("android_batch"))
    assert status == 200
    assert len(json.loads(content)["results"]) == len(load_fixture("android_batch"))
    assert len(backend) == 1 + len(load_fixture("android_batch"))


def test_routes(app, backend):
    assert call(app, method="GET")[:1] == (200,)
    assert call(app, method="HEAD")[2] == b""
    assert json.loads(call(app, method="GET", path="/ready")[2]) == {
        "status": "ok",
        "storage": "ok",
    }
    status, headers, content, _ = call(app, method="PUT")
    assert (status, headers["allow"], json.loads(content)["error"]) == (
        405,
        "GET, HEAD, POST",
        "method_not_allowed",
    )
    assert call(app, path="/nope")[0] == 404
    backend.close()
    assert call(app, method="GET", path="/ready")[0] == 503
    assert call(app, data=body(VALID_EVENT))[0] == 503


def test_core_errors(app):
    status, _, content, _ = call(app, data=b"not json")
    assert (status, json.loads(content)["error"]) == (400, "invalid_json")


def test_declared_oversize_is_refused_unread(backend):
    app = create_app(backend, policy=Policy(max_body_bytes=100))

    status, _, content, stream = call(app, data=b"[" + b" " * 200 + b"]")

    assert (status, json.loads(content)["error"]) == (413, "body_too_large")
    assert stream.bytes_read == 0


def test_terminated_input_without_length_is_read_up_to_the_cap(backend):
    app = create_app(backend, policy=Policy(max_body_bytes=100_000))
    small = body(VALID_EVENT)
    big = b"[" + b" " * 200_000 + b"]"

    ok = call(app, data=small, environ={"CONTENT_LENGTH": "", "wsgi.input_terminated": True})
    too_big = call(app, data=big, environ={"CONTENT_LENGTH": "", "wsgi.input_terminated": True})

    assert ok[0] == 200
    assert too_big[0] == 413
    assert too_big[3].bytes_read <= 100_000 + 64 * 1024


def test_gzip(app, backend):
    status, _, _, _ = call(
        app,
        data=gzip.compress(fixture_bytes("ios_batch")),
        environ={"HTTP_CONTENT_ENCODING": "gzip"},
    )
    assert status == 200
    assert len(backend) == 3
    assert call(app, data=b"{}", environ={"HTTP_CONTENT_ENCODING": "deflate"})[0] == 415


def test_close_closes_only_what_the_app_created(tmp_path, backend):
    given = create_app(Collector(backend))
    given.close()
    assert call(given, data=body(VALID_EVENT))[0] == 200

    own = create_app(f"sqlite:///{tmp_path / 's.sqlite3'}")
    own.close()
    assert call(own, data=body(VALID_EVENT))[0] == 503


def test_create_app_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("UPDATER_STATS_STORAGE", "memory://")
    monkeypatch.setenv("UPDATER_STATS_PATH", "/collect")

    app = create_app_from_env()

    assert call(app, path="/collect", data=body(VALID_EVENT))[0] == 200
    assert call(app, path="/stats", data=body(VALID_EVENT))[0] == 404


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server(tmp_path) -> Iterator[tuple[str, int, StatsWSGIApp]]:
    app = create_app(f"sqlite:///{tmp_path / 'wsgi.sqlite3'}")
    httpd: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=QuietHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield "127.0.0.1", httpd.server_port, app
    httpd.shutdown()
    httpd.server_close()
    app.close()


def post(host: str, port: int, data: bytes, headers: dict[str, str] | None = None, method="POST"):
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request(method, "/stats", body=data, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_under_a_real_wsgi_server(server):
    host, port, app = server

    assert post(host, port, body(VALID_EVENT)) == (200, b'{"status":"ok"}')
    status, content = post(host, port, fixture_bytes("android_batch"))
    assert status == 200
    status, content = post(
        host, port, gzip.compress(fixture_bytes("ios_batch")), {"Content-Encoding": "gzip"}
    )
    assert status == 200
    status, content = post(host, port, b"{")
    assert (status, json.loads(content)["error"]) == (400, "invalid_json")
    status, content = post(host, port, b"", method="DELETE")
    assert status == 405
    status, content = post(host, port, b"", method="GET")
    assert (status, content) == (200, b'{"status":"ok"}')

    stored = list(app.collector.backend.events())  # type: ignore[attr-defined]
    expected = [VALID_EVENT, *load_fixture("android_batch"), *load_fixture("ios_batch")]
    assert [e.event.to_wire() for e in stored] == expected


def test_real_wsgi_server_refuses_a_declared_oversize_before_the_body(server):
    host, port, _ = server
    headers = b"POST /stats HTTP/1.0\r\nContent-Length: 17000000\r\n\r\n"

    status, content = raw_exchange(host, port, headers + b"[")  # one byte of 17 MB sent

    assert (status, json.loads(content)["error"]) == (413, "body_too_large")


def test_the_wsgi_app_takes_its_deadline_from_create_app_or_the_environment(monkeypatch):
    monkeypatch.setenv("UPDATER_STATS_STORAGE", "memory://")
    monkeypatch.setenv("UPDATER_STATS_DEADLINE", "0.5")
    assert create_app_from_env().collector.deadline == 0.5
    assert create_app("memory://", deadline=2).collector.deadline == 2
