"""Validation's fast path: the usual event, checked in one loop, must mean what the converter says.

The fast path may decline any event (the converter then decides), but what it
accepts, the converter must accept with an equal result.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from updater_stats import AppInfos, InvalidEventError, Policy
from updater_stats._models import WIRE_KEYS, checked_wire_event
from updater_stats._wire import _build_validators, _validate_in_full, validate_event

from .conftest import VALID_EVENT, fixture_bytes
from .test_wire import json_values, valid_wire_events

POLICIES = [
    Policy(),
    Policy(require_uuid_device_id=False, require_reverse_domain_app_id=False),
    Policy(accept_unknown_actions=False),
    Policy(allowed_app_ids={"com.example.app"}),
    Policy(field_lengths={"device_id": 36, "version_name": 5, "defaultChannel": 3}),
    Policy(max_metadata_keys=1, max_metadata_key_length=3, max_metadata_value_length=4),
]

# Values that break one rule each, and values that are fine but unusual.
odd_values = st.one_of(
    json_values,
    st.sampled_from(["", "x" * 1025, "é", "\ud800", "ÉCLAIR", "com.example.app", "set"]),
    st.integers(-1, 2**64),
    st.dictionaries(st.text(max_size=5), st.text(max_size=6) | st.integers(), max_size=3),
)


@st.composite
def near_valid_events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event with a few fields removed, or given odd values."""
    event = draw(valid_wire_events(canonical=False))
    for key in draw(st.sets(st.sampled_from(sorted(WIRE_KEYS.values())), max_size=3)):
        if draw(st.booleans()):
            event.pop(key, None)
        else:
            event[key] = draw(odd_values)
    return event


def assert_same_as_in_full(data: Any, policy: Policy) -> AppInfos | None:
    validators = _build_validators(policy)
    in_full = _validate_in_full(data, validators.converter, policy, "$")
    fast = validators.fast_path(data) if type(data) is dict else None
    if fast is not None:
        assert not isinstance(in_full, InvalidEventError), (data, in_full.errors)
        assert fast == in_full
        assert fast.to_wire() == in_full.to_wire()
        assert fast.event_key == in_full.event_key
    assert validate_event(data, policy) == in_full or isinstance(in_full, InvalidEventError)
    return fast


@settings(max_examples=400)
@given(near_valid_events(), st.sampled_from(POLICIES))
def test_the_fast_path_accepts_only_what_the_converter_accepts_and_builds_the_same(data, policy):
    assert_same_as_in_full(data, policy)


@given(valid_wire_events(canonical=False), st.sampled_from(POLICIES))
def test_validate_event_answers_as_the_converter_does(data, policy):
    validators = _build_validators(policy)
    outcome = validate_event(data, policy)
    in_full = _validate_in_full(data, validators.converter, policy, "$")
    if isinstance(in_full, InvalidEventError):
        assert isinstance(outcome, InvalidEventError)
        assert outcome.errors == in_full.errors
    else:
        assert outcome == in_full


def test_events_as_plugins_send_them_take_the_fast_path():
    # What keeps intake fast: if these fall back to the converter, it still works, slower.
    fast_path = _build_validators(Policy()).fast_path
    events = [VALID_EVENT, {**VALID_EVENT, "device_id": VALID_EVENT["device_id"].upper()}]
    for name in ("android_batch", "ios_batch"):
        events += json.loads(fixture_bytes(name))
    # (electron_single.json carries fields the protocol does not name: the converter keeps them.)
    for name in ("old_plugin_single", "android_worker_single"):
        events.append(json.loads(fixture_bytes(name)))
    assert len(events) > 10
    for event in events:
        assert fast_path(event) is not None, event


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"is_prod": "true"}, "a string for a boolean"),
        ({"timestamp": 1.5}, "a number that is not an integer"),
        ({"timestamp": 2**63}, "past 64 bits"),
        ({"platform": "é"}, "non-ASCII text: the converter checks it for lone surrogates"),
        ({"metadata": {"k": 1}}, "a metadata value that is not a string"),
        ({"device_id": "not-a-uuid"}, "a device id the policy refuses"),
        ({"key_id": "k" * 21}, "longer than its field's cap"),
        ({"channel": None}, "a null: the field is absent"),
        ({"bundle_id": "b_1"}, "a field the protocol does not name, kept in extras"),
        ({"metadata": None}, "a null metadata"),
    ],
)
def test_anything_unusual_is_left_to_the_converter(change: dict[str, Any], why: str):
    data = {**VALID_EVENT, **change}
    assert _build_validators(Policy()).fast_path(data) is None, why
    assert_same_as_in_full(data, Policy())


def test_a_missing_required_field_is_left_to_the_converter():
    data = {k: v for k, v in VALID_EVENT.items() if k != "version_os"}
    assert _build_validators(Policy()).fast_path(data) is None
    outcome = validate_event(data, Policy())
    assert isinstance(outcome, InvalidEventError)
    assert outcome.errors == ["required field missing @ $.version_os"]


def test_app_infos_keeps_no_init_logic_that_the_fast_constructor_would_skip():
    # `checked_wire_event` sets the slots directly: a validator, converter or hook added to
    # AppInfos would be skipped on the fast path. This test fails first.
    assert not hasattr(AppInfos, "__attrs_post_init__")
    assert not hasattr(AppInfos, "__attrs_pre_init__")
    for field in attrs.fields(AppInfos):
        assert field.validator is None, field.name
        assert field.converter is None, field.name
        assert field.on_setattr in (None, attrs.setters.NO_OP), field.name
    # and the constructor's table covers every attribute.
    assert {f.name for f in attrs.fields(AppInfos)} == {*WIRE_KEYS, "extras"}


def test_the_fast_constructor_builds_what_init_builds():
    data = {**VALID_EVENT, "defaultChannel": "beta", "metadata": {"a": "b"}, "timestamp": 7}
    built = checked_wire_event(data, data["device_id"])
    by_init = AppInfos(
        **{name: data[key] for name, key in WIRE_KEYS.items() if key in data},
    )
    assert built == by_init
    assert attrs.asdict(built) == attrs.asdict(by_init)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        built.action = "get"  # type: ignore[misc]
