"""With other writers, SQLite commits without syncing under the write lock, and the backend
syncs the WAL before answering.

`SQLiteBackend` alone on a file lets SQLite sync at every commit (``synchronous=FULL``). Once
another connection (another process) writes the file, it runs ``synchronous=NORMAL`` and
syncs the WAL file itself after each commit (`_walsync`): an acknowledged write must have
been synced after its commit, a failed sync must not be acknowledged, and a WAL that cannot
be found hands the syncing back to SQLite.
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
from updater_stats.backends.sqlite import _backend, _walsync
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


def synchronous(backend: SQLiteBackend) -> int:
    return int(backend._connect().execute("PRAGMA synchronous").fetchone()[0])


def shared(backend: SQLiteBackend) -> SQLiteBackend:
    """*backend*, once it saw another connection write its file (as another process would)."""
    backend.LOOK_FOR_OTHER_WRITERS = 0  # at every write, not every tenth of a second
    backend.write([stored("app_moved_to_foreground", timestamp=1)])
    other = SQLiteBackend(backend.path)
    other.write([stored("app_moved_to_background", timestamp=2)])
    other.close()
    backend.write([stored("app_moved_to_foreground", timestamp=3)])  # sees it, then switches
    assert synchronous(backend) == 1  # NORMAL
    return backend


def test_alone_on_its_file_sqlite_syncs_at_every_commit(syncs: Syncs):
    backend = SQLiteBackend(syncs.db)
    for action in ("set", "get", "download_complete"):
        backend.write([stored(action)])
    assert synchronous(backend) == 2  # FULL
    assert backend._wal is None
    assert syncs.calls == []  # SQLite's own sync, inside COMMIT
    backend.close()


def test_with_another_writer_the_wal_is_synced_after_each_commit(syncs: Syncs):
    backend = shared(SQLiteBackend(syncs.db))
    syncs.calls.clear()
    backend.write([stored("set"), stored("get")])
    backend.write([stored("download_complete")])

    conn = backend._connect()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    wal = inode(f"{syncs.db}-wal")
    # One sync per write, of the WAL file itself, after the write's commit: each saw the
    # write's rows already committed, so the sync carried them to disk before write returned.
    assert syncs.calls == [(wal, 5), (wal, 6)]
    backend.close()


def test_other_writers_are_looked_for_once_in_a_while(
    syncs: Syncs, monkeypatch: pytest.MonkeyPatch
):
    clock = [1000.0]
    monkeypatch.setattr(_backend.time, "monotonic", lambda: clock[0])
    backend = SQLiteBackend(syncs.db)
    backend.write([stored("set", timestamp=1)])  # looks: the file's version now
    other = SQLiteBackend(syncs.db)
    other.write([stored("get", timestamp=2)])
    backend.write([stored("set", timestamp=3)])  # too soon: does not look
    assert synchronous(backend) == 2
    clock[0] += SQLiteBackend.LOOK_FOR_OTHER_WRITERS
    backend.write([stored("set", timestamp=4)])  # looks, sees the other writer's commit
    assert synchronous(backend) == 1
    other.close()
    backend.close()


def test_reopening_starts_alone_again(syncs: Syncs):
    backend = shared(SQLiteBackend(syncs.db))
    backend.close()
    again = SQLiteBackend(syncs.db)
    again.write([stored("set")])
    assert synchronous(again) == 2
    again.close()


def test_deletes_are_synced_too(syncs: Syncs):
    backend = shared(SQLiteBackend(syncs.db))
    backend.write([stored("set"), stored("get")])
    syncs.calls.clear()
    assert backend.forget(device_ids=[VALID_EVENT["device_id"]]) == 5
    assert syncs.calls[0] == (inode(f"{syncs.db}-wal"), 0)
    backend.close()


def test_a_failed_sync_is_not_acknowledged(syncs: Syncs):
    collector = Collector(shared(SQLiteBackend(syncs.db)))
    syncs.fail_with = OSError(errno.EIO, "Input/output error")
    with pytest.raises(UpdaterStatsError) as raised:
        collector.handle(body(VALID_EVENT))
    assert raised.value.status_code == 503
    assert raised.value.body["error"] == "storage_unavailable"
    # The device re-sends; the same event is then one row, and acknowledged.
    syncs.fail_with = None
    assert collector.handle(body(VALID_EVENT)) == {"status": "ok"}
    collector.close()
    assert count(syncs.db) == 4


def test_a_missing_wal_hands_syncing_back_to_sqlite(syncs: Syncs, caplog):
    backend = shared(SQLiteBackend(syncs.db))
    backend._wal.path = str(syncs.db) + "-nowhere"  # where SQLite's WAL is not
    with pytest.raises(BackendError, match="not confirmed on disk"):
        backend.write([stored("get")])
    assert "syncing at every commit instead" in caplog.text
    conn = backend._connect()
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: SQLite syncs
    calls = len(syncs.calls)
    other = SQLiteBackend(syncs.db)
    other.write([stored("app_moved_to_background", timestamp=9)])  # still another writer
    other.close()
    backend.write([stored("download_complete")])
    assert len(syncs.calls) == calls  # no WAL sync of its own any more
    assert synchronous(backend) == 2
    backend.close()
    assert count(syncs.db) == 6


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
    backend = shared(SQLiteBackend(link))
    syncs.calls.clear()
    backend.write([stored()])
    # SQLite keeps its WAL beside the file the link names: that file is the one synced.
    assert syncs.calls == [(inode(real / "s.sqlite3-wal"), 4)]
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
