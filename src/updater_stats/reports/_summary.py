"""`Summary`: every report for one query, as one value that renders to JSON and CSV."""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

from .._counts import ActiveDevices, DailyVersionCounts, LatencyCounts
from .._query import ReportQuery
from ._reports import AdoptionReport, FunnelReport, Reports, Share, VersionReport


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _shares(shares: tuple[Share, ...]) -> list[dict[str, Any]]:
    return [{"value": s.value, "devices": s.devices, "share": s.share} for s in shares]


@attrs.frozen(kw_only=True)
class Summary:
    """All reports over one `ReportQuery`."""

    query: ReportQuery
    versions: tuple[VersionReport, ...]
    funnel: tuple[FunnelReport, ...]
    adoption: AdoptionReport
    active: ActiveDevices
    latency: tuple[LatencyCounts, ...]
    daily: tuple[DailyVersionCounts, ...]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready data: what ``updater-stats report --format json`` prints."""
        q = self.query
        return {
            "query": {
                "app_id": q.app_id,
                "since": _iso(q.since),
                "until": _iso(q.until),
                "platform": q.platform,
                "channel": q.channel,
                "all_devices": q.all_devices,
            },
            "versions": [
                {
                    "version": v.version,
                    "devices": v.devices,
                    "installs": v.installs,
                    "failed_devices": v.failed_devices,
                    "failure_rate": v.failure_rate,
                    "failure_interval": None
                    if v.failure_interval is None
                    else list(v.failure_interval),
                    "failures": dict(v.failures),
                    "rollbacks": dict(v.rollbacks),
                    "replaced_by": dict(v.replaced_by),
                }
                for v in self.versions
            ],
            "funnel": [
                {
                    "version": f.version,
                    "steps": [
                        {"step": s.name, "devices": s.devices, "conversion": s.conversion}
                        for s in f.steps
                    ],
                }
                for f in self.funnel
            ],
            "adoption": {
                "devices": self.adoption.devices,
                "versions": _shares(self.adoption.versions),
                "platforms": _shares(self.adoption.platforms),
                "os_versions": _shares(self.adoption.os_versions),
                "plugin_versions": _shares(self.adoption.plugin_versions),
                "native_versions": _shares(self.adoption.native_versions),
            },
            "active_devices": {
                "total": self.active.total,
                "by_day": [
                    {"day": d.day.isoformat(), "devices": d.devices} for d in self.active.by_day
                ],
            },
            "download_latency": [attrs.asdict(c) for c in self.latency],
            "daily": [{**attrs.asdict(c), "day": c.day.isoformat()} for c in self.daily],
        }

    #: The CSV header's fixed part: one row per version, its funnel and latency alongside;
    #: `csv_header` adds a ``failures:<action>`` column per failure action in the summary.
    CSV_COLUMNS = (
        "version",
        "devices",
        "installs",
        "failed_devices",
        "failure_rate",
        "failure_rate_low",
        "failure_rate_high",
        "failure_events",
        "rollbacks",
        "running_devices",
        "download_started",
        "download_complete",
        "set",
        "launched",
        "download_p50_ms",
        "download_p90_ms",
        "download_p99_ms",
    )

    def failure_actions(self) -> list[str]:
        """The failure actions any version saw, by name."""
        return sorted({action for v in self.versions for action in v.failures})

    def csv_header(self) -> list[str]:
        """`CSV_COLUMNS`, then ``failures:<action>`` for each of `failure_actions`."""
        return [*self.CSV_COLUMNS, *(f"failures:{a}" for a in self.failure_actions())]

    def csv_rows(self) -> list[list[Any]]:
        """The per-version table under `csv_header`: CSV holds one table, so funnel, latency
        and failures by action become columns."""
        actions = self.failure_actions()
        funnel = {f.version: [s.devices for s in f.steps] for f in self.funnel}
        latency = {c.version: [c.p50_ms, c.p90_ms, c.p99_ms] for c in self.latency}
        running = {s.value: s.devices for s in self.adoption.versions}
        rows = []
        for v in self.versions:
            low, high = v.failure_interval or (None, None)
            rows.append(
                [
                    v.version,
                    v.devices,
                    v.installs,
                    v.failed_devices,
                    v.failure_rate,
                    low,
                    high,
                    v.failure_events,
                    sum(v.rollbacks.values()),
                    running.get(v.version, 0),
                    *funnel.get(v.version, [0, 0, 0, 0]),
                    *latency.get(v.version, [None, None, None]),
                    *(v.failures.get(action, 0) for action in actions),
                ]
            )
        return rows


def summarize(reports: Reports, query: ReportQuery) -> Summary:
    """Run every report over *query*."""
    return Summary(
        query=query,
        versions=tuple(reports.versions(query)),
        funnel=tuple(reports.funnel(query)),
        adoption=reports.adoption(query),
        active=reports.active_devices(query),
        latency=tuple(reports.download_latency(query)),
        daily=tuple(reports.daily(query)),
    )
