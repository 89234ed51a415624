"""The read-side protocol: what a backend implements to be reported on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ._query import ReportQuery
from ._records import (
    ActiveDevices,
    DailyVersionCounts,
    FunnelCounts,
    LatencyCounts,
    RunningGroup,
    VersionCounts,
)


@runtime_checkable
class ReportSource(Protocol):
    """**Protocol:** raw counts over stored events, computed where the events are.

    A backend that can answer these six questions can be reported on; one
    that cannot simply does not implement it (writing never needs it). Each
    method returns plain counts for the events `query` selects, under the
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
