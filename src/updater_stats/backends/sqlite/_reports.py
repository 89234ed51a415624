"""The read side for SQLite: the report queries run inside SQLite, on a read-only connection."""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar, cast

from ... import _semantics as sem
from ..._counts import (
    ActiveDevices,
    DailyVersionCounts,
    FunnelCounts,
    LatencyCounts,
    RunningGroup,
    VersionCounts,
)
from ..._devices import DayRate, FailingDevice
from ..._query import ReportQuery
from ...exceptions import BackendError, ConfigurationError
from .._sql import Dialect, QueryBuilder, Rows, SQLReportSource, Statement
from .._url import url_path
from ._summaries import DaySummaries, answers

__all__ = ["SQLiteReports", "file_from_url"]

T = TypeVar("T")


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

    With *summaries*, reports over whole UTC days (the dashboard's) are read from the
    file's day summaries (`DaySummaries`, kept in ``<path>-summaries`` and brought up to
    date by a thread of this object), with the same figures in a fraction of the time.

    Args:
        path: The SQLite file.
        summaries: Keep and read day summaries beside the file.
    """

    def __init__(self, path: str | os.PathLike[str], *, summaries: bool = False) -> None:
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
        self._summaries: DaySummaries | None = None
        if summaries:
            self.keep_summaries()

    def keep_summaries(self) -> None:
        """Read reports over whole days from the file's day summaries from now on, kept up
        to date by a thread of this object (see `DaySummaries`). Idempotent."""
        if self._summaries is None:
            self._summaries = DaySummaries(
                self._path, self._conn, self._lock, _duration("metadata")
            )

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

    @property
    def keeps_summaries(self) -> bool:
        """Whether reports over whole days are read from the day summaries when they can."""
        return self._summaries is not None

    def summaries_ready(self) -> bool:
        """Whether the day summaries hold every stored event (bringing in a few first);
        `False` without summaries. Reports read every event until they do."""
        return self._summaries is not None and self._summaries.ready()

    def summarized(self, query: ReportQuery) -> bool:
        """Whether a report under *query* is read from the day summaries (whole UTC days,
        no channel, summaries kept and up to date) rather than from every event."""
        return self._summarized(query) is not None

    def _reader(self, query: ReportQuery, every_event: Callable[..., T]) -> Callable[..., T]:
        """The day summaries' method of *every_event*'s name when they answer *query*, else
        *every_event* itself (the SQL over every event) for this source."""
        summaries = self._summarized(query)
        if summaries is None:
            return functools.partial(every_event, self)
        return cast("Callable[..., T]", getattr(summaries, every_event.__name__))

    def _summarized(self, query: ReportQuery) -> DaySummaries | None:
        """The day summaries, when they answer *query* and hold every event."""
        summaries = self._summaries
        if summaries is not None and answers(query) and summaries.ready():
            return summaries
        return None

    def version_counts(self, query: ReportQuery) -> list[VersionCounts]:
        """One row per version (from the day summaries when they answer *query*)."""
        return self._reader(query, SQLReportSource.version_counts)(query)

    def funnel_counts(self, query: ReportQuery) -> list[FunnelCounts]:
        """One row per version a device started downloading
        (from the day summaries when they answer *query*)."""
        return self._reader(query, SQLReportSource.funnel_counts)(query)

    def running_versions(self, query: ReportQuery) -> list[RunningGroup]:
        """Each device's latest running values, grouped
        (from the day summaries when they answer *query*)."""
        return self._reader(query, SQLReportSource.running_versions)(query)

    def active_devices(self, query: ReportQuery) -> ActiveDevices:
        """Distinct devices, in all and per UTC day
        (from the day summaries when they answer *query*)."""
        return self._reader(query, SQLReportSource.active_devices)(query)

    def download_latency(self, query: ReportQuery) -> list[LatencyCounts]:
        """Download duration percentiles per version
        (from the day summaries when they answer *query*)."""
        return self._reader(query, SQLReportSource.download_latency)(query)

    def daily_counts(self, query: ReportQuery) -> list[DailyVersionCounts]:
        """Per UTC day and version
        (from the day summaries when they answer *query*)."""
        return self._reader(query, SQLReportSource.daily_counts)(query)

    def daily_rates(self, query: ReportQuery) -> list[DayRate]:
        """Per UTC day and version, devices and failed devices
        (from the day summaries when they answer *query*)."""
        return self._reader(query, SQLReportSource.daily_rates)(query)

    def failing_devices(
        self, query: ReportQuery, version: str, *, limit: int = 50, offset: int = 0
    ) -> list[FailingDevice]:
        """The devices that failed on *version*, one page
        (from the day summaries when they answer *query*)."""
        read = self._reader(query, SQLReportSource.failing_devices)
        return read(query, version, limit=limit, offset=offset)

    def close(self) -> None:
        """Close the read-only connection (and stop the summaries); later reports raise
        `BackendError`."""
        if self._summaries is not None:
            self._summaries.close()
        with self._lock:
            self._conn.close()
