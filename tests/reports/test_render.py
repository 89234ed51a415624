"""Tables, charts and their optional extras."""

from __future__ import annotations

import datetime as dt
import io
import sys

import pytest
from rich.console import Console

from updater_stats import ConfigurationError
from updater_stats.reports import (
    DailyVersionCounts,
    ReportQuery,
    Reports,
    SQLiteReports,
    daily_chart,
    release_health,
    summarize,
)
from updater_stats.reports._chart import MAX_VERSIONS, _series
from updater_stats.reports._render import print_health, print_summary

from .build import APP, NOW, database, release

PNG = b"\x89PNG\r\n\x1a\n"


def test_an_empty_chart_is_still_a_png(tmp_path):
    daily_chart([], tmp_path / "empty.png")
    assert (tmp_path / "empty.png").read_bytes().startswith(PNG)


def test_versions_beyond_the_limit_are_drawn_as_other():
    day = dt.date(2026, 11, 2)
    daily = [
        DailyVersionCounts(day=day, version=f"1.{n}.0", installs=n, failures=0, running_devices=0)
        for n in range(MAX_VERSIONS + 3)
    ]
    kept = [f"1.{n}.0" for n in range(MAX_VERSIONS)]
    series = _series(daily, [day], kept, "installs")
    assert list(series) == [*kept, "other"]
    assert series["other"] == [MAX_VERSIONS + (MAX_VERSIONS + 1) + (MAX_VERSIONS + 2)]


def test_tables_show_the_figures(tmp_path):
    path = database(tmp_path, release(healthy=30, failing=10))
    output = io.StringIO()
    with Reports(SQLiteReports(path)) as reports:
        print_summary(summarize(reports, ReportQuery(app_id=APP)), Console(file=output, width=200))
        print_health(
            release_health(reports, APP, "1.2.0", now=NOW), Console(file=output, width=200)
        )
    text = output.getvalue()
    assert "25.0 %" in text  # 10 of 40 devices failed
    assert "app_crash 10" in text
    assert "1.2.0 40" in text  # replaced 1.1.0 forty times
    assert "com.example.app 1.2.0: insufficient_data (exit 2)" in text


@pytest.mark.parametrize("module", ["matplotlib", "rich"])
def test_a_missing_extra_names_the_install_command(tmp_path, monkeypatch, module):
    for name in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # makes "import module" fail
    reports = Reports(SQLiteReports(database(tmp_path, [])))
    summary = summarize(reports, ReportQuery(app_id=APP))
    reports.close()
    draw = {
        "matplotlib": lambda: daily_chart([], tmp_path / "x.png"),
        "rich": lambda: print_summary(summary),
    }[module]
    with pytest.raises(ConfigurationError, match=r"pip install 'updater-stats\[reports\]'"):
        draw()
