"""updater-stats: a self-hosted stats endpoint for Capacitor live updates.

Call `handle` with a request body from your own route, or build a
`Collector` over the `StorageBackend` of your choice.
"""

from __future__ import annotations

from ._actions import (
    Action,
    counts_as_failure,
    download_fail_counts,
    download_fail_means_no_update,
)
from ._collector import (
    DEADLINE_ENV_VAR,
    DEFAULT_DEADLINE,
    DEFAULT_STORAGE_URL,
    STORAGE_ENV_VAR,
    Collector,
    ahandle,
    arespond,
    configure,
    forget,
    handle,
    purge,
    respond,
)
from ._metrics import IntakeMetrics, IntakeSnapshot
from ._models import AppInfos, Response, StoredEvent, WriteResult
from ._policy import Policy
from ._wire import Validator, parse_event
from ._writer import Batching
from .backends import (
    MemoryBackend,
    SQLiteBackend,
    StorageBackend,
    SupportsDeadline,
    SupportsEvents,
    SupportsForget,
    SupportsPurge,
    backend_from_url,
)
from .exceptions import (
    BackendError,
    ConfigurationError,
    InvalidBodyError,
    InvalidEventError,
    PayloadTooLargeError,
    UpdaterStatsError,
)
from .privacy import Privacy

__all__ = [
    "DEADLINE_ENV_VAR",
    "DEFAULT_DEADLINE",
    "DEFAULT_STORAGE_URL",
    "STORAGE_ENV_VAR",
    "Action",
    "AppInfos",
    "BackendError",
    "Batching",
    "Collector",
    "ConfigurationError",
    "IntakeMetrics",
    "IntakeSnapshot",
    "InvalidBodyError",
    "InvalidEventError",
    "MemoryBackend",
    "PayloadTooLargeError",
    "Policy",
    "Privacy",
    "Response",
    "SQLiteBackend",
    "StorageBackend",
    "StoredEvent",
    "SupportsDeadline",
    "SupportsEvents",
    "SupportsForget",
    "SupportsPurge",
    "UpdaterStatsError",
    "Validator",
    "WriteResult",
    "ahandle",
    "arespond",
    "backend_from_url",
    "configure",
    "counts_as_failure",
    "download_fail_counts",
    "download_fail_means_no_update",
    "forget",
    "handle",
    "parse_event",
    "purge",
    "respond",
]


def __getattr__(name: str) -> str:
    # Read lazily, as structlog does: importlib.metadata costs time at import.
    if name == "__version__":
        from importlib.metadata import version  # noqa: PLC0415

        return version("updater-stats")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
