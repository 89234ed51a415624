"""Charts as SVG drawn on the server: no script, nothing fetched, readable at any width.

Counts per day are bars, rates are steps (a day's rate holds for the whole day), a
threshold is a dashed line, and each version keeps one colour on every chart and page.
Every text in a chart is escaped here; the SVG goes into the page as it is.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from html import escape

from markupsafe import Markup

from .._versions import version_order_key

__all__ = ["bars_chart", "colour", "daily_bars", "daily_steps"]

#: Colours picked for contrast with each other and on white (Okabe-Ito and Tableau hues).
PALETTE = (
    "#0072b2",
    "#e69f00",
    "#009e73",
    "#cc79a7",
    "#56b4e9",
    "#d55e00",
    "#6a3d9a",
    "#8c564b",
    "#b8a100",
    "#17becf",
    "#7f7f7f",
    "#1f4e79",
)

_W, _H = 640, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 12, 12, 28


def colour(version: str) -> str:
    """The colour of *version*: the same on every chart and page, whatever else is shown."""
    digest = hashlib.sha256(version.encode("utf-8", "surrogatepass")).digest()
    return PALETTE[digest[0] % len(PALETTE)]


# C0 and C1 controls (but tab and newline) and the characters that reorder text (bidi).
HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """*text* with control and direction characters shown as escapes (``\\u202e``)."""
    return HIDDEN.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _e(text: object) -> str:
    return escape(visible(str(text)), quote=True)


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        top = step * magnitude
        if top >= value:
            return float(top)
    return float(value)


def _frame(kind: str, label: str, points: int, body: list[str], legend: Sequence[str]) -> Markup:
    keys = "".join(
        f'<li><span class="swatch swatch-{PALETTE.index(colour(v))}"></span>{_e(v)}</li>'
        for v in legend
    )
    svg = (
        f'<figure class="chart-box"><svg class="chart" data-chart="{_e(kind)}" '
        f'data-points="{points}" viewBox="0 0 {_W} {_H}" preserveAspectRatio="xMidYMid meet" '
        f'role="img" aria-label="{_e(label)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{_e(label)}</title>{''.join(body)}</svg>"
        + (f'<ul class="legend">{keys}</ul>' if keys else "")
        + "</figure>"
    )
    return Markup(svg)  # noqa: S704 - built above from escaped text and numbers only


def _axes(days: Sequence[dt.date], top: float, as_rate: bool) -> list[str]:
    out = []
    plot_h = _H - _TOP - _BOTTOM
    for i in range(5):
        value = top * i / 4
        y = _TOP + plot_h - plot_h * i / 4
        if as_rate:
            text = f"{value * 100:.0f} %" if top >= 0.2 else f"{value * 100:.1f} %"
        else:
            text = f"{value:,.0f}"
        out.append(
            f'<line class="grid" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{_LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_e(text)}</text>"
        )
    if days:
        width = (_W - _LEFT - _RIGHT) / len(days)
        every = max(1, len(days) // 7)
        for i, day in enumerate(days):
            if i % every:
                continue
            x = _LEFT + width * (i + 0.5)
            out.append(
                f'<text class="tick" x="{x:.1f}" y="{_H - 8}" text-anchor="middle">'
                f"{_e(day.strftime('%b %d'))}</text>"
            )
    return out


def _day_range(days: Sequence[dt.date]) -> list[dt.date]:
    if not days:
        return []
    first, last = min(days), max(days)
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def daily_bars(kind: str, label: str, values: Mapping[tuple[dt.date, str], int]) -> Markup:
    """Stacked bars: one bar a day, one segment per version (its count that day)."""
    days = _day_range([day for day, _ in values])
    versions = sorted({v for _, v in values}, key=version_order_key)
    totals = {day: sum(n for (d, _), n in values.items() if d == day) for day in days}
    top = _nice_max(max(totals.values(), default=0))
    plot_h = _H - _TOP - _BOTTOM
    body = _axes(days, top, as_rate=False)
    if days:
        width = (_W - _LEFT - _RIGHT) / len(days)
        for i, day in enumerate(days):
            base = 0
            for version in versions:
                n = values.get((day, version), 0)
                if not n:
                    continue
                h = plot_h * n / top
                y = _TOP + plot_h - plot_h * (base + n) / top
                body.append(
                    f'<rect class="bar" x="{_LEFT + width * i + width * 0.1:.1f}" y="{y:.1f}" '
                    f'width="{width * 0.8:.1f}" height="{h:.1f}" fill="{colour(version)}">'
                    f"<title>{_e(day.isoformat())} {_e(version)}: {n}</title></rect>"
                )
                base += n
    return _frame(kind, label, sum(1 for n in values.values() if n), body, versions)


def daily_steps(
    kind: str,
    label: str,
    rates: Mapping[tuple[dt.date, str], float],
    *,
    threshold: float | None = None,
) -> Markup:
    """Rates per day and version as steps (each day's rate held across the day), a threshold
    as a dashed line."""
    days = _day_range([day for day, _ in rates])
    versions = sorted({v for _, v in rates}, key=version_order_key)
    top = _nice_max(max([*rates.values(), threshold or 0.0, 0.01]) * 1.1)
    top = min(top, 1.0)
    plot_h = _H - _TOP - _BOTTOM
    body = _axes(days, top, as_rate=True)
    width = (_W - _LEFT - _RIGHT) / max(len(days), 1)

    def y_of(rate: float) -> float:
        return _TOP + plot_h - plot_h * min(rate, top) / top

    if threshold is not None:
        y = y_of(threshold)
        body.append(
            f'<line class="threshold" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="threshold-label" x="{_W - _RIGHT - 2}" y="{y - 4:.1f}" '
            f'text-anchor="end">limit {threshold * 100:.1f} %</text>'
        )
    for version in versions:
        parts: list[str] = []
        pen_down = False
        for i, day in enumerate(days):
            rate = rates.get((day, version))
            if rate is None:
                pen_down = False
                continue
            x0, x1, y = _LEFT + width * i, _LEFT + width * (i + 1), y_of(rate)
            parts.append(f"{'L' if pen_down else 'M'}{x0:.1f},{y:.1f} L{x1:.1f},{y:.1f}")
            pen_down = True
        if parts:
            body.append(
                f'<path class="step" d="{" ".join(parts)}" stroke="{colour(version)}" '
                f'fill="none"><title>{_e(version)}</title></path>'
            )
    return _frame(kind, label, len(rates), body, versions)


def bars_chart(kind: str, label: str, rows: Sequence[tuple[str, float, str]]) -> Markup:
    """Horizontal bars, one per row: (name, value between 0 and 1, text shown beside it)."""
    height = 26 * max(len(rows), 1) + 8
    body = []
    for i, (name, value, text) in enumerate(rows):
        y = 6 + i * 26
        w = max(0.0, min(1.0, value)) * (_W - 330)
        body.append(
            f'<text class="label" x="150" y="{y + 14}" text-anchor="end">{_e(name[:24])}</text>'
            f'<rect class="bar" x="156" y="{y}" width="{w:.1f}" height="18" '
            f'fill="{colour(name) if kind != "funnel" else PALETTE[0]}">'
            f"<title>{_e(name)}: {_e(text)}</title></rect>"
            f'<text class="value" x="{160 + w:.1f}" y="{y + 14}">{_e(text)}</text>'
        )
    svg = (
        f'<figure class="chart-box"><svg class="chart" data-chart="{_e(kind)}" '
        f'data-points="{len(rows)}" viewBox="0 0 {_W} {height}" role="img" '
        f'aria-label="{_e(label)}" xmlns="http://www.w3.org/2000/svg"><title>{_e(label)}</title>'
        f"{''.join(body)}</svg></figure>"
    )
    return Markup(svg)  # noqa: S704 - built above from escaped text and numbers only
