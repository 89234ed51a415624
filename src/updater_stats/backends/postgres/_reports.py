"""The read side for PostgreSQL: the report queries run in the database, on their own connection.

Needs the ``postgres`` extra (psycopg).
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg
from psycopg import sql

from ... import _semantics as sem
from ...exceptions import BackendError
from .._sql import Dialect, QueryBuilder, Rows, SQLReportSource, Statement
from ._escape import escape, unescape

__all__ = ["PostgresReports"]


def _split_version(expr: str) -> str:
    return f"split_part({expr}, ':', 1)"


def _duration(metadata: str) -> str:
    value = f"({metadata} ->> '{sem.DURATION_KEY}')"
    return (
        f"CASE WHEN {value} ~ '^[0-9]{{1,{sem.DURATION_MAX_DIGITS}}}$' "
        f"THEN CAST({value} AS bigint) END"
    )


def _decode(value: Any) -> str:
    return unescape(str(value))


POSTGRES = Dialect(
    placeholder=lambda _n, _value: "%s",
    split_version=_split_version,
    duration=_duration,
    # EXTRACT gives an exact numeric: floor to whole milliseconds, as every backend stores them.
    received_ms="CAST(FLOOR(EXTRACT(EPOCH FROM received_at) * 1000) AS bigint)",
    received_bound=lambda marker: f"to_timestamp({marker} / 1000.0)",
    encode=escape,
    decode=_decode,
    text_order=' COLLATE "C"',
    # `%` marks a parameter for psycopg: the function instead.
    mod=lambda a, b: f"mod({a}, {b})",
    nulls_last=" NULLS LAST",
)


class PostgresReports(SQLReportSource):
    """Reports over the tables a `PostgresBackend` writes, through one connection of their own.

    The connection is opened on first use, in autocommit mode and read-only, so a
    report never holds a transaction open nor writes anything.

    Args:
        conninfo: A libpq connection string or ``postgresql://`` URL.
        schema: The PostgreSQL schema holding the ``events`` table.
    """

    def __init__(self, conninfo: str, *, schema: str = "updater_stats") -> None:
        self._conninfo = conninfo
        self._schema = schema
        table = '"' + schema.replace('"', '""') + '".events'
        super().__init__(QueryBuilder(POSTGRES, table))
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None

    def __repr__(self) -> str:
        return f"PostgresReports(schema={self._schema!r})"

    def _connect(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = psycopg.connect(self._conninfo, autocommit=True)
                self._conn.execute("SET default_transaction_read_only = on")
            except psycopg.Error as exc:
                raise BackendError(f"cannot connect to PostgreSQL: {exc}") from exc
        return self._conn

    def _fetch(self, statement: Statement) -> Rows:
        text, params = statement
        with self._lock:
            conn = self._connect()
            try:
                return conn.execute(sql.SQL(text), params).fetchall()
            except psycopg.Error as exc:
                raise BackendError(f"PostgreSQL report query failed: {exc}") from exc

    def close(self) -> None:
        """Close the read connection; a later report opens a new one."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
