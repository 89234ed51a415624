"""The SQLite write side: schema, migrations, and `SQLiteBackend`.

The package's docstring (``updater_stats.backends.sqlite``) describes the backend.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import itertools
import json
import logging
import operator
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any

from ..._batching import DEFAULT_DEADLINE
from ..._epoch import EPOCH, ONE_MS, epoch_ms, first_ms_from
from ..._models import BOOLEAN_FIELDS, SCALAR_FIELDS, AppInfos, StoredEvent, WriteResult
from ...exceptions import BackendError, ConfigurationError
from .._paging import paged
from .._rows import per_request
from ._reports import SQLiteReports, file_from_url
from ._summaries import empty_summaries
from ._transaction import immediate, into_wal, is_busy
from ._walsync import WalSync, wal_file

__all__ = ["SCHEMA_VERSION", "SQLiteBackend"]

log = logging.getLogger("updater_stats")

_MEMORY = ":memory:"

# One column per wire field, in `AppInfos` attribute names.
_EVENT_COLUMNS = SCALAR_FIELDS
_TEXT_COLUMNS = tuple(column for column in SCALAR_FIELDS if column not in BOOLEAN_FIELDS)
_COLUMNS = (
    "event_key",
    "received_at",
    "device_ts",
    "action_known",
    *_TEXT_COLUMNS,
    "is_prod",
    "is_emulator",
    "metadata",
    "extras",
    "truncated",
)

# `received_at` goes through NULLIF(?, -1): a padding row (below) binds -1 there, which
# becomes NULL, and NOT NULL turns the row away under OR IGNORE. A real receive time is
# never negative.
#
# `truncated` goes through NULLIF(?, 0): nearly every event binds 0 there (nothing was cut),
# which becomes NULL; binding None itself costs ten times an int (see _PADDING_ROW).
_PLACEHOLDER = {"received_at": "NULLIF(?, -1)", "truncated": "NULLIF(?, 0)"}
_ROW_PLACEHOLDERS = "({})".format(", ".join(_PLACEHOLDER.get(column, "?") for column in _COLUMNS))
_INSERT = (
    f"INSERT OR IGNORE INTO events ({', '.join(_COLUMNS)}) "  # noqa: S608 - fixed column names.
    f"VALUES {_ROW_PLACEHOLDERS}"
)
# Integers only: sqlite3 binds an int at once, but looks for an adapter for None or a
# bool first, which takes ten times as long (about 180 ns a parameter).
_PADDING_ROW = tuple(-1 if column == "received_at" else 0 for column in _COLUMNS)

# One write, one INSERT statement (its own transaction, synced when it ends); past
# MAX_ROWS_PER_STATEMENT rows, a few statements inside one transaction.
#
# Why not `executemany`: it releases Python's GIL around every row's step, and while request
# threads are busy in Python, taking it back can wait out the interpreter's switch interval
# (5 ms). A 200-row write then waited up to a second under load; one statement waits once.
#
# Preparing a statement of 1 000 rows costs about as much as running it, so statements are
# reused: one holds a number of rows from a short list (powers of two up to 256, then
# multiples of 256), and the rows it has no event for are padding rows, which the NOT NULL
# constraint on ``received_at`` turns away under OR IGNORE (nor are they counted as changes).
MAX_ROWS_PER_STATEMENT = 1024
_SIZE_STEP = 256
_FALLBACK_MAX_PARAMETERS = 999  # SQLite's smallest default, for Pythons without `getlimit`


def _statement_rows(count: int) -> int:
    """The rows of the statement that carries *count* rows (``count >= 1``)."""
    if count <= _SIZE_STEP:
        return 1 << (count - 1).bit_length()
    return -(-count // _SIZE_STEP) * _SIZE_STEP


@functools.cache  # a dozen sizes, see _statement_rows
def _insert_rows(count: int) -> str:
    return f"{_INSERT}{f', {_ROW_PLACEHOLDERS}' * (count - 1)}"


def _rows_per_statement(conn: sqlite3.Connection) -> int:
    """The largest statement size that SQLite's parameter limit allows, up to the maximum."""
    limit = getattr(sqlite3, "SQLITE_LIMIT_VARIABLE_NUMBER", None)  # Python 3.11+
    getlimit = getattr(conn, "getlimit", None)
    parameters = (
        _FALLBACK_MAX_PARAMETERS if limit is None or getlimit is None else int(getlimit(limit))
    )
    fitting = min(MAX_ROWS_PER_STATEMENT, max(1, parameters // len(_COLUMNS)))
    if fitting >= _SIZE_STEP:
        return fitting // _SIZE_STEP * _SIZE_STEP
    return 1 << (fitting.bit_length() - 1)


#: The WAL's pages between two checkpoints (SQLite's default: 1000). A commit that passes it
#: copies the WAL's pages into the file and syncs it; new events touch the same pages again and
#: again (the right edges of the table and of the key index), so each checkpoint writes far
#: fewer pages than it folds. Single events, 32 a write, into a table of 32 000, four pairs of
#: runs: 24 µs of CPU an event against 28 with the default, 34 µs of wall time against 43; the
#: checkpointing write took up to 27 ms (19 with the default). 200-event writes: the same.
#: The WAL file grows to about this many pages (32 MiB of 4 KiB pages) and stays that size;
#: longer while a reader keeps it from being restarted, as with the default.
_WAL_PAGES = 8000

_SELECT = f"SELECT id, {', '.join(_COLUMNS)} FROM events"  # noqa: S608 - fixed column names.

# Rows one purge transaction deletes: the file stays writable for the collector in between.
PURGE_CHUNK = 5000
_PURGE = (
    "DELETE FROM events WHERE id IN "
    "(SELECT id FROM events WHERE received_at < ? ORDER BY id LIMIT ?)"
)
_PURGE_APP = (
    "DELETE FROM events WHERE id IN "
    "(SELECT id FROM events WHERE received_at < ? AND app_id = ? ORDER BY id LIMIT ?)"
)


def _events_table(event_key: str, *, version: int) -> str:
    """``CREATE TABLE events`` as schema *version* has it.

    Versions 1 and 2 differ in *event_key*; version 4 lets the fields that do not identify
    an event be NULL (absent) and adds ``truncated``.
    """
    optional = "" if version >= 4 else " NOT NULL"
    truncated = (
        "\n            truncated        TEXT                  -- JSON array of cut fields, or NULL"
        if version >= 4
        else ""
    )
    # The comma before `truncated` goes before the comment that ends the `extras` line.
    extras = "TEXT," if version >= 4 else "TEXT "
    return f"""
        CREATE TABLE events (
            id               INTEGER PRIMARY KEY,  -- storage order
            event_key        {event_key}
            received_at      INTEGER NOT NULL,     -- server clock, epoch ms UTC
            device_ts        INTEGER,              -- the wire `timestamp`, epoch ms
            action_known     INTEGER NOT NULL,
            app_id           TEXT NOT NULL,
            device_id        TEXT NOT NULL,
            platform         TEXT{optional},
            action           TEXT NOT NULL,
            version_name     TEXT NOT NULL,
            old_version_name TEXT,
            version_build    TEXT{optional},
            version_code     TEXT{optional},
            version_os       TEXT{optional},
            plugin_version   TEXT{optional},
            custom_id        TEXT,
            is_prod          INTEGER NOT NULL,
            is_emulator      INTEGER NOT NULL,
            install_source   TEXT,
            default_channel  TEXT,
            channel          TEXT,
            key_id           TEXT,
            metadata         TEXT,                 -- JSON object, NULL when absent
            extras           {extras}                 -- JSON object of unknown fields{truncated}
        )
        """


_V1_INDEXES = (
    "CREATE INDEX events_app_version ON events (app_id, version_name, action)",
    "CREATE INDEX events_app_received ON events (app_id, received_at)",
    "CREATE INDEX events_app_action_received ON events (app_id, action, received_at)",
    "CREATE INDEX events_app_device ON events (app_id, device_id, received_at)",
)


def _v1(conn: sqlite3.Connection) -> None:
    conn.execute(
        _events_table(
            "TEXT UNIQUE,          -- NULL for events without a device timestamp", version=1
        )
    )
    for statement in _V1_INDEXES:
        conn.execute(statement)


_V2_EVENT_KEY = "TEXT,                 -- NULL without a device timestamp; unique below"
_V2_INDEXES = (
    *_V1_INDEXES,
    # The key is a hash over app and device (and more), so it is as unique here as alone;
    # but a batch comes from one device, and its keys now land side by side in the index
    # instead of at random places: writes are about twice as fast on a large table.
    "CREATE UNIQUE INDEX events_app_device_key ON events (app_id, device_id, event_key)",
)


def _v2(conn: sqlite3.Connection) -> None:
    """Move the key's uniqueness from its own column to an index led by app and device.

    SQLite cannot drop a column constraint: the table is rebuilt once, rows and ids kept.
    """
    conn.execute("ALTER TABLE events RENAME TO events_v1")
    for index in ("app_version", "app_received", "app_action_received", "app_device"):
        conn.execute(f"DROP INDEX events_{index}")
    conn.execute(_events_table(_V2_EVENT_KEY, version=2))
    conn.execute("INSERT INTO events SELECT * FROM events_v1 ORDER BY id")
    conn.execute("DROP TABLE events_v1")
    for statement in _V2_INDEXES:
        conn.execute(statement)


def _v3(conn: sqlite3.Connection) -> None:
    """Drop the index on (app, version, action): no report uses it, and every write paid it.

    Reports group by the version computed from ``version_name``, which the index cannot
    serve (``EXPLAIN QUERY PLAN`` shows none of them using it), while a batch's events
    (one version, a dozen actions) dirtied a dozen of its pages: writes are about a
    quarter faster without it.
    """
    conn.execute("DROP INDEX IF EXISTS events_app_version")


_V3_INDEXES = tuple(index for index in _V2_INDEXES if "events_app_version " not in index)


def _v4(conn: sqlite3.Connection) -> None:
    """Let the fields that do not identify an event be absent, and note the fields cut.

    Only ``app_id``, ``device_id``, ``action`` and ``version_name`` identify an event
    (protocol, section 3): ``platform``, ``version_build``, ``version_code``,
    ``version_os`` and ``plugin_version`` may be absent, stored as NULL. SQLite cannot
    drop a NOT NULL constraint: the table is rebuilt once, rows and ids kept, with the
    new ``truncated`` column NULL for every earlier row (nothing was cut before).
    """
    conn.execute("ALTER TABLE events RENAME TO events_v3")
    for index in ("app_received", "app_action_received", "app_device", "app_device_key"):
        conn.execute(f"DROP INDEX events_{index}")
    conn.execute(_events_table(_V2_EVENT_KEY, version=4))
    conn.execute(
        f"INSERT INTO events (id, {', '.join(_COLUMNS[:-1])}) "  # noqa: S608 - fixed names
        f"SELECT id, {', '.join(_COLUMNS[:-1])} FROM events_v3 ORDER BY id"
    )
    conn.execute("DROP TABLE events_v3")
    for statement in _V3_INDEXES:
        conn.execute(statement)


#: The dashboard's and ``updater-stats devices``' search by ``custom_id``: without it, a search
#: reads every event of the app. Partial: events without a ``custom_id`` (absent, or the ""
#: many apps send for "no user") take no room in it and cost no write.
_V5_INDEX = (
    "CREATE INDEX IF NOT EXISTS events_app_custom ON events (app_id, custom_id) "
    "WHERE custom_id IS NOT NULL AND custom_id <> ''"
)


def _v5(conn: sqlite3.Connection) -> None:
    """Index ``custom_id`` within each app, for the device search."""
    conn.execute(_V5_INDEX)


#: Schema 6: the key's uniqueness in an index that new events are appended to. Led by the
#: device time, which is near "now" for new events, a write touches a few pages at the
#: index's right edge instead of one random page per device (the device id led before);
#: partial, so that events without a key (old plugins send no timestamp) cost it nothing.
#: ``SQLiteBackend.write()`` of 32 such events a commit into a table of 32 000: about 40 µs
#: of CPU an event with the old index, 26 µs with this one (docs/performance.md).
#:
#: Duplicates are the same: every key hashes the app, the device and the device time (the
#: content keys, and the keys of releases before them), so two rows with one key have one
#: device time, app and device. ``app_id`` and ``device_id`` stay in the index all the same:
#: its columns then include the old index's, so building it on any schema 5 file cannot fail,
#: and it refuses nothing that the old index let in. Writes cost the same with or without them.
_V6_KEY_INDEX = (
    "CREATE UNIQUE INDEX events_device_ts_key ON events (device_ts, event_key, app_id, device_id) "
    "WHERE event_key IS NOT NULL"
)


def _v6(conn: sqlite3.Connection) -> None:
    """Make the key unique through an index led by the device time instead of the device.

    Building it reads the table once; no query but the writes' uniqueness check used the old
    index (``EXPLAIN QUERY PLAN``: the device search used it as a covering index of
    ``(app_id, device_id)``, which ``events_app_device`` is too).
    """
    conn.execute(_V6_KEY_INDEX)
    conn.execute("DROP INDEX IF EXISTS events_app_device_key")


#: Migration n+1 brings a file from schema version n to n+1.
_MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1, _v2, _v3, _v4, _v5, _v6)
#: The schema version (`PRAGMA user_version`) this release migrates to; it refuses a newer one.
SCHEMA_VERSION = len(_MIGRATIONS)


def _schema_version(conn: sqlite3.Connection) -> int:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise ConfigurationError(
            f"the SQLite file has schema version {version}, newer than this "
            f"updater-stats ({SCHEMA_VERSION}): upgrade updater-stats",
            code="schema_too_new",
        )
    return version


def _migrate(conn: sqlite3.Connection) -> None:
    # An up-to-date file needs no write lock: opening it then works on a full disk too,
    # and processes starting together do not queue behind each other.
    if _schema_version(conn) == SCHEMA_VERSION:
        return
    with immediate(conn):  # One process migrates; the others wait, then see it done.
        for migration in _MIGRATIONS[_schema_version(conn) :]:
            migration(conn)
        # PRAGMA takes no parameters; SCHEMA_VERSION is our own integer.
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


_text_columns = operator.attrgetter(*_TEXT_COLUMNS)
# What json.dumps(value, ensure_ascii=False) writes, without building an encoder per call.
_to_json = json.JSONEncoder(ensure_ascii=False).encode


def _row(stored: StoredEvent, received_ms: int) -> tuple[Any, ...]:
    """The row for *stored*, received at *received_ms* (epoch milliseconds)."""
    event = stored.event
    metadata, extras = event.metadata, event.extras
    return (
        stored.key,
        received_ms,
        event.timestamp,
        1 if event.action_known else 0,  # ints, not bools: see _PADDING_ROW
        *_text_columns(event),
        1 if event.is_prod else 0,
        1 if event.is_emulator else 0,
        None if metadata is None else _to_json(metadata),
        _to_json(extras) if extras else None,
        _to_json(stored.truncated) if stored.truncated else 0,  # NULL, see _PLACEHOLDER
    )


def _rows(events: Sequence[StoredEvent]) -> list[tuple[Any, ...]]:
    received = per_request(events, epoch_ms)
    return [_row(stored, ms) for stored, ms in zip(events, received, strict=True)]


def _code(exc: sqlite3.Error, deadline: float | None) -> str:
    """``storage_timeout`` for a lock not had by the write's deadline, else the usual code."""
    return "storage_timeout" if is_busy(exc) and deadline is not None else "storage_unavailable"


# Where `_stored` finds each value in a row of `_SELECT` (``id`` first, then `_COLUMNS`):
# by position, not by name: reading events (export, copy, reports in Python) takes 7.3 µs an
# event instead of 10.5.
_AT = {column: index for index, column in enumerate(("id", *_COLUMNS))}
_TEXT_SLICE = slice(_AT[_TEXT_COLUMNS[0]], _AT[_TEXT_COLUMNS[-1]] + 1)
_KEY, _RECEIVED, _DEVICE_TS = _AT["event_key"], _AT["received_at"], _AT["device_ts"]
_IS_PROD, _IS_EMULATOR = _AT["is_prod"], _AT["is_emulator"]
_METADATA, _EXTRAS, _TRUNCATED = _AT["metadata"], _AT["extras"], _AT["truncated"]


def _stored(row: sqlite3.Row) -> StoredEvent:
    fields = dict(zip(_TEXT_COLUMNS, row[_TEXT_SLICE], strict=True))
    metadata, extras, truncated = row[_METADATA], row[_EXTRAS], row[_TRUNCATED]
    event = AppInfos(
        **fields,
        is_prod=bool(row[_IS_PROD]),
        is_emulator=bool(row[_IS_EMULATOR]),
        timestamp=row[_DEVICE_TS],
        metadata=None if metadata is None else json.loads(metadata),
        extras={} if extras is None else json.loads(extras),
    )
    return StoredEvent(
        event=event,
        received_at=EPOCH + row[_RECEIVED] * ONE_MS,
        key=row[_KEY],
        truncated=() if truncated is None else tuple(json.loads(truncated)),
    )


# Every app in the table, one seek of `events_app_received` each (SQLite has no skip-scan
# without statistics): what lets `forget` without an app use the indexes led by the app.
_EVERY_APP = (
    "WITH RECURSIVE apps(app_id) AS ("
    "SELECT (SELECT min(app_id) FROM events) UNION ALL "
    "SELECT (SELECT min(app_id) FROM events WHERE app_id > apps.app_id) "
    "FROM apps WHERE apps.app_id IS NOT NULL) "
)


def _forget_statements(
    devices: list[str], customs: list[str], app_id: str | None
) -> list[tuple[str, list[Any]]]:
    """The DELETE statements of `SQLiteBackend.forget`, each searching an index.

    A DELETE holds the file's write lock until it ends, and intake waits for it: one that read
    the whole table (``device_id IN (...)`` without an app, or a ``custom_id`` search by the
    app alone) kept devices' writes waiting for as long as that took, past their deadline on a
    large store. Devices go through ``events_app_device`` (app, device), users through the
    partial ``events_app_custom``, whose condition the statement repeats so that SQLite may use
    it; ``""``, which that index leaves out, is searched apart (only the library can ask for it).
    """
    with_apps, apps, app_params = (
        ("", "?", [app_id]) if app_id is not None else (_EVERY_APP, "SELECT app_id FROM apps", [])
    )
    statements: list[tuple[str, list[Any]]] = []

    def delete_in_apps(condition: str, values: list[str]) -> None:
        # Only placeholders and fixed SQL are formatted in; the values are parameters.
        statement = f"{with_apps}DELETE FROM events WHERE app_id IN ({apps}) AND {condition}"  # noqa: S608
        statements.append((statement, [*app_params, *values]))

    if devices:
        delete_in_apps(f"device_id IN ({', '.join('?' for _ in devices)})", devices)
    named = [custom for custom in customs if custom != ""]
    if named:
        marks = ", ".join("?" for _ in named)
        delete_in_apps(f"custom_id IN ({marks}) AND custom_id <> ''", named)
    if len(named) < len(customs):
        empty = "DELETE FROM events WHERE custom_id = ''"
        statements.append((empty, []) if app_id is None else (f"{empty} AND app_id = ?", [app_id]))
    return statements


class SQLiteBackend:
    """Events in one SQLite file (or in memory with ``":memory:"``).

    The file and its schema are created on first use; older schema versions
    are migrated. Safe to share between threads, and between processes on
    one machine (WAL mode).

    Args:
        path: The database file, ``":memory:"`` for a private in-memory database.
        timeout: Seconds to wait for another process's lock before failing with 503.
            The collector's writes wait less when their deadline is nearer (`write_by`).
    """

    #: Seconds between two looks for other processes writing the file (see `write`).
    LOOK_FOR_OTHER_WRITERS = 0.1

    def __init__(
        self,
        path: str | os.PathLike[str] = "updater_stats.sqlite3",
        *,
        timeout: float = DEFAULT_DEADLINE,
    ) -> None:
        self._path = os.fspath(path)
        self._timeout = timeout
        self._timeout_ms = max(0, int(timeout * 1000))
        self._busy_ms = self._timeout_ms  # the connection's busy timeout, as last set
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        # Syncs the WAL after each commit once another process writes the file (see _walsync);
        # None: SQLite syncs at COMMIT itself.
        self._wal: WalSync | None = None
        self._wal_path: str | None = None  # where that WAL is; None: SQLite always syncs
        self._data_version: int | None = None  # the file's, as this connection last saw it
        self._next_look = 0.0  # when `_share_syncing` looks at it again (time.monotonic)
        self._rows_per_statement = 1  # set from the connection's limits when it opens
        self._closed = False

    @classmethod
    def from_url(cls, url: str) -> SQLiteBackend:
        """``sqlite:///relative.sqlite3``, ``sqlite:////abs/path.sqlite3``, ``sqlite://:memory:``."""
        return cls(file_from_url(url))

    @property
    def path(self) -> str:
        """The database file, or ``":memory:"``."""
        return self._path

    def __repr__(self) -> str:
        return f"SQLiteBackend({self._path!r})"

    def _connect(self, deadline: float | None = None) -> sqlite3.Connection:
        """The open connection, opening and migrating the file first if needed. Hold the lock.

        Its waits for other processes' locks end after `timeout`, or by *deadline* (a
        `time.monotonic` value) if that comes first.
        """
        conn = self._open()
        self._bound_waits(conn, deadline)
        return conn

    def _bound_waits(self, conn: sqlite3.Connection, deadline: float | None) -> None:
        """Set the busy timeout for the next statements, when it must change. Hold the lock."""
        wanted = self._timeout_ms
        if deadline is not None:
            left = int((deadline - time.monotonic()) * 1000)
            if left <= 0:
                raise BackendError(
                    "SQLite write not started: its deadline has passed", code="storage_timeout"
                )
            bound = min(left, self._timeout_ms)
            # Each PRAGMA is a statement, and each statement may wait for the interpreter
            # lock under load: kept while it ends in time and waits at least half what it could.
            if bound // 2 <= self._busy_ms <= bound:
                return
            # A tenth below the bound, so that the next writes, a few milliseconds nearer
            # their own deadlines, keep it too.
            wanted = bound * 9 // 10
        if wanted != self._busy_ms:
            # An integer of ours: PRAGMA takes no parameters.
            conn.execute(f"PRAGMA busy_timeout = {wanted}")
            self._busy_ms = wanted

    def _open(self) -> sqlite3.Connection:
        """The open connection, opening and migrating the file first if needed. Hold the lock."""
        if self._closed:
            raise BackendError("the SQLite backend is closed")
        if self._conn is not None:
            return self._conn
        try:
            conn = sqlite3.connect(
                self._path, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise BackendError(f"cannot open SQLite database {self._path!r}: {exc}") from exc
        try:
            conn.row_factory = sqlite3.Row
            wal_path = None
            if self._path != _MEMORY:
                mode = into_wal(conn, self._timeout)
                # Fold the WAL into the file every _WAL_PAGES pages instead of SQLite's 1000.
                conn.execute(f"PRAGMA wal_autocheckpoint = {_WAL_PAGES}")
                if mode.lower() == "wal" and os.name != "nt":
                    # Not on Windows, where a file opened only to read cannot be synced.
                    wal_path = wal_file(conn)
            # FULL: SQLite syncs the WAL at every commit, so an acknowledged batch survives
            # power loss; until another process writes the file (see _share_syncing).
            conn.execute("PRAGMA synchronous = FULL")
            # Deleted rows (forget, purge) are overwritten with zeros, not left in free pages.
            conn.execute("PRAGMA secure_delete = ON")
            _migrate(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise BackendError(f"cannot prepare SQLite database {self._path!r}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        self._rows_per_statement = _rows_per_statement(conn)
        self._busy_ms = self._timeout_ms
        self._conn, self._wal_path, self._wal = conn, wal_path, None
        self._data_version, self._next_look = None, 0.0
        return conn

    def _share_syncing(self, conn: sqlite3.Connection) -> None:
        """Sync after the commit, out of the write lock, once another process writes the file.

        Alone, SQLite's own sync at COMMIT is the cheaper (one event a write: about 130 µs of
        CPU against 175 with the sync after it). With other writers (``serve``'s workers), a
        sync under the lock makes each wait out the others' (see _walsync): two workers
        answered single events 17 % faster, p99 5 ms instead of 7 to 21, with the sync after
        the commit. ``PRAGMA data_version`` changes when another connection commits; it is
        read at most every `LOOK_FOR_OTHER_WRITERS` seconds, so that a write stays one
        statement (each gives the interpreter lock back, and may wait to take it again).
        Hold the lock.
        """
        if self._wal is not None or self._wal_path is None:
            return
        now = time.monotonic()
        if now < self._next_look:
            return
        self._next_look = now + self.LOOK_FOR_OTHER_WRITERS
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if self._data_version is not None and version != self._data_version:
            # From the next commit on: each is synced by `_make_durable` before its answer.
            conn.execute("PRAGMA synchronous = NORMAL")
            self._wal = WalSync(self._wal_path)
            log.debug("SQLite: another process writes %s: syncing after each commit", self._path)
        self._data_version = version

    def _make_durable(self, conn: sqlite3.Connection) -> None:
        """Sync what the last commit wrote, before it is acknowledged. Hold the lock.

        Raises:
            BackendError: the sync failed: what was committed may not be on disk.
        """
        wal = self._wal
        if wal is None:
            return  # SQLite synced at COMMIT
        try:
            wal.sync()
        except FileNotFoundError as exc:
            # No WAL where SQLite said it is: not seen, but then SQLite must sync itself.
            log.warning("SQLite: no WAL file at %s: syncing at every commit instead", wal.path)
            self._wal = self._wal_path = None
            wal.close()
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA synchronous = FULL")
            raise BackendError(f"SQLite write not confirmed on disk: {exc}") from exc
        except OSError as exc:
            raise BackendError(f"SQLite write not confirmed on disk: {exc}") from exc

    def write(self, events: Sequence[StoredEvent]) -> WriteResult:
        """Store *events* in one transaction, skipping known keys (`INSERT OR IGNORE`).

        Returns once they are on disk. Alone on its file, SQLite syncs inside the commit;
        once another process is seen writing the file (looked for at most every
        `LOOK_FOR_OTHER_WRITERS` seconds), the WAL is synced after the commit instead, out of
        the write lock that the other writers wait for.
        """
        return self._write(events, None)

    def write_by(self, events: Sequence[StoredEvent], deadline: float) -> WriteResult:
        """`write`, failing with `BackendError` rather than waiting for a lock past *deadline*.

        *deadline* is a `time.monotonic` value. Waits for this backend's own lock (a purge
        or a read in another thread) and for other processes' locks on the file both end
        by then. A write whose lock came in time then runs to its end: the time a statement
        takes once it has the lock, and the disk's sync, cannot be cut short.
        """
        return self._write(events, deadline)

    def _write(self, events: Sequence[StoredEvent], deadline: float | None) -> WriteResult:
        rows = _rows(events)
        several_apps = len({stored.event.app_id for stored in events}) > 1
        duplicate_indexes: tuple[int, ...] | None = None
        if deadline is None:
            self._lock.acquire()
        elif not self._lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise BackendError(
                "SQLite write not started: the backend was busy in another thread until its "
                "deadline",
                code="storage_timeout",
            )
        try:
            try:
                conn = self._connect(deadline)
                self._share_syncing(conn)
                step = self._rows_per_statement
                chunks = [rows[start : start + step] for start in range(0, len(rows), step)]
                if len(chunks) == 1 and not several_apps:
                    inserted = self._insert(conn, chunks)  # its own transaction
                else:
                    with immediate(conn):
                        # INSERT OR IGNORE skips known keys: the rows changed are the new ones.
                        inserted = self._insert(conn, chunks)
                        if several_apps:
                            duplicate_indexes, inserted = self._find_duplicates(
                                conn, rows, inserted
                            )
                self._make_durable(conn)
            except sqlite3.Error as exc:
                raise BackendError(
                    f"SQLite write failed: {exc}", code=_code(exc, deadline)
                ) from exc
        finally:
            self._lock.release()
        return WriteResult(
            inserted=inserted,
            duplicates=len(rows) - inserted,
            duplicate_indexes=duplicate_indexes,
        )

    @staticmethod
    def _insert(conn: sqlite3.Connection, chunks: list[list[tuple[Any, ...]]]) -> int:
        inserted = 0
        for chunk in chunks:
            size = _statement_rows(len(chunk))
            parameters = list(itertools.chain.from_iterable(chunk))
            parameters.extend(_PADDING_ROW * (size - len(chunk)))
            inserted += conn.execute(_insert_rows(size), parameters).rowcount
        return inserted

    @staticmethod
    def _find_duplicates(
        conn: sqlite3.Connection, rows: list[tuple[Any, ...]], inserted: int
    ) -> tuple[tuple[int, ...], int]:
        """Which rows were duplicates, when a write holds several apps.

        Intake metrics count duplicates per app, so they need positions, which
        a statement's row count does not give. Duplicates are rare (a re-sent
        batch): only then is the transaction's work undone and redone row by row.
        """
        if inserted == len(rows):
            return (), inserted
        conn.execute("ROLLBACK")
        conn.execute("BEGIN IMMEDIATE")
        duplicates = tuple(
            index for index, row in enumerate(rows) if conn.execute(_INSERT, row).rowcount == 0
        )
        return duplicates, len(rows) - len(duplicates)

    def _delete(self, statement: str, params: Sequence[Any]) -> int:
        """Run one DELETE in its own transaction; the number of rows deleted."""
        return self._delete_all([(statement, params)])

    def _delete_all(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> int:
        """Run DELETE statements in one transaction; the number of rows they deleted."""
        with self._lock:
            conn = self._connect()
            try:
                # Counted by the connection: Python's `rowcount` says -1 for a statement
                # that starts with WITH.
                before = conn.total_changes
                with immediate(conn):
                    for statement, params in statements:
                        conn.execute(statement, params)
                deleted = conn.total_changes - before
                self._make_durable(conn)
            except sqlite3.Error as exc:
                raise BackendError(f"SQLite delete failed: {exc}") from exc
        return deleted

    def _checkpoint(self) -> None:
        """Fold the WAL into the file and empty it: old copies of deleted rows go with it."""
        if self._path == _MEMORY:
            return
        with self._lock:
            conn = self._connect()
            try:
                # Readers in other processes may keep it from finishing: the next one will.
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            except sqlite3.Error as exc:
                raise BackendError(f"SQLite checkpoint failed: {exc}") from exc

    def forget(
        self,
        *,
        device_ids: Collection[str] = (),
        custom_ids: Collection[str] = (),
        app_id: str | None = None,
    ) -> int:
        """Delete every event of these devices or users (values as stored), of *app_id* only
        when given; return how many.

        One transaction. Deleted rows are overwritten (``secure_delete``) and the
        WAL is emptied afterwards, so the file keeps no copy of them.
        """
        devices, customs = list(device_ids), list(custom_ids)
        if not devices and not customs:
            return 0
        deleted = self._delete_all(_forget_statements(devices, customs, app_id))
        if deleted:
            empty_summaries(self._path)  # they cannot take events away, nor keep a device
        self._checkpoint()
        return deleted

    def purge(self, *, older_than: dt.datetime, app_id: str | None = None) -> int:
        """Delete every event received before *older_than*, of *app_id* only when given.

        In transactions of `PURGE_CHUNK` rows, oldest first: writes from the
        collector (and other processes) go on between them.
        """
        cutoff = epoch_ms(older_than)
        total = 0
        while True:
            deleted = (
                self._delete(_PURGE, (cutoff, PURGE_CHUNK))
                if app_id is None
                else self._delete(_PURGE_APP, (cutoff, app_id, PURGE_CHUNK))
            )
            total += deleted
            if deleted < PURGE_CHUNK:
                break
        if total:
            empty_summaries(self._path)  # they cannot take events away, nor keep a device
            self._checkpoint()
        return total

    def report_source(self) -> SQLiteReports:
        """The reports' push-down: queries run by SQLite on a read-only connection of their
        own, so reading never blocks this backend's writes (a file database only)."""
        return SQLiteReports(self.path)

    def ping(self) -> None:
        """Raise `BackendError` unless the database answers a query."""
        with self._lock:
            conn = self._connect()
            try:
                conn.execute("SELECT 1 FROM events LIMIT 1").fetchall()
            except sqlite3.Error as exc:
                raise BackendError(f"SQLite does not answer: {exc}") from exc

    def events(
        self,
        *,
        app_id: str | None = None,
        since: dt.datetime | None = None,
        chunk_size: int = 1000,
    ) -> Iterator[StoredEvent]:
        """Every stored event in storage order, read in chunks (never all at once), of
        *app_id* only and received at or after *since* only, when given."""
        # The unary `+` keeps SQLite walking the table in id order (the filters are checked
        # on the way): with an index on them instead, every page would sort what is left.
        where = "WHERE id > ?"
        params: list[Any] = []
        if app_id:
            where += " AND +app_id = ?"
            params.append(app_id)
        if since is not None:
            # Receive times are stored in whole milliseconds: the first one at or after since.
            where += " AND +received_at >= ?"
            params.append(first_ms_from(since))
        statement = f"{_SELECT} {where} ORDER BY id LIMIT ?"

        def page(after: int) -> list[sqlite3.Row]:
            with self._lock:
                conn = self._connect()
                try:
                    return conn.execute(statement, (after, *params, chunk_size)).fetchall()
                except sqlite3.Error as exc:
                    raise BackendError(f"SQLite read failed: {exc}") from exc

        return paged(page, _stored)

    def close(self) -> None:
        """Close the connection; later calls raise `BackendError`. Closing again does nothing."""
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._wal is not None:
                self._wal.close()
                self._wal = None
