"""Reports and release health over stored events.

`open_reports` (or `reports_for`) gives a `Reports` over a storage backend; each
method takes a `ReportQuery`. The counts come from the backend's read side: its own
`ReportSource` when it pushes the work down (the built-in SQL backends do, in their
databases); any other backend that streams its events (`SupportsEvents`) gets them from
the reference implementation, `EventReportSource`, which counts them in Python.

The device inventory the dashboard and ``updater-stats devices`` show (devices, their
timelines, the daily failure rates and failing devices of a version) comes the same way:
from the read side's own `InventorySource` when it has one, else from `EventInventory`,
which computes it from any backend's events.
"""

from __future__ import annotations

from .._counts import (
    ActiveDevices,
    DailyVersionCounts,
    DayCount,
    FunnelCounts,
    LatencyCounts,
    RunningGroup,
    VersionCounts,
)
from .._devices import DayRate, DeviceEvent, DeviceRow, DeviceSummary, FailingDevice
from .._query import ReportQuery
from .._semantics import MAX_CLOCK_AHEAD, MAX_QUEUE_DELAY, counted_version
from .._storage import InventorySource, ReportSource
from ._chart import daily_chart, require_matplotlib
from ._event_inventory import EventInventory
from ._health import HealthPolicy, HealthReport, Verdict, judge, release_health
from ._hooks import HealthWatcher, HookError, VerdictChange, webhook
from ._reference import EventReportSource
from ._render import print_health, print_summary
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
from ._summary import Summary, summarize
from ._wilson import wilson_interval

__all__ = [
    "MAX_CLOCK_AHEAD",
    "MAX_QUEUE_DELAY",
    "ActiveDevices",
    "AdoptionReport",
    "DailyVersionCounts",
    "DayCount",
    "DayRate",
    "DeviceEvent",
    "DeviceRow",
    "DeviceSummary",
    "EventInventory",
    "EventReportSource",
    "FailingDevice",
    "FunnelCounts",
    "FunnelReport",
    "FunnelStep",
    "HealthPolicy",
    "HealthReport",
    "HealthWatcher",
    "HookError",
    "InventorySource",
    "LatencyCounts",
    "ReportQuery",
    "ReportSource",
    "Reports",
    "RunningGroup",
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
    "print_health",
    "print_summary",
    "release_health",
    "reports_for",
    "require_matplotlib",
    "summarize",
    "webhook",
    "wilson_interval",
]
