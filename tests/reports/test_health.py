"""Release health: verdicts from the Wilson interval, their reasons, and the change hook."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest

from updater_stats.backends.sqlite import SQLiteReports
from updater_stats.reports import (
    HealthPolicy,
    HealthWatcher,
    HookError,
    Reports,
    Verdict,
    VerdictChange,
    VersionCounts,
    VersionReport,
    judge,
    release_health,
    webhook,
)

from .build import APP, NOW, database, event, release


def figures(failed: int, devices: int, **counts) -> VersionReport:
    return VersionReport.from_counts(
        VersionCounts(version="1.2.0", devices=devices, failed_devices=failed, **counts)
    )


@pytest.mark.parametrize(
    ("failed", "devices", "verdict"),
    [
        (0, 49, Verdict.INSUFFICIENT_DATA),
        (0, 0, Verdict.INSUFFICIENT_DATA),
        (0, 50, Verdict.WARNING),  # 0 of 50: the interval reaches 7.1 %, over 5 %
        (0, 100, Verdict.HEALTHY),  # 0 of 100: at most 3.7 %
        (2, 200, Verdict.HEALTHY),
        (6, 100, Verdict.WARNING),
        (12, 100, Verdict.AT_RISK),  # at least 7.0 %
        (50, 50, Verdict.AT_RISK),
    ],
)
def test_verdict_follows_the_interval(failed, devices, verdict):
    got, reasons = judge(figures(failed, devices), HealthPolicy())
    assert got is verdict
    assert reasons


def test_reasons_spell_out_the_figures():
    verdict, reasons = judge(
        figures(12, 100, failures={"app_crash": 9, "unzip_fail": 4}, rollbacks={"update_fail": 3}),
        HealthPolicy(max_failure_rate=0.05),
    )
    assert verdict is Verdict.AT_RISK
    assert reasons[0] == "12 of 100 devices saw a failure (12.0 %; 95 % interval 7.0 % to 19.8 %)"
    assert "lower bound 7.0 % is above the 5.0 % limit" in reasons[1]
    assert reasons[2] == "most frequent failures: app_crash (9), unzip_fail (4)"
    assert reasons[3] == "rollbacks away from 1.2.0: update_fail (3)"
    _, few = judge(figures(0, 3), HealthPolicy(min_devices=10))
    assert few == ("3 devices tried 1.2.0 in the window; at least 10 are needed for a verdict",)


def test_exit_codes():
    assert {v: v.exit_code for v in Verdict} == {
        Verdict.HEALTHY: 0,
        Verdict.AT_RISK: 1,
        Verdict.INSUFFICIENT_DATA: 2,
        Verdict.WARNING: 3,
    }


@pytest.mark.parametrize(
    "bad",
    [
        {"max_failure_rate": 0.0},
        {"max_failure_rate": 1.0},
        {"min_devices": 0},
        {"window": dt.timedelta(0)},
    ],
)
def test_policy_refuses_meaningless_settings(bad):
    with pytest.raises(ValueError):
        HealthPolicy(**bad)


def test_release_health_looks_only_at_its_window(tmp_path):
    old_failures = [
        event("app_crash", "1.2.0", dev=500 + n, received=NOW - dt.timedelta(days=9))
        for n in range(40)
    ]
    path = database(tmp_path, release(healthy=120, failing=1) + old_failures)
    with Reports(SQLiteReports(path)) as reports:
        week = release_health(reports, APP, "1.2.0", now=NOW)
        assert week.verdict is Verdict.HEALTHY
        assert (week.figures.devices, week.figures.failed_devices) == (121, 1)
        month = release_health(
            reports, APP, "1.2.0", HealthPolicy(window=dt.timedelta(days=30)), now=NOW
        )
        assert month.verdict is Verdict.AT_RISK
        data = month.to_json()
        assert data["verdict"] == "at_risk"
        assert data["exit_code"] == 1
        assert data["policy"] == {
            "max_failure_rate": 0.05,
            "min_devices": 50,
            "window_seconds": 2592000,
        }
        assert data["until"] == "2026-11-26T12:00:00Z"
        json.dumps(data)


def test_watcher_calls_the_hook_on_each_change_only(tmp_path):
    path = database(tmp_path, release(healthy=120, failing=0))
    changes: list[VerdictChange] = []
    with Reports(SQLiteReports(path)) as reports:
        watcher = HealthWatcher(reports, changes.append)
        watcher.check(APP, "1.2.0", now=NOW)
        watcher.check(APP, "1.2.0", now=NOW)
        assert [(c.previous, c.report.verdict) for c in changes] == [(None, Verdict.HEALTHY)]
        # Three days later nothing new arrived: the window still holds the same devices.
        watcher.check(APP, "1.2.0", now=NOW + dt.timedelta(days=3))
        assert len(changes) == 1
        # Eight days later the window is empty: not enough data any more.
        watcher.check(APP, "1.2.0", now=NOW + dt.timedelta(days=8))
        assert [(c.previous, c.report.verdict) for c in changes][-1] == (
            Verdict.HEALTHY,
            Verdict.INSUFFICIENT_DATA,
        )
        assert watcher.known == {(APP, "1.2.0"): Verdict.INSUFFICIENT_DATA}


def test_a_failing_hook_is_retried_on_the_next_check(tmp_path):
    path = database(tmp_path, release(healthy=10, failing=0))
    calls = []

    def flaky(change: VerdictChange) -> None:
        calls.append(change)
        if len(calls) == 1:
            raise RuntimeError("pager down")

    with Reports(SQLiteReports(path)) as reports:
        watcher = HealthWatcher(reports, flaky)
        with pytest.raises(HookError, match="pager down"):
            watcher.check(APP, "1.2.0", now=NOW)
        assert watcher.known == {}
        watcher.check(APP, "1.2.0", now=NOW)
        assert len(calls) == 2


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []
    status = 200

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        _Receiver.received.append(json.loads(self.rfile.read(length)))
        self.send_response(_Receiver.status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.received = []
    _Receiver.status = 200
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_webhook_posts_the_change_as_json(tmp_path, receiver):
    path = database(tmp_path, release(healthy=60, failing=40))
    with Reports(SQLiteReports(path)) as reports:
        HealthWatcher(reports, receiver).check(APP, "1.2.0", now=NOW)
    (body,) = _Receiver.received
    assert body["previous"] is None
    assert body["verdict"] == "at_risk"
    assert body["version"] == "1.2.0"
    assert (body["devices"], body["failed_devices"]) == (100, 40)


def test_webhook_errors_are_hook_errors(tmp_path, receiver):
    _Receiver.status = 500
    path = database(tmp_path, release(healthy=60, failing=0))
    with Reports(SQLiteReports(path)) as reports, pytest.raises(HookError, match="webhook"):
        HealthWatcher(reports, receiver).check(APP, "1.2.0", now=NOW)
    with pytest.raises(ValueError, match="http"):
        webhook("file:///etc/passwd")
