"""Every report figure, recounted from the raw events by the rules docs/reports.md states.

The recount below reads nothing of the library's report code: the action classes come
from the table in docs/protocol.md, and every other rule is written here from the text of
docs/reports.md. A seeded, varied data set (several apps; versions such as ``3.9.0`` and
``3.10.0``, pre-releases, ``builtin``, per-file names and free text; absent fields; plugin
versions old, new, pre-release and unreadable; re-sends, late and implausible clocks; ties)
is stored through each backend, and each backend's reports must equal the recount.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import math
import random
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from updater_stats import MemoryBackend, SQLiteBackend, StorageBackend, StoredEvent, parse_event
from updater_stats.cli import cli
from updater_stats.reports import (
    HealthPolicy,
    ReportQuery,
    Reports,
    Verdict,
    release_health,
    reports_for,
    summarize,
)

from ..backends.servers import clickhouse_backend, postgres_backend

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.timezone.utc)
DAY_MS = 86_400_000
AHEAD_MS = 5 * 60 * 1000
BEHIND_MS = 30 * DAY_MS
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)

# --- the rules, from the docs -----------------------------------------------------------


def _action_table() -> dict[str, set[str]]:
    """docs/protocol.md's action table: each action's classes."""
    classes: dict[str, set[str]] = {}
    for line in (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`") and cells[1].startswith("`"):
            classes[cells[0].strip("`")] = {c.strip() for c in cells[2].split(",") if c.strip()}
    return classes


ACTIONS = _action_table()
FAILURE = {a for a, c in ACTIONS.items() if "failure" in c}
RUNNING = {a for a, c in ACTIONS.items() if "running" in c}
TARGET = {a for a, c in ACTIONS.items() if "target" in c}
STARTS = {"download_0", "download_zip_start", "download_manifest_start", "download_10"}
LAUNCHES = {"app_moved_to_foreground", "app_launch_ready"}

# "MAJOR.MINOR.PATCH in ASCII digits, optionally led by v or V and followed by -pre-release
# and +build": the same for bundle names and plugin versions.
VERSION = re.compile(
    r"[vV]?([0-9]+)\.([0-9]+)\.([0-9]+)"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)


def precedence(match: re.Match[str]) -> tuple[Any, ...]:
    major, minor, patch, pre = match.groups()
    if pre is None:
        return (int(major), int(minor), int(patch), 1, ())
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (int(major), int(minor), int(patch), 0, parts)


def version_key(name: str) -> tuple[Any, ...]:
    """Oldest first: non-versions (by code point) before versions (by precedence, then code
    point); a composite name ordered as its version part."""
    match = VERSION.fullmatch(name.split(":", 1)[0])
    if match is None:
        return (0, (), name)
    return (1, precedence(match), name)


def download_fail_counts(plugin: str | None) -> bool:
    match = VERSION.fullmatch(plugin or "")
    if match is None:
        return False
    first_fixed = (6, 14, 25) if int(match.group(1)) == 6 else (7, 17, 0)
    return precedence(match) >= (*first_fixed, 1, ())


def is_failure(stored: StoredEvent) -> bool:
    action = stored.event.action
    if action not in FAILURE:
        return False
    return action != "download_fail" or download_fail_counts(stored.event.plugin_version)


def ms(moment: dt.datetime) -> int:
    return (moment - EPOCH) // dt.timedelta(milliseconds=1)


def event_time(stored: StoredEvent) -> int:
    received = ms(stored.received_at)
    ts = stored.event.timestamp
    if ts is not None and received - BEHIND_MS <= ts <= received + AHEAD_MS:
        return ts
    return received


def counted(name: str) -> str:
    return name.split(":", 1)[0]


def selected(events: list[StoredEvent], q: ReportQuery) -> list[tuple[int, StoredEvent]]:
    out = []
    for stored in events:
        e = stored.event
        if e.app_id != q.app_id:
            continue
        if not q.all_devices:
            prod = True if e.is_prod is None else e.is_prod
            emulator = False if e.is_emulator is None else e.is_emulator
            if not prod or emulator:
                continue
        if q.platform is not None and e.platform != q.platform:
            continue
        if q.channel is not None:
            channel = e.channel if e.channel is not None else e.default_channel
            if channel != q.channel:
                continue
        t = event_time(stored)
        if q.since is not None and t * 1000 < ms(q.since) * 1000 + q.since.microsecond % 1000:
            continue
        if q.until is not None and t * 1000 >= ms(q.until) * 1000 + q.until.microsecond % 1000:
            continue
        out.append((t, stored))
    return out


def stored_copies(arrivals: list[StoredEvent]) -> list[StoredEvent]:
    """What storage keeps: the first copy of each key, and every event without one."""
    seen: set[str] = set()
    kept = []
    for stored in arrivals:
        if stored.key is not None:
            if stored.key in seen:
                continue
            seen.add(stored.key)
        kept.append(stored)
    return kept


def newest_first(names: Any) -> list[str]:
    return sorted(names, key=version_key, reverse=True)


def z95() -> float:
    # The two-sided 95 % quantile of the normal distribution, by bisection on erf.
    low, high = 1.0, 3.0
    for _ in range(200):
        mid = (low + high) / 2
        if math.erf(mid / math.sqrt(2)) < 0.95:
            low = mid
        else:
            high = mid
    return (low + high) / 2


Z = z95()


def wilson(k: int, n: int) -> tuple[float, float]:
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def running_version(device_events: list[tuple[int, StoredEvent]]) -> tuple[str, ...] | None:
    best: tuple[Any, ...] | None = None
    row: tuple[str, ...] | None = None
    for t, stored in device_events:
        e = stored.event
        if e.action not in RUNNING:
            continue
        values = (
            counted(e.version_name),
            e.platform or "",
            e.version_os or "",
            e.plugin_version or "",
            e.version_build or "",
        )
        key = (t, ms(stored.received_at), version_key(values[0]), *values[1:])
        if best is None or key > best:
            best, row = key, values
    return row


Timed = list[tuple[int, StoredEvent]]


def _by(window: Timed, key: Callable[[StoredEvent], str]) -> dict[str, Timed]:
    groups: dict[str, Timed] = defaultdict(list)
    for t, stored in window:
        groups[key(stored)].append((t, stored))
    return groups


def _devices(events: Any) -> int:
    return len({stored.event.device_id for _t, stored in events})


def _left_and_replaced(window: Timed) -> tuple[dict[str, Counter[str]], dict[str, Counter[str]]]:
    """Rollbacks by the version left, and `set` events by the version they replaced."""
    rollbacks: dict[str, Counter[str]] = defaultdict(Counter)
    replaced: dict[str, Counter[str]] = defaultdict(Counter)
    for _t, stored in window:
        e = stored.event
        old = counted(e.old_version_name or "")
        if e.action == "update_fail":
            rollbacks[counted(e.version_name)]["update_fail"] += 1
        elif e.action == "reset" and (old or counted(e.version_name)) != "builtin":
            rollbacks[old or counted(e.version_name)]["reset"] += 1
        if e.action == "set" and old:
            replaced[old][counted(e.version_name)] += 1
    return rollbacks, replaced


def versions_table(window: Timed) -> list[dict[str, Any]]:
    by_version = _by(window, lambda s: counted(s.event.version_name))
    rollbacks, replaced = _left_and_replaced(window)
    versions = []
    for name in set(by_version) | set(rollbacks) | set(replaced):
        evs = by_version.get(name, [])
        devices = _devices(evs)
        failing = [(t, s) for t, s in evs if is_failure(s)]
        failed = _devices(failing)
        versions.append(
            {
                "version": name,
                "devices": devices,
                "installs": sum(1 for _, s in evs if s.event.action == "set"),
                "failed_devices": failed,
                "failure_rate": failed / devices if devices else None,
                "failure_interval": list(wilson(failed, devices)) if devices else None,
                "failures": dict(sorted(Counter(s.event.action for _, s in failing).items())),
                "rollbacks": dict(sorted(rollbacks[name].items())),
                "replaced_by": dict(sorted(replaced[name].items())),
            }
        )
    rank = {name: n for n, name in enumerate(newest_first(v["version"] for v in versions))}
    return sorted(versions, key=lambda v: (-v["devices"], rank[v["version"]]))


FUNNEL_STEPS = ("download_started", "download_complete", "set", "launched")


def funnel(window: Timed) -> list[dict[str, Any]]:
    by_version = _by(window, lambda s: counted(s.event.version_name))
    reports = []
    for name in newest_first(by_version):
        reached: dict[str, list[bool]] = defaultdict(lambda: [False] * 4)
        for _, s in by_version[name]:
            a = s.event.action
            flags = reached[s.event.device_id]
            for n, hit in enumerate(
                (a in STARTS, a == "download_complete", a == "set", a in LAUNCHES)
            ):
                flags[n] = flags[n] or hit
        steps = [sum(1 for f in reached.values() if all(f[: n + 1])) for n in range(4)]
        if steps[0]:
            conversions = [None] + [b / a if a else None for a, b in itertools.pairwise(steps)]
            reports.append(
                {
                    "version": name,
                    "steps": [
                        {"step": step, "devices": devices, "conversion": conversion}
                        for step, devices, conversion in zip(
                            FUNNEL_STEPS, steps, conversions, strict=True
                        )
                    ],
                }
            )
    return reports


def adoption(window: Timed) -> dict[str, Any]:
    by_device = _by(window, lambda s: s.event.device_id)
    running = [r for r in map(running_version, by_device.values()) if r is not None]
    total = len(running)

    def shares(values: list[str]) -> list[dict[str, Any]]:
        counts = Counter(values)
        order = {name: n for n, name in enumerate(newest_first(counts))}
        ordered = sorted(counts.items(), key=lambda item: (-item[1], order[item[0]]))
        return [{"value": v, "devices": n, "share": n / total} for v, n in ordered]

    return {
        "devices": total,
        "versions": shares([r[0] for r in running]),
        "platforms": shares([r[1] for r in running]),
        "os_versions": shares([" ".join(part for part in r[1:3] if part) for r in running]),
        "plugin_versions": shares([r[3] for r in running]),
        "native_versions": shares([r[4] for r in running]),
    }


def _day(day: int) -> str:
    return (EPOCH + dt.timedelta(days=day)).date().isoformat()


def active(window: Timed) -> dict[str, Any]:
    days = _by(window, lambda s: str(event_time(s) // DAY_MS))
    return {
        "total": _devices(window),
        "by_day": [
            {"day": _day(int(d)), "devices": _devices(days[d])} for d in sorted(days, key=int)
        ],
    }


def _sample(pair: dict[str, list[int]]) -> int | None:
    if pair["reported"]:
        return min(pair["reported"])
    if pair["start"] and pair["done"] and min(pair["done"]) >= min(pair["start"]):
        return min(pair["done"]) - min(pair["start"])
    return None


def latency(window: Timed) -> list[dict[str, Any]]:
    by_version = _by(window, lambda s: counted(s.event.version_name))
    reports = []
    for name in newest_first(by_version):
        pairs: dict[str, dict[str, list[int]]] = defaultdict(
            lambda: {"start": [], "done": [], "reported": []}
        )
        for t, s in by_version[name]:
            pair = pairs[s.event.device_id]
            if s.event.action in STARTS:
                pair["start"].append(t)
            elif s.event.action == "download_complete":
                pair["done"].append(t)
                value = (s.event.metadata or {}).get("duration_ms")
                if value is not None and re.fullmatch(r"[0-9]{1,12}", value):
                    pair["reported"].append(int(value))
        samples = sorted(x for x in map(_sample, pairs.values()) if x is not None)
        if samples:
            n = len(samples)
            rank = {p: samples[math.ceil(p * n / 100) - 1] for p in (50, 90, 99)}
            reports.append(
                {
                    "version": name,
                    "samples": n,
                    "p50_ms": rank[50],
                    "p90_ms": rank[90],
                    "p99_ms": rank[99],
                }
            )
    return reports


def daily(window: Timed) -> list[dict[str, Any]]:
    per_day: dict[tuple[int, str], Timed] = defaultdict(list)
    for t, s in window:
        per_day[(t // DAY_MS, counted(s.event.version_name))].append((t, s))
    rows = []
    for day, name in sorted(per_day, key=lambda k: (k[0], version_key(k[1]))):
        evs = per_day[(day, name)]
        rows.append(
            {
                "day": _day(day),
                "version": name,
                "installs": sum(1 for _, s in evs if s.event.action == "set"),
                "failures": sum(1 for _, s in evs if is_failure(s)),
                "running_devices": _devices((t, s) for t, s in evs if s.event.action in RUNNING),
                "devices": _devices(evs),
                "failed_devices": _devices((t, s) for t, s in evs if is_failure(s)),
            }
        )
    return rows


def recount(events: list[StoredEvent], q: ReportQuery) -> dict[str, Any]:
    """Every figure of `summarize` for *q*, from the docs' rules, JSON-shaped."""
    window = selected(events, q)
    return {
        "versions": versions_table(window),
        "funnel": funnel(window),
        "adoption": adoption(window),
        "active_devices": active(window),
        "download_latency": latency(window),
        "daily": daily(window),
    }


# --- the data set -------------------------------------------------------------------------

APPS = ("com.recount.alpha", "com.recount.beta", "com.recount.gamma")
VERSIONS = (
    "3.9.0",
    "3.10.0",
    "3.10.0-beta.2",
    "3.10.0-beta.10",
    "3.10.0-rc.1",
    "v3.10.0",
    "3.10.0+7",
    "V3.9.5",
    "builtin",
    "1.0.0:file.js",
    "3.9.0:assets/main.js",
    "1.2",
    "free text",
    "",
    "\u0661.\u0662.\u0663",  # Arabic-Indic digits: not a semantic version
    "2.0.0-\u03b2",
)
PLUGINS = (
    "8.42.0",
    "7.17.0",
    "7.17.0-beta.1",
    "7.16.9",
    "6.14.25",
    "6.14.24",
    "6.14.25-rc.1",
    "8.0.0-alpha",
    "5.2.0",
    "dev-build",
    "",
    None,
    "\uff18.\uff14\uff12.\uff10",  # full-width digits: not readable
)
PLATFORMS = ("android", "ios", "electron", None)
OS_VERSIONS = ("14", "17.2", "", None)
BUILDS = ("2.0.0", "2.1.0", None)
CHANNELS = (None, "production", "beta", "")
DURATIONS = (None, "1200", "0", "000123", "1234567890123", "-5", " 12", "12a", "\uff11\uff12", "")
# Weighted toward what reports count, with every known action and an unknown one.
COMMON = [
    "set",
    "download_0",
    "download_10",
    "download_complete",
    "app_moved_to_foreground",
    "app_launch_ready",
    "app_crash",
    "download_fail",
    "update_fail",
    "reset",
    "set_next",
    "delete",
    "unzip_fail",
    "download_zip_start",
    "download_manifest_start",
]


def _wire(rng: random.Random, app: str, dev: int, action: str, version: str) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "app_id": app,
        "device_id": str(uuid.UUID(int=dev)),
        "action": action,
        "version_name": version,
    }
    options = {
        "platform": rng.choice(PLATFORMS),
        "version_os": rng.choice(OS_VERSIONS),
        "version_build": rng.choice(BUILDS),
        "plugin_version": rng.choice(PLUGINS),
        "channel": rng.choice(CHANNELS),
        "defaultChannel": rng.choice(CHANNELS),
        "is_prod": rng.choice((True, True, True, False, None)),
        "is_emulator": rng.choice((False, False, False, True, None)),
    }
    wire.update({k: v for k, v in options.items() if v is not None})
    if action in {"set", "reset", "set_next"} and rng.random() < 0.7:
        wire["old_version_name"] = rng.choice((*VERSIONS, "1.1.0:x.js"))
    if action == "download_complete" and rng.random() < 0.6:
        duration = rng.choice(DURATIONS)
        if duration is not None:
            wire["metadata"] = {"duration_ms": duration}
    return wire


def _device_clock(rng: random.Random, received_ms: int) -> int | None:
    """A device timestamp: mostly just before receipt, else absent, queued for days, at or
    past either plausibility limit, or absurd."""
    roll = rng.random()
    if roll < 0.12:
        return None
    if roll < 0.2:
        return received_ms - rng.randint(1, 20) * DAY_MS  # queued for days
    if roll < 0.23:
        return received_ms + AHEAD_MS + rng.choice((0, 1))  # at the limit, or past it
    if roll < 0.26:
        return received_ms - BEHIND_MS - rng.choice((0, 1))
    if roll < 0.28:
        return rng.choice((0, 2**63 - 1, received_ms + DAY_MS))
    return received_ms - rng.randint(0, 90_000)


def _copies(rng: random.Random, wire: dict[str, Any], received: dt.datetime) -> list[StoredEvent]:
    """The event as stored, sometimes with a tie or a later re-send of it."""
    copies = [StoredEvent.from_event(parse_event(wire), received)]
    if rng.random() < 0.2:
        # A tie: the same device, moment and receive time, and another version, or the
        # same version from another platform, OS, plugin or native version.
        other = {**wire, "version_name": rng.choice(VERSIONS)}
        if rng.random() < 0.5:
            field = rng.choice(("platform", "version_os", "plugin_version", "version_build"))
            other = {**wire, field: rng.choice(("android", "ios", "14", "8.42.0"))}
        other["action"] = rng.choice(("app_moved_to_foreground", "set", "app_crash"))
        copies.append(StoredEvent.from_event(parse_event(other), received))
    if rng.random() < 0.1:
        # Re-sent later: stored once, at the first receive time (unless it has no timestamp).
        later = received + dt.timedelta(minutes=rng.randint(1, 600))
        copies.append(StoredEvent.from_event(parse_event(wire), later))
    return copies


def generate(seed: int, devices: int = 40) -> list[StoredEvent]:
    """Arrivals in storage order: events, late ones, implausible clocks, ties and re-sends."""
    rng = random.Random(seed)
    every_action = [*sorted(ACTIONS), "future_action"]
    arrivals: list[StoredEvent] = []
    for app_index, app in enumerate(APPS):
        for d in range(devices):
            dev = app_index * 1000 + d + 1
            for _ in range(rng.randint(3, 14)):
                action = rng.choice(COMMON) if rng.random() < 0.7 else rng.choice(every_action)
                version = rng.choice(VERSIONS)
                if action == "reset" and rng.random() < 0.6:
                    version = "builtin"
                received = NOW - dt.timedelta(days=rng.randint(0, 12), minutes=rng.randint(0, 1439))
                received += dt.timedelta(microseconds=rng.choice((0, 0, 0, 400, 999)))
                received_ms = ms(received)
                ts = _device_clock(rng, received_ms)
                wire = _wire(rng, app, dev, action, version)
                if ts is not None:
                    wire["timestamp"] = ts
                arrivals += _copies(rng, wire, received)
    # Events on the odd window's bounds, to the millisecond: [since, until) holds the first
    # millisecond at or after `since` and none at or after `until`.
    for bound in (ODD_SINCE, ODD_UNTIL):
        for offset in (-1, 0, 1):
            at = ms(bound) + offset
            wire = _wire(rng, APPS[0], 999, "app_moved_to_foreground", "3.9.0")
            wire.update(timestamp=at, is_prod=True, is_emulator=False)
            received = EPOCH + dt.timedelta(milliseconds=at + 1000)
            arrivals.append(StoredEvent.from_event(parse_event(wire), received))
    rng.shuffle(arrivals)
    return sorted(arrivals, key=lambda s: s.received_at)


ODD_SINCE = NOW - dt.timedelta(days=5, hours=3, microseconds=250)
ODD_UNTIL = NOW - dt.timedelta(days=1, minutes=7, microseconds=600)


def queries() -> dict[str, ReportQuery]:
    found = {}
    for app in APPS:
        short = app.rsplit(".", 1)[1]
        found[f"{short}-all"] = ReportQuery(app_id=app)
        found[f"{short}-every-device"] = ReportQuery(app_id=app, all_devices=True)
        found[f"{short}-week"] = ReportQuery.last(app, dt.timedelta(days=7), now=NOW)
        found[f"{short}-android"] = ReportQuery(app_id=app, platform="android")
        found[f"{short}-ios-all"] = ReportQuery(app_id=app, platform="ios", all_devices=True)
        found[f"{short}-beta"] = ReportQuery(app_id=app, channel="beta")
        found[f"{short}-odd-bounds"] = ReportQuery(app_id=app, since=ODD_SINCE, until=ODD_UNTIL)
    return found


QUERIES = queries()


# --- the backends ------------------------------------------------------------------------

BACKENDS: dict[str, Callable[[Path], StorageBackend]] = {
    "sqlite": lambda tmp: SQLiteBackend(tmp / "stats.sqlite3"),
    "postgres": lambda _tmp: postgres_backend(),
    "clickhouse": lambda _tmp: clickhouse_backend(),
    # The reference implementation, which reports on any backend that reads.
    "memory": lambda _tmp: MemoryBackend(),
}
#: The backends the command line reaches by URL (a process's memory it cannot).
BY_URL = [name for name in BACKENDS if name != "memory"]


@pytest.fixture(scope="module")
def arrivals() -> list[StoredEvent]:
    return generate(15)


@pytest.fixture(scope="module")
def events(arrivals: list[StoredEvent]) -> list[StoredEvent]:
    return stored_copies(arrivals)


@pytest.fixture(scope="module")
def expected(events: list[StoredEvent]) -> dict[str, dict[str, Any]]:
    return {name: recount(events, q) for name, q in QUERIES.items()}


@pytest.fixture(scope="module", params=list(BACKENDS))
def stored(
    request: pytest.FixtureRequest,
    arrivals: list[StoredEvent],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[StorageBackend, Reports]]:
    """The arrivals written through one backend, and its reports."""
    backend = BACKENDS[request.param](tmp_path_factory.mktemp(request.param))
    assert backend.write(arrivals).inserted == len(stored_copies(arrivals))
    with reports_for(backend) as opened:
        yield backend, opened
    backend.close()


def _approx(value: Any) -> Any:
    """Floats rounded to 12 places: the docs state the formulas, not the rounding."""
    if isinstance(value, float):
        return round(value, 12)
    if isinstance(value, dict):
        return {k: _approx(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_approx(v) for v in value]
    return value


def _figures(value: Any) -> int:
    if isinstance(value, dict):
        return sum(_figures(v) for v in value.values())
    if isinstance(value, list):
        return sum(_figures(v) for v in value)
    return 1


def test_every_figure_equals_the_docs_recount(stored, expected):
    _backend, reports = stored
    compared = 0
    for name, q in QUERIES.items():
        got = summarize(reports, q).to_json()
        want = expected[name]
        for part, figures in want.items():
            assert _approx(got[part]) == _approx(figures), f"{name}: {part}"
            compared += _figures(figures)
    assert compared > 8000


def _storage_url(backend: StorageBackend) -> str:
    """The storage URL the CLI reaches *backend*'s events by."""
    if isinstance(backend, SQLiteBackend):
        return f"sqlite:///{Path(backend.path).resolve()}"
    name = type(backend).__name__
    if name == "PostgresBackend":
        conninfo = backend.conninfo  # type: ignore[attr-defined]
        return f"{conninfo}{'&' if '?' in conninfo else '?'}schema={backend.schema}"  # type: ignore[attr-defined]
    return f"chdb://?database={backend.database}"  # type: ignore[attr-defined]


@pytest.mark.parametrize("stored", BY_URL, indirect=True)
def test_report_json_from_the_cli_equals_the_recount(stored, events):
    backend, _reports = stored
    since, until = "2026-11-10", "2026-11-24T06:30:00Z"
    for app in APPS:
        result = CliRunner().invoke(
            cli,
            [
                "report",
                "--storage",
                _storage_url(backend),
                "--app",
                app,
                "--format",
                "json",
                "--since",
                since,
                "--until",
                until,
                "--all-devices",
            ],
        )
        assert result.exit_code == 0, result.output
        got = json.loads(result.stdout)
        q = ReportQuery(
            app_id=app,
            since=dt.datetime(2026, 11, 10, tzinfo=dt.timezone.utc),
            until=dt.datetime(2026, 11, 24, 6, 30, tzinfo=dt.timezone.utc),
            all_devices=True,
        )
        want = recount(events, q)
        for part, figures in want.items():
            assert _approx(got[part]) == _approx(figures), f"{app}: {part}"


def _csv_expected(figures: dict[str, Any]) -> list[dict[str, str]]:
    """The CSV rows docs/reports.md describes: the versions table with each version's funnel,
    running devices, download percentiles and failures by action as columns."""
    actions = sorted({a for v in figures["versions"] for a in v["failures"]})
    funnel = {f["version"]: [s["devices"] for s in f["steps"]] for f in figures["funnel"]}
    latency = {c["version"]: c for c in figures["download_latency"]}
    running = {s["value"]: s["devices"] for s in figures["adoption"]["versions"]}

    def cell(value: Any) -> str:
        return "" if value is None else str(value)

    rows = []
    for v in figures["versions"]:
        low, high = v["failure_interval"] or (None, None)
        steps = funnel.get(v["version"], [0, 0, 0, 0])
        times = latency.get(v["version"], {})
        row = {
            "version": v["version"],
            "devices": v["devices"],
            "installs": v["installs"],
            "failed_devices": v["failed_devices"],
            "failure_rate": v["failure_rate"],
            "failure_rate_low": low,
            "failure_rate_high": high,
            "failure_events": sum(v["failures"].values()),
            "rollbacks": sum(v["rollbacks"].values()),
            "running_devices": running.get(v["version"], 0),
            "download_started": steps[0],
            "download_complete": steps[1],
            "set": steps[2],
            "launched": steps[3],
            "download_p50_ms": times.get("p50_ms"),
            "download_p90_ms": times.get("p90_ms"),
            "download_p99_ms": times.get("p99_ms"),
            **{f"failures:{a}": v["failures"].get(a, 0) for a in actions},
        }
        rows.append({k: cell(_approx(x)) for k, x in row.items()})
    return rows


@pytest.mark.parametrize("stored", BY_URL, indirect=True)
def test_report_csv_from_the_cli_equals_the_recount(stored, events):
    backend, _reports = stored
    q = ReportQuery(app_id=APPS[1], since=NOW - dt.timedelta(days=9), until=NOW)
    result = CliRunner().invoke(
        cli,
        [
            "report",
            "--storage",
            _storage_url(backend),
            "--app",
            q.app_id,
            "--format",
            "csv",
            "--since",
            "2026-11-17T12:00:00Z",
            "--until",
            "2026-11-26T12:00:00Z",
        ],
    )
    assert result.exit_code == 0, result.output
    got = [
        {
            k: cell if k == "version" else str(_approx(float(cell))) if "." in cell else cell
            for k, cell in row.items()
        }
        for row in csv.DictReader(io.StringIO(result.stdout))
    ]
    want = _csv_expected(recount(events, q))
    assert any(key.startswith("failures:") for key in want[0])
    assert got == want


def verdict(devices: int, failed: int, policy: HealthPolicy) -> Verdict | None:
    """The docs' verdict table; `None` where `gate` exits 5 (no device tried the version)."""
    if devices == 0:
        return None
    if devices < policy.min_devices:
        return Verdict.INSUFFICIENT_DATA
    low, high = wilson(failed, devices)
    if low > policy.max_failure_rate:
        return Verdict.AT_RISK
    if high > policy.max_failure_rate:
        return Verdict.WARNING
    return Verdict.HEALTHY


def test_every_versions_verdict_follows_the_docs_table(stored, events):
    _backend, reports = stored
    seen = set()
    for policy in (
        HealthPolicy(min_devices=8, max_failure_rate=0.3),
        HealthPolicy(min_devices=3, max_failure_rate=0.6),
    ):
        for app in APPS:
            week = ReportQuery.last(app, policy.window, now=NOW)
            rows = {v["version"]: v for v in recount(events, week)["versions"]}
            for name in [*rows, "9.9.9"]:
                row = rows.get(name, {"devices": 0, "failed_devices": 0})
                health = release_health(reports, app, name, policy, now=NOW)
                want = verdict(row["devices"], row["failed_devices"], policy)
                assert (health.figures.devices, health.figures.failed_devices) == (
                    row["devices"],
                    row["failed_devices"],
                ), (app, name)
                if want is None:
                    assert health.figures.devices == 0
                else:
                    assert health.verdict is want, (app, name, row)
                    seen.add(want)
    assert seen == set(Verdict)


def _documented_gate_keys() -> tuple[set[str], set[str]]:
    """The keys docs/reports.md lists for `gate --json`: with a verdict, and with exit code 5."""
    text = " ".join((ROOT / "docs" / "reports.md").read_text(encoding="utf-8").split())
    verdict_part = text.split("`gate --json` prints the `HealthReport.to_json()` object:", 1)[1]
    verdict_part, missing_part = verdict_part.split("; with exit code 5 it prints", 1)
    missing_part = missing_part.split(" instead.", 1)[0]
    keys = re.findall(r"`([a-z_]+)`", verdict_part)
    missing = set(re.findall(r"`([a-z_]+)`", missing_part)) - {"no_such_app", "no_such_version"}
    return set(keys), missing


def _gate_exit_codes() -> dict[str, int]:
    """The exit codes the docs' verdict table gives."""
    codes = {}
    for line in (ROOT / "docs" / "reports.md").read_text(encoding="utf-8").splitlines():
        found = re.fullmatch(r"\| `([a-z_]+)` \| .* \| ([0-9]) \|", line)
        if found:
            codes[found.group(1)] = int(found.group(2))
    return codes


@pytest.mark.parametrize("stored", BY_URL, indirect=True)
def test_gate_exit_codes_and_json_follow_the_docs(stored, events):
    backend, _reports = stored
    verdict_keys, missing_keys = _documented_gate_keys()
    codes = _gate_exit_codes()
    assert set(codes) == {v.value for v in Verdict}
    help_text = CliRunner().invoke(cli, ["gate", "--help"]).output
    for name, code in codes.items():
        assert re.search(rf"^\s+{code}\s+{name}\s", help_text, re.MULTILINE), name
    # A window reaching back long before every event and up to now: the data set's events are
    # all in the past, so the gate sees exactly the whole app.
    checked = Counter()
    for policy in (
        HealthPolicy(min_devices=8, max_failure_rate=0.3),
        HealthPolicy(min_devices=3, max_failure_rate=0.6),
    ):
        window = ["--window", "36500d", "--min-devices", str(policy.min_devices)]
        window += ["--max-failure-rate", str(policy.max_failure_rate)]
        for app in APPS:
            figures = recount(events, ReportQuery(app_id=app))["versions"]
            rows = {v["version"]: v for v in figures}
            for name in [*rows, "9.9.9"]:
                row = rows.get(name, {"devices": 0, "failed_devices": 0})
                result = CliRunner().invoke(
                    cli,
                    [
                        "gate",
                        "--storage",
                        _storage_url(backend),
                        "--app",
                        app,
                        "--version",
                        name,
                        *window,
                        "--json",
                    ],
                )
                answer = json.loads(result.stdout)
                want = verdict(row["devices"], row["failed_devices"], policy)
                if want is None:
                    assert result.exit_code == 5, (app, name)
                    assert set(answer) == missing_keys
                    assert answer["error"] == "no_such_version"
                else:
                    assert result.exit_code == codes[want.value], (app, name, row)
                    assert set(answer) == verdict_keys
                    assert (answer["verdict"], answer["devices"]) == (want.value, row["devices"])
                checked[result.exit_code] += 1
    result = CliRunner().invoke(
        cli,
        [
            "gate",
            "--storage",
            _storage_url(backend),
            "--app",
            "com.recount.none",
            "--version",
            "1.0.0",
            *window,
            "--json",
        ],
    )
    assert result.exit_code == 5
    assert json.loads(result.stdout)["error"] == "no_such_app"
    assert set(checked) >= {0, 1, 2, 3, 5}


@pytest.mark.parametrize(
    ("healthy", "failing", "verdict_", "bound", "shown"),
    [
        (50, 0, Verdict.WARNING, 1, "7.1 %"),  # 0 among 50: the interval reaches 7.1 %
        (72, 0, Verdict.WARNING, 1, "5.1 %"),  # 72 failure-free devices reach 5.1 %
        (73, 0, Verdict.HEALTHY, 1, "5.0 %"),  # 73 prove the 5 % limit
        (88, 12, Verdict.AT_RISK, 0, "7.0 %"),  # 12 among 100: at least 7.0 %
    ],
)
def test_the_docs_release_health_examples(tmp_path, healthy, failing, verdict_, bound, shown):  # noqa: PLR0917
    text = " ".join((ROOT / "docs" / "reports.md").read_text(encoding="utf-8").split())
    now = NOW
    wires = []
    for n in range(healthy + failing):
        common = {
            "app_id": APPS[0],
            "device_id": str(uuid.UUID(int=n + 1)),
            "version_name": "1.2.0",
        }
        wires.append({**common, "action": "set", "timestamp": ms(now) - 60_000 - n})
        if n >= healthy:
            wires.append({**common, "action": "app_crash", "timestamp": ms(now) - 30_000 - n})
    backend = SQLiteBackend(tmp_path / "stats.sqlite3")
    backend.write([StoredEvent.from_event(parse_event(w), now) for w in wires])
    with reports_for(backend) as reports:
        health = release_health(reports, APPS[0], "1.2.0", HealthPolicy(), now=now)
    backend.close()
    assert health.verdict is verdict_
    assert health.figures.failure_interval is not None
    value = health.figures.failure_interval[bound]
    assert f"{value * 100:.1f} %" == shown
    assert shown in text
    assert wilson(failing, healthy + failing)[bound] == pytest.approx(value, abs=1e-12)


def test_every_known_action_is_target_or_running_but_two():
    """docs/protocol.md: every known action is either target or running, except `update_fail`
    and `uninstall`; the failure class is the protocol's section 4."""
    assert len(ACTIONS) == 92
    assert not TARGET & RUNNING
    assert set(ACTIONS) - TARGET - RUNNING == {"update_fail", "uninstall"}
    spec_failures = {
        a
        for a in ACTIONS
        if (a.endswith("_fail") or a.startswith(("app_crash", "app_killed_")))
        or a in {"app_anr", "app_initialization_failure"}
        or (a.startswith("webview_") and not a.endswith(("_page_loaded", "_dom_content_loaded")))
    }
    assert spec_failures == FAILURE


def test_the_data_set_exercises_the_rules(events, expected):
    """The recount above is only as good as the data: each rule meets the cases it names."""
    names = {s.event.version_name for s in events}
    assert {"1.0.0:file.js", "builtin", "3.9.0", "3.10.0", ""} <= names
    fails = [s for s in events if s.event.action == "download_fail"]
    assert any(is_failure(s) for s in fails)
    assert {s.event.plugin_version for s in fails if not is_failure(s)} >= {
        "7.17.0-beta.1",
        "dev-build",
        None,
    }
    assert any((s.event.old_version_name or "").endswith(":x.js") for s in events)
    rows = [v for figures in expected.values() for v in figures["versions"]]
    assert any(v["devices"] == 0 and (v["rollbacks"] or v["replaced_by"]) for v in rows)
    assert all("reset" not in v["rollbacks"] for v in rows if v["version"] == "builtin")
    clocks = Counter()
    for s in events:
        ts, received = s.event.timestamp, ms(s.received_at)
        if ts is None:
            clocks["absent"] += 1
        elif ts == received + AHEAD_MS or ts == received - BEHIND_MS:
            clocks["at a limit"] += 1
        elif event_time(s) == received:
            clocks["implausible"] += 1
    assert min(clocks.values()) > 3
    assert len(clocks) == 3
    moments = Counter(
        (s.event.device_id, event_time(s), ms(s.received_at))
        for s in events
        if s.event.action in RUNNING
    )
    assert sum(1 for n in moments.values() if n > 1) > 20
    durations = [(s.event.metadata or {}).get("duration_ms") for s in events]
    assert {"000123", "1234567890123", "\uff11\uff12"} <= set(durations)


def test_clickhouse_counts_copies_a_merge_has_not_collapsed_once(arrivals, expected):
    """docs/reports.md: ClickHouse reads `FINAL`, so a second copy of every stored row (as
    two writers racing on one batch leave) changes no figure."""
    backend = clickhouse_backend()
    backend.write(arrivals)
    client = backend._connect()
    table = backend._qualified
    rows = client.command(f"SELECT count() FROM {table}")
    client.command(f"INSERT INTO {table} SELECT * FROM {table}")
    assert client.command(f"SELECT count() FROM {table}") == 2 * rows
    with reports_for(backend) as reports:
        for name in ("alpha-all", "beta-week", "gamma-odd-bounds"):
            got = summarize(reports, QUERIES[name]).to_json()
            for part, figures in expected[name].items():
                assert _approx(got[part]) == _approx(figures), f"{name}: {part}"
    backend.close()
