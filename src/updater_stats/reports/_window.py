"""Which stored events a report counts, and when each happened: the one reading of a
`ReportQuery` that the Python read sides (`EventReportSource`, `EventInventory`) share."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .. import _semantics as sem
from .._epoch import ONE_MS, epoch_ms, from_epoch_ms

if TYPE_CHECKING:
    from .._models import StoredEvent
    from .._query import ReportQuery
    from .._storage import SupportsEvents

__all__ = ["app_events", "event_time", "window"]

_AHEAD_MS = sem.MAX_CLOCK_AHEAD // ONE_MS
_DELAY_MS = sem.MAX_QUEUE_DELAY // ONE_MS


def event_time(received_ms: int, device_ts: int | None) -> int:
    """The device clock when it is plausible against the receive time, else the receive time."""
    if device_ts is not None and received_ms - _DELAY_MS <= device_ts <= received_ms + _AHEAD_MS:
        return device_ts
    return received_ms


def app_events(
    backend: SupportsEvents, app_id: str, since: dt.datetime | None = None
) -> Iterator[StoredEvent]:
    """*app_id*'s stored events, those received at or after *since* when given."""
    bounds: dict[str, Any] = {} if since is None else {"since": since}
    for stored in backend.events(app_id=app_id, **bounds):
        # Checked again: a backend may read more than it was asked for.
        if stored.event.app_id == app_id and (since is None or stored.received_at >= since):
            yield stored


def window(backend: SupportsEvents, query: ReportQuery) -> Iterator[tuple[int, int, StoredEvent]]:
    """*query*'s events as the reports select them, each with its event time and its receive
    time (epoch milliseconds), read once from *backend*."""
    since_ms, until_ms = query.since_ms, query.until_ms
    # An event time is at most MAX_CLOCK_AHEAD after its receive time: nothing received
    # before this can be in the window. There is no such upper bound to pass, so events
    # received after `until` are read and left out here.
    since = None if since_ms is None else from_epoch_ms(since_ms - _AHEAD_MS)
    all_devices, platform, channel = query.all_devices, query.platform, query.channel
    for stored in app_events(backend, query.app_id, since):
        event = stored.event
        if not all_devices and (not event.is_prod or event.is_emulator):
            continue
        if platform is not None and event.platform != platform:
            continue
        if (
            channel is not None
            and (event.channel if event.channel is not None else event.default_channel) != channel
        ):
            continue
        received_ms = epoch_ms(stored.received_at)
        t = event_time(received_ms, event.timestamp)
        if (since_ms is not None and t < since_ms) or (until_ms is not None and t >= until_ms):
            continue
        yield t, received_ms, stored
