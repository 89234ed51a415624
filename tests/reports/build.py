"""Small hand-made event sets for tests that check one rule at a time."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

from updater_stats import SQLiteBackend, StoredEvent, parse_event

APP = "com.example.app"
NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.timezone.utc)


def device(n: int) -> str:
    return str(uuid.UUID(int=n))


def event(
    action: str,
    version: str,
    *,
    dev: int = 1,
    received: dt.datetime = NOW - dt.timedelta(hours=1),
    ts: dt.datetime | str | None = "same",
    **fields: Any,
) -> StoredEvent:
    """One stored event; *ts* is the device clock ("same": equal to *received*, None: absent)."""
    timestamp = None
    if ts == "same":
        timestamp = int(received.timestamp() * 1000)
    elif isinstance(ts, dt.datetime):
        timestamp = int(ts.timestamp() * 1000)
    wire = {
        "app_id": APP,
        "device_id": device(dev),
        "platform": "android",
        "action": action,
        "version_name": version,
        "version_build": "2.0.0",
        "version_code": "200",
        "version_os": "14",
        "plugin_version": "8.42.0",
        "timestamp": timestamp,
        **fields,
    }
    return StoredEvent.from_event(parse_event(wire), received)


def database(tmp_path: Path, events: list[StoredEvent]) -> Path:
    path = tmp_path / "stats.sqlite3"
    backend = SQLiteBackend(path)
    backend.write(events)
    backend.close()
    return path


def release(
    healthy: int, failing: int, version: str = "1.2.0", *, now: dt.datetime = NOW
) -> list[StoredEvent]:
    """*healthy* devices that installed *version* and *failing* ones that also crashed on it."""
    events = []
    for n in range(healthy + failing):
        at = now - dt.timedelta(hours=2, seconds=n)
        events.append(event("set", version, dev=n + 1, received=at, old_version_name="1.1.0"))
        if n >= healthy:
            events.append(
                event("app_crash", version, dev=n + 1, received=at + dt.timedelta(seconds=1))
            )
    return events
