"""The validation and size limits a collector applies, in one frozen value."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

import attrs

MiB = 1024 * 1024


def _positive(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value}")


def _frozen_lengths(lengths: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(lengths))


def _frozen_ids(ids: Iterable[str] | None) -> frozenset[str] | None:
    if ids is None:
        return None
    if isinstance(ids, str):
        raise TypeError("allowed_app_ids takes a collection of app ids, not one string")
    return frozenset(ids)


def _default_field_lengths() -> Mapping[str, int]:
    # The hosted service's limits (protocol, section 3), but for custom_id: the plugin puts
    # no cap on it (apps pass e-mail addresses), so it gets the general string cap.
    return MappingProxyType({"device_id": 36, "install_source": 64, "key_id": 20})


@attrs.frozen(kw_only=True)
class Policy:
    """What a collector accepts, and how much of it is stored. The defaults follow the protocol.

    The caps guard against abuse, never against real devices: a 413 makes a
    device drop its whole batch for good, so `max_body_bytes` lets a full
    200-event batch with every metadata value at its maximum through. The
    per-value caps never refuse an event: a value over its cap is stored cut
    at the cap, and the event notes which fields were cut
    (`StoredEvent.truncated`). Lengths are counted in code points.

    Attributes:
        max_body_bytes: Cap on the request body, and on its size once gunzipped.
        max_batch_events: Cap on the events in one array body (devices send 200 at most).
        field_lengths: Per-field character caps for the wire fields named.
        max_string_length: Character cap for every other string field.
        max_metadata_keys: Keys of ``metadata`` stored (the first ones).
        max_metadata_key_length: Characters stored of one ``metadata`` key.
        max_metadata_value_length: Characters stored of one ``metadata`` value.
        max_extra_fields: Unknown top-level fields stored per event (the first ones).
        max_extra_depth: Nesting stored inside one unknown field's value; deeper
            parts are stored as their JSON text.
        require_uuid_device_id: ``device_id`` must be a UUID (any case).
        require_reverse_domain_app_id: ``app_id`` must look like ``com.example.app``.
        accept_unknown_actions: Store actions this version does not know yet
            (the default: rejecting them loses data from newer plugins).
        allowed_app_ids: When set, only events of these ``app_id`` values are stored;
            the endpoint is public, and this keeps other apps' (or made-up) events out.
    """

    max_body_bytes: int = attrs.field(default=16 * MiB, validator=_positive)
    max_batch_events: int = attrs.field(default=1000, validator=_positive)
    field_lengths: Mapping[str, int] = attrs.field(
        factory=_default_field_lengths, converter=_frozen_lengths, eq=False
    )
    max_string_length: int = attrs.field(default=1024, validator=_positive)
    max_metadata_keys: int = attrs.field(default=30, validator=_positive)
    max_metadata_key_length: int = attrs.field(default=64, validator=_positive)
    max_metadata_value_length: int = attrs.field(default=2048, validator=_positive)
    max_extra_fields: int = attrs.field(default=64, validator=_positive)
    max_extra_depth: int = attrs.field(default=16, validator=_positive)
    require_uuid_device_id: bool = True
    require_reverse_domain_app_id: bool = True
    accept_unknown_actions: bool = True
    allowed_app_ids: frozenset[str] | None = attrs.field(default=None, converter=_frozen_ids)

    # A mapping is not hashable, so equality and hashing go through a sorted tuple of it.
    _field_lengths_key: tuple[tuple[str, int], ...] = attrs.field(init=False, repr=False)

    @_field_lengths_key.default
    def _key(self) -> tuple[tuple[str, int], ...]:
        return tuple(sorted(self.field_lengths.items()))

    def max_length(self, field: str) -> int:
        """The character cap for the wire field *field*."""
        return self.field_lengths.get(field, self.max_string_length)
