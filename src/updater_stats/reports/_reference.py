"""`EventReportSource`: every report counted in Python from a backend's stored events.

The reference implementation of `ReportSource`. It reads through the read protocol
(`SupportsEvents`) and counts under the rules of ``docs/reports.md``, with the sets and
helpers of `_semantics` that the SQL read sides are built from too; the SQL read sides must
give exactly its figures (the reports contract suite holds them to it).

Each method streams the app's events once, and keeps only what its figures need: sets of
device ids per version (per day and version for the daily figures), one latest event per
device, one download per device and version. Never the events themselves: memory grows with
devices and versions, not with the store.
"""

from __future__ import annotations

import functools
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping

from .. import _semantics as sem
from .._actions import Action, download_fail_counts
from .._counts import (
    ActiveDevices,
    DailyVersionCounts,
    DayCount,
    FunnelCounts,
    LatencyCounts,
    RunningGroup,
    VersionCounts,
)
from .._epoch import day_of
from .._models import AppInfos
from .._query import ReportQuery
from .._storage import SupportsEvents
from .._versions import version_order_key
from ._gathered import latency_rows, running_rows, samples_of, smallest
from ._window import window

__all__ = ["EventReportSource"]


def _values(actions: Iterable[Action]) -> frozenset[str]:
    # Events carry the raw wire string: compare with the values, never parse every action.
    return frozenset(action.value for action in actions)


_FAILURES = _values(sem.FAILURES)
_DOWNLOAD_FAIL = Action.DOWNLOAD_FAIL.value
_INSTALL = sem.INSTALL.value
_DONE = sem.DOWNLOAD_DONE.value
_STARTS = _values(sem.DOWNLOAD_STARTS)
_RUNNING = _values(sem.RUNNING)
_ROLLBACKS = _values(sem.ROLLBACKS)
_RESET = Action.RESET.value
#: Each funnel step's bit, in `sem.FUNNEL_STEPS` order; a device reached step n and every
#: earlier one when the lowest n + 1 bits of its mask are all set.
_FUNNEL_BITS: Mapping[str, int] = {
    value: 1 << step
    for step, actions in enumerate(
        (sem.DOWNLOAD_STARTS, {sem.DOWNLOAD_DONE}, {sem.INSTALL}, sem.LAUNCHES)
    )
    for value in _values(actions)
}
_FUNNEL_MASKS = tuple((2 << step) - 1 for step in range(len(sem.FUNNEL_STEPS)))
_DURATION = re.compile(f"[0-9]{{1,{sem.DURATION_MAX_DIGITS}}}")

# A handful of plugin versions send nearly every event: parse each once.
_download_fail_counts = functools.lru_cache(maxsize=1024)(download_fail_counts)


def _is_failure(event: AppInfos) -> bool:
    """A failure action; `download_fail` only from a plugin whose `download_fail` counts."""
    action = event.action
    return action in _FAILURES and (
        action != _DOWNLOAD_FAIL or _download_fail_counts(event.plugin_version)
    )


def _reported_duration(metadata: Mapping[str, str] | None) -> int | None:
    """A download's own ``duration_ms``, when it is 1 to 12 ASCII digits."""
    value = None if metadata is None else metadata.get(sem.DURATION_KEY)
    if isinstance(value, str) and _DURATION.fullmatch(value):
        return int(value)
    return None


class EventReportSource:
    """A `ReportSource` over any backend with the read protocol, counted in Python.

    The reference implementation: `reports_for` gives it to every backend that streams its
    events (`SupportsEvents`, as `MemoryBackend` does) but computes no reports itself.
    Each report reads the app's events once, through ``backend.events(app_id=...,
    since=...)``, from the earliest receive time an event of the query's window can have,
    and counts exactly what the SQL read sides count (see ``docs/reports.md``). Memory
    grows with the devices and versions counted, never with the number of events.

    Args:
        backend: Any object whose ``events()`` follows `SupportsEvents`. It stays the
            caller's: `close` leaves it open.
    """

    def __init__(self, backend: SupportsEvents) -> None:
        self._backend = backend

    def __repr__(self) -> str:
        return f"EventReportSource({self._backend!r})"

    def _window(self, query: ReportQuery) -> Iterator[tuple[int, int, AppInfos]]:
        """The query's events, each with its event time and receive time (epoch ms)."""
        for t, received_ms, stored in window(self._backend, query):
            yield t, received_ms, stored.event

    def version_counts(self, query: ReportQuery) -> list[VersionCounts]:
        """One row per version with any event, or named as a replaced or rolled-back version."""
        devices: dict[str, set[str]] = defaultdict(set)
        failed: dict[str, set[str]] = defaultdict(set)
        installs: Counter[str] = Counter()
        failures: dict[str, Counter[str]] = defaultdict(Counter)
        rollbacks: dict[str, Counter[str]] = defaultdict(Counter)
        replaced: dict[str, Counter[str]] = defaultdict(Counter)
        for _t, _received, event in self._window(query):
            action, device = event.action, event.device_id
            version = sem.counted_version(event.version_name)
            old = sem.counted_version(event.old_version_name or "")  # "": names no bundle
            devices[version].add(device)
            if _is_failure(event):
                failed[version].add(device)
                failures[version][action] += 1
            if action == _INSTALL:
                installs[version] += 1
                if old:
                    replaced[old][version] += 1
            elif action in _ROLLBACKS:
                # A reset left the bundle it names in old_version_name, else in version_name;
                # it never leaves builtin, where every reset lands.
                left = old if action == _RESET and old else version
                if not (action == _RESET and left == sem.BUILTIN):
                    rollbacks[left][action] += 1
        names = set(devices) | set(rollbacks) | set(replaced)
        return [
            VersionCounts(
                version=name,
                devices=len(devices.get(name, ())),
                installs=installs[name],
                failures=failures.get(name, {}),
                failed_devices=len(failed.get(name, ())),
                rollbacks=rollbacks.get(name, {}),
                replaced_by=replaced.get(name, {}),
            )
            for name in sorted(names, key=version_order_key)
        ]

    def funnel_counts(self, query: ReportQuery) -> list[FunnelCounts]:
        """One row per version at least one device started downloading."""
        reached: dict[str, dict[str, int]] = defaultdict(dict)
        for _t, _received, event in self._window(query):
            bit = _FUNNEL_BITS.get(event.action)
            if bit is not None:
                devices = reached[sem.counted_version(event.version_name)]
                devices[event.device_id] = devices.get(event.device_id, 0) | bit
        rows = []
        for version in sorted(reached, key=version_order_key):
            masks = reached[version].values()
            started, complete, installed, launched = (
                sum(1 for mask in masks if mask & full == full) for full in _FUNNEL_MASKS
            )
            if started:
                rows.append(
                    FunnelCounts(
                        version=version,
                        download_started=started,
                        download_complete=complete,
                        set=installed,
                        launched=launched,
                    )
                )
        return rows

    def running_versions(self, query: ReportQuery) -> list[RunningGroup]:
        """Each device's latest running-version event, grouped by its values."""
        latest: dict[str, tuple[int, int, sem.RunningRow]] = {}
        for t, received_ms, event in self._window(query):
            if event.action not in _RUNNING:
                continue
            row = (
                sem.counted_version(event.version_name),
                event.platform or "",
                event.version_os or "",
                event.plugin_version or "",
                event.version_build or "",
            )
            best = latest.get(event.device_id)
            if (
                best is None
                or (t, received_ms) > best[:2]
                # The same moment twice: the documented order settles it.
                or (
                    (t, received_ms) == best[:2]
                    and sem.running_tie_key(row) > sem.running_tie_key(best[2])
                )
            ):
                latest[event.device_id] = (t, received_ms, row)
        return running_rows(Counter(row for _t, _received, row in latest.values()))

    def active_devices(self, query: ReportQuery) -> ActiveDevices:
        """Distinct devices with any event, in all and per UTC day."""
        everyone: set[str] = set()
        by_day: dict[int, set[str]] = defaultdict(set)
        for t, _received, event in self._window(query):
            everyone.add(event.device_id)
            by_day[t // sem.DAY_MS].add(event.device_id)
        return ActiveDevices(
            total=len(everyone),
            by_day=tuple(
                DayCount(day=day_of(day), devices=len(devices))
                for day, devices in sorted(by_day.items())
            ),
        )

    def download_latency(self, query: ReportQuery) -> list[LatencyCounts]:
        """Download duration percentiles per version with at least one sample."""
        # Per (version, device): first start, first completion, smallest reported duration.
        downloads: dict[tuple[str, str], list[int | None]] = {}
        for t, _received, event in self._window(query):
            action = event.action
            if action in _STARTS:
                slot, value = 0, t
            elif action == _DONE:
                slot, value = 1, t
            else:
                continue
            pair = (sem.counted_version(event.version_name), event.device_id)
            found = downloads.setdefault(pair, [None, None, None])
            found[slot] = smallest(found[slot], value)
            if slot == 1:
                found[2] = smallest(found[2], _reported_duration(event.metadata))
        return latency_rows(
            samples_of(
                (version, (started, completed, reported))
                for (version, _device), (started, completed, reported) in downloads.items()
            )
        )

    def daily_counts(self, query: ReportQuery) -> list[DailyVersionCounts]:
        """Installs, failures, running and failed devices, and devices, per UTC day and version."""
        installs: Counter[tuple[int, str]] = Counter()
        failures: Counter[tuple[int, str]] = Counter()
        running: dict[tuple[int, str], set[str]] = defaultdict(set)
        devices: dict[tuple[int, str], set[str]] = defaultdict(set)
        failed: dict[tuple[int, str], set[str]] = defaultdict(set)
        for t, _received, event in self._window(query):
            cell = (t // sem.DAY_MS, sem.counted_version(event.version_name))
            devices[cell].add(event.device_id)
            if event.action == _INSTALL:
                installs[cell] += 1
            if _is_failure(event):
                failures[cell] += 1
                failed[cell].add(event.device_id)
            if event.action in _RUNNING:
                running[cell].add(event.device_id)
        return [
            DailyVersionCounts(
                day=day_of(day),
                version=version,
                installs=installs[day, version],
                failures=failures[day, version],
                running_devices=len(running.get((day, version), ())),
                devices=len(day_devices),
                failed_devices=len(failed.get((day, version), ())),
            )
            for (day, version), day_devices in sorted(
                devices.items(), key=lambda item: (item[0][0], version_order_key(item[0][1]))
            )
        ]

    def close(self) -> None:
        """Nothing to release: the reports hold no connection, and the backend is the caller's."""
