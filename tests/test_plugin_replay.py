"""Replays of what real clients send, as they serialise it, through the collector and the ASGI app.

The fixtures are written in each client's own way (tests/fixtures):

- ``android_exit_reporter_batch``: the plugin's Android client after a restart: five past app
  exits reported in one loop, all with one ``timestamp`` and differing only in ``metadata``, two
  JavaScript errors flushed in one millisecond, compact JSON with ``\\/`` for ``/``;
  ``android_exit_reporter_resent``: the same queue sent again after a lost answer, with what was
  queued since appended.
- ``ios_webview_errors_batch``: the iOS client's WebView errors, their texts cut by visible
  characters (a stack of 2048 emoji families is 12 848 code points), an e-mail ``custom_id``,
  optional fields left out; ``ios_webview_errors_resent``: the same queue encoded again after a
  relaunch, with keys (and ``metadata`` keys) in another order.
- ``electron_singles``: the desktop port, one event per request, no ``timestamp``, the unknown
  fields ``bundle_id`` and ``message``, a ``null`` channel.
- ``android_worker_singles``: the Android download worker, one event per request, no timestamp.
- ``hosted_service_batch``: events shaped as the hosted service's own tests send them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from updater_stats import StoredEvent
from updater_stats.asgi import create_app

from .asgi_calls import call
from .conftest import fixture_bytes, load_fixture, make_backend, stored

ANDROID_HEADERS = {
    "content-type": "application/json; charset=utf-8",
    "user-agent": "CapacitorUpdater/8.51.14 (com.example.shop) android/14",
}


# The memory and SQLite backends of conftest's `backend` fixture (every backend keeps keys the
# same way: the contract suite proves it).
on_memory_and_sqlite = pytest.mark.parametrize("backend", ["memory", "sqlite-file"], indirect=True)


def as_sent(event: dict[str, Any]) -> dict[str, Any]:
    """A decoded wire event as updater-stats gives it back: ``null`` absent, id lower-case."""
    kept = {key: value for key, value in event.items() if value is not None}
    kept["device_id"] = kept["device_id"].lower()
    return kept


def batch_answer(size: int) -> dict[str, Any]:
    return {"status": "ok", "results": [{"status": "ok", "index": i} for i in range(size)]}


def assert_stored_as_sent(records: list[StoredEvent], sent: list[dict[str, Any]]) -> None:
    assert len(records) == len(sent), (len(records), len(sent))
    for record, event in zip(records, sent, strict=True):
        assert record.truncated == ()
        assert record.event.to_wire() == as_sent(event)


@on_memory_and_sqlite
def test_every_exit_of_an_android_exit_loop_is_stored_and_a_resend_once(collector):
    first = load_fixture("android_exit_reporter_batch")
    resent = load_fixture("android_exit_reporter_resent")
    assert len({event["timestamp"] for event in first[:5]}) == 1  # one millisecond
    assert resent[: len(first)] == first

    assert collector.handle(fixture_bytes("android_exit_reporter_batch")) == batch_answer(8)
    assert collector.handle(fixture_bytes("android_exit_reporter_resent")) == batch_answer(10)

    records = stored(collector.backend)
    assert_stored_as_sent(records, resent)
    assert len({record.key for record in records}) == len(records)
    assert [r.event.action for r in records[:2]] == ["app_crash", "app_crash"]
    assert records[0].event.key_id == "MIIBCgKCAQEAx/9k+Zq2"  # written "\/" by the client
    snapshot = collector.metrics.snapshot()
    assert snapshot.accepted == {"com.example.shop": 18}
    assert snapshot.duplicates == {"com.example.shop": 8}


@on_memory_and_sqlite
def test_ios_texts_cut_by_visible_characters_are_kept_cut_and_a_reencoded_resend_once(collector):
    sent = load_fixture("ios_webview_errors_batch")
    first_raw = fixture_bytes("ios_webview_errors_batch")
    resent_raw = fixture_bytes("ios_webview_errors_resent")
    assert json.loads(resent_raw) == sent  # the same events...
    assert list(json.loads(resent_raw)[0]) != list(sent[0])  # ...keys in another order

    assert collector.handle(first_raw) == batch_answer(4)
    assert collector.handle(resent_raw) == batch_answer(4)

    records = stored(collector.backend)
    assert len(records) == 4
    by_action = {record.event.action: record for record in records}
    error = by_action["webview_javascript_error"]
    stack = sent[0]["metadata"]["stack"]
    assert len(stack) > 2048  # 2048 visible characters, far more code points
    assert error.truncated == ("metadata.message", "metadata.stack")
    assert error.event.metadata is not None
    assert error.event.metadata["stack"] == stack[:2048]
    assert error.event.metadata["message"] == sent[0]["metadata"]["message"][:2048]
    assert error.event.custom_id == "maria.fernandez-garcia+beta@example-company.co.uk"
    rejection = by_action["webview_unhandled_rejection"]
    assert rejection.truncated == ()  # 2048 emoji of one code point each: at the cap, whole
    assert rejection.event.to_wire() == as_sent(sent[1])
    assert_stored_as_sent(
        [by_action["app_crash"], by_action["app_memory_warning"]], [sent[2], sent[3]]
    )
    snapshot = collector.metrics.snapshot()
    assert snapshot.duplicates == {"com.example.shop": 4}
    assert snapshot.truncated == {"com.example.shop": 2}  # the first send and its re-send


@on_memory_and_sqlite
def test_electron_events_keep_their_own_fields_and_each_is_stored(collector):
    bodies = load_fixture("electron_singles")

    answers = [collector.handle(json.dumps(event).encode()) for event in bodies]

    assert answers == [{"status": "ok"}] * len(bodies)
    records = stored(collector.backend)
    # No timestamp: the two alike set_fail reports are two attempts, both kept.
    assert_stored_as_sent(records, bodies)
    assert records[0].event.extras == {"bundle_id": "mz3k1q0b-4f2a"}
    assert records[2].event.default_channel is None  # sent as null
    assert records[3].event.extras["message"].startswith("Error: ENOENT")
    assert {record.key for record in records} == {None}


@on_memory_and_sqlite
def test_download_worker_events_are_each_stored(collector):
    raw_bodies = fixture_bytes("android_worker_singles").decode().strip()[1:-1].split(",\n")
    assert all(b"\\/" in raw.encode() for raw in raw_bodies[1:3])

    answers = [collector.handle(raw.strip().encode()) for raw in raw_bodies]

    assert answers == [{"status": "ok"}] * 5
    records = stored(collector.backend)
    assert_stored_as_sent(records, load_fixture("android_worker_singles"))
    assert records[1].event.version_name == "1.4.3:assets/../../shared_prefs/x.xml"


@on_memory_and_sqlite
def test_the_hosted_service_test_shapes_are_all_stored(collector):
    sent = load_fixture("hosted_service_batch")

    assert collector.handle(fixture_bytes("hosted_service_batch")) == batch_answer(6)

    records = stored(collector.backend)
    assert_stored_as_sent(records, sent)
    bare = records[5].event
    assert (bare.platform, bare.version_build, bare.version_os, bare.plugin_version) == (None,) * 4
    assert records[4].event.device_id == "4e0f3a6b-5c7d-4e8f-9a01-a2b3c4d5e6f7"
    assert records[2].event.custom_id == "  TRIM-ME  "


def test_every_fixture_through_the_asgi_app(tmp_path):
    backend = make_backend("sqlite-file", tmp_path)
    app = create_app(backend)
    try:
        batches = [
            ("android_exit_reporter_batch", 8),
            ("android_exit_reporter_resent", 10),
            ("ios_webview_errors_batch", 4),
            ("ios_webview_errors_resent", 4),
            ("hosted_service_batch", 6),
        ]
        for name, size in batches:
            answer = call(app, chunks=[fixture_bytes(name)], headers=ANDROID_HEADERS)
            assert (answer.status, answer.json) == (200, batch_answer(size)), name
        singles = load_fixture("electron_singles") + load_fixture("android_worker_singles")
        for event in singles:
            answer = call(app, chunks=[json.dumps(event).encode()], headers=ANDROID_HEADERS)
            assert (answer.status, answer.json) == (200, {"status": "ok"})
        empty = call(app, chunks=[b"[]"], headers=ANDROID_HEADERS)
        assert (empty.status, empty.json) == (200, {"status": "ok", "results": []})

        # 8 + 2 Android, 4 iOS, 6 hosted-shaped, 10 single events: every one, once.
        assert len(stored(backend)) == 30
    finally:
        app.close()
