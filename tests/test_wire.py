"""`AppInfos` from and to the wire: strict validation, losslessness, policy options."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from updater_stats import AppInfos, InvalidEventError, Policy, SQLiteBackend, StoredEvent
from updater_stats._models import WIRE_KEYS
from updater_stats._wire import validate_event

from .conftest import VALID_EVENT

NO_SURROGATES = st.characters(blacklist_categories=("Cs",))


def text(max_size: int, min_size: int = 0) -> st.SearchStrategy[str]:
    return st.text(NO_SURROGATES, min_size=min_size, max_size=max_size)


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
    "custom_id": 36,
    "install_source": 64,
    "defaultChannel": 1024,
    "channel": 1024,
    "key_id": 20,
}


@st.composite
def valid_wire_events(draw: st.DrawFn, canonical: bool = True) -> dict[str, Any]:
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
        for key in draw(st.sets(st.sampled_from([*OPTIONAL_TEXT, "timestamp", "metadata"]))):
            event[key] = None
    return event


def normalised(event: dict[str, Any]) -> dict[str, Any]:
    """What the protocol says a stored event is, written plainly."""
    out = {k: v for k, v in event.items() if not (k in WIRE_KEYS.values() and v is None)}
    out["device_id"] = out["device_id"].lower()
    out.setdefault("is_prod", True)
    out.setdefault("is_emulator", False)
    return out


@given(valid_wire_events())
def test_canonical_events_round_trip_unchanged(wire):
    assert AppInfos.from_wire(wire).to_wire() == wire


@given(valid_wire_events(canonical=False))
def test_any_valid_event_round_trips_to_its_normal_form(wire):
    event = AppInfos.from_wire(wire)
    assert event.to_wire() == normalised(wire)
    assert AppInfos.from_wire(event.to_wire()) == event


@given(st.lists(valid_wire_events(canonical=False), min_size=1, max_size=5))
def test_sqlite_gives_back_exactly_what_was_accepted(wires):
    backend = SQLiteBackend(":memory:")
    now = dt.datetime(2026, 11, 26, tzinfo=dt.timezone.utc)
    records = [StoredEvent.from_event(AppInfos.from_wire(w), now) for w in wires]
    backend.write(records)
    unique = list({(r.key or id(r)): r for r in records}.values())

    assert list(backend.events()) == unique
    backend.close()


def test_attribute_names_are_pythonic_and_wire_names_are_kept():
    event = AppInfos.from_wire({**VALID_EVENT, "defaultChannel": "beta"})

    assert event.default_channel == "beta"
    assert event.to_wire()["defaultChannel"] == "beta"
    assert "default_channel" not in event.to_wire()


def test_snake_case_default_channel_on_the_wire_is_an_extra_not_the_field():
    event = AppInfos.from_wire({**VALID_EVENT, "default_channel": "beta"})

    assert event.default_channel is None
    assert event.extras == {"default_channel": "beta"}


def test_version_name_may_be_empty_and_builtin():
    assert AppInfos.from_wire({**VALID_EVENT, "version_name": ""}).version_name == ""
    assert AppInfos.from_wire({**VALID_EVENT, "version_name": "builtin"}).version_name == "builtin"


def test_composite_version_file_names_are_accepted():
    event = AppInfos.from_wire({**VALID_EVENT, "version_name": "1.4.2:assets/main.js"})
    assert event.version_name == "1.4.2:assets/main.js"


@pytest.mark.parametrize(
    "app_id", ["com.example.app", "io.ionic.starter", "com.my-company.App_2", "a.b"]
)
def test_reverse_domain_app_ids(app_id):
    assert AppInfos.from_wire({**VALID_EVENT, "app_id": app_id}).app_id == app_id


@pytest.mark.parametrize("app_id", ["", "example", "com..app", ".com.app", "com.app.", "com app.x"])
def test_bad_app_ids(app_id):
    with pytest.raises(InvalidEventError, match=r"reverse-domain .* @ \$\.app_id"):
        AppInfos.from_wire({**VALID_EVENT, "app_id": app_id})


@pytest.mark.parametrize(
    "device_id",
    ["", "abc", "0b5e5c1a93b44f0ea3a21f7f6f3b2d10", "0b5e5c1a-93b4-4f0e-a3a2-1f7f6f3b2d1g"],
)
def test_bad_device_ids(device_id):
    with pytest.raises(InvalidEventError, match=r"must be a UUID @ \$\.device_id"):
        AppInfos.from_wire({**VALID_EVENT, "device_id": device_id})


def test_policy_can_relax_identifier_formats():
    relaxed = Policy(require_uuid_device_id=False, require_reverse_domain_app_id=False)

    event = AppInfos.from_wire(
        {**VALID_EVENT, "app_id": "myapp", "device_id": "ANDROID-ID-42"}, policy=relaxed
    )

    assert (event.app_id, event.device_id) == ("myapp", "android-id-42")


def test_policy_can_change_field_lengths():
    roomy = Policy(field_lengths={"custom_id": 200})

    event = AppInfos.from_wire({**VALID_EVENT, "custom_id": "u" * 200}, policy=roomy)

    assert len(event.custom_id or "") == 200
    assert roomy.max_length("device_id") == 1024  # replaced mapping: others use the default cap


def test_policies_are_values():
    assert Policy() == Policy()
    assert hash(Policy(field_lengths={"a": 1})) == hash(Policy(field_lengths={"a": 1}))
    assert Policy(field_lengths={"a": 1}) != Policy(field_lengths={"a": 2})
    with pytest.raises(ValueError, match="max_batch_events must be at least 1"):
        Policy(max_batch_events=0)


def test_lone_surrogates_are_field_errors_everywhere():
    with pytest.raises(InvalidEventError) as info:
        AppInfos.from_wire(
            {
                **VALID_EVENT,
                "custom_id": "a\ud800",
                "metadata": {"k": "\udc00"},
                "extra": ["ok", {"deep": "\ud83d"}],
            }
        )

    assert info.value.errors == [
        "must be valid Unicode text (it holds a lone surrogate) @ $.custom_id",
        "must be valid Unicode text (it holds a lone surrogate) @ $.metadata.k",
        "holds a lone surrogate @ $.extra",
    ]
    assert info.value.fields == ["custom_id", "metadata", "extras"]


def test_valid_astral_characters_are_kept():
    event = AppInfos.from_wire({**VALID_EVENT, "custom_id": "🚀👩‍💻", "metadata": {"e": "𝄞"}})
    assert event.custom_id == "🚀👩‍💻"


def test_extras_are_capped_in_count_and_depth():
    too_many = {f"x{i}": i for i in range(65)}
    with pytest.raises(InvalidEventError, match="at most 64 unknown fields are kept, got 65 @ \\$"):
        AppInfos.from_wire({**VALID_EVENT, **too_many})

    deep: Any = "leaf"
    for _ in range(17):
        deep = [deep]
    with pytest.raises(InvalidEventError, match=r"is nested too deeply @ \$\.deep"):
        AppInfos.from_wire({**VALID_EVENT, "deep": deep})


def test_error_paths_in_a_batch_are_absolute():
    outcome = validate_event({**VALID_EVENT, "is_prod": 1}, Policy(), root="$[7]")

    assert isinstance(outcome, InvalidEventError)
    assert outcome.errors == ["must be true or false, not a number @ $[7].is_prod"]


def test_event_key_is_stable_and_ignores_case_of_the_device():
    a = AppInfos.from_wire(VALID_EVENT)
    b = AppInfos.from_wire({**VALID_EVENT, "device_id": VALID_EVENT["device_id"].upper()})

    assert a.event_key == b.event_key
    # Pinned: a key that changed between releases would store re-sent batches twice.
    assert a.event_key == "a053a2db25552e81e7ba86a8992a0ad9"
    assert AppInfos.from_wire({**VALID_EVENT, "timestamp": None}).event_key is None


def test_event_key_separates_fields_unambiguously():
    a = AppInfos.from_wire({**VALID_EVENT, "version_name": "1.2", "old_version_name": "3"})
    b = AppInfos.from_wire({**VALID_EVENT, "version_name": "1.", "old_version_name": "23"})

    assert a.event_key != b.event_key


def test_device_time_and_is_failure():
    event = AppInfos.from_wire(
        {**VALID_EVENT, "action": "download_fail", "plugin_version": "7.0.0"}
    )
    stored = StoredEvent.from_event(event, dt.datetime.now(dt.timezone.utc))

    assert stored.device_time == dt.datetime(2025, 11, 26, 0, 0, tzinfo=dt.timezone.utc)
    assert event.is_failure is False
    assert attrs.evolve(event, plugin_version="8.0.0").is_failure is True
    far = StoredEvent.from_event(attrs.evolve(event, timestamp=2**62), stored.received_at)
    assert far.device_time is None


def test_to_wire_output_is_json_ready():
    event = AppInfos.from_wire({**VALID_EVENT, "metadata": {"a": "b"}, "x": [1, {"y": None}]})
    assert json.loads(json.dumps(event.to_wire())) == event.to_wire()


def test_an_allow_list_keeps_other_apps_out():
    policy = Policy(allowed_app_ids=["com.example.app", "com.example.other"])

    assert AppInfos.from_wire(VALID_EVENT, policy=policy).app_id == "com.example.app"
    with pytest.raises(InvalidEventError) as info:
        AppInfos.from_wire({**VALID_EVENT, "app_id": "com.attacker.app"}, policy=policy)
    assert info.value.errors == ["is not an app this endpoint accepts @ $.app_id"]
    assert policy.allowed_app_ids == frozenset({"com.example.app", "com.example.other"})
    with pytest.raises(TypeError, match="not one string"):
        Policy(allowed_app_ids="com.example.app")  # type: ignore[arg-type]


def test_an_allow_list_works_without_the_reverse_domain_rule():
    policy = Policy(allowed_app_ids={"legacy"}, require_reverse_domain_app_id=False)

    assert AppInfos.from_wire({**VALID_EVENT, "app_id": "legacy"}, policy=policy).app_id == "legacy"
    with pytest.raises(InvalidEventError, match="is not an app this endpoint accepts"):
        AppInfos.from_wire(VALID_EVENT, policy=policy)
