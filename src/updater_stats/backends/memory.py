"""A backend in a Python list: for tests and for trying updater-stats out."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Collection, Iterator, Sequence

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
        """Keep *events* in order, skipping keys already held; say where the duplicates were."""
        duplicate_indexes: list[int] = []
        with self._lock:
            if self._closed:
                raise BackendError("the memory backend is closed")
            for index, stored in enumerate(events):
                if stored.key is not None:
                    if stored.key in self._keys:
                        duplicate_indexes.append(index)
                        continue
                    self._keys.add(stored.key)
                self._events.append(stored)
        return WriteResult(
            inserted=len(events) - len(duplicate_indexes),
            duplicates=len(duplicate_indexes),
            duplicate_indexes=tuple(duplicate_indexes),
        )

    def _delete(self, doomed: Callable[[StoredEvent], bool]) -> int:
        with self._lock:
            if self._closed:
                raise BackendError("the memory backend is closed")
            kept = [stored for stored in self._events if not doomed(stored)]
            deleted = len(self._events) - len(kept)
            self._events = kept
            # Nothing of a deleted event stays behind, its key included.
            self._keys = {stored.key for stored in kept if stored.key is not None}
        return deleted

    def forget(
        self,
        *,
        device_ids: Collection[str] = (),
        custom_ids: Collection[str] = (),
        app_id: str | None = None,
    ) -> int:
        """Delete the events of these devices and users (values as stored), of *app_id* only
        when given; return how many."""
        devices, customs = frozenset(device_ids), frozenset(custom_ids)
        return self._delete(
            lambda stored: (
                (stored.event.device_id in devices or stored.event.custom_id in customs)
                and (app_id is None or stored.event.app_id == app_id)
            )
        )

    def purge(self, *, older_than: dt.datetime, app_id: str | None = None) -> int:
        """Delete the events received before *older_than*, of *app_id* only when given."""
        return self._delete(
            lambda stored: (
                stored.received_at < older_than
                and (app_id is None or stored.event.app_id == app_id)
            )
        )

    def ping(self) -> None:
        """Raise `BackendError` once the backend is closed; answer otherwise."""
        if self._closed:
            raise BackendError("the memory backend is closed")

    def events(
        self, *, app_id: str | None = None, since: dt.datetime | None = None
    ) -> Iterator[StoredEvent]:
        """Every stored event in storage order (a snapshot taken now), of *app_id* only and
        received at or after *since* only, when given."""
        with self._lock:
            snapshot = list(self._events)
        return (
            stored
            for stored in snapshot
            if (app_id is None or stored.event.app_id == app_id)
            and (since is None or stored.received_at >= since)
        )

    def __len__(self) -> int:
        return len(self._events)

    def close(self) -> None:
        """Refuse further writes and erasures; the events stay readable."""
        with self._lock:
            self._closed = True
