"""Day summaries: reports over whole UTC days from a small file kept beside the store.

A report over 1 000 000 events reads every one of them, several times a page: seconds each.
The summaries (their tables: `_summary_tables`, the reports read from them:
`_summary_reports`) hold per device and version a bit per day
for each thing the reports ask of a device, the few times they need, and per day the counts
that add up. A report over whole days then reads one row per device and version instead of
every event, and gives the same figures: what the summaries cannot settle exactly (a
device's first download in the window when it downloaded before the window too, say) is
read from that device's events.

The file (``<database>-summaries``) is a cache: it is brought up to date from the events
table by row id, in chunks, and rebuilt from scratch after events were deleted (`forget`
and `purge` empty it) or when it was made by another format. Deleting it is safe.
"""

# ruff: noqa: S608 - SQL text is built from our own column names and integers only.

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ._summary_reports import SummaryReports, Window, answers
from ._summary_tables import FORMAT, SCHEMA, TABLES, Chunk, Event, event_columns
from ._transaction import immediate, into_wal

__all__ = ["DaySummaries", "answers", "empty_summaries", "summaries_path"]

log = logging.getLogger("updater_stats")

#: Events read per transaction while catching up.
CHUNK = 20_000
#: Events a report call brings in itself before answering; more, and the call reads the
#: events table while a thread catches up.
SYNC_BUDGET = 5000
#: Seconds between two catch-ups of the background thread.
POLL_SECONDS = 1.0


def summaries_path(database: str) -> Path:
    """Where the summaries of the SQLite file *database* are kept."""
    return Path(f"{database}-summaries")


def empty_summaries(database: str) -> None:
    """Empty the summaries of *database*, if any: they are rebuilt from the events on their
    next use. Called after events were deleted (`forget`, `purge`): the summaries cannot
    take events away, and a forgotten device's id must not stay behind in them either, so
    its rows are overwritten (``secure_delete``) and the file's WAL emptied at once.
    """
    path = summaries_path(database)
    if not path.exists():
        return
    try:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        try:
            conn.execute("PRAGMA secure_delete = ON")
            with immediate(conn):
                for table in TABLES:
                    conn.execute(f"DELETE FROM {table}")
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('stale', 1)")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        # It cannot be emptied: remove it, so nobody reads it again.
        log.warning("summaries %s could not be emptied (%s): removing it", path, exc)
        for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            name.unlink(missing_ok=True)


class DaySummaries(SummaryReports):
    """The summaries of one SQLite file, kept up to date from its events.

    Args:
        database: The SQLite file the events are in.
        events: A read connection to it (the reports' own).
        events_lock: The lock that guards *events*.
        duration_sql: SQL for a trusted ``metadata.duration_ms`` (the reports' dialect).
    """

    def __init__(
        self,
        database: str,
        events: sqlite3.Connection,
        events_lock: threading.Lock,
        duration_sql: str,
    ) -> None:
        self._database = database
        self._events = events
        self._events_lock = events_lock
        self._duration = duration_sql
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._broken = False
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._readers_lock = threading.Lock()
        self._readers: list[sqlite3.Connection] = []  # every reading connection, to close
        self._idle: list[sqlite3.Connection] = []

    # --- the file ------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection | None:
        """The file's connection, opened once; `None` when it cannot be (logged once)."""
        if self._conn is not None or self._broken:
            return self._conn
        path = summaries_path(self._database)
        try:
            conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            into_wal(conn, 30)
            # A cache: what a crash loses is read again from the events.
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA cache_size = -32768")
            for statement in SCHEMA:
                conn.execute(statement)
        except sqlite3.Error as exc:
            log.warning("day summaries unavailable at %s (%s): reports read every event", path, exc)
            self._broken = True
            return None
        self._conn = conn
        return conn

    def close(self) -> None:
        """Stop catching up and close the file."""
        self._closed.set()
        thread = self._thread
        if thread is not None:
            thread.join()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
            self._idle.clear()

    # --- catching up ---------------------------------------------------------------------

    def ready(self) -> bool:
        """Whether the summaries hold every event there is (bringing in a few if needed).

        With many events to bring in, a thread does it and this answers `False` meanwhile.
        """
        if self._closed.is_set():
            return False
        with self._lock:
            conn = self._open()
            if conn is None:
                return False
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._keep_up, name="updater-stats-summaries", daemon=True
                )
                self._thread.start()
            try:
                return self._catch_up(conn, SYNC_BUDGET, whole=True)
            except sqlite3.Error as exc:
                self._give_up(exc)
                return False

    def _keep_up(self) -> None:
        while not self._closed.wait(0 if not self._caught_up() else POLL_SECONDS):
            pass

    def _caught_up(self) -> bool:
        """One round of the thread: whether nothing was left to bring in."""
        with self._lock:
            conn = self._open()
            if conn is None or self._closed.is_set():
                return True
            try:
                # One chunk per turn: a page waits for the lock at most that long.
                return self._catch_up(conn, CHUNK)
            except sqlite3.Error as exc:
                self._give_up(exc)
                return True

    def _give_up(self, exc: sqlite3.Error) -> None:
        """Stop using the file after an error (logged once): reports read every event.
        Hold the lock."""
        log.warning(
            "day summaries could not be brought up to date (%s): reports read every event", exc
        )
        self._broken = True
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _latest_id(self) -> int:
        with self._events_lock:
            row = self._events.execute("SELECT MAX(id) FROM events").fetchone()
        return int(row[0] or 0)

    def _catch_up(self, conn: sqlite3.Connection, budget: int, *, whole: bool = False) -> bool:
        """Bring in up to *budget* events (with *whole*, none unless all of them fit);
        whether none are left. Hold the lock."""
        latest = self._latest_id()
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        watermark = int(meta.get("watermark", 0))
        if meta.get("format") != FORMAT or meta.get("stale") or watermark > latest:
            self._clear(conn)
            watermark = 0
        if whole and latest - watermark > budget:
            return False  # too many for a caller to wait for: the thread brings them in
        while watermark < latest and budget > 0:
            with immediate(conn):
                # Another process may have moved on meanwhile: its watermark counts.
                watermark = int(
                    conn.execute("SELECT value FROM meta WHERE key = 'watermark'").fetchone()[0]
                )
                events = self._read(watermark, min(CHUNK, budget))
                if events:
                    Chunk(conn).add(events)
                    watermark = events[-1][0]
                    conn.execute("UPDATE meta SET value = ? WHERE key = 'watermark'", (watermark,))
            if not events:
                break
            budget -= len(events)
        return watermark >= latest

    def _clear(self, conn: sqlite3.Connection) -> None:
        """Start over: the tables made anew (another format may have had other columns)."""
        with immediate(conn):
            for table in (*TABLES, "meta"):
                conn.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in SCHEMA:
                conn.execute(statement)
            conn.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [("format", FORMAT), ("stale", 0), ("watermark", 0)],
            )

    def _read(self, after: int, limit: int) -> list[tuple[Any, ...]]:
        sql = f"SELECT {event_columns(self._duration)} FROM events WHERE id > ? ORDER BY id LIMIT ?"
        with self._events_lock:
            return self._events.execute(sql, (after, limit)).fetchall()

    # --- reading -------------------------------------------------------------------------

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """Run a query on a reading connection of its own: reports run side by side (SQLite
        lets go of the interpreter lock while it works), and none waits for a chunk being
        brought in (WAL: readers see the last chunk committed)."""
        with self._readers_lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._reader()
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            with self._readers_lock:
                self._idle.append(conn)

    def _reader(self) -> sqlite3.Connection:
        """A new reading connection; a mask's highest day is a function of it (SQLite has
        none, and log2 is not in every build)."""
        conn = sqlite3.connect(summaries_path(self._database), timeout=30, check_same_thread=False)
        conn.execute("PRAGMA query_only = 1")
        conn.execute("PRAGMA cache_size = -32768")
        conn.create_function("bit_length", 1, int.bit_length, deterministic=True)
        with self._readers_lock:
            self._readers.append(conn)
        return conn

    def _device_events(
        self, w: Window, devices: Iterable[str], actions: Iterable[str]
    ) -> list[Event]:
        """The window's events of *devices* with one of *actions*, read from the events."""
        marks = ", ".join(f"'{a}'" for a in sorted(actions) if a.replace("_", "").isalnum())
        sql = (
            f"SELECT {event_columns(self._duration)} FROM events "
            f"WHERE app_id = ? AND device_id = ? AND action IN ({marks})"
        )
        found = []
        with self._events_lock:
            for device in devices:
                for row in self._events.execute(sql, (w.app_id, device)):
                    event = Event.read(row)
                    if w.takes(event):
                        found.append(event)
        return found
