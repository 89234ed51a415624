"""The device inventory computed in Python (`EventInventory`, the reference) gives the answers
of the SQL read sides' own (`InventorySource` in SQL) on SQLite, PostgreSQL and ClickHouse,
over one varied data set: every question, every window, page by page."""

from __future__ import annotations

import datetime as dt
import itertools
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from scripts.sample_rollout import APP

from updater_stats import AppInfos, StorageBackend, StoredEvent
from updater_stats.backends import InventorySource, SupportsReportSource
from updater_stats.reports import DeviceEvent, EventInventory, ReportQuery

from ..reports.build import device
from .conftest import (
    BACKENDS,
    BUSY_DEVICE,
    HOSTILE,
    OTHER_APPS,
    SAME_MOMENT_DEVICE,
    fill,
    inventory_events,
)

UNTIL = dt.datetime(2026, 11, 25, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)
QUERIES = {
    "14 days": ReportQuery(app_id=APP, since=UNTIL - 14 * DAY, until=UNTIL),
    "7 days": ReportQuery(app_id=APP, since=UNTIL - 7 * DAY, until=UNTIL),
    "7 days, ios": ReportQuery(app_id=APP, since=UNTIL - 7 * DAY, until=UNTIL, platform="ios"),
    "one day": ReportQuery(app_id=APP, since=UNTIL - 8 * DAY, until=UNTIL - 7 * DAY),
    "all devices": ReportQuery(app_id=APP, since=UNTIL - 14 * DAY, until=UNTIL, all_devices=True),
    "channel": ReportQuery(app_id=APP, since=UNTIL - 14 * DAY, until=UNTIL, channel="beta"),
    "until only": ReportQuery(app_id=APP, until=UNTIL - 3 * DAY),
    "unbounded": ReportQuery(app_id=APP),
    "other app": ReportQuery(app_id=OTHER_APPS[1]),
}


@pytest.fixture(scope="module")
def events() -> list[StoredEvent]:
    return inventory_events()


@pytest.fixture(scope="module", params=list(BACKENDS))
def sides(
    request: pytest.FixtureRequest,
    events: list[StoredEvent],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[InventorySource, EventInventory]]:
    """The SQL read side's inventory and the reference, over the same stored events."""
    backend: StorageBackend = BACKENDS[request.param](tmp_path_factory.mktemp(request.param))
    fill(backend, events)
    assert isinstance(backend, SupportsReportSource)
    source = backend.report_source()
    assert isinstance(source, InventorySource)
    yield source, EventInventory(backend)
    source.close()
    backend.close()


def devices_of(events: list[StoredEvent], app_id: str = APP) -> list[str]:
    return sorted({e.event.device_id for e in events if e.event.app_id == app_id})


def test_apps(sides, events):
    sql, reference = sides

    assert list(sql.apps()) == reference.apps() == sorted({APP, *OTHER_APPS})


@pytest.mark.parametrize("name", list(QUERIES))
def test_daily_rates(sides, name):
    sql, reference = sides
    query = QUERIES[name]

    expected = reference.daily_rates(query)
    assert sorted(sql.daily_rates(query), key=lambda r: (r.day, r.version)) == expected
    assert expected
    if name != "other app":
        assert any(rate.failed_devices for rate in expected)


@pytest.mark.parametrize("name", list(QUERIES))
def test_failing_devices_page_by_page(sides, name):
    sql, reference = sides
    query = QUERIES[name]
    versions = {rate.version for rate in reference.daily_rates(query) if rate.failed_devices}

    for version in sorted(versions):
        everyone = reference.failing_devices(query, version, limit=10_000)
        assert list(sql.failing_devices(query, version, limit=10_000)) == everyone
        if len(everyone) > 20:
            for offset in range(0, len(everyone) + 20, 20):
                page = reference.failing_devices(query, version, limit=20, offset=offset)
                assert page == everyone[offset : offset + 20]
                assert list(sql.failing_devices(query, version, limit=20, offset=offset)) == page
    assert list(sql.failing_devices(query, "no-such-version", limit=10)) == []
    assert reference.failing_devices(query, "no-such-version", limit=10) == []


def test_failing_devices_follow_the_window_rules(sides):
    _, reference = sides

    def failing(name: str) -> set[str]:
        return {d.device_id for d in reference.failing_devices(QUERIES[name], "1.2.0", limit=999)}

    window = failing("14 days")
    assert device(9011) in window  # download_fail from a plugin whose download_fail counts
    assert not window & {device(n) for n in (9010, 9012, 9013)}  # nor from the others
    assert device(9020) not in window
    assert device(9021) not in window
    assert {device(9020), device(9021)} <= failing("all devices")
    assert failing("channel") == {device(9030), device(9031)}
    assert {device(9040), device(9041), device(9042), device(9044), device(9050)} <= window
    assert device(9042) not in failing("7 days")  # sent ten days before it was received
    assert device(9040) in failing("7 days")
    assert device(9120) in window
    assert device(9120) not in failing("7 days, ios")
    assert device(9130) in failing("unbounded")
    assert device(9130) not in window
    ties = [d.device_id for d in reference.failing_devices(QUERIES["14 days"], "1.2.0", limit=999)]
    assert ties.index(device(9090)) + 1 == ties.index(device(9091))


@pytest.mark.parametrize("app_id", [APP, *OTHER_APPS, "com.example.none"])
def test_device_lists_page_by_page(sides, events, app_id):
    sql, reference = sides
    everyone = devices_of(events, app_id)

    listed = reference.list_devices(app_id, limit=100_000)
    assert [row.device_id for row in listed] == everyone
    assert list(sql.list_devices(app_id, limit=100_000)) == listed
    after = None
    for _ in range(len(everyone) // 37 + 1):
        page = reference.list_devices(app_id, after=after, limit=37)
        assert list(sql.list_devices(app_id, after=after, limit=37)) == page
        if not page:
            break
        after = page[-1].device_id
    assert after == (everyone[-1] if everyone else None)
    assert reference.list_devices(app_id, after=after, limit=37) == []


@pytest.mark.parametrize(
    ("device_ids", "custom_ids", "found"),
    [
        ([device(9070)], [], [9070]),
        ([], ["user-42"], [9071, 9072]),
        ([device(9001)], [], []),  # another app's device
        ([], [""], []),  # an empty custom_id is no id
        ([], ["old-id"], [9073]),
        ([], ["new-id"], [9073]),
        ([device(9060), device(9020)], ["user-42", HOSTILE[1]], [7001, 9020, 9060, 9071, 9072]),
        ([], [], []),
    ],
)
def test_find_devices(sides, device_ids, custom_ids, found):
    sql, reference = sides

    rows = reference.find_devices(APP, device_ids=device_ids, custom_ids=custom_ids, limit=50)
    assert [row.device_id for row in rows] == [device(n) for n in found]
    assert list(sql.find_devices(APP, device_ids=device_ids, custom_ids=custom_ids, limit=50)) == (
        rows
    )


def sampled_devices(events: list[StoredEvent]) -> list[str]:
    """Every device of the varied events and the busy and hostile ones, some of the others."""
    special = {
        d
        for d in devices_of(events)
        if int(d.replace("-", ""), 16) >= 7000 and int(d.replace("-", ""), 16) < 10_000
    }
    return sorted(special | set(devices_of(events)[::25]))


def test_device_summaries(sides, events):
    sql, reference = sides

    for device_id in [*sampled_devices(events), device(1), "not a device"]:
        summary = reference.device(APP, device_id)
        assert sql.device(APP, device_id) == summary, device_id
    busy = reference.device(APP, device(BUSY_DEVICE))
    assert busy is not None
    assert (busy.bundle, busy.events) == ("1.2.1", 121)
    assert reference.device(APP, device(9110)).bundle is None  # type: ignore[union-attr]
    assert reference.device(APP, device(9100)).bundle == "1.2.0"  # type: ignore[union-attr]
    assert reference.device(APP, "not a device") is None
    assert reference.device(OTHER_APPS[1], device(9001)).events == 2  # type: ignore[union-attr]


def moments(page: Sequence[DeviceEvent]) -> list[tuple[dt.datetime, dt.datetime | None]]:
    return [(e.received_at, e.device_time) for e in page]


def alike(page: Sequence[DeviceEvent]) -> list[list[str]]:
    """*page* with the order of events alike in receive and device time left out: the
    protocol leaves it to each source."""
    return [
        sorted(repr(e) for e in group)
        for _, group in itertools.groupby(page, key=lambda e: (e.received_at, e.device_time))
    ]


def test_timelines(sides, events):
    sql, reference = sides

    for device_id in sampled_devices(events):
        everything = reference.timeline(APP, device_id, limit=1000)
        assert alike(list(sql.timeline(APP, device_id, limit=1000))) == alike(everything)
    assert reference.timeline(APP, "not a device", limit=5) == []


@pytest.mark.parametrize("number", [BUSY_DEVICE, 9073, 9080])
def test_timeline_pages(sides, number):
    sql, reference = sides
    everything = reference.timeline(APP, device(number), limit=1000)
    assert len(set(moments(everything))) == len(everything)  # pages cut no group of alike
    size = 50 if len(everything) > 50 else 2

    for offset in range(0, len(everything) + size, size):
        page = reference.timeline(APP, device(number), limit=size, offset=offset)
        assert page == everything[offset : offset + size]
        assert list(sql.timeline(APP, device(number), limit=size, offset=offset)) == page


def test_timeline_order_at_one_moment(sides):
    sql, reference = sides
    moment = dt.datetime(2026, 11, 22, 13, 0, tzinfo=dt.timezone.utc)

    page = reference.timeline(APP, device(SAME_MOMENT_DEVICE), limit=10)
    assert list(sql.timeline(APP, device(SAME_MOMENT_DEVICE), limit=10)) == page
    assert [(e.action, e.received_at - moment, e.device_time) for e in page] == [
        ("app_moved_to_background", dt.timedelta(minutes=1), None),
        ("app_launch_ready", dt.timedelta(0), moment),
        ("app_crash", dt.timedelta(0), moment - dt.timedelta(minutes=1)),
        ("set", dt.timedelta(0), None),  # no device time: after those with one
        ("app_moved_to_foreground", -dt.timedelta(minutes=1), moment - dt.timedelta(minutes=1)),
    ]


def test_times_and_values_read_back(sides):
    sql, reference = sides

    (huge,) = reference.timeline(APP, device(9043), limit=5)
    assert huge.device_time is None  # past datetime's range
    assert list(sql.timeline(APP, device(9043), limit=5)) == [huge]
    metadata = [e.metadata for e in reference.timeline(APP, device(9060), limit=5)]
    assert metadata == [None, None]  # {} and absent alike
    channels = {e.channel for e in reference.timeline(APP, device(9031), limit=5)}
    assert channels == {"beta"}  # defaultChannel when no channel was sent
    (hostile, *_) = reference.timeline(APP, device(7002), limit=5)
    assert hostile.custom_id == HOSTILE[2]
    assert hostile.metadata == {"message": HOSTILE[2], HOSTILE[2]: "key"}


def test_stored_nothing(tmp_path: Path):
    from updater_stats import MemoryBackend  # noqa: PLC0415

    reference = EventInventory(MemoryBackend())
    query = QUERIES["14 days"]

    assert reference.apps() == []
    assert reference.daily_rates(query) == []
    assert reference.failing_devices(query, "1.2.0", limit=5) == []
    assert reference.list_devices(APP, limit=5) == []
    assert reference.find_devices(APP, device_ids=["x"], custom_ids=["y"], limit=5) == []
    assert reference.device(APP, device(1)) is None
    assert reference.timeline(APP, device(1), limit=5) == []
    assert isinstance(reference, InventorySource)


class Stream:
    """A backend that makes each event as it is read, so that none stays in memory unless the
    reader keeps it: one app, a device per *per_device* events."""

    def __init__(self, count: int, per_device: int) -> None:
        self.count = count
        self.per_device = per_device

    def events(self, *, app_id: str | None = None) -> Iterator[StoredEvent]:
        start = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
        for n in range(self.count):
            event = AppInfos(
                app_id=APP,
                device_id=device(n // self.per_device),
                action="app_crash",
                version_name="1.2.0",
                timestamp=None,
                metadata={"n": str(n)},
            )
            yield StoredEvent(
                event=event, received_at=start + n * dt.timedelta(seconds=1), key=None
            )


def peak_bytes(question: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        question()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_reference_keeps_pages_not_events():
    # 30 000 events held at once take some 30 MB; a page of them, a few kB.
    one_device = EventInventory(Stream(30_000, per_device=30_000))
    many_devices = EventInventory(Stream(30_000, per_device=1))
    query = ReportQuery(app_id=APP)

    assert len(one_device.timeline(APP, device(0), limit=10, offset=20)) == 10
    assert peak_bytes(lambda: one_device.timeline(APP, device(0), limit=10, offset=20)) < 500_000
    assert peak_bytes(lambda: one_device.device(APP, device(0))) < 500_000
    assert peak_bytes(lambda: one_device.failing_devices(query, "1.2.0", limit=10)) < 500_000
    assert [r.device_id for r in many_devices.list_devices(APP, limit=10)] == [
        device(n) for n in range(10)
    ]
    assert peak_bytes(lambda: many_devices.list_devices(APP, limit=10)) < 500_000
