"""The rows an `InventorySource` returns: the device inventory, and the daily failure rates
and failing devices of a version, as the dashboard and ``updater-stats devices`` show them.

Times are whole milliseconds (what every backend keeps), timezone-aware UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import attrs

from ._epoch import from_epoch_ms

#: Apps an inventory lists at most: a store serves a handful; this only bounds a pathological one.
MAX_APPS = 500


def device_moment(ms: int | None) -> dt.datetime | None:
    """A device clock as a datetime: `None` when absent or outside datetime's range (a device
    may send any 64-bit value)."""
    if ms is None:
        return None
    try:
        return from_epoch_ms(ms)
    except OverflowError:
        return None


def _metadata(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    # Empty and absent alike: not every store tells them apart in a query, and neither shows.
    return dict(value) if value else None


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
    """A device that saw a failure on a version: how many, and the latest one's event time."""

    device_id: str
    failures: int
    last_failure: dt.datetime


@attrs.frozen(kw_only=True)
class DeviceEvent:
    """One stored event of a device, as the timeline shows it.

    Attributes:
        received_at: The server clock, in whole milliseconds.
        device_time: The device clock (the wire ``timestamp``), or `None` without one or when
            it is outside datetime's range.
        channel: ``channel`` when the device sent one, else ``defaultChannel``.
        metadata: `None` when absent or empty.
    """

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
    metadata: Mapping[str, Any] | None = attrs.field(default=None, converter=_metadata)


@attrs.frozen(kw_only=True)
class DeviceSummary:
    """What a device runs now and when it was seen, from its stored events.

    Attributes:
        bundle: The counted version of its latest running-version event (its current bundle),
            by receive time, then device time; `None` without one.
        platform, os_version, native_version, plugin_version, channel, custom_id: From its
            latest event, by receive time, then device time (``channel`` falls back to
            ``defaultChannel``).
        first_seen, last_seen: Its first and last receive time.
        events: Its events stored.
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
