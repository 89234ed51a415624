"""Whatever arrives, `handle` answers with a dict or an `UpdaterStatsError`, and stores exactly
what it acknowledged."""

from __future__ import annotations

import gzip
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from updater_stats import Collector, MemoryBackend, UpdaterStatsError

from .wire_strategies import damaged_events, json_values, normalised, valid_wire_events


def answer(collector: Collector, raw: bytes) -> dict[str, Any] | UpdaterStatsError:
    try:
        result = collector.handle(raw)
    except UpdaterStatsError as exc:
        json.dumps(exc.body)  # every error body can be sent as JSON
        assert exc.status_code in {400, 413}
        return exc
    assert isinstance(result, dict)
    json.dumps(result)
    return result


@given(st.binary(max_size=512))
def test_any_bytes(raw):
    answer(Collector(MemoryBackend()), raw)


@given(st.binary(max_size=512))
def test_any_gzipped_bytes(raw):
    answer(Collector(MemoryBackend()), gzip.compress(raw))


@given(json_values)
def test_any_json(value):
    answer(Collector(MemoryBackend()), json.dumps(value).encode())


@given(st.lists(valid_wire_events(canonical=False) | damaged_events(), max_size=6))
def test_batches_store_exactly_the_acknowledged_items(items):
    backend = MemoryBackend()
    result = answer(Collector(backend), json.dumps(items).encode())

    assert isinstance(result, dict)
    statuses = [r["status"] for r in result["results"]]
    assert [r["index"] for r in result["results"]] == list(range(len(items)))
    accepted = [
        normalised(item) for item, status in zip(items, statuses, strict=True) if status == "ok"
    ]
    stored = [record.event.to_wire() for record in backend.events()]
    # Every acknowledged item is stored, once per distinct key, exactly as normalised.
    assert all(item in stored for item in accepted)
    assert all(event in accepted for event in stored)


@given(valid_wire_events(canonical=False) | damaged_events())
def test_single_events_are_stored_only_when_acknowledged(event):
    backend = MemoryBackend()
    result = answer(Collector(backend), json.dumps(event).encode())

    stored = [record.event.to_wire() for record in backend.events()]
    if isinstance(result, UpdaterStatsError):
        assert stored == []
        assert result.body["moreInfo"]["errors"]
    else:
        assert stored == [normalised(event)]


@given(st.lists(valid_wire_events(canonical=False) | damaged_events(), max_size=6) | json_values)
def test_answers_encode_to_the_same_bytes_with_or_without_orjson(payload):
    answer = Collector(MemoryBackend()).respond(json.dumps(payload).encode())
    standard = json.dumps(answer.body, separators=(",", ":"), ensure_ascii=False).encode()
    assert answer.json() == standard
