"""``updater-stats devices`` and the device, version and time filters of ``export``, on SQLite
and on a backend without SQL (the docs' JSON-lines example, on a URL scheme of its own)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest

click_testing = pytest.importorskip("click.testing")

from updater_stats import Collector, Privacy, SQLiteBackend  # noqa: E402
from updater_stats.cli import DEVICE_COLUMNS, cli  # noqa: E402
from updater_stats.privacy import SECRET_ENV_VAR  # noqa: E402

from .conftest import VALID_EVENT, body  # noqa: E402
from .docs_backend import install_jsonl_scheme  # noqa: E402

APP = "com.example.app"
DAY1 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.timezone.utc)
DAY2 = dt.datetime(2026, 11, 20, 8, 30, tzinfo=dt.timezone.utc)
PHONE = "9c2a06c2-7c6e-4f49-9a3c-6e1b1f1a2b3c"
TABLET = "1b4e28ba-2fa1-41d2-883f-0016d3cca427"
SECRET = "a-secret-of-thirty-two-bytes-!!!"


def events(device: str, version: str, **fields: object) -> list[dict[str, object]]:
    base = {**VALID_EVENT, "app_id": APP, "device_id": device, "version_name": version}
    return [
        {**base, "action": "app_moved_to_foreground", **fields},
        {**base, "action": "app_crash", "timestamp": None, **fields},
    ]


@pytest.fixture(params=["sqlite", "jsonl"])
def kind(request: pytest.FixtureRequest) -> str:
    """SQLite (its inventory in SQL), or the docs' JSON-lines example backend, which only
    streams its events, on a URL scheme of its own."""
    return str(request.param)


@pytest.fixture(params=["plain", "pseudonymised"])
def storage(request: pytest.FixtureRequest, kind: str, tmp_path: Path, monkeypatch) -> str:
    privacy = None
    if request.param == "pseudonymised":
        privacy = Privacy(secret=SECRET)
        monkeypatch.setenv(SECRET_ENV_VAR, SECRET)
    else:
        monkeypatch.delenv(SECRET_ENV_VAR, raising=False)
    if kind == "sqlite":
        path = tmp_path / "devices.sqlite3"
        backend = SQLiteBackend(path)
        url = f"sqlite:///{path}"
    else:
        path = tmp_path / "devices.jsonl"
        backend = install_jsonl_scheme(tmp_path, monkeypatch)(path)
        url = f"jsonl://{path}"
    Collector(backend, clock=lambda: DAY1, privacy=privacy).handle(
        body(events(PHONE, "1.4.0", custom_id="user-42") + events(TABLET, "1.4.0:main.js"))
    )
    Collector(backend, clock=lambda: DAY2, privacy=privacy).handle(
        body(events(PHONE.upper(), "1.5.0", custom_id="user-42", channel="beta\u202e"))
    )
    backend.close()
    return url


def run(*args: str) -> click_testing.Result:
    return click_testing.CliRunner().invoke(cli, list(args), catch_exceptions=False)


def stored_id(device: str) -> str:
    privacy = Privacy.from_env()
    return device if privacy is None else privacy.stored_device_id(device)


def test_devices_lists_every_device_with_what_it_runs(storage: str):
    result = run("devices", "--storage", storage, "--app", APP, "--format", "json")

    assert result.exit_code == 0, result.output
    rows = {row["device_id"]: row for row in map(json.loads, result.output.splitlines())}
    assert set(rows) == {stored_id(PHONE), stored_id(TABLET)}
    phone = rows[stored_id(PHONE)]
    assert phone["bundle"] == "1.5.0"
    assert phone["events"] == 4
    assert phone["first_seen"] == "2026-11-01T12:00:00Z"
    assert phone["last_seen"] == "2026-11-20T08:30:00Z"
    assert phone["channel"] == "beta\u202e"
    assert phone["platform"] == VALID_EVENT["platform"]
    assert phone["plugin_version"] == VALID_EVENT["plugin_version"]
    assert rows[stored_id(TABLET)]["bundle"] == "1.4.0"


@pytest.mark.parametrize("typed", [PHONE, PHONE.upper(), "user-42"])
def test_devices_search_hashes_what_is_typed(storage: str, typed: str):
    result = run(
        "devices", "--storage", storage, "--app", APP, "--search", typed, "--format", "csv"
    )

    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.output)))
    assert rows[0] == list(DEVICE_COLUMNS)
    assert [row[0] for row in rows[1:]] == [stored_id(PHONE)]


def test_devices_pages_and_table(storage: str):
    first = run("devices", "--storage", storage, "--app", APP, "--limit", "1", "--format", "csv")
    last = next(csv.reader(io.StringIO(first.output.splitlines()[1])))[0]
    second = run("devices", "--storage", storage, "--app", APP, "--after", last)
    table = run("devices", "--storage", storage, "--app", APP)

    assert len(first.output.splitlines()) == 2
    assert len(second.output.splitlines()) == 2  # header and the other device
    assert last not in second.output
    header, *lines = table.output.splitlines()
    assert header.split() == list(DEVICE_COLUMNS)
    assert len(lines) == 2
    assert "\u202e" not in table.output
    assert "beta\\u202e" in table.output


def test_devices_on_a_missing_store_is_a_clear_error(tmp_path: Path):
    result = click_testing.CliRunner().invoke(
        cli, ["devices", "--storage", f"sqlite:///{tmp_path}/none.sqlite3", "--app", APP]
    )
    assert result.exit_code == 1
    assert "no SQLite database" in result.output


def test_export_by_device_version_and_until(storage: str):
    by_device = run("export", "--storage", storage, "--device-id", PHONE.upper())
    by_version = run("export", "--storage", storage, "--version", "1.4.0")
    until = run("export", "--storage", storage, "--until", "2026-11-10")
    window = run(
        "export", "--storage", storage, "--since", "2026-11-10", "--until", "2026-11-21",
        "--device-id", PHONE,
    )  # fmt: skip

    def lines(result: click_testing.Result) -> list[dict[str, object]]:
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in result.output.splitlines()]

    assert [e["device_id"] for e in lines(by_device)] == [stored_id(PHONE)] * 4
    assert [e["version_name"] for e in lines(by_version)] == ["1.4.0"] * 2 + ["1.4.0:main.js"] * 2
    assert [e["_received_at"] for e in lines(until)] == ["2026-11-01T12:00:00Z"] * 4
    assert [e["version_name"] for e in lines(window)] == ["1.5.0", "1.5.0"]


def test_export_rejects_an_unreadable_until(storage: str):
    result = click_testing.CliRunner().invoke(
        cli, ["export", "--storage", storage, "--until", "7d"]
    )
    assert result.exit_code == 2
    assert "--until" in result.output


def test_devices_and_export_on_memory_storage():
    # memory:// is a new, empty store each time: nothing to list, and no error saying so.
    listed = run("devices", "--storage", "memory://", "--app", APP, "--format", "csv")
    exported = run("export", "--storage", "memory://")

    assert listed.exit_code == 0, listed.output
    assert listed.output.splitlines() == [",".join(DEVICE_COLUMNS)]
    assert exported.exit_code == 0, exported.output
    assert exported.output == ""
