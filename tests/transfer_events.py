"""Stored events for the copy and import tests: hostile content every backend must carry."""

from __future__ import annotations

import datetime as dt

import attrs

from updater_stats import StoredEvent
from updater_stats.testing import ODD_STRINGS, stored_event

T0 = dt.datetime(2026, 10, 1, 8, 0, tzinfo=dt.timezone.utc)


def at(minutes: int, micro: int = 0) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes, microseconds=micro)


# The largest metadata the default policy stores: 30 keys of 64 characters, values of 2048.
LARGEST_METADATA = {
    f"{index:02d}\u202e" + "k" * 61: ("\u202eright-to-left " + "v\x00" * 1024)[:2048]
    for index in range(30)
}


def holdable_events() -> list[StoredEvent]:
    """Hostile events that every built-in backend holds: NUL, RTL overrides, odd JSON, twins."""
    events = [
        stored_event(timestamp=1, received_at=at(0), metadata=LARGEST_METADATA),
        stored_event(
            timestamp=2,
            received_at=at(1),
            version_name="1.4.2\u202e\u2066evil\u2069\u202c",
            custom_id="a\x00b",
            channel="\u200f\u202bbeta",
            nested={"list": [1, -2, 2**70, 0, None, True, "", [], {}], "f": [0.1, -0.0, 1e16]},
            null_extra=None,
        ),
        # Unknown fields a device named like the export's own fields: kept apart, not lost.
        stored_event(
            timestamp=3,
            received_at=at(2),
            _key="sent by the device",
            _received_at=5,
            _truncated=[1],
            _shadowed={"x": 1},
        ),
        # Keyless twins: alike in every field, received together. Both are events.
        stored_event(timestamp=None, received_at=at(3), metadata={"n": "1"}),
        stored_event(timestamp=None, received_at=at(3), metadata={"n": "1"}),
        stored_event(timestamp=None, received_at=at(4), version_name="\x00", odd="\x10\x00"),
        # Stored as received: an id that is a pseudonym of any form, in any case.
        attrs.evolve(
            stored_event(timestamp=4, received_at=at(5)),
            event=attrs.evolve(
                stored_event(timestamp=4).event, device_id="PSEUDO-Ä\x00", app_id="not-a-domain"
            ),
        ),
        # A key of an older formula, which nothing could recompute.
        attrs.evolve(stored_event(timestamp=5, received_at=at(6)), key="legacy-key-v0"),
    ]
    events += [
        stored_event(
            timestamp=100 + index,
            received_at=at(10 + index),
            version_name=text,
            custom_id=text[:36],
            metadata={"v": text},
            odd=text,
        )
        for index, text in enumerate(ODD_STRINGS)
    ]
    return events


def cut_and_absent_events() -> list[StoredEvent]:
    """Events with fields stored cut and optional fields absent (SQLite schema 4 holds them)."""
    return [
        attrs.evolve(
            stored_event(timestamp=7, received_at=at(100), custom_id="c" * 1024),
            truncated=("custom_id", "metadata.stack"),
        ),
        stored_event(
            timestamp=None,
            received_at=at(101),
            platform=None,
            version_build=None,
            version_code=None,
            version_os=None,
            plugin_version=None,
            old_version_name=None,
        ),
    ]


def lone_surrogate_events() -> list[StoredEvent]:
    """Lone surrogates outside the identifying fields, as earlier releases stored them."""
    return [
        stored_event(
            timestamp=9,
            received_at=at(200),
            custom_id="\ud800",
            channel="x\udfffy",
            metadata={"k\udc00": "\ud83d"},
            odd=["\udbff", {"\ud800": "\udc00"}],
        ),
        stored_event(timestamp=None, received_at=at(201), install_source="\ud800"),
    ]
