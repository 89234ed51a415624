"""The ClickHouse write side: table layout, migrations, rows, and `ClickHouseBackend`.

The package's docstring (``updater_stats.backends.clickhouse``) describes the backend.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import importlib.util
import itertools
import json
import operator
import os
import re
import threading
import time
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import attrs
import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError
from clickhouse_connect.driver.httpclient import HttpClient
from urllib3 import Timeout

from ..._batching import Batching
from ..._epoch import EPOCH, ONE_MS, epoch_ms, first_ms_from
from ..._models import (
    BOOLEAN_FIELDS,
    REQUIRED_FIELDS,
    SCALAR_FIELDS,
    AppInfos,
    StoredEvent,
    WriteResult,
)
from ...exceptions import BackendError, ConfigurationError
from .._paging import paged
from .._rows import per_request
from .._url import split_parameters
from ._reports import ClickHouseReports

__all__ = [
    "CLICKHOUSE_BATCHING",
    "SCHEMA_VERSION",
    "ClickHouseBackend",
    "create_statements",
    "migration_statements",
    "ttl_expression",
]

#: The default for ClickHouse: batches of up to 10 000 events, each request held up to 200 ms
#: so that concurrent requests share one INSERT (at most about five per second per process).
CLICKHOUSE_BATCHING = Batching(
    max_events=10_000, max_delay=0.2, delay_lone_requests=True, max_pending_events=50_000
)

#: The schema version in the table comment this release writes; it refuses a newer one.
SCHEMA_VERSION = 2
_COMMENT = "updater-stats events, schema version {version}"
_COMMENT_VERSION = re.compile(r"updater-stats events, schema version (\d+)")

# Fields with nearly as many values as events: LowCardinality would not pay for them.
_HIGH_CARDINALITY = frozenset({"device_id", "custom_id"})


def _field_type(field: str) -> str:
    """The column type of one `SCALAR_FIELDS` field: an absent optional field is NULL."""
    if field in BOOLEAN_FIELDS:
        return "Bool"
    text = "String" if field in REQUIRED_FIELDS else "Nullable(String)"
    return text if field in _HIGH_CARDINALITY else f"LowCardinality({text})"


# (column, type), in table order. The event's own fields are `SCALAR_FIELDS`, the one list of
# stored fields every backend takes its columns from; the others are this table's: its row id
# and storage order, the times, and the event's metadata, unknown fields and fields cut.
# Strings that repeat (apps, versions, actions) are LowCardinality.
_COLUMNS: tuple[tuple[str, str], ...] = (
    ("row_id", "UUID"),  # from the event key; random for events without one
    ("event_key", "Nullable(String)"),
    ("seq", "UInt64"),  # storage order: increasing within a process
    ("received_at", "DateTime64(3, 'UTC')"),
    ("event_time", "DateTime64(3, 'UTC')"),  # the device clock when sent, else received_at
    ("device_ts", "Nullable(Int64)"),  # the wire `timestamp`, exactly as sent
    ("action_known", "Bool"),
    *((field, _field_type(field)) for field in SCALAR_FIELDS),
    ("has_metadata", "Bool"),  # tells an absent metadata from an empty one
    ("metadata", "Map(String, String)"),
    ("extras", "String"),  # JSON object of unknown fields, '' when none
    ("truncated", "Array(String)"),  # the fields stored cut at a cap, [] when none
)
_COLUMN_NAMES = tuple(name for name, _ in _COLUMNS)
_COLUMN_TYPES = dict(_COLUMNS)
_TEXT_FIELDS = tuple(field for field in SCALAR_FIELDS if field not in BOOLEAN_FIELDS)

#: The columns version 1 made plain strings for fields an event may lack (protocol,
#: section 3): version 2 makes them nullable.
_V2_OPTIONAL = ("platform", "version_build", "version_code", "version_os", "plugin_version")


def migration_statements(
    database: str, table: str = "events", cluster: str | None = None
) -> list[str]:
    """The statements that bring a version 1 table to `SCHEMA_VERSION`, in order.

    Each may run again without harm, so a migration cut short is finished by the next
    attempt; the comment, which holds the version, changes last. With *cluster*, the
    shards' ``<table>_local`` tables change first, then the ``Distributed`` table over them.

    ``MODIFY COLUMN`` to a nullable type is a mutation: it rewrites those five columns
    (not the others) in every part of the table, so it takes time in proportion to their
    size on disk. ``ADD COLUMN`` only changes metadata: older parts read ``[]`` for it.
    """
    db = _quote(database)
    on_cluster = f" ON CLUSTER {_quote(cluster)}" if cluster else ""
    tables = [f"{table}_local", table] if cluster else [table]
    changes = ", ".join(
        [
            *(f"MODIFY COLUMN {_quote(c)} {_COLUMN_TYPES[c]}" for c in _V2_OPTIONAL),
            f"ADD COLUMN IF NOT EXISTS `truncated` {_COLUMN_TYPES['truncated']} AFTER `extras`",
        ]
    )
    comment = _literal(_COMMENT.format(version=SCHEMA_VERSION))
    return [
        *(f"ALTER TABLE {db}.{_quote(name)}{on_cluster} {changes}" for name in tables),
        *(
            f"ALTER TABLE {db}.{_quote(name)}{on_cluster} MODIFY COMMENT {comment}"
            for name in tables
        ),
    ]


_ORDER_BY = "(app_id, version_name, action, event_time, row_id)"
_PARTITION_BY = "toYYYYMM(received_at)"


def _engine_clause(replicated: bool, database: str, table: str) -> str:
    if not replicated:
        return "ReplacingMergeTree"
    # The macros are filled in by each server from its own configuration.
    path = f"/clickhouse/tables/{{shard}}/{database}/{table}"
    return f"ReplicatedReplacingMergeTree({_literal(path)}, '{{replica}}')"


def _quote(identifier: str) -> str:
    return "`" + identifier.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def ttl_expression(ttl: dt.timedelta) -> str:
    """The table TTL for events kept *ttl* after they were received, as ClickHouse shows it."""
    seconds = int(ttl.total_seconds())
    if seconds < 1:
        raise ValueError(f"a ClickHouse TTL must be at least one second, not {ttl}")
    if seconds % 86400 == 0:
        return f"toDateTime(received_at) + toIntervalDay({seconds // 86400})"
    return f"toDateTime(received_at) + toIntervalSecond({seconds})"


def create_statements(
    database: str,
    table: str = "events",
    cluster: str | None = None,
    *,
    ttl: dt.timedelta | None = None,
) -> list[str]:
    """The DDL that creates the database and table(s).

    With *ttl*, the table deletes events that long after their ``received_at``
    (in merges: within hours of the moment, not to the second).

    Without *cluster*: one ``ReplacingMergeTree`` table. With a cluster: on
    every node ``ON CLUSTER``, a ``ReplicatedReplacingMergeTree`` table named
    ``<table>_local`` holding each shard's rows, and *table* itself as a
    ``Distributed`` table over it, sharded by ``(app_id, device_id)`` so that
    all copies of one event land on the same shard (where they collapse).
    """
    db = _quote(database)
    on_cluster = f" ON CLUSTER {_quote(cluster)}" if cluster else ""
    local = f"{table}_local" if cluster else table
    columns = ",\n    ".join(f"{_quote(name)} {kind}" for name, kind in _COLUMNS)
    comment = _literal(_COMMENT.format(version=SCHEMA_VERSION))
    create_table = (
        f"CREATE TABLE IF NOT EXISTS {db}.{_quote(local)}{on_cluster} (\n    {columns},\n"
        # Finds known keys before an insert without reading whole apps.
        "    INDEX row_id_bloom row_id TYPE bloom_filter GRANULARITY 4,\n"
        # Rows are written in seq order, so each part covers a narrow seq range: reading in
        # storage order skips whole parts.
        "    INDEX seq_minmax seq TYPE minmax GRANULARITY 1\n"
        f") ENGINE = {_engine_clause(bool(cluster), database, local)}\n"
        f"PARTITION BY {_PARTITION_BY}\n"
        f"ORDER BY {_ORDER_BY}\n"
        + (f"TTL {ttl_expression(ttl)}\n" if ttl is not None else "")
        + f"COMMENT {comment}"
    )
    statements = [f"CREATE DATABASE IF NOT EXISTS {db}{on_cluster}", create_table]
    if cluster:
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {db}.{_quote(table)}{on_cluster} "
            f"AS {db}.{_quote(local)} "
            f"ENGINE = Distributed({_literal(cluster)}, {_literal(database)}, {_literal(local)}, "
            "cityHash64(app_id, device_id)) "
            f"COMMENT {comment}"
        )
    return statements


# -- rows ----------------------------------------------------------------------------------

# DateTime64(3) reaches from 1900 to 2299: a device clock outside is clamped for sorting only.
_MIN_MS = -2208988800000
_MAX_MS = 10413791999999


def _bytes(text: str | None) -> bytes | None:
    # surrogatepass: every Python string round-trips, whatever it holds.
    return None if text is None else text.encode("utf-8", "surrogatepass")


def _text(raw: bytes | str | None) -> str | None:
    if raw is None or isinstance(raw, str):
        return raw
    return raw.decode("utf-8", "surrogatepass")


def _row_id(key: str) -> uuid.UUID:
    return uuid.UUID(hex=_key_hex(key))


def _key_hex(key: str) -> str:
    """`_row_id` as 32 hex digits: what writes compare and send (a `uuid.UUID` is slow to build)."""
    return hashlib.blake2b(_bytes(key) or b"", digest_size=16).hexdigest()


# The bits uuid.uuid4() sets: version 4 and the RFC 4122 variant.
_UUID4_MASK = (0xF000 << 64) | (0xC000 << 48)
_UUID4_BITS = (0x4000 << 64) | (0x8000 << 48)


def _random_row_ids(count: int) -> Iterator[int]:
    """*count* random version-4 UUIDs as integers, from one read of the system's randomness.

    Not one `uuid.uuid4` per event: each reads it separately, and each read lets go of the
    interpreter lock, which the writer then waits to get back behind the request threads.
    """
    data = os.urandom(16 * count)
    for start in range(0, len(data), 16):
        yield int.from_bytes(data[start : start + 16], "big") & ~_UUID4_MASK | _UUID4_BITS


_EVENT_VALUES = operator.attrgetter(*SCALAR_FIELDS)


def _in_table_order(values: Mapping[str, Any]) -> list[Any]:
    """*values*, one per column name, as the driver takes them: in `_COLUMNS` order."""
    return [values[name] for name in _COLUMN_NAMES]


def _row(stored: StoredEvent, row_id: uuid.UUID, seq: int) -> list[Any]:
    """One event as the driver takes a row, every string as bytes: the form for any text.

    Writes send `_columns` instead when they can; this is their fallback, and the form the
    benchmarks bulk-load.
    """
    event = stored.event
    received_ms = epoch_ms(stored.received_at)
    event_ms = received_ms if event.timestamp is None else event.timestamp
    scalars = zip(SCALAR_FIELDS, _EVENT_VALUES(event), strict=True)
    return _in_table_order(
        {
            "row_id": row_id,
            "event_key": _bytes(stored.key),
            "seq": seq,
            "received_at": EPOCH + received_ms * ONE_MS,
            "event_time": EPOCH + min(max(event_ms, _MIN_MS), _MAX_MS) * ONE_MS,
            "device_ts": event.timestamp,
            "action_known": event.action_known,
            **{
                field: value if field in BOOLEAN_FIELDS else _bytes(value)
                for field, value in scalars
            },
            "has_metadata": event.metadata is not None,
            "metadata": {_bytes(k): _bytes(v) for k, v in (event.metadata or {}).items()},
            "extras": _bytes(json.dumps(event.extras, ensure_ascii=False)) if event.extras else b"",
            "truncated": [_bytes(path) for path in stored.truncated],
        }
    )


_SURROGATE = re.compile("[\ud800-\udfff]")


def _columns(events: Sequence[StoredEvent], row_ids: Sequence[int], seq: int) -> list[Any] | None:
    """The events as the driver's columns, in `_COLUMNS` order; None if a string cannot be
    sent as it is (a lone surrogate: `_row` sends bytes then).

    Columns of plain values, where `_row` built a list per event, a ``datetime`` per timestamp
    and bytes per string: row building was the largest part of the writer's time, and the
    driver handles integers and strings in bulk (strings in C).
    """
    received_at = per_request(events, epoch_ms)
    event_time: list[int] = []
    device_ts: list[int | None] = []
    action_known: list[bool] = []
    has_metadata: list[bool] = []
    metadata: list[Mapping[str, str]] = []
    extras: list[str] = []
    truncated: list[tuple[str, ...]] = []
    for stored, received_ms in zip(events, received_at, strict=True):
        event = stored.event
        timestamp = event.timestamp
        device_ts.append(timestamp)
        event_ms = received_ms if timestamp is None else timestamp
        event_time.append(min(max(event_ms, _MIN_MS), _MAX_MS))
        action_known.append(event.action_known)
        has_metadata.append(event.metadata is not None)
        metadata.append(dict(event.metadata or {}))
        extras.append(json.dumps(event.extras, ensure_ascii=False) if event.extras else "")
        truncated.append(stored.truncated)
    fields = dict(
        zip(
            SCALAR_FIELDS,
            zip(*(_EVENT_VALUES(stored.event) for stored in events), strict=True),
            strict=True,
        )
    )
    keys = [stored.key for stored in events]
    strings = itertools.chain(
        keys,
        *(fields[field] for field in _TEXT_FIELDS),
        itertools.chain.from_iterable(item for mapping in metadata for item in mapping.items()),
        extras,
        itertools.chain.from_iterable(truncated),
    )
    if not _encodable(strings):
        return None
    return _in_table_order(
        {
            "row_id": row_ids,
            "event_key": keys,
            "seq": list(range(seq, seq + len(events))),
            "received_at": received_at,
            "event_time": event_time,
            "device_ts": device_ts,
            "action_known": action_known,
            **fields,
            "has_metadata": has_metadata,
            "metadata": metadata,
            "extras": extras,
            "truncated": truncated,
        }
    )


def _encodable(strings: Iterable[str | None]) -> bool:
    """Whether all these strings encode to UTF-8 as they are: one check for the whole batch."""
    try:
        text = "".join(filter(None, strings))
    except TypeError:  # not a string: `_row` reports it as ever
        return False
    return text.isascii() or _SURROGATE.search(text) is None


# What `events` reads: every column but the table's own bookkeeping (row id, storage order, the
# clamped event time), each as it is but for the receive time, read in epoch milliseconds.
_READ_COLUMNS = tuple(name for name in _COLUMN_NAMES if name not in {"row_id", "seq", "event_time"})
_READ_AS = {"received_at": "toUnixTimestamp64Milli(received_at)"}
_SELECT_COLUMNS = ", ".join(_READ_AS.get(name, _quote(name)) for name in _READ_COLUMNS)

# Where `_stored` finds each column in a row of `_SELECT_COLUMNS`: looked up by name once, here,
# not in every row (the driver's rows are plain sequences). Decoding 100 000 rows takes 5.5 to
# 6.9 µs an event like this, against 7.8 to 8.4 with the positions unpacked by hand and every
# empty `extras` parsed (three paired runs).
_AT = {name: index for index, name in enumerate(_READ_COLUMNS)}
_FIELDS_AT = tuple((field, _AT[field], field in BOOLEAN_FIELDS) for field in SCALAR_FIELDS)
_KEY, _RECEIVED, _DEVICE_TS = _AT["event_key"], _AT["received_at"], _AT["device_ts"]
_HAS_METADATA, _METADATA = _AT["has_metadata"], _AT["metadata"]
_EXTRAS, _TRUNCATED = _AT["extras"], _AT["truncated"]


def _stored(row: Sequence[Any]) -> StoredEvent:
    """The event in one row of `_SELECT_COLUMNS`, its strings read as bytes."""
    fields: dict[str, Any] = {
        field: bool(row[index]) if boolean else _text(row[index])
        for field, index, boolean in _FIELDS_AT
    }
    extras = row[_EXTRAS]
    truncated = row[_TRUNCATED]
    event = AppInfos(
        **fields,
        timestamp=row[_DEVICE_TS],
        metadata={_text(k) or "": _text(v) or "" for k, v in row[_METADATA].items()}
        if row[_HAS_METADATA]
        else None,
        extras=json.loads(_text(extras) or "{}") if extras else {},
    )
    return StoredEvent(
        event=event,
        received_at=EPOCH + row[_RECEIVED] * ONE_MS,
        key=_text(row[_KEY]),
        truncated=tuple(_text(path) or "" for path in truncated) if truncated else (),
    )


# A key look-up writes its row ids into the statement, as base64 of their 16 bytes: nothing but
# letters, digits, "+", "/" and "=" reaches the SQL text, whatever the ids held (`_key_hex`
# makes them from the key, and they are checked to be hex digits first). Against 100 000 events
# (chdb, best of nine, one run), 9 143 ids took 49 ms (none stored) to 62 ms (all stored) bound
# as a query parameter, which the driver formats id by id in Python; 29 to 33 ms written in as
# hex digits, in two statements; 19 to 22 ms as base64, 21 characters an id instead of 32, in
# one: a statement holds 12 000 ids within the default `max_query_size` (256 KiB), leaving this
# much room for the rest of it.
_STATEMENT_ROOM = 4096
_WITHOUT_HEX_DIGITS = str.maketrans("", "", "0123456789abcdef")

# What the driver raises when the server is away or refuses: a 503, the device retries.
_DRIVER_ERRORS = (ClickHouseError, OSError)
# Seconds to open a connection to the server: well inside a request's deadline.
_CONNECT_TIMEOUT = 3

# -- the backend ---------------------------------------------------------------------------

# Query parameters of a clickhouse:// URL that are ours; the others are ClickHouse settings.
_OWN_PARAMETERS = {"table", "cluster", "batch_delay_ms", "batch_max_events", "ttl_days"}
#: ``chdb://`` URLs name a folder, not a database: the database is a query parameter.
_CHDB_PARAMETERS = {*_OWN_PARAMETERS, "database"}

# Wait until the deletion is done on every replica: when forget() returns, the rows are gone.
_SYNC_MUTATION = {"mutations_sync": 2}
_SYNC_ALTER = {"alter_sync": 2, "mutations_sync": 2}
_FORGET_WHERE = "device_id IN {devices:Array(String)} OR custom_id IN {customs:Array(String)}"


def _chdb_dsn(url: str) -> str:
    """The clickhouse-connect DSN for a ``chdb://`` storage URL (paths as in ``sqlite://``)."""
    if importlib.util.find_spec("chdb") is None:
        raise ConfigurationError(
            "chdb:// storage needs the in-process engine: pip install 'updater-stats[chdb]'",
            code="missing_extra",
        )
    location = unquote(url.split("://", 1)[1].split("?", 1)[0].split("#", 1)[0])
    location = location.removeprefix("/")
    if location in {"", ":memory:", "memory"}:
        return "chdb://memory"
    return "chdb://" + quote(str(Path(location).resolve()))


class ClickHouseBackend:
    """Events in a ClickHouse table, one INSERT per batch.

    The database and table are created on first use. A server that cannot be
    reached is a `BackendError` (503) for that batch; the next one tries again.

    Args:
        dsn: A clickhouse-connect DSN: ``http://``/``https://`` for a server,
            ``chdb://`` for the in-process engine (tests, trying things out).
            `from_url` turns ``clickhouse://`` URLs into one.
        database: The database holding the table, created if missing.
        table: The table name.
        cluster: Create the tables ``ON CLUSTER`` this cluster: replicated
            shards behind a ``Distributed`` table (see `create_statements`).
        batching: How the collector groups requests; `CLICKHOUSE_BATCHING` by default.
        settings: ClickHouse settings for the client.
        ttl: Keep events this long after they were received: a table TTL, set when the
            table is created, or added to an existing table (`None` leaves the table as is).
    """

    def __init__(  # noqa: PLR0913 - keyword-only options, each with a default
        self,
        dsn: str,
        *,
        database: str = "updater_stats",
        table: str = "events",
        cluster: str | None = None,
        batching: Batching | None = None,
        settings: dict[str, Any] | None = None,
        ttl: dt.timedelta | None = None,
    ) -> None:
        if ttl is not None:
            ttl_expression(ttl)  # refuse a TTL under a second now, not at the first write
        self.ttl = ttl
        self._dsn = dsn
        self.database = database
        self.table = table
        self.cluster = cluster
        self.batching = batching or CLICKHOUSE_BATCHING
        self._settings = dict(settings or {})
        self._qualified = f"{_quote(database)}.{_quote(table)}"
        # Re-entrant: `write_by` holds it around `write`.
        self._lock = threading.RLock()
        self._client: Client | None = None
        self._ready = False
        self._closed = False
        self._last_seq = 0
        self._lookup_ids = 1  # row ids per key look-up, set by `_connect`
        #: INSERT statements sent so far (for tests and monitoring).
        self.inserts = 0

    @classmethod
    def from_url(cls, url: str) -> ClickHouseBackend:
        """``clickhouse://user:password@host:8123/database?cluster=name``; ``clickhouses://``: TLS.

        Query parameters: ``table``, ``cluster``, ``batch_delay_ms``,
        ``batch_max_events``, ``ttl_days``; any other is passed on as a ClickHouse setting.

        ``chdb:///relative/folder`` or ``chdb:////absolute/folder``: the in-process engine
        (chdb, extra ``chdb``) keeping its data in that folder, the database named by
        ``?database=`` (default ``updater_stats``); ``chdb://`` keeps it in memory. One
        process at a time can open a folder.
        """
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        ours, theirs = split_parameters(
            url, _CHDB_PARAMETERS if scheme == "chdb" else _OWN_PARAMETERS
        )
        settings: dict[str, Any] = dict(theirs)
        secure = scheme == "clickhouses"
        try:
            port = parts.port or (8443 if secure else 8123)
        except ValueError as exc:
            raise ConfigurationError(f"bad ClickHouse URL: {exc}", code="bad_storage_url") from exc
        # User and password stay percent-encoded: the DSN is a URL too.
        auth = parts.netloc.rpartition("@")[0]
        host = parts.hostname or "localhost"
        if ":" in host:  # IPv6
            host = f"[{host}]"
        dsn = f"{'https' if secure else 'http'}://{auth + '@' if auth else ''}{host}:{port}"
        database = unquote(parts.path.strip("/")) or "updater_stats"
        if scheme == "chdb":
            dsn, database = _chdb_dsn(url), ours.get("database") or "updater_stats"
        try:
            batching = CLICKHOUSE_BATCHING
            if "batch_delay_ms" in ours:
                batching = _evolve(batching, max_delay=float(ours["batch_delay_ms"]) / 1000)
            if "batch_max_events" in ours:
                batching = _evolve(batching, max_events=int(ours["batch_max_events"]))
            ttl = dt.timedelta(days=int(ours["ttl_days"])) if "ttl_days" in ours else None
            if ttl is not None:
                ttl_expression(ttl)
        except ValueError as exc:
            raise ConfigurationError(
                f"bad ClickHouse URL option: {exc}", code="bad_storage_url"
            ) from exc
        return cls(
            dsn,
            database=database,
            table=ours.get("table", "events"),
            cluster=ours.get("cluster") or None,
            batching=batching,
            settings=settings,
            ttl=ttl,
        )

    def __repr__(self) -> str:
        return f"<ClickHouseBackend {self._qualified}>"

    @property
    def dsn(self) -> str:
        """The DSN as given, for a second client (reports use one); kept out of ``repr``."""
        return self._dsn

    @property
    def settings(self) -> dict[str, Any]:
        """A copy of the client settings."""
        return dict(self._settings)

    def _connect(self) -> Client:
        """The client, creating it and the schema first if needed. Hold the lock."""
        if self._closed:
            raise BackendError("the ClickHouse backend is closed")
        if self._client is None:
            options: dict[str, Any] = {}
            if not self._dsn.startswith("chdb:"):
                # One session per client would make concurrent queries wait on each other.
                options = {
                    "autogenerate_session_id": False,
                    "connect_timeout": _CONNECT_TIMEOUT,
                    "send_receive_timeout": 60,
                }
            try:
                self._client = clickhouse_connect.get_client(
                    dsn=self._dsn, settings=self._settings, **options
                )
            except _DRIVER_ERRORS as exc:
                raise BackendError(f"cannot connect to ClickHouse: {exc}") from exc
        if not self._ready:
            try:
                self._create(self._client)
                query_size = self._client.query("SELECT getSetting('max_query_size')")
            except _DRIVER_ERRORS as exc:
                raise BackendError(f"cannot prepare the ClickHouse table: {exc}") from exc
            # Base64 of 16 bytes an id: 64 characters for every 3 ids.
            room = int(query_size.result_rows[0][0]) - _STATEMENT_ROOM
            self._lookup_ids = max(1, room * 3 // 64)
            self._ready = True
        return self._client

    def _create(self, client: Client) -> None:
        """Create the table, or bring one of an older schema version (its comment) up to date."""
        found = client.query(
            "SELECT comment FROM system.tables WHERE database = {db:String} AND name = {t:String}",
            parameters={"db": self.database, "t": self.table},
        ).result_rows
        if found:
            match = _COMMENT_VERSION.search(str(found[0][0]))
            version = int(match.group(1)) if match else 0
            if version > SCHEMA_VERSION:
                raise ConfigurationError(
                    f"the ClickHouse table {self._qualified} has schema version {version}, newer "
                    f"than this updater-stats ({SCHEMA_VERSION}): upgrade updater-stats",
                    code="schema_too_new",
                )
            if version >= 1:
                if version < SCHEMA_VERSION:
                    for statement in migration_statements(self.database, self.table, self.cluster):
                        # A mutation on every replica, waited for: done when this returns.
                        client.command(statement, settings=_SYNC_ALTER)
                self._apply_ttl(client)
                return
        for statement in create_statements(self.database, self.table, self.cluster, ttl=self.ttl):
            client.command(statement)

    @property
    def _local_table(self) -> str:
        """The table that holds the rows, with ``ON CLUSTER``: what ALTER statements target."""
        if not self.cluster:
            return self._qualified
        local = f"{_quote(self.database)}.{_quote(self.table + '_local')}"
        return f"{local} ON CLUSTER {_quote(self.cluster)}"

    def _apply_ttl(self, client: Client) -> None:
        """Give an existing table the TTL asked for, unless it has it already."""
        if self.ttl is None:
            return
        expression = ttl_expression(self.ttl)
        name = f"{self.table}_local" if self.cluster else self.table
        found = client.query(
            "SELECT create_table_query FROM system.tables "
            "WHERE database = {db:String} AND name = {t:String}",
            parameters={"db": self.database, "t": name},
        ).result_rows
        if found and f"TTL {expression}" not in str(found[0][0]):
            client.command(f"ALTER TABLE {self._local_table} MODIFY TTL {expression}")

    def _next_seq(self, count: int) -> int:
        # Nanoseconds since the epoch: increasing across restarts, and across processes
        # roughly in time order; never repeating within this one.
        first = max(self._last_seq + 1, time.time_ns())
        self._last_seq = first + count - 1
        return first

    def write(self, events: Sequence[StoredEvent]) -> WriteResult:
        """Store *events* with one ``INSERT``, leaving out keys already stored (looked up first)."""
        with self._lock:
            client = self._connect()
            if not events:
                return WriteResult(inserted=0)
            try:
                # Row ids as hex, once per event: the known-keys query and the check below
                # compare them, the insert takes them as integers.
                key_ids = [
                    None if stored.key is None else _key_hex(stored.key) for stored in events
                ]
                known = self._known_row_ids(client, events, key_ids)
                kept: list[StoredEvent] = []
                row_ids: list[int] = []
                duplicate_indexes: list[int] = []
                random_ids = _random_row_ids(key_ids.count(None))
                seq = self._next_seq(len(events))
                for index, (stored, key_id) in enumerate(zip(events, key_ids, strict=True)):
                    if key_id is None:
                        row_ids.append(next(random_ids))
                    elif key_id in known:
                        duplicate_indexes.append(index)
                        continue
                    else:
                        known.add(key_id)  # a later copy in this batch is a duplicate
                        row_ids.append(int(key_id, 16))
                    kept.append(stored)
                if kept:
                    self._insert(client, kept, row_ids, seq)
            except _DRIVER_ERRORS as exc:
                raise BackendError(f"ClickHouse write failed: {exc}") from exc
        return WriteResult(
            inserted=len(kept),
            duplicates=len(events) - len(kept),
            duplicate_indexes=tuple(duplicate_indexes),
        )

    def write_by(self, events: Sequence[StoredEvent], deadline: float) -> WriteResult:
        """`write`, failing with `BackendError` rather than waiting past *deadline*.

        *deadline* is a `time.monotonic` value. The wait for this backend's lock ends by
        then, and over HTTP each of the write's two requests (the key look-up, the
        insert) waits for the server at most half the time left.
        """
        if not self._lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise BackendError(
                "ClickHouse write not started: the backend was busy until its deadline",
                code="storage_timeout",
            )
        try:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BackendError(
                    "ClickHouse write not started: its deadline has passed",
                    code="storage_timeout",
                )
            client = self._connect()
            if not isinstance(client, HttpClient):  # chdb runs in-process: nothing to wait for
                return self.write(events)
            usual = client.timeout
            client.timeout = Timeout(connect=min(left / 2, _CONNECT_TIMEOUT), read=left / 2)
            try:
                return self.write(events)  # the lock is re-entrant
            finally:
                client.timeout = usual
        finally:
            self._lock.release()

    def _insert(
        self, client: Client, events: Sequence[StoredEvent], row_ids: Sequence[int], seq: int
    ) -> None:
        """One INSERT of *events*, with these row ids and storage order from *seq* on."""
        # A Distributed table answers only once the shards hold the rows.
        settings = {"distributed_foreground_insert": 1} if self.cluster else None
        columns = _columns(events, row_ids, seq)
        if columns is None:
            rows = [
                _row(stored, uuid.UUID(int=row_id), seq + index)
                for index, (stored, row_id) in enumerate(zip(events, row_ids, strict=True))
            ]
            client.insert(self._qualified, rows, column_names=_COLUMN_NAMES, settings=settings)
        else:
            client.insert(
                self._qualified,
                columns,
                column_names=_COLUMN_NAMES,
                column_oriented=True,
                settings=settings,
            )
        self.inserts += 1

    def forget(
        self,
        *,
        device_ids: Collection[str] = (),
        custom_ids: Collection[str] = (),
        app_id: str | None = None,
    ) -> int:
        """Delete every event of these devices or users (values as stored), of *app_id* only
        when given; return how many.

        A delete mutation (``ALTER TABLE ... DELETE``), waited for on every
        replica: when it returns, the rows are gone from disk, not only hidden
        as a lightweight ``DELETE`` would leave them. The count is of events as
        `events` reads them (each key once).
        """
        parameters: dict[str, Any] = {"devices": list(device_ids), "customs": list(custom_ids)}
        if not parameters["devices"] and not parameters["customs"]:
            return 0
        where = f"({_FORGET_WHERE})"
        if app_id is not None:
            where += " AND app_id = {app:String}"
            parameters["app"] = app_id
        with self._lock:
            client = self._connect()
            try:
                count = int(
                    client.query(
                        f"SELECT count() FROM {self._qualified} FINAL "  # noqa: S608 - quoted
                        f"WHERE {where}",
                        parameters=parameters,
                    ).result_rows[0][0]
                )
                if count:
                    client.command(
                        f"ALTER TABLE {self._local_table} DELETE WHERE {where}",
                        parameters=parameters,
                        settings=_SYNC_MUTATION,
                    )
            except _DRIVER_ERRORS as exc:
                raise BackendError(f"ClickHouse delete failed: {exc}") from exc
        return count

    def purge(self, *, older_than: dt.datetime, app_id: str | None = None) -> int:
        """Delete every event received before *older_than*, of *app_id* only when given.

        Whole months before it are dropped as partitions (instant, no rewrite);
        only the month *older_than* falls in is rewritten by a delete mutation.
        Scoped to one app, every month is rewritten by a delete mutation.
        For a standing retention period, a table TTL (``ttl=``) does this by itself.
        """
        cutoff = older_than.astimezone(dt.timezone.utc)
        cutoff_month = cutoff.year * 100 + cutoff.month
        parameters: dict[str, Any] = {"cutoff": cutoff.replace(tzinfo=None)}
        before = "received_at < {cutoff:DateTime64(3, 'UTC')}"
        if app_id is not None:
            before += " AND app_id = {app:String}"
            parameters["app"] = app_id
        with self._lock:
            client = self._connect()
            try:
                count = int(
                    client.query(
                        f"SELECT count() FROM {self._qualified} FINAL WHERE {before}",  # noqa: S608
                        parameters=parameters,
                    ).result_rows[0][0]
                )
                months = client.query(
                    f"SELECT DISTINCT toYYYYMM(received_at) FROM {self._qualified} "  # noqa: S608
                    f"WHERE {before}",
                    parameters=parameters,
                ).result_rows
                for (month,) in months:
                    if int(month) < cutoff_month and app_id is None:
                        client.command(
                            f"ALTER TABLE {self._local_table} DROP PARTITION {int(month)}"
                        )
                    else:
                        client.command(
                            f"ALTER TABLE {self._local_table} DELETE IN PARTITION {int(month)} "
                            f"WHERE {before}",
                            parameters=parameters,
                            settings=_SYNC_MUTATION,
                        )
            except _DRIVER_ERRORS as exc:
                raise BackendError(f"ClickHouse purge failed: {exc}") from exc
        return count

    def _known_row_ids(
        self,
        client: Client,
        events: Sequence[StoredEvent],
        key_ids: Sequence[str | None],
    ) -> set[str]:
        """Which of these row ids (`_key_hex`) the table holds already."""
        ids = [key_id for key_id in key_ids if key_id is not None]
        if not ids:
            return set()
        apps = sorted({s.event.app_id for s in events if s.key is not None})
        known: set[str] = set()
        for start in range(0, len(ids), self._lookup_ids):
            chunk = ids[start : start + self._lookup_ids]
            digits = "".join(chunk)
            if len(digits) != 32 * len(chunk) or digits.translate(_WITHOUT_HEX_DIGITS):
                raise ValueError("row ids are 32 hex digits each")
            packed = base64.b64encode(bytes.fromhex(digits)).decode("ascii")
            # app_id narrows the search to the apps' ranges of the sorting key; row_id's bloom
            # filter skips most granules in them (it does for a set from a subquery too). The
            # answer is read as text, hex digits a line: `query` would scan the statement's
            # text in Python and build a row per id, a third of the look-up's time again.
            answer = client.raw_query(
                "SELECT DISTINCT replaceAll(toString(row_id), '-', '') "  # noqa: S608 - base64
                f"FROM {self._qualified} WHERE app_id IN {{apps:Array(String)}} AND row_id IN "
                f"(WITH base64Decode('{packed}') AS ids "
                "SELECT toUUID(hex(substring(ids, number * 16 + 1, 16))) "
                f"FROM numbers({len(chunk)}))",
                parameters={"apps": apps},
                fmt="TabSeparated",
            )
            known.update(answer.decode("ascii").split())
        return known

    def report_source(self) -> ClickHouseReports:
        """The reports' push-down: queries run by ClickHouse, on a client of their own to the
        same table."""
        return ClickHouseReports(
            self.dsn, database=self.database, table=self.table, settings=self.settings
        )

    def ping(self) -> None:
        """Raise `BackendError` unless ClickHouse answers a query on the table."""
        with self._lock:
            client = self._connect()
            try:
                client.query(f"SELECT 1 FROM {self._qualified} LIMIT 1")  # noqa: S608
            except _DRIVER_ERRORS as exc:
                raise BackendError(f"ClickHouse does not answer: {exc}") from exc

    def events(
        self,
        *,
        app_id: str | None = None,
        since: dt.datetime | None = None,
        chunk_size: int = 1000,
    ) -> Iterator[StoredEvent]:
        """Every stored event in storage order (``FINAL``: each key once), read in chunks, of
        *app_id* only and received at or after *since* only, when given."""
        where = "seq > {last:UInt64}" + (" AND app_id = {app:String}" if app_id else "")
        parameters: dict[str, Any] = {"app": app_id or ""}
        if since is not None:
            # Receive times are whole milliseconds: the first one at or after since, compared
            # with the column itself so that the months before it are skipped whole.
            where += " AND received_at >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')"
            parameters["since"] = first_ms_from(since)
        query = (
            f"SELECT seq, {_SELECT_COLUMNS} FROM {self._qualified} FINAL "  # noqa: S608
            f"WHERE {where} ORDER BY seq LIMIT {int(chunk_size)}"
        )

        def page(after: int) -> Sequence[Sequence[Any]]:
            with self._lock:
                client = self._connect()
                try:
                    rows: Sequence[Sequence[Any]] = client.query(
                        query,
                        parameters={**parameters, "last": after},
                        query_formats={"String": "bytes"},
                    ).result_rows
                except _DRIVER_ERRORS as exc:
                    raise BackendError(f"ClickHouse read failed: {exc}") from exc
            return rows

        return paged(page, lambda row: _stored(row[1:]))

    def close(self) -> None:
        """Close the client; later calls raise `BackendError`. Closing again does nothing."""
        with self._lock:
            self._closed = True
            client, self._client = self._client, None
        if client is not None:
            client.close()


def _evolve(batching: Batching, **changes: Any) -> Batching:
    return attrs.evolve(batching, **changes)
