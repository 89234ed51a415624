"""MERGE(issue 14): a stand-in until `reports_for` computes the reports of a backend that only
streams its events (`EventReportSource`, the other half of the issue). Then delete this
module, and its uses fall away: `reports_fall_back()` is true, and `inventory_only()` does
nothing.

Until then such a backend has its device inventory (`EventInventory`) but no report figures,
and `DashboardData.open` stops at `reports_for`. `inventory_only()` gives it a `Reports`
whose every figure fails the test, so that the inventory's half (the device pages,
``updater-stats devices``) is tested today over the very code path it takes after the merge.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import NoReturn

import pytest

from updater_stats import ConfigurationError, MemoryBackend
from updater_stats import _inventory as inventory_module
from updater_stats.reports import Reports, reports_for


def reports_fall_back() -> bool:
    """Whether `reports_for` gives a backend with only ``events()`` its reports already."""
    try:
        reports_for(MemoryBackend()).close()
    except ConfigurationError:
        return False
    return True


def _refuse(*_args: object) -> NoReturn:
    pytest.fail("report figures of a backend without SQL need issue 14's EventReportSource")


class NoFigures:
    """A `ReportSource` that has no figure to give: asking for one fails the test. (Only its
    six questions: it must not pass for an `InventorySource`.)"""

    version_counts = funnel_counts = running_versions = staticmethod(_refuse)
    active_devices = download_latency = daily_counts = staticmethod(_refuse)

    def close(self) -> None:
        pass


@contextlib.contextmanager
def inventory_only() -> Iterator[None]:
    """`DashboardData` over a backend without a `ReportSource` gets `NoFigures` for its
    reports (before the merge; nothing changes after it)."""
    if reports_fall_back():
        yield
        return
    real_reports_for, real_open_reports = reports_for, inventory_module.open_reports

    def reports_or_none(backend: object) -> Reports:
        try:
            return real_reports_for(backend)
        except ConfigurationError as error:
            if error.code != "no_read_side":
                raise
            return Reports(NoFigures())  # type: ignore[arg-type]

    def open_or_none(url: str) -> Reports:
        try:
            return real_open_reports(url)
        except ConfigurationError as error:
            if error.code != "no_read_side":
                raise
            return Reports(NoFigures())  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(inventory_module, "reports_for", reports_or_none)
        patch.setattr(inventory_module, "open_reports", open_or_none)
        yield
