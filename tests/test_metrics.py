"""Intake metrics: the Python API, and ``/metrics`` as Prometheus text on the ASGI and WSGI apps."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from updater_stats import (
    Collector,
    ConfigurationError,
    IntakeMetrics,
    MemoryBackend,
    Policy,
    StorageBackend,
    StoredEvent,
    WriteResult,
    asgi,
    wsgi,
)
from updater_stats.exceptions import BackendError
from updater_stats.testing import wire_event

from .asgi_calls import call as asgi_call
from .conftest import body
from .prometheus_text import samples
from .wsgi_calls import call as wsgi_call

OTHER_APP = "com.example.other"


def send_the_mix(handle: Any) -> None:
    """The traffic the tests count: see EXPECTED."""
    handle(body([wire_event(timestamp=1), wire_event(timestamp=2, action="new_action_x")]))
    # A retry of the first event, a bad event and another app's event in one body.
    handle(
        body(
            [
                wire_event(timestamp=1),
                wire_event(timestamp=3, platform=7, version_os=None),
                wire_event(timestamp=4, app_id=OTHER_APP),
                wire_event(timestamp=5, custom_id="u" * 2000),  # stored cut at its cap
                {"app_id": "not an app", "whatever": 1},
            ]
        )
    )
    handle(body(wire_event(timestamp=None, is_prod="no")))  # a single bad event: 400
    handle(b"{oops")  # 400 invalid_json
    handle(body([wire_event()] * 1001))  # 413 batch_too_large


EXPECTED_SNAPSHOT = {
    "requests": {"ok": 2, "invalid_event": 1, "invalid_json": 1, "batch_too_large": 1},
    "accepted": {"com.example.app": 4, OTHER_APP: 1},
    "duplicates": {"com.example.app": 1},
    "unknown_actions": {"com.example.app": 1},
    "truncated": {"com.example.app": 1},
    "rejected": {("com.example.app", "invalid_event"): 2, ("_invalid", "invalid_event"): 1},
    "failed": {},
    "field_errors": {
        "platform": 1,
        "is_prod": 1,
        "app_id": 1,
        "device_id": 1,
        "action": 1,
        "version_name": 1,
    },
}


def _respond(collector: Collector) -> Any:
    return collector.respond


def test_the_python_api_counts_what_was_sent(backend: StorageBackend):
    collector = Collector(backend)
    send_the_mix(_respond(collector))

    snapshot = collector.metrics.snapshot()

    got = {name: dict(getattr(snapshot, name)) for name in EXPECTED_SNAPSHOT}
    assert got == EXPECTED_SNAPSHOT


def test_duplicates_are_counted_per_app_when_one_write_holds_several(backend: StorageBackend):
    collector = Collector(backend)
    mixed = [wire_event(timestamp=t, app_id=app) for t in (1, 2) for app in ("a.b.c", "d.e.f")]
    collector.handle(body(mixed[:3]))

    collector.handle(body(mixed))  # one write, two apps, three of the four already stored

    snapshot = collector.metrics.snapshot()
    assert snapshot.accepted == {"a.b.c": 4, "d.e.f": 3}
    assert snapshot.duplicates == {"a.b.c": 2, "d.e.f": 1}


class _CountsOnly:
    """A backend that reports totals only, as the protocol allows."""

    def __init__(self) -> None:
        self.inner = MemoryBackend()

    def write(self, events: Sequence[StoredEvent]) -> WriteResult:
        result = self.inner.write(events)
        return WriteResult(result.inserted, result.duplicates)

    def close(self) -> None:
        self.inner.close()


def test_a_backend_that_gives_totals_only():
    collector = Collector(_CountsOnly())
    one_app = [wire_event(timestamp=t) for t in (1, 2)]
    two_apps = [*one_app, wire_event(timestamp=3, app_id=OTHER_APP)]
    collector.handle(body(one_app))
    collector.handle(body(one_app))  # one app: the duplicates are its own
    collector.handle(body(two_apps))  # two apps: the backend does not say whose

    assert collector.metrics.snapshot().duplicates == {"com.example.app": 2, "_unattributed": 2}


class _Broken:
    def write(self, events: Sequence[StoredEvent]) -> WriteResult:
        raise BackendError("disk on fire")

    def close(self) -> None:
        pass


def test_storage_failures_are_counted():
    collector = Collector(_Broken())
    assert collector.respond(body([wire_event(), wire_event(app_id=OTHER_APP)])).status_code == 503

    snapshot = collector.metrics.snapshot()
    assert snapshot.requests == {"storage_unavailable": 1}
    assert snapshot.failed == {"com.example.app": 1, OTHER_APP: 1}
    assert snapshot.accepted == {}


def test_labels_are_bounded():
    metrics = IntakeMetrics(max_apps=2)
    collector = Collector(MemoryBackend(), metrics=metrics)
    apps = ["a.b.one", "a.b.two", "a.b.three", "a.b.four"]
    collector.handle(body([wire_event(timestamp=i, app_id=app) for i, app in enumerate(apps)]))
    collector.handle(
        body([wire_event(platform=1, **{f"x{i}": {"a": [[[[[[]]]]]]}}) for i in range(3)])
    )

    snapshot = metrics.snapshot()
    assert snapshot.accepted == {"a.b.one": 1, "a.b.two": 1, "_other": 2}
    assert snapshot.rejected == {("_other", "invalid_event"): 3}
    assert snapshot.field_errors == {"platform": 3}
    made_up = Collector(MemoryBackend(), policy=Policy(max_extra_depth=1))
    made_up.handle(body([wire_event(deep={"a": {"b": 1}}), wire_event(platform={"x": 1})]))
    assert made_up.metrics.snapshot().field_errors == {"platform": 1}
    assert made_up.metrics.snapshot().truncated == {"com.example.app": 1}


def test_async_requests_are_counted_too(backend: StorageBackend):
    import asyncio  # noqa: PLC0415

    collector = Collector(backend)

    async def send() -> None:
        await collector.arespond(body([wire_event(timestamp=1)]))
        await collector.arespond(body([wire_event(timestamp=1)]))
        await collector.arespond(b"[")

    asyncio.run(send())
    snapshot = collector.metrics.snapshot()
    assert snapshot.requests == {"ok": 2, "invalid_json": 1}
    assert snapshot.accepted == {"com.example.app": 2}
    assert snapshot.duplicates == {"com.example.app": 1}


EXPECTED_PROMETHEUS = {
    ("updater_stats_requests_total", (("code", "ok"),)): 2,
    ("updater_stats_requests_total", (("code", "invalid_event"),)): 1,
    ("updater_stats_requests_total", (("code", "invalid_json"),)): 1,
    ("updater_stats_requests_total", (("code", "batch_too_large"),)): 1,
    ("updater_stats_events_accepted_total", (("app_id", "com.example.app"),)): 4,
    ("updater_stats_events_accepted_total", (("app_id", OTHER_APP),)): 1,
    ("updater_stats_events_duplicates_total", (("app_id", "com.example.app"),)): 1,
    ("updater_stats_events_unknown_action_total", (("app_id", "com.example.app"),)): 1,
    ("updater_stats_events_truncated_total", (("app_id", "com.example.app"),)): 1,
    (
        "updater_stats_events_rejected_total",
        (("app_id", "com.example.app"), ("code", "invalid_event")),
    ): 2,
    ("updater_stats_events_rejected_total", (("app_id", "_invalid"), ("code", "invalid_event"))): 1,
    **{
        ("updater_stats_field_errors_total", (("field", field),)): count
        for field, count in EXPECTED_SNAPSHOT["field_errors"].items()  # type: ignore[attr-defined]
    },
}


def test_asgi_metrics_are_prometheus_text_matching_what_was_sent():
    app = asgi.create_app(MemoryBackend(), metrics=True)
    send_the_mix(lambda data: asgi_call(app, chunks=[data]))
    assert asgi_call(app, chunks=[b"x"], headers={"content-encoding": "br"}).status == 415

    page = asgi_call(app, method="GET", path="/metrics")

    assert page.status == 200
    assert page.headers["content-type"].startswith("text/plain; version=")
    assert samples(page.body.decode()) == {
        **EXPECTED_PROMETHEUS,
        ("updater_stats_requests_total", (("code", "unsupported_encoding"),)): 1,
    }
    assert asgi_call(app, method="HEAD", path="/metrics").body == b""
    assert asgi_call(app, method="POST", path="/metrics").status == 405
    app.close()


def test_wsgi_metrics_are_prometheus_text_matching_what_was_sent():
    app = wsgi.create_app(MemoryBackend(), metrics=True, metrics_path="/internal/metrics")
    send_the_mix(lambda data: wsgi_call(app, data=data))
    assert wsgi_call(app, data=b"x", environ={"CONTENT_LENGTH": "99999999999"})[0] == 413

    status, headers, content, _ = wsgi_call(app, method="GET", path="/internal/metrics")

    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=")
    assert samples(content.decode()) == {
        **EXPECTED_PROMETHEUS,
        ("updater_stats_requests_total", (("code", "body_too_large"),)): 1,
    }
    assert wsgi_call(app, method="GET", path="/metrics")[0] == 404
    app.close()


def test_metrics_are_off_unless_asked_for():
    app = asgi.create_app(MemoryBackend())
    assert asgi_call(app, method="GET", path="/metrics").status == 404
    app.close()
    with pytest.raises(ConfigurationError, match="metrics_path '/stats' is where devices POST"):
        asgi.create_app(MemoryBackend(), metrics=True, metrics_path="/stats")


def test_counts_made_before_metrics_were_served_are_included():
    collector = Collector(MemoryBackend())
    collector.handle(body([wire_event(timestamp=1)]))
    app = wsgi.create_app(collector, metrics=True)
    collector.handle(body([wire_event(timestamp=2)]))
    second = wsgi.create_app(collector, metrics=True)  # a second app shares the counters

    for served in (app, second):
        found = samples(wsgi_call(served, method="GET", path="/metrics")[2].decode())
        assert found[("updater_stats_requests_total", (("code", "ok"),))] == 2
        assert found[("updater_stats_events_accepted_total", (("app_id", "com.example.app"),))] == 2


def test_a_missing_prometheus_client_names_the_extra(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    backend = MemoryBackend()
    with pytest.raises(ConfigurationError, match=r"pip install 'updater-stats\[metrics\]'"):
        asgi.create_app(backend, metrics=True)
    with pytest.raises(BackendError):  # the app it failed to make closed its storage
        backend.ping()


def test_the_apps_built_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("UPDATER_STATS_STORAGE", "memory://")
    monkeypatch.setenv("UPDATER_STATS_METRICS", "1")
    monkeypatch.setenv("UPDATER_STATS_PSEUDONYM_SECRET", "x" * 32)
    for module in (asgi, wsgi):
        app = module.create_app_from_env()
        assert app.exporter is not None
        assert app.collector.privacy is not None
        assert app.collector.privacy.device_id == "hash"
        app.close()
    monkeypatch.setenv("UPDATER_STATS_METRICS", "")
    app = wsgi.create_app_from_env()
    assert app.exporter is None
    app.close()


def test_a_multiprocess_directory_that_does_not_exist_is_a_start_up_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match="not a directory"):
        wsgi.create_app(MemoryBackend(), metrics=True)


def test_refusals_made_by_the_app_are_logged_by_code(caplog: pytest.LogCaptureFixture):
    app = asgi.create_app(MemoryBackend(), metrics=True)
    with caplog.at_level(logging.INFO, logger="updater_stats.intake"):
        asgi_call(app, chunks=[b"secret body"], headers={"content-encoding": "br"})
    app.close()

    (record,) = [r for r in caplog.records if r.name == "updater_stats.intake"]
    assert record.getMessage() == "rejected request: code=unsupported_encoding"
    assert "secret body" not in str(record.__dict__)
