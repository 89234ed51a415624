"""Terminal tables for a `Summary` and a `HealthReport`, with rich (the ``reports`` extra)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigurationError
from ._health import HealthReport, Verdict
from ._summary import Summary

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

_VERDICT_STYLES = {
    Verdict.HEALTHY: "bold green",
    Verdict.WARNING: "bold yellow",
    Verdict.AT_RISK: "bold red",
    Verdict.INSUFFICIENT_DATA: "bold blue",
}


def _rich() -> Any:
    try:
        import rich.console  # noqa: PLC0415 - an optional extra.
        import rich.table  # noqa: PLC0415
    except ImportError:
        raise ConfigurationError(
            "tables need rich: pip install 'updater-stats[reports]'", code="missing_extra"
        ) from None
    return rich


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def _table(title: str, *columns: str) -> Table:
    table: Table = _rich().table.Table(title=title, title_justify="left", header_style="bold")
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right")
    return table


def summary_tables(summary: Summary) -> list[Table]:
    """One table per report."""
    versions = _table(
        "Versions",
        "version",
        "devices",
        "installs",
        "failed devices",
        "failure rate",
        "95 % interval",
        "failures",
        "rollbacks",
        "replaced by",
    )
    for v in summary.versions:
        interval = v.failure_interval
        versions.add_row(
            v.version or '""',
            str(v.devices),
            str(v.installs),
            str(v.failed_devices),
            _pct(v.failure_rate),
            "-" if interval is None else f"{_pct(interval[0])} to {_pct(interval[1])}",
            ", ".join(f"{a} {n}" for a, n in v.failures.items()) or "-",
            ", ".join(f"{a} {n}" for a, n in v.rollbacks.items()) or "-",
            ", ".join(f"{w} {n}" for w, n in v.replaced_by.items()) or "-",
        )
    funnel = _table(
        "Update funnel (devices)", "version", "started", "downloaded", "set", "launched"
    )
    for f in summary.funnel:
        funnel.add_row(
            f.version,
            *(
                f"{s.devices}" + ("" if s.conversion is None else f" ({_pct(s.conversion)})")
                for s in f.steps
            ),
        )
    adoption = _table(
        f"Running now ({summary.adoption.devices} devices)", "split", "value", "devices", "share"
    )
    for label, shares in (
        ("version", summary.adoption.versions),
        ("platform", summary.adoption.platforms),
        ("OS", summary.adoption.os_versions),
        ("plugin", summary.adoption.plugin_versions),
        ("native", summary.adoption.native_versions),
    ):
        for share in shares:
            adoption.add_row(label, share.value, str(share.devices), _pct(share.share))
    active = _table(f"Active devices ({summary.active.total} in the window)", "day", "devices")
    for day in summary.active.by_day:
        active.add_row(day.day.isoformat(), str(day.devices))
    latency = _table("Download time", "version", "samples", "p50", "p90", "p99")
    for c in summary.latency:
        latency.add_row(
            c.version,
            str(c.samples),
            *(f"{ms / 1000:.1f} s" for ms in (c.p50_ms, c.p90_ms, c.p99_ms)),
        )
    return [versions, funnel, adoption, active, latency]


def print_summary(summary: Summary, console: Console | None = None) -> None:
    console = console or _rich().console.Console()
    for table in summary_tables(summary):
        console.print(table)


def print_health(report: HealthReport, console: Console | None = None) -> None:
    console = console or _rich().console.Console()
    style = _VERDICT_STYLES[report.verdict]
    console.print(
        f"{report.app_id} {report.version}: [{style}]{report.verdict.value}[/{style}] "
        f"(exit {report.verdict.exit_code})"
    )
    for reason in report.reasons:
        console.print(f"  - {reason}", highlight=False)
