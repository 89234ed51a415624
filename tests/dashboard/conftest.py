"""One store per backend, holding a simulated rollout and events written to be hostile."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from scripts.sample_rollout import APP, rollout

from updater_stats import SQLiteBackend, StorageBackend, StoredEvent
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


BACKENDS = _backends()


@pytest.fixture(scope="module")
def events() -> list[StoredEvent]:
    return sample_events()


@pytest.fixture(scope="module", params=list(BACKENDS))
def store(
    request: pytest.FixtureRequest,
    events: list[StoredEvent],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[StorageBackend]:
    backend = BACKENDS[request.param](tmp_path_factory.mktemp(request.param))
    for n in range(0, len(events), 1000):
        backend.write(events[n : n + 1000])
    flush = getattr(backend, "flush", None)
    if flush is not None:
        flush()
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def dashboard(store: StorageBackend) -> Iterator[DashboardApp]:
    app = create_dashboard(store, token=TOKEN, clock=lambda: NOW)
    yield app
    app.close()
