"""Erasure and retention over any backend that supports them: `forget` and `purge`.

The backends compare stored values; these helpers take the raw ids a person
asks about and add their pseudonyms when a secret is known, so that a store
that was pseudonymised (or only partly, since the option was turned on) is
erased completely.
"""

from __future__ import annotations

import datetime as dt

from .backends import SupportsForget, SupportsPurge
from .exceptions import ConfigurationError
from .privacy import Privacy, normalize_device_id

__all__ = ["forget_events", "purge_events", "stored_forms"]


def stored_forms(
    privacy: Privacy | None, *, device_id: str | None, custom_id: str | None
) -> tuple[set[str], set[str]]:
    """Every value the ids may be stored as: as sent, and as pseudonyms when a secret is known."""
    device_ids: set[str] = set()
    custom_ids: set[str] = set()
    if device_id is not None:
        if not device_id:
            raise ValueError("device_id must not be empty")
        device_ids.add(normalize_device_id(device_id))
        if privacy is not None and privacy.secret is not None:
            device_ids.add(privacy.device_pseudonym(device_id))
    if custom_id is not None:
        if not custom_id:
            # "" is what apps send for "no user": it would erase every anonymous event.
            raise ValueError("custom_id must not be empty")
        custom_ids.add(custom_id)
        if privacy is not None and privacy.secret is not None:
            custom_ids.add(privacy.custom_pseudonym(custom_id))
    if not device_ids and not custom_ids:
        raise TypeError("forget() needs device_id=..., custom_id=..., or both")
    return device_ids, custom_ids


def forget_events(
    backend: object,
    *,
    device_id: str | None = None,
    custom_id: str | None = None,
    privacy: Privacy | None = None,
    app_id: str | None = None,
) -> int:
    """Delete every stored event of a device and/or a user, of *app_id* only when given.

    Raises:
        ConfigurationError: the backend cannot erase (it does not implement ``forget``).
        BackendError: storage failed.
    """
    device_ids, custom_ids = stored_forms(privacy, device_id=device_id, custom_id=custom_id)
    if not isinstance(backend, SupportsForget):
        raise ConfigurationError(
            f"{type(backend).__name__} cannot erase events: it has no forget() method",
            code="unsupported_operation",
        )
    if app_id is None:  # a backend written before the app filter existed still serves this
        return backend.forget(device_ids=device_ids, custom_ids=custom_ids)
    return backend.forget(device_ids=device_ids, custom_ids=custom_ids, app_id=app_id)


def purge_events(backend: object, *, older_than: dt.datetime, app_id: str | None = None) -> int:
    """Delete every event received before *older_than* (timezone-aware), of *app_id* only
    when given; return how many.

    Raises:
        ConfigurationError: the backend cannot purge (it does not implement ``purge``).
        BackendError: storage failed.
    """
    if older_than.tzinfo is None:
        raise ValueError("older_than must be timezone-aware (UTC)")
    if not isinstance(backend, SupportsPurge):
        raise ConfigurationError(
            f"{type(backend).__name__} cannot purge events: it has no purge() method",
            code="unsupported_operation",
        )
    if app_id is None:  # as in forget_events
        return backend.purge(older_than=older_than)
    return backend.purge(older_than=older_than, app_id=app_id)
