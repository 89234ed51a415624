"""Storage: the `StorageBackend` protocol and its optional abilities, the built-in backends,
and URLs that name them. `copy_events` copies every event of one backend into another.

Each built-in backend is one package holding its write side, its read side and its SQL:
`updater_stats.backends.sqlite`, `updater_stats.backends.postgres` (the ``postgres``
extra) and `updater_stats.backends.clickhouse` (the ``clickhouse`` extra); name the server
ones with a URL, or import them from their package. A package of your own registers a URL
scheme for its backend in the `URL_SCHEMES_GROUP` entry-point group. A backend that streams
what it holds implements the read protocol, `SupportsEvents`, and gets every report through it.
"""

from __future__ import annotations

from .._batching import Batching
from .._storage import (
    InventorySource,
    ReportSource,
    StorageBackend,
    SupportsBatching,
    SupportsDeadline,
    SupportsEvents,
    SupportsForget,
    SupportsPing,
    SupportsPurge,
    SupportsReportSource,
)
from .._transfer import CopyResult, copy_events
from ._url import (
    URL_SCHEMES_GROUP,
    backend_from_url,
    check_storage_url,
    reader_from_url,
    redacted_url,
)
from .memory import MemoryBackend
from .sqlite import SQLiteBackend

__all__ = [
    "URL_SCHEMES_GROUP",
    "Batching",
    "CopyResult",
    "InventorySource",
    "MemoryBackend",
    "ReportSource",
    "SQLiteBackend",
    "StorageBackend",
    "SupportsBatching",
    "SupportsDeadline",
    "SupportsEvents",
    "SupportsForget",
    "SupportsPing",
    "SupportsPurge",
    "SupportsReportSource",
    "backend_from_url",
    "check_storage_url",
    "copy_events",
    "reader_from_url",
    "redacted_url",
]
