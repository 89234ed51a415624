"""The values that travel through updater-stats: one wire event, one stored record."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ._actions import Action, counts_as_failure
from ._decode import orjson

if TYPE_CHECKING:
    from ._policy import Policy


#: Attribute name -> wire key, in the order of the protocol's field table.
#: Only ``default_channel`` is spelled differently on the wire.
WIRE_KEYS: Mapping[str, str] = {
    "app_id": "app_id",
    "device_id": "device_id",
    "platform": "platform",
    "action": "action",
    "version_name": "version_name",
    "old_version_name": "old_version_name",
    "version_build": "version_build",
    "version_code": "version_code",
    "version_os": "version_os",
    "plugin_version": "plugin_version",
    "custom_id": "custom_id",
    "is_prod": "is_prod",
    "is_emulator": "is_emulator",
    "install_source": "install_source",
    "default_channel": "defaultChannel",
    "channel": "channel",
    "key_id": "key_id",
    "timestamp": "timestamp",
    "metadata": "metadata",
}


#: `AppInfos` attributes that every backend stores one per column, in wire-table order: all
#: but ``timestamp`` and ``metadata``, which get columns of their own kind, and ``extras``.
SCALAR_FIELDS: tuple[str, ...] = tuple(a for a in WIRE_KEYS if a not in {"timestamp", "metadata"})
#: The boolean ones among them; every other scalar field is text.
BOOLEAN_FIELDS: frozenset[str] = frozenset({"is_prod", "is_emulator"})


@attrs.frozen(kw_only=True)
class AppInfos:
    """One stats event as a device sends it.

    Build one from the wire with `AppInfos.from_wire` (which validates) and
    turn it back with `to_wire` (lossless: unknown fields come back too).
    Optional fields are `None` when the device did not send them (or sent
    `null`); an empty string stays an empty string.

    Attributes:
        action: The raw wire string, also for actions this version does not
            know; `known_action` gives the `Action` member or `None`.
        timestamp: The device clock in epoch milliseconds, on queued events only.
        metadata: String-to-string details (``duration_ms``, WebView errors, ...).
        extras: Top-level fields the protocol does not name yet, kept as sent.
    """

    app_id: str
    device_id: str
    platform: str
    action: str
    version_name: str
    version_build: str
    version_code: str
    version_os: str
    plugin_version: str
    old_version_name: str | None = None
    custom_id: str | None = None
    is_prod: bool = True
    is_emulator: bool = False
    install_source: str | None = None
    default_channel: str | None = None
    channel: str | None = None
    key_id: str | None = None
    timestamp: int | None = None
    metadata: Mapping[str, str] | None = None
    extras: Mapping[str, Any] = attrs.field(factory=dict)

    @classmethod
    def from_wire(cls, data: object, *, policy: Policy | None = None) -> AppInfos:
        """Validate one decoded JSON event.

        Raises:
            InvalidEventError: with every problem as ``"msg @ $.field"``.
        """
        from ._wire import structure_event  # noqa: PLC0415 - _wire builds on this module.

        return structure_event(data, policy)

    def to_wire(self) -> dict[str, Any]:
        """The event as JSON-ready wire data: wire names, absent fields left out, extras last."""
        wire: dict[str, Any] = {}
        for attribute, key in WIRE_KEYS.items():
            value = getattr(self, attribute)
            if value is not None:
                wire[key] = dict(value) if attribute == "metadata" else value
        wire.update(self.extras)
        return wire

    @property
    def known_action(self) -> Action | None:
        """The `Action` member for `action`, or `None` when it is not known yet."""
        return Action.parse(self.action)

    @property
    def action_known(self) -> bool:
        """Whether `action` is one of the known `Action` values."""
        return Action.parse(self.action) is not None

    @property
    def is_failure(self) -> bool:
        """A failure event, honouring old plugins' `download_fail` for "no update"."""
        return counts_as_failure(self.action, self.plugin_version)

    @property
    def event_key(self) -> str | None:
        """A deterministic key for events a device may send twice, or `None`.

        Queued events carry a device `timestamp`; a batch re-sent after a lost
        response then yields the same keys, and stores keep one copy. Events
        without a timestamp cannot be told apart from a genuine repeat, so
        they get no key and are always stored.
        """
        if self.timestamp is None:
            return None
        parts = (
            self.app_id,
            self.device_id,
            self.action,
            self.version_name,
            self.old_version_name or "",
            str(self.timestamp),
        )
        # The unit separator cannot be confused with text a field holds.
        material = "\x1f".join(parts).encode("utf-8", "surrogatepass")
        return hashlib.blake2b(material, digest_size=16).hexdigest()


def _slot_setter(name: str) -> Callable[[AppInfos, Any], None]:
    return AppInfos.__dict__[name].__set__  # type: ignore[no-any-return]


# (wire key, slot setter, default) for every attribute but `extras`, for `checked_wire_event`.
_WIRE_SETTERS = tuple(
    (WIRE_KEYS[field.name], _slot_setter(field.name), field.default)
    for field in attrs.fields(AppInfos)
    if field.name != "extras"
)
_SET_DEVICE_ID = _slot_setter("device_id")
_SET_EXTRAS = _slot_setter("extras")


def checked_wire_event(data: Mapping[str, Any], device_id: str) -> AppInfos:
    """The `AppInfos` for wire data already checked in full, without its ``__init__``.

    For validation's fast path only: *data* holds every required field, protocol
    fields only, each of the right type; *device_id* is its device id, normalised.
    attrs' ``__init__`` for a frozen class parses 20 keyword arguments and sets
    each attribute through ``object.__setattr__``: 2.7 µs per event, more than the
    checks. `AppInfos` has no validators, converters or hooks (a test keeps it so),
    so setting its slots directly builds an equal object in half the time.
    """
    event: AppInfos = object.__new__(AppInfos)
    for key, set_slot, default in _WIRE_SETTERS:
        set_slot(event, data.get(key, default))
    _SET_DEVICE_ID(event, device_id)
    _SET_EXTRAS(event, {})
    return event


@attrs.frozen(kw_only=True)
class StoredEvent:
    """What a storage backend receives: the event plus what the server knows about it.

    Attributes:
        event: The validated event.
        received_at: When the server received the body, timezone-aware UTC.
        key: `AppInfos.event_key`: backends ignore a key they already hold.
    """

    event: AppInfos
    received_at: dt.datetime
    key: str | None

    @classmethod
    def from_event(cls, event: AppInfos, received_at: dt.datetime) -> StoredEvent:
        """*event* as received at *received_at*, keyed by its `AppInfos.event_key`."""
        return cls(event=event, received_at=received_at, key=event.event_key)

    @property
    def action_known(self) -> bool:
        """Whether the event's action is a known `Action` (`AppInfos.action_known`)."""
        return self.event.action_known

    @property
    def device_time(self) -> dt.datetime | None:
        """The device clock as UTC, or `None` without a timestamp or outside datetime's range."""
        if self.event.timestamp is None:
            return None
        try:
            return dt.datetime.fromtimestamp(self.event.timestamp / 1000, tz=dt.timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None


@attrs.frozen
class WriteResult:
    """What one `StorageBackend.write` did: events newly stored and known keys ignored.

    Attributes:
        duplicate_indexes: Optional: the positions in the batch of the duplicates, so that
            intake metrics can count them per app when one write holds several apps.
            Not part of equality: two results that count the same are equal.
    """

    inserted: int
    duplicates: int = 0
    duplicate_indexes: tuple[int, ...] | None = attrs.field(default=None, eq=False, kw_only=True)


@attrs.frozen
class Response:
    """A complete HTTP answer for a stats request: what `Collector.respond` returns.

    Attributes:
        status_code: 200, or the status of the `UpdaterStatsError` raised.
        body: The JSON object to send.
    """

    status_code: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        """Whether the answer is a 200."""
        return self.status_code == 200

    def json(self) -> bytes:
        """The body as compact UTF-8 JSON, ready to send with ``Content-Type: application/json``."""
        if self.body == _OK_BODY:
            return _OK_JSON  # nearly every answer: encoded once, not once per request
        return _compact_json(self.body)


def _compact_json(body: dict[str, Any]) -> bytes:
    # A 200-event batch's answer holds 200 results: orjson encodes it ten times faster, to
    # the same bytes (compact, UTF-8; answers hold no floats). It refuses what it cannot
    # encode alike (a lone surrogate, say); the standard library then decides.
    if orjson is not None:
        try:
            return orjson.dumps(body)  # type: ignore[no-any-return]
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            pass
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


_OK_BODY: dict[str, Any] = {"status": "ok"}
_OK_JSON = _compact_json(_OK_BODY)
