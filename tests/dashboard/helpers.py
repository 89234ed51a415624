"""Drive a dashboard app in-process and read the figures back out of its pages."""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import re
from typing import Any

import httpx

from updater_stats.dashboard import DashboardApp

TOKEN = "dashboard-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: The clock the apps in these tests see: the sample rollout's last day.
NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.timezone.utc)


def request(
    app: DashboardApp,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    scheme: str = "http",
    **options: Any,
) -> httpx.Response:
    """One request through the ASGI interface, as a server would make it."""

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url=f"{scheme}://testserver"
        ) as client:
            return await client.request(method, url, headers=headers, **options)

    return asyncio.run(run())


def get(app: DashboardApp, url: str, **options: Any) -> httpx.Response:
    response = request(app, "GET", url, headers=AUTH, **options)
    assert response.status_code == 200, (url, response.status_code, response.text[:500])
    return response


_ROW = re.compile(r'<tr data-version="([^"]*)">(.*?)</tr>', re.DOTALL)
_FIELD = re.compile(r'data-field="(\w+)">(.*?)</(?:td|dd)>', re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def text(fragment: str) -> str:
    return html.unescape(_TAG.sub("", fragment)).strip()


def version_rows(page: str) -> dict[str, dict[str, str]]:
    """The versions table: version -> field -> text shown."""
    return {
        html.unescape(version): {name: text(value) for name, value in _FIELD.findall(body)}
        for version, body in _ROW.findall(page)
    }


def fields(page: str) -> dict[str, str]:
    """Every ``data-field`` cell of a page (a version's or a device's figures)."""
    return {name: text(value) for name, value in _FIELD.findall(page)}


def charts(page: str) -> dict[str, int]:
    """Each chart on a page and the data points it draws."""
    return {
        kind: int(points)
        for kind, points in re.findall(r'data-chart="([^"]+)" data-points="(\d+)"', page)
    }


def visible(value: str) -> str:
    """*value* as a page shows it: NUL and direction overrides as escapes."""
    for hidden in ("\x00", "\u202e", "\u202c"):
        value = value.replace(hidden, f"\\u{ord(hidden):04x}")
    return value


def pct(value: float | None) -> str:
    return "\u2013" if value is None else f"{value * 100:.1f} %"


def table_cells(page: str, table_id: str) -> list[list[str]]:
    match = re.search(rf'<table id="{table_id}">(.*?)</table>', page, re.DOTALL)
    assert match, table_id
    body = match.group(1).split("<tbody>", 1)[1]
    return [
        [text(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.DOTALL)
    ]
