"""The reports recounted plainly in Python, one event at a time, straight from the spec.

Nothing here imports the code under test's classifications: the rules are
spelled out again from section 4 of the protocol, so a mistake in either
place shows up as a difference.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable

from updater_stats import Action, StoredEvent
from updater_stats.reports import (
    ActiveDevices,
    DailyVersionCounts,
    DayCount,
    FunnelCounts,
    LatencyCounts,
    ReportQuery,
    RunningGroup,
    VersionCounts,
)

KNOWN = {action.value for action in Action}
# Not running: the target bundle's own actions, and the bundle rolled back from / uninstalled.
NOT_RUNNING = {
    "set_next", "delete", "checksum_required", "insufficient_disk_space", "set_fail",
    "unzip_fail", "decrypt_fail", "checksum_fail", "finish_download_fail", "manifest_path_fail",
    "windows_path_fail", "canonical_path_fail", "directory_path_fail", "low_mem_fail",
    "update_fail", "uninstall",
}  # fmt: skip
SEMVER = re.compile(r"[vV]?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?")
WEBVIEW_NOT_FAILURES = {"webview_dom_content_loaded", "webview_page_loaded"}
STARTS = {"download_0", "download_zip_start", "download_manifest_start", "download_10"}
LAUNCHES = {"app_moved_to_foreground", "app_launch_ready"}


def ms(moment: dt.datetime) -> int:
    return round(moment.timestamp() * 1000)


def event_time(stored: StoredEvent) -> int:
    """The device clock when present and within [received - 30 days, received + 5 minutes]."""
    received = ms(stored.received_at)
    device = stored.event.timestamp
    if device is not None and received - 30 * 86_400_000 <= device <= received + 5 * 60_000:
        return device
    return received


def version_of(name: str) -> str:
    return name.split(":", maxsplit=1)[0]


def semver(text: str | None) -> tuple | None:
    """(major, minor, patch, is release, pre-release parts), compared by semver precedence."""
    found = SEMVER.fullmatch(text or "")
    if not found or (found.group(4) is not None and "" in found.group(4).split(".")):
        return None
    major, minor, patch = (int(x) for x in found.groups()[:3])
    pre = found.group(4)
    if pre is None:
        return (major, minor, patch, 1, ())
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (major, minor, patch, 0, parts)


def newer(name: str) -> tuple:
    """Version order: non-versions (by code point) before versions (by precedence)."""
    parsed = semver(name.split(":", 1)[0])
    return (0, (), name) if parsed is None else (1, parsed, name)


def download_fail_counts(plugin_version: str | None) -> bool:
    """Plugins before 7.17.0 (6.x: 6.14.25) meant "no update"; unreadable ones are not counted."""
    version = semver(plugin_version)
    if version is None:
        return False
    first_fixed = (6, 14, 25, 1, ()) if version[0] == 6 else (7, 17, 0, 1, ())
    return version >= first_fixed


def is_failure(stored: StoredEvent) -> bool:
    action = stored.event.action
    if action not in KNOWN or action == "checksum_required":
        return False
    if action == "download_fail" and not download_fail_counts(stored.event.plugin_version):
        return False
    return (
        action.endswith("_fail")
        or action.startswith(("app_crash", "app_killed_"))
        or action in {"app_anr", "app_initialization_failure"}
        or (action.startswith("webview_") and action not in WEBVIEW_NOT_FAILURES)
    )


def is_running(action: str) -> bool:
    return action in KNOWN and not action.startswith("download_") and action not in NOT_RUNNING


def select(events: Iterable[StoredEvent], query: ReportQuery) -> list[tuple[int, StoredEvent]]:
    """The query's events with their event time."""
    out = []
    for stored in events:
        event = stored.event
        t = event_time(stored)
        channel = event.channel if event.channel is not None else event.default_channel
        if (
            event.app_id != query.app_id
            or (not query.all_devices and (not event.is_prod or event.is_emulator))
            or (query.platform is not None and event.platform != query.platform)
            or (query.channel is not None and channel != query.channel)
            or (query.since is not None and t < ms(query.since))
            or (query.until is not None and t >= ms(query.until))
        ):
            continue
        out.append((t, stored))
    return out


def versions(events: Iterable[StoredEvent], query: ReportQuery) -> list[VersionCounts]:
    devices: dict[str, set[str]] = defaultdict(set)
    failed: dict[str, set[str]] = defaultdict(set)
    installs: Counter[str] = Counter()
    failures: dict[str, Counter[str]] = defaultdict(Counter)
    rollbacks: dict[str, Counter[str]] = defaultdict(Counter)
    replaced: dict[str, Counter[str]] = defaultdict(Counter)
    for _, stored in select(events, query):
        event = stored.event
        version = version_of(event.version_name)
        old = version_of(event.old_version_name or "")
        devices[version].add(event.device_id)
        if event.action == "set":
            installs[version] += 1
            if old:
                replaced[old][version] += 1
        if is_failure(stored):
            failed[version].add(event.device_id)
            failures[version][event.action] += 1
        if event.action == "update_fail":
            rollbacks[version]["update_fail"] += 1
        if event.action == "reset" and (old or version) != "builtin":
            rollbacks[old or version]["reset"] += 1
    names = set(devices) | set(rollbacks) | set(replaced)
    return [
        VersionCounts(
            version=name,
            devices=len(devices[name]),
            installs=installs[name],
            failures=dict(failures[name]),
            failed_devices=len(failed[name]),
            rollbacks=dict(rollbacks[name]),
            replaced_by=dict(replaced[name]),
        )
        for name in sorted(names)
    ]


def funnel(events: Iterable[StoredEvent], query: ReportQuery) -> list[FunnelCounts]:
    reached: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for _, stored in select(events, query):
        event = stored.event
        step = (
            "started"
            if event.action in STARTS
            else "complete"
            if event.action == "download_complete"
            else "set"
            if event.action == "set"
            else "launched"
            if event.action in LAUNCHES
            else None
        )
        if step:
            reached[version_of(event.version_name)][step].add(event.device_id)
    out = []
    for version, steps in sorted(reached.items()):
        chain = steps["started"]
        if not chain:
            continue
        counts = [len(chain)]
        for step in ("complete", "set", "launched"):
            chain = chain & steps[step]
            counts.append(len(chain))
        out.append(
            FunnelCounts(
                version=version,
                download_started=counts[0],
                download_complete=counts[1],
                set=counts[2],
                launched=counts[3],
            )
        )
    return out


def running(events: Iterable[StoredEvent], query: ReportQuery) -> list[RunningGroup]:
    latest: dict[str, tuple] = {}
    for t, stored in select(events, query):
        event = stored.event
        if not is_running(event.action):
            continue
        key = (
            t,
            ms(stored.received_at),
            newer(version_of(event.version_name)),
            event.platform or "",
            event.version_os or "",
            event.plugin_version or "",
            event.version_build or "",
        )
        if event.device_id not in latest or key > latest[event.device_id]:
            latest[event.device_id] = key
    groups = Counter((key[2][2], *key[3:]) for key in latest.values())
    return sorted(
        (
            RunningGroup(
                version=v,
                platform=p,
                os_version=o,
                plugin_version=pl,
                native_version=n,
                devices=count,
            )
            for (v, p, o, pl, n), count in groups.items()
        ),
        key=lambda g: (g.version, g.platform, g.os_version, g.plugin_version, g.native_version),
    )


def active(events: Iterable[StoredEvent], query: ReportQuery) -> ActiveDevices:
    everyone: set[str] = set()
    per_day: dict[dt.date, set[str]] = defaultdict(set)
    for t, stored in select(events, query):
        everyone.add(stored.event.device_id)
        day = dt.datetime.fromtimestamp(t / 1000, tz=dt.timezone.utc).date()
        per_day[day].add(stored.event.device_id)
    return ActiveDevices(
        total=len(everyone),
        by_day=tuple(DayCount(day=d, devices=len(s)) for d, s in sorted(per_day.items())),
    )


def latency(events: Iterable[StoredEvent], query: ReportQuery) -> list[LatencyCounts]:
    started: dict[tuple[str, str], int] = {}
    completed: dict[tuple[str, str], int] = {}
    reported: dict[tuple[str, str], int] = {}
    for t, stored in select(events, query):
        event = stored.event
        pair = (version_of(event.version_name), event.device_id)
        if event.action in STARTS:
            started[pair] = min(t, started.get(pair, t))
        if event.action == "download_complete":
            completed[pair] = min(t, completed.get(pair, t))
            value = (event.metadata or {}).get("duration_ms")
            if value is not None and re.fullmatch(r"[0-9]{1,12}", value):
                reported[pair] = min(int(value), reported.get(pair, int(value)))
    samples: dict[str, list[int]] = defaultdict(list)
    for pair in set(started) | set(completed):
        if pair in reported:
            samples[pair[0]].append(reported[pair])
        elif pair in started and pair in completed and completed[pair] >= started[pair]:
            samples[pair[0]].append(completed[pair] - started[pair])
    out = []
    # Newest version first.
    for version, values in sorted(samples.items(), key=lambda item: newer(item[0]), reverse=True):
        values.sort()

        def pick(p: int, values: list[int] = values) -> int:
            return values[math.ceil(p * len(values) / 100) - 1]

        out.append(
            LatencyCounts(
                version=version,
                samples=len(values),
                p50_ms=pick(50),
                p90_ms=pick(90),
                p99_ms=pick(99),
            )
        )
    return out


def daily(events: Iterable[StoredEvent], query: ReportQuery) -> list[DailyVersionCounts]:
    installs: Counter[tuple[dt.date, str]] = Counter()
    failures: Counter[tuple[dt.date, str]] = Counter()
    runners: dict[tuple[dt.date, str], set[str]] = defaultdict(set)
    everyone: dict[tuple[dt.date, str], set[str]] = defaultdict(set)
    failed: dict[tuple[dt.date, str], set[str]] = defaultdict(set)
    seen: set[tuple[dt.date, str]] = set()
    for t, stored in select(events, query):
        event = stored.event
        key = (
            dt.datetime.fromtimestamp(t / 1000, tz=dt.timezone.utc).date(),
            version_of(event.version_name),
        )
        seen.add(key)
        installs[key] += event.action == "set"
        failures[key] += is_failure(stored)
        everyone[key].add(event.device_id)
        if is_failure(stored):
            failed[key].add(event.device_id)
        if is_running(event.action):
            runners[key].add(event.device_id)
    return [
        DailyVersionCounts(
            day=d,
            version=v,
            installs=installs[(d, v)],
            failures=failures[(d, v)],
            running_devices=len(runners[(d, v)]),
            devices=len(everyone[(d, v)]),
            failed_devices=len(failed[(d, v)]),
        )
        for d, v in sorted(seen, key=lambda key: (key[0], newer(key[1])))
    ]
