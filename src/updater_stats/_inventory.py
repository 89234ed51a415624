"""Everything the dashboard and ``updater-stats devices`` read, in one place (the device
inventory among it), without the dashboard's own dependencies.

Per-version figures come from `updater_stats.reports` (`Reports`), so a page shows what
``updater-stats report`` prints. The device inventory, the daily failure rates and the
failing devices of a version are a few more aggregate queries, run through the same
read-side connection and over the same event window (`ReportQuery`): each returns a page of
rows, never every event. When the public read protocol exists, this module is the one to
point at it.
"""

# ruff: noqa: S608 - SQL text is built from constants and the reports' own builder; values
# always travel as parameters.

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import attrs

from . import _semantics as sem
from .backends._sql import SQLReportSource, day_of
from .exceptions import ConfigurationError
from .privacy import Privacy, normalize_device_id
from .reports import (
    ActiveDevices,
    AdoptionReport,
    DailyVersionCounts,
    FunnelReport,
    LatencyCounts,
    ReportQuery,
    Reports,
    VersionReport,
    open_reports,
    reports_for,
)

__all__ = ["DashboardData", "DayRate", "DeviceEvent", "DeviceRow", "DeviceSummary"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
#: Apps listed at most: a store serves a handful; this only bounds a pathological one.
MAX_APPS = 500


def _moment(ms: Any) -> dt.datetime | None:
    return None if ms is None else _EPOCH + dt.timedelta(milliseconds=int(ms))


@attrs.frozen(kw_only=True)
class DayRate:
    """One UTC day of one version: devices seen on it and those of them that saw a failure."""

    day: dt.date
    version: str
    devices: int
    failed_devices: int

    @property
    def rate(self) -> float | None:
        """``failed_devices / devices``, or `None` without devices."""
        return self.failed_devices / self.devices if self.devices else None


@attrs.frozen(kw_only=True)
class DeviceRow:
    """One device in a list: when it was first and last seen (server clock) and its events."""

    device_id: str
    first_seen: dt.datetime
    last_seen: dt.datetime
    events: int


@attrs.frozen(kw_only=True)
class FailingDevice:
    """A device that saw a failure on a version: how many, and the latest one's time."""

    device_id: str
    failures: int
    last_failure: dt.datetime


@attrs.frozen(kw_only=True)
class DeviceEvent:
    """One stored event of a device, as the timeline shows it."""

    received_at: dt.datetime
    device_time: dt.datetime | None
    action: str
    version_name: str
    old_version_name: str | None
    platform: str | None
    version_os: str | None
    version_build: str | None
    plugin_version: str | None
    channel: str | None
    custom_id: str | None
    is_prod: bool
    is_emulator: bool
    metadata: dict[str, Any] | None


@attrs.frozen(kw_only=True)
class DeviceSummary:
    """What a device runs now and when it was seen, from its stored events.

    Attributes:
        bundle: The version of its latest running-version event (its current bundle).
        platform, os_version, native_version, plugin_version, channel, custom_id: From its
            latest event.
    """

    app_id: str
    device_id: str
    bundle: str | None
    platform: str | None
    os_version: str | None
    native_version: str | None
    plugin_version: str | None
    channel: str | None
    custom_id: str | None
    first_seen: dt.datetime
    last_seen: dt.datetime
    events: int


_EVENT_COLUMNS = (
    "action, version_name, old_version_name, platform, version_os, version_build, "
    "plugin_version, COALESCE(channel, default_channel), custom_id, is_prod, is_emulator, metadata"
)


class DashboardData:
    """The figures the dashboard shows, over one storage, read only.

    Args:
        reports: The `Reports` to read through (`open_reports`/`reports_for` make one).
        privacy: How the intake stores ids: a search hashes what is typed the same way.
    """

    def __init__(self, reports: Reports, *, privacy: Privacy | None = None) -> None:
        source = reports.source
        if not isinstance(source, SQLReportSource):
            # The reports of other backends (the reference implementation's among them) have
            # no SQL to run the inventory's queries on, yet.
            reports.close()
            raise ConfigurationError(
                f"the dashboard reads SQL storage, not {type(source).__name__}",
                code="no_read_side",
            )
        self.reports = reports
        self.privacy = privacy
        self._source = source
        self._sql = source._sql  # noqa: SLF001 - the reports' own query builder, same package
        self._table = self._sql._table  # noqa: SLF001
        self._d = self._sql.dialect

    @classmethod
    def open(cls, storage: object, *, privacy: Privacy | None = None) -> DashboardData:
        """Over a storage URL or a backend (never writing to it)."""
        reports = open_reports(storage) if isinstance(storage, str) else reports_for(storage)
        return cls(reports, privacy=privacy)

    def close(self) -> None:
        """Close the read connection."""
        self.reports.close()

    # --- plumbing ----------------------------------------------------------------------------

    def _fetch(self, sql: str, params: list[Any]) -> Sequence[Sequence[Any]]:
        return self._source._fetch((sql, params))  # noqa: SLF001

    def _param(self, params: list[Any], value: Any) -> str:
        params.append(self._d.encode(value) if isinstance(value, str) else value)
        return self._d.placeholder(len(params) - 1, value)

    def _text(self, value: Any) -> str | None:
        return None if value is None else self._d.decode(value)

    def _metadata(self, value: Any) -> dict[str, Any] | None:
        if value is None:
            return None
        if isinstance(value, (bytes, str)):
            text = self._d.decode(value)
            if not text:
                return None
            loaded = json.loads(text)
            return loaded if isinstance(loaded, dict) else {"": loaded}
        if isinstance(value, dict):
            return {self._d.decode(k): self._d.decode(v) for k, v in value.items()} or None
        return None

    # --- reports -----------------------------------------------------------------------------

    def apps(self) -> list[str]:
        """Every app with stored events, by name: one index probe per app."""
        found: list[str] = []
        while len(found) < MAX_APPS:
            params: list[Any] = []
            where = f"WHERE app_id > {self._param(params, found[-1])}" if found else ""
            rows = self._fetch(f"SELECT MIN(app_id) FROM {self._table} {where}", params)
            if not rows or rows[0][0] is None:
                break
            name = self._text(rows[0][0])
            if name is None or name == "":
                break
            found.append(name)
        return found

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
        params: list[Any] = []
        sql = self._sql._window(query, params)  # noqa: SLF001
        fail = self._sql._failure(self._source._failing_plugins(query), params)  # noqa: SLF001
        day = self._d.int_div("t", str(sem.DAY_MS))
        sql += (
            f"SELECT {day} AS day, version, COUNT(DISTINCT device_id), "
            f"COUNT(DISTINCT CASE WHEN {fail} THEN device_id END) FROM w GROUP BY day, version"
        )
        rates = [
            DayRate(
                day=day_of(d),
                version=self._text(v) or "",
                devices=int(n),
                failed_devices=int(f),
            )
            for d, v, n, f in self._fetch(sql, params)
        ]
        return sorted(rates, key=lambda r: (r.day, r.version))

    def failing_devices(
        self, query: ReportQuery, version: str, *, limit: int = 50, offset: int = 0
    ) -> list[FailingDevice]:
        """The devices `VersionReport.failed_devices` counts, latest failure first, one page."""
        params: list[Any] = []
        sql = self._sql._window(query, params)  # noqa: SLF001
        fail = self._sql._failure(self._source._failing_plugins(query), params)  # noqa: SLF001
        marker = self._param(params, version)
        o = self._d.text_order
        sql += (
            f"SELECT device_id, COUNT(*), MAX(t) AS last FROM w WHERE {fail} AND "
            f"version = {marker} GROUP BY device_id ORDER BY last DESC, device_id{o} "
            f"LIMIT {int(limit)} OFFSET {int(offset)}"
        )
        return [
            FailingDevice(
                device_id=self._text(d) or "", failures=int(n), last_failure=_moment(t) or _EPOCH
            )
            for d, n, t in self._fetch(sql, params)
        ]

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

    def _device_rows(self, where: str, params: list[Any], limit: int) -> list[DeviceRow]:
        received = self._d.received_ms
        o = self._d.text_order
        sql = (
            f"SELECT device_id, MIN({received}), MAX({received}), COUNT(*) FROM {self._table} "
            f"WHERE {where} GROUP BY device_id ORDER BY device_id{o} LIMIT {int(limit)}"
        )
        return [
            DeviceRow(
                device_id=self._text(d) or "",
                first_seen=_moment(first) or _EPOCH,
                last_seen=_moment(last) or _EPOCH,
                events=int(n),
            )
            for d, first, last, n in self._fetch(sql, params)
        ]

    def search_devices(self, app_id: str, typed: str, *, limit: int = 50) -> list[DeviceRow]:
        """Devices of *app_id* whose ``device_id`` or ``custom_id`` is *typed* (exactly)."""
        device_ids, custom_ids = self.stored_ids(typed)
        # Placeholders are numbered in the order they appear: build the text in that order.
        params: list[Any] = []
        where = f"app_id = {self._param(params, app_id)} AND device_id IN ("
        # Two index probes, not one OR over the whole app: (app_id, device_id) and
        # (app_id, custom_id) each serve their half.
        where += f"SELECT device_id FROM {self._table} WHERE app_id = "
        where += f"{self._param(params, app_id)} AND device_id IN ("
        where += ", ".join(self._param(params, v) for v in device_ids)
        where += f") UNION ALL SELECT device_id FROM {self._table} WHERE app_id = "
        # The two NULL and "" terms let SQLite use its partial index on (app_id, custom_id).
        where += f"{self._param(params, app_id)} AND custom_id IS NOT NULL AND custom_id <> '' "
        where += "AND custom_id IN ("
        where += ", ".join(self._param(params, v) for v in custom_ids) + "))"
        return self._device_rows(where, params, limit)

    def list_devices(
        self, app_id: str, *, after: str | None = None, limit: int = 50
    ) -> list[DeviceRow]:
        """One page of *app_id*'s devices by ``device_id``, those after *after*."""
        params: list[Any] = []
        where = f"app_id = {self._param(params, app_id)}"
        if after is not None:
            where += f" AND device_id > {self._param(params, after)}"
        return self._device_rows(where, params, limit)

    def device(self, app_id: str, device_id: str) -> DeviceSummary | None:
        """What *device_id* runs now and when it was seen; `None` without events."""
        params: list[Any] = []
        key = f"app_id = {self._param(params, app_id)} AND device_id = "
        key += self._param(params, device_id)
        received = self._d.received_ms
        rows = self._fetch(
            f"SELECT MIN({received}), MAX({received}), COUNT(*) FROM {self._table} WHERE {key}",
            params,
        )
        if not rows or not rows[0][2]:
            return None
        first, last, count = rows[0]
        latest = self._events(key, list(params), limit=1, offset=0)
        running = ", ".join(f"'{a.value}'" for a in sorted(sem.RUNNING))
        current = self._events(f"{key} AND action IN ({running})", list(params), 1, 0)
        head = latest[0]
        return DeviceSummary(
            app_id=app_id,
            device_id=device_id,
            bundle=sem.counted_version(current[0].version_name) if current else None,
            platform=head.platform,
            os_version=head.version_os,
            native_version=head.version_build,
            plugin_version=head.plugin_version,
            channel=head.channel,
            custom_id=head.custom_id,
            first_seen=_moment(first) or _EPOCH,
            last_seen=_moment(last) or _EPOCH,
            events=int(count),
        )

    def _events(self, where: str, params: list[Any], limit: int, offset: int) -> list[DeviceEvent]:
        received = self._d.received_ms
        sql = (
            f"SELECT {received}, device_ts, {_EVENT_COLUMNS} FROM {self._table} WHERE {where} "
            f"ORDER BY received_at DESC, device_ts DESC LIMIT {int(limit)} OFFSET {int(offset)}"
        )
        text = self._text
        return [
            DeviceEvent(
                received_at=_moment(r[0]) or _EPOCH,
                device_time=_moment(r[1]),
                action=text(r[2]) or "",
                version_name=text(r[3]) or "",
                old_version_name=text(r[4]),
                platform=text(r[5]),
                version_os=text(r[6]),
                version_build=text(r[7]),
                plugin_version=text(r[8]),
                channel=text(r[9]),
                custom_id=text(r[10]),
                is_prod=bool(r[11]),
                is_emulator=bool(r[12]),
                metadata=self._metadata(r[13]),
            )
            for r in self._fetch(sql, params)
        ]

    def timeline(
        self, app_id: str, device_id: str, *, limit: int = 50, offset: int = 0
    ) -> list[DeviceEvent]:
        """One page of *device_id*'s events, newest first (server receive time)."""
        params: list[Any] = []
        where = f"app_id = {self._param(params, app_id)} AND device_id = "
        where += self._param(params, device_id)
        return self._events(where, params, limit, offset)
