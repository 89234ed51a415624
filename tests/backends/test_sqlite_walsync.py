"""SQLite commits without syncing under the write lock, and syncs the WAL before answering.

`SQLiteBackend` runs ``synchronous=NORMAL`` and syncs the WAL file itself after each commit
(`_walsync`): an acknowledged write must have been synced after its commit, a failed sync
must not be acknowledged, and a WAL that cannot be found hands the syncing back to SQLite.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import sqlite3
from contextlib import closing
from pathlib import Path

import attrs
import pytest

from updater_stats import (
    BackendError,
    Collector,
    SQLiteBackend,
    StoredEvent,
    UpdaterStatsError,
    parse_event,
)
from updater_stats.backends.sqlite import _walsync
from updater_stats.backends.sqlite._walsync import WalSync, wal_file

from ..conftest import VALID_EVENT, body

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.timezone.utc)


def stored(action: str = "set", **overrides: object) -> StoredEvent:
    return StoredEvent.from_event(parse_event({**VALID_EVENT, "action": action, **overrides}), NOW)


def count(path: Path) -> int:
    with closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])


def inode(path: str | Path) -> tuple[int, int]:
    status = Path(path).stat()
    return status.st_dev, status.st_ino


@attrs.define
class Syncs:
    """Every WAL sync: the file synced, and the events another connection saw in *db* then."""

    db: Path
    calls: list[tuple[tuple[int, int], int]] = attrs.Factory(list)
    fail_with: OSError | None = None


@pytest.fixture
def syncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Syncs:
    seen = Syncs(tmp_path / "s.sqlite3")
    real = _walsync._fdatasync

    def recording(fd: int) -> None:
        status = os.fstat(fd)
        seen.calls.append(((status.st_dev, status.st_ino), count(seen.db)))
        if seen.fail_with is not None:
            raise seen.fail_with
        real(fd)

    monkeypatch.setattr(_walsync, "_fdatasync", recording)
    return seen


def test_a_file_commits_with_normal_sync_then_syncs_its_wal(syncs: Syncs):
    backend = SQLiteBackend(syncs.db)
    backend.write([stored("set"), stored("get")])
    backend.write([stored("download_complete")])

    conn = backend._connect()
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    wal = inode(f"{syncs.db}-wal")
    # One sync per write, of the WAL file itself, after the write's commit: each saw the
    # write's rows already committed, so the sync carried them to disk before write returned.
    assert syncs.calls == [(wal, 2), (wal, 3)]
    backend.close()


def test_deletes_are_synced_too(syncs: Syncs):
    backend = SQLiteBackend(syncs.db)
    backend.write([stored("set"), stored("get")])
    syncs.calls.clear()
    assert backend.forget(device_ids=[VALID_EVENT["device_id"]]) == 2
    assert syncs.calls[0] == (inode(f"{syncs.db}-wal"), 0)
    backend.close()


def test_a_failed_sync_is_not_acknowledged(syncs: Syncs):
    collector = Collector(SQLiteBackend(syncs.db))
    syncs.fail_with = OSError(errno.EIO, "Input/output error")
    with pytest.raises(UpdaterStatsError) as raised:
        collector.handle(body(VALID_EVENT))
    assert raised.value.status_code == 503
    assert raised.value.body["error"] == "storage_unavailable"
    # The device re-sends; the same event is then one row, and acknowledged.
    syncs.fail_with = None
    assert collector.handle(body(VALID_EVENT)) == {"status": "ok"}
    collector.close()
    assert count(syncs.db) == 1


def test_a_missing_wal_hands_syncing_back_to_sqlite(syncs: Syncs, caplog):
    backend = SQLiteBackend(syncs.db)
    backend.write([stored("set")])
    backend._wal.path = str(syncs.db) + "-nowhere"  # where SQLite's WAL is not
    with pytest.raises(BackendError, match="not confirmed on disk"):
        backend.write([stored("get")])
    assert "syncing at every commit instead" in caplog.text
    conn = backend._connect()
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: SQLite syncs
    calls = len(syncs.calls)
    backend.write([stored("download_complete")])
    assert len(syncs.calls) == calls  # no WAL sync of its own any more
    backend.close()
    assert count(syncs.db) == 3


def test_memory_databases_let_sqlite_decide():
    backend = SQLiteBackend(":memory:")
    backend.write([stored()])
    assert backend._wal is None
    assert backend._connect().execute("PRAGMA synchronous").fetchone()[0] == 2
    backend.close()


def test_the_wal_is_found_through_a_symbolic_link(tmp_path: Path, syncs: Syncs):
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link.sqlite3"
    link.symlink_to(real / "s.sqlite3")
    syncs.db = real / "s.sqlite3"
    backend = SQLiteBackend(link)
    backend.write([stored()])
    # SQLite keeps its WAL beside the file the link names: that file is the one synced.
    assert syncs.calls == [(inode(real / "s.sqlite3-wal"), 1)]
    backend.close()


def test_wal_file_names_what_sqlite_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    with closing(sqlite3.connect("relative.sqlite3")) as conn:
        assert wal_file(conn) == f"{tmp_path / 'relative.sqlite3'}-wal"
    with closing(sqlite3.connect(":memory:")) as conn:
        assert wal_file(conn) is None


def test_a_replaced_file_is_opened_again_with_its_directory_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    synced: list[tuple[int, int]] = []
    monkeypatch.setattr(_walsync, "_fdatasync", lambda fd: synced.append(os.fstat(fd)[1:3]))
    directories: list[str] = []
    real_sync_directory = _walsync._sync_directory

    def sync_directory(path: str) -> None:
        directories.append(path)
        real_sync_directory(path)

    monkeypatch.setattr(_walsync, "_sync_directory", sync_directory)
    path = tmp_path / "x-wal"
    path.write_bytes(b"one")
    wal = WalSync(str(path))
    wal.sync()
    wal.sync()
    first = path.stat()
    path.unlink()
    path.write_bytes(b"two")
    wal.sync()
    second = path.stat()
    assert synced == [
        (first.st_ino, first.st_dev),
        (first.st_ino, first.st_dev),
        (second.st_ino, second.st_dev),
    ]
    assert directories == [str(tmp_path), str(tmp_path)]  # once per file opened
    wal.close()
    path.unlink()
    with pytest.raises(FileNotFoundError):
        wal.sync()
