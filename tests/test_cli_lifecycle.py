"""``updater-stats forget``, ``updater-stats purge`` and ``serve --metrics``."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from updater_stats import Collector, Privacy, SQLiteBackend, WriteResult
from updater_stats.testing import wire_event

from .conftest import body

click_testing = pytest.importorskip("click.testing")

from updater_stats.cli import cli  # noqa: E402

SECRET = "a-cli-test-secret-0123456789abcdef"
DEVICE = "0b5e5c1a-93b4-4f0e-a3a2-1f7f6f3b2d10"
OTHER_DEVICE = "7f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f"
NOW = dt.datetime.now(dt.timezone.utc)


def run(*args: str, env: dict[str, str] | None = None) -> click_testing.Result:
    return click_testing.CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def fill(path: Path, privacy: Privacy | None = None) -> str:
    """Events of two devices and two users, received 100, 10 and 1 days ago."""
    backend = SQLiteBackend(path)
    for days in (100, 10, 1):
        collector = Collector(
            backend, clock=lambda days=days: NOW - dt.timedelta(days=days), privacy=privacy
        )
        collector.handle(
            body(
                [
                    wire_event(device_id=DEVICE, timestamp=days, custom_id="user-1"),
                    wire_event(device_id=OTHER_DEVICE, timestamp=days, custom_id="user-2"),
                ]
            )
        )
    backend.close()
    return f"sqlite:///{path}"


def left(storage: str) -> list[tuple[str, str | None]]:
    backend = SQLiteBackend(storage.removeprefix("sqlite:///"))
    try:
        return [(e.event.device_id, e.event.custom_id) for e in backend.events()]
    finally:
        backend.close()


def test_forget_a_device_and_a_user(tmp_path: Path):
    storage = fill(tmp_path / "s.sqlite3")

    result = run("forget", "--storage", storage, "--device-id", DEVICE.upper())
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "deleted 3 events"

    result = run("forget", "--storage", storage, "--custom-id", "user-2", "--custom-id", "nobody")
    assert result.output.splitlines()[0] == "deleted 3 events"
    assert left(storage) == []


def test_forget_on_a_pseudonymised_store_needs_the_same_secret(tmp_path: Path):
    privacy = Privacy(secret=SECRET)
    storage = fill(tmp_path / "s.sqlite3", privacy)

    without = run("forget", "--storage", storage, "--device-id", DEVICE, env={})
    assert without.output.splitlines() == [
        "deleted 0 events",
        (
            "note: UPDATER_STATS_PSEUDONYM_SECRET is not set; if the server pseudonymises ids, "
            "set it here too"
        ),
    ]
    env = {"UPDATER_STATS_PSEUDONYM_SECRET": SECRET}
    result = run("forget", "--storage", storage, "--device-id", DEVICE, env=env)
    assert result.output.strip() == "deleted 3 events"
    result = run("forget", "--storage", storage, "--custom-id", "user-2", env=env)
    assert result.output.strip() == "deleted 3 events"
    assert left(storage) == []
    assert SECRET not in result.output


def test_forget_refuses_nothing_and_empty_ids(tmp_path: Path):
    storage = fill(tmp_path / "s.sqlite3")
    assert run("forget", "--storage", storage).exit_code == 2
    assert run("forget", "--storage", storage, "--custom-id", "").exit_code == 2
    weak = run(
        "forget",
        "--storage",
        storage,
        "--device-id",
        DEVICE,
        env={"UPDATER_STATS_PSEUDONYM_SECRET": "short"},
    )
    assert weak.exit_code == 1
    assert "at least 16 bytes" in weak.output
    assert "short" not in weak.output  # the secret is never echoed
    assert len(left(storage)) == 6


def test_purge_older_than_an_age_or_a_date(tmp_path: Path):
    storage = fill(tmp_path / "s.sqlite3")

    result = run("purge", "--storage", storage, "--older-than", "30d")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("deleted 2 events received before ")
    assert len(left(storage)) == 4

    cutoff = (NOW - dt.timedelta(days=5)).isoformat()
    assert run("purge", "--storage", storage, "--older-than", cutoff).output.startswith(
        "deleted 2 events"
    )
    assert run("purge", "--storage", storage, "--older-than", "12h").output.startswith(
        "deleted 2 events"
    )
    assert left(storage) == []


def fill_two_apps(path: Path) -> str:
    """Each of two apps: events of two devices received 100 and 1 days ago."""
    backend = SQLiteBackend(path)
    for days in (100, 1):
        collector = Collector(backend, clock=lambda days=days: NOW - dt.timedelta(days=days))
        collector.handle(
            body(
                [
                    wire_event(app_id=app, device_id=device, timestamp=days)
                    for app in ("com.a.app", "com.b.app")
                    for device in (DEVICE, OTHER_DEVICE)
                ]
            )
        )
    backend.close()
    return f"sqlite:///{path}"


def apps_left(storage: str) -> list[str]:
    backend = SQLiteBackend(storage.removeprefix("sqlite:///"))
    try:
        return sorted(e.event.app_id for e in backend.events())
    finally:
        backend.close()


def test_purge_dry_run_counts_and_deletes_nothing(tmp_path: Path):
    storage = fill_two_apps(tmp_path / "s.sqlite3")
    result = run("purge", "--storage", storage, "--older-than", "30d", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("would delete 4 events received before ")
    scoped = run(
        "purge", "--storage", storage, "--older-than", "30d", "--dry-run", "--app", "com.a.app"
    )
    assert scoped.output.startswith("would delete 2 events of com.a.app received before ")
    assert len(apps_left(storage)) == 8


def test_purge_and_forget_scoped_to_one_app(tmp_path: Path):
    storage = fill_two_apps(tmp_path / "s.sqlite3")
    result = run("purge", "--storage", storage, "--older-than", "30d", "--app", "com.a.app")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("deleted 2 events of com.a.app received before ")
    assert apps_left(storage) == ["com.a.app"] * 2 + ["com.b.app"] * 4
    result = run("forget", "--storage", storage, "--device-id", DEVICE, "--app", "com.b.app")
    assert result.output == "deleted 2 events\n"
    assert apps_left(storage) == ["com.a.app"] * 2 + ["com.b.app"] * 2


def test_purge_refuses_a_future_cut_off_unless_told_yes(tmp_path: Path):
    storage = fill_two_apps(tmp_path / "s.sqlite3")
    future = (NOW + dt.timedelta(days=2)).date().isoformat()
    refused = run("purge", "--storage", storage, "--older-than", future)
    assert refused.exit_code == 1
    assert "is in the future: every event stored so far would be deleted" in refused.output
    assert len(apps_left(storage)) == 8
    dry = run("purge", "--storage", storage, "--older-than", future, "--dry-run")
    assert dry.output.startswith("would delete 8 events")
    done = run("purge", "--storage", storage, "--older-than", future, "--yes")
    assert done.output.startswith("deleted 8 events")
    assert apps_left(storage) == []


@pytest.mark.parametrize("value", ["0d", "soon", "90 days"])
def test_purge_refuses_a_bad_age(tmp_path: Path, value: str):
    storage = fill(tmp_path / "s.sqlite3")
    result = run("purge", "--storage", storage, "--older-than", value)
    assert result.exit_code == 2
    assert "--older-than" in result.output
    assert len(left(storage)) == 6


class WriteOnlyBackend:
    """A custom backend that can store, but neither erase nor purge."""

    def write(self, events: object) -> WriteResult:
        return WriteResult(0)

    def close(self) -> None:
        pass


def test_purge_and_forget_need_a_backend_that_can(monkeypatch):
    monkeypatch.setattr("updater_stats._collector.backend_from_url", lambda url: WriteOnlyBackend())
    result = run("purge", "--storage", "custom://", "--older-than", "1d")
    assert result.exit_code == 1
    assert "WriteOnlyBackend cannot purge events" in result.output
    result = run("forget", "--storage", "custom://", "--device-id", DEVICE)
    assert result.exit_code == 1
    assert "WriteOnlyBackend cannot erase events" in result.output


@pytest.mark.parametrize("command", ["forget", "purge"])
def test_help_shows_examples(command: str):
    result = run(command, "--help")
    assert "Examples:" in result.output
    assert f"updater-stats {command}" in result.output


def test_serve_metrics_without_prometheus_client_names_the_extra(monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    result = click_testing.CliRunner().invoke(cli, ["serve", "--metrics"])
    assert result.exit_code == 1
    assert "pip install 'updater-stats[metrics]'" in result.output


def test_serve_metrics_with_workers_uses_a_fresh_multiprocess_directory(
    tmp_path: Path, monkeypatch
):
    seen: list[tuple[object, str | None, str | None, bool]] = []

    def fake_run(app: str, **options: object) -> None:
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        seen.append(
            (
                options["workers"],
                os.environ.get("UPDATER_STATS_METRICS"),
                directory,
                directory is not None and Path(directory).is_dir(),
            )
        )

    monkeypatch.setattr("uvicorn.run", fake_run)
    # The default follows the cores: two here, whatever the machine running the test has.
    monkeypatch.setattr("updater_stats._serving.usable_core_count", lambda: 2)
    for name in ("STORAGE", "PATH", "ALLOWED_APPS", "METRICS"):
        monkeypatch.setenv(f"UPDATER_STATS_{name}", "unset")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    storage = f"sqlite:///{tmp_path / 's.sqlite3'}"

    for args in (
        ["--workers", "2", "--metrics"],
        ["--metrics"],
        ["--workers", "1", "--metrics"],
        [],
    ):
        result = click_testing.CliRunner().invoke(cli, ["serve", "--storage", storage, *args])
        assert result.exit_code == 0, result.output
        # serve leaves it set for its workers; the next run must start without it.
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

    for workers, metrics, directory, existed in seen[:2]:  # told two, and two by default
        assert (workers, metrics, existed) == (2, "1", True)
        assert directory is not None
        assert not Path(directory).exists()  # removed once the server stopped
    assert seen[0][2] != seen[1][2]  # fresh for every run
    single, off = seen[2:]
    assert single == (1, "1", None, False)  # one process: no multiprocess mode
    assert off == (2, "", None, False)


def test_serve_refuses_a_weak_secret_before_starting(monkeypatch):
    started: list[str] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **options: started.append(app))
    monkeypatch.setenv("UPDATER_STATS_PSEUDONYM_SECRET", "too-short")
    result = click_testing.CliRunner().invoke(cli, ["serve", "--storage", "memory://"])
    assert result.exit_code == 1
    assert "at least 16 bytes" in result.output
    assert "too-short" not in result.output
    assert started == []
