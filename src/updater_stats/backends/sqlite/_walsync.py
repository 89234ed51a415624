"""Making a commit durable after SQLite's write lock is released: one sync of the WAL file.

With ``synchronous=FULL``, SQLite syncs the WAL inside ``COMMIT``, while it holds the file's
write lock: every other process writing the file waits out that sync (a millisecond or more
on a virtual disk), then sleeps in SQLite's busy handler (1, 2, 5 ms ...) before it tries
again. With two ``serve`` workers on one file, single events were answered more slowly than
by one worker.

So once the backend sees another process write the file, it runs ``synchronous=NORMAL``,
under which SQLite keeps the file consistent (it syncs the WAL before each checkpoint, the
database after it, and the WAL's header when the WAL is reused) but does not sync at
``COMMIT``, and syncs the WAL itself once the commit returned, the lock released, before the
write is acknowledged. Every acknowledged event was on disk first, as with ``FULL``: a sync
of the file writes out every page written to it before, the commit's own among them. One
sync also carries the commits other processes made meanwhile, and none of them waits for
it. A process alone keeps ``FULL``: there, SQLite's own sync costs less CPU.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from pathlib import Path

__all__ = ["WalSync", "wal_file"]


def wal_file(conn: sqlite3.Connection) -> str | None:
    """The WAL file of *conn*'s main database, as SQLite names it; `None` in memory.

    From SQLite's own full path of the database (``PRAGMA database_list``), so that a path
    through a symbolic link or relative to another directory names the file SQLite writes.
    """
    for _seq, name, path in conn.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return f"{path}-wal" if path else None
    return None


class WalSync:
    """Syncs one database's WAL file to disk: `sync` after each commit, before answering.

    Holds the file open between syncs. The WAL keeps its inode while any connection to the
    database is open (SQLite truncates or reuses it, never replaces it), but `sync` checks
    all the same and opens the file again when it was replaced; a file it opens for the
    first time has its directory synced too, as SQLite does for a new WAL, so that the file
    itself survives a power loss.

    Args:
        path: The WAL file (see `wal_file`).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._inode: tuple[int, int] | None = None

    def __repr__(self) -> str:
        return f"WalSync({self.path!r})"

    def sync(self) -> None:
        """Write the WAL file's data to disk; return once it is there.

        Raises:
            OSError: the file cannot be opened or synced; what was committed may not be on
                disk, so it must not be acknowledged.
        """
        with self._lock:
            _fdatasync(self._current())

    def _current(self) -> int:
        """The open WAL file, opened again if it was replaced. Hold the lock."""
        status = os.stat(self.path)  # noqa: PTH116 - once per commit: no Path object
        inode = (status.st_dev, status.st_ino)
        if self._fd is not None and inode == self._inode:
            return self._fd
        self._close()
        fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            opened = os.fstat(fd)
            _sync_directory(str(Path(self.path).parent))
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._inode = fd, (opened.st_dev, opened.st_ino)
        return fd

    def _close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = self._inode = None

    def close(self) -> None:
        """Close the file; a later `sync` opens it again."""
        with self._lock:
            self._close()


# Data and the size, not the times: what SQLite itself calls on Linux. macOS has no fdatasync.
_fdatasync = getattr(os, "fdatasync", os.fsync)


def _sync_directory(path: str) -> None:
    """Sync a directory's entries, where the platform can (not on Windows)."""
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
