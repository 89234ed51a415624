"""Everything the dashboard and ``updater-stats devices`` read, in one place, without the
dashboard's own dependencies.

Per-version figures come from `updater_stats.reports` (`Reports`), so a page shows what
``updater-stats report`` prints. The device inventory, and the daily failure rates and
failing devices of a version, come from an `InventorySource`: the read side's own when it
has one (the built-in SQL backends answer in SQL, on the reports' connection), else
`EventInventory` over the backend's events. Nothing here knows how a store is read.
"""

from __future__ import annotations

from collections.abc import Iterable

from ._counts import DailyVersionCounts
from ._devices import DayRate, DeviceEvent, DeviceRow, DeviceSummary, FailingDevice
from ._storage import InventorySource, StorageBackend, SupportsEvents
from .backends import backend_from_url
from .backends.sqlite import SQLiteReports
from .exceptions import ConfigurationError
from .privacy import Privacy, normalize_device_id
from .reports import (
    ActiveDevices,
    AdoptionReport,
    EventInventory,
    FunnelReport,
    LatencyCounts,
    ReportQuery,
    Reports,
    VersionReport,
    open_reports,
    reports_for,
)

__all__ = ["DashboardData", "day_rates"]


def day_rates(daily: Iterable[DailyVersionCounts]) -> list[DayRate]:
    """The failure rates in `Reports.daily`'s rows (`InventorySource.daily_rates`' figures,
    by the contracts of both), by day, then version."""
    rates = [
        DayRate(day=c.day, version=c.version, devices=c.devices, failed_devices=c.failed_devices)
        for c in daily
    ]
    return sorted(rates, key=lambda r: (r.day, r.version))


def _inventory_of(reports: Reports, backend: object) -> InventorySource:
    """The read side's own inventory, the backend's, or the reference over its events."""
    if isinstance(reports.source, InventorySource):
        return reports.source
    if isinstance(backend, InventorySource):
        return backend
    if isinstance(backend, SupportsEvents):
        return EventInventory(backend)
    raise ConfigurationError(
        f"{type(backend).__name__} has no device inventory: it implements neither "
        "InventorySource nor the read protocol (events())",
        code="no_read_side",
    )


class DashboardData:
    """The figures the dashboard shows, over one storage, read only.

    Args:
        reports: The `Reports` to read through (`open_reports`/`reports_for` make one).
        inventory: Where the device inventory comes from; default: the reports' own
            `ReportSource`, which must then be an `InventorySource` (the built-in SQL
            backends' is). `open` picks `EventInventory` for a backend without one.
        privacy: How the intake stores ids: a search hashes what is typed the same way.

    Raises:
        ConfigurationError: no *inventory*, and the reports' source is no `InventorySource`.
    """

    def __init__(
        self,
        reports: Reports,
        *,
        inventory: InventorySource | None = None,
        privacy: Privacy | None = None,
    ) -> None:
        if inventory is None:
            source = reports.source
            if not isinstance(source, InventorySource):
                raise ConfigurationError(
                    f"{type(source).__name__} has no device inventory: pass one as inventory=",
                    code="no_read_side",
                )
            inventory = source
        self.reports = reports
        self.inventory = inventory
        self.privacy = privacy
        self._owned: StorageBackend | None = None

    @classmethod
    def open(
        cls, storage: object, *, privacy: Privacy | None = None, summaries: bool = False
    ) -> DashboardData:
        """Over a storage URL or a backend (never writing to the store).

        A URL's store is read through its read side when that has an inventory (the
        built-in SQL backends), else through the backend it names, opened here and closed
        by `close`; a backend passed in stays the caller's. With *summaries*, an SQLite
        file's reports over whole days come from its day summaries (``<file>-summaries``,
        see `SQLiteReports.keep_summaries`).
        """
        if not isinstance(storage, str):
            data = cls._over(storage, privacy)
        else:
            data = cls._open_url(storage, privacy)
        if summaries and isinstance(data.reports.source, SQLiteReports):
            data.reports.source.keep_summaries()
        return data

    @classmethod
    def _open_url(cls, storage: str, privacy: Privacy | None) -> DashboardData:
        reports = open_reports(storage)
        if isinstance(reports.source, InventorySource):
            return cls(reports, privacy=privacy)
        # Computed in Python: the reports and the inventory read one backend, ours to close.
        reports.close()
        backend = backend_from_url(storage)
        try:
            return cls._over(backend, privacy, owned=backend)
        except BaseException:
            backend.close()
            raise

    @classmethod
    def _over(
        cls, backend: object, privacy: Privacy | None, *, owned: StorageBackend | None = None
    ) -> DashboardData:
        reports = reports_for(backend)
        try:
            inventory = _inventory_of(reports, backend)
        except ConfigurationError:
            reports.close()
            raise
        data = cls(reports, inventory=inventory, privacy=privacy)
        data._owned = owned
        return data

    @property
    def side_by_side(self) -> bool:
        """Whether several reports may be read at once, from several threads, to the gain of
        a page: SQLite's day summaries read each on a connection of its own."""
        source = self.reports.source
        return isinstance(source, SQLiteReports) and source.keeps_summaries

    def close(self) -> None:
        """Close the read connection, and the backend `open` opened for a URL."""
        self.reports.close()
        if self._owned is not None:
            self._owned.close()

    # --- reports -----------------------------------------------------------------------------

    def apps(self) -> list[str]:
        """Every app with stored events, by name (`InventorySource.apps`)."""
        return list(self.inventory.apps())

    def versions(self, query: ReportQuery) -> list[VersionReport]:
        """`Reports.versions`."""
        return self.reports.versions(query)

    def version(self, query: ReportQuery, version: str) -> VersionReport:
        """`Reports.version`."""
        return self.reports.version(query, version)

    def adoption(self, query: ReportQuery) -> AdoptionReport:
        """`Reports.adoption`."""
        return self.reports.adoption(query)

    def active(self, query: ReportQuery) -> ActiveDevices:
        """`Reports.active_devices`."""
        return self.reports.active_devices(query)

    def daily(self, query: ReportQuery) -> list[DailyVersionCounts]:
        """`Reports.daily`."""
        return self.reports.daily(query)

    def funnel(self, query: ReportQuery) -> list[FunnelReport]:
        """`Reports.funnel`."""
        return self.reports.funnel(query)

    def latency(self, query: ReportQuery) -> list[LatencyCounts]:
        """`Reports.download_latency`."""
        return self.reports.download_latency(query)

    def daily_rates(self, query: ReportQuery) -> list[DayRate]:
        """Per UTC day and version: devices and failed devices, as `Reports.versions` counts
        them for that day alone. By day, then version."""
        return sorted(self.inventory.daily_rates(query), key=lambda r: (r.day, r.version))

    def failing_devices(
        self, query: ReportQuery, version: str, *, limit: int = 50, offset: int = 0
    ) -> list[FailingDevice]:
        """The devices `VersionReport.failed_devices` counts, latest failure first, one page."""
        return list(self.inventory.failing_devices(query, version, limit=limit, offset=offset))

    # --- devices -----------------------------------------------------------------------------

    def stored_ids(self, typed: str) -> tuple[list[str], list[str]]:
        """The ``device_id`` and ``custom_id`` values *typed* may be stored as.

        With pseudonymisation on, the pseudonym the intake stores; the text itself too, for
        events stored before it was turned on (as ``updater-stats forget`` does).
        """
        text = typed.strip()
        devices = {normalize_device_id(text), text}  # never "": callers search non-empty text
        customs = {text}
        if self.privacy is not None:
            devices.add(self.privacy.stored_device_id(text))
            stored = self.privacy.stored_custom_id(text)
            if stored is not None:
                customs.add(stored)
        return sorted(devices), sorted(customs)

    def search_devices(self, app_id: str, typed: str, *, limit: int = 50) -> list[DeviceRow]:
        """Devices of *app_id* whose ``device_id`` or ``custom_id`` is *typed* (exactly)."""
        device_ids, custom_ids = self.stored_ids(typed)
        return list(
            self.inventory.find_devices(
                app_id, device_ids=device_ids, custom_ids=custom_ids, limit=limit
            )
        )

    def list_devices(
        self, app_id: str, *, after: str | None = None, limit: int = 50
    ) -> list[DeviceRow]:
        """One page of *app_id*'s devices by ``device_id``, those after *after*."""
        return list(self.inventory.list_devices(app_id, after=after, limit=limit))

    def device(self, app_id: str, device_id: str) -> DeviceSummary | None:
        """What *device_id* runs now and when it was seen; `None` without events."""
        return self.inventory.device(app_id, device_id)

    def timeline(
        self, app_id: str, device_id: str, *, limit: int = 50, offset: int = 0
    ) -> list[DeviceEvent]:
        """One page of *device_id*'s events, newest first (server receive time)."""
        return list(self.inventory.timeline(app_id, device_id, limit=limit, offset=offset))
