"""Realistic request bodies and the figures every benchmark prints.

Current plugins (8.42+) queue events on the device and flush them as a JSON
array of up to 200, all from one device, each with its own ``timestamp``;
old plugins (and the Android download worker) send one object per request
without a timestamp. The bodies here follow that shape, field for field.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

APP_ID = "com.example.app"
# What a device's queue holds between two flushes: lifecycle, download steps, a set.
_BATCH_ACTIONS = (
    "app_moved_to_foreground",
    "app_launch_start",
    "app_launch_ready",
    "webview_dom_content_loaded",
    "webview_page_loaded",
    "download_manifest_start",
    "download_10",
    "download_30",
    "download_50",
    "download_70",
    "download_90",
    "download_complete",
    "set",
    "app_nav",
    "app_moved_to_background",
)
_SINGLE_ACTIONS = ("set", "get", "download_fail", "download_zip_start", "app_moved_to_foreground")


def device_fields(rng: random.Random, device_id: str, *, current: bool) -> dict[str, Any]:
    """The fields every event of one device repeats."""
    android = rng.random() < 0.7
    fields: dict[str, Any] = {
        "app_id": APP_ID,
        "device_id": device_id,
        "platform": "android" if android else "ios",
        "version_name": rng.choice(("1.4.1", "1.4.2", "1.5.0")),
        "old_version_name": "",
        "version_build": "2.0.0",
        "version_code": "200",
        "version_os": "14" if android else "17.5",
        "plugin_version": "8.42.0" if current else "6.14.3",
        "custom_id": "",
        "is_prod": True,
        "is_emulator": False,
    }
    if current:
        fields["install_source"] = "google_play" if android else "app_store"
        fields["defaultChannel"] = "production"
    return fields


def batch_events(rng: random.Random, size: int, *, device_id: str | None = None) -> list[Any]:
    """One device's queued events, oldest first, as a current plugin flushes them."""
    device = device_id or str(uuid.UUID(int=rng.getrandbits(128), version=4))
    common = device_fields(rng, device, current=True)
    start = 1_790_000_000_000 + rng.randrange(10**9)
    events = []
    for index in range(size):
        action = _BATCH_ACTIONS[index % len(_BATCH_ACTIONS)]
        event = {**common, "action": action, "timestamp": start + index * 37}
        if action == "set":
            event["old_version_name"] = "1.4.1"
        if action in {"app_launch_ready", "download_complete", "webview_page_loaded"}:
            event["metadata"] = {"duration_ms": str(rng.randrange(50, 4000))}
        events.append(event)
    return events


def batch_template(
    rng: random.Random, size: int, *, device_marker: str, time_marker: str
) -> tuple[str, list[int]]:
    """A body of *size* events of one device, for a load generator to fill in per request.

    *device_marker* stands for the end of the device id (every request a new device) and
    each ``"<time_marker>"`` (quotes included) for a timestamp: the request's start plus the
    offset listed for it, in order. Filled in so, no two events of a run are alike, as from
    real devices.
    """
    events = batch_events(rng, size, device_id=DEVICE_PREFIX + device_marker)
    first = events[0]["timestamp"]
    offsets = [event["timestamp"] - first for event in events]
    for event in events:
        event["timestamp"] = time_marker
    return encode(events).decode().replace(f'"{time_marker}"', time_marker), offsets


#: Device ids in templates: this, then twelve hex digits every request replaces.
DEVICE_PREFIX = "0b5e5c1a-93b4-4f0e-a3a2-"


def single_event(rng: random.Random) -> dict[str, Any]:
    """One event as an old plugin sends it: a bare object, no timestamp."""
    device = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    return {**device_fields(rng, device, current=False), "action": rng.choice(_SINGLE_ACTIONS)}


def encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def batch_bodies(count: int, size: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    return [encode(batch_events(rng, size)) for _ in range(count)]


def single_bodies(count: int, seed: int = 2) -> list[bytes]:
    rng = random.Random(seed)
    return [encode(single_event(rng)) for _ in range(count)]


def handle_from_threads(collector: Any, bodies: Sequence[bytes], threads: int) -> float:
    """Seconds for *threads* callers of `collector.handle()` to store every body between them."""
    failures: list[BaseException] = []

    def call(share: Sequence[bytes]) -> None:
        try:
            for body in share:
                collector.handle(body)
        except BaseException as exc:  # noqa: BLE001 - reported below, after the join
            failures.append(exc)

    workers = [
        threading.Thread(target=call, args=(bodies[index::threads],)) for index in range(threads)
    ]
    began = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    took = time.perf_counter() - began
    if failures:
        raise failures[0]
    return took


def rate(count: float, seconds: float) -> str:
    """``123 456/s``: thousands separated by a space, as the docs print them."""
    return f"{count / seconds:,.0f}/s".replace(",", " ")


def ratio(part: float, whole: float) -> float | None:
    """*part* / *whole*, or `None` when *whole* is zero: a side that answered nothing in a
    run (an overloaded machine) makes the ratio unknown, not the script crash."""
    return part / whole if whole else None


def _shown(value: float | None, *, times: bool) -> str:
    if value is None:
        return "n/a"
    return f"{value:.1f}x" if times else f"{value:.0%}"


def info_line(name: str, value: float | None, *, times: bool = False) -> str:
    """A ratio the issue sets no target for, in the same shape as `ratio_line`."""
    return f"ratio  {name:<50} {_shown(value, times=times):>8}"


def ratio_line(name: str, value: float | None, target: float, *, times: bool = False) -> str:
    """One ratio, its target and whether this run met it, in one greppable line (an unknown
    ratio, `None`, is not met)."""
    wanted = f"{target:g}x" if times else f"{target:.0%}"
    verdict = "met" if value is not None and value >= target else "MISSED"
    return f"ratio  {name:<50} {_shown(value, times=times):>8}  target >= {wanted:<6} {verdict}"
