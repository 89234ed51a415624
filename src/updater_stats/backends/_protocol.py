"""The write-side storage protocol, and the optional deadline, erasure and retention protocols."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .._models import StoredEvent, WriteResult


@runtime_checkable
class StorageBackend(Protocol):
    """**Protocol:** where accepted events go.

    Implement it in one small class: nothing else is required.

    `write` must be atomic and durable: when it returns, every event of the
    batch is stored (or was already stored under the same key), because the
    device is told "ok" next and deletes its copy. When it cannot store the
    whole batch it raises (ideally `BackendError`) and stores nothing, and
    the device sends the batch again.

    Events whose `StoredEvent.key` is not `None` are unique by key: a key the
    backend already holds (from an earlier write or earlier in the same
    batch) is skipped and counted in `WriteResult.duplicates`. Events whose
    key is `None` are always stored.

    `write` may be called from several threads at once.
    """

    def write(self, events: Sequence[StoredEvent]) -> WriteResult:
        """Store *events* atomically; report how many were new and how many duplicates."""
        ...

    def close(self) -> None:
        """Release connections and files. Called once, when the collector closes."""
        ...


@runtime_checkable
class SupportsForget(Protocol):
    """**Protocol:** a backend that can erase every event of a device or a user.

    Values are compared with what is stored: with pseudonymisation on, that is
    the pseudonym; `Collector.forget` and ``updater-stats forget`` take the raw
    id and pass both forms.
    """

    def forget(
        self,
        *,
        device_ids: Collection[str] = (),
        custom_ids: Collection[str] = (),
        app_id: str | None = None,
    ) -> int:
        """Delete every event whose ``device_id`` is in *device_ids* or whose ``custom_id``
        is in *custom_ids*, of the app *app_id* only when given; return how many were
        deleted. Later writes of the same events store them anew: nothing remembers their
        keys. Callers pass *app_id* only when they scope to an app, so a backend written
        before it existed still serves unscoped calls."""
        ...


@runtime_checkable
class SupportsPurge(Protocol):
    """**Protocol:** a backend that can delete old events (retention)."""

    def purge(self, *, older_than: dt.datetime, app_id: str | None = None) -> int:
        """Delete every event received (server clock) before *older_than*, of the app
        *app_id* only when given; return how many. *app_id* is passed only when given, as
        for `SupportsForget.forget`."""
        ...


@runtime_checkable
class SupportsDeadline(Protocol):
    """**Protocol:** a backend that can bound a write in time.

    The collector answers every request within its deadline whatever the
    backend does: a write still running then is answered 503 without waiting
    for it, and may still commit (see the reliability page). A backend with
    `write_by` keeps that from happening: it stops waiting (for a lock, a
    connection, the server) before *deadline* and fails the write, storing
    nothing, so that the 503 means "not stored".
    """

    def write_by(self, events: Sequence[StoredEvent], deadline: float) -> WriteResult:
        """`StorageBackend.write`, done by *deadline* (a `time.monotonic` value) or not at all.

        Raise `BackendError` (and store nothing) rather than wait past it.
        """
        ...
