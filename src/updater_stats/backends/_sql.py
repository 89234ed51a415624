"""Report queries as SQL, built once for every SQL backend; a `Dialect` holds the differences.

Every figure is computed by the database: Python receives one row per version, per
(day, version) or per group of devices, never the events themselves.

Nothing a user or a device wrote is ever spliced into SQL: values travel as parameters,
and the only inlined literals are our own action names and integer constants.
"""

# ruff: noqa: S608 - see above: the SQL text is built from constants only.

from __future__ import annotations

import abc
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from .. import _semantics as sem
from .._actions import Action
from .._counts import (
    ActiveDevices,
    DailyVersionCounts,
    DayCount,
    FunnelCounts,
    LatencyCounts,
    RunningGroup,
    VersionCounts,
)
from .._epoch import EPOCH, day_of, epoch_ms
from .._query import ReportQuery
from .._versions import version_order_key
from ._sql_inventory import SQLInventory

Rows = Sequence[Sequence[Any]]
Statement = tuple[str, list[Any]]

_SLACK_MS = 1000
_SAFE_LITERAL = re.compile(r"[A-Za-z0-9_]+")


def _actions(actions: Iterable[Action]) -> str:
    """An SQL list of action literals. Only our own enum values are inlined, never user text."""
    values = sorted(a.value for a in actions)
    assert all(_SAFE_LITERAL.fullmatch(v) for v in values)  # noqa: S101 - enum invariant.
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _literal(text: str) -> str:
    """One of our own constants as an SQL string literal."""
    assert _SAFE_LITERAL.fullmatch(text)  # noqa: S101 - constants only.
    return f"'{text}'"


def _same(text: str) -> str:
    return text


def _decoded(value: Any) -> str:
    return str(value)


@attrs.frozen(kw_only=True)
class Dialect:
    """How one database spells what the queries need.

    Attributes:
        placeholder: The parameter marker for parameter number *n* holding *value*.
        received_ms: SQL for the receive time in epoch milliseconds.
        received_bound: SQL comparable with the raw ``received_at`` column, for a marker
            holding epoch milliseconds (so the column's index serves the comparison).
        split_version: SQL for the part of a text expression before the first colon.
        duration: SQL for a trusted ``metadata.duration_ms`` as an integer, NULL otherwise.
        int_div: SQL for integer division of two integer expressions.
        mod: SQL for the remainder of that division (its sign the dividend's).
        encode: How a text parameter is stored (PostgreSQL escapes NUL, for one).
        decode: A text value from a result row as Python text.
        text_order: Appended to text in ORDER BY, so every database sorts by code point.
        nulls_last: Appended to a descending ORDER BY term, so NULL comes last on every
            database (SQLite's and ClickHouse's default, not PostgreSQL's).
    """

    placeholder: Callable[[int, Any], str]
    split_version: Callable[[str], str]
    duration: Callable[[str], str]
    received_ms: str = "received_at"
    received_bound: Callable[[str], str] = _same
    int_div: Callable[[str, str], str] = lambda a, b: f"({a}) / ({b})"
    mod: Callable[[str, str], str] = lambda a, b: f"(({a}) % ({b}))"
    encode: Callable[[str], str] = _same
    decode: Callable[[Any], str] = _decoded
    text_order: str = ""
    nulls_last: str = ""


class QueryBuilder:
    """The SQL of each report, for one dialect, over a table named ``events``."""

    def __init__(self, dialect: Dialect, table: str = "events") -> None:
        self._d = dialect
        self._table = table

    @property
    def dialect(self) -> Dialect:
        return self._d

    @property
    def table(self) -> str:
        """The events table, as the queries name it."""
        return self._table

    def _param(self, params: list[Any], value: Any) -> str:
        params.append(value)
        return self._d.placeholder(len(params) - 1, value)

    def download_fail_plugins(self, query: ReportQuery) -> Statement:
        """Plugin versions that sent `download_fail`: the caller keeps those that fail for real."""
        params: list[Any] = []
        app = self._param(params, self._d.encode(query.app_id))
        return (
            (
                f"SELECT DISTINCT plugin_version FROM {self._table} "
                f"WHERE app_id = {app} AND action = 'download_fail' "
                "AND plugin_version IS NOT NULL"
            ),
            params,
        )

    def window(self, query: ReportQuery, params: list[Any]) -> str:
        """A CTE ``w``: the query's events with ``t`` (event time) and counted versions."""
        d = self._d

        def param(value: Any) -> str:
            return self._param(params, value)

        ahead = epoch_ms(EPOCH + sem.MAX_CLOCK_AHEAD)
        delay = epoch_ms(EPOCH + sem.MAX_QUEUE_DELAY)
        where = [f"app_id = {param(d.encode(query.app_id))}"]
        # The event time is never more than MAX_QUEUE_DELAY before or MAX_CLOCK_AHEAD after
        # received_at, so this bound on the indexed column loses nothing and skips the rest.
        # A second of slack covers databases that convert the bound through a float.
        if query.since_ms is not None:
            bound = param(query.since_ms - ahead - _SLACK_MS)
            where.append(f"received_at >= {d.received_bound(bound)}")
        if query.until_ms is not None:
            bound = param(query.until_ms + delay + _SLACK_MS)
            where.append(f"received_at < {d.received_bound(bound)}")
        if not query.all_devices:
            where.append("is_prod AND NOT is_emulator")
        if query.platform is not None:
            where.append(f"platform = {param(d.encode(query.platform))}")
        if query.channel is not None:
            where.append(f"COALESCE(channel, default_channel) = {param(d.encode(query.channel))}")
        received = d.received_ms
        event_time = (
            f"CASE WHEN device_ts IS NOT NULL AND device_ts >= {received} - {delay} "
            f"AND device_ts <= {received} + {ahead} THEN device_ts ELSE {received} END"
        )
        old_version = "COALESCE(old_version_name, '')"
        # Columns a device may leave out are '' when absent, the same on every database.
        inner = (
            "SELECT device_id, action, COALESCE(plugin_version, '') AS plugin_version, "
            "COALESCE(platform, '') AS platform, COALESCE(version_os, '') AS version_os, "
            "COALESCE(version_build, '') AS version_build, "
            f"{received} AS received_ms, metadata, "
            f"{d.split_version('version_name')} AS version, "
            f"{d.split_version(old_version)} AS old_version, "
            f"{event_time} AS t FROM {self._table} WHERE {' AND '.join(where)}"
        )
        bounds = []
        if query.since_ms is not None:
            bounds.append(f"t >= {param(query.since_ms)}")
        if query.until_ms is not None:
            bounds.append(f"t < {param(query.until_ms)}")
        outer = f"SELECT * FROM ({inner}) e" + (f" WHERE {' AND '.join(bounds)}" if bounds else "")
        return f"WITH w AS ({outer}) "

    def failure(self, failing_plugins: Sequence[str], params: list[Any]) -> str:
        """SQL for "this row is a failure": `download_fail` only from *failing_plugins*."""
        condition = f"action IN {_actions(sem.FAILURES)} AND (action <> 'download_fail'"
        if failing_plugins:
            marks = ", ".join(self._param(params, version) for version in failing_plugins)
            condition += f" OR plugin_version IN ({marks})"
        return f"({condition}))"

    def versions(self, query: ReportQuery, failing_plugins: Sequence[str]) -> Statement:
        params: list[Any] = []
        sql = self.window(query, params)
        fail = self.failure(failing_plugins, params)
        sql += (
            "SELECT version, COUNT(DISTINCT device_id), "
            "SUM(CASE WHEN action = 'set' THEN 1 ELSE 0 END), "
            f"COUNT(DISTINCT CASE WHEN {fail} THEN device_id END) "
            "FROM w GROUP BY version"
        )
        return sql, params

    def failures(self, query: ReportQuery, failing_plugins: Sequence[str]) -> Statement:
        params: list[Any] = []
        sql = self.window(query, params)
        fail = self.failure(failing_plugins, params)
        sql += f"SELECT version, action, COUNT(*) FROM w WHERE {fail} GROUP BY version, action"
        return sql, params

    def rollbacks(self, query: ReportQuery) -> Statement:
        params: list[Any] = []
        sql = self.window(query, params)
        # `reset` names the bundle it left in old_version_name when the plugin sends it, else
        # in version_name. A reset never leaves `builtin`, where every reset lands: one that
        # names no other bundle (a reset on a device already back on builtin) is no rollback.
        builtin = _literal(sem.BUILTIN)
        left = "CASE WHEN action = 'reset' AND old_version <> '' THEN old_version ELSE version END"
        sql += (
            f"SELECT {left} AS left_version, action, COUNT(*) FROM w "
            f"WHERE action IN {_actions(sem.ROLLBACKS)} AND NOT (action = 'reset' "
            f"AND {left} = {builtin}) GROUP BY left_version, action"
        )
        return sql, params

    def replacements(self, query: ReportQuery) -> Statement:
        params: list[Any] = []
        sql = self.window(query, params)
        sql += (
            "SELECT old_version, version, COUNT(*) FROM w "
            "WHERE action = 'set' AND old_version <> '' GROUP BY old_version, version"
        )
        return sql, params

    def funnel(self, query: ReportQuery) -> Statement:
        params: list[Any] = []
        sql = self.window(query, params)
        steps = {
            "s1": _actions(sem.DOWNLOAD_STARTS),
            "s2": _actions([sem.DOWNLOAD_DONE]),
            "s3": _actions([sem.INSTALL]),
            "s4": _actions(sem.LAUNCHES),
        }
        flags = ", ".join(
            f"MAX(CASE WHEN action IN {actions} THEN 1 ELSE 0 END) AS {name}"
            for name, actions in steps.items()
        )
        every = _actions(sem.DOWNLOAD_STARTS | {sem.DOWNLOAD_DONE, sem.INSTALL} | sem.LAUNCHES)
        sql += (
            "SELECT version, SUM(s1), SUM(s1 * s2), SUM(s1 * s2 * s3), SUM(s1 * s2 * s3 * s4) "
            f"FROM (SELECT version, device_id, {flags} FROM w WHERE action IN {every} "
            "GROUP BY version, device_id) per_device GROUP BY version HAVING SUM(s1) > 0"
        )
        return sql, params

    def running(self, query: ReportQuery) -> Statement:
        """Each device's latest running-version events, grouped by their values.

        A device with one latest event (the usual case) is counted in its group with
        ``tied`` NULL; a device with several events at its latest event and receive time
        comes back with its id in ``tied``, one row per distinct candidate, for Python to
        pick from by `sem.running_tie_key` (version precedence, which SQL cannot order by).
        """
        params: list[Any] = []
        sql = self.window(query, params)
        columns = "version, platform, version_os, plugin_version, version_build"
        sql += (
            f"SELECT CASE WHEN n = 1 THEN NULL ELSE device_id END AS tied, {columns}, COUNT(*) "
            f"FROM (SELECT device_id, {columns}, COUNT(*) OVER (PARTITION BY device_id) AS n "
            f"FROM (SELECT device_id, {columns}, RANK() OVER (PARTITION BY device_id "
            "ORDER BY t DESC, received_ms DESC) AS rk FROM w "
            f"WHERE action IN {_actions(sem.RUNNING)}) ranked WHERE rk = 1) latest "
            f"GROUP BY tied, {columns}"
        )
        return sql, params

    def active_total(self, query: ReportQuery) -> Statement:
        params: list[Any] = []
        return self.window(query, params) + "SELECT COUNT(DISTINCT device_id) FROM w", params

    def utc_day(self, ms: str) -> str:
        """The UTC day number of epoch milliseconds *ms*, rounded down: SQL's integer
        division truncates towards zero, which would count a day before 1970 as 1970-01-01,
        so the remainder is taken off first (it truncates too, hence ``+ day`` and again)."""
        day = str(sem.DAY_MS)
        below = self._d.mod(f"{self._d.mod(ms, day)} + {day}", day)
        return self._d.int_div(f"({ms}) - {below}", day)

    def active_by_day(self, query: ReportQuery) -> Statement:
        params: list[Any] = []
        day = self.utc_day("t")
        sql = self.window(query, params)
        sql += f"SELECT {day} AS day, COUNT(DISTINCT device_id) FROM w GROUP BY day"
        return sql, params

    def latency(self, query: ReportQuery) -> Statement:
        params: list[Any] = []
        sql = self.window(query, params)
        starts = _actions(sem.DOWNLOAD_STARTS)
        done = f"'{sem.DOWNLOAD_DONE.value}'"
        reported = self._d.duration("metadata")
        picks = ", ".join(
            f"MAX(CASE WHEN rn = {self._d.int_div(f'{p} * n + 99', '100')} THEN ms END)"
            for p in sem.PERCENTILES
        )
        sql += (
            "SELECT version, n, " + picks + " FROM (SELECT version, ms, "
            "ROW_NUMBER() OVER (PARTITION BY version ORDER BY ms) AS rn, "
            "COUNT(*) OVER (PARTITION BY version) AS n FROM ("
            "SELECT version, COALESCE(reported, CASE WHEN completed >= started "
            "THEN completed - started END) AS ms FROM ("
            f"SELECT version, device_id, MIN(CASE WHEN action IN {starts} THEN t END) AS started, "
            f"MIN(CASE WHEN action = {done} THEN t END) AS completed, "
            f"MIN(CASE WHEN action = {done} THEN {reported} END) AS reported "
            f"FROM w WHERE action IN {starts} OR action = {done} "
            "GROUP BY version, device_id) pairs) samples WHERE ms IS NOT NULL) ranked "
            "GROUP BY version, n"
        )
        return sql, params

    def daily(self, query: ReportQuery, failing_plugins: Sequence[str]) -> Statement:
        params: list[Any] = []
        sql = self.window(query, params)
        day = self.utc_day("t")
        running = _actions(sem.RUNNING)
        # Positional markers: each use of the failure test gets its own parameters, in order.
        sql += (
            f"SELECT {day} AS day, version, "
            "SUM(CASE WHEN action = 'set' THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN {self.failure(failing_plugins, params)} THEN 1 ELSE 0 END), "
            f"COUNT(DISTINCT CASE WHEN action IN {running} THEN device_id END), "
            "COUNT(DISTINCT device_id), "
            f"COUNT(DISTINCT CASE WHEN {self.failure(failing_plugins, params)} "
            "THEN device_id END) FROM w GROUP BY day, version"
        )
        return sql, params


class SQLReportSource(SQLInventory, abc.ABC):
    """A `ReportSource` over any database, and an `InventorySource`: subclasses only say how
    to run one statement."""

    def __init__(self, builder: QueryBuilder) -> None:
        self._sql = builder
        self._text = builder.dialect.decode

    @abc.abstractmethod
    def _fetch(self, statement: Statement) -> Rows:
        """Run one statement and return all its rows (a handful: results are aggregated)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection."""

    def _failing_plugins(self, query: ReportQuery) -> list[str]:
        rows = self._fetch(self._sql.download_fail_plugins(query))
        # Compared as stored: the versions go back into the queries as parameters.
        stored = {self._text(row[0]): row[0] for row in rows if row[0] is not None}
        return [stored[v] for v in sem.failing_download_plugins(list(stored))]

    def version_counts(self, query: ReportQuery) -> list[VersionCounts]:
        """One row per version with any event, or named as a replaced or rolled-back version."""
        failing_plugins = self._failing_plugins(query)
        base: dict[str, tuple[int, int, int]] = {
            self._text(v): (int(devices), int(installs or 0), int(failed))
            for v, devices, installs, failed in self._fetch(
                self._sql.versions(query, failing_plugins)
            )
        }
        failures: dict[str, dict[str, int]] = defaultdict(dict)
        for version, action, count in self._fetch(self._sql.failures(query, failing_plugins)):
            failures[self._text(version)][self._text(action)] = int(count)
        rollbacks: dict[str, dict[str, int]] = defaultdict(dict)
        for version, action, count in self._fetch(self._sql.rollbacks(query)):
            rollbacks[self._text(version)][self._text(action)] = int(count)
        replaced: dict[str, dict[str, int]] = defaultdict(dict)
        for old, new, count in self._fetch(self._sql.replacements(query)):
            replaced[self._text(old)][self._text(new)] = int(count)
        names = set(base) | set(rollbacks) | set(replaced)
        return [
            VersionCounts(
                version=name,
                devices=base.get(name, (0, 0, 0))[0],
                installs=base.get(name, (0, 0, 0))[1],
                failed_devices=base.get(name, (0, 0, 0))[2],
                failures=failures.get(name, {}),
                rollbacks=rollbacks.get(name, {}),
                replaced_by=replaced.get(name, {}),
            )
            for name in sorted(names, key=version_order_key)
        ]

    def funnel_counts(self, query: ReportQuery) -> list[FunnelCounts]:
        """One row per version at least one device started downloading."""
        return [
            FunnelCounts(
                version=self._text(v),
                download_started=int(a),
                download_complete=int(b),
                set=int(c),
                launched=int(e),
            )
            for v, a, b, c, e in self._fetch(self._sql.funnel(query))
        ]

    def running_versions(self, query: ReportQuery) -> list[RunningGroup]:
        """Each device's latest running-version event, grouped by its values.

        The database returns each device's latest events; a device with several at the
        same moment is settled here, by the documented order, alike on every backend.
        """
        groups: Counter[sem.RunningRow] = Counter()
        tied: dict[Any, list[sem.RunningRow]] = defaultdict(list)
        text = self._text
        for device, version, platform, os_version, plugin, native, n in self._fetch(
            self._sql.running(query)
        ):
            row = (text(version), text(platform), text(os_version), text(plugin), text(native))
            if device is None:
                groups[row] += int(n)
            else:
                tied[device].append(row)
        for candidates in tied.values():
            groups[max(candidates, key=sem.running_tie_key)] += 1
        return [
            RunningGroup(
                version=v,
                platform=platform,
                os_version=os_version,
                plugin_version=plugin,
                native_version=native,
                devices=n,
            )
            for (v, platform, os_version, plugin, native), n in groups.items()
        ]

    def active_devices(self, query: ReportQuery) -> ActiveDevices:
        """Distinct devices with any event, in all and per UTC day."""
        ((total,),) = self._fetch(self._sql.active_total(query))
        rows = self._fetch(self._sql.active_by_day(query))
        by_day = sorted(
            (DayCount(day=day_of(day), devices=int(n)) for day, n in rows),
            key=lambda count: count.day,
        )
        return ActiveDevices(total=int(total), by_day=tuple(by_day))

    def download_latency(self, query: ReportQuery) -> list[LatencyCounts]:
        """Download duration percentiles per version with at least one sample."""
        return [
            LatencyCounts(
                version=self._text(v), samples=int(n), p50_ms=int(a), p90_ms=int(b), p99_ms=int(c)
            )
            for v, n, a, b, c in self._fetch(self._sql.latency(query))
        ]

    def daily_counts(self, query: ReportQuery) -> list[DailyVersionCounts]:
        """Installs, failures, running and failed devices, and devices, per UTC day and version."""
        failing_plugins = self._failing_plugins(query)
        return [
            DailyVersionCounts(
                day=day_of(day),
                version=self._text(v),
                installs=int(installs or 0),
                failures=int(failures or 0),
                running_devices=int(running),
                devices=int(devices),
                failed_devices=int(failed),
            )
            for day, v, installs, failures, running, devices, failed in self._fetch(
                self._sql.daily(query, failing_plugins)
            )
        ]
