"""The record step: a validated event to the `StoredEvent` a backend stores.

In this order, each for a reason:

1. pseudonymise (`Privacy`), so that no raw identifier reaches storage, the key included;
2. key the event's whole content (`AppInfos.event_key`), before anything is cut, so that
   two events that differ only past a cap are still two events;
3. cut values over their caps (`Policy`) and note which: caps protect storage from
   abuse, and never refuse a real device's event (protocol, section 3).

Step 3 runs only for the rare event the validator flagged; the usual event is
keyed and passed on as it is.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ._models import WIRE_KEYS, AppInfos, StoredEvent
from ._policy import Policy
from ._wire import has_lone_surrogate
from .privacy import Privacy

__all__ = ["Recorder", "fit_to_caps"]

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_REPLACEMENT = "\ufffd"


def _fit(text: str, cap: int) -> str:
    """*text* as storable: lone surrogates replaced (no UTF-8 store holds them), cut at *cap*.

    Returns *text* itself when nothing changes, so that callers can tell by identity.
    """
    if has_lone_surrogate(text):
        text = _LONE_SURROGATE.sub(_REPLACEMENT, text)
    return text if len(text) <= cap else text[:cap]


def _mend_json(value: Any, depth_left: int) -> Any:
    """A decoded JSON value with its lone surrogates replaced and its depth bounded.

    A value nested deeper than allowed is kept as its JSON text from that depth on.
    Returns *value* itself when nothing changes.
    """
    if isinstance(value, str):
        return _fit(value, len(value))
    if isinstance(value, (list, dict)):
        if depth_left <= 0:
            # The text of a value no store could hold nested this deep: nothing is dropped.
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
            return _fit(text, len(text))
        if isinstance(value, list):
            items = [_mend_json(item, depth_left - 1) for item in value]
            same = all(new is old for new, old in zip(items, value, strict=True))
            return value if same else items
        mended = {
            _fit(key, len(key)): _mend_json(item, depth_left - 1) for key, item in value.items()
        }
        same = len(mended) == len(value) and all(
            key in value and mended[key] is value[key] for key in mended
        )
        return value if same else mended
    return value


def fit_to_caps(event: AppInfos, policy: Policy) -> tuple[AppInfos, tuple[str, ...]]:
    """*event* cut to *policy*'s caps, and the paths of what was cut (sorted).

    Text fields longer than their cap keep their first characters (code points);
    ``metadata`` keeps its first keys up to the cap, each key and value cut to
    theirs; unknown fields keep the first ones up to the cap, a value nested
    deeper than allowed is kept as its JSON text. Lone surrogates, which no
    UTF-8 store holds, become U+FFFD. Paths: the wire key (``custom_id``),
    ``metadata.<key>`` (the key as stored), ``metadata`` when keys were left
    out, ``extras`` when unknown fields were left out, ``extras.<key>``.
    """
    changes: dict[str, Any] = {}
    cut: set[str] = set()
    for attribute, key in WIRE_KEYS.items():
        value = getattr(event, attribute)
        if type(value) is str:
            fitted = _fit(value, policy.max_length(key))
            if fitted is not value:
                changes[attribute] = fitted
                cut.add(key)
    if event.metadata is not None:
        metadata, metadata_cut = _fit_mapping(
            event.metadata,
            "metadata",
            policy.max_metadata_keys,
            lambda key: _fit(key, policy.max_metadata_key_length),
            lambda value: _fit(value, policy.max_metadata_value_length),
        )
        cut |= metadata_cut
        if metadata is not event.metadata:
            changes["metadata"] = metadata
    if event.extras:
        extras, extras_cut = _fit_mapping(
            event.extras,
            "extras",
            policy.max_extra_fields,
            lambda key: _fit(key, len(key)),  # unknown fields' names have no cap: mended only
            lambda value: _mend_json(value, policy.max_extra_depth),
        )
        cut |= extras_cut
        if extras is not event.extras:
            changes["extras"] = extras
    if not changes:
        return event, ()
    return attrs.evolve(event, **changes), tuple(sorted(cut))


def _fit_mapping(
    mapping: Mapping[str, Any],
    name: str,
    max_items: int,
    fit_key: Callable[[str], str],
    fit_value: Callable[[Any], Any],
) -> tuple[Mapping[str, Any], set[str]]:
    """*mapping* (``metadata`` or the unknown fields, by *name*) within its caps, and the cuts.

    Its first *max_items* items are kept (*name* is noted when others are left out),
    each key and value fitted; a changed item is noted as ``<name>.<key as stored>``.
    Returns *mapping* itself when nothing changes.
    """
    cut: set[str] = set()
    items = list(mapping.items())
    if len(items) > max_items:
        items = items[:max_items]
        cut.add(name)
    fitted: dict[str, Any] = {}
    changed = len(items) != len(mapping)
    for key, value in items:
        new_key, new_value = fit_key(key), fit_value(value)
        if new_key is not key or new_value is not value:
            changed = True
            cut.add(f"{name}.{new_key}")
        # Two keys alike once fitted: the first one's value is kept.
        fitted.setdefault(new_key, new_value)
    return (fitted if changed else mapping), cut


@attrs.frozen
class Recorder:
    """Turns validated events into stored records for one collector's policy and privacy.

    Args:
        policy: The caps to cut over-long values to.
        privacy: Pseudonymisation applied first, or `None`.
    """

    policy: Policy
    privacy: Privacy | None = None
    _pseudonymise: Callable[[AppInfos], AppInfos] | None = attrs.field(init=False, repr=False)

    @_pseudonymise.default
    def _make_pseudonymise(self) -> Callable[[AppInfos], AppInfos] | None:
        privacy = self.privacy
        return None if privacy is None or not privacy.changes_events else privacy.apply

    def record(self, event: AppInfos, oversized: bool, received_at: dt.datetime) -> StoredEvent:
        """The record of *event*, received at *received_at*.

        *oversized* is the validator's flag: some value is over its cap or not
        storable as it is. Without it (nearly always) nothing is cut.
        """
        if self._pseudonymise is not None:
            event = self._pseudonymise(event)
        key = event.event_key
        if not oversized:
            return StoredEvent(event=event, received_at=received_at, key=key)
        event, truncated = fit_to_caps(event, self.policy)
        return StoredEvent(event=event, received_at=received_at, key=key, truncated=truncated)
