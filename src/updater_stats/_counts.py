"""The raw counts a `ReportSource` returns; `Reports` derives rates and shares from them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import attrs


def _frozen_dict(value: Mapping[str, int]) -> Mapping[str, int]:
    # Sorted, so equal counts from two backends compare and print the same.
    return dict(sorted(value.items()))


@attrs.frozen(kw_only=True)
class VersionCounts:
    """Counts for one version over a query's events.

    Attributes:
        devices: Distinct devices with any event counted under the version.
        installs: `set` events.
        failures: Failure events by action (old plugins' "no update" `download_fail` excluded).
        failed_devices: Distinct devices with at least one failure event.
        rollbacks: `update_fail` and `reset` events by action, under the version left.
        replaced_by: `set` events whose `old_version_name` is this version, by the new version.
    """

    version: str
    devices: int = 0
    installs: int = 0
    failures: Mapping[str, int] = attrs.field(factory=dict, converter=_frozen_dict)
    failed_devices: int = 0
    rollbacks: Mapping[str, int] = attrs.field(factory=dict, converter=_frozen_dict)
    replaced_by: Mapping[str, int] = attrs.field(factory=dict, converter=_frozen_dict)


@attrs.frozen(kw_only=True)
class FunnelCounts:
    """Distinct devices per funnel step; each step counts devices that reached every earlier one."""

    version: str
    download_started: int
    download_complete: int
    set: int
    launched: int


@attrs.frozen(kw_only=True)
class RunningGroup:
    """Devices whose latest running-version event has these values."""

    version: str
    platform: str
    os_version: str
    plugin_version: str
    native_version: str
    devices: int


@attrs.frozen(kw_only=True)
class DayCount:
    """Distinct devices with any event on one UTC day (event time)."""

    day: dt.date
    devices: int


@attrs.frozen(kw_only=True)
class ActiveDevices:
    """Distinct devices with any event in the query, in all and per day."""

    total: int
    by_day: tuple[DayCount, ...]


@attrs.frozen(kw_only=True)
class LatencyCounts:
    """Download durations for one version, in milliseconds (nearest-rank percentiles)."""

    version: str
    samples: int
    p50_ms: int
    p90_ms: int
    p99_ms: int


@attrs.frozen(kw_only=True)
class DailyVersionCounts:
    """One UTC day of one version: what the chart draws.

    Attributes:
        installs: `set` events.
        failures: Failure events.
        running_devices: Distinct devices with a running event of the version that day.
        devices: Distinct devices with any event counted under the version that day.
        failed_devices: Distinct devices with a failure event under the version that day.
    """

    day: dt.date
    version: str
    installs: int
    failures: int
    running_devices: int
    devices: int = 0
    failed_devices: int = 0

    @property
    def failure_rate(self) -> float | None:
        """``failed_devices / devices`` that day, `None` without devices."""
        return self.failed_devices / self.devices if self.devices else None
