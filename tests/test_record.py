"""The record step: pseudonymise, key the whole content, then cut values over their caps."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from updater_stats import (
    Collector,
    MemoryBackend,
    Policy,
    Privacy,
    SQLiteBackend,
    Validator,
    parse_event,
)
from updater_stats._record import Recorder, fit_to_caps

from .conftest import VALID_EVENT

NOW = dt.datetime(2026, 11, 26, 12, tzinfo=dt.timezone.utc)


def record(wire: dict[str, Any], policy: Policy | None = None, privacy: Privacy | None = None):
    collector = Collector(MemoryBackend(), policy=policy or Policy(), privacy=privacy)
    collector.handle(json.dumps(wire).encode())
    (stored,) = collector.backend.events()  # type: ignore[attr-defined]
    collector.close()
    return stored


def test_the_usual_event_is_stored_whole_and_unflagged():
    stored = record({**VALID_EVENT, "custom_id": "someone@example.com"})

    assert stored.truncated == ()
    assert stored.event.to_wire() == {**VALID_EVENT, "custom_id": "someone@example.com"}


def test_custom_id_is_kept_whole_up_to_the_general_cap():
    email = "a.rather.long.name+updates@a-long-company-domain.example.com"
    assert len(email) > 36  # the hosted service's cap, not the plugin's

    assert record({**VALID_EVENT, "custom_id": email}).event.custom_id == email
    cut = record({**VALID_EVENT, "custom_id": "u" * 1500})
    assert cut.event.custom_id == "u" * 1024
    assert cut.truncated == ("custom_id",)


def test_every_kind_of_value_is_cut_at_its_cap_and_noted():
    wire = {
        **VALID_EVENT,
        "key_id": "k-123456",
        "channel": "production-eu-west",
        "metadata": {"stack": "line1\nline2", "long_key": "v", "third": "dropped"},
        "a": [[["three levels"]]],
        "b": "kept",
        "c": "dropped",
    }
    policy = Policy(
        field_lengths={"key_id": 4, "device_id": 36},  # the UUID keeps its 36 characters
        max_string_length=15,
        max_metadata_keys=2,
        max_metadata_key_length=3,
        max_metadata_value_length=5,
        max_extra_fields=2,
        max_extra_depth=2,
    )

    stored = record(wire, policy)

    event = stored.event
    assert event.key_id == "k-12"
    assert event.channel == "production-eu-w"
    assert event.metadata == {"sta": "line1", "lon": "v"}
    assert event.extras == {"a": [['["three levels"]']], "b": "kept"}
    assert stored.truncated == (
        "channel",
        "extras",
        "extras.a",
        "key_id",
        "metadata",
        "metadata.lon",
        "metadata.sta",
    )
    assert event.version_name == "1.4.2"  # under every cap: untouched


def test_a_value_just_at_its_cap_is_not_cut():
    stored = record({**VALID_EVENT, "key_id": "k" * 20, "metadata": {"m": "v" * 2048}})
    assert stored.truncated == ()
    assert stored.event.key_id == "k" * 20


def test_ios_text_cut_by_visible_characters_is_stored_up_to_the_code_point_cap():
    # Swift's prefix(2048) counts grapheme clusters: 2048 family emoji are 14 336 code points.
    stack = "\N{MAN}\N{ZERO WIDTH JOINER}\N{WOMAN}\N{ZERO WIDTH JOINER}\N{GIRL}" * 2048
    stored = record({**VALID_EVENT, "metadata": {"stack": stack}})

    assert stored.event.metadata == {"stack": stack[:2048]}
    assert stored.truncated == ("metadata.stack",)


def test_lone_surrogates_become_replacement_characters_and_are_noted():
    stored = record(
        {
            **VALID_EVENT,
            "custom_id": "a\ud800b",
            "metadata": {"k\udc00": "v\ud83d"},
            "extra": ["ok", {"deep\ud800": "\ud83d"}],
        }
    )

    assert stored.event.custom_id == "a\ufffdb"
    assert stored.event.metadata == {"k\ufffd": "v\ufffd"}
    assert stored.event.extras == {"extra": ["ok", {"deep\ufffd": "\ufffd"}]}
    assert stored.truncated == ("custom_id", "extras.extra", "metadata.k\ufffd")


def test_the_key_covers_what_was_cut():
    # Two stacks alike in their first 2048 characters are two events.
    first = {**VALID_EVENT, "metadata": {"stack": "x" * 2048 + "first"}}
    second = {**VALID_EVENT, "metadata": {"stack": "x" * 2048 + "second"}}
    backend = MemoryBackend()
    collector = Collector(backend)
    collector.handle(json.dumps([first, second, first]).encode())
    collector.close()

    stored = list(backend.events())
    assert len(stored) == 2
    assert stored[0].event.metadata == stored[1].event.metadata == {"stack": "x" * 2048}
    assert stored[0].key == parse_event(first).event_key
    assert stored[1].key == parse_event(second).event_key


def test_the_key_is_taken_after_pseudonymisation():
    privacy = Privacy(secret="s" * 32, custom_id="hash")
    wire = {**VALID_EVENT, "custom_id": "someone@example.com"}

    stored = record(wire, privacy=privacy)

    assert stored.event.custom_id != "someone@example.com"
    assert stored.key == stored.event.event_key  # no raw id went into the key
    assert stored.key != parse_event(wire).event_key


def test_fit_to_caps_leaves_a_fitting_event_as_it_is():
    event = parse_event(VALID_EVENT)
    assert fit_to_caps(event, Policy()) == (event, ())
    assert fit_to_caps(event, Policy())[0] is event


def test_a_recorder_without_the_flag_cuts_nothing():
    # The validator's flag is what makes the record step look: without it, nothing is cut.
    event = parse_event({**VALID_EVENT, "custom_id": "u" * 2000})
    recorder = Recorder(Policy())

    assert recorder.record(event, False, NOW).event.custom_id == "u" * 2000
    assert recorder.record(event, True, NOW).event.custom_id == "u" * 1024


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def test_the_validator_flags_what_needs_cutting():
    check = Validator().check
    assert check(VALID_EVENT)[1] is False  # type: ignore[index]
    for change in (
        {"custom_id": "u" * 1025},
        {"channel": "\ud800"},
        {"metadata": {"k": "v" * 2049}},
        {"metadata": {"k" * 65: "v"}},
        {"metadata": {str(i): "" for i in range(31)}},
        {**{f"x{i}": 1 for i in range(65)}},
        {"deep": _nested(17)},
    ):
        assert check({**VALID_EVENT, **change})[1] is True, change  # type: ignore[index]


@pytest.mark.parametrize("backend_name", ["sqlite", "memory"])
def test_cut_events_and_their_notes_are_stored_counted_and_exported(tmp_path, backend_name):
    backend = SQLiteBackend(tmp_path / "s.sqlite3") if backend_name == "sqlite" else MemoryBackend()
    collector = Collector(backend)
    body = json.dumps(
        [
            {**VALID_EVENT, "timestamp": 1, "custom_id": "u" * 2000},
            {**VALID_EVENT, "timestamp": 2},
        ]
    ).encode()

    answer = collector.handle(body)

    assert [r["status"] for r in answer["results"]] == ["ok", "ok"]
    stored = list(backend.events())  # type: ignore[attr-defined]
    assert [s.truncated for s in stored] == [("custom_id",), ()]
    assert collector.metrics.snapshot().truncated == {"com.example.app": 1}
    collector.close()
