from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

click_testing = pytest.importorskip("click.testing")

from updater_stats import (  # noqa: E402
    AppSettings,
    Collector,
    Policy,
    SQLiteBackend,
    StoredEvent,
    parse_event,
)
from updater_stats.cli import CSV_COLUMNS, cli  # noqa: E402

from .conftest import VALID_EVENT, body, load_fixture  # noqa: E402

DAY1 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.timezone.utc)
DAY2 = dt.datetime(2026, 11, 20, 8, 30, tzinfo=dt.timezone.utc)


@pytest.fixture
def storage(tmp_path: Path) -> str:
    """A SQLite file with three events on 1 November and the iOS batch on 20 November."""
    path = tmp_path / "export.sqlite3"
    backend = SQLiteBackend(path)
    Collector(backend, clock=lambda: DAY1).handle(
        body(
            [
                VALID_EVENT,
                {**VALID_EVENT, "action": "app_nav2", "metadata": {"k": 'v,"quoted"\nline'}},
                {**VALID_EVENT, "app_id": "com.other.app", "timestamp": None, "bundle_id": "b1"},
            ]
        )
    )
    Collector(backend, clock=lambda: DAY2).handle(body(load_fixture("ios_batch")))
    backend.close()
    return f"sqlite:///{path}"


def run(*args: str) -> click_testing.Result:
    return click_testing.CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_export_jsonl_lines_are_valid_event_bodies(storage: str):
    result = run("export", "--storage", storage)

    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert len(lines) == 6
    assert lines[0]["_received_at"] == "2026-11-01T12:00:00Z"
    assert lines[0]["_device_time"] == "2025-11-26T00:00:00Z"
    assert [line["_action_known"] for line in lines[:3]] == [True, False, True]
    assert lines[2]["_device_time"] is None
    # Without the export fields, a line is the event as the device sent it; posting it stores it.
    wire = {k: v for k, v in lines[2].items() if not k.startswith("_")}
    assert wire["bundle_id"] == "b1"
    assert parse_event(wire).to_wire() == wire
    collector = Collector(SQLiteBackend(":memory:"))
    assert collector.handle(json.dumps(lines[1]).encode()) == {"status": "ok"}


def test_export_filters_by_app_and_since(storage: str):
    by_app = run("export", "--storage", storage, "--app", "com.other.app")
    since = run("export", "--storage", storage, "--since", "2026-11-10")
    since_time = run("export", "--storage", storage, "--since", "2026-11-20T08:30:00Z")
    relative = run("export", "--storage", storage, "--since", "36500d")

    assert [json.loads(x)["app_id"] for x in by_app.output.splitlines()] == ["com.other.app"]
    assert [json.loads(x)["action"] for x in since.output.splitlines()] == [
        "set",
        "update_fail",
        "reset",
    ]
    assert len(since_time.output.splitlines()) == 3
    assert len(relative.output.splitlines()) == 6


def test_export_rejects_an_unreadable_since(storage: str):
    result = click_testing.CliRunner().invoke(
        cli, ["export", "--storage", storage, "--since", "soon"]
    )

    assert result.exit_code == 2
    assert "use a date (2026-11-01)" in result.output


def test_export_csv(storage: str, tmp_path: Path):
    target = tmp_path / "out.csv"

    result = run("export", "--storage", storage, "--format", "csv", "--output", str(target))

    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert len(rows) == 6
    assert rows[0]["received_at"] == "2026-11-01T12:00:00Z"
    assert rows[0]["defaultChannel"] == ""
    assert rows[0]["is_prod"] == "true"
    assert rows[0]["timestamp"] == str(VALID_EVENT["timestamp"])
    assert json.loads(rows[1]["metadata"]) == {"k": 'v,"quoted"\nline'}
    assert rows[1]["action_known"] == "false"
    assert json.loads(rows[2]["extras"]) == {"bundle_id": "b1"}
    assert rows[2]["device_time"] == ""


def test_export_streams_in_chunks(tmp_path: Path, monkeypatch):
    path = tmp_path / "many.sqlite3"
    backend = SQLiteBackend(path)
    now = dt.datetime.now(dt.timezone.utc)
    backend.write(
        [
            StoredEvent.from_event(parse_event({**VALID_EVENT, "timestamp": i}), now)
            for i in range(2500)
        ]
    )
    backend.close()
    chunk_sizes: list[int] = []
    original = SQLiteBackend.events

    def spy(self, *, app_id=None, chunk_size=1000):
        chunk_sizes.append(chunk_size)
        return original(self, app_id=app_id, chunk_size=chunk_size)

    monkeypatch.setattr(SQLiteBackend, "events", spy)

    result = run("export", "--storage", f"sqlite:///{path}")

    assert len(result.output.splitlines()) == 2500
    assert chunk_sizes == [1000]  # read 1000 rows at a time, never all at once


def test_export_unknown_storage_is_a_clear_error():
    result = click_testing.CliRunner().invoke(cli, ["export", "--storage", "ftp://x"])

    assert result.exit_code == 1
    assert "unknown storage URL 'ftp://x'" in result.output


def test_version():
    result = run("--version")
    assert result.output.strip() == f"updater-stats, version {version('updater-stats')}"


@pytest.mark.parametrize("command", [[], ["serve"], ["export"], ["copy"], ["import"]])
def test_help_on_every_command_shows_examples(command):
    result = run(*command, "--help")

    assert result.exit_code == 0
    assert "Usage: " in result.output
    if command:
        assert "Examples:" in result.output
        assert f"updater-stats {command[0]}" in result.output


def test_serve_without_uvicorn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)

    result = click_testing.CliRunner().invoke(cli, ["serve"])

    assert result.exit_code == 1
    assert "pip install 'updater-stats[server]'" in result.output


def test_serve_warns_when_storage_does_not_answer_yet(tmp_path: Path, monkeypatch):
    started: list[dict[str, object]] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **options: started.append(options))
    # serve exports its settings to worker processes; let monkeypatch undo that afterwards.
    monkeypatch.setenv("UPDATER_STATS_STORAGE", "unset")
    monkeypatch.setenv("UPDATER_STATS_PATH", "unset")
    missing = tmp_path / "no-such-dir" / "s.sqlite3"

    monkeypatch.setenv("UPDATER_STATS_ALLOWED_APPS", "unset")
    monkeypatch.setenv("UPDATER_STATS_METRICS", "unset")
    monkeypatch.setenv("UPDATER_STATS_MAX_BYTES_IN_FLIGHT", "unset")
    args = ["--port", "9999", "--workers", "3", "--allow-app", "com.a.b", "--allow-app", "com.c.d"]
    args += ["--max-bytes-in-flight", "1000000"]
    result = click_testing.CliRunner().invoke(
        cli, ["serve", "--storage", f"sqlite:///{missing}", *args]
    )

    assert result.exit_code == 0, result.output
    assert "storage does not answer yet" in result.output
    assert started[0]["port"] == 9999
    assert started[0]["workers"] == 3
    assert started[0]["factory"] is True
    # Worker processes build their apps from the environment.
    assert os.environ["UPDATER_STATS_STORAGE"] == f"sqlite:///{missing}"
    assert os.environ["UPDATER_STATS_ALLOWED_APPS"] == "com.a.b,com.c.d"
    assert os.environ["UPDATER_STATS_MAX_BYTES_IN_FLIGHT"] == "333333"  # a third each


def test_serve_shows_its_storage_url_without_the_password(monkeypatch):
    monkeypatch.setattr("uvicorn.run", lambda app, **options: None)
    monkeypatch.setattr("updater_stats.cli._check_storage", lambda storage: None)
    monkeypatch.setenv("UPDATER_STATS_STORAGE", "unset")  # so that monkeypatch restores it
    url = "postgresql://stats:hunter2@db.invalid:5432/app"
    result = click_testing.CliRunner().invoke(cli, ["serve", "--storage", url])

    assert result.exit_code == 0, result.output
    assert "(storage: postgresql://stats:***@db.invalid:5432/app)" in result.output
    assert "hunter2" not in result.output


def test_serve_hands_its_workers_the_settings_it_checked(tmp_path: Path, monkeypatch):
    seen: list[AppSettings] = []
    # What a worker process does first: read its settings back from the environment.
    monkeypatch.setattr("uvicorn.run", lambda app, **options: seen.append(AppSettings.from_env()))
    for name in ("STORAGE", "PATH", "ALLOWED_APPS", "METRICS", "MAX_BYTES_IN_FLIGHT", "DEADLINE"):
        monkeypatch.setenv(f"UPDATER_STATS_{name}", "unset")  # so that monkeypatch restores them
    monkeypatch.setenv("UPDATER_STATS_HEADER_TIMEOUT", "10")  # serve reads it as its option
    monkeypatch.delenv("UPDATER_STATS_PSEUDONYM_SECRET", raising=False)
    monkeypatch.delenv("UPDATER_STATS_CUSTOM_ID", raising=False)
    storage = f"sqlite:///{tmp_path / 's.sqlite3'}"
    args = ["--storage", storage, "--path", "api/stats/", "--allow-app", "com.a.b"]
    args += ["--max-bytes-in-flight", "4096", "--deadline", "2.5", "--workers", "2"]

    result = click_testing.CliRunner().invoke(cli, ["serve", *args])

    assert result.exit_code == 0, result.output
    assert seen == [
        AppSettings(
            storage=storage,
            path="/api/stats",
            policy=Policy(allowed_app_ids={"com.a.b"}),
            max_bytes_in_flight=2048,  # the server's budget, shared by its two workers
            deadline=2.5,
        )
    ]


@pytest.mark.parametrize(("workers", "each"), [("1", 4096), ("3", 1365), ("8", 512)])
def test_serve_shares_its_body_budget_among_its_workers(monkeypatch, workers: str, each: int):
    seen: list[int] = []
    monkeypatch.setattr(
        "uvicorn.run",
        lambda app, **options: seen.append(AppSettings.from_env().max_bytes_in_flight),
    )
    monkeypatch.setattr("updater_stats.cli._check_storage", lambda storage: None)
    for name in ("STORAGE", "PATH", "ALLOWED_APPS", "METRICS", "MAX_BYTES_IN_FLIGHT"):
        monkeypatch.setenv(f"UPDATER_STATS_{name}", "unset")  # so that monkeypatch restores them
    # serve reads these two as its options' defaults.
    monkeypatch.setenv("UPDATER_STATS_DEADLINE", "5")
    monkeypatch.setenv("UPDATER_STATS_HEADER_TIMEOUT", "10")
    args = ["--storage", "postgresql://db.invalid/stats", "--workers", workers]

    result = click_testing.CliRunner().invoke(
        cli, ["serve", *args, "--max-bytes-in-flight", "4096"]
    )

    assert result.exit_code == 0, result.output
    assert seen == [each]


@pytest.mark.parametrize(
    ("storage", "args", "line"),
    [
        ("sqlite:///{tmp}/s.sqlite3", [], "2 workers (one per core, at most 2 for SQLite)"),
        ("sqlite:///{tmp}/s.sqlite3", ["--workers", "3"], "3 workers (set by --workers)"),
        ("memory://", [], "1 worker (in-memory storage is not shared between processes)"),
        ("memory://", ["--workers", "2"], "2 workers (set by --workers)"),
    ],
)
def test_serve_starts_one_worker_per_core_unless_told_and_says_why(
    tmp_path: Path, monkeypatch, storage: str, args: list[str], line: str
):
    started: list[tuple[str, dict[str, object]]] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **options: started.append((app, options)))
    monkeypatch.setattr("updater_stats._serving.usable_core_count", lambda: 8)
    for name in ("STORAGE", "PATH", "ALLOWED_APPS", "METRICS", "MAX_BYTES_IN_FLIGHT"):
        monkeypatch.setenv(f"UPDATER_STATS_{name}", "unset")  # so that monkeypatch restores them
    storage = storage.format(tmp=tmp_path)

    result = click_testing.CliRunner().invoke(cli, ["serve", "--storage", storage, *args])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1] == line
    ((factory, options),) = started
    assert options["workers"] == int(line.partition(" ")[0])
    # The workers' own factory: the library's app, and the collector tuned for serving.
    assert factory == "updater_stats._serving:create_worker_app"


def test_serve_refuses_settings_that_cannot_work_before_starting(monkeypatch):
    started: list[str] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **options: started.append(app))

    result = click_testing.CliRunner().invoke(
        cli, ["serve", "--storage", "memory://", "--path", "/ready"]
    )

    assert result.exit_code == 1
    assert "ready_path '/ready' is where devices POST" in result.output
    assert started == []


def test_command_line_without_click_names_the_extra(tmp_path: Path):
    code = (
        "import sys; sys.modules['click'] = None\nfrom updater_stats.__main__ import main\nmain()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=tmp_path
    )

    assert result.returncode == 1
    assert "pip install 'updater-stats[server]'" in result.stderr


def test_export_counts_on_stderr_only_for_a_terminal(tmp_path: Path, monkeypatch):
    path = tmp_path / "count.sqlite3"
    backend = SQLiteBackend(path)
    now = dt.datetime.now(dt.timezone.utc)
    events = [parse_event({**VALID_EVENT, "timestamp": i}) for i in range(2100)]
    backend.write([StoredEvent.from_event(e, now) for e in events])
    backend.close()
    runner = click_testing.CliRunner()

    quiet = runner.invoke(cli, ["export", "--storage", f"sqlite:///{path}"])
    monkeypatch.setattr("updater_stats.cli._stderr_is_terminal", lambda: True)
    watched = runner.invoke(cli, ["export", "--storage", f"sqlite:///{path}"])

    assert quiet.stderr == ""
    assert "\rexported 1000 events" in watched.stderr
    assert watched.stderr.endswith("\rexported 2100 events\n")
    assert len(watched.stdout.splitlines()) == 2100  # the count never mixes into the data


def test_export_names_the_fields_stored_cut(tmp_path: Path):
    path = tmp_path / "cut.sqlite3"
    backend = SQLiteBackend(path)
    collector = Collector(backend, clock=lambda: DAY1)
    collector.handle(body([VALID_EVENT, {**VALID_EVENT, "timestamp": 5, "custom_id": "u" * 2000}]))
    collector.close()
    storage = f"sqlite:///{path}"

    lines = [json.loads(line) for line in run("export", "--storage", storage).output.splitlines()]
    target = tmp_path / "cut.csv"
    run("export", "--storage", storage, "--format", "csv", "--output", str(target))
    rows = list(csv.DictReader(io.StringIO(target.read_text())))

    assert [line["_truncated"] for line in lines] == [[], ["custom_id"]]
    assert lines[1]["custom_id"] == "u" * 1024
    assert [row["truncated"] for row in rows] == ["", '["custom_id"]']
