"""One rule at a time: event time, duplicates, composite names, ties, filters, the API's edges."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from updater_stats import ConfigurationError, MemoryBackend, SQLiteBackend
from updater_stats.backends.sqlite import SQLiteReports
from updater_stats.reports import (
    MAX_CLOCK_AHEAD,
    MAX_QUEUE_DELAY,
    ActiveDevices,
    EventReportSource,
    ReportQuery,
    Reports,
    ReportSource,
    counted_version,
    open_reports,
    reports_for,
    wilson_interval,
)

from .build import APP, NOW, database, event

ONE_MS = dt.timedelta(milliseconds=1)


def open_with(tmp_path: Path, events) -> Reports:
    return Reports(SQLiteReports(database(tmp_path, events)))


@pytest.mark.parametrize(
    ("device_clock", "uses_device_time"),
    [
        (NOW - MAX_QUEUE_DELAY, True),
        (NOW - MAX_QUEUE_DELAY - ONE_MS, False),
        (NOW + MAX_CLOCK_AHEAD, True),
        (NOW + MAX_CLOCK_AHEAD + ONE_MS, False),
        (NOW - dt.timedelta(days=3), True),
    ],
)
def test_device_time_is_used_when_plausible(tmp_path, device_clock, uses_device_time):
    with open_with(tmp_path, [event("set", "1.0.0", received=NOW, ts=device_clock)]) as reports:
        # A one-millisecond window around the device time finds the event iff it is believed.
        around_device = ReportQuery(app_id=APP, since=device_clock, until=device_clock + ONE_MS)
        around_server = ReportQuery(app_id=APP, since=NOW, until=NOW + ONE_MS)
        assert reports.active_devices(around_device).total == int(uses_device_time)
        assert reports.active_devices(around_server).total == int(not uses_device_time)


def test_a_late_event_counts_on_the_day_it_happened(tmp_path):
    happened = dt.datetime(2026, 11, 20, 23, 30, tzinfo=dt.timezone.utc)
    late = event(
        "set",
        "1.0.0",
        received=dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.timezone.utc),
        ts=happened,
    )
    with open_with(tmp_path, [late]) as reports:
        (day,) = reports.daily(ReportQuery(app_id=APP))
        assert day.day == dt.date(2026, 11, 20)
        assert day.installs == 1


def test_a_resent_batch_counts_once_and_an_unkeyed_repeat_twice(tmp_path):
    keyed = event("set", "1.0.0", dev=1)
    unkeyed = event("set", "1.0.0", dev=2, ts=None)
    resent = [keyed, keyed, unkeyed, unkeyed, keyed]
    with open_with(tmp_path, resent) as reports:
        (version,) = reports.versions(ReportQuery(app_id=APP))
        assert version.installs == 3  # one keyed install, two indistinguishable unkeyed sends
        assert version.devices == 2


def test_composite_names_count_under_their_version(tmp_path):
    events = [
        event("download_manifest_file_fail", "1.2.0:assets/main.js", dev=1),
        event("download_manifest_checksum_fail", "1.2.0:index.html", dev=2),
        event("set", "1.2.0", dev=3),
    ]
    with open_with(tmp_path, events) as reports:
        (version,) = reports.versions(ReportQuery(app_id=APP))
        assert version.version == "1.2.0"
        assert version.failed_devices == 2
        assert version.failures == {
            "download_manifest_checksum_fail": 1,
            "download_manifest_file_fail": 1,
        }
    assert counted_version("1.2.0:a:b") == "1.2.0"
    assert counted_version("") == ""


@pytest.mark.parametrize(
    ("plugin", "counted"),
    [("7.16.9", False), ("7.17.0", True), ("6.14.24", False), ("6.14.25", True)],
)
def test_old_plugins_download_fail_is_not_a_failure(tmp_path, plugin, counted):
    events = [event("download_fail", "1.2.0", plugin_version=plugin)]
    with open_with(tmp_path, events) as reports:
        (version,) = reports.versions(ReportQuery(app_id=APP))
        assert version.failed_devices == int(counted)


def test_target_version_actions_do_not_change_the_running_version(tmp_path):
    t = NOW - dt.timedelta(hours=3)
    events = [
        event("app_moved_to_foreground", "1.1.0", received=t),
        event("download_complete", "1.2.0", received=t + dt.timedelta(minutes=1)),
        event("set_next", "1.2.0", received=t + dt.timedelta(minutes=2)),
        event("future_action", "9.9.9", received=t + dt.timedelta(minutes=3)),
    ]
    with open_with(tmp_path, events) as reports:
        adoption = reports.adoption(ReportQuery(app_id=APP))
        assert adoption.live_versions == ("1.1.0",)


def test_ties_on_time_are_broken_by_receive_time_then_version(tmp_path):
    t = NOW - dt.timedelta(hours=3)
    events = [
        event(
            "app_moved_to_foreground", "1.0.0", dev=1, received=t + dt.timedelta(seconds=9), ts=t
        ),
        event(
            "app_moved_to_foreground", "1.1.0", dev=1, received=t + dt.timedelta(seconds=1), ts=t
        ),
        event("get", "2.0.0", dev=2, received=t, ts=t),
        event("app_nav", "1.9.0", dev=2, received=t, ts=t),
    ]
    with open_with(tmp_path, events) as reports:
        shares = {s.value: s.devices for s in reports.adoption(ReportQuery(app_id=APP)).versions}
        assert shares == {"1.0.0": 1, "2.0.0": 1}


def test_rollbacks_count_under_the_version_left(tmp_path):
    events = [
        event("update_fail", "1.2.0", dev=1),
        event("reset", "builtin", dev=2, old_version_name="1.2.0"),
        event("reset", "builtin", dev=3),  # names no bundle left: no rollback
    ]
    with open_with(tmp_path, events) as reports:
        by_version = {r.version: r for r in reports.versions(ReportQuery(app_id=APP))}
        assert by_version["1.2.0"].rollbacks == {"reset": 1, "update_fail": 1}
        assert by_version["builtin"].rollbacks == {}


def test_replaced_by_counts_installs_over_a_version(tmp_path):
    events = [
        event("set", "1.2.0", dev=1, old_version_name="1.1.0"),
        event("set", "1.2.0", dev=2, old_version_name="1.1.0"),
        event("set", "1.3.0", dev=3, old_version_name="1.1.0"),
    ]
    with open_with(tmp_path, events) as reports:
        by_version = {r.version: r for r in reports.versions(ReportQuery(app_id=APP))}
        # 1.1.0 has no events of its own in the window, yet it is reported as replaced.
        assert by_version["1.1.0"].devices == 0
        assert by_version["1.1.0"].replaced_by == {"1.2.0": 2, "1.3.0": 1}


def test_emulators_and_dev_builds_are_left_out_unless_asked(tmp_path):
    events = [
        event("set", "1.0.0", dev=1),
        event("set", "1.0.0", dev=2, is_emulator=True),
        event("set", "1.0.0", dev=3, is_prod=False),
    ]
    with open_with(tmp_path, events) as reports:
        assert reports.active_devices(ReportQuery(app_id=APP)).total == 1
        assert reports.active_devices(ReportQuery(app_id=APP, all_devices=True)).total == 3


def test_download_latency_prefers_the_reported_duration(tmp_path):
    t = NOW - dt.timedelta(hours=3)
    events = [
        event("download_0", "1.2.0", dev=1, received=t),
        event("download_complete", "1.2.0", dev=1, received=t + dt.timedelta(seconds=4)),
        event("download_0", "1.2.0", dev=2, received=t),
        event(
            "download_complete",
            "1.2.0",
            dev=2,
            received=t + dt.timedelta(seconds=60),
            metadata={"duration_ms": "2500"},
        ),
        event("download_10", "1.2.0", dev=3, received=t),  # an old plugin: no download_0
        event(
            "download_complete",
            "1.2.0",
            dev=3,
            received=t + dt.timedelta(seconds=9),
            metadata={"duration_ms": "fast"},
        ),
    ]
    with open_with(tmp_path, events) as reports:
        (latency,) = reports.download_latency(ReportQuery(app_id=APP))
        assert (latency.samples, latency.p50_ms, latency.p90_ms, latency.p99_ms) == (
            3,
            4000,
            9000,
            9000,
        )


def test_funnel_steps_are_nested_and_converted(tmp_path):
    events = [
        *(event("download_0", "1.2.0", dev=n) for n in range(1, 5)),
        *(event("download_complete", "1.2.0", dev=n) for n in range(1, 4)),
        *(event("set", "1.2.0", dev=n) for n in (1, 2, 9)),  # device 9 never downloaded here
        event("app_launch_ready", "1.2.0", dev=1),
    ]
    with open_with(tmp_path, events) as reports:
        (funnel,) = reports.funnel(ReportQuery(app_id=APP))
        assert [(s.name, s.devices) for s in funnel.steps] == [
            ("download_started", 4),
            ("download_complete", 3),
            ("set", 2),
            ("launched", 1),
        ]
        assert [s.conversion for s in funnel.steps] == [None, 0.75, 2 / 3, 0.5]


def test_another_app_is_never_counted(tmp_path):
    events = [event("set", "1.0.0", dev=1), event("set", "1.0.0", dev=2, app_id="com.other.app")]
    with open_with(tmp_path, events) as reports:
        assert reports.active_devices(ReportQuery(app_id=APP)).total == 1


def test_an_empty_database_reports_nothing(tmp_path):
    with open_with(tmp_path, []) as reports:
        query = ReportQuery(app_id=APP)
        assert reports.versions(query) == []
        assert reports.funnel(query) == []
        assert reports.adoption(query).devices == 0
        assert reports.active_devices(query) == ActiveDevices(total=0, by_day=())
        assert reports.version(query, "1.0.0").failure_rate is None


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (0, 20, 0.0, 0.16113),
        (10, 100, 0.05523, 0.17437),
        (50, 50, 0.92865, 1.0),
        (1, 2, 0.09453, 0.90547),
    ],
)
def test_wilson_interval_matches_published_values(k, n, low, high):
    assert wilson_interval(k, n) == pytest.approx((low, high), abs=1e-5)


def test_wilson_interval_refuses_impossible_counts():
    with pytest.raises(ValueError, match="positive"):
        wilson_interval(0, 0)
    with pytest.raises(ValueError, match="between"):
        wilson_interval(3, 2)


def test_query_needs_aware_ordered_times():
    with pytest.raises(ValueError, match="time zone"):
        ReportQuery(app_id=APP, since=dt.datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="before"):
        ReportQuery(app_id=APP, since=NOW, until=NOW)
    last = ReportQuery.last(APP, dt.timedelta(days=7), now=NOW)
    assert (last.since, last.until) == (NOW - dt.timedelta(days=7), NOW)


def test_open_reports_by_url_and_backend(tmp_path, monkeypatch):
    database(tmp_path, [event("set", "1.0.0")])
    monkeypatch.chdir(tmp_path)
    with open_reports("sqlite:///stats.sqlite3") as reports:
        assert reports.active_devices(ReportQuery(app_id=APP)).total == 1
    backend = SQLiteBackend(tmp_path / "stats.sqlite3")
    with reports_for(backend) as reports:
        assert isinstance(reports.source, SQLiteReports)
    backend.close()


def test_backends_that_only_read_get_the_reference_implementation():
    backend = MemoryBackend()
    backend.write([event("set", "1.0.0")])
    with reports_for(backend) as reports:
        assert isinstance(reports.source, EventReportSource)
        assert reports.active_devices(ReportQuery(app_id=APP)).total == 1
    backend.write([event("set", "1.0.0", dev=2)])  # closing the reports left the backend open


def test_backends_without_a_read_side_are_refused(tmp_path):
    class WriteOnly:
        def write(self, events):
            raise AssertionError

        def close(self):
            pass

    with pytest.raises(ConfigurationError, match="cannot be reported on"):
        reports_for(WriteOnly())
    with pytest.raises(ConfigurationError, match="in-memory"):
        open_reports("sqlite://:memory:")
    with pytest.raises(ConfigurationError, match="no SQLite database"):
        SQLiteReports(tmp_path / "missing.sqlite3")


def test_a_custom_backend_implementing_the_protocol_is_reported_on():
    class Custom:
        def version_counts(self, query):
            return []

        def funnel_counts(self, query):
            return []

        def running_versions(self, query):
            return []

        def active_devices(self, query):
            return ActiveDevices(total=7, by_day=())

        def download_latency(self, query):
            return []

        def daily_counts(self, query):
            return []

        def close(self):
            pass

        def write(self, events):
            raise AssertionError

    custom = Custom()
    assert isinstance(custom, ReportSource)
    assert reports_for(custom).active_devices(ReportQuery(app_id=APP)).total == 7
