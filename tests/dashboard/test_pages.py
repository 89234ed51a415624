"""Every page and filter through the ASGI interface, on SQLite, PostgreSQL, ClickHouse and
memory (its inventory computed in Python): the figures on the pages are the report API's on
the same data, and the devices and timelines the stored events'."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import quote

import pytest
from scripts.sample_rollout import APP

from updater_stats import SQLiteBackend
from updater_stats.dashboard import DashboardApp
from updater_stats.dashboard._pages import window_from
from updater_stats.reports import HealthPolicy, ReportQuery, judge, reports_for

from ..reports.build import device
from .conftest import BUSY_DEVICE, HOSTILE
from .helpers import NOW, charts, fields, get, pct, table_cells, text, version_rows, visible

DAY = dt.timedelta(days=1)

# The default window: 14 days up to the end of the clock's day.
UNTIL = dt.datetime(2026, 11, 25, tzinfo=dt.timezone.utc)
WINDOWS = {
    "default": ("", ReportQuery(app_id=APP, since=UNTIL - dt.timedelta(days=14), until=UNTIL)),
    "7d-ios": (
        "&days=7&platform=ios",
        ReportQuery(app_id=APP, since=UNTIL - dt.timedelta(days=7), until=UNTIL, platform="ios"),
    ),
    "1d-until": (
        "&days=1&until=2026-11-17",
        ReportQuery(
            app_id=APP,
            since=dt.datetime(2026, 11, 17, tzinfo=dt.timezone.utc),
            until=dt.datetime(2026, 11, 18, tzinfo=dt.timezone.utc),
        ),
    ),
}


@pytest.fixture
def reports(store):
    with reports_for(store) as opened:
        yield opened


@pytest.mark.parametrize("window", list(WINDOWS))
def test_app_page_shows_the_reports_figures(dashboard: DashboardApp, reports, window):
    suffix, query = WINDOWS[window]
    page = get(dashboard, f"/dashboard/app?app={APP}{suffix}").text

    expected = reports.versions(query)
    running = {s.value: s.devices for s in reports.adoption(query).versions}
    rows = version_rows(page)
    assert list(rows) == [visible(r.version) for r in expected]
    assert expected, "the window holds events"
    for report in expected:
        row = rows[visible(report.version)]
        verdict, _ = judge(report, HealthPolicy())
        low, high = report.failure_interval or (None, None)
        assert row == {
            "devices": str(report.devices),
            "running": str(running.get(report.version, 0)),
            "installs": str(report.installs),
            "failures": str(report.failure_events),
            "failed_devices": str(report.failed_devices),
            "failure_rate": pct(report.failure_rate),
            "interval": "\u2013" if low is None else f"{pct(low)} \u2013 {pct(high)}",
            "rollbacks": str(sum(report.rollbacks.values())),
        }
        assert f"verdict-{verdict.value}" in page
    daily = reports.daily(query)
    drawn = charts(page)
    assert drawn["adoption"] == sum(1 for c in daily if c.running_devices)
    assert drawn["installs"] == sum(1 for c in daily if c.installs)
    assert drawn["failure-rate"] > 0
    assert drawn["platforms"] == len(reports.adoption(query).platforms)
    assert drawn["plugins"] == min(12, len(reports.adoption(query).plugin_versions))


def test_the_filters_stay_in_the_links(dashboard: DashboardApp):
    page = get(dashboard, f"/dashboard/app?app={APP}&days=7&platform=ios&until=2026-11-20").text

    assert '<option value="7" selected>' in page
    assert '<option value="ios" selected>' in page
    assert 'value="2026-11-20"' in page
    link = re.search(r'href="/dashboard/version\?([^"]+)"', page)
    assert link is not None
    assert "days=7" in link.group(1)
    assert "platform=ios" in link.group(1)
    assert "until=2026-11-20" in link.group(1)


def test_funnel_and_latency_of_the_chosen_version(dashboard: DashboardApp, reports):
    query = WINDOWS["default"][1]
    page = get(dashboard, f"/dashboard/app?app={APP}&version=1.2.0").text

    funnel = next(f for f in reports.funnel(query) if f.version == "1.2.0")
    latency = next(c for c in reports.download_latency(query) if c.version == "1.2.0")
    assert charts(page)["funnel"] == 4
    for step in funnel.steps:
        assert f">{step.name.replace('_', ' ')}</text>" in page
        assert f"{step.name.replace('_', ' ')}: {step.devices}" in page
    cells = table_cells(page, "latency")
    assert cells == [
        [
            "1.2.0",
            f"{latency.p50_ms / 1000:.1f} s",
            f"{latency.p90_ms / 1000:.1f} s",
            f"{latency.p99_ms / 1000:.1f} s",
            str(latency.samples),
        ]
    ]


def test_daily_failure_rates_are_each_days_report(dashboard: DashboardApp, reports):
    query = WINDOWS["default"][1]
    assert query.since is not None
    rates = dashboard._pages_for("/dashboard").data.daily_rates(query)

    days = {rate.day for rate in rates}
    assert len(days) == 14
    for day in sorted(days)[::4]:
        since = dt.datetime.combine(day, dt.time(), dt.timezone.utc)
        one_day = ReportQuery(app_id=APP, since=since, until=since + dt.timedelta(days=1))
        expected = {
            r.version: (r.devices, r.failed_devices) for r in reports.versions(one_day) if r.devices
        }
        shown = {r.version: (r.devices, r.failed_devices) for r in rates if r.day == day}
        assert shown == expected


def test_version_page_figures_and_failing_devices(dashboard: DashboardApp, reports):
    query = WINDOWS["default"][1]
    report = reports.version(query, "1.2.0")
    assert report.failed_devices > 50  # more than one page of failing devices

    page = get(dashboard, f"/dashboard/version?app={APP}&version=1.2.0").text
    shown = fields(page)
    assert shown["devices"] == str(report.devices)
    assert shown["installs"] == str(report.installs)
    assert shown["failures"] == str(report.failure_events)
    assert shown["failed_devices"] == str(report.failed_devices)
    assert shown["failure_rate"] == pct(report.failure_rate)
    assert table_cells(page, "failures") == [
        [action, str(n)]
        for action, n in sorted(report.failures.items(), key=lambda i: (-i[1], i[0]))
    ]
    assert charts(page)["failures"] == len(report.failures)
    devices: list[str] = []
    number = 1
    while True:
        page = get(dashboard, f"/dashboard/version?app={APP}&version=1.2.0&page={number}").text
        rows = table_cells(page, "failing")
        devices += [row[0] for row in rows]
        links = re.findall(r'href="(/dashboard/device\?[^"]+)"', page)
        assert len(links) == len(rows)
        if "Older</a>" not in page:
            break
        number += 1
    assert number >= 2
    assert len(devices) == len(set(devices)) == report.failed_devices
    # Each links to its device page, which answers.
    assert get(dashboard, links[0].replace("&amp;", "&")).status_code == 200


def test_apps_page(dashboard: DashboardApp, reports):
    page = get(dashboard, "/dashboard/").text

    rows = table_cells(page, "apps")
    # Whole UTC days up to and with today.
    end = dt.datetime.combine(NOW.date() + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
    day = reports.active_devices(ReportQuery(app_id=APP, since=end - DAY, until=end))
    week = reports.active_devices(ReportQuery(app_id=APP, since=end - 7 * DAY, until=end))
    assert f"today ({NOW.date().isoformat()})" in page
    assert rows[0][:3] == [APP, str(day.total), str(week.total)]
    assert "1.2.1" in rows[0][3]
    assert "at risk" in rows[0][3] or "healthy" in rows[0][3]


def test_device_search_and_timeline(dashboard: DashboardApp, events):
    device = next(
        e for e in events if e.event.action == "app_crash" and e.event.version_name == "1.2.0"
    )
    device_id = device.event.device_id
    own = sorted((e for e in events if e.event.device_id == device_id), key=lambda e: e.received_at)

    page = get(dashboard, f"/dashboard/devices?app={APP}&q={device_id.upper()}").text
    rows = table_cells(page, "devices")
    assert [row[0] for row in rows] == [device_id]
    assert rows[0][3] == str(len(own))

    page = get(dashboard, f"/dashboard/device?app={APP}&id={device_id}").text
    shown = fields(page)
    assert shown["events"] == str(len(own))
    assert shown["platform"] == own[-1].event.platform
    assert shown["os"] == own[-1].event.version_os
    assert shown["plugin"] == own[-1].event.plugin_version
    assert shown["native"] == own[-1].event.version_build
    assert shown["first_seen"] == own[0].received_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    assert shown["last_seen"] == own[-1].received_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    timeline = table_cells(page, "timeline")
    newest = sorted(own, key=lambda e: e.received_at, reverse=True)[: len(timeline)]
    assert [row[2].split()[0] for row in timeline] == [e.event.action for e in newest]


def test_device_current_bundle_and_paging(dashboard: DashboardApp):
    busy = device(BUSY_DEVICE)
    first = get(dashboard, f"/dashboard/device?app={APP}&id={busy}").text
    second = get(dashboard, f"/dashboard/device?app={APP}&id={busy}&page=2").text
    third = get(dashboard, f"/dashboard/device?app={APP}&id={busy}&page=3").text

    # Downloading 1.3.0 does not make it the bundle the device runs.
    assert fields(first)["bundle"] == "1.2.1"
    assert fields(first)["events"] == "121"
    pages = [table_cells(page, "timeline") for page in (first, second, third)]
    assert [len(rows) for rows in pages] == [50, 50, 21]
    rows = [row for page in pages for row in page]
    assert rows[0][2] == "download_0"
    assert rows[-1][2:4] == ["app_moved_to_foreground", "1.2.0"]
    received = [row[0] for row in rows]
    assert received == sorted(received, reverse=True)
    assert "Older</a>" in first
    assert "Newer</a>" in second
    assert "Older</a>" not in third


def test_device_list_is_paged_by_id(dashboard: DashboardApp, events):
    everyone = sorted({e.event.device_id for e in events if e.event.app_id == APP})
    seen: list[str] = []
    url = f"/dashboard/devices?app={APP}"
    while True:
        page = get(dashboard, url).text
        seen += [row[0] for row in table_cells(page, "devices")]
        more = re.search(r'href="(/dashboard/devices\?[^"]+)">Next devices', page)
        if more is None:
            break
        url = more.group(1).replace("&amp;", "&")
    assert seen == everyone


def test_search_by_custom_id_and_no_match(dashboard: DashboardApp):
    page = get(dashboard, f"/dashboard/devices?app={APP}&q={quote(HOSTILE[1])}").text
    assert len(table_cells(page, "devices")) == 1

    page = get(dashboard, f"/dashboard/devices?app={APP}&q=nobody-at-all").text
    assert table_cells(page, "devices") == []
    assert 'id="no-match"' in page


@pytest.mark.parametrize(
    "url",
    [
        "/dashboard/",
        f"/dashboard/app?app={APP}",
        f"/dashboard/version?app={APP}&version={quote(HOSTILE[0])}",
        f"/dashboard/version?app={APP}&version=1.2.0&days=1&until=2026-11-24",
        f"/dashboard/devices?app={APP}&q={quote(HOSTILE[0])}",
        f"/dashboard/device?app={APP}&id=00000000-0000-0000-0000-000000001b58",
        f"/dashboard/device?app={APP}&id=00000000-0000-0000-0000-000000001b59",
        f"/dashboard/device?app={APP}&id=00000000-0000-0000-0000-000000001bbc",
    ],
)
def test_stored_strings_are_escaped(dashboard: DashboardApp, url):
    page = get(dashboard, url).text

    assert "<script" not in page.lower()
    assert "<img" not in page.lower()
    assert "\u202e" not in page
    assert "\x00" not in page
    assert not re.search(r"\son\w+\s*=", page)  # no inline event handlers
    assert "<style" not in page
    assert " style=" not in page


def test_hostile_strings_show_as_text(dashboard: DashboardApp):
    page = get(dashboard, f"/dashboard/app?app={APP}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "\\u202eevil\\u202c" in page
    assert "nul\\u0000byte" in page

    page = get(
        dashboard, f"/dashboard/device?app={APP}&id=00000000-0000-0000-0000-000000001b58"
    ).text
    assert text("&lt;script&gt;") in text(page)


def test_unknown_pages_and_bad_parameters(dashboard: DashboardApp):
    from .helpers import AUTH, request  # noqa: PLC0415

    assert request(dashboard, "GET", "/dashboard/nothing", headers=AUTH).status_code == 404
    assert request(dashboard, "GET", "/dashboard/app?app=x&days=5", headers=AUTH).status_code == 400
    assert request(dashboard, "GET", "/dashboard/app", headers=AUTH).status_code == 400
    assert (
        request(dashboard, "GET", "/dashboard/app?app=x&until=soon", headers=AUTH).status_code
        == 400
    )
    assert (
        request(
            dashboard, "GET", f"/dashboard/device?app={APP}&id=missing", headers=AUTH
        ).status_code
        == 404
    )


def test_sqlite_pages_read_the_day_summaries(dashboard: DashboardApp, store) -> None:
    """Over SQLite the pages' figures come from the day summaries (the tests above hold
    them to the reports read from every event); elsewhere from the read side's queries."""
    get(dashboard, f"/dashboard/app?app={APP}&days=7")
    source = dashboard._data.reports.source
    week = ReportQuery(app_id=APP, since=NOW - 7 * DAY, until=NOW)
    whole_days = window_from({"app": APP, "days": "7"}, NOW).query
    if isinstance(store, SQLiteBackend):
        assert source.summarized(whole_days)
        assert not source.summarized(week)  # not whole days: read from every event
    else:
        assert not hasattr(source, "summarized")
