"""Seeded event sets shaped like real traffic, and what storage keeps of them.

Device stories: running a version, downloading another (current plugins send
`download_0`, old ones start at `download_10`), installing it, launching it,
failing in every way, rolling back. On top: re-sent batches (same keys),
genuine repeats of unkeyed events, late and clock-skewed events, emulators,
development builds, composite "version:file" names, unknown actions, and a
second app whose events must never leak into the first app's reports.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Sequence

from updater_stats import AppInfos, StorageBackend, StoredEvent

APP = "com.example.app"
OTHER_APP = "com.other.app"
T0 = dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc)
VERSIONS = ["1.0.0", "1.9.0", "1.10.0"]
PLUGINS = {
    "8.42.0": "current",
    "7.50.1": "current",
    "7.16.3": "old",  # download_fail meant "no update"; no download_0
    "6.14.30": "current",
    "6.14.2": "old",
    "6.x-beta": "current",  # not a version: its download_fail is not counted
    "7.17.0-beta.1": "old",  # a pre-release is older than 7.17.0: "no update"
}
FAILURES = [
    "set_fail",
    "unzip_fail",
    "app_crash",
    "app_anr",
    "webview_javascript_error",
    "decrypt_fail",
    "app_killed_low_memory",
]
NOISE = [
    "app_moved_to_background",
    "app_nav",
    "webview_page_loaded",
    "checksum_required",
    "set_next",
    "delete",
    "get",
    "future_unknown_action",
    "noNew",
    "insufficient_disk_space",
]
DURATIONS = ["1500", "007", "0", "abc", "", "12.5", "-5", "1234567890123", "999999999999"]


class _Device:
    def __init__(self, rng: random.Random, app_id: str) -> None:
        self.rng = rng
        self.app_id = app_id
        self.device_id = str(uuid.UUID(int=rng.getrandbits(128)))
        self.platform = rng.choice(["android", "ios", "electron"])
        self.os = rng.choice(["14", "15", "17.5", "18.1"])
        self.plugin = rng.choice(list(PLUGINS))
        self.old = PLUGINS[self.plugin] == "old"
        self.native = rng.choice(["2.0.0", "2.1.0"])
        self.is_prod = rng.random() > 0.1
        self.is_emulator = rng.random() < 0.1
        self.channel = rng.choice([None, None, "beta", ""])
        self.default_channel = rng.choice([None, "production", "beta"])
        self.running = rng.choice(["builtin", *VERSIONS[:2]])
        self.clock = T0 + dt.timedelta(minutes=rng.randrange(0, 60 * 24 * 3))

    def event(self, action: str, version: str, **fields: object) -> tuple[AppInfos, dt.datetime]:
        rng = self.rng
        self.clock += dt.timedelta(seconds=rng.randrange(1, 6 * 3600))
        skew = rng.random()
        timestamp: int | None = int(self.clock.timestamp() * 1000)
        received = self.clock + dt.timedelta(seconds=rng.randrange(0, 120))
        if skew < 0.05:
            received = self.clock + dt.timedelta(days=rng.choice([2, 29, 31, 45]))  # late
        elif skew < 0.10:
            received = self.clock - dt.timedelta(minutes=rng.choice([1, 4, 6, 120]))  # fast clock
        if self.old or rng.random() < 0.08:
            timestamp = None  # old plugins and single-object worker events carry no timestamp
        extra: dict[str, object] = {}
        if rng.random() > 0.05:  # very old plugins omit is_prod / is_emulator
            extra = {"is_prod": self.is_prod, "is_emulator": self.is_emulator}
        event = AppInfos(
            app_id=self.app_id,
            device_id=self.device_id,
            platform=self.platform,
            action=action,
            version_name=version,
            version_build=self.native,
            version_code="200",
            version_os=self.os,
            plugin_version=self.plugin,
            channel=self.channel,
            default_channel=self.default_channel,
            timestamp=timestamp,
            **extra,  # type: ignore[arg-type]
            **fields,  # type: ignore[arg-type]
        )
        return event, received

    def story(self) -> list[tuple[AppInfos, dt.datetime]]:
        rng = self.rng
        out = [self.event("app_moved_to_foreground", self.running)]
        for _ in range(rng.randrange(1, 4)):
            target = rng.choice(VERSIONS)
            out += self._update(target)
            for _ in range(rng.randrange(0, 3)):
                out.append(self.event(rng.choice(NOISE), rng.choice([self.running, target])))
        if rng.random() < 0.3:
            out.append(self.event("reset", "builtin", old_version_name=self.running))
            self.running = "builtin"
        return out

    def _update(self, target: str) -> list[tuple[AppInfos, dt.datetime]]:
        rng = self.rng
        out = []
        if rng.random() < 0.15:
            out.append(self.event("download_fail", target))  # "no update" on old plugins
            return out
        if not self.old:
            out.append(
                self.event(
                    rng.choice(["download_0", "download_zip_start", "download_manifest_start"]),
                    target,
                )
            )
        step = 10 * rng.randrange(1, 4)
        out.extend(self.event(f"download_{percent}", target) for percent in range(10, 100, step))
        if rng.random() < 0.15:
            action = rng.choice(["download_manifest_file_fail", "download_manifest_checksum_fail"])
            out.append(self.event(action, f"{target}:assets/main.{rng.randrange(9)}.js"))
            return out
        if rng.random() < 0.1:
            out.append(self.event("download_fail", target))
            return out
        metadata = {"duration_ms": rng.choice(DURATIONS)} if rng.random() < 0.4 else None
        out.append(self.event("download_complete", target, metadata=metadata))
        if rng.random() < 0.1:
            return out  # downloaded, never installed
        out.append(self.event("set", target, old_version_name=self.running))
        previous, self.running = self.running, target
        if rng.random() < 0.12:
            out.append(self.event("update_fail", target, old_version_name=previous))
            self.running = previous
            return out
        out.append(self.event(rng.choice(["app_launch_ready", "app_moved_to_foreground"]), target))
        crashes = sum(rng.random() < 0.35 for _ in range(rng.randrange(0, 3)))
        out.extend(self.event(rng.choice(FAILURES), target) for _ in range(crashes))
        return out


def generate(seed: int, devices: int = 60) -> list[StoredEvent]:
    """What devices send, in arrival order, re-sends and repeats included."""
    rng = random.Random(seed)
    sent: list[tuple[AppInfos, dt.datetime]] = []
    for index in range(devices):
        sent += _Device(rng, OTHER_APP if index % 7 == 6 else APP).story()
    arrivals: list[tuple[AppInfos, dt.datetime]] = []
    for event, received in sent:
        arrivals.append((event, received))
        if rng.random() < 0.15:
            # A re-sent batch (keyed events: one copy kept) or, without a key, a genuine
            # second send that storage cannot tell apart and keeps.
            arrivals.append((event, received + dt.timedelta(seconds=rng.randrange(1, 86400))))
    arrivals.sort(key=lambda pair: pair[1])
    return [StoredEvent.from_event(event, received) for event, received in arrivals]


def kept(arrivals: Sequence[StoredEvent]) -> list[StoredEvent]:
    """What storage keeps: the first arrival of each key, and every event without one."""
    seen: set[str] = set()
    out = []
    for stored in arrivals:
        if stored.key is not None:
            if stored.key in seen:
                continue
            seen.add(stored.key)
        out.append(stored)
    return out


def store(backend: StorageBackend, arrivals: Sequence[StoredEvent]) -> None:
    backend.write(arrivals)
