"""The PostgreSQL write side: schema, migrations, text escaping, and `PostgresBackend`.

The package's docstring (``updater_stats.backends.postgres``) describes the backend.
"""

from __future__ import annotations

import datetime as dt
import json
import operator
import re
import threading
import time
import weakref
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from ..._models import BOOLEAN_FIELDS, SCALAR_FIELDS, AppInfos, StoredEvent, WriteResult
from ...exceptions import BackendError, ConfigurationError
from .._paging import paged
from .._rows import per_request
from .._url import split_parameters
from ._escape import escape, escape_or_none, from_jsonb, to_jsonb, unescape
from ._reports import PostgresReports

__all__ = ["SCHEMA_VERSION", "PostgresBackend", "escape", "from_jsonb", "to_jsonb", "unescape"]

_EVENT_COLUMNS = SCALAR_FIELDS
_TEXT_COLUMNS = frozenset(_EVENT_COLUMNS) - BOOLEAN_FIELDS
_COLUMNS = (
    "event_key",
    "received_at",
    "device_ts",
    "action_known",
    *_EVENT_COLUMNS,
    "metadata",
    "extras",
    "truncated",
)

# -- text that PostgreSQL cannot hold ------------------------------------------------------

# DLE, "data link escape": the ASCII control made for this job, and absent from real events.
# -- schema --------------------------------------------------------------------------------


_V1 = (
    """
    CREATE TABLE {schema}.events (
        id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- storage order
        event_key        text,                  -- NULL for events without a device timestamp
        received_at      timestamptz NOT NULL,  -- server clock
        device_ts        bigint,                -- the wire `timestamp`, epoch milliseconds
        action_known     boolean NOT NULL,
        app_id           text NOT NULL,
        device_id        text NOT NULL,
        platform         text NOT NULL,
        action           text NOT NULL,
        version_name     text NOT NULL,
        old_version_name text,
        version_build    text NOT NULL,
        version_code     text NOT NULL,
        version_os       text NOT NULL,
        plugin_version   text NOT NULL,
        custom_id        text,
        is_prod          boolean NOT NULL,
        is_emulator      boolean NOT NULL,
        install_source   text,
        default_channel  text,
        channel          text,
        key_id           text,
        metadata         jsonb,                 -- object of strings, NULL when absent
        extras           jsonb                  -- object of unknown fields, NULL when none
    )
    """,
    # Partial: keyless events take no room in it. ON CONFLICT DO NOTHING relies on it.
    (
        "CREATE UNIQUE INDEX events_event_key ON {schema}.events (event_key) "
        "WHERE event_key IS NOT NULL"
    ),
    "CREATE INDEX events_app_version ON {schema}.events (app_id, version_name, action)",
    "CREATE INDEX events_app_received ON {schema}.events (app_id, received_at)",
    "CREATE INDEX events_app_action_received ON {schema}.events (app_id, action, received_at)",
    "CREATE INDEX events_app_device ON {schema}.events (app_id, device_id, received_at)",
    # Rows arrive in time order: a tiny BRIN index serves time ranges (purges, exports).
    "CREATE INDEX events_received_brin ON {schema}.events USING brin (received_at)",
)


def _v1(conn: psycopg.Connection[Any], schema: sql.Identifier) -> None:
    for statement in _V1:
        # The statements are ours; only the schema name is configuration, quoted by psycopg.
        conn.execute(sql.SQL(statement).format(schema=schema))


#: The columns version 1 made NOT NULL for fields an event may lack (protocol, section 3).
_V2_OPTIONAL = ("platform", "version_build", "version_code", "version_os", "plugin_version")


def _v2(conn: psycopg.Connection[Any], schema: sql.Identifier) -> None:
    """Let the fields that do not identify an event be NULL (absent), and add ``truncated``.

    ``truncated`` lists the fields stored cut at a cap, NULL when none (nearly every row).
    Both changes are to the catalog only: no row is read or rewritten, so the migration
    takes milliseconds on a table of any size, once it has the table's lock (it waits for
    queries running on the table, and writes wait for it).
    """
    changes: list[sql.Composable] = [
        sql.SQL("ALTER COLUMN {} DROP NOT NULL").format(sql.Identifier(column))
        for column in _V2_OPTIONAL
    ]
    changes.append(sql.SQL("ADD COLUMN truncated text[]"))
    conn.execute(sql.SQL("ALTER TABLE {}.events {}").format(schema, sql.SQL(", ").join(changes)))


#: Migration n+1 brings a schema from version n to n+1.
_MIGRATIONS = (_v1, _v2)
#: The schema version this release migrates to; it refuses a database with a newer one.
SCHEMA_VERSION = len(_MIGRATIONS)

# Any constant works: it only has to be the same in every process that migrates.
_MIGRATION_LOCK = 0x5570_5374_6174_73  # "UpStats"


def _migrate(conn: psycopg.Connection[Any], schema_name: str) -> None:
    """Create or upgrade the schema; one process at a time, the others wait and see it done."""
    schema = sql.Identifier(schema_name)
    with conn.transaction():
        encoding = conn.execute("SHOW server_encoding").fetchone()
        if encoding is None or encoding[0].upper() not in {"UTF8", "UTF-8"}:
            raise ConfigurationError(
                f"the PostgreSQL database must use UTF8 encoding, not {encoding and encoding[0]}",
                code="database_encoding",
            )
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [_MIGRATION_LOCK])
        # Look first: CREATE SCHEMA IF NOT EXISTS needs the CREATE right even when it exists.
        if not conn.execute(
            "SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema_name]
        ).fetchone():
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
        version_table = sql.SQL("{}.schema_version").format(schema)
        if not conn.execute(
            "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = 'schema_version'",
            [schema_name],
        ).fetchone():
            conn.execute(
                sql.SQL("CREATE TABLE {} (version integer NOT NULL)").format(version_table)
            )
            conn.execute(sql.SQL("INSERT INTO {} VALUES (0)").format(version_table))
        row = conn.execute(sql.SQL("SELECT version FROM {}").format(version_table)).fetchone()
        current = 0 if row is None else int(row[0])
        if current > SCHEMA_VERSION:
            raise ConfigurationError(
                f"the PostgreSQL schema {schema_name!r} has version {current}, newer than this "
                f"updater-stats ({SCHEMA_VERSION}): upgrade updater-stats",
                code="schema_too_new",
            )
        for migration in _MIGRATIONS[current:]:
            migration(conn, schema)
        conn.execute(sql.SQL("UPDATE {} SET version = %s").format(version_table), [SCHEMA_VERSION])


# -- rows ----------------------------------------------------------------------------------


_EVENT_VALUES = operator.attrgetter(*_EVENT_COLUMNS)
# Compact, and what PostgreSQL cannot hold stays visible: NUL and DLE come out as \u0000 and
# \u0010 (as every control character), lone surrogates as they are.
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_SURROGATE = re.compile("[\ud800-\udfff]")


def _batch_json(events: Sequence[StoredEvent]) -> str:
    """The batch as one JSON array of rows, values in `_COLUMNS` order, for `_insert_statement`.

    Nearly no text needs `escape`, and asking every field was a fifth of the writer's time:
    the batch is encoded as it is, and once more with every string escaped only if the JSON
    shows a character that needs it (or a backslash-u0000 typed as such: harmless).
    """
    text = _JSON.encode(_json_rows(events, escaped=False))
    if "\\u0000" in text or "\\u0010" in text or (not text.isascii() and _SURROGATE.search(text)):
        text = _JSON.encode(_json_rows(events, escaped=True))
    return text


def _json_rows(events: Sequence[StoredEvent], *, escaped: bool) -> list[list[Any]]:
    """The batch's rows, values in `_COLUMNS` order; every string escaped if *escaped*."""
    rows: list[list[Any]] = []
    received = per_request(events, dt.datetime.isoformat)
    for stored, received_at in zip(events, received, strict=True):
        event = stored.event
        key = stored.key
        values: Sequence[Any] = _EVENT_VALUES(event)
        metadata = event.metadata
        if escaped:
            key = escape_or_none(key)
            values = [escape(value) if isinstance(value, str) else value for value in values]
            metadata_json = None if metadata is None else to_jsonb(dict(metadata))
        else:
            metadata_json = None if metadata is None else _metadata_json(metadata)
        truncated = stored.truncated
        rows.append(
            [
                key,
                received_at,
                event.timestamp,
                event.action_known,
                *values,
                metadata_json,
                to_jsonb(dict(event.extras)) if event.extras else None,
                _text_array(truncated, escaped=escaped) if truncated else None,
            ]
        )
    return rows


def _text_array(values: Sequence[str], *, escaped: bool) -> str:
    """*values* as a PostgreSQL array literal (``{"a","b"}``), each string escaped if *escaped*.

    Every element is quoted, so only a backslash and a double quote need a backslash.
    """
    quoted = (
        '"' + (escape(value) if escaped else value).replace("\\", "\\\\").replace('"', '\\"') + '"'
        for value in values
    )
    return "{" + ",".join(quoted) + "}"


def _metadata_json(metadata: Mapping[str, Any]) -> str:
    """`to_jsonb` of unescaped *metadata*, in one call for the usual strings-only object."""
    if type(metadata) is dict and all(type(value) is str for value in metadata.values()):
        return _JSON.encode(metadata)
    return to_jsonb(dict(metadata))


_COLUMN_TYPES = {
    "event_key": "text",
    "received_at": "timestamptz",
    "device_ts": "bigint",
    "action_known": "boolean",
    **{column: "text" if column in _TEXT_COLUMNS else "boolean" for column in _EVENT_COLUMNS},
    "metadata": "jsonb",
    "extras": "jsonb",
    "truncated": "text[]",
}


def _insert_statement(table: sql.Composable) -> sql.Composed:
    """One INSERT of a `_batch_json` batch, in batch order: storage order, and the first
    copy of a key is the one stored (ON CONFLICT skips later ones, in the batch or before)."""
    values = sql.SQL(", ").join(
        sql.SQL(f"(r->>{index})::{_COLUMN_TYPES[column]}") for index, column in enumerate(_COLUMNS)
    )
    return sql.SQL(
        "INSERT INTO {table} ({columns}) SELECT {values} "
        "FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS batch(r, ord) ORDER BY ord "
        "ON CONFLICT DO NOTHING"
    ).format(table=table, columns=sql.SQL(", ").join(map(sql.Identifier, _COLUMNS)), values=values)


# Connections whose server said farewell (an error while idle: a restart, a terminated
# backend). libpq hands such an error to the notice handlers, not to a query, once it parses
# its input.
_FAREWELLS: weakref.WeakSet[psycopg.Connection[Any]] = weakref.WeakSet()


def _watch_for_farewell(conn: psycopg.Connection[Any]) -> None:
    """The pool's set-up of a new connection: note the server's farewell when it comes."""
    ref = weakref.ref(conn)

    def farewell(diagnostic: psycopg.errors.Diagnostic) -> None:
        if diagnostic.severity_nonlocalized in {"FATAL", "PANIC"} and (held := ref()):
            _FAREWELLS.add(held)

    conn.add_notice_handler(farewell)


def _check_connection(conn: psycopg.Connection[Any]) -> None:
    """The pool's check before it hands a connection out, without a round trip.

    An idle connection receives nothing unless the server is closing it (a restart, a
    terminated backend): then its farewell and the end of the stream wait on the socket.
    Reading takes the farewell (noted by `_watch_for_farewell`) and, once it has arrived,
    meets the end and raises; either way the pool replaces the connection. The end may
    reach the socket a moment after the farewell, so the farewell alone is enough. The
    reads return at once without giving up the interpreter lock, where a round trip
    (psycopg's own check) made the writer thread queue to get it back behind the request
    threads, each batch.
    """
    conn.pgconn.consume_input()
    conn.pgconn.consume_input()
    conn.pgconn.is_busy()  # libpq parses what it read here, and hands a farewell on
    if conn in _FAREWELLS:
        raise psycopg.OperationalError("the server closed this connection")


def _unbounded(conn: psycopg.Connection[Any]) -> None:
    """Lift the lock and statement timeouts a write set on this session, for one transaction.

    Erasure and purges may lock and scan for longer than a device waits for its answer.
    """
    conn.execute("SET LOCAL lock_timeout TO DEFAULT; SET LOCAL statement_timeout TO DEFAULT")


def _duplicates(keys: Sequence[str | None], new_keys: set[str]) -> tuple[int, ...]:
    """The positions of the events that were not inserted, given the (stored) keys that were.

    Rows are inserted in batch order: the first row with a new key was stored,
    a later one with the same key was a duplicate; rows without a key always are.
    """
    seen: set[str] = set()
    duplicates: list[int] = []
    for index, key in enumerate(keys):
        if key is None:
            continue
        if key in new_keys and key not in seen:
            seen.add(key)
        else:
            duplicates.append(index)
    return tuple(duplicates)


def _stored(row: Sequence[Any]) -> StoredEvent:
    key, received_at, device_ts, _known, *rest = row
    values = dict(zip(_EVENT_COLUMNS, rest[: len(_EVENT_COLUMNS)], strict=True))
    metadata_text, extras_text, truncated = rest[len(_EVENT_COLUMNS) :]
    fields: dict[str, Any] = {
        column: unescape(value) if column in _TEXT_COLUMNS and value is not None else value
        for column, value in values.items()
    }
    event = AppInfos(
        **fields,
        timestamp=device_ts,
        metadata=None if metadata_text is None else from_jsonb(json.loads(metadata_text)),
        extras={} if extras_text is None else from_jsonb(json.loads(extras_text)),
    )
    return StoredEvent(
        event=event,
        received_at=received_at.astimezone(dt.timezone.utc),
        key=None if key is None else unescape(key),
        truncated=tuple(unescape(path) for path in truncated) if truncated else (),
    )


# -- the backend ---------------------------------------------------------------------------

# Query parameters of a postgresql:// URL that are ours, not libpq's.
_OWN_PARAMETERS = {"schema", "pool_size", "pool_timeout", "purge_batch_size"}


class PostgresBackend:
    """Events in a PostgreSQL database, through a psycopg connection pool.

    Nothing connects until the first write (or `ping`); the schema is created
    then. A database that cannot be reached is a `BackendError` (503) for
    that request, and the next one tries again.

    Args:
        conninfo: A libpq connection string or ``postgresql://`` URL.
        schema: The PostgreSQL schema that holds the tables.
        pool_size: Most connections the pool opens.
        pool_timeout: Seconds to wait for a connection before failing with 503.
        purge_batch_size: Rows one `purge` transaction deletes: each batch holds its row
            locks and its share of WAL briefly, never the whole purge at once.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str = "updater_stats",
        pool_size: int = 4,
        pool_timeout: float = 5.0,
        purge_batch_size: int = 10_000,
    ) -> None:
        if purge_batch_size < 1:
            raise ValueError(f"purge_batch_size must be at least 1, got {purge_batch_size}")
        self.purge_batch_size = purge_batch_size
        self._conninfo = conninfo
        self._schema_name = schema
        self._schema = sql.Identifier(schema)
        self._pool_timeout = pool_timeout
        params = psycopg.conninfo.conninfo_to_dict(conninfo)
        # Autocommit: a write is one statement, its own transaction; no BEGIN and COMMIT round
        # trips around it. Everything that needs more than one statement opens a transaction.
        kwargs: dict[str, Any] = {"client_encoding": "UTF8", "autocommit": True}
        if "connect_timeout" not in params:
            kwargs["connect_timeout"] = max(1, round(pool_timeout))
        if "application_name" not in params:
            kwargs["application_name"] = "updater-stats"
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            conninfo,
            kwargs=kwargs,
            min_size=1,
            max_size=pool_size,
            open=False,
            timeout=pool_timeout,
            # Detect connections broken by a server restart before a write uses them.
            check=_check_connection,
            configure=_watch_for_farewell,
            # Give up reconnecting quickly: the next request starts a fresh attempt at once,
            # so a database that comes back is used within seconds, not after a long backoff.
            reconnect_timeout=max(2.0, 2 * pool_timeout),
            name="updater-stats",
        )
        # The lock and statement timeouts (ms) `write_by` set on each session, where it did.
        self._statement_bounds: weakref.WeakKeyDictionary[psycopg.Connection[Any], int] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        self._opened = False
        self._ready = False
        self._closed = False
        table = sql.SQL("{}.events").format(self._schema)
        self._insert = _insert_statement(table)
        self._select = sql.SQL("SELECT id, {columns} FROM {table}").format(
            columns=sql.SQL(", ").join(
                sql.SQL("{}::text").format(sql.Identifier(c))
                if c in {"metadata", "extras"}
                else sql.Identifier(c)
                for c in _COLUMNS
            ),
            table=table,
        )
        self._table = table
        self._insert_returning = self._insert + sql.SQL(" RETURNING event_key")
        self._purge = sql.SQL(
            "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE received_at < %s "
            "AND (%s::text IS NULL OR app_id = %s::text) ORDER BY id LIMIT %s)"
        ).format(table=table)

    @classmethod
    def from_url(cls, url: str) -> PostgresBackend:
        """``postgresql://user:password@host:5432/database?schema=updater_stats&pool_size=4``.

        Other query parameters (``sslmode``, ``connect_timeout``, ...) go to libpq.
        """
        ours, theirs = split_parameters(url, _OWN_PARAMETERS)
        conninfo = urlunsplit(urlsplit(url)._replace(query=urlencode(theirs)))
        try:
            return cls(
                conninfo,
                schema=ours.get("schema", "updater_stats"),
                pool_size=int(ours.get("pool_size", 4)),
                pool_timeout=float(ours.get("pool_timeout", 5.0)),
                purge_batch_size=int(ours.get("purge_batch_size", 10_000)),
            )
        except (ValueError, psycopg.ProgrammingError) as exc:
            raise ConfigurationError(f"bad PostgreSQL URL: {exc}", code="bad_storage_url") from exc

    @property
    def schema(self) -> str:
        """The name of the PostgreSQL schema that holds the tables."""
        return self._schema_name

    @property
    def conninfo(self) -> str:
        """The connection string or URL as given, for a second connection (reports use one).

        It may hold a password: it is kept out of ``repr``.
        """
        return self._conninfo

    def __repr__(self) -> str:
        return f"<PostgresBackend schema={self._schema_name!r}>"

    def _prepare(self, timeout: float | None = None) -> None:
        """Open the pool and migrate the schema, once; a failure is retried by the next call.

        *timeout*: seconds to wait for a connection, if less than `pool_timeout`.
        """
        if self._closed:
            raise BackendError("the PostgreSQL backend is closed")
        if self._ready:
            return
        with self._lock:
            if self._closed:
                raise BackendError("the PostgreSQL backend is closed")
            if not self._opened:
                self._pool.open(wait=False)
                self._opened = True
            if self._ready:
                return
            try:
                with self._pool.connection(timeout=timeout) as conn:
                    _migrate(conn, self._schema_name)
            except psycopg.Error as exc:
                raise BackendError(f"cannot prepare the PostgreSQL schema: {exc}") from exc
            self._ready = True

    def write(self, events: Sequence[StoredEvent]) -> WriteResult:
        """Store *events* with one statement (all or nothing), skipping keys already stored."""
        return self._write(events, None)

    def write_by(self, events: Sequence[StoredEvent], deadline: float) -> WriteResult:
        """`write`, failing with `BackendError` rather than waiting past *deadline*.

        *deadline* is a `time.monotonic` value. The wait for a pooled connection, and the
        session's ``lock_timeout`` and ``statement_timeout`` for the insert, end by then:
        a lock held elsewhere or a slow server cancels the insert, which stores nothing.
        """
        return self._write(events, deadline)

    def _wait_until(self, deadline: float | None) -> float | None:
        """Seconds left before *deadline*, for waits that `pool_timeout` bounds otherwise."""
        if deadline is None:
            return None
        left = deadline - time.monotonic()
        if left <= 0:
            raise BackendError(
                "PostgreSQL write not started: its deadline has passed", code="storage_timeout"
            )
        return min(left, self._pool_timeout)

    def _bound_statement(self, conn: psycopg.Connection[Any], deadline: float) -> None:
        """Set the session's lock and statement timeouts to end by *deadline*, when needed.

        Setting them is a round trip: it is kept while it ends in time and allows at
        least half the time left, and set a tenth under the bound when it changes, so the
        next writes, a few milliseconds nearer their deadlines, keep it too.
        """
        bound = int((deadline - time.monotonic()) * 1000)
        if bound <= 0:
            raise BackendError(
                "PostgreSQL write not started: its deadline has passed", code="storage_timeout"
            )
        current = self._statement_bounds.get(conn)
        if current is not None and bound // 2 <= current <= bound:
            return
        wanted = max(1, bound * 9 // 10)  # 0 would mean no limit at all
        conn.execute(
            "SELECT set_config('lock_timeout', %s, false), "
            "set_config('statement_timeout', %s, false)",
            [f"{wanted}ms", f"{wanted}ms"],
        )
        self._statement_bounds[conn] = wanted

    def _write(self, events: Sequence[StoredEvent], deadline: float | None) -> WriteResult:
        if not events:
            self._prepare(self._wait_until(deadline))
            return WriteResult(inserted=0)
        batch = _batch_json(events)
        # Several apps in one write: the insert names the keys it stored, so that intake
        # metrics can count duplicates per app. One app (the usual case): the row count is enough.
        several_apps = len({stored.event.app_id for stored in events}) > 1
        new_keys: set[str] = set()
        self._prepare(self._wait_until(deadline))
        try:
            # One statement in autocommit: one round trip, and all or nothing.
            with self._pool.connection(timeout=self._wait_until(deadline)) as conn:
                if deadline is not None:
                    self._bound_statement(conn, deadline)
                elif self._statement_bounds.pop(conn, None) is not None:
                    conn.execute("RESET lock_timeout; RESET statement_timeout")
                if several_apps:
                    cursor = conn.execute(self._insert_returning, [batch])
                    new_keys = {key for (key,) in cursor.fetchall() if key is not None}
                else:
                    cursor = conn.execute(self._insert, [batch])
                inserted = cursor.rowcount
        except (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable) as exc:
            raise BackendError(
                f"PostgreSQL write cancelled at its deadline: {exc}", code="storage_timeout"
            ) from exc
        except psycopg.Error as exc:
            raise BackendError(f"PostgreSQL write failed: {exc}") from exc
        if not several_apps:
            return WriteResult(inserted=inserted, duplicates=len(events) - inserted)
        keys = [escape_or_none(stored.key) for stored in events]  # as stored, as returned
        return WriteResult(
            inserted=inserted,
            duplicates=len(events) - inserted,
            duplicate_indexes=_duplicates(keys, new_keys),
        )

    def forget(
        self,
        *,
        device_ids: Collection[str] = (),
        custom_ids: Collection[str] = (),
        app_id: str | None = None,
    ) -> int:
        """Delete every event of these devices or users (values as stored), of *app_id* only
        when given; return how many.

        One transaction; only the matching rows are locked, writes go on. The
        space is reclaimed by (auto)vacuum: see the privacy page.
        """
        devices = [escape(value) for value in device_ids]
        customs = [escape(value) for value in custom_ids]
        if not devices and not customs:
            return 0
        self._prepare()
        statement = sql.SQL(
            "DELETE FROM {} WHERE (device_id = ANY(%s) OR custom_id = ANY(%s)) "
            "AND (%s::text IS NULL OR app_id = %s::text)"
        ).format(self._table)
        app = None if app_id is None else escape(app_id)
        try:
            with self._pool.connection() as conn, conn.transaction():
                _unbounded(conn)
                return conn.execute(statement, [devices, customs, app, app]).rowcount
        except psycopg.Error as exc:
            raise BackendError(f"PostgreSQL delete failed: {exc}") from exc

    def purge(self, *, older_than: dt.datetime, app_id: str | None = None) -> int:
        """Delete every event received before *older_than*, of *app_id* only when given.

        In transactions of `purge_batch_size` rows, oldest first: no long lock,
        no huge transaction, and vacuum can reuse the space as the purge goes.
        """
        self._prepare()
        app = None if app_id is None else escape(app_id)
        total = 0
        while True:
            try:
                with self._pool.connection() as conn, conn.transaction():
                    _unbounded(conn)
                    deleted = conn.execute(
                        self._purge, [older_than, app, app, self.purge_batch_size]
                    ).rowcount
            except psycopg.Error as exc:
                raise BackendError(f"PostgreSQL purge failed: {exc}") from exc
            total += deleted
            if deleted < self.purge_batch_size:
                return total

    def report_source(self) -> PostgresReports:
        """The reports' push-down: queries run by PostgreSQL, on a read-only connection of
        their own to the same database and schema."""
        return PostgresReports(self.conninfo, schema=self.schema)

    def ping(self) -> None:
        """Raise `BackendError` unless the database answers a query on the events table."""
        self._prepare()
        try:
            with self._pool.connection() as conn:
                conn.execute(sql.SQL("SELECT 1 FROM {} LIMIT 1").format(self._table)).fetchall()
        except psycopg.Error as exc:
            raise BackendError(f"PostgreSQL does not answer: {exc}") from exc

    def events(
        self,
        *,
        app_id: str | None = None,
        since: dt.datetime | None = None,
        chunk_size: int = 1000,
    ) -> Iterator[StoredEvent]:
        """Every stored event in storage order, read in chunks (never all at once), of
        *app_id* only and received at or after *since* only, when given."""
        self._prepare()
        conditions = ["id > %s"]
        extra: list[Any] = []
        if app_id:
            conditions.append("app_id = %s")
            extra.append(escape(app_id))
        if since is not None:
            conditions.append("received_at >= %s")
            extra.append(since)
        where = sql.SQL("WHERE " + " AND ".join(conditions))
        query = sql.SQL("{} {} ORDER BY id LIMIT %s").format(self._select, where)

        def page(after: int) -> list[tuple[Any, ...]]:
            try:
                with self._pool.connection() as conn:
                    return conn.execute(query, [after, *extra, chunk_size]).fetchall()
            except psycopg.Error as exc:
                raise BackendError(f"PostgreSQL read failed: {exc}") from exc

        return paged(page, lambda row: _stored(row[1:]))

    def close(self) -> None:
        """Close the pool; later calls raise `BackendError`. Closing again does nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            opened = self._opened
        if opened:
            self._pool.close()
