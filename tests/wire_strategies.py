"""Hypothesis strategies for wire events, and what a valid one is stored as."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from updater_stats._models import WIRE_KEYS

NO_SURROGATES = st.characters(blacklist_categories=("Cs",))


def text(max_size: int, min_size: int = 0) -> st.SearchStrategy[str]:
    """Strings of valid code points (no lone surrogates)."""
    return st.text(NO_SURROGATES, min_size=min_size, max_size=max_size)


#: Anything JSON can hold, nested a little.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text(20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(text(8), children, max_size=4)
    ),
    max_leaves=12,
)

OPTIONAL_TEXT = {
    "old_version_name": 1024,
    "custom_id": 1024,
    "install_source": 64,
    "defaultChannel": 1024,
    "channel": 1024,
    "key_id": 20,
}
# Optional since only app_id, device_id, action and version_name identify an event.
UNIDENTIFYING = ("platform", "version_build", "version_code", "version_os", "plugin_version")


@st.composite
def valid_wire_events(  # noqa: C901 - one draw per field
    draw: st.DrawFn, canonical: bool = True
) -> dict[str, Any]:
    """Wire events every default policy accepts; canonical ones hold nothing to normalise."""
    device_id = str(draw(st.uuids()))
    if not canonical and draw(st.booleans()):
        device_id = device_id.upper()
    event: dict[str, Any] = {
        "app_id": draw(
            st.from_regex(r"[A-Za-z0-9_-]{1,12}(\.[A-Za-z0-9_-]{1,12}){1,3}", fullmatch=True)
        ),
        "device_id": device_id,
        "platform": draw(st.sampled_from(["android", "ios", "electron"]) | text(20, 1)),
        "action": draw(st.sampled_from(["set", "download_10", "app_nav2", "noNew"]) | text(30)),
        "version_name": draw(text(40)),
        "version_build": draw(text(20)),
        "version_code": draw(text(20)),
        "version_os": draw(text(20)),
        "plugin_version": draw(text(20)),
    }
    for key in draw(st.sets(st.sampled_from(UNIDENTIFYING), max_size=2)):
        del event[key]
    for key, limit in OPTIONAL_TEXT.items():
        if draw(st.booleans()):
            event[key] = draw(text(min(limit, 50)))
    for key in ("is_prod", "is_emulator"):
        if canonical or draw(st.booleans()):
            event[key] = draw(st.booleans())
    if draw(st.booleans()):
        event["timestamp"] = draw(st.integers(0, 2**63 - 1))
    if draw(st.booleans()):
        event["metadata"] = draw(st.dictionaries(text(64), text(100), max_size=5))
    extras = draw(
        st.dictionaries(
            text(16).filter(lambda k: k not in WIRE_KEYS.values()), json_values, max_size=3
        )
    )
    event.update(extras)
    if not canonical:
        nullable = [*OPTIONAL_TEXT, *UNIDENTIFYING, "timestamp", "metadata"]
        for key in draw(st.sets(st.sampled_from(nullable))):
            event[key] = None
    return event


@st.composite
def damaged_events(draw: st.DrawFn) -> Any:
    """Wire-shaped events with some fields replaced by anything JSON can hold."""
    event = draw(valid_wire_events(canonical=False))
    for key in draw(st.sets(st.sampled_from([*WIRE_KEYS.values()]), max_size=3)):
        if draw(st.booleans()):
            event[key] = draw(json_values)
        else:
            event.pop(key, None)
    return event


def normalised(event: dict[str, Any]) -> dict[str, Any]:
    """What the protocol says a stored event is, written plainly."""
    out = {k: v for k, v in event.items() if not (k in WIRE_KEYS.values() and v is None)}
    out["device_id"] = out["device_id"].lower()
    out.setdefault("is_prod", True)
    out.setdefault("is_emulator", False)
    return out
