"""SQLite's write transaction block and the turn to WAL, for the events file and its day
summaries alike."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator

__all__ = ["immediate", "into_wal", "is_busy"]

_SQLITE_BUSY = 5  # the primary result code; sqlite3.SQLITE_BUSY from Python 3.11


@contextlib.contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, taken at once (``BEGIN IMMEDIATE``: no lock upgrade to fail
    half-way), committed when the block ends, rolled back when it raises. A failure may
    have ended the transaction already: the rollback then keeps out of the way of its error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def is_busy(exc: sqlite3.Error) -> bool:
    """Whether *exc* is SQLite's "database is locked" (``SQLITE_BUSY``, any extended code)."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+: the extended result code
    # Python 3.10 has no code on the exception: SQLite's own words for SQLITE_BUSY, then.
    if isinstance(code, int):
        return code & 0xFF == _SQLITE_BUSY
    return "database is locked" in str(exc)


def into_wal(conn: sqlite3.Connection, timeout: float) -> str:
    """``PRAGMA journal_mode = WAL``: the journal mode the file has then.

    Retried for up to *timeout* seconds while another connection holds the file: connections
    opening a new file at once (``serve``'s workers on their first requests) each try to turn
    it to WAL, and SQLite answers one of them "database is locked" at once, without waiting
    on its busy timeout, rather than let the two wait for each other.
    """
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(2 * pause, 0.05)
