"""Every example answers the protocol's requests the same way, through its framework's test client.

One suite, parametrized over the six frameworks: a new example is proven by the same tests.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import updater_stats
from updater_stats import AppInfos, Collector, MemoryBackend, Policy, parse_event

from ..conftest import body, fixture_bytes, load_fixture, stored
from .conftest import StatsClient

BATCHES = [
    pytest.param("android_batch", "application/json; charset=utf-8", id="android_batch"),
    pytest.param("ios_batch", "application/json", id="ios_batch"),
]
SINGLES = ["android_worker_single", "old_plugin_single", "electron_single"]


def as_stored(events: list[dict[str, Any]]) -> list[AppInfos]:
    """The events as the library validates them: what the route must have passed on unchanged."""
    return [parse_event(event) for event in events]


def assert_json(answer_content_type: str) -> None:
    assert answer_content_type.split(";", maxsplit=1)[0].strip() == "application/json"


def test_get_is_the_health_check(stats_client: StatsClient, storage: MemoryBackend) -> None:
    answer = stats_client.get()

    assert answer.status == 200
    assert_json(answer.content_type)
    assert answer.json == {"status": "ok"}
    assert stored(storage) == []


@pytest.mark.parametrize(("name", "content_type"), BATCHES)
def test_array_fixture_is_answered_per_item_and_stored(
    stats_client: StatsClient, storage: MemoryBackend, name: str, content_type: str
) -> None:
    events = load_fixture(name)

    answer = stats_client.post(fixture_bytes(name), content_type=content_type)

    assert answer.status == 200
    assert_json(answer.content_type)
    assert answer.json == {
        "status": "ok",
        "results": [{"status": "ok", "index": i} for i in range(len(events))],
    }
    assert [e.event for e in stored(storage)] == as_stored(events)
    assert [e.event.timestamp for e in stored(storage)] == [e["timestamp"] for e in events]


@pytest.mark.parametrize("name", SINGLES)
def test_object_fixture_is_stored(
    stats_client: StatsClient, storage: MemoryBackend, name: str
) -> None:
    event = load_fixture(name)

    answer = stats_client.post(fixture_bytes(name))

    assert answer.status == 200
    assert_json(answer.content_type)
    assert answer.json == {"status": "ok"}
    assert [e.event for e in stored(storage)] == as_stored([event])
    assert stored(storage)[0].event.device_id == event["device_id"].lower()


def test_bad_item_in_an_array_costs_only_itself(
    stats_client: StatsClient, storage: MemoryBackend
) -> None:
    first, *_, last = load_fixture("android_batch")
    bad = {**first, "device_id": 12, "timestamp": first["timestamp"] + 1}

    answer = stats_client.post(body([first, bad, last]))

    assert answer.status == 200
    ok_first, error, ok_last = answer.json["results"]
    assert ok_first == {"status": "ok", "index": 0}
    assert ok_last == {"status": "ok", "index": 2}
    assert error["status"] == "error"
    assert error["index"] == 1
    assert error["error"] == "invalid_event"
    assert "$[1].device_id" in error["message"]
    assert error["moreInfo"]["fields"] == ["device_id"]
    assert [e.event for e in stored(storage)] == as_stored([first, last])


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"", "invalid_json"),
        (b"\xff\xfe{}", "invalid_utf8"),
        (b"42", "invalid_body"),
    ],
    ids=["broken", "empty", "not-utf8", "scalar"],
)
def test_body_that_is_not_usable_json_is_400(
    stats_client: StatsClient, storage: MemoryBackend, raw: bytes, code: str
) -> None:
    answer = stats_client.post(raw)

    assert answer.status == 400
    assert_json(answer.content_type)
    assert answer.json["error"] == code
    assert answer.json["message"]
    assert stored(storage) == []


def test_invalid_single_event_is_400_naming_the_fields(
    stats_client: StatsClient, storage: MemoryBackend
) -> None:
    event = load_fixture("electron_single")
    event["is_prod"] = "false"
    del event["version_name"]

    answer = stats_client.post(body(event))

    assert answer.status == 400
    assert answer.json["error"] == "invalid_event"
    assert sorted(answer.json["moreInfo"]["fields"]) == ["is_prod", "version_name"]
    assert stored(storage) == []


def test_body_over_the_cap_is_413(
    stats_client: StatsClient, configure: Callable[..., Collector]
) -> None:
    backend = MemoryBackend()
    configure(backend, policy=Policy(max_body_bytes=1000))
    raw = fixture_bytes("android_batch")
    assert len(raw) > 1000

    answer = stats_client.post(raw)

    assert answer.status == 413
    assert_json(answer.content_type)
    assert answer.json["error"] == "body_too_large"
    assert stored(backend) == []


def test_batch_over_the_cap_is_413(
    stats_client: StatsClient, configure: Callable[..., Collector]
) -> None:
    backend = MemoryBackend()
    configure(backend, policy=Policy(max_batch_events=2))

    answer = stats_client.post(fixture_bytes("ios_batch"))

    assert answer.status == 413
    assert answer.json["error"] == "batch_too_large"
    assert stored(backend) == []


def test_gzip_body_is_decompressed(stats_client: StatsClient, storage: MemoryBackend) -> None:
    answer = stats_client.post(gzip.compress(fixture_bytes("ios_batch")))

    assert answer.status == 200
    assert [e.event for e in stored(storage)] == as_stored(load_fixture("ios_batch"))


def test_storage_failure_is_503_so_devices_retry(
    stats_client: StatsClient, configure: Callable[..., Collector]
) -> None:
    backend = MemoryBackend()
    configure(backend)
    backend.close()  # writes now raise BackendError

    answer = stats_client.post(fixture_bytes("ios_batch"))

    assert answer.status == 503
    assert_json(answer.content_type)
    assert answer.json["error"] == "storage_unavailable"


def test_largest_real_batch_gets_through_the_framework(
    stats_client: StatsClient, storage: MemoryBackend
) -> None:
    # Bigger than Django's (2.5 MB), aiohttp's (1 MiB) and Litestar's (10 MB) default body caps:
    # 200 events, each with 30 metadata values at their maximum (protocol, section 5).
    template = load_fixture("android_batch")[-1]
    metadata = {f"{i:02}".ljust(64, "k"): "v" * 2048 for i in range(30)}
    batch = [{**template, "timestamp": i, "metadata": metadata} for i in range(200)]
    raw = body(batch)
    assert 12_000_000 < len(raw) <= updater_stats.Policy().max_body_bytes

    answer = stats_client.post(raw)

    assert answer.status == 200
    assert {r["status"] for r in answer.json["results"]} == {"ok"}
    assert [e.event.timestamp for e in stored(storage)] == list(range(200))


def test_body_over_the_default_cap_is_refused_and_the_app_keeps_serving(
    stats_client: StatsClient, storage: MemoryBackend
) -> None:
    # Over 16 MiB either the framework's own cap (set to the library's) or updater-stats answers.
    raw = b"[" + b" " * updater_stats.Policy().max_body_bytes + b"]"

    answer = stats_client.post(raw)

    assert answer.status == 413
    assert stored(storage) == []
    assert stats_client.post(fixture_bytes("electron_single")).status == 200
    assert len(stored(storage)) == 1


def test_without_configure_the_route_uses_the_storage_environment_variable(
    stats_client: StatsClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    database = tmp_path / "from-env.sqlite3"
    monkeypatch.setenv(updater_stats.STORAGE_ENV_VAR, f"sqlite:///{database}")
    monkeypatch.setattr(updater_stats._collector, "_default", None)  # as at start-up

    answer = stats_client.post(fixture_bytes("android_worker_single"))

    assert answer.status == 200
    updater_stats._collector._close_default()
    backend = updater_stats.SQLiteBackend(database)
    try:
        assert [e.event for e in stored(backend)] == as_stored(
            [load_fixture("android_worker_single")]
        )
    finally:
        backend.close()
