"""Epoch milliseconds: the unit every backend stores times in, converted one way everywhere."""

from __future__ import annotations

import datetime as dt

__all__ = ["EPOCH", "ONE_MS", "day_of", "epoch_ms", "first_ms_from", "from_epoch_ms"]

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
ONE_MS = dt.timedelta(milliseconds=1)
_EPOCH_DAY = EPOCH.date()


def epoch_ms(moment: dt.datetime) -> int:
    """Whole milliseconds since the epoch (floored) of an aware datetime."""
    return (moment - EPOCH) // ONE_MS


def from_epoch_ms(ms: int) -> dt.datetime:
    """The UTC datetime *ms* epoch milliseconds name."""
    return EPOCH + ms * ONE_MS


def day_of(day_number: int) -> dt.date:
    """The UTC date of day *day_number* since the epoch (negative before 1970)."""
    return _EPOCH_DAY + dt.timedelta(days=int(day_number))


def first_ms_from(moment: dt.datetime) -> int:
    """The first whole epoch millisecond at or after *moment*.

    Stored times are whole milliseconds, so ``t >= moment`` is ``t >= first_ms_from(moment)``
    and ``t < moment`` is ``t < first_ms_from(moment)``, even for a bound between two.
    """
    return -((EPOCH - moment) // ONE_MS)
