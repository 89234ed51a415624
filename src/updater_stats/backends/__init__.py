"""Storage: the `StorageBackend` protocol, the built-in backends, and URLs that name them."""

from __future__ import annotations

from ._protocol import StorageBackend
from ._url import backend_from_url
from .memory import MemoryBackend
from .sqlite import SQLiteBackend

__all__ = ["MemoryBackend", "SQLiteBackend", "StorageBackend", "backend_from_url"]
