"""The reports contract: every figure of every report, on a fixed data set, against the reference.

`ReportsContract` writes one fixed, varied data set through a backend's ``write()`` and
checks each report figure, under a dozen queries, against `EventReportSource` (the
reference implementation) over the same events in a `MemoryBackend`. A backend that pushes
the work down (`ReportSource`) and one that only reads (`SupportsEvents`) are held to the
same figures. Re-exported by `updater_stats.testing`.

The data set is built by arithmetic on device numbers, never drawn at random, so it is the
same on every run and every Python version: a failure seen once is seen again.
"""

# This module is test code, for pytest: plain `assert` is how its checks speak.
# ruff: noqa: S101

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import attrs
import pytest

from ._actions import FAILURE_ACTIONS
from ._epoch import ONE_MS, epoch_ms, from_epoch_ms
from ._models import StoredEvent, WriteResult
from ._wire import parse_event
from .backends import MemoryBackend, SupportsEvents
from .reports import EventReportSource, ReportQuery, Reports, reports_for

__all__ = ["ReportsContract"]

# -- the data set ------------------------------------------------------------------------------

APP = "com.example.reports"
OTHER_APP = "com.example.reports.other"
#: An app the data set has no event of.
SILENT_APP = "com.example.reports.silent"
#: A Monday, UTC: the data set's days are T0's and the next nine, plus a few late arrivals.
T0 = dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc)

#: The window query's bounds: `since` falls between two milliseconds, on purpose.
WINDOW_SINCE = T0 + dt.timedelta(days=2, hours=12, microseconds=500)
WINDOW_UNTIL = T0 + dt.timedelta(days=6, hours=6)

# Plugin versions: current ones, whose `download_fail` is a failure; old ones, by which it meant
# "no update" (a pre-release of the first fixed version among them); unreadable ones.
_PLUGINS = (
    "8.42.0",
    "7.50.1",
    "7.16.3",
    "6.14.30",
    "6.14.2",
    "7.17.0-beta.1",
    "dev-build",
    "7.17.0",
    "",
    None,
)
#: Old plugins: no device timestamp (so no key), no download start event.
_OLD_PLUGINS = frozenset({"7.16.3", "6.14.2", "7.17.0-beta.1"})
_OS = {"android": ("14", "15"), "ios": ("17.5", "18.1"), "electron": (None, "")}
_DURATIONS = (
    "1500",
    "007",
    "0",
    "abc",
    "",
    "12.5",
    "-5",
    "1234567890123",  # 13 digits: not believed
    "999999999999",  # 12 digits: believed
    "\uff11\uff12",  # digits, but not ASCII ones
    " 15",
    "15\n",
)
_NOISE = (
    "app_moved_to_background",
    "app_nav",
    "webview_page_loaded",
    "checksum_required",
    "set_next",
    "delete",
    "get",
    "noNew",
    "insufficient_disk_space",
    "uninstall",
    "future_unknown_action",
    "SET",  # not `set`: an unknown action
)
#: Every failure action, handed out to the devices in turn.
_FAILURES = tuple(sorted(action.value for action in FAILURE_ACTIONS))
_STARTS = ("download_0", "download_zip_start", "download_manifest_start")


def _device_id(n: int) -> str:
    return str(uuid.UUID(int=0x5EED << 64 | n))


@attrs.define
class _Device:
    """One device: what it sends with every event, and its own clock."""

    app_id: str
    device_id: str
    platform: str | None = "android"
    version_os: str | None = "14"
    plugin_version: str | None = "8.42.0"
    version_build: str | None = "2.0.0"
    is_prod: bool | None = True
    is_emulator: bool | None = False
    channel: str | None = None
    default_channel: str | None = "production"
    clock: dt.datetime = T0
    #: From sending to receipt, unless an event says otherwise.
    delay: dt.timedelta = dt.timedelta(0)

    @property
    def old(self) -> bool:
        return self.plugin_version in _OLD_PLUGINS

    def send(
        self,
        action: str,
        version: str,
        *,
        at: dt.datetime | None = None,
        received: dt.datetime | None = None,
        timestamp: int | str | None = "clock",
        **fields: Any,
    ) -> StoredEvent:
        """One event at *at* (default: the device's clock), received `delay` later unless told.

        *timestamp* is the device time sent: ``"clock"`` is *at* (none from old plugins).
        """
        at = self.clock if at is None else at
        if timestamp == "clock":
            timestamp = None if self.old else epoch_ms(at)
        wire = {
            "app_id": self.app_id,
            "device_id": self.device_id,
            "platform": self.platform,
            "action": action,
            "version_name": version,
            "version_build": self.version_build,
            "version_code": "200",
            "version_os": self.version_os,
            "plugin_version": self.plugin_version,
            "is_prod": self.is_prod,
            "is_emulator": self.is_emulator,
            "channel": self.channel,
            "defaultChannel": self.default_channel,
            "timestamp": timestamp,
            **fields,
        }
        event = parse_event({key: value for key, value in wire.items() if value is not None})
        return StoredEvent.from_event(event, at + self.delay if received is None else received)

    def next(self, action: str, version: str, minutes: int, **options: Any) -> StoredEvent:
        """`send`, *minutes* after the previous event of the device."""
        self.clock += dt.timedelta(minutes=minutes)
        return self.send(action, version, **options)


def _population(app_id: str, count: int, first: int) -> list[StoredEvent]:
    """*count* devices of *app_id*, each with a story picked by its number."""
    events: list[StoredEvent] = []
    for n in range(first, first + count):
        platform = ("android", "ios", "electron", "android", "ios", None)[n % 6]
        oses = _OS.get(platform or "", (None,))
        device = _Device(
            app_id=app_id,
            device_id=_device_id(n),
            platform=platform,
            version_os=oses[n % len(oses)],
            plugin_version=_PLUGINS[n % len(_PLUGINS)],
            version_build=("2.0.0", "2.1.0", None)[(n // 2) % 3],
            is_prod=None if n % 17 == 3 else n % 13 != 7,  # None: an old plugin sent none
            is_emulator=None if n % 17 == 3 else n % 11 == 5,
            channel=(None, "beta", None, "", "production")[n % 5],
            default_channel=("production", "beta", None)[(n // 3) % 3],
            clock=T0
            + dt.timedelta(days=n % 6, hours=(n * 7) % 24, minutes=(n * 13) % 60)
            + (n * 211 % 1000) * ONE_MS,
            delay=dt.timedelta(seconds=n * 37 % 181, milliseconds=n % 7),
        )
        events += _story(device, n)
    return events


def _story(device: _Device, n: int) -> list[StoredEvent]:
    """A device running a version, updating once or twice, failing, sometimes rolling back."""
    running = ("builtin", "1.9.0", "1.9.0", "v1.9.0")[n % 4]
    out = [device.next("app_moved_to_foreground", running, 0)]
    # A device whose events of its first update waited in its queue for two days.
    late = dt.timedelta(days=2) if n % 7 == 3 else dt.timedelta(0)
    targets = ["1.10.0" if n % 4 else "2.0.0-beta.2"]
    if n % 3 == 0:
        targets.append("2.0.0" if n % 2 else "2.0.0-beta.10")
    for step, target in enumerate(targets):
        step_late = late if step == 0 else dt.timedelta(0)
        running, events = _update(device, n + step, running, target, step_late)
        out += events
    out.append(device.next(_NOISE[n % len(_NOISE)], running, 31 + n % 50))
    failure = _FAILURES[n % len(_FAILURES)]
    out.append(device.next(failure, running if n % 2 else targets[-1], 7 + n % 20))
    if n % 5 == 2:
        out.append(device.next("reset", "builtin", 45, old_version_name=running))
    return out


#: Sends one event of an update: action, version, minutes after the previous one, fields.
_Send = Callable[..., None]


def _update(
    device: _Device, n: int, running: str, target: str, late: dt.timedelta
) -> tuple[str, list[StoredEvent]]:
    """One update to *target*; returns the version the device runs afterwards."""
    out: list[StoredEvent] = []

    def send(action: str, version: str, minutes: int, **fields: Any) -> None:
        event = device.next(action, version, minutes, **fields)
        out.append(attrs.evolve(event, received_at=event.received_at + late))

    # Outcome 4: downloaded, never installed.
    if _download(send, device, n, target) and n % 8 != 4:
        running = _install(send, n, running, target)
    return running, out


def _download(send: _Send, device: _Device, n: int, target: str) -> bool:
    """The download of *target*; whether it completed."""
    if not device.old:
        send(_STARTS[n % 3], target, 40 + n % 7)
    for percent in range(10, 100, 10 * (1 + n % 3)):
        send(f"download_{percent}", target, 1)
    outcome = n % 8
    if outcome == 1:
        # A manifest file failed: a per-file name, counted under the bundle.
        send("download_manifest_file_fail", f"{target}:assets/main.{n % 9}.js", 1)
        return False
    if outcome == 2:
        send("download_fail", target, 2)
        return False
    if outcome == 5:
        send("unzip_fail", target, 1)
        send("download_0", target, 30)  # tried again: a second start, the first one counts
    metadata = {"duration_ms": _DURATIONS[n % len(_DURATIONS)]} if n % 3 else None
    send("download_complete", target, 2 + n % 5, metadata=metadata)
    return True


def _install(send: _Send, n: int, running: str, target: str) -> str:
    """`set` *target*, then launch it, fail on it or leave it; what the device runs then."""
    send("set", target, 1, old_version_name=running)
    outcome = n % 8
    if outcome == 3:
        send("update_fail", target, 1, old_version_name=running)
        return running
    send(("app_launch_ready", "app_moved_to_foreground")[n % 2], target, 1)
    if outcome == 6:
        send("webview_javascript_error", target, 5)
        send("app_crash", target, 5)
        send("app_crash", target, 1, metadata={"exit_reason": "crash"})
    if outcome == 7:
        send("reset", "builtin", 20, old_version_name=target)
        return "builtin"
    return target


def _scenes() -> list[StoredEvent]:
    """Hand-made events, each for one rule: clocks, window edges, ties, rollbacks, names."""
    out: list[StoredEvent] = []
    n = iter(range(1000, 2000))

    def device(**options: Any) -> _Device:
        return _Device(app_id=APP, device_id=_device_id(next(n)), **options)

    # Device clocks: believed up to 30 days behind and 5 minutes ahead of the receive time.
    clock = device(platform="ios", version_os="18.1", channel="beta")
    received = T0 + dt.timedelta(days=2, hours=23, minutes=58)
    out += [
        clock.send("app_launch_ready", "1.9.0", at=received, timestamp=1000),  # 1970
        clock.send(
            "app_crash",
            "1.9.0",
            at=received,
            timestamp=epoch_ms(received + dt.timedelta(minutes=5)),
        ),  # 5 minutes ahead, believed: counted on the next day
        clock.send(
            "app_anr",
            "1.9.0",
            at=received,
            timestamp=epoch_ms(received + dt.timedelta(minutes=5)) + 1,
        ),  # a millisecond more: the receive time counts
    ]
    late = T0 + dt.timedelta(days=31, hours=3)
    out += [
        clock.send("set", "1.10.0", at=late, timestamp=epoch_ms(late - dt.timedelta(days=30))),
        clock.send(
            "app_crash", "1.10.0", at=late, timestamp=epoch_ms(late - dt.timedelta(days=30)) - 1
        ),
        clock.send(
            "app_moved_to_foreground",
            "1.10.0",
            at=T0 + dt.timedelta(days=40),
            timestamp=epoch_ms(T0 + dt.timedelta(days=1)),
        ),
    ]

    # The window's edges, at whole milliseconds around its bounds.
    edges = device(platform="android", channel="beta", plugin_version="7.17.0")
    since_ms = epoch_ms(WINDOW_SINCE) + 1  # the first millisecond at or after it
    until_ms = epoch_ms(WINDOW_UNTIL)
    for offset, version in [(0, "2.0.0"), (-1, "1.9.0")]:
        at = from_epoch_ms(since_ms + offset)
        out.append(edges.send("app_launch_ready", version, at=at))
    for offset, version in [(-1, "2.0.0"), (0, "1.9.0")]:
        at = from_epoch_ms(until_ms + offset)
        out.append(edges.send("app_crash", version, at=at))
    # Received four minutes before `since`, the device clock 30 s after it: in the window.
    out.append(
        edges.send(
            "download_fail",
            "2.0.0",
            at=WINDOW_SINCE - dt.timedelta(minutes=4),
            timestamp=epoch_ms(WINDOW_SINCE + dt.timedelta(seconds=30)),
        )
    )
    # Sent inside the window, received after it: in. Sent before it, received in it: out.
    queued = WINDOW_UNTIL - dt.timedelta(hours=1)
    out.append(
        edges.send(
            "set", "2.0.0", at=WINDOW_UNTIL + dt.timedelta(days=3), timestamp=epoch_ms(queued)
        )
    )
    early = WINDOW_SINCE - dt.timedelta(hours=12)
    out.append(
        edges.send(
            "unzip_fail", "2.0.0", at=early + dt.timedelta(days=1), timestamp=epoch_ms(early)
        )
    )

    # Ties: the same event time and receive time; the newest version, then the greatest text.
    tie_at = T0 + dt.timedelta(days=3, hours=9)
    versions = device(platform="android", version_os="15")
    out += [
        versions.send("app_launch_ready", "1.9.0", at=tie_at),
        versions.send("app_moved_to_foreground", "1.10.0", at=tie_at),
        versions.send("webview_page_loaded", "hotfix \U0001f680", at=tie_at),
    ]
    platforms = device(platform="android", version_os="15")
    out += [
        platforms.send("app_launch_ready", "2.0.0", at=tie_at),
        attrs.evolve(platforms, platform="ios").send("app_launch_ready", "v2.0.0", at=tie_at),
        attrs.evolve(platforms, platform="ios").send("app_nav", "2.0.0", at=tie_at),
    ]
    # The later receive time wins over a newer version at the same event time.
    receipt = device()
    out += [
        receipt.send("app_launch_ready", "2.0.0", at=tie_at, received=tie_at),
        receipt.send(
            "app_launch_ready",
            "1.9.0",
            at=tie_at,
            received=tie_at + dt.timedelta(seconds=3),
            timestamp=epoch_ms(tie_at),
        ),
    ]

    # Rollbacks and replacements, with every form of "the bundle left".
    left = device(platform="electron", version_os=None, channel="")
    at = T0 + dt.timedelta(days=4, hours=14)
    for minutes, (action, version, old) in enumerate(
        [
            ("reset", "builtin", "1.10.0"),
            ("reset", "builtin", None),  # on builtin already: no rollback
            ("reset", "1.9.0", ""),  # "" names no bundle: the version left is version_name
            ("reset", "builtin", "1.10.0:www/main.js"),  # a per-file name: 1.10.0
            ("reset", "builtin", "builtin"),  # never a rollback of builtin
            ("update_fail", "builtin", None),
            ("update_fail", "2.0.0-beta.2", "1.9.0"),
            ("set", "1.10.0", ""),  # "" names no bundle: replaces nothing
            ("set", "1.10.0", None),
            ("set", "2.0.0", "1.9.0:main.js"),
            ("set", "2.0.0", "0.9.0"),  # 0.9.0: named only as replaced, a row with 0 devices
            ("set", "2.0.0-\u03b2", "2.0.0-beta.10"),  # not a version: free text
        ]
    ):
        out.append(
            left.send(action, version, at=at + dt.timedelta(minutes=minutes), old_version_name=old)
        )

    # Download durations: each device's first start, first completion, smallest report.
    for index, durations in enumerate(
        [
            ["1500", "900"],  # the smallest reported duration
            ["abc"],  # not believed: completion minus start
            ["-5", "12"],
        ]
    ):
        timing = device(platform="ios", version_os="17.5")
        start = T0 + dt.timedelta(days=5, hours=index)
        out.append(timing.send("download_zip_start", "2.0.0", at=start))
        for minutes, duration in enumerate(durations, start=3):
            out.append(
                timing.send(
                    "download_complete",
                    "2.0.0",
                    at=start + dt.timedelta(minutes=minutes),
                    metadata={"duration_ms": duration},
                )
            )
    backwards = device(platform="ios", version_os="17.5")
    start = T0 + dt.timedelta(days=5, hours=6)
    out += [
        # Completed before it started (clocks): no sample.
        backwards.send("download_complete", "2.0.0", at=start),
        backwards.send("download_10", "2.0.0", at=start + dt.timedelta(minutes=2)),
        # Completed with no start but a duration of its own: a sample.
        backwards.send(
            "download_complete",
            "1.10.0",
            at=start + dt.timedelta(minutes=3),
            metadata={"duration_ms": "4321"},
        ),
        # Started, never completed: no sample.
        backwards.send("download_0", "2.0.0-beta.10", at=start + dt.timedelta(minutes=4)),
    ]

    # download_fail from every kind of plugin version: only readable, fixed ones count.
    plugins = (
        *("7.16.3", "7.17.0", "6.14.25", "6.14.24", "7.17.0-beta.1", "dev-build", "", None),
        *("8.42.0+build.7", "v7.17.0", "7.17"),
    )
    for index, plugin in enumerate(plugins):
        sender = device(plugin_version=plugin, platform="android")
        at = T0 + dt.timedelta(days=1, hours=index, minutes=7)
        out.append(sender.send("download_fail", "1.10.0", at=at, timestamp=epoch_ms(at)))

    # Names: composite, empty, free text, equal precedence.
    names = device(platform="ios", version_os="18.1", channel="beta")
    at = T0 + dt.timedelta(days=6, hours=2)
    for minutes, (action, version) in enumerate(
        [
            ("download_manifest_checksum_fail", "2.0.0:assets/x.js"),
            ("app_crash", "1.10.0:"),
            ("app_launch_ready", ":"),
            ("app_nav", ""),
            ("set", "v2.0.0"),
        ]
    ):
        out.append(names.send(action, version, at=at + dt.timedelta(minutes=minutes)))

    # Emulators and development builds: counted only with all_devices.
    for emulator, prod in [(True, True), (False, False), (True, False)]:
        test_device = device(is_emulator=emulator, is_prod=prod, platform="android")
        at = T0 + dt.timedelta(days=3, hours=4)
        out += [
            test_device.send("set", "2.0.0", at=at, old_version_name="1.10.0"),
            test_device.send("app_crash", "2.0.0", at=at + dt.timedelta(minutes=1)),
        ]
    return out


def _shared_device() -> list[StoredEvent]:
    """One device id in two apps: each app counts only its own events."""
    events = []
    for app_id in (APP, OTHER_APP):
        device = _Device(app_id=app_id, device_id=_device_id(7777), platform="android")
        at = T0 + dt.timedelta(days=2, hours=8)
        events += [
            device.send("set", "1.10.0", at=at, old_version_name="1.9.0"),
            device.send("app_crash", "1.10.0", at=at + dt.timedelta(minutes=2)),
        ]
    return events


@functools.cache
def _batches() -> tuple[tuple[StoredEvent, ...], ...]:
    """The data set as write batches, in order: re-sends and repeats included."""
    events = [
        *_population(APP, 40, 0),
        *_population(OTHER_APP, 9, 500),
        *_scenes(),
        *_shared_device(),
    ]
    events.sort(key=lambda stored: stored.received_at)
    batches = [events[start : start + 40] for start in range(0, len(events), 40)]
    sent: list[tuple[StoredEvent, ...]] = []
    for index, chunk in enumerate(batches):
        # Some bodies hold a retry of their own events.
        batch = [*chunk, chunk[0], chunk[3]] if index % 5 == 1 else chunk
        sent.append(tuple(batch))
        if index % 4 == 2:
            # The same batch re-sent: keyed events are duplicates; keyless ones, which
            # storage cannot tell apart, are stored again (each one a request of its own).
            sent.append(tuple(batch))
        if index % 6 == 0:
            # Re-sent a day later: the keys are known; keyless events count a day later.
            later = dt.timedelta(days=1)
            sent.append(tuple(attrs.evolve(e, received_at=e.received_at + later) for e in batch))
    return tuple(sent)


def _queries() -> dict[str, ReportQuery]:
    return {
        "everything": ReportQuery(app_id=APP),
        "window": ReportQuery(app_id=APP, since=WINDOW_SINCE, until=WINDOW_UNTIL),
        "since": ReportQuery(app_id=APP, since=T0 + dt.timedelta(days=4)),
        "until": ReportQuery(app_id=APP, until=T0 + dt.timedelta(days=3)),
        "all_devices": ReportQuery(app_id=APP, all_devices=True),
        "platform": ReportQuery(app_id=APP, platform="ios"),
        "channel": ReportQuery(app_id=APP, channel="beta"),
        "empty channel": ReportQuery(app_id=APP, channel=""),
        "all filters": ReportQuery(
            app_id=APP,
            since=T0 + dt.timedelta(days=1, hours=6),
            until=T0 + dt.timedelta(days=8),
            platform="android",
            channel="production",
            all_devices=True,
        ),
        "another app": ReportQuery(app_id=OTHER_APP, all_devices=True),
        "an app with no events": ReportQuery(app_id=SILENT_APP),
        "a window with no events": ReportQuery(
            app_id=APP, since=T0 + dt.timedelta(days=100), until=T0 + dt.timedelta(days=101)
        ),
    }


# -- comparing reports figure by figure ------------------------------------------------------


class _Marker:
    """A value no report holds, printed as a word."""

    def __init__(self, word: str) -> None:
        self._word = word

    def __repr__(self) -> str:
        return self._word


#: A figure one side does not have at all.
_NOTHING = _Marker("nothing")
#: The figure standing for a whole record of a list: present, or `_NOTHING`.
_ROW = _Marker("a row")
_KEY_FIELDS = ("day", "version", "name", "value")


def _show(value: object) -> str:
    if isinstance(value, str) and (value == "" or not value.isprintable()):
        return repr(value)
    return str(value)


def _key(record: object) -> str:
    """What tells one record of a list from the others: its day, version, step or value."""
    return " ".join(_show(getattr(record, name)) for name in _KEY_FIELDS if hasattr(record, name))


def _figures(value: object, path: str) -> dict[str, object]:
    """Every figure of a report as ``{path: value}``: records by field, lists by their key.

    A record of a list is a figure of its own (`_ROW`), and so is the list's order,
    ``path (order)``.
    """
    found: dict[str, object] = {}

    def walk(value: object, path: str) -> None:
        kind = type(value)
        if attrs.has(kind):
            for field in attrs.fields(kind):
                walk(getattr(value, field.name), f"{path}.{field.name}")
        elif isinstance(value, Mapping):
            for key, item in value.items():
                walk(item, f"{path}.{_show(key)}")
        elif isinstance(value, (list, tuple)) and all(attrs.has(type(v)) for v in value):
            keys = [_key(item) for item in value]
            found[f"{path} (order)"] = keys
            for key, item in zip(keys, value, strict=True):
                found[f"{path}[{key}]"] = _ROW
                walk(item, f"{path}[{key}]")
        else:
            found[path] = value

    walk(value, path)
    return found


def _differences(expected: Mapping[str, object], got: Mapping[str, object]) -> list[str]:
    """``"path: expected X, got Y"`` for every figure that differs, or is on one side only.

    A record missing on one side is one line, not one line per figure of it.
    """
    lines: list[str] = []
    missing: list[str] = []  # records on one side only: their figures go unsaid
    for path in [*expected, *(path for path in got if path not in expected)]:
        if any(path.startswith((row + ".", row + "[")) for row in missing):
            continue
        want, have = expected.get(path, _NOTHING), got.get(path, _NOTHING)
        if want == have and type(want) is type(have):
            continue
        if isinstance(want, list) and isinstance(have, list) and set(want) != set(have):
            continue  # an order, but of other records: each one missing has its own line
        if _ROW in (want, have):
            missing.append(path)
        lines.append(f"{path}: expected {want!r}, got {have!r}")
    return lines


#: Each report: its name in messages, and how to read it from a `Reports` for a query.
_REPORTS: dict[str, Callable[[Reports, ReportQuery], object]] = {
    "versions": Reports.versions,
    "funnel": Reports.funnel,
    "adoption": Reports.adoption,
    "active_devices": Reports.active_devices,
    "download_latency": Reports.download_latency,
    "daily": Reports.daily,
}


class ReportsContract:
    """Every report figure of a backend, checked against the reference implementation.

    Subclass it in a test module and provide a ``backend`` fixture yielding a fresh, empty
    backend (and closing it afterwards), as for `BackendContract`. Each test writes one
    fixed data set through ``backend.write()``: two apps (a third is queried, without
    events), versions in version order and not, per-file names, pre-releases and free
    text, every platform, channels, emulators and development builds, re-sent batches and
    repeats inside one, keyless events sent twice, events queued for days, device clocks
    far behind, ahead and in 1970, `download_fail` from old, current and unreadable plugin
    versions, a failure of every kind, rollbacks of every form and download durations good
    and bad. Then it
    compares every figure of one report, under every query of `queries`, with
    `EventReportSource` over the same batches in a `MemoryBackend`.

    The reports are those `reports_for` gives for the backend: the backend's own
    `ReportSource` when it has one, else the reference implementation over its
    ``events()``. Override `reports` to open them another way.

    A failure lists every figure that differs, by report, query and path, with the
    expected and the actual value:
    ``versions[1.10.0].failures.app_crash: expected 3, got 2 (query: window)``, then
    each query named in full.
    """

    #: The queries every report is checked under, by the name the messages use.
    queries: ClassVar[Mapping[str, ReportQuery]] = _queries()
    #: Differences listed in one failure message; the rest are counted.
    shown: ClassVar[int] = 40

    def batches(self) -> list[list[StoredEvent]]:
        """The data set, as the batches written, in order."""
        return [list(batch) for batch in _batches()]

    def reports(self, backend: Any) -> Reports:
        """The backend's reports: `reports_for` *backend*; override to open them otherwise."""
        return reports_for(backend)

    def store(self, backend: Any) -> list[WriteResult]:
        """Write the data set through ``backend.write()``, each result checked to add up."""
        results = []
        for batch in self.batches():
            result = backend.write(batch)
            assert isinstance(result, WriteResult), f"write returned {result!r}, not a WriteResult"
            assert result.inserted + result.duplicates == len(batch), (
                f"a write of {len(batch)} events returned {result!r}: inserted and duplicates "
                "must add up to the events written"
            )
            results.append(result)
        return results

    def expected(self) -> Reports:
        """The reference implementation over the data set in a `MemoryBackend`."""
        memory = MemoryBackend()
        for batch in self.batches():
            memory.write(batch)
        return Reports(EventReportSource(memory))

    def check(
        self, name: str, read: Callable[[Reports, ReportQuery], object], got: Reports
    ) -> None:
        """Compare one report under every query; fail listing every figure that differs."""
        expected = self.expected()
        lines: list[str] = []
        failing: dict[str, ReportQuery] = {}
        for query_name, query in self.queries.items():
            want = _figures(read(expected, query), name)
            have = _figures(read(got, query), name)
            found = _differences(want, have)
            if found:
                failing[query_name] = query
                lines += [f"{line} (query: {query_name})" for line in found]
        if lines:
            shown = lines[: self.shown]
            more = len(lines) - len(shown)
            count = "1 figure differs" if len(lines) == 1 else f"{len(lines)} figures differ"
            pytest.fail(
                "\n".join(
                    [
                        f"{count} in {name} from the reference implementation:",
                        *shown,
                        *([f"... and {more} more"] if more else []),
                        "where the queries are:",
                        *(f"{label}: {query!r}" for label, query in failing.items()),
                    ]
                ),
                pytrace=False,
            )

    def _check_report(self, backend: Any, name: str) -> None:
        self.store(backend)
        with self.reports(backend) as got:
            self.check(name, _REPORTS[name], got)

    def test_the_data_set_is_stored_once(self, backend: Any) -> None:
        expected = MemoryBackend()
        for index, (batch, result) in enumerate(
            zip(self.batches(), self.store(backend), strict=True)
        ):
            want = expected.write(batch)
            assert (result.inserted, result.duplicates) == (want.inserted, want.duplicates), (
                f"batch {index} of {len(batch)} events: expected {want.inserted} stored and "
                f"{want.duplicates} duplicates, got {result.inserted} and {result.duplicates}"
            )

    def test_versions(self, backend: Any) -> None:
        self._check_report(backend, "versions")

    def test_version(self, backend: Any) -> None:
        self.store(backend)
        expected = self.expected()

        def one_by_one(reports: Reports, query: ReportQuery) -> object:
            # Each call reads every version: the one with most devices, the last (the
            # fewest, often one named only as left or replaced) and one without events.
            names = [report.version for report in expected.versions(query)]
            return [reports.version(query, name) for name in [*names[:1], *names[-1:], "9.9.9"]]

        with self.reports(backend) as got:
            self.check("version", one_by_one, got)

    def test_funnel(self, backend: Any) -> None:
        self._check_report(backend, "funnel")

    def test_adoption(self, backend: Any) -> None:
        self._check_report(backend, "adoption")

    def test_active_devices(self, backend: Any) -> None:
        self._check_report(backend, "active_devices")

    def test_download_latency(self, backend: Any) -> None:
        self._check_report(backend, "download_latency")

    def test_daily(self, backend: Any) -> None:
        self._check_report(backend, "daily")

    def test_the_read_protocol_gives_the_same_figures(self, backend: Any) -> None:
        # A backend that pushes the reports down may not read; one that reads must read
        # back what gives the same figures, `since` bounds included.
        if not isinstance(backend, SupportsEvents):
            return
        self.store(backend)
        with Reports(EventReportSource(backend)) as got:
            for name, read in _REPORTS.items():
                self.check(name, read, got)
