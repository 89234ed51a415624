"""`AppInfos` from and to the wire: strict validation, losslessness, policy options."""

from __future__ import annotations

import datetime as dt
import json

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from updater_stats import (
    InvalidEventError,
    Policy,
    SQLiteBackend,
    StoredEvent,
    Validator,
    parse_event,
)

from .conftest import VALID_EVENT
from .wire_strategies import normalised, valid_wire_events


@given(valid_wire_events())
def test_canonical_events_round_trip_unchanged(wire):
    assert parse_event(wire).to_wire() == wire


@given(valid_wire_events(canonical=False))
def test_any_valid_event_round_trips_to_its_normal_form(wire):
    event = parse_event(wire)
    assert event.to_wire() == normalised(wire)
    assert parse_event(event.to_wire()) == event


@given(st.lists(valid_wire_events(canonical=False), min_size=1, max_size=5))
def test_sqlite_gives_back_exactly_what_was_accepted(wires):
    backend = SQLiteBackend(":memory:")
    now = dt.datetime(2026, 11, 26, tzinfo=dt.timezone.utc)
    records = [StoredEvent.from_event(parse_event(w), now) for w in wires]
    backend.write(records)
    unique = list({(r.key or id(r)): r for r in records}.values())

    assert list(backend.events()) == unique
    backend.close()


def test_attribute_names_are_pythonic_and_wire_names_are_kept():
    event = parse_event({**VALID_EVENT, "defaultChannel": "beta"})

    assert event.default_channel == "beta"
    assert event.to_wire()["defaultChannel"] == "beta"
    assert "default_channel" not in event.to_wire()


def test_snake_case_default_channel_on_the_wire_is_an_extra_not_the_field():
    event = parse_event({**VALID_EVENT, "default_channel": "beta"})

    assert event.default_channel is None
    assert event.extras == {"default_channel": "beta"}


def test_version_name_may_be_empty_and_builtin():
    assert parse_event({**VALID_EVENT, "version_name": ""}).version_name == ""
    assert parse_event({**VALID_EVENT, "version_name": "builtin"}).version_name == "builtin"


def test_composite_version_file_names_are_accepted():
    event = parse_event({**VALID_EVENT, "version_name": "1.4.2:assets/main.js"})
    assert event.version_name == "1.4.2:assets/main.js"


@pytest.mark.parametrize(
    "app_id", ["com.example.app", "io.ionic.starter", "com.my-company.App_2", "a.b"]
)
def test_reverse_domain_app_ids(app_id):
    assert parse_event({**VALID_EVENT, "app_id": app_id}).app_id == app_id


@pytest.mark.parametrize("app_id", ["", "example", "com..app", ".com.app", "com.app.", "com app.x"])
def test_bad_app_ids(app_id):
    with pytest.raises(InvalidEventError, match=r"reverse-domain .* @ \$\.app_id"):
        parse_event({**VALID_EVENT, "app_id": app_id})


@pytest.mark.parametrize(
    "device_id",
    ["", "abc", "0b5e5c1a93b44f0ea3a21f7f6f3b2d10", "0b5e5c1a-93b4-4f0e-a3a2-1f7f6f3b2d1g"],
)
def test_bad_device_ids(device_id):
    with pytest.raises(InvalidEventError, match=r"must be a UUID @ \$\.device_id"):
        parse_event({**VALID_EVENT, "device_id": device_id})


def test_policy_can_relax_identifier_formats():
    relaxed = Policy(require_uuid_device_id=False, require_reverse_domain_app_id=False)

    event = parse_event(
        {**VALID_EVENT, "app_id": "myapp", "device_id": "ANDROID-ID-42"}, policy=relaxed
    )

    assert (event.app_id, event.device_id) == ("myapp", "android-id-42")


def test_lengths_never_make_an_event_invalid():
    tight = Policy(field_lengths={"custom_id": 3, "version_name": 2}, max_string_length=4)
    wire = {
        **VALID_EVENT,
        "custom_id": "someone@example.com" * 100,
        "platform": "android-but-long",
        "metadata": {f"k{i}": "v" * 5000 for i in range(40)},
        **{f"x{i}": i for i in range(70)},
    }

    event = parse_event(wire, policy=tight)

    assert event.to_wire() == wire  # kept whole: caps are applied when the event is recorded
    assert tight.max_length("custom_id") == 3
    assert tight.max_length("device_id") == 4  # replaced mapping: others use the general cap


def test_custom_id_has_the_general_cap_by_default():
    assert Policy().max_length("custom_id") == Policy().max_string_length == 1024
    assert Policy().max_length("install_source") == 64


@pytest.mark.parametrize(
    "field", ["platform", "version_build", "version_code", "version_os", "plugin_version"]
)
def test_fields_that_do_not_identify_an_event_are_optional(field):
    wire = {key: value for key, value in VALID_EVENT.items() if key != field}

    event = parse_event(wire)

    assert getattr(event, field) is None
    assert event.to_wire() == wire
    assert parse_event({**wire, field: None}) == event
    assert parse_event({**wire, field: ""}).to_wire()[field] == ""


@pytest.mark.parametrize("field", ["app_id", "device_id", "action", "version_name"])
def test_identifying_fields_are_required(field):
    for wire in (
        {key: value for key, value in VALID_EVENT.items() if key != field},
        {**VALID_EVENT, field: None},
    ):
        with pytest.raises(InvalidEventError) as info:
            parse_event(wire)
        assert info.value.errors == [f"required field missing @ $.{field}"]
        assert info.value.fields == [field]


def test_policies_are_values():
    assert Policy() == Policy()
    assert hash(Policy(field_lengths={"a": 1})) == hash(Policy(field_lengths={"a": 1}))
    assert Policy(field_lengths={"a": 1}) != Policy(field_lengths={"a": 2})
    with pytest.raises(ValueError, match="max_batch_events must be at least 1"):
        Policy(max_batch_events=0)


def test_lone_surrogates_make_only_identifying_fields_invalid():
    with pytest.raises(InvalidEventError) as info:
        parse_event({**VALID_EVENT, "version_name": "1.0\ud800", "action": "\udc00"})
    # In the order of the protocol's field table.
    assert info.value.errors == [
        "must be valid Unicode text (it holds a lone surrogate) @ $.action",
        "must be valid Unicode text (it holds a lone surrogate) @ $.version_name",
    ]
    assert info.value.fields == ["action", "version_name"]

    # Elsewhere the event is valid; recording it mends the text (see test_record.py).
    wire = {
        **VALID_EVENT,
        "custom_id": "a\ud800",
        "metadata": {"k": "\udc00"},
        "extra": ["ok", {"deep": "\ud83d"}],
    }
    assert parse_event(wire).to_wire() == wire


def test_valid_astral_characters_are_kept():
    event = parse_event({**VALID_EVENT, "custom_id": "🚀👩‍💻", "metadata": {"e": "𝄞"}})
    assert event.custom_id == "🚀👩‍💻"


def test_wrong_json_types_are_invalid_and_named():
    with pytest.raises(InvalidEventError) as info:
        parse_event(
            {
                **VALID_EVENT,
                "platform": 3,
                "is_prod": "true",
                "timestamp": 1.5,
                "metadata": {"ok": "v", "n": 1, "gone": None},
                "custom_id": ["x"],
            }
        )

    # In the order of the protocol's field table, whatever the order on the wire.
    assert info.value.errors == [
        "must be a string, not a number @ $.platform",
        "must be a string, not an array @ $.custom_id",
        "must be true or false, not a string @ $.is_prod",
        "must be an integer (epoch milliseconds), not a number @ $.timestamp",
        "must be a string, not a number @ $.metadata.n",
    ]
    assert info.value.fields == ["platform", "custom_id", "is_prod", "timestamp", "metadata"]


def test_metadata_nulls_mean_absent():
    event = parse_event({**VALID_EVENT, "metadata": {"a": "1", "b": None}})
    assert event.metadata == {"a": "1"}


def test_the_validator_is_built_once_per_policy_and_says_so():
    policy = Policy(accept_unknown_actions=False)
    validator = Validator(policy)

    assert validator.policy is policy
    assert "accept_unknown_actions=False" in repr(validator)
    with pytest.raises(InvalidEventError, match=r"is not a known action @ \$\.action"):
        validator.parse({**VALID_EVENT, "action": "app_nav2"})
    assert validator.parse(VALID_EVENT).action == "set"


def test_error_paths_in_a_batch_are_absolute():
    outcome = Validator().check({**VALID_EVENT, "is_prod": 1}, root="$[7]")

    assert isinstance(outcome, InvalidEventError)
    assert outcome.errors == ["must be true or false, not a number @ $[7].is_prod"]


def test_event_key_is_stable_and_ignores_case_of_the_device():
    a = parse_event(VALID_EVENT)
    b = parse_event({**VALID_EVENT, "device_id": VALID_EVENT["device_id"].upper()})

    assert a.event_key == b.event_key
    # Pinned: a key that changed between releases would store re-sent batches twice.
    assert a.event_key == PINNED_KEY
    assert parse_event({**VALID_EVENT, "timestamp": None}).event_key is None


PINNED_KEY = "1ea1ca1c5664ad10cc64f888b788906f"


def test_event_key_separates_fields_unambiguously():
    a = parse_event({**VALID_EVENT, "version_name": "1.2", "old_version_name": "3"})
    b = parse_event({**VALID_EVENT, "version_name": "1.", "old_version_name": "23"})
    c = parse_event({**VALID_EVENT, "metadata": {"a": "b", "c": "d"}})
    d = parse_event({**VALID_EVENT, "metadata": {"a": "b\u0000c", "": "d"}})
    e = parse_event({**VALID_EVENT, "custom_id": ""})
    f = parse_event({**VALID_EVENT, "custom_id": None})
    g = parse_event({**VALID_EVENT, "x": "1"})
    h = parse_event({**VALID_EVENT, "x": 1})

    assert len({k.event_key for k in (a, b, c, d, e, g, h)}) == 7
    assert e.event_key != f.event_key  # "" is a value; null is absent


@given(valid_wire_events(canonical=False), st.randoms())
def test_event_key_ignores_key_order_escaping_and_nulls(wire, rng):
    items = list(wire.items())
    rng.shuffle(items)
    reordered = dict(items)
    if isinstance(reordered.get("metadata"), dict):
        meta = list(reordered["metadata"].items())
        rng.shuffle(meta)
        reordered["metadata"] = dict(meta)
    reordered.update({"channel": reordered.get("channel"), "stats_mode": None})
    body = json.dumps(reordered, ensure_ascii=rng.random() < 0.5).replace("/", "\\/")

    assert parse_event(json.loads(body)).event_key == parse_event(wire).event_key


def test_device_time_and_is_failure():
    event = parse_event({**VALID_EVENT, "action": "download_fail", "plugin_version": "7.0.0"})
    stored = StoredEvent.from_event(event, dt.datetime.now(dt.timezone.utc))

    assert stored.device_time == dt.datetime(2025, 11, 26, 0, 0, tzinfo=dt.timezone.utc)
    assert event.is_failure is False
    assert attrs.evolve(event, plugin_version="8.0.0").is_failure is True
    far = StoredEvent.from_event(attrs.evolve(event, timestamp=2**62), stored.received_at)
    assert far.device_time is None


def test_to_wire_output_is_json_ready():
    event = parse_event({**VALID_EVENT, "metadata": {"a": "b"}, "x": [1, {"y": None}]})
    assert json.loads(json.dumps(event.to_wire())) == event.to_wire()


def test_an_allow_list_keeps_other_apps_out():
    policy = Policy(allowed_app_ids=["com.example.app", "com.example.other"])

    assert parse_event(VALID_EVENT, policy=policy).app_id == "com.example.app"
    with pytest.raises(InvalidEventError) as info:
        parse_event({**VALID_EVENT, "app_id": "com.attacker.app"}, policy=policy)
    assert info.value.errors == ["is not an app this endpoint accepts @ $.app_id"]
    assert policy.allowed_app_ids == frozenset({"com.example.app", "com.example.other"})
    with pytest.raises(TypeError, match="not one string"):
        Policy(allowed_app_ids="com.example.app")  # type: ignore[arg-type]


def test_an_allow_list_works_without_the_reverse_domain_rule():
    policy = Policy(allowed_app_ids={"legacy"}, require_reverse_domain_app_id=False)

    assert parse_event({**VALID_EVENT, "app_id": "legacy"}, policy=policy).app_id == "legacy"
    with pytest.raises(InvalidEventError, match="is not an app this endpoint accepts"):
        parse_event(VALID_EVENT, policy=policy)


@given(valid_wire_events(canonical=False))
def test_event_key_is_the_same_with_or_without_orjson(wire):
    from updater_stats import _models  # noqa: PLC0415

    event = parse_event(wire)
    with_orjson = event.event_key
    saved, _models.orjson = _models.orjson, None
    try:
        without = event.event_key
    finally:
        _models.orjson = saved
    assert with_orjson == without
