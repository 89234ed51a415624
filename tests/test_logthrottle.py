"""One log line per reason per interval: `LogThrottle`, and the intake lines that use it."""

from __future__ import annotations

import logging

import pytest

from updater_stats import Collector, MemoryBackend, asgi
from updater_stats._logthrottle import LogThrottle
from updater_stats.testing import wire_event

from .asgi_calls import call as asgi_call
from .conftest import body


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_line_per_reason_per_interval_then_the_count_held_back():
    clock = Clock()
    throttle = LogThrottle(60.0, clock=clock)
    assert throttle.admit("a") == 0
    assert throttle.admit("b") == 0  # another reason has its own interval
    assert [throttle.admit("a") for _ in range(3)] == [None, None, None]
    clock.now += 59.9
    assert throttle.admit("a") is None
    clock.now += 0.1
    assert throttle.admit("a") == 4
    assert throttle.admit("a") is None
    clock.now += 60
    assert throttle.admit("a") == 1
    assert throttle.admit("b") == 0


def test_the_number_of_reasons_is_bounded():
    clock = Clock()
    throttle = LogThrottle(60.0, clock=clock, max_reasons=2)
    assert throttle.admit(1) == 0
    assert throttle.admit(2) == 0
    assert throttle.admit(3) is None  # full: a flood of new reasons cannot grow memory
    clock.now += 60
    assert throttle.admit(3) == 0  # quiet reasons are forgotten once their interval is over


def test_the_intake_logs_a_flood_of_one_reason_once(caplog: pytest.LogCaptureFixture):
    collector = Collector(MemoryBackend())
    clock = Clock()
    collector._log_throttle = LogThrottle(60.0, clock=clock)
    bad = wire_event(is_prod="yes")
    with caplog.at_level(logging.INFO, logger="updater_stats.intake"):
        for _ in range(1000):
            collector.handle(body([bad]))
        collector.respond(b"{not json")
        collector.respond(b"{not json")
        clock.now += 60
        collector.handle(body([bad]))
    lines = [r.getMessage() for r in caplog.records if r.name == "updater_stats.intake"]
    assert lines == [
        "rejected event: code=invalid_event app_id=com.example.app fields=is_prod index=0",
        "rejected body: code=invalid_json",
        (
            "rejected event: code=invalid_event app_id=com.example.app fields=is_prod index=0 "
            "held_back=999"
        ),
    ]
    # The metrics still count every one.
    assert collector.metrics.snapshot().rejected == {("com.example.app", "invalid_event"): 1001}


def test_the_apps_log_a_flood_of_refused_requests_once(caplog: pytest.LogCaptureFixture):
    app = asgi.create_app(MemoryBackend(), metrics=True)
    with caplog.at_level(logging.INFO, logger="updater_stats.intake"):
        for _ in range(50):
            asgi_call(app, chunks=[b"x"], headers={"content-encoding": "br"})
    app.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "updater_stats.intake"]
    assert lines == ["rejected request: code=unsupported_encoding"]
    assert app.collector.metrics.snapshot().requests["unsupported_encoding"] == 50
