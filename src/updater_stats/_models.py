"""The values that travel through updater-stats: one wire event, one stored record."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from operator import attrgetter
from typing import Any

import attrs

from ._actions import Action, counts_as_failure
from ._decode import orjson

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
#: The fields that identify an event: every event has them (protocol, section 3).
#: Every other field may be absent, and is `None` then.
REQUIRED_FIELDS: tuple[str, ...] = ("app_id", "device_id", "action", "version_name")


# Slotted, as attrs makes it: a dict class builds faster alone (1.0 µs against 1.7), but each
# event then brings a __dict__ more for the garbage collector to track, and on 200-event
# bodies the record step took 3.6 µs an event instead of 2.1.
@attrs.frozen(kw_only=True)
class AppInfos:
    """One stats event as a device sends it.

    Build one from the wire with `parse_event` (which validates) and turn it
    back with `to_wire` (lossless: unknown fields come back too). Only the
    identifying fields are required; every other field is `None` when the
    device did not send it (or sent `null`); an empty string stays an empty
    string.

    Attributes:
        action: The raw wire string, also for actions this version does not
            know; `known_action` gives the `Action` member or `None`.
        timestamp: The device clock in epoch milliseconds, on queued events only.
        metadata: String-to-string details (``duration_ms``, WebView errors, ...).
        extras: Top-level fields the protocol does not name yet, kept as sent.
    """

    app_id: str
    device_id: str
    platform: str | None = None
    action: str
    version_name: str
    old_version_name: str | None = None
    version_build: str | None = None
    version_code: str | None = None
    version_os: str | None = None
    plugin_version: str | None = None
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
        """Whether `action` is one of the actions this version knows."""
        return Action.parse(self.action) is not None

    @property
    def is_failure(self) -> bool:
        """A failure event, honouring old plugins' `download_fail` for "no update"."""
        return counts_as_failure(self.action, self.plugin_version)

    @property
    def event_key(self) -> str | None:
        """The key of this event's whole content, or `None` without a device `timestamp`.

        Two events are the same event only when their whole content is the same
        (protocol, section 6): the key covers every field, ``metadata`` and the
        unknown fields, so a batch re-sent after a lost answer yields the same
        keys (stores keep one copy), while a crash loop's events, alike but for
        their ``metadata``, all get keys of their own. See `content_key`.
        """
        if self.timestamp is None:
            return None
        return content_key(self)


# Every field but metadata and extras, in a fixed order: the key's first values.
_KEY_FIELDS = attrgetter(*(name for name in WIRE_KEYS if name != "metadata"))
# Written first into every key's material: a later change of the material changes this.
_KEY_FORMAT = "updater-stats content key 1"


def content_key(event: AppInfos) -> str:
    """A hash of *event*'s canonical content: 32 hex digits.

    The material is one JSON array: the format's name, every wire field in a
    fixed order (`None` for an absent one), ``metadata`` as its sorted pairs,
    and the unknown fields as JSON text with sorted keys, those whose value
    is ``null`` left out (``null`` means absent). The array holds only text,
    integers, booleans and ``null``, whose JSON text orjson and the standard
    library write alike (a test holds them to it), so the key does not depend
    on which is installed. Key order and escaping on the wire play no part:
    the key is computed from decoded values.
    """
    metadata = event.metadata
    extras = event.extras
    material = [
        _KEY_FORMAT,
        *_KEY_FIELDS(event),
        None if metadata is None else sorted(metadata.items()),
        _extras_text(extras) if extras else None,
    ]
    return hashlib.blake2b(_key_json(material), digest_size=16).hexdigest()


def _extras_text(extras: Mapping[str, Any]) -> str | None:
    present = {key: value for key, value in extras.items() if value is not None}
    if not present:
        return None
    # The standard library only, so that floats are written the same way on every install.
    return json.dumps(present, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _key_json(material: list[Any]) -> bytes:
    if orjson is not None:
        try:
            return orjson.dumps(material)  # type: ignore[no-any-return]
        except TypeError:  # a lone surrogate: the standard library writes it
            pass
    return _KEY_ENCODER(material).encode("utf-8", "surrogatepass")


_KEY_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@attrs.frozen(kw_only=True)
class StoredEvent:
    """What a storage backend receives: the event plus what the server knows about it.

    Attributes:
        event: The validated event.
        received_at: When the server received the body, timezone-aware UTC.
        key: The event's content key (`AppInfos.event_key` of the event as
            received): backends ignore a key they already hold.
        truncated: The fields stored cut at a cap, as paths (``custom_id``,
            ``metadata.stack``, ...), sorted; empty for nearly every event.
            See `Policy` for the caps.
    """

    event: AppInfos
    received_at: dt.datetime
    key: str | None
    truncated: tuple[str, ...] = ()

    @classmethod
    def from_event(cls, event: AppInfos, received_at: dt.datetime) -> StoredEvent:
        """The record of *event*, stored as it is, with its `AppInfos.event_key`."""
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
