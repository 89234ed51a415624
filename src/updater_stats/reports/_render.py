"""Plain-text tables for a `Summary` and a `HealthReport`: a terminal, a pipe or a CI log.

No table library: a table whose columns fit the width is printed as aligned columns; one that
does not is stacked, one block per row with a ``name: value`` line per column, wrapped at the
width. No cell is ever cut.
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from collections.abc import Sequence
from typing import IO

import attrs

from ._health import HealthReport
from ._summary import Summary

#: The width when nothing says otherwise (a pipe, a CI log): what any terminal shows.
DEFAULT_WIDTH = 80
_GAP = "  "
_FIGURE_START = set("0123456789-")


@attrs.frozen
class TextTable:
    """A titled table of text cells; the first column names the row."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def render(self, width: int = DEFAULT_WIDTH) -> list[str]:
        """The table as lines of at most *width* characters where the cells allow it."""
        lines = [self.title, "=" * min(len(self.title), width)]
        if not self.rows:
            return [*lines, "(none)"]
        widths = [
            max(len(column), *(len(row[index]) for row in self.rows))
            for index, column in enumerate(self.columns)
        ]
        if sum(widths) + len(_GAP) * (len(widths) - 1) <= width:
            # Figures align right, text left; the first column always names the row.
            right = [
                index > 0 and all(row[index][:1] in _FIGURE_START for row in self.rows)
                for index in range(len(self.columns))
            ]
            lines.append(_line(self.columns, widths, right))
            lines.append(_line(tuple("-" * w for w in widths), widths, right))
            lines.extend(_line(row, widths, right) for row in self.rows)
            return lines
        # Stacked: the key on a line of its own, then each other column on its own line.
        label = max(len(column) for column in self.columns[1:])
        for row in self.rows:
            lines.append(f"{self.columns[0]} {row[0]}")
            for column, cell in zip(self.columns[1:], row[1:], strict=True):
                lines.extend(
                    textwrap.wrap(
                        cell,
                        width=max(width, label + 20),
                        initial_indent=f"  {column.ljust(label)}  ",
                        subsequent_indent=" " * (label + 4),
                        break_long_words=False,
                        break_on_hyphens=False,
                    )
                    or [f"  {column}"]
                )
        return lines


def _line(cells: Sequence[str], widths: Sequence[int], right: Sequence[bool]) -> str:
    return _GAP.join(
        cell.rjust(w) if r else cell.ljust(w)
        for cell, w, r in zip(cells, widths, right, strict=True)
    ).rstrip()


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def _name(version: str) -> str:
    return version or '""'


def _sent(value: str) -> str:
    """A platform, OS, plugin or native version; empty when the devices did not send it."""
    return value or "(not sent)"


def summary_tables(summary: Summary) -> list[TextTable]:
    """One table per report; failures, rollbacks and replacements in tables of their own."""
    versions = TextTable(
        "Versions",
        ("version", "devices", "installs", "failed", "failure rate", "95 % interval"),
        tuple(
            (
                _name(v.version),
                str(v.devices),
                str(v.installs),
                str(v.failed_devices),
                _pct(v.failure_rate),
                "-"
                if v.failure_interval is None
                else f"{_pct(v.failure_interval[0])} to {_pct(v.failure_interval[1])}",
            )
            for v in summary.versions
        ),
    )
    failures = TextTable(
        "Failures by action (events)",
        ("version", "action", "events"),
        tuple(
            (_name(v.version), action, str(n))
            for v in summary.versions
            for action, n in sorted(v.failures.items(), key=lambda item: (-item[1], item[0]))
        ),
    )
    moves = TextTable(
        "Rollbacks and replacements (events)",
        ("version", "what", "events"),
        tuple(
            (_name(v.version), what, str(n))
            for v in summary.versions
            for what, n in [
                *v.rollbacks.items(),
                *((f"replaced by {_name(new)}", n) for new, n in v.replaced_by.items()),
            ]
        ),
    )
    funnel = TextTable(
        "Update funnel (devices, share of the step before)",
        ("version", "started", "downloaded", "set", "launched"),
        tuple(
            (
                _name(f.version),
                *(
                    f"{s.devices}" + ("" if s.conversion is None else f" ({_pct(s.conversion)})")
                    for s in f.steps
                ),
            )
            for f in summary.funnel
        ),
    )
    adoption = TextTable(
        f"Running now ({summary.adoption.devices} devices)",
        ("split", "value", "devices", "share"),
        tuple(
            (
                label,
                _name(share.value) if label == "version" else _sent(share.value),
                str(share.devices),
                _pct(share.share),
            )
            for label, shares in (
                ("version", summary.adoption.versions),
                ("platform", summary.adoption.platforms),
                ("OS", summary.adoption.os_versions),
                ("plugin", summary.adoption.plugin_versions),
                ("native", summary.adoption.native_versions),
            )
            for share in shares
        ),
    )
    active = TextTable(
        f"Active devices ({summary.active.total} in the window)",
        ("day", "devices"),
        tuple((day.day.isoformat(), str(day.devices)) for day in summary.active.by_day),
    )
    latency = TextTable(
        "Download time",
        ("version", "samples", "p50", "p90", "p99"),
        tuple(
            (
                _name(c.version),
                str(c.samples),
                *(f"{ms / 1000:.1f} s" for ms in (c.p50_ms, c.p90_ms, c.p99_ms)),
            )
            for c in summary.latency
        ),
    )
    return [versions, failures, moves, funnel, adoption, active, latency]


def output_width(file: IO[str]) -> int:
    """``COLUMNS`` when set, else the terminal's width when *file* is one, else `DEFAULT_WIDTH`."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if file.isatty():
        return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns
    return DEFAULT_WIDTH


def print_summary(summary: Summary, file: IO[str] | None = None, width: int | None = None) -> None:
    """Every table of *summary* as plain text, separated by blank lines, as
    ``updater-stats report`` prints them: *width* columns (default: the terminal's, or 80
    in a pipe), a table too wide stacking its rows instead of cutting cells."""
    out = file or sys.stdout
    width = width or output_width(out)
    blocks = ["\n".join(table.render(width)) for table in summary_tables(summary)]
    out.write("\n\n".join(blocks) + "\n")


def health_lines(report: HealthReport) -> list[str]:
    """The verdict line, then one line per reason."""
    verdict = report.verdict
    head = f"{report.app_id} {report.version}: {verdict.value} (exit {verdict.exit_code})"
    return [head, *(f"  - {reason}" for reason in report.reasons)]


def print_health(report: HealthReport, file: IO[str] | None = None) -> None:
    """The verdict of *report* and its reasons, as ``updater-stats gate`` prints them."""
    (file or sys.stdout).write("\n".join(health_lines(report)) + "\n")
