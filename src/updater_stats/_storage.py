"""The storage protocols: `StorageBackend` (writing, all a backend needs), and the optional
abilities a backend may add: reading back, report and inventory push-down, deadlines,
erasure, retention, readiness and batching preferences. Each is a `runtime_checkable`
Protocol, and callers find an ability one way only: ``isinstance(backend, SupportsX)``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ._batching import Batching
    from ._counts import (
        ActiveDevices,
        DailyVersionCounts,
        FunnelCounts,
        LatencyCounts,
        RunningGroup,
        VersionCounts,
    )
    from ._devices import DayRate, DeviceEvent, DeviceRow, DeviceSummary, FailingDevice
    from ._models import StoredEvent, WriteResult
    from ._query import ReportQuery

__all__ = [
    "InventorySource",
    "ReportSource",
    "StorageBackend",
    "SupportsBatching",
    "SupportsDeadline",
    "SupportsEvents",
    "SupportsForget",
    "SupportsPing",
    "SupportsPurge",
    "SupportsReportSource",
]


@runtime_checkable
class StorageBackend(Protocol):
    """**Protocol:** where accepted events go.

    Implement it in one small class: nothing else is required.

    `write` must be atomic and durable: when it returns, every event of the
    batch is stored (or was already stored under the same key), because the
    device is told "ok" next and deletes its copy. When it cannot store the
    whole batch it raises (ideally `BackendError`) and stores nothing, and
    the device sends the batch again.

    Events whose `StoredEvent.key` is not `None` are unique by key: a key the
    backend already holds (from an earlier write or earlier in the same
    batch) is skipped and counted in `WriteResult.duplicates`. Events whose
    key is `None` are always stored.

    `write` may be called from several threads at once.
    """

    def write(self, events: Sequence[StoredEvent]) -> WriteResult:
        """Store *events* atomically; report how many were new and how many duplicates."""
        ...

    def close(self) -> None:
        """Release connections and files. Called once, when the collector closes."""
        ...


@runtime_checkable
class SupportsForget(Protocol):
    """**Protocol:** a backend that can erase every event of a device or a user.

    Values are compared with what is stored: with pseudonymisation on, that is
    the pseudonym; `Collector.forget` and ``updater-stats forget`` take the raw
    id and pass both forms.
    """

    def forget(
        self,
        *,
        device_ids: Collection[str] = (),
        custom_ids: Collection[str] = (),
        app_id: str | None = None,
    ) -> int:
        """Delete every event whose ``device_id`` is in *device_ids* or whose ``custom_id``
        is in *custom_ids*, of the app *app_id* only when given; return how many were
        deleted. Later writes of the same events store them anew: nothing remembers their
        keys. Callers pass *app_id* only when they scope to an app, so a backend written
        before it existed still serves unscoped calls."""
        ...


@runtime_checkable
class SupportsPurge(Protocol):
    """**Protocol:** a backend that can delete old events (retention)."""

    def purge(self, *, older_than: dt.datetime, app_id: str | None = None) -> int:
        """Delete every event received (server clock) before *older_than*, of the app
        *app_id* only when given; return how many. *app_id* is passed only when given, as
        for `SupportsForget.forget`."""
        ...


@runtime_checkable
class SupportsDeadline(Protocol):
    """**Protocol:** a backend that can bound a write in time.

    The collector answers every request within its deadline whatever the
    backend does: a write still running then is answered 503 without waiting
    for it, and may still commit (see the reliability page). A backend with
    `write_by` keeps that from happening: it stops waiting (for a lock, a
    connection, the server) before *deadline* and fails the write, storing
    nothing, so that the 503 means "not stored".
    """

    def write_by(self, events: Sequence[StoredEvent], deadline: float) -> WriteResult:
        """`StorageBackend.write`, done by *deadline* (a `time.monotonic` value) or not at all.

        Raise `BackendError` (and store nothing) rather than wait past it.
        """
        ...


@runtime_checkable
class SupportsPing(Protocol):
    """**Protocol:** a backend that can tell whether it is ready (``/healthz``, ``serve``)."""

    def ping(self) -> None:
        """Return when the store answers; raise `BackendError` when it does not."""
        ...


@runtime_checkable
class SupportsBatching(Protocol):
    """**Protocol:** a backend that prefers its own batching (few large writes, say).

    `Collector(batching=...)` overrides it.
    """

    @property
    def batching(self) -> Batching:
        """How the collector should group requests into this backend's writes."""
        ...


@runtime_checkable
class SupportsEvents(Protocol):
    """**Protocol:** the read protocol: a backend that streams the events it holds.

    Every built-in backend implements it, and any backend that does gets every
    report, ``gate``, ``export``, ``copy``, ``devices`` and the dashboard (computed
    in Python by `updater_stats.reports.EventReportSource` and
    `updater_stats.reports.EventInventory` unless the backend pushes the work down,
    see `ReportSource` and `InventorySource`).

    ``events()`` yields `StoredEvent` values in storage order, reading in
    chunks, never the whole store at once. With *app_id*, only that app's
    events; with *since* (an aware datetime), only events the server received
    at or after it (`StoredEvent.received_at`).
    """

    def events(
        self, *, app_id: str | None = None, since: dt.datetime | None = None
    ) -> Iterator[StoredEvent]:
        """Every stored event in storage order: of *app_id* only, and received at or after
        *since* (an aware datetime; the bound is inclusive) only, when given. Callers pass
        *since* only when they bound the time, so a backend written before it existed
        still serves the others."""
        ...


@runtime_checkable
class ReportSource(Protocol):
    """**Protocol:** the push-down protocol: raw report counts computed where the events are.

    Optional: a backend with the read protocol (`SupportsEvents`) is reported
    on already, by the reference implementation in Python. One that can count
    faster where the events are implements these six questions itself (or
    hands out an object that does, `SupportsReportSource`), and must give the
    same answers as the reference: ``updater_stats.testing.ReportsContract``
    checks it. Each method returns plain counts for the events `query` selects, under the
    semantics in ``docs/reports.md`` (event time, counted version, failures,
    running versions); `Reports` derives rates, intervals, shares and
    verdicts from them, so no backend does arithmetic of its own. Rows may
    come in any order.
    """

    def version_counts(self, query: ReportQuery) -> Sequence[VersionCounts]:
        """One row per version with any event, or named as a replaced or rolled-back version."""
        ...

    def funnel_counts(self, query: ReportQuery) -> Sequence[FunnelCounts]:
        """One row per version at least one device started downloading."""
        ...

    def running_versions(self, query: ReportQuery) -> Sequence[RunningGroup]:
        """Each device's latest running-version event, grouped by its values."""
        ...

    def active_devices(self, query: ReportQuery) -> ActiveDevices:
        """Distinct devices with any event, in all and per UTC day."""
        ...

    def download_latency(self, query: ReportQuery) -> Sequence[LatencyCounts]:
        """Download duration percentiles per version with at least one sample."""
        ...

    def daily_counts(self, query: ReportQuery) -> Sequence[DailyVersionCounts]:
        """Installs, failures, running devices, devices and failed devices per UTC day and
        version (the chart's failure rate needs the last two; left at 0, it is not drawn)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class SupportsReportSource(Protocol):
    """**Protocol:** a backend that hands out its own `ReportSource`: the built-in SQL
    backends, whose report queries run on a connection of their own so that reading
    never stands in the way of writing."""

    def report_source(self) -> ReportSource:
        """A new `ReportSource` over this backend's events; the caller closes it."""
        ...


@runtime_checkable
class InventorySource(Protocol):
    """**Protocol:** the device inventory's push-down: the questions of the dashboard's device
    and version pages and of ``updater-stats devices`` that are not report figures, answered
    where the events are.

    Optional, like `ReportSource`: a backend with the read protocol (`SupportsEvents`) gets
    the inventory already, from `updater_stats.reports.EventInventory` in Python. A read
    side that answers faster implements these seven questions (the built-in SQL backends'
    `ReportSource` does, in SQL) and must give the reference's answers. Ids are compared
    as stored (pseudonyms when the intake pseudonymises) and text is ordered by code point;
    a page is at most *limit* rows after the first *offset*. Times are whole milliseconds.
    """

    def apps(self) -> Sequence[str]:
        """Every ``app_id`` with stored events but ``""``, in order: the first 500 at most."""
        ...

    def daily_rates(self, query: ReportQuery) -> Sequence[DayRate]:
        """Per UTC day (of event time) and version, among *query*'s events: devices and
        failed devices, as `ReportSource.version_counts` counts them for that day alone. Rows
        may come in any order."""
        ...

    def failing_devices(
        self, query: ReportQuery, version: str, *, limit: int, offset: int = 0
    ) -> Sequence[FailingDevice]:
        """One page of the devices `VersionCounts.failed_devices` counts for *version* among
        *query*'s events: each with its failure events and the event time of the latest;
        latest failure first, then by ``device_id``."""
        ...

    def list_devices(
        self, app_id: str, *, after: str | None = None, limit: int
    ) -> Sequence[DeviceRow]:
        """The first *limit* devices of *app_id* by ``device_id``, those after *after* when
        given; each with its first and last receive time and its events, of all time."""
        ...

    def find_devices(
        self,
        app_id: str,
        *,
        device_ids: Collection[str],
        custom_ids: Collection[str],
        limit: int,
    ) -> Sequence[DeviceRow]:
        """The devices of *app_id* whose ``device_id`` is one of *device_ids*, or that sent
        a (non-empty) ``custom_id`` among *custom_ids*, as `list_devices` gives them."""
        ...

    def device(self, app_id: str, device_id: str) -> DeviceSummary | None:
        """What *device_id* of *app_id* runs now and when it was seen; `None` without events.

        Its latest event is the last by receive time, then device time; events alike in
        both are equally latest, and any of them may be the one.
        """
        ...

    def timeline(
        self, app_id: str, device_id: str, *, limit: int, offset: int = 0
    ) -> Sequence[DeviceEvent]:
        """One page of *device_id*'s events, newest first: by receive time, then device time,
        events without one after those with one; events alike in both in any order."""
        ...
