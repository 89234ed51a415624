"""`updater-stats report` and `updater-stats gate`: formats, chart, verdicts and exit codes."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import struct
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from updater_stats import Collector, SQLiteBackend
from updater_stats.backends.sqlite import SQLiteReports
from updater_stats.cli import cli
from updater_stats.reports import ReportQuery, Reports, daily_chart

from .backends.servers import postgres_backend, postgres_url
from .reports.build import APP, database, event, release
from .reports.generate import T0, generate


@pytest.fixture
def storage(tmp_path: Path) -> str:
    recent = release(healthy=80, failing=20, now=dt.datetime.now(dt.timezone.utc))
    return f"sqlite:///{database(tmp_path, recent)}"


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_report_json_has_every_section(storage):
    result = run("report", "--storage", storage, "--app", APP, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) == {
        "query",
        "versions",
        "funnel",
        "adoption",
        "active_devices",
        "download_latency",
        "daily",
    }
    (version,) = [v for v in data["versions"] if v["version"] == "1.2.0"]
    assert version["installs"] == 100
    assert version["failed_devices"] == 20
    assert version["failure_rate"] == pytest.approx(0.2)
    assert data["adoption"]["devices"] == 100
    assert data["query"]["app_id"] == APP


def test_report_csv_is_one_row_per_version(storage):
    result = run("report", "--storage", storage, "--app", APP, "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    by_version = {row["version"]: row for row in rows}
    assert by_version["1.2.0"]["devices"] == "100"
    assert by_version["1.2.0"]["running_devices"] == "100"
    assert by_version["1.1.0"]["devices"] == "0"  # only named as replaced


def test_report_csv_has_failures_by_action(tmp_path):
    events = release(healthy=5, failing=2, now=dt.datetime.now(dt.timezone.utc))
    events.append(event("unzip_fail", "1.3.0", dev=99, received=dt.datetime.now(dt.timezone.utc)))
    storage = f"sqlite:///{database(tmp_path, events)}"
    result = run("report", "--storage", storage, "--app", APP, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert list(rows[0])[-2:] == ["failures:app_crash", "failures:unzip_fail"]
    by_version = {row["version"]: row for row in rows}
    assert by_version["1.2.0"]["failures:app_crash"] == "2"
    assert by_version["1.2.0"]["failures:unzip_fail"] == "0"
    assert by_version["1.3.0"]["failures:unzip_fail"] == "1"


def test_a_missing_chart_folder_is_one_line_before_any_work(tmp_path):
    chart = tmp_path / "no" / "such" / "daily.png"
    # The storage does not exist either: the folder is checked first, before any query.
    storage = f"sqlite:///{tmp_path}/none.sqlite3"
    result = run("report", "--storage", storage, "--app", APP, "--chart", str(chart))
    assert result.exit_code == 1
    assert result.output == f"Error: cannot write the chart: no folder {str(chart.parent)!r}\n"


def test_report_table_and_chart(storage, tmp_path):
    chart = tmp_path / "daily.png"
    result = run("report", "--storage", storage, "--app", APP, "--chart", str(chart))
    assert result.exit_code == 0, result.output
    assert "Versions" in result.output
    assert "1.2.0" in result.output
    assert "Update funnel" in result.output
    png = chart.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (1000, 900)


def test_chart_of_generated_traffic(tmp_path):
    path = tmp_path / "s.sqlite3"
    backend = SQLiteBackend(path)
    backend.write(generate(7))
    backend.close()
    with Reports(SQLiteReports(path)) as reports:
        daily = reports.daily(ReportQuery(app_id=APP, since=T0))
    assert daily
    daily_chart(daily, tmp_path / "c.png", title="generated")
    assert (tmp_path / "c.png").stat().st_size > 10_000


def test_report_refuses_bad_input(storage, tmp_path):
    assert run("report", "--storage", storage, "--app", APP, "--since", "soon").exit_code == 2
    missing = run("report", "--storage", f"sqlite:///{tmp_path}/none.sqlite3", "--app", APP)
    assert missing.exit_code == 1
    assert "no SQLite database" in missing.output


@pytest.mark.parametrize(
    ("healthy", "failing", "options", "verdict", "code"),
    [
        (200, 1, [], "healthy", 0),
        (60, 40, [], "at_risk", 1),
        (10, 0, [], "insufficient_data", 2),
        (10, 0, ["--min-devices", "5"], "warning", 3),
        (95, 5, ["--max-failure-rate", "0.2"], "healthy", 0),
    ],
)
def test_gate_verdicts_and_exit_codes(tmp_path, healthy, failing, options, verdict, code):  # noqa: PLR0917
    events = release(healthy, failing, now=dt.datetime.now(dt.timezone.utc))
    storage = f"sqlite:///{database(tmp_path, events)}"
    as_json = run(
        "gate", "--storage", storage, "--app", APP, "--version", "1.2.0", "--json", *options
    )
    assert as_json.exit_code == code, as_json.output
    data = json.loads(as_json.output)
    assert data["verdict"] == verdict
    assert data["exit_code"] == code
    assert data["version"] == "1.2.0"
    assert isinstance(data["reasons"], list)
    assert data["reasons"]
    text = run("gate", "--storage", storage, "--app", APP, "--version", "1.2.0", *options)
    assert text.exit_code == code
    assert f"{APP} 1.2.0: {verdict}" in text.output


def test_gate_window_option(tmp_path):
    now = dt.datetime.now(dt.timezone.utc)
    events = [
        event("set", "1.2.0", dev=n, received=now - dt.timedelta(hours=30)) for n in range(1, 120)
    ]
    storage = f"sqlite:///{database(tmp_path, events)}"
    assert run("gate", "--storage", storage, "--app", APP, "--version", "1.2.0").exit_code == 0
    day = run("gate", "--storage", storage, "--app", APP, "--version", "1.2.0", "--window", "24h")
    assert day.exit_code == 5  # nothing in the last 24 hours: not "too few devices"
    assert day.output.startswith(f"{APP} 1.2.0: no_such_app (exit 5)\n")


@pytest.mark.parametrize(
    ("app", "version", "problem", "code"),
    [
        ("com.exmaple.app", "1.2.0", "no_such_app", 5),  # a typo in the app id
        (APP, "1.2.O", "no_such_version", 5),  # a typo in the version
        (APP, "1.2.0", "insufficient_data", 2),  # the version exists: too few devices yet
    ],
)
def test_gate_tells_a_missing_app_or_version_from_too_few_devices(
    tmp_path, app, version, problem, code
):
    events = release(healthy=3, failing=1, now=dt.datetime.now(dt.timezone.utc))
    storage = f"sqlite:///{database(tmp_path, events)}"
    text = run("gate", "--storage", storage, "--app", app, "--version", version)
    assert text.exit_code == code, text.output
    assert text.output.startswith(f"{app} {version}: {problem} (exit {code})\n")
    as_json = run("gate", "--storage", storage, "--app", app, "--version", version, "--json")
    assert as_json.exit_code == code
    data = json.loads(as_json.output)
    assert data["exit_code"] == code
    assert data.get("error", data.get("verdict")) == problem
    if problem == "no_such_version":
        assert "versions seen: 1.2.0" in data["message"]
    if problem == "no_such_app":
        assert "check --app, --storage" in data["message"]


def test_gate_and_text_reports_need_no_table_or_chart_library(tmp_path, monkeypatch):
    # The server extra alone: click, no rich, no matplotlib.
    for module in ("rich", "matplotlib"):
        for name in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
            monkeypatch.delitem(sys.modules, name)
        monkeypatch.setitem(sys.modules, module, None)
    events = release(healthy=60, failing=40, now=dt.datetime.now(dt.timezone.utc))
    storage = f"sqlite:///{database(tmp_path, events)}"
    gate = run("gate", "--storage", storage, "--app", APP, "--version", "1.2.0")
    assert gate.exit_code == 1, gate.output
    assert gate.output.startswith(f"{APP} 1.2.0: at_risk (exit 1)\n")
    report = run("report", "--storage", storage, "--app", APP)
    assert report.exit_code == 0, report.output
    chart = run("report", "--storage", storage, "--app", APP, "--chart", str(tmp_path / "c.png"))
    assert chart.exit_code == 1
    assert chart.output == "Error: charts need matplotlib: pip install 'updater-stats[reports]'\n"


@pytest.mark.parametrize(
    "args",
    [
        ["--version", "1.2.0"],  # no --app
        ["--app", APP, "--version", "1.2.0", "--max-failure-rate", "2"],
        ["--app", APP, "--version", "1.2.0", "--window", "soon"],
        ["--app", APP, "--version", "1.2.0", "--storage", "nosuch://x"],
    ],
)
def test_gate_cannot_run_exits_4_never_a_verdict_code(tmp_path, args):
    result = run("gate", *args)
    assert result.exit_code == 4, result.output


def test_gate_help_lists_the_exit_codes():
    result = run("gate", "--help")
    assert result.exit_code == 0
    for line in (
        "0  healthy",
        "1  at_risk",
        "2  insufficient_data",
        "3  warning",
        "4  the gate",
        "5  no event of this app, or of this version",
    ):
        assert line in result.output


def test_gate_and_report_on_a_postgresql_url():
    backend = postgres_backend()
    backend.write(release(healthy=60, failing=40, now=dt.datetime.now(dt.timezone.utc)))
    url = f"{postgres_url()}?schema={backend.schema}"
    backend.close()
    gate = run("gate", "--storage", url, "--app", APP, "--version", "1.2.0", "--json")
    assert gate.exit_code == 1, gate.output
    assert json.loads(gate.output)["failed_devices"] == 40
    report = run("report", "--storage", url, "--app", APP, "--format", "csv")
    assert report.exit_code == 0, report.output
    assert "1.2.0,100,100,40," in report.output


def test_report_on_an_app_without_events_says_so_on_stderr(storage):
    result = CliRunner().invoke(
        cli, ["report", "--storage", storage, "--app", "com.exmaple.app", "--format", "csv"]
    )
    assert result.exit_code == 0
    assert result.stderr.startswith("note: no event of app 'com.exmaple.app' in this window")
    assert result.stdout.startswith("version,devices,")  # the output itself stays parseable


def test_values_devices_did_not_send_read_as_not_sent(tmp_path: Path):
    path = tmp_path / "absent.sqlite3"
    collector = Collector(SQLiteBackend(path))
    device = "0b5e5c1a-93b4-4f0e-a3a2-1f7f6f3b2d1"
    bare = {"app_id": "com.a.b", "action": "set", "version_name": "1.0.0", "timestamp": 1}
    full = {**bare, "platform": "ios", "version_os": "18", "plugin_version": "8.42.0"}
    collector.handle(
        json.dumps(
            [{**bare, "device_id": device + "0"}, {**full, "device_id": device + "1"}]
        ).encode()
    )
    collector.close()

    result = CliRunner().invoke(
        cli, ["report", "--storage", f"sqlite:///{path}", "--app", "com.a.b"]
    )

    running = result.output.split("Running now")[1].split("\n\n")[0]
    assert "platform  (not sent)" in running
    assert "OS        (not sent)" in running
    assert "plugin    (not sent)" in running
    assert "platform  ios" in running
    assert '""' not in running
