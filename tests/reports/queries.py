"""The report queries the recount and agreement tests ask of every data set."""

from __future__ import annotations

import datetime as dt

from updater_stats.reports import ReportQuery

from .generate import APP, T0

QUERIES = {
    "everything": ReportQuery(app_id=APP),
    "window": ReportQuery(
        app_id=APP, since=T0 + dt.timedelta(days=2), until=T0 + dt.timedelta(days=6)
    ),
    "since-only": ReportQuery(app_id=APP, since=T0 + dt.timedelta(days=3, hours=5)),
    "all-devices": ReportQuery(app_id=APP, all_devices=True, until=T0 + dt.timedelta(days=8)),
    "android": ReportQuery(app_id=APP, platform="android"),
    "beta-channel": ReportQuery(app_id=APP, channel="beta", all_devices=True),
    "empty-channel": ReportQuery(app_id=APP, channel=""),
}
