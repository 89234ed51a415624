"""``updater-stats copy`` and ``updater-stats import``: exact, once, resumable, quiet on a pipe."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from updater_stats import SQLiteBackend, StoredEvent
from updater_stats.testing import assert_same_events, stored_event

from .transfer_events import at, holdable_events

click_testing = pytest.importorskip("click.testing")

from updater_stats.cli import cli  # noqa: E402


def run(*args: str, stdin: bytes | None = None) -> click_testing.Result:
    return click_testing.CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)


def sqlite_with(path: Path, events: list[StoredEvent]) -> str:
    backend = SQLiteBackend(path)
    backend.write(events)
    backend.close()
    return f"sqlite:///{path}"


def read(url_or_path: str | Path) -> list[StoredEvent]:
    path = str(url_or_path).removeprefix("sqlite:///")
    backend = SQLiteBackend(path)
    try:
        return list(backend.events())
    finally:
        backend.close()


def events_with_cuts() -> list[StoredEvent]:
    return [
        *holdable_events(),
        attrs.evolve(stored_event(timestamp=77, custom_id="c" * 1024), truncated=("custom_id",)),
        stored_event(timestamp=None, received_at=at(9), platform=None, plugin_version=None),
    ]


def test_export_then_import_restores_the_store_exactly(tmp_path: Path):
    events = events_with_cuts()
    storage = sqlite_with(tmp_path / "live.sqlite3", events)
    backup = tmp_path / "backup.jsonl"
    run("export", "--storage", storage, "--output", str(backup))
    restored = f"sqlite:///{tmp_path / 'restored.sqlite3'}"

    first = run("import", str(backup), "--storage", restored)
    again = run("import", str(backup), "--storage", restored)

    assert first.exit_code == 0, first.output
    assert first.stdout == f"imported {len(events)} events, 0 already present\n"
    assert again.stdout == f"imported 0 events, {len(events)} already present\n"
    assert_same_events(read(restored), read(storage))
    # The restored store exports the very same bytes.
    assert run("export", "--storage", restored).stdout == backup.read_text(encoding="utf-8")


def test_import_reads_standard_input(tmp_path: Path):
    events = holdable_events()
    storage = sqlite_with(tmp_path / "live.sqlite3", events)
    exported = run("export", "--storage", storage).stdout.encode("utf-8")
    restored = f"sqlite:///{tmp_path / 'restored.sqlite3'}"

    result = run("import", "-", "--storage", restored, stdin=exported)

    assert result.stdout == f"imported {len(events)} events, 0 already present\n"
    assert_same_events(read(restored), events)


def test_a_bad_line_stops_the_import_naming_it(tmp_path: Path):
    storage = sqlite_with(tmp_path / "live.sqlite3", holdable_events()[:4])
    lines = run("export", "--storage", storage).stdout.splitlines(keepends=True)
    broken = tmp_path / "broken.jsonl"
    broken.write_text("".join([*lines[:3], '{"app_id": "com.a.b"}\n', lines[3]]), encoding="utf-8")
    restored = f"sqlite:///{tmp_path / 'restored.sqlite3'}"

    result = click_testing.CliRunner().invoke(cli, ["import", str(broken), "--storage", restored])

    assert result.exit_code == 1
    assert "line 4: no _received_at or _key" in result.output
    assert len(read(restored)) <= 3  # what came before it may be stored; nothing after


def test_import_of_a_missing_file_is_a_clear_error(tmp_path: Path):
    result = click_testing.CliRunner().invoke(cli, ["import", str(tmp_path / "nope.jsonl")])

    assert result.exit_code == 1
    assert "cannot read" in result.output


def test_copy_between_sqlite_files_twice(tmp_path: Path):
    events = events_with_cuts()
    source = sqlite_with(tmp_path / "old.sqlite3", events)
    target = f"sqlite:///{tmp_path / 'new.sqlite3'}"

    first = run("copy", "--from", source, "--to", target, "--batch-size", "3")
    again = run("copy", "--from", source, "--to", target)

    assert first.stdout == f"copied {len(events)} events, 0 already present\n"
    assert again.stdout == f"copied 0 events, {len(events)} already present\n"
    assert first.stderr == ""  # not a terminal: no progress
    assert_same_events(read(target), events)


def test_copy_narrowed_by_app_and_since(tmp_path: Path):
    events = [
        stored_event(timestamp=index, app_id=app, received_at=at(index * 60))
        for index, app in enumerate(["com.a.x", "com.b.y"] * 4)
    ]
    source = sqlite_with(tmp_path / "old.sqlite3", events)
    target = f"sqlite:///{tmp_path / 'new.sqlite3'}"

    result = run(
        "copy", "--from", source, "--to", target, "--app", "com.a.x", "--since", "2026-10-01T10:00Z"
    )

    expected = [e for e in events if e.event.app_id == "com.a.x" and e.received_at >= at(120)]
    assert result.stdout == f"copied {len(expected)} events, 0 already present\n"
    assert_same_events(read(target), expected)


def test_copy_into_postgres_and_back(tmp_path: Path):
    from .backends.servers import postgres_url, unique_name  # noqa: PLC0415

    events = holdable_events()
    source = sqlite_with(tmp_path / "old.sqlite3", events)
    server = f"{postgres_url()}?schema={unique_name('copy')}"
    back = f"sqlite:///{tmp_path / 'back.sqlite3'}"

    there = run("copy", "--from", source, "--to", server)
    home = run("copy", "--from", server, "--to", back)

    assert there.stdout == home.stdout == f"copied {len(events)} events, 0 already present\n"
    assert_same_events(read(back), events)


def test_copy_refuses_one_store_as_both_ends(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'one.sqlite3'}"
    result = click_testing.CliRunner().invoke(cli, ["copy", "--from", url, "--to", url])

    assert result.exit_code == 2
    assert "the same store" in result.output


def test_progress_on_a_terminal_only(tmp_path: Path, monkeypatch):
    events = [stored_event(timestamp=index) for index in range(30)]
    source = sqlite_with(tmp_path / "old.sqlite3", events)
    backup = tmp_path / "backup.jsonl"
    run("export", "--storage", source, "--output", str(backup))
    monkeypatch.setattr("updater_stats.cli._stderr_is_terminal", lambda: True)
    monkeypatch.setattr("updater_stats.cli._Progress.EVERY", 0.0)

    copied = run(
        "copy",
        "--from",
        source,
        "--to",
        f"sqlite:///{tmp_path / 'a.sqlite3'}",
        "--batch-size",
        "10",
    )
    imported = run(
        "import",
        str(backup),
        "--storage",
        f"sqlite:///{tmp_path / 'b.sqlite3'}",
        "--batch-size",
        "10",
    )

    assert "counting the events to copy" in copied.stderr
    assert "\rcopied 10 events, " in copied.stderr
    assert "33%, ETA 0:00:" in copied.stderr
    assert "\rimported 20 events, " in imported.stderr
    assert "ETA 0:00:" in imported.stderr
    for result, verb in [(copied, "copied"), (imported, "imported")]:
        assert f"\r{verb} 30 events, " in result.stderr
        last_line = result.stderr.rsplit("\r", 1)[1]
        assert last_line.endswith("\n")
        assert last_line.rstrip().endswith(" in all")
        assert result.stdout == f"{verb} 30 events, 0 already present\n"  # apart from the data


def test_progress_from_a_pipe_has_no_time_left(tmp_path: Path, monkeypatch):
    source = sqlite_with(tmp_path / "old.sqlite3", [stored_event(timestamp=i) for i in range(30)])
    exported = run("export", "--storage", source).stdout.encode("utf-8")
    monkeypatch.setattr("updater_stats.cli._stderr_is_terminal", lambda: True)
    monkeypatch.setattr("updater_stats.cli._Progress.EVERY", 0.0)

    target = f"sqlite:///{tmp_path / 'new.sqlite3'}"
    result = run("import", "-", "--storage", target, "--batch-size", "10", stdin=exported)

    assert "\rimported 10 events, " in result.stderr
    assert "ETA" not in result.stderr  # standard input has no size to measure progress by
    assert result.stdout == "imported 30 events, 0 already present\n"


def sqlite_target(tmp_path: Path) -> tuple[str, Callable[[], int]]:
    """A SQLite file's URL, and how many events it holds, read by a connection of its own."""
    path = tmp_path / "new.sqlite3"

    def count() -> int:
        if not path.exists():
            return 0
        with sqlite3.connect(path, timeout=30) as conn:
            try:
                return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
            except sqlite3.OperationalError:  # the table is not there yet
                return 0

    return f"sqlite:///{path}", count


def postgres_target(_tmp_path: Path) -> tuple[str, Callable[[], int]]:
    """A PostgreSQL schema's URL, and how many events it holds."""
    import psycopg  # noqa: PLC0415

    from .backends.servers import postgres_url, unique_name  # noqa: PLC0415

    schema = unique_name("kill")

    def count() -> int:
        with psycopg.connect(postgres_url(), autocommit=True) as conn:
            try:
                row = conn.execute(f"SELECT count(*) FROM {schema}.events").fetchone()
            except psycopg.errors.UndefinedTable:
                return 0
        return int(row[0]) if row else 0

    return f"{postgres_url()}?schema={schema}", count


@pytest.mark.parametrize(
    ("verb", "target"), [("copy", "sqlite"), ("copy", "postgres"), ("import", "sqlite")]
)
def test_killed_half_way_then_run_again_stores_each_event_once(
    tmp_path: Path, verb: str, target: str
):
    events = []
    for index in range(12_000):
        events.append(stored_event(timestamp=index, received_at=at(index)))
        # Keyless events, twins among them: a naive re-run would store them twice.
        events.append(
            stored_event(timestamp=None, received_at=at(index), version_code=str(index // 2))
        )
    source = sqlite_with(tmp_path / "old.sqlite3", events)
    url, count = (sqlite_target if target == "sqlite" else postgres_target)(tmp_path)
    command = [sys.executable, "-m", "updater_stats"]
    if verb == "copy":
        command += ["copy", "--from", source, "--to", url]
    else:
        backup = tmp_path / "backup.jsonl"
        run("export", "--storage", source, "--output", str(backup))
        command += ["import", str(backup), "--storage", url]
    process = subprocess.Popen([*command, "--batch-size", "500"])
    deadline = time.monotonic() + 120
    stored = 0
    while process.poll() is None and time.monotonic() < deadline:
        stored = count()
        if stored >= 2000:
            break
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, f"the {verb} ended before it was killed"
    # A statement the server had already received when the client died still commits (and
    # counts as present on the re-run): wait until the count settles before reading it.
    before, settle_by = count(), time.monotonic() + 10
    while time.monotonic() < settle_by:
        time.sleep(0.5)
        now = count()
        if now == before:
            break
        before = now
    assert 0 < before < len(events), "killed before or after the copy, not half-way"

    again = subprocess.run(command, capture_output=True, text=True, check=True)

    copied = len(events) - before
    done = {"copy": "copied", "import": "imported"}[verb]
    assert again.stdout == f"{done} {copied} events, {before} already present\n"
    from updater_stats.backends import backend_from_url  # noqa: PLC0415

    backend = backend_from_url(url)
    try:
        assert_same_events(backend.events(), events)  # type: ignore[attr-defined]
    finally:
        backend.close()
