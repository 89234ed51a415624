"""Hostile, wire-shaped input through a real HTTP server: never a 5xx, never a wrong row."""

from __future__ import annotations

import gzip
import http.client
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scripts.fuzz_handle import acknowledged, normalised

from updater_stats import MemoryBackend, parse_event
from updater_stats.asgi import StatsASGIApp, create_app

from .wire_strategies import damaged_events, json_values, valid_wire_events

uvicorn = pytest.importorskip("uvicorn")


class RunningServer:
    def __init__(self, app: StatsASGIApp) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def post(self, data: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        self.conn.request("POST", "/stats", body=data, headers=headers or {})
        response = self.conn.getresponse()
        content = response.read()
        if response.getheader("connection") == "close":
            self.conn.close()  # answered before the body was read: start afresh
        return response.status, json.loads(content)

    def stop(self) -> None:
        self.conn.close()
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[RunningServer, MemoryBackend]]:
    backend = MemoryBackend()
    server = RunningServer(create_app(backend))
    yield server, backend
    server.stop()


def nested(depth: int) -> bytes:
    return b'{"app_id": ' + b"[" * depth + b"]" * depth + b"}"


hostile_bytes = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda v: json.dumps(v).encode(), json_values),
    st.builds(lambda v: json.dumps(v).encode(), damaged_events()),
    st.builds(lambda v: json.dumps(v).encode(), st.lists(damaged_events(), max_size=4)),
    # Text JSON cannot carry as plain bytes: NUL, lone surrogates, huge numbers, duplicate keys.
    st.sampled_from(
        [
            b'{"app_id": "com.example.app\\u0000", "device_id": "\\ud800"}',
            b'[{"timestamp": 123456789012345678901234567890}]',
            b'{"a": 1, "a": 2, "app_id": "x", "app_id": 7}',
            b'{"metadata": {"k": 1e999}}',
            b"\xef\xbb\xbf[]",
            b"\xff\xfe[\x00]\x00",
            nested(50_000),
            gzip.compress(b"[" * 10_000 + b"]" * 10_000),
            gzip.compress(b"[]")[:-3],
            gzip.compress(b"\x00" * (20 * 1024 * 1024)),
        ]
    ),
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(hostile_bytes | st.builds(lambda v: json.dumps(v).encode(), valid_wire_events(False)))
def test_hostile_bodies_never_get_a_5xx_or_a_wrong_row(served, data):
    server, backend = served
    before = len(backend)

    status, answer = server.post(data)

    assert status in {200, 400, 413}, (status, answer)
    assert isinstance(answer, dict)
    stored = [e.event.to_wire() for e in list(backend.events())[before:]]
    if status != 200:
        assert stored == []
        assert answer["error"]
        return
    accepted = [normalised(item) for item in acknowledged(data, answer)]
    everything = list(backend.events())
    keys = {e.key for e in everything}
    for item in accepted:  # acknowledged means stored: under its key, or as sent when keyless
        key = parse_event(item).event_key
        assert key in keys if key else item in [e.event.to_wire() for e in everything]
    assert all(row in accepted for row in stored)  # nothing stored that was not accepted


def test_the_server_still_answers_after_the_hostile_run(served):
    server, _ = served
    assert server.post(b"[]") == (200, {"status": "ok", "results": []})
