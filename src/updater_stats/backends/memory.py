"""A backend in a Python list: for tests and for trying updater-stats out."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from .._models import StoredEvent, WriteResult
from ..exceptions import BackendError

__all__ = ["MemoryBackend"]


class MemoryBackend:
    """Keeps events in memory, in arrival order, with the same key rules as every backend.

    Nothing survives the process: use it in tests, not in production.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[StoredEvent] = []
        self._keys: set[str] = set()
        self._closed = False

    @classmethod
    def from_url(cls, _url: str) -> MemoryBackend:
        """``memory://``."""
        return cls()

    def __repr__(self) -> str:
        return f"<MemoryBackend with {len(self._events)} events>"

    def write(self, events: Sequence[StoredEvent]) -> WriteResult:
        with self._lock:
            if self._closed:
                raise BackendError("the memory backend is closed")
            inserted = 0
            for stored in events:
                if stored.key is not None:
                    if stored.key in self._keys:
                        continue
                    self._keys.add(stored.key)
                self._events.append(stored)
                inserted += 1
        return WriteResult(inserted=inserted, duplicates=len(events) - inserted)

    def ping(self) -> None:
        if self._closed:
            raise BackendError("the memory backend is closed")

    def events(self, *, app_id: str | None = None) -> Iterator[StoredEvent]:
        """Every stored event in storage order (a snapshot taken now)."""
        with self._lock:
            snapshot = list(self._events)
        return (stored for stored in snapshot if app_id is None or stored.event.app_id == app_id)

    def __len__(self) -> int:
        return len(self._events)

    def close(self) -> None:
        with self._lock:
            self._closed = True
