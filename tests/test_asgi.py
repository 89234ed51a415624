"""The ASGI app driven in-process through the ASGI protocol itself."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import threading
import time
from typing import Any

import pytest

from updater_stats import Collector, ConfigurationError, MemoryBackend, Policy
from updater_stats import asgi as asgi_module
from updater_stats.asgi import StatsASGIApp, create_app, create_app_from_env

from .asgi_calls import call
from .conftest import VALID_EVENT, body, fixture_bytes, load_fixture
from .live_server import raw_exchange


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend()


@pytest.fixture
def app(backend: MemoryBackend) -> StatsASGIApp:
    return create_app(backend)


def test_post_one_event(app, backend):
    answer = call(app, chunks=[body(VALID_EVENT)], headers={"content-type": "application/json"})

    assert (answer.status, answer.json) == (200, {"status": "ok"})
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["content-length"] == str(len(answer.body))
    assert [e.event.to_wire() for e in backend.events()] == [VALID_EVENT]


@pytest.mark.parametrize("timer", ["one timer", "wait_for per message (Python 3.10)"])
def test_post_a_batch_in_several_chunks_and_on_the_root_path(app, backend, monkeypatch, timer):
    if timer != "one timer":
        monkeypatch.setattr(asgi_module, "_ONE_TIMER", False)
    raw = fixture_bytes("android_batch")
    answer = call(app, path="/", chunks=[raw[:100], raw[100:2000], raw[2000:]])

    assert answer.status == 200
    assert len(answer.json["results"]) == len(load_fixture("android_batch"))
    assert len(backend) == len(load_fixture("android_batch"))


def test_core_errors_keep_their_status_and_body(app, backend):
    not_json = call(app, chunks=[b"{oops"])
    bad_event = call(app, chunks=[body({**VALID_EVENT, "is_prod": "yes"})])

    assert (not_json.status, not_json.json["error"]) == (400, "invalid_json")
    assert bad_event.status == 400
    assert bad_event.json["moreInfo"]["errors"] == [
        "must be true or false, not a string @ $.is_prod"
    ]
    assert len(backend) == 0


def test_get_and_head_are_health_checks(app, backend):
    get = call(app, method="GET")
    head = call(app, method="HEAD", path="/")

    assert (get.status, get.json) == (200, {"status": "ok"})
    assert (head.status, head.body) == (200, b"")
    assert head.headers["content-length"] == str(len(b'{"status":"ok"}'))
    assert len(backend) == 0


def test_readiness_says_whether_storage_answers(app, backend):
    assert call(app, method="GET", path="/ready").json == {"status": "ok", "storage": "ok"}

    backend.close()
    answer = call(app, method="GET", path="/ready")

    assert answer.status == 503
    assert answer.json["status"] == "unavailable"
    assert answer.json["error"] == "storage_unavailable"
    assert "closed" not in answer.json["message"]  # the detail is for the logs only


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_are_405_with_json(app, method):
    answer = call(app, method=method)

    assert answer.status == 405
    assert answer.headers["allow"] == "GET, HEAD, POST"
    assert answer.json["error"] == "method_not_allowed"


def test_unknown_paths_are_404(app):
    answer = call(app, path="/admin")
    assert (answer.status, answer.json["error"]) == (404, "not_found")


def test_declared_oversize_is_refused_before_the_body_is_read(backend):
    app = create_app(backend, policy=Policy(max_body_bytes=100))

    answer = call(app, chunks=[b"x" * 101], headers={"content-length": "101"})

    assert (answer.status, answer.json["error"]) == (413, "body_too_large")
    assert answer.receive_calls == 0


def test_chunked_oversize_stops_reading_at_the_cap(backend):
    app = create_app(backend, policy=Policy(max_body_bytes=100))

    answer = call(app, chunks=[b"[" + b" " * 60, b" " * 60, b" " * 60, b"]"])

    assert answer.status == 413
    assert answer.receive_calls == 2


def test_bad_content_length_is_400(app):
    assert call(app, headers={"content-length": "-5"}).status == 400


def test_gzip_content_encoding(app, backend):
    raw = fixture_bytes("ios_batch")

    answer = call(app, chunks=[gzip.compress(raw)], headers={"content-encoding": "gzip"})
    lying = call(app, chunks=[raw], headers={"content-encoding": "gzip"})
    brotli = call(app, chunks=[raw], headers={"content-encoding": "br"})

    assert answer.status == 200
    assert [e.event.action for e in backend.events()] == ["set", "update_fail", "reset"]
    assert (lying.status, lying.json["error"]) == (400, "invalid_gzip")
    assert (brotli.status, brotli.json["error"]) == (415, "unsupported_encoding")


def test_a_client_that_disconnects_gets_nothing_and_stores_nothing(app, backend):
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/stats", "headers": []}
    asyncio.run(app(scope, receive, send))

    assert sent == []
    assert len(backend) == 0


def test_mounted_under_a_prefix(app, backend):
    answer = call(app, path="/hooks/stats", root_path="/hooks", chunks=[body(VALID_EVENT)])
    assert answer.status == 200
    assert len(backend) == 1


def test_custom_path(backend):
    app = create_app(backend, path="api/v1/stats/")

    assert call(app, path="/api/v1/stats", chunks=[body(VALID_EVENT)]).status == 200
    assert call(app, path="/stats", chunks=[body(VALID_EVENT)]).status == 404


def test_storage_failure_is_503(backend):
    app = create_app(backend)
    backend.close()

    answer = call(app, chunks=[body(VALID_EVENT)])

    assert (answer.status, answer.json["error"]) == (503, "storage_unavailable")


def run_lifespan(app: StatsASGIApp) -> list[str]:
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    asyncio.run(app({"type": "lifespan"}, receive, send))
    return sent


def test_lifespan_shutdown_closes_the_storage_the_app_created(tmp_path):
    app = create_app(f"sqlite:///{tmp_path / 's.sqlite3'}")
    call(app, chunks=[body(VALID_EVENT)])

    assert run_lifespan(app) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert call(app, method="GET", path="/ready").status == 503  # closed


def test_lifespan_leaves_a_collector_it_was_given_open(backend):
    collector = Collector(backend)
    app = create_app(collector)

    run_lifespan(app)

    assert call(app, chunks=[body(VALID_EVENT)]).status == 200


def test_many_concurrent_requests_share_storage_safely(tmp_path):
    app = create_app(f"sqlite:///{tmp_path / 's.sqlite3'}")

    async def one(i: int) -> int:
        sent: list[dict[str, Any]] = []
        chunks = [body({**VALID_EVENT, "timestamp": i})]

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": chunks.pop(), "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/stats", "headers": []}
        await app(scope, receive, send)
        return int(sent[0]["status"])

    async def main() -> list[int]:
        return await asyncio.gather(*(one(i) for i in range(200)))

    assert asyncio.run(main()) == [200] * 200
    stored = sorted(e.event.timestamp for e in app.collector.backend.events())  # type: ignore[attr-defined]
    assert stored == list(range(200))


def test_create_app_from_env(tmp_path, monkeypatch):
    target = tmp_path / "env.sqlite3"
    monkeypatch.setenv("UPDATER_STATS_STORAGE", f"sqlite:///{target}")
    monkeypatch.setenv("UPDATER_STATS_PATH", "/collect")

    app = create_app_from_env()

    assert call(app, path="/collect", chunks=[body(VALID_EVENT)]).status == 200
    assert target.exists()


@pytest.mark.parametrize("timer", ["one timer", "wait_for per message (Python 3.10)"])
def test_a_body_that_never_finishes_gets_408(backend, monkeypatch, timer):
    if timer != "one timer":
        monkeypatch.setattr(asgi_module, "_ONE_TIMER", False)
    app = create_app(backend, body_timeout=0.2)
    sent: list[dict[str, Any]] = []
    first = True

    async def receive() -> dict[str, Any]:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b'{"app_id": "com', "more_body": True}
        await asyncio.sleep(60)  # the rest never comes
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def main() -> None:
        scope = {"type": "http", "method": "POST", "path": "/stats", "headers": []}
        await asyncio.wait_for(app(scope, receive, send), 5)

    asyncio.run(main())

    assert sent[0]["status"] == 408
    assert json.loads(sent[1]["body"])["error"] == "request_timeout"
    assert len(backend) == 0


@pytest.mark.parametrize("timer", ["one timer", "wait_for per message (Python 3.10)"])
def test_a_server_cancelling_a_body_read_is_not_told_408(backend, monkeypatch, timer):
    if timer != "one timer":
        monkeypatch.setattr(asgi_module, "_ONE_TIMER", False)
    app = create_app(backend, body_timeout=0.2)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(60)  # the body never comes
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def main() -> None:
        scope = {"type": "http", "method": "POST", "path": "/stats", "headers": []}
        task = asyncio.create_task(app(scope, receive, send))
        await asyncio.sleep(0.05)
        task.cancel()  # the server's own cancellation, before the body timeout
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.3)  # past the body timeout: its timer must not fire later

    asyncio.run(main())

    assert sent == []


def test_every_answer_gets_headers_of_its_own(app):
    first, second = [], []

    async def main() -> None:
        for sent in (first, second):

            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": body(VALID_EVENT), "more_body": False}

            async def send(message: dict[str, Any], sent: list[Any] = sent) -> None:
                sent.append(message)
                if message["type"] == "http.response.start":
                    message["headers"].append((b"x-added-by", b"middleware"))

            scope = {"type": "http", "method": "POST", "path": "/stats", "headers": []}
            await app(scope, receive, send)

    asyncio.run(main())

    for sent in (first, second):
        assert sent[0]["status"] == 200
        assert sent[0]["headers"].count((b"x-added-by", b"middleware")) == 1


def test_a_slow_client_under_uvicorn_is_cut_off_with_408(backend):
    uvicorn = pytest.importorskip("uvicorn")
    app = create_app(backend, body_timeout=0.3)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        head = b"POST /stats HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
        started = time.monotonic()

        status, content = raw_exchange("127.0.0.1", port, head + b'{"app_id": "com')

        assert time.monotonic() - started < 5
        assert (status, json.loads(content)["error"]) == (408, "request_timeout")
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # the server still accepts connections
    finally:
        server.should_exit = True
        thread.join(10)
    assert len(backend) == 0


def test_create_app_from_env_reads_the_allow_list(monkeypatch):
    monkeypatch.setenv("UPDATER_STATS_STORAGE", "memory://")
    monkeypatch.setenv("UPDATER_STATS_ALLOWED_APPS", "com.example.app, com.example.beta ,")

    app = create_app_from_env()
    other = call(app, chunks=[body({**VALID_EVENT, "app_id": "com.example.other"})])

    assert app.collector.policy.allowed_app_ids == {"com.example.app", "com.example.beta"}
    assert call(app, chunks=[body(VALID_EVENT)]).status == 200
    assert (other.status, other.json["moreInfo"]["fields"]) == (400, ["app_id"])


def test_readiness_failure_is_logged_with_its_reason(app, backend, caplog):
    backend.close()

    with caplog.at_level("WARNING", logger="updater_stats"):
        call(app, method="GET", path="/ready")

    assert "storage does not answer" in caplog.text
    assert "closed" in caplog.text


class SlowMemoryBackend(MemoryBackend):
    """Storage that takes its time, and counts its writes."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.writes = 0

    def write(self, events):
        self.writes += 1
        time.sleep(self.seconds)
        return super().write(events)


def padded(events: list[dict[str, Any]], size: int) -> bytes:
    raw = body(events)
    return raw[:-1] + b" " * (size - len(raw)) + b"]"


async def post_concurrently(app: StatsASGIApp, bodies: list[bytes]) -> list[tuple[int, Any]]:
    async def one(raw: bytes) -> tuple[int, Any]:
        sent: list[dict[str, Any]] = []
        chunks = [raw]

        async def receive() -> dict[str, Any]:
            if chunks:
                return {"type": "http.request", "body": chunks.pop(), "more_body": False}
            await asyncio.sleep(60)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        headers = [(b"content-length", str(len(raw)).encode())]
        scope = {"type": "http", "method": "POST", "path": "/stats", "headers": headers}
        await app(scope, receive, send)
        return sent[0]["status"], json.loads(sent[1]["body"])

    return await asyncio.gather(*(one(raw) for raw in bodies))


def test_large_bodies_take_turns_within_the_budget():
    backend = SlowMemoryBackend(0.2)
    app = create_app(backend, max_bytes_in_flight=300_000)
    bodies = [padded([{**VALID_EVENT, "timestamp": i}], 200_000) for i in range(3)]

    answers = asyncio.run(post_concurrently(app, bodies))

    assert [status for status, _ in answers] == [200, 200, 200]
    # Two 200 kB bodies never fit in 300 kB together: each waited for the one before it to
    # be answered, so none could share a storage write with another.
    assert backend.writes == 3
    assert app.budget.in_use == 0
    assert sorted(e.event.timestamp for e in backend.events()) == [0, 1, 2]


def test_small_bodies_never_wait_for_the_budget():
    backend = MemoryBackend()
    app = create_app(backend, max_bytes_in_flight=300_000, body_timeout=0.2)
    assert app.budget.take(300_000)  # as if large bodies filled the budget

    small, large = asyncio.run(
        post_concurrently(
            app,
            [body({**VALID_EVENT, "timestamp": 1}), padded([VALID_EVENT], 100_000)],
        )
    )

    assert small == (200, {"status": "ok"})
    assert large[0] == 503
    assert len(backend) == 1


def test_no_room_in_time_is_503_which_devices_retry():
    backend = SlowMemoryBackend(1.0)
    app = create_app(backend, max_bytes_in_flight=300_000, body_timeout=0.2)
    bodies = [padded([{**VALID_EVENT, "timestamp": i}], 200_000) for i in range(2)]

    answers = asyncio.run(post_concurrently(app, bodies))

    assert sorted(status for status, _ in answers) == [200, 503]
    refused = next(answer for status, answer in answers if status == 503)
    assert refused["error"] == "overloaded"
    assert len(backend) == 1
    assert app.budget.in_use == 0


def test_create_app_from_env_reads_the_body_budget(monkeypatch):
    monkeypatch.setenv("UPDATER_STATS_STORAGE", "memory://")
    monkeypatch.setenv("UPDATER_STATS_MAX_BYTES_IN_FLIGHT", "123456")
    assert create_app_from_env().budget.limit == 123456

    monkeypatch.delenv("UPDATER_STATS_MAX_BYTES_IN_FLIGHT")
    assert create_app_from_env().budget.limit == 64 * 1024 * 1024


def test_the_deadline_comes_from_create_app_or_the_environment(monkeypatch):
    monkeypatch.setenv("UPDATER_STATS_STORAGE", "memory://")
    assert create_app_from_env().collector.deadline == 5.0
    monkeypatch.setenv("UPDATER_STATS_DEADLINE", "2.5")
    assert create_app_from_env().collector.deadline == 2.5
    assert create_app("memory://", deadline=1.5).collector.deadline == 1.5
    given = Collector(MemoryBackend(), deadline=3)
    assert create_app(given, deadline=1.5).collector.deadline == 3  # a collector keeps its own


@pytest.mark.parametrize("value", ["soon", "0", "-1", "nan", "inf"])
def test_an_impossible_deadline_in_the_environment_is_a_configuration_error(monkeypatch, value):
    monkeypatch.setenv("UPDATER_STATS_STORAGE", "memory://")
    monkeypatch.setenv("UPDATER_STATS_DEADLINE", value)
    with pytest.raises(ConfigurationError, match="UPDATER_STATS_DEADLINE"):
        create_app_from_env()
