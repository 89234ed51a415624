"""What ``updater-stats serve`` decides for its worker processes: how many it starts, and the
factories uvicorn builds each worker's app with.

Only ``serve`` uses this module. The library's own apps, and `create_app_from_env` that users
run under a server of their choosing, leave the process's garbage collector alone.
"""

from __future__ import annotations

import gc
import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs

from ._cores import cgroup_cpu_limit
from ._settings import DEFAULT_STORAGE_URL
from .backends import SQLiteBackend

if TYPE_CHECKING:
    from .asgi import StatsASGIApp

__all__ = [
    "GC_THRESHOLDS",
    "SERVER_MOST",
    "SQLITE_MOST",
    "WorkerCount",
    "create_dashboard_worker_app",
    "create_worker_app",
    "default_workers",
    "tune_gc",
    "usable_core_count",
    "watch_the_supervisor",
]

log = logging.getLogger("updater_stats")

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
    ``taskset -c 0 updater-stats serve`` counts 1), else the machine's cores, else 1; and no
    more than its control groups' CPU quota, rounded up (``docker run --cpus 1.5`` counts 2)."""
    affinity = getattr(os, "sched_getaffinity", None)
    cores = max(1, len(affinity(0))) if affinity is not None else os.cpu_count() or 1
    quota = cgroup_cpu_limit()
    return cores if quota is None else max(1, min(cores, math.ceil(quota)))


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
    # The backend's own reading of the URL: building one opens nothing (it connects on first use).
    return SQLiteBackend.from_url(url).path == ":memory:"


# -- Each worker's app: built as the library builds it, then the collector tuned ---------------

# A 200-event body becomes thousands of containers (a dict per event, lists, the rows' tuples),
# nearly all freed by reference counting once the request is answered. Under the default
# threshold (a young collection every 700 net allocations), 32 connections sending such bodies
# set off about 1.4 collections per request, each walking every body still in flight: 10 to 12 %
# of a pinned worker's CPU, to free about 400 objects in a whole run (cycles are rare here). At
# 50 000 (or 20 000), none ran during the load, and the CPU per request fell 8 to 9 % (two sets
# of three runs, alternated); single events were no worse. The older generations wait longer in
# proportion.
#: The garbage collector's thresholds in ``serve``'s workers (Python's defaults: 700, 10, 10).
GC_THRESHOLDS = (50_000, 20, 100)


def create_worker_app() -> StatsASGIApp:
    """What each of ``serve``'s workers runs: `asgi.create_app_from_env`, then `tune_gc`."""
    # Here, not at the top: every command imports this module, only workers build an app.
    from .asgi import create_app_from_env  # noqa: PLC0415

    app = create_app_from_env()
    tune_gc()
    watch_the_supervisor()
    return app


def create_dashboard_worker_app() -> Any:
    """What each worker of ``serve --dashboard`` runs:
    `dashboard.create_server_app_from_env`, then `tune_gc`."""
    from .dashboard import create_server_app_from_env  # noqa: PLC0415 - needs the extra

    app = create_server_app_from_env()
    tune_gc()
    watch_the_supervisor()
    return app


def watch_the_supervisor() -> threading.Thread | None:
    """In a worker process that uvicorn's supervisor started: stop this worker, as SIGTERM
    would (the requests in flight answered, storage closed), once the supervisor is gone.

    A supervisor killed outright (``kill -9``, an out-of-memory kill) cannot stop its workers,
    and they went on serving on the socket they share: a new ``serve`` could not bind the
    port while they lived. Nothing to watch in a process without a parent of this kind
    (``serve`` with one worker runs it in its own process). Returns the watching thread.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return None

    def wait_for_the_supervisor() -> None:
        # The sentinel becomes ready when the parent process ends, however it ends.
        multiprocessing.connection.wait([parent.sentinel])
        log.warning("the supervisor process is gone: stopping this worker")
        os.kill(os.getpid(), signal.SIGTERM)

    watcher = threading.Thread(
        target=wait_for_the_supervisor, name="updater-stats-supervisor-watch", daemon=True
    )
    watcher.start()
    return watcher


def tune_gc() -> None:
    """Collect young objects every `GC_THRESHOLDS` allocations, not 700, and leave what
    start-up built (modules, the app, its collector) out of every collection.

    `gc.freeze` moves those objects to the permanent generation, so that the rare full
    collections no longer walk them; it made no difference of its own in the runs above, where
    no full collection came. Cyclic garbage is still collected, later.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
