"""The embedded default: one SQLite file, stdlib `sqlite3`, no server.

Durability: WAL journal, synced to disk at each commit (by SQLite inside the
commit while one process writes the file; after it, out of SQLite's write lock,
once several do: see ``_walsync``), so a batch is on disk when `write` returns and
the device is told "ok". One connection per backend,
guarded by a lock; other processes on the same file wait on SQLite's busy
timeout, and a lock that outlasts it is a `BackendError` (503, the device
retries), never a crash. The collector's writes (`write_by`) wait no longer
than their deadline allows: a write that cannot start in time fails.
"""

from __future__ import annotations

from ._backend import SCHEMA_VERSION, SQLiteBackend
from ._reports import SQLiteReports

__all__ = [
    "SCHEMA_VERSION",
    "SQLiteBackend",
    "SQLiteReports",
]
