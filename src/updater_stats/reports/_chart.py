"""A PNG of what a release manager decides on, per day (matplotlib, optional).

Three panels sharing the days: installs as stacked bars by version; each version's
unique-device failure rate with the gate's limit drawn across; adoption, each version's
share of the devices running any version that day.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from .._counts import DailyVersionCounts
from .._versions import version_order_key
from ..exceptions import ConfigurationError

#: Versions beyond this many (by installs and running devices) are drawn together as "other".
MAX_VERSIONS = 8
#: A day's failure rate is drawn only from this many devices of the version up.
MIN_RATE_DEVICES = 5


def _matplotlib() -> tuple[Any, Any]:
    """The `Figure` class and the colormap lookup, or a `ConfigurationError` naming the extra."""
    try:
        from matplotlib import colormaps  # noqa: PLC0415 - an optional extra.
        from matplotlib.figure import Figure  # noqa: PLC0415
    except ImportError:
        raise ConfigurationError(
            "charts need matplotlib: pip install 'updater-stats[reports]'", code="missing_extra"
        ) from None
    return Figure, colormaps.get_cmap


def require_matplotlib() -> None:
    """Raise the `ConfigurationError` `daily_chart` would, before any work is done."""
    _matplotlib()


def _series(
    daily: Sequence[DailyVersionCounts], days: list[dt.date], versions: list[str], field: str
) -> dict[str, list[int]]:
    values: dict[str, dict[dt.date, int]] = defaultdict(lambda: defaultdict(int))
    for row in daily:
        name = row.version if row.version in versions else "other"
        values[name][row.day] += getattr(row, field)
    return {
        name: [values[name][day] for day in days] for name in [*versions, "other"] if name in values
    }


def daily_chart(
    daily: Sequence[DailyVersionCounts],
    path: str | os.PathLike[str],
    *,
    title: str = "",
    max_failure_rate: float = 0.05,
) -> None:
    """Write a PNG: installs per day, failure rate per version per day, adoption per version.

    The failure rate is ``failed_devices / devices`` of the version that day, drawn for days
    with at least `MIN_RATE_DEVICES` devices, against *max_failure_rate* (the gate's limit).
    Uses matplotlib's object API without pyplot, so no global state or display is touched.
    """
    figure = chart_figure(daily, title=title, max_failure_rate=max_failure_rate)
    figure.savefig(os.fspath(path), format="png", dpi=100)


def chart_figure(
    daily: Sequence[DailyVersionCounts], *, title: str = "", max_failure_rate: float = 0.05
) -> Any:
    """The matplotlib `Figure` `daily_chart` saves."""
    figure_class, colormap = _matplotlib()
    first = min((row.day for row in daily), default=dt.datetime.now(dt.timezone.utc).date())
    last = max((row.day for row in daily), default=first)
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    totals: dict[str, int] = defaultdict(int)
    for row in daily:
        totals[row.version] += row.installs + row.running_devices
    by_size = sorted(totals, key=version_order_key, reverse=True)
    biggest = sorted(by_size, key=lambda v: -totals[v])[:MAX_VERSIONS]
    # Oldest version first, so each new release sits on top of the ones it replaces.
    versions = sorted(biggest, key=version_order_key)
    # A sequential palette, oldest to newest: no colour that reads as "good" or "bad".
    cmap = colormap("viridis")
    palette = {v: cmap(0.9 * i / max(1, len(versions) - 1)) for i, v in enumerate(versions)}
    figure = figure_class(figsize=(10, 9), layout="constrained")
    installs_axis, rate_axis, adoption_axis = figure.subplots(3, 1, sharex=True)

    bottom = [0] * len(days)
    for name, counts in _series(daily, days, versions, "installs").items():
        installs_axis.bar(
            days, counts, bottom=bottom, label=name, color=palette.get(name, "lightgray")
        )
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    installs_axis.set_ylabel("installs (set) per day")

    for version in versions:
        points = [
            (row.day, 100 * row.failed_devices / row.devices)
            for row in sorted(daily, key=lambda row: row.day)
            if row.version == version and row.devices >= MIN_RATE_DEVICES
        ]
        if points:
            xs, ys = zip(*points, strict=True)
            rate_axis.plot(xs, ys, marker="o", markersize=3, color=palette[version], label=version)
    rate_axis.axhline(
        100 * max_failure_rate,
        color="black",
        linestyle="--",
        linewidth=1,
        label=f"gate limit {100 * max_failure_rate:g} %",
    )
    rate_axis.set_ylabel("devices with a failure, %")
    rate_axis.set_ylim(bottom=0)
    rate_axis.legend(loc="upper left", fontsize="small")

    running = _series(daily, days, versions, "running_devices")
    day_totals = [sum(column) for column in zip(*running.values(), strict=True)] or []
    if running:
        shares = [
            [100 * n / total if total else 0 for n, total in zip(counts, day_totals, strict=True)]
            for counts in running.values()
        ]
        colors = [palette.get(name, "lightgray") for name in running]
        adoption_axis.stackplot(days, *shares, labels=list(running), colors=colors, alpha=0.9)
    adoption_axis.set_ylabel("share of running devices, %")
    adoption_axis.set_ylim(0, 100)

    for axis in (installs_axis, rate_axis, adoption_axis):
        axis.grid(visible=True, alpha=0.3)
    if installs_axis.get_legend_handles_labels()[0]:
        installs_axis.legend(loc="upper left", fontsize="small", ncols=2)
    adoption_axis.tick_params(axis="x", labelrotation=30)
    if title:
        figure.suptitle(title)
    return figure
