"""Each counting rule of docs/reports.md, pinned on SQLite, PostgreSQL and ClickHouse (chdb).

Small hand-made event sets, one rule each, stored through each backend's own `write` and
read back through its own read side: the three must give exactly the figures the rule says.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import psycopg
import pytest

from updater_stats import MemoryBackend, SQLiteBackend, StorageBackend, StoredEvent
from updater_stats.reports import ReportQuery, Reports, reports_for

from ..backends.servers import clickhouse_backend, postgres_backend, postgres_url
from .build import APP, NOW, event

BACKENDS: dict[str, Callable[[Path], StorageBackend]] = {
    "sqlite": lambda tmp: SQLiteBackend(tmp / "stats.sqlite3"),
    "postgres": lambda _tmp: postgres_backend(),
    "clickhouse": lambda _tmp: clickhouse_backend(),
    # The reference implementation, which reports on any backend that reads.
    "memory": lambda _tmp: MemoryBackend(),
}
QUERY = ReportQuery(app_id=APP)
T = NOW - dt.timedelta(hours=3)


@pytest.fixture(params=list(BACKENDS))
def stored(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Reports]]:
    """Store events in a fresh database of the backend, and open its reports."""
    opened: list[tuple[StorageBackend, Reports]] = []

    def store(events: list[StoredEvent]) -> Reports:
        backend = BACKENDS[request.param](tmp_path)
        backend.write(events)
        reports = reports_for(backend)
        opened.append((backend, reports))
        return reports

    yield store
    for backend, reports in opened:
        reports.close()
        backend.close()


def at(seconds: int) -> dt.datetime:
    return T + dt.timedelta(seconds=seconds)


def test_download_fail_counts_only_from_readable_fixed_plugins(stored):
    plugins = {
        "7.17.0": True,
        "8.42.0": True,
        "6.14.25": True,
        "7.17.0+build.3": True,
        "7.16.9": False,
        "6.14.24": False,
        "7.17.0-beta.1": False,  # a pre-release is older than its release
        "6.14.25-rc.1": False,
        "dev-build": False,  # unreadable: not counted
        "": False,
        "7.17": False,
    }
    events = [
        event("download_fail", "1.2.0", dev=n, plugin_version=plugin)
        for n, plugin in enumerate(plugins, start=1)
    ]
    reports = stored(events)
    (version,) = reports.versions(QUERY)
    counted = sum(plugins.values())
    assert (version.devices, version.failed_devices) == (len(plugins), counted)
    assert version.failures == {"download_fail": counted}
    (day,) = reports.daily(QUERY)
    assert day.failures == counted


def test_download_fail_from_a_plugin_version_in_other_digits_is_not_counted(stored):
    # Unreadable, like dev-build: the plugin never writes its version in these digits.
    plugins = ["\uff18.\uff14\uff12.\uff10", "\u0668.\u0664\u0662.\u0660", "8.42.0"]
    reports = stored(
        [
            event("download_fail", "1.0.0", dev=n, plugin_version=plugin)
            for n, plugin in enumerate(plugins, start=1)
        ]
    )
    (version,) = reports.versions(QUERY)
    assert (version.devices, version.failures, version.failed_devices) == (
        3,
        {"download_fail": 1},
        1,
    )


def test_only_running_version_actions_say_what_a_device_runs(stored):
    events = []
    not_running = ["unzip_fail", "decrypt_fail", "checksum_fail", "set_fail", "update_fail"]
    not_running += ["download_complete", "set_next", "delete", "download_manifest_file_fail"]
    for n, action in enumerate(not_running, start=1):
        events.append(event("app_moved_to_foreground", "1.1.0", dev=n, received=at(0)))
        events.append(event(action, "1.5.0", dev=n, received=at(60)))
    running = ["set", "reset", "app_crash", "app_nav", "get", "noNew", "app_launch_timeout"]
    for n, action in enumerate(running, start=100):
        events.append(event("app_moved_to_foreground", "1.1.0", dev=n, received=at(0)))
        events.append(event(action, "1.5.0", dev=n, received=at(60)))
    reports = stored(events)
    shares = {s.value: s.devices for s in reports.adoption(QUERY).versions}
    assert shares == {"1.1.0": len(not_running), "1.5.0": len(running)}
    by_version = {d.version: d.running_devices for d in reports.daily(QUERY)}
    assert by_version == {"1.1.0": len(not_running) + len(running), "1.5.0": len(running)}


def test_a_failed_unzip_is_not_an_install_nor_a_running_device(stored):
    events = [event("set", "1.5.0", dev=n, old_version_name="1.4.0") for n in range(1, 4)]
    events.append(event("download_complete", "1.5.0", dev=9, received=at(0)))
    events.append(event("unzip_fail", "1.5.0", dev=9, received=at(5)))
    reports = stored(events)
    (day,) = [d for d in reports.daily(QUERY) if d.version == "1.5.0"]
    assert (day.installs, day.running_devices, day.failures) == (3, 3, 1)
    assert reports.adoption(QUERY).devices == 3


@pytest.mark.parametrize(
    ("names", "runs"),
    [
        (["1.9.0", "1.10.0"], "1.10.0"),  # text order would pick 1.9.0
        (["1.0.0", "1.0.0-beta.2"], "1.0.0"),  # a release is newer than its pre-releases
        (["1.0.0-beta.9", "1.0.0-beta.10"], "1.0.0-beta.10"),  # numeric identifiers by value
        (["1.0.0-alpha", "1.0.0-1"], "1.0.0-alpha"),  # text identifiers after numeric ones
        (["builtin", "0.0.1"], "0.0.1"),  # names that are not versions come first
        (["zzz free text", "0.0.1"], "0.0.1"),
        (["builtin", "Builtin"], "builtin"),  # among non-versions, by code point
        (["v2.0.0", "2.0.0"], "v2.0.0"),  # equal precedence: by code point
    ],
)
def test_ties_go_to_the_newest_version(stored, names, runs):
    events = [
        event(action, name, dev=1, received=at(0))
        for action, name in zip(["app_crash", "app_nav"], names, strict=True)
    ]
    # The same names the other way round: the order of arrival never decides.
    events += [
        event(action, name, dev=2, received=at(0))
        for action, name in zip(["app_nav", "app_crash"], names, strict=True)
    ]
    reports = stored(events)
    assert [(s.value, s.devices) for s in reports.adoption(QUERY).versions] == [(runs, 2)]


def test_ties_on_version_go_to_the_greatest_platform_then_os_plugin_native(stored):
    # Without a device timestamp (no key), so storage keeps both copies of each pair.
    events = [
        event("app_nav", "1.0.0", dev=1, received=at(0), ts=None, version_os="14"),
        event("app_nav", "1.0.0", dev=1, received=at(0), ts=None, version_os="9"),
        event("app_nav", "1.0.0", dev=2, received=at(0), ts=None, version_build="2.0.0"),
        event("app_nav", "1.0.0", dev=2, received=at(0), ts=None, version_build="10.0.0"),
    ]
    reports = stored(events)
    adoption = reports.adoption(QUERY)
    assert {s.value: s.devices for s in adoption.os_versions} == {"android 9": 1, "android 14": 1}
    assert {s.value: s.devices for s in adoption.native_versions} == {"2.0.0": 2}


def test_the_later_event_then_the_later_receipt_wins_before_any_tie_break(stored):
    events = [
        event("app_nav", "2.0.0", dev=1, received=at(0)),
        event("app_nav", "1.0.0", dev=1, received=at(1)),
        event("app_nav", "2.0.0", dev=2, received=at(9), ts=at(0)),
        event("app_nav", "1.0.0", dev=2, received=at(10), ts=at(0)),
    ]
    reports = stored(events)
    assert [(s.value, s.devices) for s in reports.adoption(QUERY).versions] == [("1.0.0", 2)]


def test_lists_of_versions_are_in_version_order(stored):
    names = ["1.9.0", "1.10.0", "builtin", "1.10.0-rc.1", "0.9.0"]
    events = []
    for n, name in enumerate(names, start=1):
        events.append(event("download_0", name, dev=n, received=at(n)))
        events.append(event("download_complete", name, dev=n, received=at(n + 10)))
    reports = stored(events)
    newest_first = ["1.10.0", "1.10.0-rc.1", "1.9.0", "0.9.0", "builtin"]
    assert [v.version for v in reports.versions(QUERY)] == newest_first
    assert [f.version for f in reports.funnel(QUERY)] == newest_first
    assert [c.version for c in reports.download_latency(QUERY)] == newest_first
    assert [d.version for d in reports.daily(QUERY)] == newest_first[::-1]


def test_builtin_has_no_rollbacks_a_reset_lands_on_it(stored):
    events = [
        event("reset", "builtin", dev=1, old_version_name="1.2.0"),
        event("reset", "builtin", dev=2),  # the bundle left is unknown
        event("reset", "builtin", dev=5, old_version_name="builtin"),  # already on builtin
        event("reset", "builtin", dev=6, old_version_name="builtin:x.js"),
        event("reset", "1.3.0", dev=3),  # an old plugin naming the bundle it left
        event("update_fail", "1.2.0", dev=4),
    ]
    reports = stored(events)
    rollbacks = {v.version: dict(v.rollbacks) for v in reports.versions(QUERY) if v.rollbacks}
    assert rollbacks == {"1.2.0": {"reset": 1, "update_fail": 1}, "1.3.0": {"reset": 1}}
    # Devices that reset run builtin; the device that rolled back names no version it runs.
    assert {s.value: s.devices for s in reports.adoption(QUERY).versions} == {
        "builtin": 4,
        "1.3.0": 1,
    }


def test_download_10_counts_as_a_start_from_any_plugin(stored):
    events = [
        event("download_10", "1.2.0", dev=1, plugin_version="8.42.0"),  # download_0 lost
        event("download_10", "1.2.0", dev=2, plugin_version="7.16.0", ts=None),  # old plugin
        event("download_0", "1.2.0", dev=3),
        event("download_10", "1.2.0", dev=3),  # counted once with its download_0
    ]
    reports = stored(events)
    (funnel,) = reports.funnel(QUERY)
    assert funnel.steps[0].devices == 3


COLUMNS_MAYBE_NULL = ("platform", "version_os", "plugin_version", "version_build", "version_code")


def _null_columns(backend: StorageBackend, device_id: str) -> None:
    """Store NULL in the columns devices may leave out, for one device's events.

    The schemas do not allow it yet; the reports must already read such rows, so each
    table is loosened here the way a later schema will be.
    """
    if isinstance(backend, MemoryBackend):
        absent = dict.fromkeys(COLUMNS_MAYBE_NULL)  # events whose device sent none of them
        backend._events = [
            attrs.evolve(stored, event=attrs.evolve(stored.event, **absent))
            if stored.event.device_id == device_id
            else stored
            for stored in backend._events
        ]
    elif isinstance(backend, SQLiteBackend):
        conn = sqlite3.connect(backend.path)
        columns = [row[1] for row in conn.execute("PRAGMA table_info(events)")]
        conn.execute("CREATE TABLE loose AS SELECT * FROM events")
        conn.execute("DROP TABLE events")
        conn.execute("ALTER TABLE loose RENAME TO events")
        sets = ", ".join(f"{c} = NULL" for c in COLUMNS_MAYBE_NULL)
        conn.execute(f"UPDATE events SET {sets} WHERE device_id = ?", [device_id])
        assert "plugin_version" in columns
        conn.commit()
        conn.close()
    elif backend.__class__.__name__ == "PostgresBackend":
        table = f'"{backend.schema}".events'  # type: ignore[attr-defined]
        with psycopg.connect(postgres_url(), autocommit=True) as conn:
            for column in COLUMNS_MAYBE_NULL:
                conn.execute(f"ALTER TABLE {table} ALTER COLUMN {column} DROP NOT NULL")
            sets = ", ".join(f"{c} = NULL" for c in COLUMNS_MAYBE_NULL)
            conn.execute(f"UPDATE {table} SET {sets} WHERE device_id = %s", [device_id])
    else:
        client = backend._connect()  # type: ignore[attr-defined]
        table = backend._qualified  # type: ignore[attr-defined]
        for column in COLUMNS_MAYBE_NULL:
            client.command(
                f"ALTER TABLE {table} MODIFY COLUMN {column} LowCardinality(Nullable(String))"
            )
        sets = ", ".join(f"{c} = NULL" for c in COLUMNS_MAYBE_NULL)
        client.command(
            f"ALTER TABLE {table} UPDATE {sets} WHERE device_id = {{d:String}}",
            parameters={"d": device_id},
            settings={"mutations_sync": 2},
        )


@pytest.mark.parametrize("name", list(BACKENDS))
def test_columns_a_device_left_out_are_read_as_empty(name, tmp_path):
    events = [
        event("app_nav", "1.0.0", dev=1, received=at(0)),
        event("download_fail", "1.0.0", dev=1, received=at(1)),  # unreadable plugin: not counted
        event("app_crash", "1.0.0", dev=1, received=at(2)),
        event("download_fail", "1.0.0", dev=2, received=at(1)),  # 8.42.0: counted
    ]
    backend = BACKENDS[name](tmp_path)
    backend.write(events)
    _null_columns(backend, events[0].event.device_id)
    with reports_for(backend) as reports:
        (version,) = reports.versions(QUERY)
        assert version.failures == {"app_crash": 1, "download_fail": 1}
        assert version.failed_devices == 2
        adoption = reports.adoption(QUERY)
        assert {s.value: s.devices for s in adoption.plugin_versions} == {"": 1}
        assert {s.value: s.devices for s in adoption.os_versions} == {"": 1}
        (day,) = reports.daily(QUERY)
        assert (day.failures, day.failed_devices, day.running_devices) == (2, 2, 1)
    backend.close()


@pytest.mark.parametrize("offset_us", [1, 400, 999])
def test_window_bounds_between_two_milliseconds(stored, offset_us):
    """[since, until) on whole-millisecond event times: a bound inside a millisecond keeps
    the events at or after `since` and before `until`, to the microsecond."""
    edge = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.timezone.utc)
    ms = dt.timedelta(milliseconds=1)
    # One event per millisecond from -2 to 5, each of its own version "1.0.<n + 2>".
    events = [
        event("app_launch_ready", f"1.0.{n + 2}", dev=n + 10, received=edge + n * ms)
        for n in range(-2, 6)
    ]
    reports = stored(events)
    inside = dt.timedelta(microseconds=offset_us)
    # since falls inside millisecond -1 and until inside millisecond 3: 0, 1, 2 and 3 count.
    query = ReportQuery(app_id=APP, since=edge - ms + inside, until=edge + 3 * ms + inside)
    assert sorted(v.version for v in reports.versions(query)) == [
        "1.0.2",
        "1.0.3",
        "1.0.4",
        "1.0.5",
    ]
    assert reports.adoption(query).devices == 4


def test_the_os_split_leaves_out_what_the_device_did_not_send(stored):
    reports = stored(
        [
            event("app_nav", "1.0.0", dev=1, platform="android", version_os="14"),
            event("app_nav", "1.0.0", dev=2, platform="android", version_os=None),
            event("app_nav", "1.0.0", dev=3, platform=None, version_os="17.2"),
            event("app_nav", "1.0.0", dev=4, platform=None, version_os=None),
            event("app_nav", "1.0.0", dev=5, platform="ios", version_os=""),
        ]
    )
    adoption = reports.adoption(QUERY)
    assert {s.value: s.devices for s in adoption.os_versions} == {
        "android 14": 1,
        "android": 1,
        "17.2": 1,
        "": 1,
        "ios": 1,
    }


@pytest.mark.parametrize("name", list(BACKENDS))
def test_days_are_utc_days_before_1970_too(name, tmp_path):
    received = dt.datetime(1969, 12, 31, 12, 0, tzinfo=dt.timezone.utc)
    backend = BACKENDS[name](tmp_path)
    backend.write([event("app_launch_ready", "1.0.0", received=received, ts=None)])
    with reports_for(backend) as reports:
        (day,) = reports.active_devices(QUERY).by_day
        (daily,) = reports.daily(QUERY)
    backend.close()
    assert day.day == daily.day == received.date()
