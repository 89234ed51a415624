"""The read side for ClickHouse: the report queries run in ClickHouse, on a client of their own.

Needs the ``clickhouse`` extra (clickhouse-connect). Rows are read ``FINAL``, so copies of
one event that a merge has not collapsed yet are counted once.
"""

from __future__ import annotations

import threading
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from ... import _semantics as sem
from ...exceptions import BackendError
from .._sql import Dialect, QueryBuilder, Rows, SQLReportSource, Statement

__all__ = ["ClickHouseReports"]


def _placeholder(n: int, value: Any) -> str:
    kind = "Int64" if isinstance(value, int) else "String"
    return f"{{p{n}:{kind}}}"


def _duration(metadata: str) -> str:
    value = f"{metadata}['{sem.DURATION_KEY}']"
    return (
        f"if(match({value}, '^[0-9]{{1,{sem.DURATION_MAX_DIGITS}}}$'), "
        f"toInt64OrNull({value}), NULL)"
    )


def _decode(value: Any) -> str:
    # Strings are read as bytes: the backend stores any text, lone surrogates included.
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogatepass")
    return str(value)


def _encode(text: str) -> str:
    return text


CLICKHOUSE = Dialect(
    placeholder=_placeholder,
    split_version=lambda expr: f"splitByChar(':', {expr})[1]",
    duration=_duration,
    received_ms="toUnixTimestamp64Milli(received_at)",
    received_bound=lambda marker: f"fromUnixTimestamp64Milli({marker}, 'UTC')",
    int_div=lambda a, b: f"intDiv({a}, {b})",
    encode=_encode,
    decode=_decode,
)


def _quote(identifier: str) -> str:
    return "`" + identifier.replace("\\", "\\\\").replace("`", "\\`") + "`"


class ClickHouseReports(SQLReportSource):
    """Reports over the table a `ClickHouseBackend` writes, through a client of their own.

    Args:
        dsn: A clickhouse-connect DSN (``http://``, ``https://``, ``chdb://``).
        database: The database holding the table.
        table: The table.
        settings: ClickHouse settings for the client.
    """

    def __init__(
        self,
        dsn: str,
        *,
        database: str = "updater_stats",
        table: str = "events",
        settings: dict[str, Any] | None = None,
    ) -> None:
        self._dsn = dsn
        self._qualified = f"{_quote(database)}.{_quote(table)}"
        self._settings = dict(settings or {})
        super().__init__(QueryBuilder(CLICKHOUSE, f"{self._qualified} FINAL"))
        self._lock = threading.Lock()
        self._client: Client | None = None

    def __repr__(self) -> str:
        return f"ClickHouseReports({self._qualified})"

    def _fetch(self, statement: Statement) -> Rows:
        text, params = statement
        with self._lock:
            try:
                if self._client is None:
                    self._client = clickhouse_connect.get_client(
                        dsn=self._dsn, settings=self._settings
                    )
                result = self._client.query(
                    text,
                    parameters={f"p{n}": value for n, value in enumerate(params)},
                    query_formats={"String": "bytes"},
                )
            except (ClickHouseError, OSError) as exc:
                raise BackendError(f"ClickHouse report query failed: {exc}") from exc
        return result.result_rows

    def close(self) -> None:
        """Close the read client; a later report opens a new one."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
