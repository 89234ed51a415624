"""The read side for SQLite: the report queries run inside SQLite, on a read-only connection."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from ... import _semantics as sem
from ...exceptions import BackendError, ConfigurationError
from .._sql import Dialect, QueryBuilder, Rows, SQLReportSource, Statement
from .._url import url_path

__all__ = ["SQLiteReports", "file_from_url"]


def file_from_url(url: str) -> str:
    """The database a ``sqlite:`` URL names: three slashes a relative path, four an absolute
    one; ``sqlite://:memory:`` or no path, ``":memory:"``."""
    path = url_path(url).removeprefix("/") if "://" in url else ""
    return path or ":memory:"


def _split_version(expr: str) -> str:
    colon = f"instr({expr}, ':')"
    return f"CASE WHEN {colon} > 0 THEN substr({expr}, 1, {colon} - 1) ELSE {expr} END"


def _duration(metadata: str) -> str:
    value = f"json_extract({metadata}, '$.{sem.DURATION_KEY}')"
    return (
        f"CASE WHEN typeof({value}) = 'text' AND {value} GLOB '[0-9]*' "
        f"AND {value} NOT GLOB '*[^0-9]*' AND length({value}) <= {sem.DURATION_MAX_DIGITS} "
        f"THEN CAST({value} AS INTEGER) END"
    )


SQLITE = Dialect(
    placeholder=lambda _n, _value: "?", split_version=_split_version, duration=_duration
)


class SQLiteReports(SQLReportSource):
    """Reports over the file a `SQLiteBackend` writes, read through a separate connection.

    The connection is read-only (WAL lets it read while the backend writes). An in-memory
    database cannot be opened twice, so only file databases can be reported on.

    Args:
        path: The SQLite file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(QueryBuilder(SQLITE))
        self._path = os.fspath(path)
        if self._path in {"", ":memory:"}:
            raise ConfigurationError(
                "an in-memory SQLite database cannot be reported on: use a file",
                code="unsupported_storage",
            )
        if not Path(self._path).is_file():
            raise ConfigurationError(f"no SQLite database at {self._path!r}", code="no_database")
        self._lock = threading.Lock()
        try:
            uri = Path(self._path).resolve().as_uri() + "?mode=ro"
            self._conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            self._conn.execute("PRAGMA query_only = 1")
            # Large sorts and DISTINCTs stay in memory instead of temporary files.
            self._conn.execute("PRAGMA temp_store = MEMORY")
            self._conn.execute("PRAGMA cache_size = -65536")
        except sqlite3.Error as exc:
            raise BackendError(f"cannot open SQLite database {self._path!r}: {exc}") from exc

    @classmethod
    def from_url(cls, url: str) -> SQLiteReports:
        """Reports over the file a ``sqlite:///`` URL names, by the same path rules as
        `SQLiteBackend.from_url`, without opening a writer: no file or table is created."""
        return cls(file_from_url(url))

    def __repr__(self) -> str:
        return f"SQLiteReports({self._path!r})"

    def _fetch(self, statement: Statement) -> Rows:
        sql, params = statement
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise BackendError(f"SQLite report query failed: {exc}") from exc

    def close(self) -> None:
        """Close the read-only connection; later reports raise `BackendError`."""
        with self._lock:
            self._conn.close()
