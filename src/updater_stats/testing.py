"""Helpers for tests, yours included: the in-memory backend and the contract suites.

`BackendContract` holds every promise of `StorageBackend` as pytest tests.
Subclass it in your own test module and give it a ``backend`` fixture that
yields a fresh, empty backend:

    import pytest
    from updater_stats.testing import BackendContract

    class TestMyBackend(BackendContract):
        @pytest.fixture
        def backend(self, tmp_path):
            backend = MyBackend(tmp_path / "events")
            yield backend
            backend.close()

The suite reads events back with the backend's ``events()`` method (every
stored event in storage order, as `StoredEvent` values: the read protocol,
`SupportsEvents`, with its ``app_id`` and ``since`` bounds); override
`BackendContract.read_back` if yours reads another way. Importing this module
needs pytest: ``pip install 'updater-stats[testing]'``.

A backend that erases (`SupportsForget`) or purges (`SupportsPurge`) adds
`ForgetContract` and `PurgeContract` to its test class's bases, and one that is
reported on (every backend with ``events()``, or one implementing `ReportSource`)
adds `ReportsContract`: every report figure, on a fixed data set, checked against
the reference implementation.
"""

# This module is test code, for pytest: plain `assert` is how its checks speak.
# ruff: noqa: S101

from __future__ import annotations

import datetime as dt
import json
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

import attrs
import pytest

from ._batching import Batching
from ._collector import Collector
from ._models import AppInfos, StoredEvent, WriteResult
from ._reports_contract import ReportsContract
from ._wire import parse_event
from .backends import MemoryBackend, StorageBackend, SupportsPing
from .exceptions import BackendError

__all__ = [
    "BackendContract",
    "ForgetContract",
    "MemoryBackend",
    "PurgeContract",
    "ReportsContract",
    "assert_same_events",
    "stored_event",
    "wire_event",
]

#: A valid event with every required field; `wire_event` starts from it.
BASE_EVENT: dict[str, Any] = {
    "app_id": "com.example.app",
    "device_id": "0b5e5c1a-93b4-4f0e-a3a2-1f7f6f3b2d10",
    "platform": "android",
    "action": "set",
    "version_name": "1.4.2",
    "old_version_name": "1.4.1",
    "version_build": "2.0.0",
    "version_code": "200",
    "version_os": "14",
    "plugin_version": "8.42.0",
    "is_prod": True,
    "is_emulator": False,
    "timestamp": 1764115200000,
}

#: The server time `stored_event` uses unless told otherwise (whole milliseconds, UTC).
RECEIVED_AT = dt.datetime(2026, 11, 26, 12, 30, 15, 123000, tzinfo=dt.timezone.utc)


def wire_event(**overrides: Any) -> dict[str, Any]:
    """`BASE_EVENT` with fields replaced; an override of `None` leaves the field out."""
    event = {**BASE_EVENT, **overrides}
    return {key: value for key, value in event.items() if value is not None}


def stored_event(*, received_at: dt.datetime = RECEIVED_AT, **overrides: Any) -> StoredEvent:
    """A validated `StoredEvent` as `Collector` builds it, from `wire_event(**overrides)`."""
    return StoredEvent.from_event(parse_event(wire_event(**overrides)), received_at)


def _json_difference(actual: Any, expected: Any, path: str) -> str | None:
    """Where two decoded JSON values differ, types included (``1`` is not ``1.0`` nor ``True``)."""
    if type(actual) is not type(expected):
        return f"{path}: {actual!r} ({type(actual).__name__}) != {expected!r}"
    if isinstance(expected, dict):
        if set(actual) != set(expected):
            return f"{path}: keys {sorted(actual)!r} != {sorted(expected)!r}"
        pairs = [(actual[key], value, f"{path}[{key!r}]") for key, value in expected.items()]
    elif isinstance(expected, list):
        if len(actual) != len(expected):
            return f"{path}: {len(actual)} items != {len(expected)}"
        pairs = [
            (a, e, f"{path}[{i}]") for i, (a, e) in enumerate(zip(actual, expected, strict=True))
        ]
    else:
        # -0.0 == 0.0 in Python, yet they are two JSON values: compare signs too.
        same = actual == expected and (
            not isinstance(expected, float)
            or math.copysign(1, actual) == math.copysign(1, expected)
        )
        return None if same else f"{path}: {actual!r} != {expected!r}"
    for one, other, where in pairs:
        found = _json_difference(one, other, where)
        if found:
            return found
    return None


def _event_difference(actual: StoredEvent, expected: StoredEvent) -> str | None:
    if actual.key != expected.key:
        return f"key: {actual.key!r} != {expected.key!r}"
    if actual.received_at.utcoffset() is None:
        return f"received_at has no time zone: {actual.received_at!r}"
    if actual.received_at != expected.received_at:
        return f"received_at: {actual.received_at!r} != {expected.received_at!r}"
    if tuple(actual.truncated) != tuple(expected.truncated):
        return f"truncated: {actual.truncated!r} != {expected.truncated!r}"
    for field in attrs.fields(AppInfos):
        found = _json_difference(
            getattr(actual.event, field.name),
            getattr(expected.event, field.name),
            f"event.{field.name}",
        )
        if found:
            return found
    return None


def assert_same_events(actual: Iterable[StoredEvent], expected: Iterable[StoredEvent]) -> None:
    """Assert that two sequences hold the same events, exactly: every field, every JSON type.

    Stricter than ``==``, for which ``1 == 1.0 == True``. Key order inside
    JSON objects is not compared: JSON objects are unordered.
    """
    actual, expected = list(actual), list(expected)
    assert len(actual) == len(expected), f"{len(actual)} events read back, {len(expected)} expected"
    for index, (one, other) in enumerate(zip(actual, expected, strict=True)):
        found = _event_difference(one, other)
        assert found is None, f"event {index} differs: {found}"


# Strings that break naive storage code: NUL, the C0 controls, COPY/CSV/TSV syntax, JSON and
# SQL syntax, lines that end in odd places, Unicode beyond the BMP, invisible characters.
ODD_STRINGS: tuple[str, ...] = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "\x00\x00 trailing NUL\x00",
    "".join(chr(code) for code in range(32)) + "\x7f",
    "\x10",  # a control character some escaping schemes use as their escape
    "\x101",
    "\\",
    "\\N",  # NULL in COPY's text format
    "\\.",  # end of data in COPY's text format
    "\\x00",
    "\\u0000",
    "\\ud800",
    "tab\tnew\nline\rreturn\r\n",
    "'; DROP TABLE events; --",
    '" OR 1=1 --',
    "%s %(name)s {0} {name} $1 ?",
    '{"json": [1, 2]}',
    "null",
    "true",
    "0",
    "🚀",
    "👩‍👩‍👧‍👦",  # one grapheme, seven code points
    "e\u0301 \u00e9",
    "\u202eright to left\u202c",
    "\ufeffBOM",
    "\u2028\u2029\u0085",
    "\uffff\ufffe\U0010ffff",
    "\ue000 private use",
    "日本語のテキスト",
    "x" * 1024,
)


class _ContractBase:
    """What every contract suite uses: reading back and checked writes."""

    def read_back(
        self, backend: Any, app_id: str | None = None, since: dt.datetime | None = None
    ) -> list[StoredEvent]:
        """Every event *backend* holds, in storage order (of *app_id* only, received at or
        after *since* only, when given); override for another read path."""
        # Only the bounds given are passed, as the library's own callers do.
        bounds = {"app_id": app_id, "since": since}
        return list(backend.events(**{k: v for k, v in bounds.items() if v is not None}))

    def write(self, backend: StorageBackend, events: Sequence[StoredEvent]) -> WriteResult:
        """``backend.write(events)``, its `WriteResult` checked to account for every event."""
        result = backend.write(events)
        assert isinstance(result, WriteResult), f"write returned {result!r}, not a WriteResult"
        assert result.inserted + result.duplicates == len(events), result
        if result.duplicate_indexes is not None:
            # Optional, but when given it must name exactly the duplicates.
            assert len(result.duplicate_indexes) == result.duplicates, result
            assert all(0 <= i < len(events) for i in result.duplicate_indexes), result
        return result


def _in_threads(work: Callable[[int], None], count: int) -> list[BaseException]:
    """Run ``work(0)`` ... ``work(count - 1)`` in threads at once; what they raised."""
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            work(index)
        except BaseException as exc:  # noqa: BLE001 - returned, for the test to assert on
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return errors


class BackendContract(_ContractBase):
    """The promises of `StorageBackend`, as tests to run against any backend.

    Subclass it in a test module and provide a ``backend`` fixture yielding a
    fresh, empty backend (and closing it afterwards). Every test here must
    pass unchanged; none depends on how the backend stores events.

    Reading back: the default `read_back` calls ``backend.events()``, which
    must yield every stored event in storage order (write order for writes
    from one thread), optionally filtered by ``app_id`` and ``since``.
    """

    #: Threads used by the concurrency tests.
    threads: ClassVar[int] = 8

    # -- batches and keys ------------------------------------------------------------------

    def test_implements_the_protocol(self, backend: StorageBackend) -> None:
        assert isinstance(backend, StorageBackend)

    def test_a_batch_is_stored_in_order_and_counted(self, backend: StorageBackend) -> None:
        batch = [stored_event(timestamp=ts) for ts in (3, 1, 2)]
        batch += [stored_event(timestamp=None, version_code=code) for code in ("b", "a")]

        assert self.write(backend, batch) == WriteResult(inserted=5, duplicates=0)

        assert_same_events(self.read_back(backend), batch)

    def test_an_empty_batch_stores_nothing(self, backend: StorageBackend) -> None:
        assert self.write(backend, []) == WriteResult(inserted=0, duplicates=0)
        assert self.read_back(backend) == []

    def test_known_keys_are_skipped_and_counted(self, backend: StorageBackend) -> None:
        keyed = [stored_event(timestamp=ts) for ts in range(4)]
        keyless = stored_event(timestamp=None)
        self.write(backend, [*keyed, keyless])

        again = self.write(backend, [*keyed, keyless])

        assert again == WriteResult(inserted=1, duplicates=4)
        assert_same_events(self.read_back(backend), [*keyed, keyless, keyless])

    def test_a_retry_later_keeps_the_first_copy(self, backend: StorageBackend) -> None:
        first = stored_event(timestamp=7, metadata={"try": "1"})
        # The same event, sent again a day later: the same key, a duplicate.
        retry = attrs.evolve(first, received_at=RECEIVED_AT + dt.timedelta(days=1))
        assert first.key == retry.key

        self.write(backend, [first])
        assert self.write(backend, [retry]) == WriteResult(inserted=0, duplicates=1)

        assert_same_events(self.read_back(backend), [first])

    def test_duplicates_inside_one_batch_keep_the_first(self, backend: StorageBackend) -> None:
        a, b = stored_event(timestamp=1), stored_event(timestamp=2)
        a_again = attrs.evolve(a, received_at=RECEIVED_AT + dt.timedelta(seconds=1))

        result = self.write(backend, [a, b, a_again, a, b])

        assert result == WriteResult(inserted=2, duplicates=3)
        assert_same_events(self.read_back(backend), [a, b])

    def test_events_alike_but_for_metadata_are_all_stored(self, backend: StorageBackend) -> None:
        # The exit reporter sends past app exits in one loop, in the same millisecond.
        exits = [
            stored_event(action="app_crash", timestamp=7, metadata={"exit_reason": "crash"}),
            stored_event(action="app_crash", timestamp=7, metadata={"exit_reason": "anr"}),
            stored_event(
                action="app_crash", timestamp=7, metadata={"exit_reason": "crash", "n": "2"}
            ),
            stored_event(action="app_crash", timestamp=7, metadata={}),
            stored_event(action="app_crash", timestamp=7),
        ]
        assert len({e.key for e in exits}) == len(exits)

        assert self.write(backend, exits) == WriteResult(inserted=5, duplicates=0)
        assert self.write(backend, exits) == WriteResult(inserted=0, duplicates=5)

        assert_same_events(self.read_back(backend), exits)

    def test_events_alike_but_for_an_unknown_field_are_all_stored(
        self, backend: StorageBackend
    ) -> None:
        events = [
            stored_event(timestamp=7),
            stored_event(timestamp=7, message="first"),
            stored_event(timestamp=7, message="second"),
            stored_event(timestamp=7, message={"nested": "second"}),
        ]
        assert len({e.key for e in events}) == len(events)

        assert self.write(backend, events) == WriteResult(inserted=4, duplicates=0)

        assert_same_events(self.read_back(backend), events)

    def test_events_alike_but_for_any_field_are_all_stored(self, backend: StorageBackend) -> None:
        base = wire_event(custom_id="u1", channel="beta", metadata={"k": "v"})
        variants = [
            base,
            *(
                {**base, field: value}
                for field, value in [
                    ("platform", "ios"),
                    ("version_build", "2.0.1"),
                    ("version_code", "201"),
                    ("version_os", "15"),
                    ("plugin_version", "8.42.1"),
                    ("custom_id", "u2"),
                    ("is_prod", False),
                    ("is_emulator", True),
                    ("install_source", "google_play"),
                    ("defaultChannel", "production"),
                    ("channel", "alpha"),
                    ("key_id", "k-2"),
                    ("old_version_name", "1.4.0"),
                ]
            ),
        ]
        events = [StoredEvent.from_event(parse_event(wire), RECEIVED_AT) for wire in variants]
        assert len({e.key for e in events}) == len(events)

        assert self.write(backend, events) == WriteResult(inserted=len(events), duplicates=0)

    def test_the_same_event_written_another_way_is_stored_once(
        self, backend: StorageBackend
    ) -> None:
        # A re-sent batch may be serialised anew: another key order, Android's escaped
        # slashes, an absent optional value sent as null, a device id in upper case.
        collector = Collector(backend)
        base = wire_event(
            version_name="1.4.2:assets/main.js", metadata={"url": "https://e.x/a/b", "n": "1"}
        )
        sent = json.dumps(base)
        others = [
            json.dumps(dict(reversed(list(base.items())))),
            sent.replace("/", "\\/"),
            json.dumps({**base, "custom_id": None, "channel": None, "stats_mode": None}),
            json.dumps({**base, "metadata": dict(reversed(list(base["metadata"].items())))}),
            json.dumps({**base, "device_id": base["device_id"].upper()}),
            json.dumps(base, ensure_ascii=True, indent=2),
        ]
        assert "\\/" in others[1]

        for body in [sent, *others]:
            assert collector.handle(f"[{body}]".encode())["results"][0]["status"] == "ok"

        (stored,) = self.read_back(backend)
        assert stored.event.to_wire() == base

    def test_cut_fields_read_back(self, backend: StorageBackend) -> None:
        cut = attrs.evolve(
            stored_event(timestamp=1, custom_id="c" * 10),
            truncated=("custom_id", "extras", "metadata", "metadata.stack"),
        )
        whole = stored_event(timestamp=2)

        self.write(backend, [cut, whole])

        read_cut, read_whole = self.read_back(backend)
        assert_same_events([read_cut, read_whole], [cut, whole])
        assert tuple(read_cut.truncated) == ("custom_id", "extras", "metadata", "metadata.stack")
        assert tuple(read_whole.truncated) == ()

    def test_a_batch_of_new_and_known_events(self, backend: StorageBackend) -> None:
        old = [stored_event(timestamp=ts) for ts in range(0, 10, 2)]
        self.write(backend, old)
        mixed = [stored_event(timestamp=ts) for ts in range(10)]

        assert self.write(backend, mixed) == WriteResult(inserted=5, duplicates=5)

        assert_same_events(self.read_back(backend), old + mixed[1::2])

    def test_events_without_a_key_are_always_stored(self, backend: StorageBackend) -> None:
        keyless = stored_event(timestamp=None)
        assert keyless.key is None

        assert self.write(backend, [keyless, keyless]) == WriteResult(inserted=2, duplicates=0)
        assert self.write(backend, [keyless]) == WriteResult(inserted=1, duplicates=0)

        assert_same_events(self.read_back(backend), [keyless] * 3)

    def test_a_large_batch(self, backend: StorageBackend) -> None:
        batch = [stored_event(timestamp=ts, custom_id=f"user-{ts}") for ts in range(2000)]

        assert self.write(backend, batch) == WriteResult(inserted=2000, duplicates=0)
        assert self.write(backend, batch[::-1]) == WriteResult(inserted=0, duplicates=2000)

        assert_same_events(self.read_back(backend), batch)

    # -- every field, losslessly -----------------------------------------------------------

    def test_every_wire_field_and_extra_reads_back(self, backend: StorageBackend) -> None:
        full = stored_event(
            action="app_nav2",  # not a known action (yet): kept as sent
            custom_id="user-42",
            is_prod=False,
            is_emulator=True,
            install_source="testflight",
            defaultChannel="beta",
            channel="canary",
            key_id="k-1",
            metadata={"duration_ms": "1500", "empty": "", "stack": "at main.js:1\n" * 100},
            stats_mode="batch",
            bundle_id="b_1",
            nested={"list": [1, -2, 2**70, -(2**63), 0, None, True, False, "", [], {}]},
            floats=[0.1, -2.5, 1e300, 5e-324, 1e16, 100000.0, 2.0, -0.0, 0.0, 123456789.125],
            deep={"a": {"b": {"c": {"d": [[["bottom"]]]}}}},
            empty_object={},
            empty_list=[],
            null_extra=[None],
        )
        assert full.event.extras  # the unknown fields are extras

        self.write(backend, [full])

        (read,) = self.read_back(backend)
        assert_same_events([read], [full])
        assert read.event.to_wire() == full.event.to_wire()
        assert read.action_known is False

    def test_absent_empty_and_false_are_kept_apart(self, backend: StorageBackend) -> None:
        bare = stored_event(
            old_version_name=None, timestamp=None, is_prod=None, is_emulator=None, version_name=""
        )
        empty = stored_event(
            old_version_name="",
            timestamp=0,
            custom_id="",
            install_source="",
            defaultChannel="",
            channel="",
            key_id="",
            metadata={},
        )

        self.write(backend, [bare, empty])

        read_bare, read_empty = self.read_back(backend)
        assert_same_events([read_bare, read_empty], [bare, empty])
        assert read_bare.event.old_version_name is None
        assert read_bare.event.metadata is None
        assert read_bare.event.extras == {}
        assert read_bare.event.timestamp is None
        assert read_empty.event.metadata == {}
        assert read_empty.event.old_version_name == ""
        assert read_empty.event.timestamp == 0

    def test_device_timestamps_at_the_edges(self, backend: StorageBackend) -> None:
        edges = [0, 1, 999, 1764115200000, 253402300799999, 253402300800000, 2**63 - 1]
        events = [stored_event(timestamp=ts) for ts in edges]

        self.write(backend, events)

        read = self.read_back(backend)
        assert_same_events(read, events)
        assert [e.event.timestamp for e in read] == edges

    def test_received_at_reads_back_in_utc(self, backend: StorageBackend) -> None:
        moments = [
            dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc),
            dt.datetime(2026, 2, 28, 23, 59, 59, 999000, tzinfo=dt.timezone.utc),
            dt.datetime(2026, 3, 1, 0, 0, tzinfo=dt.timezone.utc),
            # Another offset: the same instant must come back (in any time zone).
            dt.datetime(2026, 7, 1, 14, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        ]
        events = [stored_event(timestamp=i, received_at=m) for i, m in enumerate(moments)]

        self.write(backend, events)

        read = self.read_back(backend)
        assert_same_events(read, events)
        assert [r.received_at.utcoffset() for r in read[:3]] == [dt.timedelta(0)] * 3
        assert read[3].received_at == dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.timezone.utc)

    def test_received_at_keeps_at_least_milliseconds(self, backend: StorageBackend) -> None:
        moment = dt.datetime(2026, 5, 4, 3, 2, 1, 654321, tzinfo=dt.timezone.utc)
        self.write(backend, [stored_event(received_at=moment)])

        (read,) = self.read_back(backend)
        # Backends keep milliseconds or finer; the server clock needs no more.
        assert moment - dt.timedelta(milliseconds=1) < read.received_at <= moment
        assert read.received_at.utcoffset() == dt.timedelta(0)

    @pytest.mark.parametrize("text", ODD_STRINGS, ids=lambda s: repr(s)[:24])
    def test_odd_strings_read_back_in_every_field(self, backend: StorageBackend, text: str) -> None:
        short = text[:20]
        event = stored_event(
            platform=text,
            action=text,
            version_name=text,
            old_version_name=text,
            version_build=text,
            version_code=text,
            version_os=text,
            plugin_version=text,
            custom_id=text[:36],
            install_source=text[:64],
            defaultChannel=text,
            channel=text,
            key_id=short,
            metadata={text[:64]: text, "k": text},
            odd=text,
            odd_list=[text, {text: [text]}],
            **({text: text} if text and text not in BASE_EVENT else {}),  # type: ignore[arg-type]
        )
        keyless = stored_event(timestamp=None, version_name=text, metadata={"v": text})

        self.write(backend, [event, keyless])
        # The key, made of odd text, is recognised.
        assert self.write(backend, [event]) == WriteResult(inserted=0, duplicates=1)

        assert_same_events(self.read_back(backend), [event, keyless])

    def test_many_odd_strings_in_one_batch(self, backend: StorageBackend) -> None:
        events = [
            stored_event(timestamp=index, version_name=text, custom_id=text[:36], odd=text)
            for index, text in enumerate(ODD_STRINGS)
        ]

        assert self.write(backend, events).inserted == len(events)

        assert_same_events(self.read_back(backend), events)

    def test_reading_by_app(self, backend: StorageBackend) -> None:
        events = [stored_event(timestamp=ts, app_id=f"com.app.n{ts % 3}") for ts in range(12)]
        self.write(backend, events)

        for app in ("com.app.n0", "com.app.n2"):
            expected = [e for e in events if e.event.app_id == app]
            assert_same_events(self.read_back(backend, app_id=app), expected)
        assert self.read_back(backend, app_id="com.app.none") == []

    def test_reading_since(self, backend: StorageBackend) -> None:
        bound = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
        offsets = [-40 * 86_400_000, -1, 0, 1, 60_000, 40 * 86_400_000]  # milliseconds
        events = [
            stored_event(
                timestamp=index,
                app_id=f"com.app.n{index % 2}",
                received_at=bound + dt.timedelta(milliseconds=offset),
            )
            for index, offset in enumerate(offsets + offsets[::-1])
        ]
        self.write(backend, events)

        for since in (
            bound,  # inclusive: the event received at the bound itself is read
            bound - dt.timedelta(milliseconds=1),
            bound + dt.timedelta(microseconds=500),  # between two stored milliseconds
            bound.astimezone(dt.timezone(dt.timedelta(hours=-5))),  # the same instant
            bound - dt.timedelta(days=400),
        ):
            expected = [e for e in events if e.received_at >= since]
            assert_same_events(self.read_back(backend, since=since), expected)
        app = "com.app.n1"
        expected = [e for e in events if e.received_at >= bound and e.event.app_id == app]
        assert_same_events(self.read_back(backend, app_id=app, since=bound), expected)
        assert self.read_back(backend, since=bound + dt.timedelta(days=41)) == []

    # -- threads and the collector ---------------------------------------------------------

    def test_concurrent_writes_lose_and_double_nothing(self, backend: StorageBackend) -> None:
        rounds, shared = 15, [stored_event(timestamp=10_000 + i) for i in range(5)]
        results: list[WriteResult] = []
        start = threading.Barrier(self.threads)

        def work(worker: int) -> None:
            start.wait()
            for i in range(rounds):
                own = stored_event(timestamp=worker * 1000 + i, custom_id=f"w{worker}")
                keyless = stored_event(timestamp=None, version_code=f"{worker}-{i}")
                # Every thread also re-sends the same shared events: all race for them.
                results.append(self.write(backend, [own, keyless, shared[i % 5]]))

        assert _in_threads(work, self.threads) == []
        read = self.read_back(backend)
        keys = [e.key for e in read if e.key is not None]
        assert len(keys) == len(set(keys)), "a key was stored twice"
        expected_keys = {e.key for e in shared} | {
            stored_event(timestamp=w * 1000 + i, custom_id=f"w{w}").key
            for w in range(self.threads)
            for i in range(rounds)
        }
        assert set(keys) == expected_keys
        assert sorted(e.event.version_code or "" for e in read if e.key is None) == sorted(
            f"{w}-{i}" for w in range(self.threads) for i in range(rounds)
        )
        assert sum(r.inserted for r in results) == len(read)

    def test_the_collector_answers_only_what_is_stored(self, backend: StorageBackend) -> None:
        collector = Collector(backend, batching=Batching(max_delay=0.005))
        per_thread = 40
        answers: list[dict[str, Any]] = []

        def send(worker: int) -> None:
            for i in range(per_thread):
                event = wire_event(timestamp=worker * 1000 + i)
                body = json.dumps([event, event]).encode()  # a retry inside one body
                answers.append(collector.handle(body))

        assert _in_threads(send, self.threads) == []
        assert len(answers) == self.threads * per_thread
        assert all(a["results"][1] == {"status": "ok", "index": 1} for a in answers)
        stamps = sorted(e.event.timestamp or 0 for e in self.read_back(backend))
        assert stamps == sorted(
            w * 1000 + i for w in range(self.threads) for i in range(per_thread)
        )

    # -- health and closing ----------------------------------------------------------------

    def test_ping_answers_when_ready(self, backend: StorageBackend) -> None:
        if not isinstance(backend, SupportsPing):
            return  # optional: a backend without ping() is taken as ready
        backend.ping()
        self.write(backend, [stored_event()])
        backend.ping()

    def test_close_is_final_and_can_be_repeated(self, backend: StorageBackend) -> None:
        self.write(backend, [stored_event(timestamp=1)])

        backend.close()
        backend.close()

        with pytest.raises(BackendError):
            backend.write([stored_event(timestamp=2)])
        if isinstance(backend, SupportsPing):
            with pytest.raises(BackendError):
                backend.ping()


# -- erasure and retention ---------------------------------------------------------------------

_DEVICE_A = "0b5e5c1a-93b4-4f0e-a3a2-1f7f6f3b2d10"
_DEVICE_B = "7f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f"
_DEVICE_C = "a0a0a0a0-b1b1-4c2c-8d3d-e4e4e4e4e4e4"


class ForgetContract(_ContractBase):
    """The promises of `SupportsForget`: ``forget`` erases exactly the events it names.

    Values are compared as stored; `Collector.forget` adds pseudonyms on top.
    """

    def _population(self) -> list[StoredEvent]:
        return [
            stored_event(device_id=_DEVICE_A, timestamp=1, custom_id="user-1"),
            stored_event(device_id=_DEVICE_A, timestamp=None, custom_id=None),
            stored_event(device_id=_DEVICE_B, timestamp=2, custom_id="user-1"),
            stored_event(device_id=_DEVICE_B, timestamp=3, custom_id="user-2"),
            stored_event(device_id=_DEVICE_C, timestamp=4, custom_id=""),
            stored_event(device_id=_DEVICE_C, timestamp=5, app_id="com.example.other"),
        ]

    def test_forget_a_device_erases_its_events_only(self, backend: Any) -> None:
        events = self._population()
        self.write(backend, events)

        assert backend.forget(device_ids=[_DEVICE_A]) == 2

        assert_same_events(self.read_back(backend), events[2:])

    def test_forget_a_user_erases_their_events_on_every_device(self, backend: Any) -> None:
        events = self._population()
        self.write(backend, events)

        assert backend.forget(custom_ids=["user-1"]) == 2

        assert_same_events(self.read_back(backend), [events[1], *events[3:]])

    def test_devices_and_users_together_count_each_event_once(self, backend: Any) -> None:
        events = self._population()
        self.write(backend, events)

        # events[0] matches both; events[5] is the other app's, of device C.
        assert backend.forget(device_ids=[_DEVICE_A, _DEVICE_C], custom_ids=["user-1"]) == 5

        assert_same_events(self.read_back(backend), [events[3]])

    def test_forget_what_is_not_stored_erases_nothing(self, backend: Any) -> None:
        events = self._population()
        self.write(backend, events)

        assert backend.forget(device_ids=["ffffffff-ffff-4fff-8fff-ffffffffffff"]) == 0
        assert backend.forget(custom_ids=["nobody"], device_ids=[]) == 0
        assert backend.forget() == 0

        assert_same_events(self.read_back(backend), events)

    def test_a_forgotten_event_sent_again_is_stored_again(self, backend: Any) -> None:
        events = self._population()
        self.write(backend, events)
        backend.forget(device_ids=[_DEVICE_B])

        # Nothing remembers the erased events, not even their keys.
        assert self.write(backend, events[2:4]) == WriteResult(inserted=2, duplicates=0)
        assert self.write(backend, events) == WriteResult(inserted=1, duplicates=5)

    @pytest.mark.parametrize("text", ["a\x00b", "'; DROP TABLE events; --", "🚀", "\x10"])
    def test_odd_ids_are_erased_exactly(self, backend: Any, text: str) -> None:
        odd = stored_event(timestamp=1, custom_id=text)
        other = stored_event(timestamp=2, custom_id=text + "x")
        self.write(backend, [odd, other])

        assert backend.forget(custom_ids=[text]) == 1

        assert_same_events(self.read_back(backend), [other])


class PurgeContract(_ContractBase):
    """The promises of `SupportsPurge`: ``purge`` deletes exactly what arrived before a moment."""

    #: Server receive times over several months, oldest first, and a cutoff within them.
    moments: ClassVar[tuple[dt.datetime, ...]] = (
        dt.datetime(2025, 11, 3, 8, 0, tzinfo=dt.timezone.utc),
        dt.datetime(2025, 12, 31, 23, 59, 59, 999000, tzinfo=dt.timezone.utc),
        dt.datetime(2026, 1, 15, tzinfo=dt.timezone.utc),
        dt.datetime(2026, 2, 1, 11, 59, 59, 999000, tzinfo=dt.timezone.utc),
        dt.datetime(2026, 2, 1, 12, 0, tzinfo=dt.timezone.utc),  # the cutoff itself: kept
        dt.datetime(2026, 2, 20, tzinfo=dt.timezone.utc),
        dt.datetime(2026, 4, 1, tzinfo=dt.timezone.utc),
    )
    cutoff: ClassVar[dt.datetime] = dt.datetime(2026, 2, 1, 12, 0, tzinfo=dt.timezone.utc)

    def _events(self) -> list[StoredEvent]:
        events = [
            stored_event(timestamp=index, received_at=moment)
            for index, moment in enumerate(self.moments)
        ]
        # Keyless events and other apps are purged by age alike.
        events += [
            stored_event(timestamp=None, received_at=moment, app_id="com.example.other")
            for moment in self.moments[::3]
        ]
        return events

    def test_purge_deletes_exactly_the_events_received_before(self, backend: Any) -> None:
        events = self._events()
        self.write(backend, events)
        expected = [e for e in events if e.received_at >= self.cutoff]

        assert backend.purge(older_than=self.cutoff) == len(events) - len(expected)

        assert_same_events(self.read_back(backend), expected)

    def test_purge_with_nothing_old_enough_deletes_nothing(self, backend: Any) -> None:
        events = self._events()
        self.write(backend, events)

        assert backend.purge(older_than=self.moments[0]) == 0
        assert backend.purge(older_than=self.moments[0] - dt.timedelta(days=400)) == 0

        assert_same_events(self.read_back(backend), events)

    def test_purge_of_an_empty_store(self, backend: Any) -> None:
        assert backend.purge(older_than=self.cutoff) == 0
        assert self.read_back(backend) == []

    def test_purge_everything_then_store_again(self, backend: Any) -> None:
        events = self._events()
        self.write(backend, events)

        assert backend.purge(older_than=self.moments[-1] + dt.timedelta(days=1)) == len(events)
        assert self.read_back(backend) == []
        # A purged event re-sent is new again.
        assert self.write(backend, events[:2]) == WriteResult(inserted=2, duplicates=0)

    def test_purge_takes_any_time_zone(self, backend: Any) -> None:
        events = self._events()
        self.write(backend, events)
        same_instant = self.cutoff.astimezone(dt.timezone(dt.timedelta(hours=-5)))

        backend.purge(older_than=same_instant)

        assert_same_events(
            self.read_back(backend), [e for e in events if e.received_at >= self.cutoff]
        )
