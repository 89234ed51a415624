"""Tables, charts and their optional extras."""

from __future__ import annotations

import datetime as dt
import io
import sys

import pytest

from updater_stats import ConfigurationError
from updater_stats.backends.sqlite import SQLiteReports
from updater_stats.reports import (
    DailyVersionCounts,
    ReportQuery,
    Reports,
    daily_chart,
    release_health,
    summarize,
)
from updater_stats.reports._chart import MAX_VERSIONS, _series, chart_figure
from updater_stats.reports._render import output_width, print_health, print_summary

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
        print_summary(summarize(reports, ReportQuery(app_id=APP)), output, width=200)
        print_health(release_health(reports, APP, "1.2.0", now=NOW), output)
    lines = output.getvalue().splitlines()
    assert "1.2.0         40        40      10        25.0 %  14.2 % to 40.2 %" in lines
    assert "1.2.0    app_crash      10" in lines
    assert "1.1.0    replaced by 1.2.0      40" in lines
    assert "com.example.app 1.2.0: insufficient_data (exit 2)" in lines


LONG = "2026.11.26-hotfix-for-the-login-screen-regression.build.4711"


def test_at_80_columns_no_cell_is_cut_and_wide_tables_are_stacked(tmp_path):
    events = release(healthy=3, failing=2, version=LONG)
    with Reports(SQLiteReports(database(tmp_path, events))) as reports:
        summary = summarize(reports, ReportQuery(app_id=APP))
    output = io.StringIO()
    print_summary(summary, output, width=80)
    text = output.getvalue()
    assert "…" not in text
    lines = text.splitlines()
    # The versions table does not fit: stacked, the whole name on the row's first line.
    assert f"version {LONG}" in lines
    assert "  failure rate   40.0 %" in lines
    assert f"{LONG}  app_crash       2" in lines
    assert all(len(line) <= 80 for line in lines if LONG not in line)
    # A table that fits stays a table.
    assert "day         devices" in lines
    assert "2026-11-26        5" in lines


def test_tables_work_without_any_table_library(tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "rich" or m.startswith("rich.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "rich", None)  # makes "import rich" fail
    with Reports(SQLiteReports(database(tmp_path, release(healthy=3, failing=1)))) as reports:
        summary = summarize(reports, ReportQuery(app_id=APP))
    output = io.StringIO()
    print_summary(summary, output)
    assert output.getvalue().startswith("Versions\n========\n")


def test_a_missing_extra_names_the_install_command(tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes "import matplotlib" fail
    with pytest.raises(ConfigurationError, match=r"pip install 'updater-stats\[reports\]'"):
        daily_chart([], tmp_path / "x.png")


def test_the_chart_draws_installs_failure_rates_against_the_limit_and_adoption():
    day1, day2 = dt.date(2026, 11, 2), dt.date(2026, 11, 3)
    daily = [
        DailyVersionCounts(
            day=day1, version="1.9.0", installs=4, failures=1, running_devices=10,
            devices=10, failed_devices=1,
        ),
        DailyVersionCounts(
            day=day2, version="1.9.0", installs=0, failures=0, running_devices=5,
            devices=5, failed_devices=0,
        ),
        DailyVersionCounts(
            day=day2, version="1.10.0", installs=6, failures=3, running_devices=15,
            devices=20, failed_devices=2,
        ),
        DailyVersionCounts(  # too few devices for a rate: not drawn
            day=day1, version="1.10.0", installs=1, failures=1, running_devices=1,
            devices=1, failed_devices=1,
        ),
    ]  # fmt: skip
    installs, rates, adoption = chart_figure(daily, max_failure_rate=0.02).axes
    # Stacked bars, oldest version at the bottom: 1.9.0 then 1.10.0 (version order).
    assert [c.get_label() for c in installs.containers] == ["1.9.0", "1.10.0"]
    heights = [[bar.get_height() for bar in c] for c in installs.containers]
    assert heights == [[4, 0], [1, 6]]
    lines = {line.get_label(): list(line.get_ydata()) for line in rates.get_lines()}
    assert lines == {"1.9.0": [10.0, 0.0], "1.10.0": [10.0], "gate limit 2 %": [2, 2]}
    assert adoption.get_ylim() == (0.0, 100.0)
    assert [c.get_label() for c in adoption.collections] == ["1.9.0", "1.10.0"]


def test_the_chart_adoption_is_each_versions_share_of_the_running_devices_that_day():
    from matplotlib.dates import date2num  # noqa: PLC0415 - the reports extra.

    day = dt.date(2026, 11, 2)
    daily = [
        # 3 devices ran 1.9.0 and 2 ran 1.10.0 that day; one of them ran both (it updated).
        DailyVersionCounts(day=day, version="1.9.0", installs=0, failures=0, running_devices=3),
        DailyVersionCounts(day=day, version="1.10.0", installs=1, failures=0, running_devices=2),
    ]
    adoption = chart_figure(daily).axes[2]
    tops = []
    for collection in adoption.collections:
        vertices = collection.get_paths()[0].vertices
        tops.append(max(y for x, y in vertices if x == date2num(day)))
    # Stacked, oldest version at the bottom: 3 of 5 running-device counts, then all 5.
    assert tops == [pytest.approx(60.0), pytest.approx(100.0)]


def test_the_width_is_columns_then_the_terminal_then_80(monkeypatch):
    class Pipe(io.StringIO):
        def isatty(self) -> bool:
            return False

    monkeypatch.delenv("COLUMNS", raising=False)
    assert output_width(Pipe()) == 80  # a pipe, a CI log
    monkeypatch.setenv("COLUMNS", "132")
    assert output_width(Pipe()) == 132
