"""Copying stores and importing exports: every field kept, each event stored once.

Round trips run through real backends: SQLite files, the tests' throwaway PostgreSQL
server and the in-process ClickHouse engine (chdb).
"""

from __future__ import annotations

import datetime as dt
import gc
import io
import itertools
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from updater_stats import (
    Collector,
    MemoryBackend,
    SQLiteBackend,
    StorageBackend,
    StoredEvent,
    WriteResult,
)
from updater_stats._batching import Batching
from updater_stats._transfer import (
    DEFAULT_BATCH_SIZE,
    EXPORT_FIELDS,
    CopyResult,
    copy_events,
    import_json_lines,
    json_line,
    read_json_lines,
    write_size,
)
from updater_stats.reports import ReportQuery, reports_for, summarize
from updater_stats.testing import RECEIVED_AT, assert_same_events, stored_event, wire_event

from .reports.generate import APP, generate, store
from .reports.generate import T0 as R0
from .transfer_events import (
    at,
    cut_and_absent_events,
    holdable_events,
    lone_surrogate_events,
)


def through_lines(events: list[StoredEvent]) -> list[StoredEvent]:
    text = "".join(json_line(stored) + "\n" for stored in events)
    return list(read_json_lines(io.BytesIO(text.encode("utf-8"))))


# -- JSON lines ------------------------------------------------------------------------------


def test_json_lines_rebuild_every_stored_field():
    events = holdable_events() + cut_and_absent_events() + lone_surrogate_events()
    events.append(stored_event(timestamp=11, received_at=at(300, micro=654321)))

    assert_same_events(through_lines(events), events)


def test_a_line_carries_the_key_and_export_fields_and_is_an_event_without_them():
    stored = attrs.evolve(stored_event(timestamp=3, _key="device's"), truncated=("custom_id",))

    record = json.loads(json_line(stored))

    assert record["_key"] == stored.key
    assert record["_truncated"] == ["custom_id"]
    assert record["_received_at"] == "2026-11-26T12:30:15.123000Z"
    assert record["_shadowed"] == {"_key": "device's"}
    assert set(EXPORT_FIELDS) <= set(record)
    wire = {name: value for name, value in record.items() if not name.startswith("_")}
    assert wire == {k: v for k, v in stored.event.to_wire().items() if not k.startswith("_")}


def test_lone_surrogates_are_written_as_escapes_a_utf8_file_holds():
    (stored,) = lone_surrogate_events()[:1]

    line = json_line(stored)

    line.encode("utf-8")  # no UnicodeEncodeError
    assert "\\ud800" in line


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"[1]", "line 2: a line must be a JSON object"),
        (b'{"app_id": "a.b"', "line 2: "),
        (b'{"_received_at": "2026-11-01T00:00:00Z"}', "line 2: no _key"),
        (
            (
                b'{"app_id":"a.b","device_id":"d","action":"set","version_name":"1",'
                b'"_received_at":"2026-11-01T00:00:00Z","_key":7}'
            ),
            "line 2: _key must be a string or null",
        ),
        (
            (
                b'{"app_id":"a.b","action":"set","version_name":"1",'
                b'"_received_at":"2026-11-01T00:00:00Z","_key":null}'
            ),
            "line 2: required field missing @ $.device_id",
        ),
        (
            (
                b'{"app_id":"a.b","device_id":"d","action":"set","version_name":"1",'
                b'"_received_at":"2026-11-01T00:00:00","_key":null}'
            ),
            "line 2: _received_at has no time zone",
        ),
    ],
)
def test_a_bad_line_is_named(line: bytes, message: str):
    good = json_line(stored_event()).encode()

    with pytest.raises(ValueError, match="^" + message.replace("$", r"\$").replace("[", r"\[")):
        list(read_json_lines([good, line]))


# -- once, however often it runs -------------------------------------------------------------


def test_copy_twice_stores_each_event_once():
    source, target = MemoryBackend(), MemoryBackend()
    events = holdable_events()
    source.write(events)

    first = copy_events(source, target, batch_size=4)
    again = copy_events(source, target, batch_size=4)

    assert first == CopyResult(copied=len(events), present=0)
    assert again == CopyResult(copied=0, present=len(events))
    assert_same_events(target.events(), events)


def test_a_copy_interrupted_at_any_batch_completes_without_doubles():
    events = holdable_events()
    for done in range(len(events) + 1):
        source, target = MemoryBackend(), MemoryBackend()
        source.write(events)
        target.write(events[:done])  # what an interrupted copy had stored

        result = copy_events(source, target, batch_size=3)

        assert result == CopyResult(copied=len(events) - done, present=done), done
        assert_same_events(target.events(), events)


def test_keyless_twins_are_matched_one_for_one():
    twin = stored_event(timestamp=None, received_at=at(3))
    other = stored_event(timestamp=None, received_at=at(3, micro=1000))  # a millisecond later
    source, target = MemoryBackend(), MemoryBackend()
    source.write([twin, twin, twin, other])
    target.write([twin])

    assert copy_events(source, target) == CopyResult(copied=3, present=1)
    assert copy_events(source, target) == CopyResult(copied=0, present=4)
    assert_same_events(target.events(), [twin, twin, twin, other])


def test_a_keyless_event_received_in_another_millisecond_is_another_event():
    source, target = MemoryBackend(), MemoryBackend()
    source.write([stored_event(timestamp=None, received_at=at(3, micro=999))])
    # Sub-millisecond precision lost on the way (a coarser store) still matches...
    target.write([stored_event(timestamp=None, received_at=at(3))])
    assert copy_events(source, target).present == 1
    # ...a live event of the same content, received later, does not.
    target2 = MemoryBackend()
    target2.write([stored_event(timestamp=None, received_at=at(4))])
    assert copy_events(source, target2).copied == 1


def test_app_and_since_narrow_the_copy():
    events = [
        stored_event(timestamp=index, app_id=app, received_at=at(index))
        for index, app in enumerate(["com.a.x", "com.b.y"] * 5)
    ]
    source, target = MemoryBackend(), MemoryBackend()
    source.write(events)

    result = copy_events(source, target, app_id="com.a.x", since=at(4))

    expected = [e for e in events if e.event.app_id == "com.a.x" and e.received_at >= at(4)]
    assert result == CopyResult(copied=len(expected), present=0)
    assert_same_events(target.events(), expected)


class ListBackend:
    """A user's backend: nothing from the library but the protocols it implements."""

    def __init__(self) -> None:
        self.rows: list[StoredEvent] = []

    def write(self, events: Any) -> WriteResult:
        known = {row.key for row in self.rows if row.key is not None}
        kept = []
        for stored in events:
            if stored.key is None or stored.key not in known:
                known.add(stored.key)
                kept.append(stored)
        self.rows += kept
        return WriteResult(inserted=len(kept), duplicates=len(events) - len(kept))

    def events(self, *, app_id: str | None = None) -> Iterator[StoredEvent]:
        return iter([row for row in self.rows if app_id in (None, row.event.app_id)])

    def close(self) -> None:
        pass


def test_a_user_backend_with_events_is_copied_from_and_into():
    events = holdable_events()
    theirs, ours = ListBackend(), SQLiteBackend(":memory:")
    theirs.write(events)

    assert copy_events(theirs, ours) == CopyResult(copied=len(events), present=0)
    back = ListBackend()
    assert copy_events(ours, back) == CopyResult(copied=len(events), present=0)
    assert copy_events(ours, back) == CopyResult(copied=0, present=len(events))

    assert_same_events(back.rows, events)
    ours.close()


def test_a_target_that_cannot_list_its_events_is_refused():
    class WriteOnly:
        def write(self, events: Any) -> WriteResult:
            return WriteResult(inserted=len(events))

        def close(self) -> None:
            pass

    with pytest.raises(TypeError, match="WriteOnly cannot list its events"):
        copy_events(MemoryBackend(), WriteOnly())


def test_a_failing_write_stops_the_copy_and_stops_the_reader():
    source = SQLiteBackend(":memory:")
    source.write([stored_event(timestamp=index) for index in range(50)])
    target = MemoryBackend()
    target.close()  # every write fails

    with pytest.raises(Exception, match="closed"):
        copy_events(source, target, batch_size=5)
    assert gc.isenabled()
    # The reader thread let go of the source: it can be read and closed at once.
    assert len(list(source.events())) == 50
    source.close()


def test_the_source_is_read_in_batches_not_all_at_once():
    source = MemoryBackend()
    source.write([stored_event(timestamp=index) for index in range(100)])
    read = 0
    written: list[tuple[int, int]] = []  # (events read so far, events in this write)

    def counting() -> Iterator[StoredEvent]:
        nonlocal read
        for stored in source.events():
            read += 1
            yield stored

    class Watching(MemoryBackend):
        def write(self, events: Any) -> WriteResult:
            written.append((read, len(events)))
            return super().write(events)

    from updater_stats._transfer import store_events  # noqa: PLC0415

    store_events(counting(), Watching(), batch_size=10)

    assert [size for _, size in written] == [10] * 10
    # The reader runs at most a few batches ahead of the writes: memory stays bounded.
    assert all(seen <= (index + 4) * 10 for index, (seen, _) in enumerate(written))


class Batched(MemoryBackend):
    def __init__(self, max_events: int) -> None:
        super().__init__()
        self.batching = Batching(max_events=max_events)
        self.sizes: list[int] = []

    def write(self, events: Any) -> WriteResult:
        self.sizes.append(len(events))
        return super().write(events)


@pytest.mark.parametrize(
    ("max_events", "size"), [(100, DEFAULT_BATCH_SIZE), (12_000, 12_000), (10**6, 20_000)]
)
def test_writes_are_as_large_as_the_target_batches_within_bounds(max_events: int, size: int):
    assert write_size(Batched(max_events)) == size
    assert write_size(MemoryBackend()) == DEFAULT_BATCH_SIZE


def test_a_copy_writes_the_target_batch_size_unless_told_otherwise():
    source = MemoryBackend()
    source.write([stored_event(timestamp=index) for index in range(25_000)])
    target = Batched(12_000)

    copy_events(source, target)
    copy_events(source, told := Batched(12_000), batch_size=10_000)

    assert target.sizes == [12_000, 12_000, 1_000]
    assert told.sizes == [10_000, 10_000, 5_000]


def test_clickhouse_takes_copies_in_its_own_batches():
    from updater_stats.backends.clickhouse import ClickHouseBackend  # noqa: PLC0415

    assert write_size(ClickHouseBackend("chdb://memory")) == 10_000


def test_a_copy_collects_garbage_after_each_batch_and_turns_the_collector_back_on():
    source = MemoryBackend()
    source.write([stored_event(timestamp=index) for index in range(30)])
    automatic: list[bool] = []
    passes: list[int] = []

    class Watching(MemoryBackend):
        def write(self, events: Any) -> WriteResult:
            automatic.append(gc.isenabled())
            return super().write(events)

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            passes.append(info["generation"])

    gc.callbacks.append(watch)
    try:
        copy_events(source, Watching(), batch_size=10)
    finally:
        gc.callbacks.remove(watch)

    assert automatic == [False, False, False]
    assert passes.count(1) >= 3  # one pass over the young generations after each batch
    assert gc.isenabled()


def test_a_copy_leaves_a_collector_the_caller_turned_off_off():
    source = MemoryBackend()
    source.write([stored_event(timestamp=index) for index in range(30)])
    gc.disable()
    try:
        assert copy_events(source, MemoryBackend(), batch_size=10) == CopyResult(30, 0)
        assert not gc.isenabled()
    finally:
        gc.enable()


# -- a server writing to the target meanwhile ------------------------------------------------


def _opener(kind: str, tmp_path: Path) -> Callable[[], StorageBackend]:
    """A function that opens one more backend on one new store of this kind."""
    if kind == "sqlite":
        return lambda: SQLiteBackend(tmp_path / "new.sqlite3")
    from updater_stats.backends.postgres import PostgresBackend  # noqa: PLC0415

    made = _postgres(tmp_path)
    made.close()
    return lambda: PostgresBackend(made.conninfo, schema=made.schema)  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_copy_into_a_store_a_server_writes_to_loses_and_doubles_nothing(
    tmp_path: Path, kind: str
):
    source = SQLiteBackend(tmp_path / "old.sqlite3")
    history = [stored_event(timestamp=index, received_at=at(index)) for index in range(3000)]
    history += [
        stored_event(timestamp=None, received_at=at(index), version_code=str(index))
        for index in range(1000)
    ]
    source.write(history)
    reopen = _opener(kind, tmp_path)
    # The server and the copy each have a backend of their own on the one store.
    collector = Collector(reopen())
    live: list[dict[str, Any]] = []
    during = 0  # requests answered while the copy ran
    failures: list[BaseException] = []
    stop = threading.Event()

    def serve() -> None:
        nonlocal during
        # Devices send to the new store: new events, keyless ones, and re-sends of the history.
        index = 0
        try:
            while not stop.is_set() or index < 50:
                wire = [
                    wire_event(timestamp=10**9 + index),
                    wire_event(timestamp=None, version_code=f"live-{index}"),
                    wire_event(timestamp=index % 3000),  # an old event re-sent: a duplicate
                ]
                answer = collector.handle(json.dumps(wire).encode())
                assert [r["status"] for r in answer["results"]] == ["ok"] * 3, answer
                live.extend(wire[:2])
                index += 1
                during += not stop.is_set()
        except BaseException as exc:
            failures.append(exc)

    server = threading.Thread(target=serve)
    target = reopen()
    server.start()
    try:
        result = copy_events(source, target, batch_size=100)
    finally:
        stop.set()
        server.join()
    collector.close()
    target.close()

    assert failures == []
    assert during >= 3, "the copy ended before the server wrote"
    reader = reopen()
    stored = list(reader.events())  # type: ignore[attr-defined]
    reader.close()
    keys = [e.key for e in stored if e.key is not None]
    assert len(keys) == len(set(keys))
    history_keys = {e.key for e in history if e.key is not None}
    assert history_keys <= set(keys)
    live_stamps = {w["timestamp"] for w in live if "timestamp" in w}
    assert {e.event.timestamp for e in stored if e.key is not None} == (
        {e.event.timestamp for e in history if e.key is not None} | live_stamps
    )
    keyless = sorted(e.event.version_code or "" for e in stored if e.key is None)
    assert keyless == sorted(
        [str(index) for index in range(1000)]
        + [w["version_code"] for w in live if "timestamp" not in w]
    )
    assert result.total == len(history)
    source.close()


# -- every backend ---------------------------------------------------------------------------


def _sqlite(tmp_path: Path) -> StorageBackend:
    return SQLiteBackend(tmp_path / f"{uuid.uuid4().hex}.sqlite3")


def _postgres(_tmp_path: Path) -> StorageBackend:
    from .backends.servers import postgres_backend  # noqa: PLC0415

    return postgres_backend()


def _clickhouse(_tmp_path: Path) -> StorageBackend:
    from .backends.servers import clickhouse_backend  # noqa: PLC0415

    return clickhouse_backend()


MAKERS: dict[str, Callable[[Path], StorageBackend]] = {
    "sqlite": _sqlite,
    "postgres": _postgres,
    "clickhouse": _clickhouse,
}


def _summaries(backend: StorageBackend) -> list[dict[str, Any]]:
    queries = [
        ReportQuery(app_id=APP),
        ReportQuery(app_id=APP, since=R0 + dt.timedelta(days=2), until=R0 + dt.timedelta(days=6)),
        ReportQuery(app_id=APP, platform="android", all_devices=True),
    ]
    with reports_for(backend) as reports:
        return [summarize(reports, query).to_json() for query in queries]


def test_sqlite_to_postgres_to_clickhouse_to_json_lines_to_sqlite(tmp_path: Path):
    first = SQLiteBackend(tmp_path / "first.sqlite3")
    store(first, generate(31, devices=25))
    first.write(holdable_events())
    expected = list(first.events())
    figures = _summaries(first)
    assert any(version["failures"] for version in figures[0]["versions"])

    chain: list[StorageBackend] = [first, _postgres(tmp_path), _clickhouse(tmp_path)]
    for source, target in itertools.pairwise(chain):
        assert copy_events(source, target, batch_size=500) == CopyResult(len(expected), 0)
        assert_same_events(target.events(), expected)
        assert _summaries(target) == figures
    exported = io.BytesIO(b"".join(json_line(e).encode() + b"\n" for e in chain[-1].events()))
    last = SQLiteBackend(tmp_path / "last.sqlite3")
    assert import_json_lines(exported, last) == CopyResult(len(expected), 0)

    assert_same_events(last.events(), expected)
    assert _summaries(last) == figures
    # Each store once more into the next: nothing new.
    for source, target in itertools.pairwise(chain):
        assert copy_events(source, target) == CopyResult(0, len(expected))
    for backend in [*chain, last]:
        backend.close()


PAIRS = [(a, b) for a in MAKERS for b in MAKERS]


@pytest.mark.parametrize(("source_kind", "target_kind"), PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_every_pair_of_backends(tmp_path: Path, source_kind: str, target_kind: str):
    source, target = MAKERS[source_kind](tmp_path), MAKERS[target_kind](tmp_path)
    source.write(holdable_events())
    expected = list(source.events())  # as precise as the source keeps it

    assert copy_events(source, target, batch_size=7) == CopyResult(len(expected), 0)
    assert copy_events(source, target, batch_size=7) == CopyResult(0, len(expected))

    assert_same_events(target.events(), expected)
    source.close()
    target.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "clickhouse"])
def test_cut_and_absent_fields_survive_a_copy(tmp_path: Path, kind: str):
    source = MemoryBackend()
    source.write(cut_and_absent_events())
    target = MAKERS[kind](tmp_path)

    copy_events(source, target)

    assert_same_events(target.events(), cut_and_absent_events())
    target.close()


@pytest.mark.parametrize("kind", ["postgres", "clickhouse"])
def test_lone_surrogates_survive_where_a_backend_holds_them(tmp_path: Path, kind: str):
    events = lone_surrogate_events()
    source = MemoryBackend()
    source.write(events)
    target = MAKERS[kind](tmp_path)

    copy_events(source, target)
    back = MemoryBackend()
    copy_events(target, back)

    assert_same_events(back.events(), events)
    assert_same_events(through_lines(list(back.events())), events)
    assert copy_events(source, target) == CopyResult(0, len(events))
    target.close()


@pytest.mark.parametrize("kind", ["postgres", "clickhouse"])
def test_a_batch_re_sent_after_the_move_is_a_duplicate_there(tmp_path: Path, kind: str):
    from .conftest import load_fixture  # noqa: PLC0415

    old = SQLiteBackend(tmp_path / "old.sqlite3")
    batch = json.dumps(load_fixture("android_batch")).encode()
    Collector(old, clock=lambda: RECEIVED_AT).handle(batch)
    new = MAKERS[kind](tmp_path)
    stored = len(list(old.events()))
    assert copy_events(old, new).copied == stored

    # The device never got its answer, and sends the same batch to the new store.
    collector = Collector(new)
    answer = collector.handle(batch)
    duplicates = sum(collector.metrics.snapshot().duplicates.values())
    after = len(list(new.events()))
    collector.close()

    assert [result["status"] for result in answer["results"]] == ["ok"] * stored
    assert duplicates == stored
    assert after == stored
    old.close()
