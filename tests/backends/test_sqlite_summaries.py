"""SQLite's day summaries: the same figures as every event gives, for every report over
whole days, and kept so as events come and go."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import closing
from pathlib import Path
from typing import ClassVar

import pytest

from updater_stats import AppInfos, SQLiteBackend, StoredEvent
from updater_stats.backends.sqlite import SQLiteReports
from updater_stats.backends.sqlite import _summaries as summaries_module
from updater_stats.reports import ReportQuery, Reports
from updater_stats.testing import ReportsContract

DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
#: The contract's data set starts on this day (see `updater_stats.testing`).
T0 = dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc)
APP, OTHER_APP = "com.example.app", "com.example.other"


def _whole_day_queries() -> dict[str, ReportQuery]:
    """Windows of whole UTC days, which the summaries answer: in one block and across
    blocks, open at either end, under every filter they take."""
    windows = {
        "one day": (T0 + 2 * DAY, T0 + 3 * DAY),
        "a week": (T0, T0 + 7 * DAY),
        "since a day": (T0 + 4 * DAY, None),
        "until a day": (None, T0 + 3 * DAY),
        "all time": (None, None),
        "ninety days": (T0 - 80 * DAY, T0 + 10 * DAY),
        "across blocks": (T0 - 35 * DAY, T0 + 5 * DAY),
        "around 1970": (dt.datetime(1969, 12, 30, tzinfo=dt.timezone.utc), T0 - 300 * DAY),
        "nothing in it": (T0 + 100 * DAY, T0 + 101 * DAY),
    }
    queries: dict[str, ReportQuery] = {}
    for name, (since, until) in windows.items():
        queries[name] = ReportQuery(app_id=APP, since=since, until=until)
        queries[f"{name}, all devices"] = ReportQuery(
            app_id=APP, since=since, until=until, all_devices=True
        )
    for platform in ("ios", "android", "electron"):
        queries[f"a week, {platform}"] = ReportQuery(
            app_id=APP, since=T0, until=T0 + 7 * DAY, platform=platform, all_devices=True
        )
    queries["another app"] = ReportQuery(app_id=OTHER_APP, until=T0 + 9 * DAY, all_devices=True)
    queries["an app with no events"] = ReportQuery(app_id="com.example.silent", until=T0)
    return queries


class TestSummariesGiveEveryFigure(ReportsContract):
    """The reports contract, through the summaries: the figures of every event, exactly."""

    queries: ClassVar[Mapping[str, ReportQuery]] = {
        **ReportsContract.queries,
        **_whole_day_queries(),
    }

    @pytest.fixture
    def backend(self, tmp_path: Path) -> Iterator[SQLiteBackend]:
        backend = SQLiteBackend(tmp_path / "stats.sqlite3")
        yield backend
        backend.close()

    def reports(self, backend: SQLiteBackend) -> Reports:
        source = SQLiteReports(backend.path, summaries=True)
        assert source.summaries_ready()
        for name, query in _whole_day_queries().items():
            assert source.summarized(query), name  # read from the summaries, not the events
        return Reports(source)


def test_the_contract_reads_the_summaries_for_whole_days() -> None:
    queries = TestSummariesGiveEveryFigure.queries
    assert sum(summaries_module.answers(q) for q in queries.values()) >= 20
    assert not summaries_module.answers(queries["channel"])
    assert not summaries_module.answers(queries["window"])  # not whole days


def _event(
    device: int, action: str, version: str, at: dt.datetime, **fields: object
) -> StoredEvent:
    event = AppInfos(
        app_id=APP,
        device_id=f"00000000-0000-4000-8000-{device:012d}",
        platform="android",
        action=action,
        version_name=version,
        version_build="1.0.0",
        version_code="1",
        version_os="14",
        plugin_version="8.42.0",
        timestamp=int(at.timestamp() * 1000),
        **fields,  # type: ignore[arg-type]
    )
    return StoredEvent.from_event(event, at + dt.timedelta(seconds=5))


WEEK = ReportQuery(app_id=APP, since=T0, until=T0 + 7 * DAY)


def _both(path: Path, query: ReportQuery = WEEK) -> tuple[object, object]:
    """The versions and adoption reports, from the summaries and from every event."""
    with Reports(SQLiteReports(path, summaries=True)) as fast, Reports(SQLiteReports(path)) as slow:
        assert fast.source.summarized(query)  # type: ignore[attr-defined]
        return (
            (fast.versions(query), fast.adoption(query), fast.daily(query)),
            (slow.versions(query), slow.adoption(query), slow.daily(query)),
        )


def test_new_events_are_brought_in(tmp_path: Path) -> None:
    path = tmp_path / "stats.sqlite3"
    with closing(SQLiteBackend(path)) as backend:
        backend.write([_event(1, "app_moved_to_foreground", "1.0.0", T0 + DAY)])
        with Reports(SQLiteReports(path, summaries=True)) as reports:
            assert [v.devices for v in reports.versions(WEEK)] == [1]
            backend.write(
                [
                    _event(2, "app_moved_to_foreground", "1.0.0", T0 + 2 * DAY),
                    _event(2, "set", "1.1.0", T0 + 2 * DAY + dt.timedelta(hours=1)),
                    _event(3, "app_crash", "1.1.0", T0 + 3 * DAY),
                ]
            )
            versions = {v.version: v for v in reports.versions(WEEK)}
            assert versions["1.0.0"].devices == 2
            assert versions["1.1.0"].installs == 1
            assert versions["1.1.0"].failed_devices == 1
    fast, slow = _both(path)
    assert fast == slow


@pytest.mark.parametrize("deletion", ["forget", "purge"])
def test_deleted_events_leave_the_summaries(tmp_path: Path, deletion: str) -> None:
    path = tmp_path / "stats.sqlite3"
    events = [
        _event(device, action, "1.0.0", T0 + day * DAY)
        for device in range(1, 6)
        for day, action in ((1, "app_moved_to_foreground"), (2, "app_crash"))
    ]
    with closing(SQLiteBackend(path)) as backend:
        backend.write(events)
        fast, _slow = _both(path)
        if deletion == "forget":
            backend.forget(device_ids=[events[0].event.device_id])
        else:
            backend.purge(older_than=T0 + 2 * DAY)
    fast_after, slow_after = _both(path)
    assert fast_after == slow_after
    assert fast_after != fast


def test_a_file_of_another_format_is_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "stats.sqlite3"
    with closing(SQLiteBackend(path)) as backend:
        backend.write([_event(1, "app_moved_to_foreground", "1.0.0", T0 + DAY)])
    _both(path)
    import sqlite3  # noqa: PLC0415

    with sqlite3.connect(f"{path}-summaries") as conn:
        conn.execute("UPDATE meta SET value = -1 WHERE key = 'format'")
        # An older format's table, with other columns: made anew, not written into.
        conn.execute("DROP TABLE devices")
        conn.execute("CREATE TABLE devices (app_id, block, allp, platform, device_id, any_a)")
    fast, slow = _both(path)
    assert fast == slow


def test_many_new_events_are_brought_in_by_a_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(summaries_module, "SYNC_BUDGET", 10)
    monkeypatch.setattr(summaries_module, "CHUNK", 7)
    path = tmp_path / "stats.sqlite3"
    with closing(SQLiteBackend(path)) as backend:
        backend.write(
            [_event(n, "app_moved_to_foreground", "1.0.0", T0 + DAY) for n in range(1, 60)]
        )
    with Reports(SQLiteReports(path, summaries=True)) as reports:
        source = reports.source
        assert not source.summarized(WEEK)  # type: ignore[attr-defined]
        # Meanwhile every event is read: the same figures.
        assert reports.versions(WEEK)[0].devices == 59
        deadline = time.monotonic() + 30
        while not source.summaries_ready():  # type: ignore[attr-defined]
            assert time.monotonic() < deadline, "the thread never caught up"
            time.sleep(0.05)
        assert source.summarized(WEEK)  # type: ignore[attr-defined]
        assert reports.versions(WEEK)[0].devices == 59


def test_without_a_writable_folder_every_event_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "stats.sqlite3"
    with closing(SQLiteBackend(path)) as backend:
        backend.write([_event(1, "app_moved_to_foreground", "1.0.0", T0 + DAY)])
    # A folder in place of the file: it cannot be opened as a database.
    Path(f"{path}-summaries").mkdir()
    caplog.set_level(logging.WARNING, logger="updater_stats")
    with Reports(SQLiteReports(path, summaries=True)) as reports:
        assert not reports.source.summarized(WEEK)  # type: ignore[attr-defined]
        assert reports.versions(WEEK)[0].devices == 1
    assert "day summaries unavailable" in caplog.text


def test_without_summaries_no_file_is_made(tmp_path: Path) -> None:
    path = tmp_path / "stats.sqlite3"
    with closing(SQLiteBackend(path)) as backend:
        backend.write([_event(1, "app_moved_to_foreground", "1.0.0", T0 + DAY)])
    with Reports(SQLiteReports(path)) as reports:
        assert reports.versions(WEEK)[0].devices == 1
    assert not Path(f"{path}-summaries").exists()


def test_a_device_that_ran_on_after_the_window(tmp_path: Path) -> None:
    """The window ends before a device's latest events: what it ran last *in the window*
    counts, settled by the latest event of that day (the first day of a row, or read from
    the device's events when the summaries do not hold it)."""
    path = tmp_path / "stats.sqlite3"

    def runs(device: int, version: str, day: int, hour: int) -> StoredEvent:
        return _event(device, "app_moved_to_foreground", version, T0 + day * DAY + hour * HOUR)

    with closing(SQLiteBackend(path)) as backend:
        backend.write(
            [
                # Both versions on day 1 only, in the window: 1.1.0 later that day.
                runs(1, "1.0.0", 1, 10), runs(1, "1.1.0", 1, 12),
                runs(1, "1.0.0", 5, 9), runs(1, "1.1.0", 4, 9),
                # Both on days 0 and 2 in the window, in another order each day.
                runs(2, "1.0.0", 0, 12), runs(2, "1.1.0", 0, 10),
                runs(2, "1.0.0", 2, 10), runs(2, "1.1.0", 2, 12),
                runs(2, "1.0.0", 5, 9), runs(2, "1.1.0", 6, 9),
                # One version in the window, the other only after it.
                runs(3, "1.0.0", 1, 8), runs(3, "1.1.0", 5, 8),
            ]
        )  # fmt: skip
    window = ReportQuery(app_id=APP, since=T0, until=T0 + 3 * DAY)
    fast, slow = _both(path, window)
    assert fast == slow
    with Reports(SQLiteReports(path)) as reports:
        running = {s.value: s.devices for s in reports.adoption(window).versions}
    assert running == {"1.1.0": 2, "1.0.0": 1}


def test_failures_and_downloads_on_both_sides_of_the_window(tmp_path: Path) -> None:
    """A device whose failures or downloads fall both in the window and out of it: its
    figures in the window are read from its events, the same as every event gives."""
    path = tmp_path / "stats.sqlite3"

    def at(device: int, action: str, day: int, hour: int, **fields: object) -> StoredEvent:
        return _event(device, action, "1.2.0", T0 + day * DAY + hour * HOUR, **fields)

    done = {"metadata": {"duration_ms": "900"}}
    with closing(SQLiteBackend(path)) as backend:
        backend.write(
            [
                at(1, "app_crash", 1, 1), at(1, "app_crash", 2, 1), at(1, "app_crash", 6, 1),
                at(2, "app_crash", 2, 3),
                at(3, "download_0", 0, 1), at(3, "download_0", 2, 1),
                at(3, "download_complete", 2, 2), at(3, "download_complete", 6, 2, **done),
                at(4, "download_0", 2, 5), at(4, "download_complete", 2, 6, **done),
                at(5, "download_0", 2, 1), at(5, "download_complete", 2, 2),
                at(5, "download_complete", 6, 2, **done),
            ]
        )  # fmt: skip
    window = ReportQuery(app_id=APP, since=T0 + 2 * DAY, until=T0 + 4 * DAY)
    with closing(SQLiteReports(path, summaries=True)) as fast, closing(SQLiteReports(path)) as slow:
        assert fast.summarized(window)
        for version in ("1.2.0", "9.9.9"):
            assert fast.failing_devices(window, version, limit=10, offset=0) == (
                slow.failing_devices(window, version, limit=10, offset=0)
            )
        assert fast.download_latency(window) == slow.download_latency(window)
        failing = fast.failing_devices(window, "1.2.0", limit=10, offset=0)
    assert [(d.device_id[-1], d.failures) for d in failing] == [("2", 1), ("1", 1)]


def test_a_forgotten_device_leaves_no_trace_in_the_summaries(tmp_path: Path) -> None:
    path = tmp_path / "stats.sqlite3"
    gone = _event(7, "app_moved_to_foreground", "1.0.0", T0 + DAY)
    with closing(SQLiteBackend(path)) as backend:
        backend.write([gone, _event(8, "app_moved_to_foreground", "1.0.0", T0 + DAY)])
        _both(path)  # summaries made, with both devices
        assert gone.event.device_id.encode() in _summary_bytes(path)
        backend.forget(device_ids=[gone.event.device_id])
    assert gone.event.device_id.encode() not in _summary_bytes(path)
    fast, slow = _both(path)
    assert fast == slow


def _summary_bytes(path: Path) -> bytes:
    """Everything the summaries' files hold, WAL included."""
    files = (Path(f"{path}-summaries{suffix}") for suffix in ("", "-wal"))
    return b"".join(name.read_bytes() for name in files if name.exists())


def test_readers_opening_a_new_summaries_file_at_once_all_keep_it(tmp_path: Path) -> None:
    # Two dashboard workers start on a file without summaries: each turns the new summaries
    # file to WAL, and SQLite answered one of them "database is locked" at once, which left
    # it reading every event for good.
    for run in range(80):
        path = tmp_path / f"s-{run}.sqlite3"
        with closing(SQLiteBackend(path)) as backend:
            backend.write([_event(1, "app_moved_to_foreground", "1.0.0", T0 + DAY)])
        readers = [SQLiteReports(path, summaries=True) for _ in range(3)]
        ready: list[bool] = []
        threads = [
            threading.Thread(target=lambda r=reader, out=ready: out.append(r.summaries_ready()))
            for reader in readers
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for reader in readers:
            reader.close()
        assert ready == [True, True, True], run
