"""The pages: each gathers its figures through `DashboardData` and renders one template.

Runs in a worker thread (every read blocks). Every value a device wrote is escaped by the
templates (autoescape), and control and direction characters are shown as escapes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import attrs
import jinja2
from markupsafe import Markup

from .._inventory import DashboardData, day_rates
from .._semantics import FAILURES
from .._versions import version_order_key
from ..reports import HealthPolicy, ReportQuery, VersionReport, judge
from . import _charts as charts

#: The windows a page may show, in days.
WINDOWS = (1, 7, 14, 30, 90)
DEFAULT_DAYS = 14
PLATFORMS = ("android", "ios", "electron")
PAGE_SIZE = 50


class NotFoundError(Exception):
    """The page asked for does not exist (404)."""


class BadRequestError(Exception):
    """A parameter cannot be understood (400)."""


def _visible(value: Any) -> Any:
    """Every ``{{ }}`` output: `None` as nothing, hidden characters as visible escapes."""
    if value is None:
        return ""
    if isinstance(value, str) and not isinstance(value, Markup):
        return charts.visible(value)
    return value


def _pct(value: float | None, digits: int = 1) -> str:
    return "\u2013" if value is None else f"{value * 100:.{digits}f} %"


def _when(moment: dt.datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("updater_stats.dashboard", "templates"),
        autoescape=True,
        finalize=_visible,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["pct"] = _pct
    env.filters["when"] = _when
    env.filters["q"] = lambda text: quote(str(text), safe="")
    env.filters["colour_class"] = lambda v: f"swatch-{charts.PALETTE.index(charts.colour(v))}"
    return env


@attrs.frozen(kw_only=True)
class Window:
    """The events a page looks at, as the URL gives them."""

    app_id: str
    days: int
    until: dt.datetime
    platform: str | None

    @property
    def query(self) -> ReportQuery:
        """The `ReportQuery` of this window."""
        return ReportQuery(
            app_id=self.app_id,
            since=self.until - dt.timedelta(days=self.days),
            until=self.until,
            platform=self.platform,
        )

    @property
    def last_day(self) -> dt.date:
        """The last UTC day the window covers."""
        return (self.until - dt.timedelta(days=1)).date()

    def params(self, **extra: object) -> str:
        """The query string that shows this window, with *extra* parameters."""
        values: dict[str, object] = {"app": self.app_id, "days": self.days}
        values["until"] = self.last_day.isoformat()
        if self.platform:
            values["platform"] = self.platform
        values.update({k: v for k, v in extra.items() if v is not None})
        return "&".join(f"{k}={quote(str(v), safe='')}" for k, v in values.items())


def window_from(args: Mapping[str, str], now: dt.datetime) -> Window:
    """The window a URL's parameters ask for: ``days``, ``until`` (a UTC date, excluded: the
    window ends at the start of the day after it), ``platform``; default 14 days up to
    the end of today."""
    app = args.get("app", "")
    if not app:
        raise BadRequestError("app")
    try:
        days = int(args.get("days", DEFAULT_DAYS))
    except ValueError:
        raise BadRequestError("days") from None
    if days not in WINDOWS:
        raise BadRequestError("days")
    if args.get("until"):
        try:
            day = dt.date.fromisoformat(args["until"])
        except ValueError:
            raise BadRequestError("until") from None
    else:
        day = now.astimezone(dt.timezone.utc).date()
    until = _midnight(day + dt.timedelta(days=1))
    platform = args.get("platform") or None
    if platform is not None and platform not in PLATFORMS:
        raise BadRequestError("platform")
    return Window(app_id=app, days=days, until=until, platform=platform)


def _midnight(day: dt.date) -> dt.datetime:
    """The start of *day*, UTC."""
    return dt.datetime.combine(day, dt.time(), dt.timezone.utc)


def _page(args: Mapping[str, str]) -> int:
    try:
        page = int(args.get("page", "1"))
    except ValueError:
        raise BadRequestError("page") from None
    if page < 1 or page > 100_000:
        raise BadRequestError("page")
    return page


class Pages:
    """Renders each page to HTML, given its URL parameters."""

    def __init__(
        self, data: DashboardData | None, *, policy: HealthPolicy, prefix: str = "/dashboard"
    ) -> None:
        self._data = data
        self.policy = policy
        self.prefix = prefix
        self.env = _env()

    @property
    def data(self) -> DashboardData:
        """Where the figures come from (the login page has none)."""
        if self._data is None:
            raise RuntimeError("this Pages renders the login form only")
        return self._data

    def render(self, template: str, **context: Any) -> str:
        """*template* with *context* and what every page needs."""
        return self.env.get_template(template).render(
            prefix=self.prefix, windows=WINDOWS, platforms=PLATFORMS, **context
        )

    def _read(self, *reads: Callable[[], Any]) -> list[Any]:
        """Each read's result, in order: side by side in threads when the data allows it
        (a page's reports over SQLite's day summaries), else one after the other."""
        if not self.data.side_by_side:
            return [read() for read in reads]
        with ThreadPoolExecutor(max_workers=len(reads)) as pool:
            return list(pool.map(lambda read: read(), reads))

    def _verdicts(self, reports: list[VersionReport]) -> list[dict[str, Any]]:
        rows = []
        for report in reports:
            verdict, reasons = judge(report, self.policy)
            rows.append({"r": report, "verdict": verdict.value, "reasons": reasons})
        return rows

    def login(self, *, failed: bool = False) -> str:
        """The login form."""
        return self.render("login.html", failed=failed)

    def apps(self, now: dt.datetime) -> str:
        """Every app: devices active today and in the last 7 days, its newest versions'
        verdicts over those 7 days. Whole UTC days, today included: the windows every
        other page uses, which the day summaries answer at once on any store."""
        end = _midnight(now.astimezone(dt.timezone.utc).date() + dt.timedelta(days=1))
        rows = []
        for app in self.data.apps():
            day = self.data.active(
                ReportQuery(app_id=app, since=end - dt.timedelta(days=1), until=end)
            )
            week_query = ReportQuery(app_id=app, since=end - dt.timedelta(days=7), until=end)
            week = self.data.active(week_query)
            versions = self.data.versions(week_query)
            newest = sorted(
                (v for v in versions if v.devices), key=lambda v: version_order_key(v.version)
            )[-3:][::-1]
            rows.append(
                {
                    "app": app,
                    "day": day.total,
                    "week": week.total,
                    "versions": self._verdicts(newest),
                }
            )
        return self.render("apps.html", apps=rows, today=(end - dt.timedelta(days=1)).date())

    def app(self, args: Mapping[str, str], now: dt.datetime) -> str:
        """One app: versions table, adoption, failure rates, funnel and latency, splits."""
        window = window_from(args, now)
        query = window.query
        data = self.data
        versions, daily, adoption, funnel_rows, latency_rows = self._read(
            lambda: data.versions(query),
            lambda: data.daily(query),
            lambda: data.adoption(query),
            lambda: data.funnel(query),
            lambda: data.latency(query),
        )
        # The daily rows hold the daily failure rates too (as `report --chart` draws them):
        # no second query over the window.
        rates = day_rates(daily)
        funnels = {f.version: f for f in funnel_rows}
        latency = {c.version: c for c in latency_rows}
        chosen = args.get("version") or next(
            (v.version for v in versions if v.version in funnels), None
        )
        funnel = funnels.get(chosen) if chosen else None
        adoption_chart = charts.daily_bars(
            "adoption",
            "Devices running each version, per day",
            {(c.day, c.version): c.running_devices for c in daily if c.running_devices},
        )
        installs_chart = charts.daily_bars(
            "installs",
            "Installs (set events) per day and version",
            {(c.day, c.version): c.installs for c in daily if c.installs},
        )
        rate_chart = charts.daily_steps(
            "failure-rate",
            "Share of devices that saw a failure, per day and version",
            {(r.day, r.version): r.rate for r in rates if r.rate is not None},
            threshold=self.policy.max_failure_rate,
        )
        funnel_chart = None
        if funnel is not None:
            first = funnel.steps[0].devices or 1
            funnel_chart = charts.bars_chart(
                "funnel",
                f"Update funnel of {chosen}",
                [
                    (
                        s.name.replace("_", " "),
                        s.devices / first,
                        f"{s.devices} ({_pct(s.conversion, 0)})"
                        if s.conversion is not None
                        else f"{s.devices}",
                    )
                    for s in funnel.steps
                ],
            )
        platform_chart = charts.bars_chart(
            "platforms",
            "Devices by platform (latest running version)",
            [(s.value, s.share, f"{s.devices} ({_pct(s.share)})") for s in adoption.platforms],
        )
        plugin_chart = charts.bars_chart(
            "plugins",
            "Devices by plugin version",
            [
                (s.value, s.share, f"{s.devices} ({_pct(s.share)})")
                for s in adoption.plugin_versions[:12]
            ],
        )
        return self.render(
            "app.html",
            w=window,
            versions=self._verdicts(versions),
            running={s.value: s.devices for s in adoption.versions},
            policy=self.policy,
            chosen=chosen,
            funnel_versions=sorted(funnels, key=version_order_key, reverse=True),
            funnel=funnel,
            latency=latency.get(chosen) if chosen else None,
            charts={
                "adoption": adoption_chart,
                "installs": installs_chart,
                "rate": rate_chart,
                "funnel": funnel_chart,
                "platforms": platform_chart,
                "plugins": plugin_chart,
            },
        )

    def version(self, args: Mapping[str, str], now: dt.datetime) -> str:
        """One version: its figures, failures by action and the devices that failed on it."""
        window = window_from(args, now)
        name = args.get("version")
        if not name:
            raise BadRequestError("version")
        page = _page(args)
        report = self.data.version(window.query, name)
        verdict, reasons = judge(report, self.policy)
        failing = self.data.failing_devices(
            window.query, name, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE
        )
        rates = [r for r in self.data.daily_rates(window.query) if r.version == name]
        rate_chart = charts.daily_steps(
            "failure-rate",
            f"Share of devices that saw a failure on {name}, per day",
            {(r.day, r.version): r.rate for r in rates if r.rate is not None},
            threshold=self.policy.max_failure_rate,
        )
        failures = sorted(report.failures.items(), key=lambda item: (-item[1], item[0]))
        total = report.failure_events or 1
        failure_chart = charts.bars_chart(
            "failures",
            f"Failures on {name} by action",
            [(a, n / total, str(n)) for a, n in failures],
        )
        return self.render(
            "version.html",
            w=window,
            r=report,
            verdict=verdict.value,
            reasons=reasons,
            failures=failures,
            failing=failing[:PAGE_SIZE],
            more=len(failing) > PAGE_SIZE,
            page=page,
            charts={"rate": rate_chart, "failures": failure_chart},
        )

    def devices(self, args: Mapping[str, str]) -> str:
        """Search an app's devices by device_id or custom_id, or list them a page at a time."""
        app = args.get("app", "")
        if not app:
            raise BadRequestError("app")
        typed = args.get("q", "").strip()
        after = args.get("after") or None
        if typed:
            rows = self.data.search_devices(app, typed, limit=PAGE_SIZE)
            more = False
        else:
            rows = self.data.list_devices(app, after=after, limit=PAGE_SIZE + 1)
            more = len(rows) > PAGE_SIZE
            rows = rows[:PAGE_SIZE]
        return self.render(
            "devices.html",
            app=app,
            typed=typed,
            rows=rows,
            more=more,
            next_after=rows[-1].device_id if rows else None,
            hashed=self.data.privacy is not None and self.data.privacy.changes_events,
        )

    def device(self, args: Mapping[str, str]) -> str:
        """One device: what it runs, when it was seen, its events newest first."""
        app = args.get("app", "")
        device_id = args.get("id", "")
        if not app or not device_id:
            raise BadRequestError("id")
        page = _page(args)
        summary = self.data.device(app, device_id)
        if summary is None:
            raise NotFoundError(device_id)
        events = self.data.timeline(
            app, device_id, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE
        )
        return self.render(
            "device.html",
            app=app,
            d=summary,
            events=events[:PAGE_SIZE],
            more=len(events) > PAGE_SIZE,
            page=page,
            failure_actions={a.value for a in FAILURES},
        )
