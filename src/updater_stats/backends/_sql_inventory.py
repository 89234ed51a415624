"""The device inventory (`InventorySource`) in SQL, for every SQL read side.

`SQLReportSource` inherits it, so one connection and one query builder answer both the
reports and the inventory. Each question is a few index probes or one aggregate over the
report window, and returns a page of rows, never every event.
"""

# ruff: noqa: S608 - SQL text is built from constants and the reports' own builder; values
# always travel as parameters.

from __future__ import annotations

import abc
import json
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from .. import _semantics as sem
from .._devices import (
    MAX_APPS,
    DayRate,
    DeviceEvent,
    DeviceRow,
    DeviceSummary,
    FailingDevice,
    device_moment,
)
from .._epoch import day_of, from_epoch_ms

if TYPE_CHECKING:
    from .._query import ReportQuery
    from ._sql import QueryBuilder, Rows, Statement

_EVENT_COLUMNS = (
    "action, version_name, old_version_name, platform, version_os, version_build, "
    "plugin_version, COALESCE(channel, default_channel), custom_id, is_prod, is_emulator, metadata"
)
# Only our own enum values are inlined, never user text.
_RUNNING = "(" + ", ".join(f"'{a.value}'" for a in sorted(sem.RUNNING)) + ")"


class SQLInventory(abc.ABC):
    """The seven `InventorySource` questions as SQL over the events table of `_sql`."""

    _sql: QueryBuilder

    @abc.abstractmethod
    def _fetch(self, statement: Statement) -> Rows:
        """Run one statement and return all its rows."""

    @abc.abstractmethod
    def _failing_plugins(self, query: ReportQuery) -> list[str]:
        """The plugin versions whose `download_fail` events are failures, as stored."""

    def _param(self, params: list[Any], value: Any) -> str:
        d = self._sql.dialect
        params.append(d.encode(value) if isinstance(value, str) else value)
        return d.placeholder(len(params) - 1, value)

    def _decoded(self, value: Any) -> str | None:
        return None if value is None else self._sql.dialect.decode(value)

    def _metadata(self, value: Any) -> dict[str, Any] | None:
        decode = self._sql.dialect.decode
        if value is None:
            return None
        if isinstance(value, (bytes, str)):
            text = decode(value)
            if not text:
                return None
            loaded = json.loads(text)
            return loaded if isinstance(loaded, dict) else {"": loaded}
        if isinstance(value, dict):
            return {decode(k): decode(v) for k, v in value.items()}
        return None

    def apps(self) -> list[str]:
        """Every app with stored events, by name: one index probe per app."""
        found: list[str] = []
        # From "" on: an app_id "" has no page, and ClickHouse's MIN of no rows is "".
        last = ""
        while len(found) < MAX_APPS:
            params: list[Any] = []
            where = f"WHERE app_id > {self._param(params, last)}"
            rows = self._fetch((f"SELECT MIN(app_id) FROM {self._sql.table} {where}", params))
            last = (self._decoded(rows[0][0]) or "") if rows else ""
            if not last:
                break
            found.append(last)
        # Code point order on every database, whatever a PostgreSQL database's collation.
        return sorted(found)

    def daily_rates(self, query: ReportQuery) -> list[DayRate]:
        """Per UTC day and version: devices and failed devices, by day, then version."""
        params: list[Any] = []
        sql = self._sql.window(query, params)
        fail = self._sql.failure(self._failing_plugins(query), params)
        day = self._sql.utc_day("t")
        sql += (
            f"SELECT {day} AS day, version, COUNT(DISTINCT device_id), "
            f"COUNT(DISTINCT CASE WHEN {fail} THEN device_id END) FROM w GROUP BY day, version"
        )
        rates = [
            DayRate(
                day=day_of(d),
                version=self._decoded(v) or "",
                devices=int(n),
                failed_devices=int(f),
            )
            for d, v, n, f in self._fetch((sql, params))
        ]
        return sorted(rates, key=lambda r: (r.day, r.version))

    def failing_devices(
        self, query: ReportQuery, version: str, *, limit: int = 50, offset: int = 0
    ) -> list[FailingDevice]:
        """The devices `VersionCounts.failed_devices` counts, latest failure first, one page."""
        params: list[Any] = []
        sql = self._sql.window(query, params)
        fail = self._sql.failure(self._failing_plugins(query), params)
        marker = self._param(params, version)
        o = self._sql.dialect.text_order
        sql += (
            f"SELECT device_id, COUNT(*), MAX(t) AS last FROM w WHERE {fail} AND "
            f"version = {marker} GROUP BY device_id ORDER BY last DESC, device_id{o} "
            f"LIMIT {int(limit)} OFFSET {int(offset)}"
        )
        return [
            FailingDevice(
                device_id=self._decoded(d) or "",
                failures=int(n),
                last_failure=from_epoch_ms(int(t)),
            )
            for d, n, t in self._fetch((sql, params))
        ]

    def _device_rows(self, where: str, params: list[Any], limit: int) -> list[DeviceRow]:
        received = self._sql.dialect.received_ms
        o = self._sql.dialect.text_order
        sql = (
            f"SELECT device_id, MIN({received}), MAX({received}), COUNT(*) FROM {self._sql.table} "
            f"WHERE {where} GROUP BY device_id ORDER BY device_id{o} LIMIT {int(limit)}"
        )
        return [
            DeviceRow(
                device_id=self._decoded(d) or "",
                first_seen=from_epoch_ms(int(first)),
                last_seen=from_epoch_ms(int(last)),
                events=int(n),
            )
            for d, first, last, n in self._fetch((sql, params))
        ]

    def find_devices(
        self,
        app_id: str,
        *,
        device_ids: Collection[str],
        custom_ids: Collection[str],
        limit: int = 50,
    ) -> list[DeviceRow]:
        """Devices of *app_id* with one of *device_ids*, or that sent one of *custom_ids*."""
        table = self._sql.table
        # Placeholders are numbered in the order they appear: build the text in that order.
        params: list[Any] = []
        where = f"app_id = {self._param(params, app_id)} AND device_id IN ("
        # Two index probes, not one OR over the whole app: (app_id, device_id) and
        # (app_id, custom_id) each serve their half. An empty list is one NULL: never equal.
        where += f"SELECT device_id FROM {table} WHERE app_id = "
        where += f"{self._param(params, app_id)} AND device_id IN ("
        where += ", ".join(self._param(params, v) for v in sorted(device_ids)) or "NULL"
        where += f") UNION ALL SELECT device_id FROM {table} WHERE app_id = "
        # The two NULL and "" terms let SQLite use its partial index on (app_id, custom_id).
        where += f"{self._param(params, app_id)} AND custom_id IS NOT NULL AND custom_id <> '' "
        where += "AND custom_id IN ("
        where += (", ".join(self._param(params, v) for v in sorted(custom_ids)) or "NULL") + "))"
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
        received = self._sql.dialect.received_ms
        seen = f"SELECT MIN({received}), MAX({received}), COUNT(*) FROM {self._sql.table}"
        rows = self._fetch((f"{seen} WHERE {key}", params))
        if not rows or not rows[0][2]:
            return None
        first, last, count = rows[0]
        latest = self._events(key, list(params), limit=1, offset=0)
        current = self._events(f"{key} AND action IN {_RUNNING}", list(params), 1, 0)
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
            first_seen=from_epoch_ms(int(first)),
            last_seen=from_epoch_ms(int(last)),
            events=int(count),
        )

    def _events(self, where: str, params: list[Any], limit: int, offset: int) -> list[DeviceEvent]:
        d = self._sql.dialect
        sql = (
            f"SELECT {d.received_ms}, device_ts, {_EVENT_COLUMNS} FROM {self._sql.table} "
            f"WHERE {where} ORDER BY received_at DESC, device_ts DESC{d.nulls_last} "
            f"LIMIT {int(limit)} OFFSET {int(offset)}"
        )
        text = self._decoded
        return [
            DeviceEvent(
                received_at=from_epoch_ms(int(r[0])),
                device_time=device_moment(None if r[1] is None else int(r[1])),
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
            for r in self._fetch((sql, params))
        ]

    def timeline(
        self, app_id: str, device_id: str, *, limit: int = 50, offset: int = 0
    ) -> list[DeviceEvent]:
        """One page of *device_id*'s events, newest first (server receive time)."""
        params: list[Any] = []
        where = f"app_id = {self._param(params, app_id)} AND device_id = "
        where += self._param(params, device_id)
        return self._events(where, params, limit, offset)
