"""The behaviour table of the core issue, row by row, on every built-in backend."""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import updater_stats
from updater_stats import (
    Action,
    BackendError,
    Collector,
    InvalidBodyError,
    InvalidEventError,
    MemoryBackend,
    PayloadTooLargeError,
    Policy,
    StoredEvent,
    UpdaterStatsError,
    WriteResult,
)

from .conftest import body, fixture_bytes, load_fixture, stored


def wire_of(events: list[StoredEvent]) -> list[dict[str, Any]]:
    return [e.event.to_wire() for e in events]


def test_one_valid_event_is_stored(collector, make_event):
    event = make_event()

    assert collector.handle(body(event)) == {"status": "ok"}

    assert wire_of(stored(collector.backend)) == [event]


def test_array_answers_per_item_and_stores_the_good_ones(collector, make_event):
    good_a = make_event(action="download_complete", timestamp=1)
    bad = make_event(device_id=12, timestamp=2)
    good_b = make_event(action="set", timestamp=3)

    answer = collector.handle(body([good_a, bad, good_b]))

    assert answer["status"] == "ok"
    ok_a, error, ok_b = answer["results"]
    assert ok_a == {"status": "ok", "index": 0}
    assert ok_b == {"status": "ok", "index": 2}
    assert error["status"] == "error"
    assert error["index"] == 1
    assert error["error"] == "invalid_event"
    assert "$[1].device_id" in error["message"]
    assert wire_of(stored(collector.backend)) == [good_a, good_b]


def test_array_of_only_bad_items_is_still_200(collector):
    answer = collector.handle(body([1, "x", None, []]))

    assert [r["status"] for r in answer["results"]] == ["error"] * 4
    assert [r["index"] for r in answer["results"]] == [0, 1, 2, 3]
    assert stored(collector.backend) == []


def test_empty_array_stores_nothing(collector):
    assert collector.handle(b"[]") == {"status": "ok", "results": []}
    assert stored(collector.backend) == []


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"", "invalid_json"),
        (b"   \n", "invalid_json"),
        (b'{"app_id": "com.example.app"', "invalid_json"),
        (b"\xff\xfe{}", "invalid_utf8"),
        ('{"a": "é"}'.encode("latin-1"), "invalid_utf8"),
        ('{"a": 1}'.encode("utf-16"), "invalid_utf8"),
        (b"42", "invalid_body"),
        (b'"an event"', "invalid_body"),
        (b"null", "invalid_body"),
        (b"true", "invalid_body"),
        (b"NaN", "invalid_json"),
        (b'{"timestamp": Infinity}', "invalid_json"),
        (b"[1e999]", "invalid_json"),
        (b"[" * 100_000 + b"]" * 100_000, "invalid_json"),
    ],
)
def test_unusable_body_is_400_naming_the_problem(collector, raw, code):
    with pytest.raises(InvalidBodyError) as info:
        collector.handle(raw)

    assert info.value.status_code == 400
    assert info.value.body["error"] == code
    assert info.value.body["message"]
    assert stored(collector.backend) == []


def test_one_invalid_event_lists_every_problem(collector, make_event, remove):
    event = make_event(
        app_id="not a domain",
        device_id="ABC",
        is_prod="false",
        version_code=230,
        defaultChannel=["production"],
        version_name=remove,
        metadata={"duration_ms": 1500},
    )

    with pytest.raises(InvalidEventError) as info:
        collector.handle(body(event))

    error = info.value
    assert error.status_code == 400
    assert error.body["error"] == "invalid_event"
    assert sorted(error.body["moreInfo"]["errors"]) == sorted(
        [
            "must be a reverse-domain id like com.example.app @ $.app_id",
            "must be a UUID @ $.device_id",
            "must be true or false, not a string @ $.is_prod",
            "must be a string, not a number @ $.version_code",
            "must be a string, not an array @ $.defaultChannel",
            "required field missing @ $.version_name",
            "must be a string, not a number @ $.metadata.duration_ms",
        ]
    )
    assert set(error.body["moreInfo"]["fields"]) == {
        "app_id",
        "device_id",
        "is_prod",
        "version_code",
        "defaultChannel",
        "version_name",
        "metadata",
    }
    assert stored(collector.backend) == []


def test_unknown_action_and_extra_fields_are_stored_and_marked(collector, make_event):
    event = make_event(action="app_nav2", stats_mode="batch", bundle_id="b_1", nested={"a": [1]})

    assert collector.handle(body(event)) == {"status": "ok"}

    (record,) = stored(collector.backend)
    assert record.event.action == "app_nav2"
    assert record.action_known is False
    assert record.event.known_action is None
    assert record.event.extras == {"stats_mode": "batch", "bundle_id": "b_1", "nested": {"a": [1]}}
    assert record.event.to_wire() == event


def test_known_action_is_marked_known(collector, make_event):
    collector.handle(body(make_event(action="needPlanUpgrade")))

    (record,) = stored(collector.backend)
    assert record.action_known is True
    assert record.event.known_action is Action.NEED_PLAN_UPGRADE


def test_unknown_actions_can_be_refused_by_policy(backend, make_event):
    strict = Collector(backend, policy=Policy(accept_unknown_actions=False))

    with pytest.raises(InvalidEventError, match=r"is not a known action @ \$\.action"):
        strict.handle(body(make_event(action="app_nav2")))


def test_null_optional_field_is_the_same_as_absent(collector, make_event, remove):
    with_nulls = make_event(
        custom_id=None,
        channel=None,
        metadata=None,
        timestamp=None,
        old_version_name=None,
        is_prod=None,
        is_emulator=None,
        defaultChannel=None,
    )
    absent = make_event(
        custom_id=remove,
        channel=remove,
        metadata=remove,
        timestamp=remove,
        old_version_name=remove,
        is_prod=remove,
        is_emulator=remove,
        defaultChannel=remove,
    )

    collector.handle(body(with_nulls))
    collector.handle(body(absent))

    first, second = stored(collector.backend)
    assert first.event == second.event
    assert first.event.custom_id is None
    assert first.event.timestamp is None


def test_null_for_a_required_field_is_missing(collector, make_event):
    with pytest.raises(InvalidEventError, match=r"required field missing @ \$\.app_id"):
        collector.handle(body(make_event(app_id=None)))


def test_missing_is_prod_and_is_emulator_default_to_true_and_false(collector, make_event, remove):
    collector.handle(body(make_event(is_prod=remove, is_emulator=remove)))

    (record,) = stored(collector.backend)
    assert record.event.is_prod is True
    assert record.event.is_emulator is False


def test_device_id_is_stored_lower_case(collector, make_event):
    collector.handle(body(make_event(device_id="0B5E5C1A-93B4-4F0E-A3A2-1F7F6F3B2D10")))

    (record,) = stored(collector.backend)
    assert record.event.device_id == "0b5e5c1a-93b4-4f0e-a3a2-1f7f6f3b2d10"


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("is_prod", "false", "must be true or false, not a string"),
        ("is_prod", 0, "must be true or false, not a number"),
        ("is_emulator", "true", "must be true or false, not a string"),
        ("is_emulator", 1, "must be true or false, not a number"),
        ("version_code", 230, "must be a string, not a number"),
        ("version_name", 1.5, "must be a string, not a number"),
        ("version_name", True, "must be a string, not a boolean"),
        ("custom_id", {"id": 1}, "must be a string, not an object"),
        ("timestamp", "1764115200000", "must be an integer (epoch milliseconds), not a string"),
        ("timestamp", 1764115200000.5, "must be an integer (epoch milliseconds), not a number"),
        ("timestamp", True, "must be an integer (epoch milliseconds), not a boolean"),
        ("timestamp", -1, "must be between 0 and 9223372036854775807"),
        ("timestamp", 2**64, "must be between 0 and 9223372036854775807"),
        ("metadata", "duration_ms=1", "must be an object of strings, not a string"),
        ("metadata", ["a"], "must be an object of strings, not an array"),
        ("defaultChannel", False, "must be a string, not a boolean"),
    ],
)
def test_wrong_types_are_field_errors_never_coerced(collector, make_event, field, value, expected):
    with pytest.raises(InvalidEventError) as info:
        collector.handle(body(make_event(**{field: value})))

    assert info.value.errors == [f"{expected} @ $.{field}"]
    assert info.value.fields == [field]
    assert stored(collector.backend) == []


@pytest.mark.parametrize(
    ("field", "limit"),
    [("custom_id", 1024), ("install_source", 64), ("key_id", 20), ("version_name", 1024)],
)
def test_over_long_strings_are_stored_cut_and_noted(collector, make_event, field, limit):
    collector.handle(body(make_event(**{field: "x" * limit, "timestamp": 1})))  # at the cap

    answer = collector.handle(body([make_event(**{field: "y" * (limit + 1), "timestamp": 2})]))

    assert answer == {"status": "ok", "results": [{"status": "ok", "index": 0}]}
    at_cap, over = stored(collector.backend)
    assert (at_cap.truncated, over.truncated) == ((), (field,))
    assert over.event.to_wire()[field] == "y" * limit


def test_metadata_over_its_caps_is_stored_cut_and_noted(collector, make_event):
    at_limits = {f"k{i:02}" + "x" * 61: "v" * 2048 for i in range(30)}
    collector.handle(body(make_event(metadata=at_limits)))
    assert stored(collector.backend)[0].event.metadata == at_limits
    assert stored(collector.backend)[0].truncated == ()

    too_many = {f"k{i}": "v" for i in range(31)}
    long_key = {"k" * 65: "v"}
    long_value = {"stack": "v" * 2049}
    for metadata, kept, noted in [
        (too_many, {f"k{i}": "v" for i in range(30)}, ("metadata",)),
        (long_key, {"k" * 64: "v"}, (f"metadata.{'k' * 64}",)),
        (long_value, {"stack": "v" * 2048}, ("metadata.stack",)),
    ]:
        assert collector.handle(body(make_event(metadata=metadata))) == {"status": "ok"}
        last = stored(collector.backend)[-1]
        assert (last.event.metadata, last.truncated) == (kept, noted)


def test_body_over_the_cap_is_413_before_parsing(collector):
    small = Collector(collector.backend, policy=Policy(max_body_bytes=1000))

    with pytest.raises(PayloadTooLargeError) as info:
        small.handle(b"[" + b" " * 1000 + b"]")

    assert info.value.status_code == 413
    assert info.value.body["error"] == "body_too_large"


def test_default_body_cap_lets_a_full_batch_at_every_maximum_through(collector, make_event):
    # 200 events, each with 30 metadata keys of 64 characters holding 2048 characters.
    metadata = {f"{i:02}".ljust(64, "k"): "v" * 2048 for i in range(30)}
    batch = [
        make_event(
            timestamp=i,
            custom_id="c" * 36,
            install_source="i" * 64,
            key_id="k" * 20,
            defaultChannel="d" * 1024,
            channel="c" * 1024,
            metadata=metadata,
        )
        for i in range(200)
    ]
    raw = body(batch)
    assert len(raw) > 12_000_000  # several MB, as the protocol says

    answer = collector.handle(raw)

    assert {r["status"] for r in answer["results"]} == {"ok"}
    assert len(stored(collector.backend)) == 200


def test_batch_over_the_cap_is_413(collector, make_event):
    capped = Collector(collector.backend, policy=Policy(max_batch_events=3))
    capped.handle(body([make_event(timestamp=i) for i in range(3)]))

    with pytest.raises(PayloadTooLargeError) as info:
        capped.handle(body([make_event(timestamp=i) for i in range(4)]))

    assert info.value.body["error"] == "batch_too_large"
    assert len(stored(collector.backend)) == 3


def test_default_batch_cap_is_1000(collector, make_event):
    with pytest.raises(PayloadTooLargeError):
        collector.handle(body([make_event(timestamp=i) for i in range(1001)]))


def test_gzip_body_is_decompressed(collector):
    raw = fixture_bytes("android_batch")

    answer = collector.handle(gzip.compress(raw))

    assert len(answer["results"]) == len(load_fixture("android_batch"))
    assert wire_of(stored(collector.backend)) == load_fixture("android_batch")


def test_gzip_bomb_is_413_not_a_hang(collector):
    bomb = gzip.compress(b"[" + b" " * (64 * 1024 * 1024) + b"]")
    assert len(bomb) < 100_000

    with pytest.raises(PayloadTooLargeError) as info:
        collector.handle(bomb)

    assert info.value.body["error"] == "body_too_large"


@pytest.mark.parametrize(
    "raw",
    [
        gzip.compress(b'{"a": 1}')[:-6],  # truncated
        b"\x1f\x8b" + b"\x00" * 20,  # corrupt header
        gzip.compress(b"[]") + b"trailing",
    ],
)
def test_bad_gzip_is_400(collector, raw):
    with pytest.raises(InvalidBodyError) as info:
        collector.handle(raw)

    assert info.value.body["error"] == "invalid_gzip"


class FailingBackend:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc
        self.closed = False

    def write(self, events: Sequence[StoredEvent]) -> WriteResult:
        raise self.exc

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize(
    "exc", [BackendError("disk on fire"), OSError("No space left on device"), RuntimeError("bug")]
)
def test_storage_failure_is_503_and_nothing_is_acknowledged(make_event, exc):
    failing = Collector(FailingBackend(exc))

    for raw in (body(make_event()), body([make_event(), make_event(timestamp=5)])):
        with pytest.raises(BackendError) as info:
            failing.handle(raw)
        assert info.value.status_code == 503
        assert info.value.body == {
            "error": "storage_unavailable",
            "message": "storage is unavailable: the events were not stored, send them again",
        }
        assert str(exc) not in json.dumps(info.value.body)  # no driver detail in public


def test_backend_that_loses_events_is_not_acknowledged(make_event):
    class Forgetful:
        def write(self, events: Sequence[StoredEvent]) -> WriteResult:
            return WriteResult(inserted=len(events) - 1)

        def close(self) -> None:
            pass

    with pytest.raises(BackendError, match="accounted for 1 of 2"):
        Collector(Forgetful()).handle(body([make_event(timestamp=1), make_event(timestamp=2)]))


def test_closed_backend_is_503(backend, make_event):
    collector = Collector(backend)
    collector.close()

    with pytest.raises(BackendError):
        collector.handle(body(make_event()))


def test_same_batch_twice_is_stored_once(collector):
    raw = fixture_bytes("android_batch")

    collector.handle(raw)
    collector.handle(raw)

    assert wire_of(stored(collector.backend)) == load_fixture("android_batch")


def test_duplicates_inside_one_batch_are_stored_once(collector, make_event):
    event = make_event()

    answer = collector.handle(body([event, event]))

    assert answer["results"] == [{"status": "ok", "index": 0}, {"status": "ok", "index": 1}]
    assert len(stored(collector.backend)) == 1


def test_events_without_timestamp_are_never_deduplicated(collector):
    raw = fixture_bytes("android_worker_single")

    collector.handle(raw)
    collector.handle(raw)

    records = stored(collector.backend)
    assert len(records) == 2
    assert {r.key for r in records} == {None}


def test_only_the_same_whole_content_is_a_duplicate(collector, make_event):
    base = make_event(metadata={"exit_reason": "crash"})
    variants = [
        base,
        {**base, "device_id": base["device_id"].upper()},  # the same device: a duplicate
        dict(reversed(list(base.items()))),  # another key order: a duplicate
        {**base, "custom_id": None},  # null is absent: a duplicate
        {**base, "metadata": {"exit_reason": "anr"}},  # a crash loop's next exit
        {**base, "metadata": {"exit_reason": "crash", "pid": "2"}},
        {**base, "is_prod": False},
        {**base, "message": "an unknown field"},
        {**base, "timestamp": base["timestamp"] + 1},
        {**base, "action": "set_fail"},
        {**base, "version_name": "1.4.3"},
        {**base, "old_version_name": "1.4.0"},
        {**base, "app_id": "com.example.other"},
        {**base, "device_id": "11111111-2222-4333-8444-555555555555"},
    ]

    collector.handle(body(variants))

    assert len(stored(collector.backend)) == len(variants) - 3


def test_plugin_shaped_fixtures_are_stored_losslessly(collector):
    names = [
        "android_batch",
        "ios_batch",
        "android_worker_single",
        "old_plugin_single",
        "electron_single",
    ]
    for name in names:
        collector.handle(fixture_bytes(name))

    records = stored(collector.backend)
    expected: list[dict[str, Any]] = []
    for name in names:
        data = load_fixture(name)
        expected.extend(data if isinstance(data, list) else [data])
    assert len(records) == len(expected)
    old = next(r for r in records if r.event.app_id == "com.example.legacy")
    assert old.event.device_id == "c0ffee00-1234-4abc-8def-0123456789ab"
    assert old.event.is_prod is True
    assert old.event.is_failure is False  # plugin 6.3.2: download_fail meant "no update"
    electron = next(r for r in records if r.event.platform == "electron")
    assert electron.event.extras == {"bundle_id": "b_9f2c", "message": "bundle activated"}
    webview = next(r for r in records if r.event.action == "webview_javascript_error")
    assert webview.event.is_failure is True
    assert webview.event.metadata is not None
    assert webview.event.metadata["line"] == "120"


def test_received_at_is_the_server_clock_in_utc(backend, make_event):
    moment = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.timezone.utc)
    Collector(backend, clock=lambda: moment).handle(body([make_event(), make_event(timestamp=9)]))

    assert [r.received_at for r in stored(backend)] == [moment, moment]


def test_handle_refuses_text_with_a_clear_type_error(collector):
    with pytest.raises(TypeError, match="raw request body as bytes"):
        collector.handle('{"app_id": "x"}')  # type: ignore[arg-type]


def test_bytearray_and_memoryview_bodies_are_accepted(collector, make_event):
    raw = body(make_event(timestamp=1))
    assert collector.handle(bytearray(raw)) == {"status": "ok"}
    assert collector.handle(memoryview(body(make_event(timestamp=2)))) == {"status": "ok"}
    assert len(stored(collector.backend)) == 2


def test_ahandle_stores_off_the_event_loop(make_event):
    seen_threads: list[int] = []

    class Recording(MemoryBackend):
        def write(self, events: Sequence[StoredEvent]) -> WriteResult:
            seen_threads.append(threading.get_ident())
            return super().write(events)

    collector = Collector(Recording())

    async def main() -> list[dict[str, Any]]:
        bodies = [body(make_event(timestamp=i)) for i in range(20)]
        return await asyncio.gather(*(collector.ahandle(b) for b in bodies))

    answers = asyncio.run(main())

    assert answers == [{"status": "ok"}] * 20
    assert len(collector.backend) == 20
    assert threading.get_ident() not in seen_threads


def test_errors_are_json_serialisable(collector, make_event):
    bad_key = "\ud800bad"
    with pytest.raises(UpdaterStatsError) as info:
        collector.handle(body(make_event(metadata={bad_key: 1, "ok": "\udfff"})))

    encoded = json.dumps(info.value.body, ensure_ascii=False).encode("utf-8")
    assert b"$.metadata" in encoded


def test_module_level_handle_uses_a_sqlite_file_in_the_working_directory(
    tmp_path: Path, monkeypatch, make_event
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("UPDATER_STATS_STORAGE", raising=False)
    monkeypatch.setattr("updater_stats._collector._default", None)

    assert updater_stats.handle(body(make_event())) == {"status": "ok"}

    collector = updater_stats._collector._default
    assert collector is not None
    assert (tmp_path / "updater_stats.sqlite3").exists()
    assert len(stored(collector.backend)) == 1
    collector.close()


def test_module_level_handle_reads_the_environment(tmp_path: Path, monkeypatch, make_event):
    target = tmp_path / "from-env.sqlite3"
    monkeypatch.setenv("UPDATER_STATS_STORAGE", f"sqlite:///{target}")
    monkeypatch.setattr("updater_stats._collector._default", None)

    updater_stats.handle(body(make_event()))

    assert target.exists()
    updater_stats._collector._close_default()


def test_configure_replaces_and_closes_the_default(monkeypatch, make_event):
    monkeypatch.setattr("updater_stats._collector._default", None)
    first, second = MemoryBackend(), MemoryBackend()

    updater_stats.configure(first)
    updater_stats.handle(body(make_event(timestamp=1)))
    returned = updater_stats.configure(second, policy=Policy(max_batch_events=1))
    updater_stats.handle(body(make_event(timestamp=2)))
    answer = asyncio.run(updater_stats.ahandle(body(make_event(timestamp=3))))

    assert answer == {"status": "ok"}
    assert returned.backend is second
    assert [r.event.timestamp for r in first.events()] == [1]
    assert [r.event.timestamp for r in second.events()] == [2, 3]
    with pytest.raises(BackendError):  # `first` was closed by the second configure()
        first.write([])
    with pytest.raises(PayloadTooLargeError):
        updater_stats.handle(body([make_event(), make_event()]))
    updater_stats._collector._close_default()


def test_configure_takes_a_url(tmp_path: Path, monkeypatch, make_event):
    monkeypatch.setattr("updater_stats._collector._default", None)
    target = tmp_path / "configured.sqlite3"

    collector = updater_stats.configure(f"sqlite:///{target}")
    updater_stats.handle(body(make_event()))

    assert isinstance(collector.backend, updater_stats.SQLiteBackend)
    assert collector.backend.path == str(target)
    assert len(stored(collector.backend)) == 1
    updater_stats._collector._close_default()


def test_ping_reports_whether_storage_answers(tmp_path: Path):
    collector = Collector(updater_stats.SQLiteBackend(tmp_path / "s.sqlite3"))
    collector.ping()
    collector.close()
    with pytest.raises(BackendError):
        collector.ping()

    class NoPing:
        def write(self, events):
            return WriteResult(inserted=len(events))

        def close(self):
            pass

    Collector(NoPing()).ping()  # a backend without ping() is taken as ready

    class BrokenPing(NoPing):
        def ping(self):
            raise ConnectionError("refused")

    with pytest.raises(BackendError, match="ConnectionError: refused"):
        Collector(BrokenPing()).ping()


def test_respond_turns_every_outcome_into_a_response(collector, make_event):
    ok = collector.respond(body(make_event()))
    bad = collector.respond(b"{")
    too_big = Collector(collector.backend, policy=Policy(max_body_bytes=2)).respond(b"[  ]")

    assert (ok.status_code, ok.body, ok.ok) == (200, {"status": "ok"}, True)
    assert (bad.status_code, bad.body["error"], bad.ok) == (400, "invalid_json", False)
    assert too_big.status_code == 413
    assert json.loads(bad.json()) == bad.body
    assert ok.json() == b'{"status":"ok"}'


def test_respond_answers_503_when_storage_fails(make_event):
    answer = Collector(FailingBackend(OSError("disk"))).respond(body(make_event()))

    assert answer.status_code == 503
    assert answer.body["error"] == "storage_unavailable"


def test_arespond_and_module_level_respond(monkeypatch, make_event):
    backend = MemoryBackend()
    monkeypatch.setattr("updater_stats._collector._default", Collector(backend))

    first = updater_stats.respond(body(make_event(timestamp=1)))
    second = asyncio.run(updater_stats.arespond(body(make_event(timestamp=2))))
    bad = asyncio.run(updater_stats.arespond(b"[1]" * 2))

    assert (first.status_code, second.status_code, bad.status_code) == (200, 200, 400)
    assert [r.event.timestamp for r in backend.events()] == [1, 2]
