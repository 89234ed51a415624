"""The reports, read from the day summaries' tables (see `_summary_tables`).

`SummaryReports` answers every `ReportSource` question over whole UTC days, and the
inventory's daily rates and failing devices, from the tables; `DaySummaries` gives it the
file and the events table to read.
"""

# ruff: noqa: S608 - SQL text is built from our own column names and integers only.

from __future__ import annotations

import abc
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from ... import _semantics as sem
from ..._counts import (
    ActiveDevices,
    DailyVersionCounts,
    DayCount,
    FunnelCounts,
    LatencyCounts,
    RunningGroup,
    VersionCounts,
)
from ..._devices import DayRate, FailingDevice
from ..._epoch import day_of, from_epoch_ms
from ..._query import ReportQuery
from ..._versions import version_order_key
from ...reports._gathered import latency_rows, running_rows, samples_of, smallest
from ._summary_tables import (
    BLOCK_DAYS,
    BLOCK_STRIDE,
    DONE,
    FAILURES,
    NEVER,
    RUN_VALUES,
    RUNNING,
    STARTS,
    Event,
    blocks_for,
)

__all__ = ["SummaryReports", "Window", "answers"]


def answers(query: ReportQuery) -> bool:
    """Whether summaries answer *query*: whole UTC days, no channel, a named platform or none."""
    aligned = all(ms is None or ms % sem.DAY_MS == 0 for ms in (query.since_ms, query.until_ms))
    return aligned and query.channel is None and query.platform != ""


class Window:
    """A query over whole days, as the summaries read it."""

    def __init__(self, query: ReportQuery, first: int, end: int) -> None:
        self.query = query
        self.app_id = query.app_id
        self.first, self.end = first, end
        self.k = "a" if query.all_devices else "o"
        self.platform = query.platform
        # The platform class of the rows read: one platform, or all (``allp``, "").
        self.pclass = (0, query.platform) if query.platform else (1, "")
        self.blocks = blocks_for(first, end)
        self.since = NEVER if query.since_ms is None else query.since_ms
        self.until = -NEVER if query.until_ms is None else query.until_ms

    @property
    def wm(self) -> str:
        """SQL for the bits of a row's ``block`` that are days of this window: a constant
        per block (computing it per row, or selecting it from a subquery, costs more than
        the rest of a report)."""
        masks = {block: self.block_mask(block) for block in self.blocks}
        if len(masks) == 1:
            return str(next(iter(masks.values())))
        cases = " ".join(f"WHEN {int(b)} THEN {int(m)}" for b, m in masks.items())
        return f"(CASE block {cases} END)"

    def block_mask(self, block: int) -> int:
        """The bits of *block* that are days of this window."""
        start = block * BLOCK_STRIDE
        low = min(max(self.first - start, 0), BLOCK_DAYS)
        high = min(max(self.end - start, 0), BLOCK_DAYS)
        return (1 << high) - (1 << low)

    def rows(self, table: str, params: list[Any]) -> str:
        """``FROM`` and ``WHERE`` for the rows of *table* (pairs, devices, running) this
        window reads; their mask of the window's days is `wm`."""
        params.append(self.app_id)
        where = f"app_id = ? AND block IN ({', '.join(str(int(b)) for b in self.blocks)})"
        if table != "running":
            where += " AND allp = ? AND platform = ?"
            params.extend(self.pclass)
        elif self.platform is not None:
            where += " AND platform = ?"
            params.append(self.platform)
        return f"FROM {table} WHERE {where}"

    def per_pair(
        self,
        table: str,
        keys: str,
        columns: Sequence[tuple[str, str, str]],
        condition: str,
        params: list[Any],
    ) -> str:
        """A subquery with one row per *keys* of *table* in this window where *condition*
        holds, with *columns* (alias, aggregate, expression). In one block, *keys* are
        unique and rows come in key order: the rows as they are, with no grouping (SQLite
        then flattens the subquery into a single pass); over several, grouped."""
        if len(self.blocks) == 1:
            picked = ", ".join(f"{expression} AS {alias}" for alias, _, expression in columns)
            group = ""
        else:
            picked = ", ".join(
                f"{aggregate}({expression}) AS {alias}" for alias, aggregate, expression in columns
            )
            group = f" GROUP BY {keys}"
        picked = f", {picked}" if picked else ""
        return f"(SELECT {keys}{picked} {self.rows(table, params)} AND {condition}{group})"

    def pairs(
        self, columns: Sequence[tuple[str, str, str]], condition: str, params: list[Any]
    ) -> str:
        """`per_pair` over the pairs table: one row per version and device."""
        return self.per_pair("pairs", "version, device_id", columns, condition, params)

    def days(self, params: list[Any]) -> str:
        """The condition on daily and action rows: this window's days and platform class."""
        params.extend([self.app_id, self.first, self.end])
        params.extend(self.pclass)
        return "app_id = ? AND day >= ? AND day < ? AND allp = ? AND platform = ?"

    def takes(self, event: Event) -> bool:
        """Whether an event read from the events table is in this window."""
        if self.k == "o" and not event.production:
            return False
        if self.platform is not None and event.platform != self.platform:
            return False
        return self.since <= event.t < self.until


class SummaryReports(abc.ABC):
    """Every report over whole days, from the summaries' tables."""

    @abc.abstractmethod
    def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """Run one statement on the summaries and return its rows."""

    @abc.abstractmethod
    def _device_events(
        self, w: Window, devices: Iterable[str], actions: Iterable[str]
    ) -> list[Event]:
        """The window's events of *devices* with one of *actions*, read from the events
        table."""

    def _window(self, query: ReportQuery) -> Window | None:
        """*query*'s days, narrowed to those with events (fewer blocks to read, the same
        figures: a day without events adds nothing); `None` when there are none."""
        params: list[Any] = [query.app_id]
        where = "app_id = ? AND allv = 1 AND allp = 1"
        if query.since_ms is not None:
            where += " AND day >= ?"
            params.append(query.since_ms // sem.DAY_MS)
        if query.until_ms is not None:
            where += " AND day < ?"
            params.append(query.until_ms // sem.DAY_MS)
        ((first, last),) = self._fetch(
            f"SELECT MIN(day), MAX(day) FROM daily WHERE {where}", params
        )
        if first is None:
            return None
        end = last + 1
        return Window(query, first, end)

    def version_counts(self, query: ReportQuery) -> list[VersionCounts]:
        w = self._window(query)
        if w is None:
            return []
        k, wm = w.k, w.wm
        params: list[Any] = []
        pairs = w.pairs(
            [("failed", "MAX", f"(fail_{k} & {wm}) <> 0")],
            f"any_{k} & {wm}",
            params,
        )
        devices = {
            version: (int(n), int(failed))
            for version, n, failed in self._fetch(
                f"SELECT version, COUNT(*), SUM(failed) FROM {pairs} GROUP BY version", params
            )
        }
        params = []
        installs = dict(
            self._fetch(
                f"SELECT version, SUM(inst_{k}) FROM daily WHERE {w.days(params)} AND allv = 0 "
                "GROUP BY version",
                params,
            )
        )
        params = []
        by_kind: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
        for kind, a, b, n in self._fetch(
            f"SELECT kind, a, b, SUM(n_{k}) FROM actions WHERE {w.days(params)} "
            "GROUP BY kind, a, b",
            params,
        ):
            if n:
                by_kind[kind][a][b] = int(n)
        failures, rollbacks, replaced = (by_kind[kind] for kind in ("fail", "rollback", "replace"))
        names = set(devices) | set(rollbacks) | set(replaced)
        return [
            VersionCounts(
                version=name,
                devices=devices.get(name, (0, 0))[0],
                installs=int(installs.get(name) or 0),
                failures=dict(failures.get(name, {})),
                failed_devices=devices.get(name, (0, 0))[1],
                rollbacks=dict(rollbacks.get(name, {})),
                replaced_by=dict(replaced.get(name, {})),
            )
            for name in sorted(names, key=version_order_key)
        ]

    def daily_counts(self, query: ReportQuery) -> list[DailyVersionCounts]:
        w = self._window(query)
        if w is None:
            return []
        k = w.k
        params: list[Any] = []
        rows = self._fetch(
            f"SELECT day, version, inst_{k}, failev_{k}, run_{k}, dev_{k}, fail_{k} FROM daily "
            f"WHERE {w.days(params)} AND allv = 0 AND dev_{k} > 0",
            params,
        )
        counts = [
            DailyVersionCounts(
                day=day_of(day),
                version=version,
                installs=int(installs),
                failures=int(failures),
                running_devices=int(running),
                devices=int(devices),
                failed_devices=int(failed),
            )
            for day, version, installs, failures, running, devices, failed in rows
        ]
        return sorted(counts, key=lambda c: (c.day, version_order_key(c.version)))

    def daily_rates(self, query: ReportQuery) -> list[DayRate]:
        rates = [
            DayRate(
                day=c.day, version=c.version, devices=c.devices, failed_devices=c.failed_devices
            )
            for c in self.daily_counts(query)
        ]
        return sorted(rates, key=lambda r: (r.day, r.version))

    def active_devices(self, query: ReportQuery) -> ActiveDevices:
        w = self._window(query)
        if w is None:
            return ActiveDevices(total=0, by_day=())
        k, wm = w.k, w.wm
        params: list[Any] = []
        devices = w.per_pair("devices", "device_id", [], f"any_{k} & {wm}", params)
        ((total,),) = self._fetch(f"SELECT COUNT(*) FROM {devices}", params)
        params = []
        by_day = self._fetch(
            f"SELECT day, dev_{k} FROM daily WHERE {w.days(params)} AND allv = 1 "
            f"AND dev_{k} > 0 ORDER BY day",
            params,
        )
        return ActiveDevices(
            total=int(total),
            by_day=tuple(DayCount(day=day_of(day), devices=int(n)) for day, n in by_day),
        )

    def funnel_counts(self, query: ReportQuery) -> list[FunnelCounts]:
        w = self._window(query)
        if w is None:
            return []
        k, wm = w.k, w.wm
        params: list[Any] = []
        pairs = w.pairs(
            [(f"f{n}", "MAX", f"(s{n}_{k} & {wm}) <> 0") for n in range(1, 5)],
            # Devices that started no download count in no step. In one block each device's
            # row of a version holds all its steps: only the rows of a start are read.
            f"s1_{k} & {wm}"
            if len(w.blocks) == 1
            else f"(s1_{k} | s2_{k} | s3_{k} | s4_{k}) & {wm}",
            params,
        )
        found = self._fetch(
            "SELECT version, SUM(f1), SUM(f1 * f2), SUM(f1 * f2 * f3), SUM(f1 * f2 * f3 * f4) "
            f"FROM {pairs} GROUP BY version HAVING SUM(f1) > 0",
            params,
        )
        counts = [
            FunnelCounts(
                version=version,
                download_started=int(a),
                download_complete=int(b),
                set=int(c),
                launched=int(d),
            )
            for version, a, b, c, d in found
        ]
        return sorted(counts, key=lambda c: version_order_key(c.version))

    def running_versions(self, query: ReportQuery) -> list[RunningGroup]:
        w = self._window(query)
        if w is None:
            return []
        k = w.k
        params: list[Any] = []
        values = ", ".join(f"{name}_{k}" for name in RUN_VALUES)
        # Each device's latest block of the window with a running event, and that block's
        # latest running event: in the window unless it is after it (the device is then
        # settled below), before it if the device ran nothing in the window. (With MAX,
        # SQLite takes the other columns from the row of the greatest block.)
        latest = "MAX(block), " if len(w.blocks) > 1 else ""
        grouped = " GROUP BY device_id" if len(w.blocks) > 1 else ""
        newest = (
            f"SELECT device_id, {latest}t_{k} AS t, {values} {w.rows('devices', params)} "
            f"AND t_{k} IS NOT NULL{grouped}"
        )
        found = self._fetch(
            f"SELECT t >= {int(w.until)}, {values}, COUNT(*) FROM ({newest}) "
            f"WHERE t >= {int(w.since)} GROUP BY 1, {values}",
            params,
        )
        groups: Counter[sem.RunningRow] = Counter()
        later = False
        for is_later, version, platform, os_version, plugin, build, n in found:
            if is_later:
                later = True
            else:
                groups[version, platform, os_version, plugin, build] += int(n)
        if later:
            self._running_of_later(
                w, groups, f"SELECT device_id FROM ({newest}) WHERE t >= {int(w.until)}", params
            )
        return running_rows(groups)

    def _running_of_later(
        self, w: Window, groups: Counter[sem.RunningRow], later: str, later_params: list[Any]
    ) -> None:
        """Count the devices with running events after the window too (the statement
        *later* selects them): their latest day with one in the window, from the union of
        their rows' days; the row of that day, or the latest of several by the moments
        they hold (of their first or last day); a few are read from their events."""
        k, wm = w.k, w.wm
        params: list[Any] = []
        values = ", ".join(f"r.{name}" for name in ("version", "platform", "os", "plugin", "build"))
        # Each such device's latest day with a running event in the window (`bit_length`
        # is a function of the connection), and the block it is read in.
        days = (
            f"SELECT device_id, block, MAX(block * {BLOCK_STRIDE} + bit_length(run_{k} & {wm}) "
            f"- 1) AS top {w.rows('devices', params)} AND run_{k} & {wm} "
            f"AND device_id IN ({later}) GROUP BY device_id"
        )
        params += later_params
        # Its rows of that day, each with the moment of its latest event that day when the
        # row holds it: that of its last day, or of its first. (CROSS JOIN: each device's
        # rows found by key, not every row of the app read.)
        day = f"(d.top - d.block * {BLOCK_STRIDE})"
        last, first = f"r.run_{k} < (2 << {day})", f"(r.run_{k} & -r.run_{k}) = (1 << {day})"
        params.append(w.app_id)
        platform = ""
        if w.platform is not None:
            platform = " AND r.platform = ?"
            params.append(w.platform)
        rows = (
            f"SELECT d.device_id, {values}, "
            f"CASE WHEN {last} THEN r.lrt_{k} WHEN {first} THEN r.frt_{k} END AS t, "
            f"CASE WHEN {last} THEN r.lrr_{k} WHEN {first} THEN r.frr_{k} END AS rr "
            f"FROM ({days}) d CROSS JOIN running r ON r.app_id = ? AND r.block = d.block "
            f"AND r.device_id = d.device_id WHERE (r.run_{k} >> {day}) & 1{platform}"
        )
        plain = "version, platform, os, plugin, build"
        # A device with one row that day is counted here; the others come back with theirs.
        found = self._fetch(
            f"WITH c AS MATERIALIZED ({rows}), "
            "several AS (SELECT device_id FROM c GROUP BY device_id HAVING COUNT(*) > 1) "
            f"SELECT NULL, {plain}, NULL, NULL, COUNT(*) FROM c "
            f"WHERE device_id NOT IN several GROUP BY {plain} "
            f"UNION ALL SELECT device_id, {plain}, t, rr, 1 FROM c WHERE device_id IN several",
            params,
        )
        candidates: dict[str, list[tuple[int | None, int | None, sem.RunningRow]]] = defaultdict(
            list
        )
        for device, version, platform, os_version, plugin, build, t, r, n in found:
            row = (version, platform, os_version, plugin, build)
            if device is None:
                groups[row] += int(n)
            else:
                candidates[device].append((t, r, row))
        unsettled = []
        for device, entries in candidates.items():
            if all(t is not None for t, _r, _row in entries):
                groups[_latest_of(entries)] += 1  # type: ignore[arg-type]
            else:
                unsettled.append(device)
        by_device: dict[str, list[tuple[int, int, sem.RunningRow]]] = defaultdict(list)
        for event in self._device_events(w, unsettled, RUNNING):
            by_device[event.device].append((event.t, event.received_ms, event.values))
        for events in by_device.values():
            groups[_latest_of(events)] += 1

    def download_latency(self, query: ReportQuery) -> list[LatencyCounts]:
        w = self._window(query)
        if w is None:
            return []
        k, wm = w.k, w.wm
        params: list[Any] = []
        # A row settles its download when its first start (completion) of the block is in
        # the window and, for the reported duration, every completion is.
        settled = (
            f"((s1_{k} & {wm}) = 0 OR (s1_{k} & {wm} & -(s1_{k} & {wm})) = (s1_{k} & -s1_{k})) AND "
            f"(s2_{k} & ~{wm}) = 0"
        )
        pairs = w.pairs(
            [
                ("settled", "MIN", settled),
                ("reported", "MIN", f"CASE WHEN s2_{k} & {wm} THEN minrep_{k} END"),
                ("done", "MIN", f"CASE WHEN s2_{k} & {wm} THEN fdone_{k} END"),
                ("started", "MIN", f"CASE WHEN s1_{k} & {wm} THEN fstart_{k} END"),
            ],
            f"(s1_{k} | s2_{k}) & {wm}",
            params,
        )
        unsettled = {
            device
            for (device,) in self._fetch(
                f"SELECT DISTINCT device_id FROM {pairs} WHERE NOT settled", params
            )
        }
        samples: dict[str, list[int]] = defaultdict(list)
        if unsettled:
            for version, device, ms in self._fetch(
                f"SELECT version, device_id, COALESCE(reported, done - started) FROM {pairs}",
                params,
            ):
                if ms is not None and ms >= 0 and device not in unsettled:
                    samples[version].append(ms)
        else:  # the usual case: no device ids to carry
            for version, ms in self._fetch(
                f"SELECT version, COALESCE(reported, done - started) AS ms FROM {pairs} "
                "WHERE ms >= 0",
                params,
            ):
                samples[version].append(ms)
        for version, values in _downloads_of(self._device_events(w, unsettled, STARTS | {DONE})):
            samples[version].extend(values)
        return latency_rows(samples)

    def failing_devices(
        self, query: ReportQuery, version: str, *, limit: int, offset: int
    ) -> list[FailingDevice]:
        w = self._window(query)
        if w is None:
            return []
        k, wm = w.k, w.wm
        params: list[Any] = []
        pairs = w.rows("pairs", params)
        params.append(version)
        found = self._fetch(
            f"SELECT device_id, fail_{k} & {wm}, fail_{k}, failn_{k}, lft_{k} {pairs} "
            f"AND version = ? AND fail_{k} & {wm}",
            params,
        )
        figures: dict[str, list[int]] = {}
        unsettled = set()
        for device, m, fails, count, last in found:
            if fails & ~m:
                unsettled.add(device)  # failures outside the window too: count its events
                continue
            slot = figures.setdefault(device, [0, last])
            slot[0] += count
            slot[1] = max(slot[1], last)
        for device in unsettled:
            figures.pop(device, None)
        for event in self._device_events(w, unsettled, FAILURES):
            if event.version == version and event.failure:
                slot = figures.setdefault(event.device, [0, event.t])
                slot[0] += 1
                slot[1] = max(slot[1], event.t)
        ordered = sorted(figures.items(), key=lambda item: (-item[1][1], item[0]))
        return [
            FailingDevice(device_id=device, failures=n, last_failure=from_epoch_ms(last))
            for device, (n, last) in ordered[offset : offset + limit]
        ]


def _downloads_of(events: Iterable[Event]) -> Iterable[tuple[str, list[int]]]:
    """The download durations of *events*, one per version and device, by version."""
    downloads: dict[tuple[str, str], list[int | None]] = {}
    for event in events:
        slot = downloads.setdefault((event.version, event.device), [None] * 3)
        if event.action == DONE:
            slot[1] = smallest(slot[1], event.t)
            slot[2] = smallest(slot[2], event.reported)
        else:
            slot[0] = smallest(slot[0], event.t)
    return samples_of(
        (version, (started, completed, least))
        for (version, _device), (started, completed, least) in downloads.items()
    ).items()


def _latest_of(events: Iterable[tuple[int, int, sem.RunningRow]]) -> sem.RunningRow:
    """The running values of the latest event; the documented order among equals."""
    best: tuple[int, int, sem.RunningRow] | None = None
    for t, r, row in events:
        if (
            best is None
            or (t, r) > best[:2]
            or ((t, r) == best[:2] and sem.running_tie_key(row) > sem.running_tie_key(best[2]))
        ):
            best = (t, r, row)
    assert best is not None  # noqa: S101 - callers pass at least one event.
    return best[2]
