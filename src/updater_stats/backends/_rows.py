"""What every backend's row building shares."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import TypeVar

from .._models import StoredEvent

T = TypeVar("T")


def per_request(events: Sequence[StoredEvent], convert: Callable[[dt.datetime], T]) -> list[T]:
    """``convert(stored.received_at)`` for every event, computed once per request.

    The events of one request share one `received_at` object, and a batch holds
    a few requests: the conversion runs a few times per write, not once per event.
    """
    converted: list[T] = []
    last: dt.datetime | None = None
    value: T
    for stored in events:
        if stored.received_at is not last:
            last = stored.received_at
            value = convert(last)
        converted.append(value)
    return converted
