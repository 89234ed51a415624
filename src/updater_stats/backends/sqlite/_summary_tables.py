"""The tables of the day summaries, and how a chunk of events is added to them.

Days are grouped in blocks: block *b* covers the 60 days from day ``30 * b``, so that every
day is in two blocks and every window of up to 30 days lies in one (`blocks_for`). A row
holds, per thing the reports ask of a device, one bit per day of its block (a mask).

- ``pairs``: one row per block, platform class, version and device: any event, a failure,
  each funnel step, a running-version event, as masks; the first download start and
  completion, the smallest reported duration, the failures and the latest one.
- ``devices``: one row per block, platform class and device: any event and any running-version
  event (masks), and the device's latest running-version event of the block with its values,
  ties settled.
- ``running``: one row per block, device and running values (version, platform, OS,
  plugin, native version): its running days (mask), the latest event of its first and of
  its last day.
- ``daily``: per day, version (or all versions) and platform class, distinct devices,
  running and failed devices, installs and failures, each counted when it happens first.
- ``actions``: per day and platform class, failures by action, rollbacks, replacements.

A platform class is all platforms (``allp = 1``, ``platform = ''``) or one (``allp = 0``).
Every figure is kept twice, for all devices (suffix ``_a``) and for production devices
only (``_o``: ``is_prod`` and not ``is_emulator``), the reports' default.
"""

# ruff: noqa: S608 - SQL text is built from our own column names and integers only.

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from ... import _semantics as sem
from ..._actions import Action, counts_as_failure
from ...reports._gathered import smallest
from ...reports._window import event_time

__all__ = [
    "BLOCK_DAYS",
    "BLOCK_STRIDE",
    "FORMAT",
    "SCHEMA",
    "TABLES",
    "Chunk",
    "Event",
    "blocks_for",
    "event_columns",
]

#: Changes whenever what the file holds changes: a file of another format is rebuilt.
FORMAT = 5
#: Days in a block's masks, and days between the starts of two blocks.
BLOCK_DAYS = 60
BLOCK_STRIDE = 30
NEVER = -(2**62)

FAILURES = frozenset(a.value for a in sem.FAILURES)
RUNNING = frozenset(a.value for a in sem.RUNNING)
STARTS = frozenset(a.value for a in sem.DOWNLOAD_STARTS)
DONE = sem.DOWNLOAD_DONE.value
INSTALL = sem.INSTALL.value
LAUNCHES = frozenset(a.value for a in sem.LAUNCHES)
ROLLBACKS = frozenset(a.value for a in sem.ROLLBACKS)
RESET = Action.RESET.value
CLASSES = ("a", "o")


def _twice(names: Sequence[str]) -> tuple[str, ...]:
    return tuple(f"{name}_{k}" for k in CLASSES for name in names)


PAIR_KEY = ("app_id", "block", "allp", "platform", "version", "device_id")
PAIR_FIGURES = (
    "any", "fail", "run", "s1", "s2", "s3", "s4", "fstart", "fdone", "minrep", "failn", "lft",
)  # fmt: skip
DEVICE_KEY = ("app_id", "block", "allp", "platform", "device_id")
RUN_VALUES = ("ver", "plat", "os", "plug", "build")
DEVICE_FIGURES = ("any", "run", "t", "r", *RUN_VALUES)
RUNNING_KEY = ("app_id", "block", "device_id", "version", "platform", "os", "plugin", "build")
RUNNING_FIGURES = ("run", "lrt", "lrr", "frt", "frr")
DAILY_KEY = ("app_id", "day", "allv", "version", "allp", "platform")
DAILY_FIGURES = ("dev", "run", "fail", "inst", "failev")
ACTIONS_KEY = ("app_id", "day", "allp", "platform", "kind", "a", "b")

#: Each table: its key, and its figures (each twice).
TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "pairs": (PAIR_KEY, _twice(PAIR_FIGURES)),
    "devices": (DEVICE_KEY, _twice(DEVICE_FIGURES)),
    "running": (RUNNING_KEY, _twice(RUNNING_FIGURES)),
    "daily": (DAILY_KEY, _twice(DAILY_FIGURES)),
    "actions": (ACTIONS_KEY, ("n_a", "n_o")),
}

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    *(
        f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(key + figures)}, "
        f"PRIMARY KEY ({', '.join(key)})) WITHOUT ROWID"
        for table, (key, figures) in TABLES.items()
    ),
)


def blocks_for(first: int, end: int) -> list[int]:
    """Blocks that together hold the days from *first* up to *end* (excluded), each day in
    one of them: a single block for a window of up to 30 days."""
    block = first // BLOCK_STRIDE
    chosen = [block]
    while (block + 2) * BLOCK_STRIDE < end:
        block += 2  # the next block that does not overlap this one
        chosen.append(block)
    return chosen


def _new_pair() -> list[Any]:
    one = [0] * 7 + [None, None, None, 0, NEVER]
    return one + list(one)


def _new_device() -> list[Any]:
    one = [0, 0, None, None, None, None, None, None, None]
    return one + list(one)


def _new_running() -> list[Any]:
    one = [0, NEVER, NEVER, None, None]
    return one + list(one)


_P = {name: index for index, name in enumerate(PAIR_FIGURES)}
_PW = len(PAIR_FIGURES)
_DW = len(DEVICE_FIGURES)
_RW = len(RUNNING_FIGURES)
_NEW = {"pairs": _new_pair, "devices": _new_device, "running": _new_running}


class Chunk:
    """Adds a chunk of events (rows of the events table, in id order) to the summaries."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._rows: dict[str, dict[tuple[Any, ...], list[Any]]] = {t: {} for t in _NEW}
        self._daily: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0] * 10)
        self._actions: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0])

    def add(self, events: Sequence[tuple[Any, ...]]) -> None:
        """Add *events*: (id, app_id, device_id, action, version_name, old_version_name,
        platform, version_os, plugin_version, version_build, is_prod, is_emulator,
        received_at, device_ts, reported duration)."""
        self._load(events)
        for event in events:
            self._event(event)
        self._store()

    def _load(self, events: Sequence[tuple[Any, ...]]) -> None:
        """The stored rows of the devices and blocks this chunk touches."""
        wanted: dict[tuple[str, int], set[str]] = defaultdict(set)
        for event in events:
            day = event_time(event[12], event[13]) // sem.DAY_MS
            for block in (day // BLOCK_STRIDE, day // BLOCK_STRIDE - 1):
                wanted[event[1], block].add(event[2])
        for table, rows in self._rows.items():
            key = TABLES[table][0]
            for (app, block), devices in wanted.items():
                ids = sorted(devices)
                for start in range(0, len(ids), 500):
                    part = ids[start : start + 500]
                    for row in self._conn.execute(
                        f"SELECT * FROM {table} WHERE app_id = ? AND block = ? "
                        f"AND device_id IN ({', '.join('?' * len(part))})",
                        (app, block, *part),
                    ):
                        rows[tuple(row[: len(key)])] = list(row[len(key) :])

    def _row(self, table: str, key: tuple[Any, ...]) -> list[Any]:
        rows = self._rows[table]
        row = rows.get(key)
        if row is None:
            row = rows[key] = _NEW[table]()
        return row

    def _event(self, row: tuple[Any, ...]) -> None:
        e = Event.read(row)
        self._count_day(e)
        self._count_actions(e)
        for block in (e.day // BLOCK_STRIDE, e.day // BLOCK_STRIDE - 1):
            bit = 1 << (e.day - block * BLOCK_STRIDE)
            for allp, shown in e.platforms:
                pair = self._row("pairs", (e.app, block, allp, shown, e.version, e.device))
                mine = self._row("devices", (e.app, block, allp, shown, e.device))
                for c in e.classes:
                    _add_to_pair(pair, c * _PW, bit, e)
                    mine[c * _DW] |= bit
                    if e.running:
                        mine[c * _DW + 1] |= bit
                        _keep_latest(mine, c * _DW + 2, e.t, e.received_ms, e.values)
            if e.running:
                values = self._row("running", (e.app, block, e.device, *e.values))
                for c in e.classes:
                    _keep_running(values, c * _RW, bit, e.t, e.received_ms)

    def _count_day(self, e: Event) -> None:
        """Distinct devices per day, counted at the device's first such event of the day
        (before this event's bits are set), and the day's installs and failures."""
        block = e.day // BLOCK_STRIDE
        bit = 1 << (e.day - block * BLOCK_STRIDE)
        for allp, shown in e.platforms:
            pair = self._row("pairs", (e.app, block, allp, shown, e.version, e.device))
            mine = self._row("devices", (e.app, block, allp, shown, e.device))
            cell = self._daily[e.app, e.day, 0, e.version, allp, shown]
            whole = self._daily[e.app, e.day, 1, "", allp, shown]
            for c in e.classes:
                at, count = c * _PW, c * len(DAILY_FIGURES)
                if not mine[c * _DW] & bit:
                    whole[count] += 1
                if not pair[at + _P["any"]] & bit:
                    cell[count] += 1
                if e.running and not pair[at + _P["run"]] & bit:
                    cell[count + 1] += 1
                if e.failure and not pair[at + _P["fail"]] & bit:
                    cell[count + 2] += 1
                if e.action == INSTALL:
                    cell[count + 3] += 1
                if e.failure:
                    cell[count + 4] += 1

    def _count_actions(self, e: Event) -> None:
        for kind, a, b in _counted(e.version, e.old_name, e.action, failure=e.failure):
            for allp, shown in e.platforms:
                n = self._actions[e.app, e.day, allp, shown, kind, a, b]
                for c in e.classes:
                    n[c] += 1

    def _store(self) -> None:
        for table, rows in self._rows.items():
            key, figures = TABLES[table]
            marks = ", ".join("?" * (len(key) + len(figures)))
            self._conn.executemany(
                f"INSERT OR REPLACE INTO {table} VALUES ({marks})",
                [(*k, *v) for k, v in rows.items()],
            )
        for table, counts in (("daily", self._daily), ("actions", self._actions)):
            key, figures = TABLES[table]
            marks = ", ".join("?" * (len(key) + len(figures)))
            adds = ", ".join(f"{f} = {f} + excluded.{f}" for f in figures)
            self._conn.executemany(
                f"INSERT INTO {table} VALUES ({marks}) ON CONFLICT ({', '.join(key)}) "
                f"DO UPDATE SET {adds}",
                [(*k, *v) for k, v in counts.items() if any(v)],
            )


def event_columns(duration: str) -> str:
    """The columns of the events table an `Event` is read from, in order: *duration* is
    SQL for a trusted ``metadata.duration_ms`` (the reports' dialect)."""
    return (
        "id, app_id, device_id, action, version_name, old_version_name, platform, "
        "version_os, plugin_version, version_build, is_prod, is_emulator, received_at, "
        f"device_ts, CASE WHEN action = '{DONE}' THEN {duration} END"
    )


class Event(NamedTuple):
    """One event as the summaries count it."""

    app: str
    device: str
    action: str
    version: str
    old_name: str | None
    values: sem.RunningRow
    t: int
    day: int
    received_ms: int
    reported: int | None
    classes: tuple[int, ...]
    platforms: list[tuple[int, str]]
    failure: bool
    running: bool
    platform: str | None

    @property
    def production(self) -> bool:
        """Whether it is counted by default: a production build, on no emulator."""
        return 1 in self.classes

    @classmethod
    def read(cls, row: tuple[Any, ...]) -> Event:
        """From a row of `EVENT_COLUMNS` of the events table."""
        (_id, app, device, action, name, old_name, platform, os_version, plugin, build) = row[:10]
        is_prod, is_emulator, received_ms, device_ts, reported = row[10:]
        t = event_time(received_ms, device_ts)
        version = sem.counted_version(name)
        return cls(
            app=app,
            device=device,
            action=action,
            version=version,
            old_name=old_name,
            values=(version, platform or "", os_version or "", plugin or "", build or ""),
            t=t,
            day=t // sem.DAY_MS,
            received_ms=received_ms,
            reported=None if reported is None else int(reported),
            classes=(0, 1) if is_prod and not is_emulator else (0,),
            # Events without a platform count only where no platform is asked for.
            platforms=[(1, "")] + ([(0, platform)] if platform else []),
            failure=counts_as_failure(action, plugin),
            running=action in RUNNING,
            platform=platform,
        )


def _add_to_pair(pair: list[Any], at: int, bit: int, e: Event) -> None:
    """A device's figures for a version, for one class of devices (from *at*)."""
    pair[at] |= bit
    if e.failure:
        pair[at + _P["fail"]] |= bit
        pair[at + _P["failn"]] += 1
        pair[at + _P["lft"]] = max(pair[at + _P["lft"]], e.t)
    if e.running:
        pair[at + _P["run"]] |= bit
    if e.action in STARTS:
        pair[at + _P["s1"]] |= bit
        pair[at + _P["fstart"]] = smallest(pair[at + _P["fstart"]], e.t)
    elif e.action == DONE:
        pair[at + _P["s2"]] |= bit
        pair[at + _P["fdone"]] = smallest(pair[at + _P["fdone"]], e.t)
        pair[at + _P["minrep"]] = smallest(pair[at + _P["minrep"]], e.reported)
    elif e.action == INSTALL:
        pair[at + _P["s3"]] |= bit
    if e.action in LAUNCHES:
        pair[at + _P["s4"]] |= bit


def _counted(
    version: str, old_name: str | None, action: str, *, failure: bool
) -> Iterator[tuple[str, str, str]]:
    """The counts that add up which this event adds to: (kind, a, b)."""
    if failure:
        yield "fail", version, action
    old = sem.counted_version(old_name or "")  # "": names no bundle
    if action == INSTALL:
        if old:
            yield "replace", old, version
    elif action in ROLLBACKS:
        # A reset left the bundle it names in old_version_name, else in version_name; it
        # never leaves builtin, where every reset lands.
        left = old if action == RESET and old else version
        if not (action == RESET and left == sem.BUILTIN):
            yield "rollback", left, action


def _keep_latest(row: list[Any], at: int, t: int, received_ms: int, values: sem.RunningRow) -> None:
    """Keep the latest running event of a device, the documented order among equals."""
    held = row[at], row[at + 1]
    if held[0] is not None:
        if (t, received_ms) < held:
            return
        # The same moment: the order of the values settles it (rare: computed only then).
        if (t, received_ms) == held and sem.running_tie_key(values) <= sem.running_tie_key(
            (row[at + 2], row[at + 3], row[at + 4], row[at + 5], row[at + 6])
        ):
            return
    row[at : at + 7] = [t, received_ms, *values]


def _keep_running(row: list[Any], at: int, bit: int, t: int, received_ms: int) -> None:
    """A running event of these values: its day, and the latest of its first and last day."""
    first = row[at] & -row[at]
    # A new first day (its latest event so far), or a later event of the first day.
    if not first or bit < first or (bit == first and (t, received_ms) > (row[at + 3], row[at + 4])):
        row[at + 3], row[at + 4] = t, received_ms
    row[at] |= bit
    row[at + 1], row[at + 2] = max((row[at + 1], row[at + 2]), (t, received_ms))
