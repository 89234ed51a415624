"""What ``updater-stats serve`` decides for its worker processes: how many it starts."""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

import attrs

from ._settings import DEFAULT_STORAGE_URL

__all__ = ["SERVER_MOST", "SQLITE_MOST", "WorkerCount", "default_workers", "usable_core_count"]

#: Workers on one SQLite file: the file takes one write at a time, so a second process
#: overlaps its parsing and validating with the other's commit; more would mostly wait for the
#: lock.
SQLITE_MOST = 2
#: Workers on a database server (PostgreSQL, ClickHouse): each holds connections of its own.
SERVER_MOST = 4

_SQLITE = frozenset({"sqlite"})
_SERVERS = frozenset({"postgresql", "postgres", "clickhouse", "clickhouses"})
# Storage inside the process: a second process would hold a store of its own.
_IN_PROCESS = frozenset({"memory"})


@attrs.frozen
class WorkerCount:
    """A number of worker processes, and why that number, for the start-up line."""

    count: int
    reason: str

    def __str__(self) -> str:
        noun = "worker" if self.count == 1 else "workers"
        return f"{self.count} {noun} ({self.reason})"


def usable_core_count() -> int:
    """The cores this process may run on: its CPU affinity where the platform has one (so
    ``taskset -c 0 updater-stats serve`` counts 1), else the machine's cores, else 1."""
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        return max(1, len(affinity(0)))
    return os.cpu_count() or 1


def default_workers(storage_url: str, usable_cores: int | None = None) -> WorkerCount:
    """The worker processes ``serve`` starts on *storage_url* when ``--workers`` is not given.

    One per usable core (*usable_cores*, default: `usable_core_count()`), at most `SQLITE_MOST` on
    a SQLite file and `SERVER_MOST` on a database server; exactly one for storage that lives
    inside the process (``memory://``, SQLite in memory, the ``chdb:`` engine), which a second
    process could not share, and for a scheme an installed package registers, which may keep
    state in its process (the docs' JSON-lines example keeps its keys in memory: two processes
    would each store a re-sent batch once).
    """
    cores = usable_core_count() if usable_cores is None else max(1, usable_cores)
    url = storage_url or DEFAULT_STORAGE_URL
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme in _SQLITE and not _sqlite_in_memory(url):
        return WorkerCount(
            min(cores, SQLITE_MOST), f"one per core, at most {SQLITE_MOST} for SQLite"
        )
    if scheme in _SERVERS:
        return WorkerCount(
            min(cores, SERVER_MOST), f"one per core, at most {SERVER_MOST} for a database server"
        )
    if scheme in _SQLITE or scheme in _IN_PROCESS:
        return WorkerCount(1, "in-memory storage is not shared between processes")
    if scheme == "chdb":
        return WorkerCount(1, "the in-process ClickHouse engine serves one process")
    return WorkerCount(
        1, f"{scheme}:// is an installed package's backend: --workers N if processes can share it"
    )


def _sqlite_in_memory(url: str) -> bool:
    # The rule of the SQLite backend's `file_from_url`: no path, or ":memory:", is a private
    # in-memory database (that function is the backend's own, private to the backends).
    path = unquote(url.split("://", 1)[1].split("?", 1)[0].split("#", 1)[0]).removeprefix("/")
    return path in {"", ":memory:"}
