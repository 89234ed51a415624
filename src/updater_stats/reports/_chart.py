"""A PNG of daily installs, failures and running devices by version (matplotlib, optional)."""

from __future__ import annotations

import datetime as dt
import os
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from .._versions import version_order_key
from ..exceptions import ConfigurationError
from ._records import DailyVersionCounts

#: Versions beyond this many (by installs) are drawn together as "other".
MAX_VERSIONS = 8


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
    daily: Sequence[DailyVersionCounts], path: str | os.PathLike[str], *, title: str = ""
) -> None:
    """Write a PNG with three panels: installs, failures and running devices per day.

    Uses matplotlib's object API without pyplot, so no global state or display is touched.
    """
    figure_class, colormap = _matplotlib()
    first = min((row.day for row in daily), default=dt.datetime.now(dt.timezone.utc).date())
    last = max((row.day for row in daily), default=first)
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    totals: dict[str, int] = defaultdict(int)
    first_day: dict[str, dt.date] = {}
    for row in daily:
        totals[row.version] += row.installs + row.running_devices
        first_day[row.version] = min(row.day, first_day.get(row.version, row.day))
    biggest = sorted(totals, key=lambda v: (-totals[v], v))[:MAX_VERSIONS]
    # Stacked oldest first, so each new release sits on top of the ones it replaces.
    versions = sorted(biggest, key=lambda v: (first_day[v], version_order_key(v)))
    # A sequential palette, oldest to newest: no colour that reads as "good" or "bad".
    cmap = colormap("viridis")
    palette = {v: cmap(0.9 * i / max(1, len(versions) - 1)) for i, v in enumerate(versions)}
    figure = figure_class(figsize=(10, 9), layout="constrained")
    axes = figure.subplots(3, 1, sharex=True)
    panels = (
        ("installs", "installs (set) per day"),
        ("failures", "failure events per day"),
        ("running_devices", "devices running the version"),
    )
    for axis, (field, label) in zip(axes, panels, strict=True):
        series = _series(daily, days, versions, field)
        if series:
            colors = [palette.get(name, "lightgray") for name in series]
            axis.stackplot(days, *series.values(), labels=list(series), colors=colors, alpha=0.9)
        axis.set_ylabel(label)
        axis.grid(visible=True, alpha=0.3)
    if any(axis.get_legend_handles_labels()[0] for axis in axes):
        axes[0].legend(loc="upper left", fontsize="small", ncols=2)
    axes[-1].tick_params(axis="x", labelrotation=30)
    if title:
        figure.suptitle(title)
    figure.savefig(os.fspath(path), format="png", dpi=100)
