"""Storage: the `StorageBackend` protocol, the built-in backends, and URLs that name them.

A backend that streams what it holds implements the read protocol, `SupportsEvents`;
`copy_events` copies every event of one backend into another through it.
`PostgresBackend` and `ClickHouseBackend` need their drivers (the ``postgres``
and ``clickhouse`` extras): import them from `updater_stats.backends.postgres`
and `updater_stats.backends.clickhouse`, or name them with a URL. A package of
your own registers a URL scheme for its backend in the `URL_SCHEMES_GROUP`
entry-point group.
"""

from __future__ import annotations

from .._transfer import CopyResult, SupportsEvents, copy_events
from .._writer import Batching
from ._protocol import StorageBackend, SupportsDeadline, SupportsForget, SupportsPurge
from ._url import URL_SCHEMES_GROUP, backend_from_url
from .memory import MemoryBackend
from .sqlite import SQLiteBackend

__all__ = [
    "URL_SCHEMES_GROUP",
    "Batching",
    "CopyResult",
    "MemoryBackend",
    "SQLiteBackend",
    "StorageBackend",
    "SupportsDeadline",
    "SupportsEvents",
    "SupportsForget",
    "SupportsPurge",
    "backend_from_url",
    "copy_events",
]
