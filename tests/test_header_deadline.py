"""``serve``'s connections must send a request's headers in time: idle and trickling clients
are closed, while slow bodies and busy kept-alive connections are left alone."""

from __future__ import annotations

import importlib.util
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from updater_stats import MemoryBackend
from updater_stats import _header_deadline as deadline_module
from updater_stats._header_deadline import HeaderDeadline, http_protocol
from updater_stats._settings import (
    DEFAULT_HEADER_TIMEOUT,
    HEADER_TIMEOUT_ENV_VAR,
    header_timeout_from_env,
)
from updater_stats.asgi import create_app

from .live_server import HOST, Server

uvicorn = pytest.importorskip("uvicorn")
from uvicorn.importer import import_from_string  # noqa: E402 - after the extra's check

TIMEOUT = 0.6  # seconds a connection has for its headers in these tests
SWEEP = 0.1  # and between two looks at the connections

PROTOCOLS = [
    pytest.param("updater_stats._header_deadline_h11:H11WithHeaderDeadline", id="h11"),
    pytest.param(
        "updater_stats._header_deadline_httptools:HttpToolsWithHeaderDeadline",
        id="httptools",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("httptools") is None, reason="httptools is not installed"
        ),
    ),
]

REQUEST = b"GET /stats HTTP/1.1\r\nHost: test\r\n\r\n"


@pytest.fixture(params=PROTOCOLS)
def port(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A uvicorn server in a thread, with a protocol of `_header_deadline`, on a free port."""
    monkeypatch.setenv(HEADER_TIMEOUT_ENV_VAR, str(TIMEOUT))
    monkeypatch.setattr(deadline_module, "_SWEEP_SECONDS", SWEEP)
    app = create_app(MemoryBackend())
    config = uvicorn.Config(
        app, host=HOST, port=0, log_level="error", lifespan="off", http=request.param
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    began = time.monotonic()
    while not server.started:
        assert time.monotonic() - began < 10, "uvicorn did not start"
        time.sleep(0.01)
    yield server.servers[0].sockets[0].getsockname()[1]
    server.should_exit = True
    thread.join(10)
    app.close()


def closed_after(sock: socket.socket, limit: float, *, trickle: bytes = b"") -> float | None:
    """Seconds until the server closed *sock* without answering, sending *trickle* every
    tenth of a second meanwhile; None if it was still open after *limit* seconds."""
    began = time.monotonic()
    sock.settimeout(0.1)
    while time.monotonic() - began < limit:
        try:
            received = sock.recv(4096)
        except TimeoutError:
            if trickle:
                try:
                    sock.sendall(trickle)
                except OSError:
                    return time.monotonic() - began
            continue
        except ConnectionResetError:
            return time.monotonic() - began
        assert received == b"", f"an answer to no complete request: {received!r}"
        return time.monotonic() - began
    return None


def exchange(sock: socket.socket, request: bytes) -> bytes:
    """Send *request*, read one whole answer with a Content-Length body."""
    sock.sendall(request)
    sock.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"closed before answering: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":", 1)[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
    )
    while len(body) < length:
        chunk = sock.recv(4096)
        assert chunk, "closed in the middle of an answer"
        body += chunk
    return head.split(b"\r\n", 1)[0]


def test_a_connection_that_sends_nothing_is_closed(port: int):
    with socket.create_connection((HOST, port)) as idle:
        took = closed_after(idle, 10)

    assert took is not None, "the idle connection was never closed"
    assert TIMEOUT <= took <= TIMEOUT + 3 * SWEEP + 0.5


def test_headers_sent_a_line_at_a_time_are_cut_off(port: int):
    with socket.create_connection((HOST, port)) as slow:
        slow.sendall(b"POST /stats HTTP/1.1\r\nHost: test\r\n")
        took = closed_after(slow, 10, trickle=b"X-Slow: 1\r\n")

    assert took is not None, "the trickling connection was never closed"
    assert TIMEOUT <= took <= TIMEOUT + 3 * SWEEP + 0.5


def test_a_slow_body_is_the_app_s_to_time_not_the_header_deadline_s(port: int):
    # The headers came at once: the body then has the app's body timeout (30 s), not this one.
    with socket.create_connection((HOST, port)) as sock:
        sock.sendall(
            b"POST /stats HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2\r\n\r\n"
        )
        time.sleep(3 * TIMEOUT)
        assert exchange(sock, b"[]") == b"HTTP/1.1 200 OK"


@pytest.mark.parametrize("pause", [0.0, TIMEOUT / 2])
def test_a_kept_alive_connection_that_keeps_asking_stays_open(port: int, pause: float):
    # Requests one after the other, or with pauses shorter than the timeout, for many timeouts:
    # each wait for headers is short, whatever the waits before it added up to.
    with socket.create_connection((HOST, port)) as sock:
        began = time.monotonic()
        answered = 0
        while time.monotonic() - began < 5 * TIMEOUT:
            assert exchange(sock, REQUEST) == b"HTTP/1.1 200 OK"
            answered += 1
            time.sleep(pause)
        sock.settimeout(0.05)
        with pytest.raises(TimeoutError):
            sock.recv(1)  # still open, nothing unasked for
    assert answered >= (10 if pause == 0 else 5)


def test_a_kept_alive_connection_that_falls_silent_is_closed(port: int):
    with socket.create_connection((HOST, port)) as sock:
        assert exchange(sock, REQUEST) == b"HTTP/1.1 200 OK"
        took = closed_after(sock, 10, trickle=b"")

    assert took is not None
    assert took <= TIMEOUT + 3 * SWEEP + 0.5


def test_the_protocol_follows_what_uvicorn_would_pick(monkeypatch: pytest.MonkeyPatch):
    for name in (http_protocol(), "updater_stats._header_deadline_h11:H11WithHeaderDeadline"):
        protocol = import_from_string(name)
        assert issubclass(protocol, HeaderDeadline)
    httptools = importlib.util.find_spec("httptools") is not None
    assert http_protocol().endswith("HttpToolsWithHeaderDeadline") == httptools

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "httptools" else real_find_spec(name, *args),
    )
    assert http_protocol() == "updater_stats._header_deadline_h11:H11WithHeaderDeadline"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, DEFAULT_HEADER_TIMEOUT),
        ("2.5", 2.5),
        ("0", DEFAULT_HEADER_TIMEOUT),
        ("x", 10.0),
        ("inf", 10.0),
    ],
)
def test_the_timeout_comes_from_serve_through_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str | None, seconds: float
):
    if value is None:
        monkeypatch.delenv(HEADER_TIMEOUT_ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(HEADER_TIMEOUT_ENV_VAR, value)
    assert header_timeout_from_env() == seconds


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_closes_connections_whose_headers_do_not_come(tmp_path: Path, workers: str):
    server = Server(tmp_path, "--header-timeout", "1", "--workers", workers)
    try:
        with socket.create_connection((HOST, server.port)) as idle:
            took = closed_after(idle, 15)
        assert took is not None, "serve kept an idle connection open"
        assert 1 <= took <= 3.5
        # And it still answers.
        with socket.create_connection((HOST, server.port)) as sock:
            assert exchange(sock, REQUEST) == b"HTTP/1.1 200 OK"
    finally:
        assert server.stop(), server.output()


def test_serve_refuses_a_header_timeout_that_is_not_a_positive_number(tmp_path: Path):
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    for value in ("0", "-1", "soon"):
        completed = subprocess.run(
            [sys.executable, "-m", "updater_stats", "serve", "--header-timeout", value],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
            check=False,
        )
        assert completed.returncode == 2, completed.stderr
        assert "--header-timeout" in completed.stderr
