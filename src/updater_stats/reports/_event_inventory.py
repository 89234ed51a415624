"""`EventInventory`: the device inventory computed in Python from a backend's stored events.

The reference implementation of `InventorySource`, over the read protocol
(`SupportsEvents`); the daily failure rates and failing devices of a version follow the
rules of ``docs/reports.md`` (event time, counted version, failures). Each question streams
the app's events once and keeps only what its answer needs: one row per device of a page,
per device of the app for a search, per failing device of a version, the devices of each
day and version for the daily rates; a timeline page keeps the rows up to its last one.
Never every event: memory grows with devices, days and versions, not with the store.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections import defaultdict
from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING

from .. import _semantics as sem
from .._actions import counts_as_failure
from .._devices import (
    MAX_APPS,
    DayRate,
    DeviceEvent,
    DeviceRow,
    DeviceSummary,
    FailingDevice,
    device_moment,
)
from .._epoch import day_of, epoch_ms, from_epoch_ms
from .._query import ReportQuery
from ._window import app_events, window

if TYPE_CHECKING:
    from .._models import StoredEvent
    from .._storage import SupportsEvents

__all__ = ["EventInventory"]

_RUNNING = frozenset(action.value for action in sem.RUNNING)

# Newest first: by receive time, then device time, an event without one below any with one.
_Order = tuple[dt.datetime, bool, int]


def _order(stored: StoredEvent) -> _Order:
    timestamp = stored.event.timestamp
    return stored.received_at, timestamp is not None, timestamp or 0


def _newest_first(item: tuple[int, StoredEvent]) -> tuple[_Order, int]:
    # Events alike in both: the one stored later first, as SQLite's index gives them.
    position, stored = item
    return _order(stored), position


def _device_event(stored: StoredEvent) -> DeviceEvent:
    event = stored.event
    return DeviceEvent(
        received_at=from_epoch_ms(epoch_ms(stored.received_at)),
        device_time=device_moment(event.timestamp),
        action=event.action,
        version_name=event.version_name,
        old_version_name=event.old_version_name,
        platform=event.platform,
        version_os=event.version_os,
        version_build=event.version_build,
        plugin_version=event.plugin_version,
        channel=event.channel if event.channel is not None else event.default_channel,
        custom_id=event.custom_id,
        is_prod=event.is_prod,
        is_emulator=event.is_emulator,
        metadata=event.metadata,
    )


class _Seen:
    """A device's first and last receive time (epoch ms) and its events, as they stream by."""

    __slots__ = ("events", "first", "last")

    def __init__(self, ms: int) -> None:
        self.first = self.last = ms
        self.events = 1

    def add(self, ms: int) -> None:
        self.first = min(self.first, ms)
        self.last = max(self.last, ms)
        self.events += 1

    def row(self, device_id: str) -> DeviceRow:
        return DeviceRow(
            device_id=device_id,
            first_seen=from_epoch_ms(self.first),
            last_seen=from_epoch_ms(self.last),
            events=self.events,
        )


class EventInventory:
    """An `InventorySource` over any backend with the read protocol, computed in Python.

    The reference implementation: the dashboard and ``updater-stats devices`` use it for
    every backend whose read side has no inventory of its own (`MemoryBackend`, a backend
    of yours with ``events()``), and an inventory pushed down must give its answers.

    Args:
        backend: Any object whose ``events()`` follows `SupportsEvents`. It stays the
            caller's: nothing here closes it.
    """

    def __init__(self, backend: SupportsEvents) -> None:
        self._backend = backend

    def __repr__(self) -> str:
        return f"EventInventory({self._backend!r})"

    def _events(self, app_id: str) -> Iterator[StoredEvent]:
        return app_events(self._backend, app_id)

    def apps(self) -> list[str]:
        """Every app with stored events, in order: the first `MAX_APPS` at most."""
        found = {stored.event.app_id for stored in self._backend.events()}
        return sorted(app for app in found if app)[:MAX_APPS]

    def _window(self, query: ReportQuery) -> Iterator[tuple[int, StoredEvent]]:
        """*query*'s events (as the reports select them), each with its event time."""
        for t, _received, stored in window(self._backend, query):
            yield t, stored

    def daily_rates(self, query: ReportQuery) -> list[DayRate]:
        """Per UTC day and version: devices and failed devices, by day, then version."""
        devices: dict[tuple[int, str], set[str]] = defaultdict(set)
        failed: dict[tuple[int, str], set[str]] = defaultdict(set)
        for t, stored in self._window(query):
            event = stored.event
            key = (t // sem.DAY_MS, sem.counted_version(event.version_name))
            devices[key].add(event.device_id)
            if counts_as_failure(event.action, event.plugin_version):
                failed[key].add(event.device_id)
        return [
            DayRate(
                day=day_of(day),
                version=version,
                devices=len(devices[day, version]),
                failed_devices=len(failed.get((day, version), ())),
            )
            for day, version in sorted(devices)
        ]

    def failing_devices(
        self, query: ReportQuery, version: str, *, limit: int = 50, offset: int = 0
    ) -> list[FailingDevice]:
        """The devices `VersionCounts.failed_devices` counts, latest failure first, one page."""
        failures: dict[str, list[int]] = {}  # device -> [failures, latest failure's time]
        for t, stored in self._window(query):
            event = stored.event
            if not counts_as_failure(event.action, event.plugin_version):
                continue
            if sem.counted_version(event.version_name) != version:
                continue
            seen = failures.get(event.device_id)
            if seen is None:
                failures[event.device_id] = [1, t]
            else:
                seen[0] += 1
                seen[1] = max(seen[1], t)
        page = heapq.nsmallest(
            max(offset, 0) + max(limit, 0),
            failures.items(),
            key=lambda item: (-item[1][1], item[0]),
        )[offset:]
        return [
            FailingDevice(device_id=device, failures=n, last_failure=from_epoch_ms(t))
            for device, (n, t) in page
        ]

    def list_devices(
        self, app_id: str, *, after: str | None = None, limit: int = 50
    ) -> list[DeviceRow]:
        """One page of *app_id*'s devices by ``device_id``, those after *after*."""
        if limit <= 0:
            return []
        seen: dict[str, _Seen] = {}
        # Once `limit` devices come before it, a device cannot be on the page: skip it.
        cutoff: str | None = None
        for stored in self._events(app_id):
            device = stored.event.device_id
            if (after is not None and device <= after) or (cutoff is not None and device > cutoff):
                continue
            ms = epoch_ms(stored.received_at)
            known = seen.get(device)
            if known is not None:
                known.add(ms)
                continue
            seen[device] = _Seen(ms)
            if len(seen) > 2 * limit:  # amortised: a sort every `limit` new devices
                kept = sorted(seen)[:limit]
                cutoff = kept[-1]
                seen = {d: seen[d] for d in kept}
        return [seen[d].row(d) for d in sorted(seen)[:limit]]

    def find_devices(
        self,
        app_id: str,
        *,
        device_ids: Collection[str],
        custom_ids: Collection[str],
        limit: int = 50,
    ) -> list[DeviceRow]:
        """Devices of *app_id* with one of *device_ids*, or that sent one of *custom_ids*."""
        wanted_devices, wanted_customs = frozenset(device_ids), frozenset(custom_ids) - {""}
        # A custom_id may come with any of a device's events: every device is counted until
        # the end, when the matches are known.
        seen: dict[str, _Seen] = {}
        matched: set[str] = set()
        for stored in self._events(app_id):
            event = stored.event
            device = event.device_id
            ms = epoch_ms(stored.received_at)
            known = seen.get(device)
            if known is None:
                seen[device] = _Seen(ms)
            else:
                known.add(ms)
            if device in wanted_devices or event.custom_id in wanted_customs:
                matched.add(device)
        return [seen[d].row(d) for d in sorted(matched)[: max(limit, 0)]]

    def device(self, app_id: str, device_id: str) -> DeviceSummary | None:
        """What *device_id* runs now and when it was seen; `None` without events."""
        seen: _Seen | None = None
        latest: StoredEvent | None = None
        running: StoredEvent | None = None
        for stored in self._events(app_id):
            if stored.event.device_id != device_id:
                continue
            ms = epoch_ms(stored.received_at)
            if seen is None:
                seen = _Seen(ms)
            else:
                seen.add(ms)
            # Events stream in storage order: of events alike, the one stored last wins.
            order = _order(stored)
            if latest is None or order >= _order(latest):
                latest = stored
            if stored.event.action in _RUNNING and (running is None or order >= _order(running)):
                running = stored
        if seen is None or latest is None:
            return None
        head = latest.event
        return DeviceSummary(
            app_id=app_id,
            device_id=device_id,
            bundle=None if running is None else sem.counted_version(running.event.version_name),
            platform=head.platform,
            os_version=head.version_os,
            native_version=head.version_build,
            plugin_version=head.plugin_version,
            channel=head.channel if head.channel is not None else head.default_channel,
            custom_id=head.custom_id,
            first_seen=from_epoch_ms(seen.first),
            last_seen=from_epoch_ms(seen.last),
            events=seen.events,
        )

    def timeline(
        self, app_id: str, device_id: str, *, limit: int = 50, offset: int = 0
    ) -> list[DeviceEvent]:
        """One page of *device_id*'s events, newest first (server receive time)."""
        own = (
            item for item in enumerate(self._events(app_id)) if item[1].event.device_id == device_id
        )
        # nlargest keeps offset + limit events, never the device's whole history.
        newest = heapq.nlargest(max(offset, 0) + max(limit, 0), own, key=_newest_first)
        return [_device_event(stored) for _, stored in newest[offset:]]
