"""A simulated rollout, for the docs' chart and the benchmark: plausible, seeded, any size.

Devices start on 1.0.0. Releases go out on set days; each day a device is
active with some probability, sends a foreground event on the bundle it
runs, and picks up the newest release with some probability (download
start, progress, complete, `set`, launch). 1.2.0 is a bad release: its
devices crash and roll back far more often, until 1.2.1 replaces it.
"""

# ruff: noqa: S311 - a seeded simulation, not cryptography.

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Iterator

from updater_stats import AppInfos, StoredEvent

APP = "com.example.app"
#: Version -> (release day, crash chance per active day, rollback chance at install).
RELEASES = {
    "1.0.0": (0, 0.004, 0.0),
    "1.1.0": (2, 0.004, 0.01),
    "1.2.0": (6, 0.06, 0.08),
    "1.2.1": (9, 0.003, 0.01),
}
PLATFORMS = {"android": ["13", "14", "15"], "ios": ["17.5", "18.1"]}
PLUGINS = ["8.42.0", "8.40.1", "7.50.1", "7.12.0"]


def _event(
    rng: random.Random,
    device: dict[str, object],
    action: str,
    version: str,
    at: dt.datetime,
    **fields: object,
) -> StoredEvent:
    old_plugin = device["plugin"] == "7.12.0"
    event = AppInfos(
        app_id=APP,
        device_id=str(device["id"]),
        platform=str(device["platform"]),
        action=action,
        version_name=version,
        version_build="3.0.0",
        version_code="300",
        version_os=str(device["os"]),
        plugin_version=str(device["plugin"]),
        is_emulator=bool(device["emulator"]),
        timestamp=None if old_plugin else int(at.timestamp() * 1000),
        **fields,  # type: ignore[arg-type]
    )
    # Queued events reach the server a little later; a few arrive hours late.
    delay = dt.timedelta(seconds=rng.expovariate(1 / 20))
    return StoredEvent.from_event(event, at + delay)


def _update(
    rng: random.Random, device: dict[str, object], target: str, at: dt.datetime
) -> Iterator[StoredEvent]:
    start = "download_10" if device["plugin"] == "7.12.0" else "download_0"
    yield _event(rng, device, start, target, at)
    took = dt.timedelta(milliseconds=int(rng.lognormvariate(8.3, 0.6)))
    yield _event(rng, device, "download_50", target, at + took / 2)
    metadata = {"duration_ms": str(took // dt.timedelta(milliseconds=1))}
    yield _event(rng, device, "download_complete", target, at + took, metadata=metadata)
    installed = at + took + dt.timedelta(seconds=rng.randrange(5, 3600))
    previous = str(device["running"])
    yield _event(rng, device, "set", target, installed, old_version_name=previous)
    if rng.random() < RELEASES[target][2]:
        yield _event(rng, device, "update_fail", target, installed + dt.timedelta(seconds=10))
        return
    device["running"] = target
    yield _event(rng, device, "app_launch_ready", target, installed + dt.timedelta(seconds=2))


def rollout(
    devices: int, *, days: int = 14, start: dt.datetime, seed: int = 0
) -> Iterator[StoredEvent]:
    """Every event of the simulation, device by device."""
    rng = random.Random(seed)
    for _ in range(devices):
        platform = rng.choice(list(PLATFORMS))
        device: dict[str, object] = {
            "id": uuid.UUID(int=rng.getrandbits(128)),
            "platform": platform,
            "os": rng.choice(PLATFORMS[platform]),
            "plugin": rng.choice(PLUGINS),
            "emulator": rng.random() < 0.03,
            "running": "1.0.0",
        }
        for day in range(days):
            if rng.random() > 0.7:
                continue
            at = start + dt.timedelta(days=day, seconds=rng.randrange(0, 80_000))
            running = str(device["running"])
            yield _event(rng, device, "app_moved_to_foreground", running, at)
            if rng.random() < RELEASES[running][1]:
                crash = rng.choice(["app_crash", "webview_javascript_error", "app_anr"])
                yield _event(rng, device, crash, running, at + dt.timedelta(seconds=30))
            newest = max(
                (v for v, (released, _, _) in RELEASES.items() if released <= day),
                key=lambda v: RELEASES[v][0],
            )
            if newest != running and rng.random() < 0.35:
                yield from _update(rng, device, newest, at + dt.timedelta(seconds=60))
