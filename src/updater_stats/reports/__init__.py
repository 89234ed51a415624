"""Reports and release health over stored events.

`open_reports` (or `reports_for`) gives a `Reports` over a storage backend; each
method takes a `ReportQuery`. A backend that implements the read-side protocol
`ReportSource` computes the figures itself, as the SQL backends do in their
databases (`SQLiteReports`, ...); any other backend that streams its events
(`SupportsEvents`) gets them from the reference implementation,
`EventReportSource`, which counts them in Python.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._chart import daily_chart
from ._health import HealthPolicy, HealthReport, Verdict, judge, release_health
from ._hooks import HealthWatcher, HookError, VerdictChange, webhook
from ._protocol import ReportSource
from ._query import ReportQuery
from ._records import (
    ActiveDevices,
    DailyVersionCounts,
    DayCount,
    FunnelCounts,
    LatencyCounts,
    RunningGroup,
    VersionCounts,
)
from ._reference import EventReportSource
from ._reports import (
    AdoptionReport,
    FunnelReport,
    FunnelStep,
    Reports,
    Share,
    VersionReport,
    open_reports,
    reports_for,
)
from ._semantics import MAX_CLOCK_AHEAD, MAX_QUEUE_DELAY, counted_version
from ._sqlite import SQLiteReports
from ._summary import Summary, summarize
from ._wilson import wilson_interval

if TYPE_CHECKING:
    from ._clickhouse import ClickHouseReports
    from ._postgres import PostgresReports

__all__ = [
    "MAX_CLOCK_AHEAD",
    "MAX_QUEUE_DELAY",
    "ActiveDevices",
    "AdoptionReport",
    "ClickHouseReports",
    "DailyVersionCounts",
    "DayCount",
    "EventReportSource",
    "FunnelCounts",
    "FunnelReport",
    "FunnelStep",
    "HealthPolicy",
    "HealthReport",
    "HealthWatcher",
    "HookError",
    "LatencyCounts",
    "PostgresReports",
    "ReportQuery",
    "ReportSource",
    "Reports",
    "RunningGroup",
    "SQLiteReports",
    "Share",
    "Summary",
    "Verdict",
    "VerdictChange",
    "VersionCounts",
    "VersionReport",
    "counted_version",
    "daily_chart",
    "judge",
    "open_reports",
    "release_health",
    "reports_for",
    "summarize",
    "webhook",
    "wilson_interval",
]


def __getattr__(name: str) -> Any:
    # The server backends' read sides import their drivers (extras) only when asked for.
    if name == "PostgresReports":
        from ._postgres import PostgresReports  # noqa: PLC0415

        return PostgresReports
    if name == "ClickHouseReports":
        from ._clickhouse import ClickHouseReports  # noqa: PLC0415

        return ClickHouseReports
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
