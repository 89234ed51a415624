"""One store per backend (SQLite, PostgreSQL, ClickHouse, and memory, whose inventory is
computed in Python), holding a simulated rollout and events written to be hostile."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import attrs
import pytest
from scripts.sample_rollout import APP, rollout

from updater_stats import MemoryBackend, SQLiteBackend, StorageBackend, StoredEvent
from updater_stats.backends.sqlite import SQLiteReports
from updater_stats.dashboard import DashboardApp, create_dashboard

from ..reports.build import event
from .helpers import NOW, TOKEN

START = dt.datetime(2026, 11, 10, tzinfo=dt.timezone.utc)
#: What devices wrote to attack whoever reads the dashboard.
HOSTILE = ["<script>alert(1)</script>", "\u202eevil\u202c", "nul\x00byte", '"><img src=x>']


def hostile_events() -> list[StoredEvent]:
    at = NOW - dt.timedelta(hours=3)
    events = []
    for n, text in enumerate(HOSTILE):
        fields = {
            "app_id": APP,
            "custom_id": text,
            "channel": text,
            "metadata": {"message": text, text: "key"},
        }
        moment = at + dt.timedelta(minutes=n)
        stored = event("app_crash", text, dev=7000 + n, received=moment, **fields)
        events.append(stored)
        named = event("set", text, dev=7000 + n, received=moment, **fields)
        events.append(named)
    events.append(
        event(
            "app_crash",
            "1.2.0",
            dev=7100,
            received=at,
            app_id=APP,
            metadata={"message": HOSTILE[0]},
        )
    )
    return events


#: A device with 121 events: on 1.2.0, then 1.2.1, then downloading 1.3.0 (not running it).
BUSY_DEVICE = 8000


def busy_events() -> list[StoredEvent]:
    at = NOW - dt.timedelta(days=6)
    events = []
    for n in range(120):
        version = "1.2.0" if n < 60 else "1.2.1"
        action = "set" if n == 60 else "app_moved_to_foreground"
        moment = at + dt.timedelta(hours=n)
        events.append(event(action, version, dev=BUSY_DEVICE, received=moment, app_id=APP))
    last = at + dt.timedelta(hours=121)
    events.append(event("download_0", "1.3.0", dev=BUSY_DEVICE, received=last, app_id=APP))
    return events


def sample_events() -> list[StoredEvent]:
    events = list(rollout(400, start=START, days=14, seed=3)) + hostile_events() + busy_events()
    return sorted(events, key=lambda stored: stored.received_at)


#: The other apps of `inventory_events`, in code point order after APP.
OTHER_APPS = ("com.example.app.beta", "com.example.other")
#: A device whose events share receive times: with a device time, without, and an earlier one.
SAME_MOMENT_DEVICE = 9080


def varied_events() -> list[StoredEvent]:
    """Events that take each inventory rule to its edge, devices 9000 and up."""
    at = NOW - dt.timedelta(days=2)
    later = dt.timedelta(minutes=1)
    crash = "app_crash"
    events = [
        # Other apps.
        event("set", "2.0.0", dev=9001, received=at, app_id=OTHER_APPS[1]),
        event(crash, "2.0.0", dev=9001, received=at + later, app_id=OTHER_APPS[1]),
        event("set", "0.1.0", dev=9002, received=at, app_id=OTHER_APPS[0]),
        # download_fail counts only from a readable plugin version at or after 7.17.0.
        event("download_fail", "1.2.0", dev=9010, received=at, plugin_version="7.12.0"),
        event("download_fail", "1.2.0", dev=9011, received=at, plugin_version="8.42.0"),
        event("download_fail", "1.2.0", dev=9012, received=at, plugin_version="dev-build"),
        event("download_fail", "1.2.0", dev=9013, received=at, plugin_version=None),
        # Development builds and emulators count only for all_devices.
        event(crash, "1.2.0", dev=9020, received=at, is_prod=False),
        event(crash, "1.2.0", dev=9021, received=at, is_emulator=True),
        # channel, else defaultChannel ("" is a channel).
        event(crash, "1.2.0", dev=9030, received=at, channel="beta"),
        event(crash, "1.2.0", dev=9031, received=at, defaultChannel="beta"),
        event(crash, "1.2.0", dev=9032, received=at, channel="", defaultChannel="beta"),
        # Device clocks: ahead and far behind are not believed; ten days behind is, and moves
        # the event out of a seven-day window; one past 64-bit datetimes has no device time.
        event(crash, "1.2.0", dev=9040, received=at, ts=at + dt.timedelta(hours=2)),
        event(crash, "1.2.0", dev=9041, received=at, ts=at - dt.timedelta(days=40)),
        event(crash, "1.2.0", dev=9042, received=at, ts=at - dt.timedelta(days=10)),
        event(crash, "1.2.0", dev=9043, received=at, timestamp=2**62),
        # Received after the window, sent inside it: counted in it.
        event(crash, "1.2.0", dev=9044, received=NOW + dt.timedelta(days=1), ts=NOW),
        # A composite name counts under its version.
        event(crash, "1.2.0:main.js", dev=9050, received=at),
        # metadata empty and absent alike.
        event("app_moved_to_foreground", "1.2.1", dev=9060, received=at, metadata={}),
        event("app_moved_to_foreground", "1.2.1", dev=9060, received=at + later),
        # custom_id: empty, shared by two devices, changed over time.
        event("set", "1.2.1", dev=9070, received=at, custom_id=""),
        event("set", "1.2.1", dev=9071, received=at, custom_id="user-42"),
        event("set", "1.2.1", dev=9072, received=at, custom_id="user-42"),
        event("set", "1.2.0", dev=9073, received=at, custom_id="old-id"),
        event("set", "1.2.1", dev=9073, received=at + later, custom_id="new-id"),
        # Same latest failure time: by device_id.
        event(crash, "1.2.0", dev=9091, received=at),
        event(crash, "1.2.0", dev=9090, received=at),
        # An unknown action runs no version; a device that never ran one has no bundle.
        event("set", "1.2.0", dev=9100, received=at),
        event("some_new_action", "9.9.9", dev=9100, received=at + later),
        event("download_0", "1.2.1", dev=9110, received=at),
        # No platform: left out of a platform's window.
        event(crash, "1.2.0", dev=9120, received=at, platform=None),
        # Failures before every window but the unbounded one.
        event(crash, "1.2.0", dev=9130, received=START - dt.timedelta(days=40)),
    ]
    # An app_id "" (a policy without reverse-domain ids lets it in) is no app to list.
    nameless = event("set", "1.0.0", dev=9140, received=at)
    events.append(attrs.evolve(nameless, event=attrs.evolve(nameless.event, app_id="")))
    moment = at + dt.timedelta(hours=1)
    same = SAME_MOMENT_DEVICE
    events += [
        event("app_moved_to_foreground", "1.2.0", dev=same, received=moment - later),
        event("set", "1.2.1", dev=same, received=moment, ts=None),
        event("app_crash", "1.2.1", dev=same, received=moment, ts=moment - later),
        event("app_launch_ready", "1.2.1", dev=same, received=moment),
        event("app_moved_to_background", "1.2.1", dev=same, received=moment + later, ts=None),
    ]
    return events


def inventory_events() -> list[StoredEvent]:
    """One varied data set: the sample rollout and its hostile and busy devices, and
    `varied_events`."""
    return sorted(sample_events() + varied_events(), key=lambda stored: stored.received_at)


def _backends() -> dict[str, Callable[[Path], StorageBackend]]:
    def postgres(_tmp: Path) -> StorageBackend:
        from ..backends.servers import postgres_backend  # noqa: PLC0415

        return postgres_backend()

    def clickhouse(_tmp: Path) -> StorageBackend:
        from ..backends.servers import clickhouse_backend  # noqa: PLC0415

        return clickhouse_backend()

    return {
        "sqlite": lambda tmp: SQLiteBackend(tmp / "stats.sqlite3"),
        "postgres": postgres,
        "clickhouse": clickhouse,
    }


#: The SQL backends, each with its own read side and inventory.
BACKENDS = _backends()
#: Every store the pages are tested on: the SQL backends, and one computed in Python.
STORES: dict[str, Callable[[Path], StorageBackend]] = {
    **BACKENDS,
    "memory": lambda _tmp: MemoryBackend(),
}


def fill(backend: StorageBackend, events: list[StoredEvent]) -> None:
    for n in range(0, len(events), 1000):
        backend.write(events[n : n + 1000])
    flush = getattr(backend, "flush", None)
    if flush is not None:
        flush()


@pytest.fixture(scope="module")
def events() -> list[StoredEvent]:
    return sample_events()


@pytest.fixture(scope="module", params=list(STORES))
def store(
    request: pytest.FixtureRequest,
    events: list[StoredEvent],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[StorageBackend]:
    backend = STORES[request.param](tmp_path_factory.mktemp(request.param))
    fill(backend, events)
    if isinstance(backend, SQLiteBackend):
        # The dashboard reads SQLite's day summaries: brought up to date before the first
        # page, so that every page reads them (a thread would, a moment later).
        with closing(SQLiteReports(backend.path, summaries=True)) as reports:
            while not reports.summaries_ready():
                time.sleep(0.05)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def dashboard(store: StorageBackend) -> Iterator[DashboardApp]:
    app = create_dashboard(store, token=TOKEN, clock=lambda: NOW)
    yield app
    app.close()
