"""`ReportQuery`: which events a report looks at."""

from __future__ import annotations

import datetime as dt

import attrs

from ._epoch import first_ms_from


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no time zone: pass an aware datetime (UTC)")
    return moment.astimezone(dt.timezone.utc)


@attrs.frozen(kw_only=True)
class ReportQuery:
    """The events one report covers.

    Attributes:
        app_id: The app.
        since: Events at or after this moment (event time, see the docs); `None`: no bound.
        until: Events before this moment; `None`: no bound.
        platform: Only this platform (``android``, ``ios``, ``electron``), or all.
        channel: Only events whose channel is this: ``channel`` when the device sent one,
            else ``defaultChannel``.
        all_devices: Also count development builds (``is_prod`` false) and emulators. Off by
            default: a test device crashing on a build is not a release problem.
    """

    app_id: str
    since: dt.datetime | None = attrs.field(default=None, converter=_utc)
    until: dt.datetime | None = attrs.field(default=None, converter=_utc)
    platform: str | None = None
    channel: str | None = None
    all_devices: bool = False

    def __attrs_post_init__(self) -> None:
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError(f"since ({self.since}) must be before until ({self.until})")

    @classmethod
    def last(
        cls, app_id: str, period: dt.timedelta, *, now: dt.datetime | None = None, **options: object
    ) -> ReportQuery:
        """The *period* up to *now* (default: the current time)."""
        end = now or dt.datetime.now(dt.timezone.utc)
        return cls(app_id=app_id, since=end - period, until=end, **options)  # type: ignore[arg-type]

    @property
    def since_ms(self) -> int | None:
        """The first epoch millisecond at or after `since` (event times are whole
        milliseconds, as backends store them), or `None`."""
        return None if self.since is None else first_ms_from(self.since)

    @property
    def until_ms(self) -> int | None:
        """The first epoch millisecond at or after `until`, which no event counted is at
        or after, or `None`."""
        return None if self.until is None else first_ms_from(self.until)
