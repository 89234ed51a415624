"""Moving stored events: from one store to another, and out to JSON lines and back, exactly, once.

Everything goes through the backends' own methods: ``events()`` to read (the
read protocol, `SupportsEvents`) and ``write()`` to store, the very call the
server's writer makes. So a copy into a store that a running server writes to
is as safe as a second server: keys are checked by the backend, atomically.

What is carried: every wire field and unknown field, the server's receive time
(as precisely as the source keeps it), the fields stored cut, and the stored
key, as it is. The key is never recomputed: it was computed from the event as
received, before over-long values were cut (and rows from earlier releases
carry keys of an older formula), so it cannot always be derived from what is
stored.

Running a copy again, or after it was killed half-way, leaves each event stored
once:

- an event with a key is skipped by the target as a duplicate, as a re-sent
  batch is;
- events without a key (no device timestamp) are always stored by a backend,
  so the copy first counts the target's keyless events by their whole stored
  record (content, receive time to the millisecond, fields cut), and then
  leaves out as many source events with that record as the target holds
  already. The counts live in a scratch SQLite file, so memory stays bounded
  however many there are.

The rule's one limit: two keyless events alike in every field and received in
the same millisecond are one event to it; the target keeps as many of them as
the larger of the two stores holds, where a sum would have been right had they
been two real events (a device sends such twins only in one body, which every
store keeps whole, both in the source and, once copied, in the target).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import hashlib
import itertools
import json
import queue
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import attrs

from ._decode import parse_json
from ._epoch import epoch_ms
from ._models import StoredEvent, content_key
from ._policy import Policy
from ._storage import StorageBackend, SupportsBatching, SupportsEvents
from ._wire import Validator
from .exceptions import InvalidBodyError, InvalidEventError

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "EXPORT_FIELDS",
    "CopyResult",
    "copy_events",
    "describe",
    "import_json_lines",
    "json_line",
    "read_json_lines",
    "store_events",
    "write_size",
]

#: Events per `StorageBackend.write` call unless the target asks for larger writes (see
#: `write_size`): large enough for one round trip to carry many, small enough to bound memory
#: (a few batches in flight).
DEFAULT_BATCH_SIZE = 5000
# The largest write a target's own batching can ask a copy for: memory stays bounded whatever
# a target declares.
_LARGEST_BATCH_SIZE = 20_000


@attrs.frozen
class CopyResult:
    """What `copy_events` did.

    Attributes:
        copied: Events the target stored.
        present: Events the target held already (a key it knew, or a keyless
            event it holds as many times as the source): an earlier, interrupted
            copy, or a device that re-sent a batch to the new store first.
    """

    copied: int
    present: int

    @property
    def total(self) -> int:
        """Every event read from the source."""
        return self.copied + self.present


# -- JSON lines ------------------------------------------------------------------------------

#: Export-only fields of a JSON line; the underscore keeps them apart from the wire fields.
#: ``_received_at``, ``_key`` and ``_truncated`` are read back by ``import``; ``_device_time``
#: and ``_action_known`` are derived from the event, for people and other tools.
EXPORT_FIELDS = ("_received_at", "_device_time", "_action_known", "_truncated", "_key")
# A device may send unknown fields of these very names: they go in here, kept apart.
_SHADOWED = "_shadowed"
_RESERVED = frozenset((*EXPORT_FIELDS, _SHADOWED))

_STRICT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# Lone surrogates, which no UTF-8 file holds as they are, written as \ud800 escapes.
_ASCII_JSON = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode


def _iso(moment: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``; microseconds when the moment has any."""
    if moment is None:
        return None
    return moment.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def json_line(stored: StoredEvent) -> str:
    """*stored* as one JSON line (no newline): its wire fields plus the export fields.

    Without the fields starting with an underscore, a line is the event as the
    device sent it. Unknown fields that a device sent under an export field's
    name are kept under ``_shadowed``, so that nothing is overwritten.
    """
    record: dict[str, Any] = stored.event.to_wire()
    shadowed = {name: record.pop(name) for name in [name for name in record if name in _RESERVED]}
    record["_received_at"] = _iso(stored.received_at)
    record["_device_time"] = _iso(stored.device_time)
    record["_action_known"] = stored.action_known
    record["_truncated"] = list(stored.truncated)
    record["_key"] = stored.key
    if shadowed:
        record[_SHADOWED] = shadowed
    text: str = _STRICT_JSON(record)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate, from a store that holds them
            text = _ASCII_JSON(record)
    return text


# Ids as stored may be pseudonyms, or anything an earlier release or a custom writer stored:
# the wire part of a line is checked for its types and identifying fields, not its formats.
_PERMISSIVE = Policy(require_uuid_device_id=False, require_reverse_domain_app_id=False)


def _decode_line(line: bytes) -> Any:
    """One line's JSON, decoded as the intake decodes a body (integers past 64 bits exact)."""
    try:
        return parse_json(line)
    except InvalidBodyError as error:
        raise ValueError(error.message) from None


def _received_at(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise TypeError(f"_received_at must be an ISO 8601 time, not {value!r}")
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"_received_at has no time zone: {value!r}")
    return moment.astimezone(dt.timezone.utc)


def _stored_from_record(record: Any, validator: Validator) -> StoredEvent:
    if not isinstance(record, dict):
        raise TypeError("a line must be a JSON object")
    missing = [name for name in ("_received_at", "_key") if name not in record]
    if missing:
        raise ValueError(
            f"no {' or '.join(missing)}: not a line of 'updater-stats export --format jsonl' "
            "(exports before _key was added cannot be imported: the key is not recomputed)"
        )
    wire = {name: value for name, value in record.items() if name not in _RESERVED}
    shadowed = record.get(_SHADOWED, {})
    if not isinstance(shadowed, dict) or not _RESERVED.issuperset(shadowed):
        raise TypeError(f"{_SHADOWED} must be an object of export field names")
    wire.update(shadowed)
    key = record["_key"]
    if key is not None and not isinstance(key, str):
        raise TypeError(f"_key must be a string or null, not {key!r}")
    truncated = record.get("_truncated", [])
    if not isinstance(truncated, list) or not all(isinstance(path, str) for path in truncated):
        raise TypeError(f"_truncated must be an array of strings, not {truncated!r}")
    try:
        event = validator.parse(wire)
    except InvalidEventError as error:
        raise ValueError("; ".join(error.errors)) from None
    device_id = wire["device_id"]
    if event.device_id != device_id:  # the validator lower-cases it: keep it as stored
        event = attrs.evolve(event, device_id=device_id)
    return StoredEvent(
        event=event,
        received_at=_received_at(record["_received_at"]),
        key=key,
        truncated=tuple(truncated),
    )


def read_json_lines(lines: Iterable[bytes]) -> Iterator[StoredEvent]:
    """The events of ``export --format jsonl`` output, rebuilt exactly as they were stored.

    Blank lines are skipped.

    Raises:
        ValueError: naming the line that is not an exported event, and why.
    """
    validator = Validator(_PERMISSIVE)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield _stored_from_record(_decode_line(line), validator)
        # JSONDecodeError and UnicodeDecodeError are ValueErrors.
        except (TypeError, ValueError) as error:
            raise ValueError(f"line {number}: {error}") from None


# -- keyless events already in the target ----------------------------------------------------


def _fingerprint(stored: StoredEvent) -> bytes:
    """The whole stored record of a keyless event, as every backend reads it back.

    The receive time counts to the millisecond, the precision every built-in
    backend keeps at least: a record copied from a finer store to a coarser one
    still matches its source.
    """
    received_ms = epoch_ms(stored.received_at)
    material = f"{content_key(stored.event)}|{received_ms}|{_STRICT_JSON(stored.truncated)}"
    return hashlib.blake2b(material.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class _Tally:
    """How many times the target holds each keyless record: a multiset kept on disk.

    Nothing is opened until the first record is added: a copy into an empty
    store (or one without keyless events) costs nothing here.
    """

    _LOOKUP = 500  # fingerprints per SELECT, within SQLite's smallest parameter limit

    def __init__(self) -> None:
        self._directory: tempfile.TemporaryDirectory[str] | None = None
        self._conn: sqlite3.Connection | None = None
        self._pending: list[bytes] = []
        self.records = 0

    def close(self) -> None:
        """Remove the scratch file."""
        if self._conn is not None:
            self._conn.close()
        if self._directory is not None:
            self._directory.cleanup()

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self._directory = tempfile.TemporaryDirectory(prefix="updater-stats-copy-")
            path = Path(self._directory.name) / "keyless.sqlite3"
            self._conn = sqlite3.connect(path, isolation_level=None)
            # Scratch data, rebuilt by every run: no journal, no sync.
            self._conn.execute("PRAGMA journal_mode = OFF")
            self._conn.execute("PRAGMA synchronous = OFF")
            self._conn.execute(
                "CREATE TABLE held (fingerprint BLOB PRIMARY KEY, count INTEGER) WITHOUT ROWID"
            )
        return self._conn

    def add(self, fingerprint: bytes) -> None:
        self._pending.append(fingerprint)
        self.records += 1
        if len(self._pending) >= DEFAULT_BATCH_SIZE:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        conn = self._connect()
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO held VALUES (?, 1) "
            "ON CONFLICT (fingerprint) DO UPDATE SET count = count + 1",
            [(fingerprint,) for fingerprint in self._pending],
        )
        conn.execute("COMMIT")
        self._pending.clear()

    def take(self, fingerprints: Sequence[bytes]) -> list[bool]:
        """For each fingerprint in order, whether the target holds one more of it; counts it off."""
        if self._conn is None:
            return [False] * len(fingerprints)
        conn = self._conn
        wanted = list(dict.fromkeys(fingerprints))
        held: dict[bytes, int] = {}
        for start in range(0, len(wanted), self._LOOKUP):
            chunk = wanted[start : start + self._LOOKUP]
            marks = ", ".join("?" * len(chunk))
            held.update(
                conn.execute(
                    f"SELECT fingerprint, count FROM held WHERE fingerprint IN ({marks})",  # noqa: S608
                    chunk,
                ).fetchall()
            )
        if not any(held.values()):
            return [False] * len(fingerprints)
        taken: list[bool] = []
        left = dict(held)
        for fingerprint in fingerprints:
            count = left.get(fingerprint, 0)
            taken.append(count > 0)
            if count > 0:
                left[fingerprint] = count - 1
        changed = [(count, fp) for fp, count in left.items() if count != held[fp]]
        conn.execute("BEGIN")
        conn.executemany("UPDATE held SET count = ? WHERE fingerprint = ?", changed)
        conn.execute("COMMIT")
        return taken


def _tally_target(target: SupportsEvents, app_id: str | None, since: dt.datetime | None) -> _Tally:
    tally = _Tally()
    try:
        for stored in target.events(app_id=app_id):
            if stored.key is None and (since is None or stored.received_at >= since):
                tally.add(_fingerprint(stored))
        tally.flush()
    except BaseException:
        tally.close()
        raise
    return tally


# -- the copy --------------------------------------------------------------------------------


def _batches(
    events: Iterable[StoredEvent], since: dt.datetime | None, size: int
) -> Iterator[list[StoredEvent]]:
    batch: list[StoredEvent] = []
    for stored in events:
        if since is not None and stored.received_at < since:
            continue
        batch.append(stored)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


_DONE = object()


class _ReadAhead:
    """Batches read by a thread of their own, up to *depth* batches ahead of the writes.

    The source is read (and its rows decoded) while the target stores the
    previous batch, which mostly waits on its database with the interpreter
    lock released. At most *depth* + 2 batches are in memory at once.
    """

    def __init__(self, batches: Iterator[list[StoredEvent]], depth: int = 2) -> None:
        self._batches = batches
        self._handoff: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._read, name="updater-stats-copy-reader", daemon=True
        )

    def __enter__(self) -> Iterator[list[StoredEvent]]:
        self._thread.start()
        return self._received()

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        # The source's reader, left open when the writes stopped early, is closed here.
        close = getattr(self._batches, "close", None)
        if close is not None:
            close()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._handoff.put(item, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def _read(self) -> None:
        try:
            for batch in self._batches:
                if not self._put(batch):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the writing thread
            self._put(exc)
            return
        self._put(_DONE)

    def _received(self) -> Iterator[list[StoredEvent]]:
        while True:
            item = self._handoff.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


# A batch's events outlive many of the garbage collector's automatic passes (the youngest
# generation is collected every 700 allocations), so each was walked on its way to the oldest
# generation and again by the full passes their numbers set off. With the automatic passes
# off, one pass over the young generations after each batch walks each event about once;
# `updater-stats copy` of 100 100 events from SQLite into chdb took 2.5 to 2.6 s instead of
# 2.9 to 3.1 (three runs each). A full pass every so many batches still frees cyclic garbage
# (a driver's, say), so memory stays bounded.
_FULL_PASS_EVERY = 20


@contextlib.contextmanager
def _collect_per_batch() -> Iterator[Callable[[], None]]:
    """Automatic garbage collection off for a copy; the callable collects after a batch.

    A caller who turned it off already keeps it so, and no pass runs.
    """
    if not gc.isenabled():
        yield lambda: None
        return
    batches = itertools.count(1)

    def collect() -> None:
        gc.collect(2 if next(batches) % _FULL_PASS_EVERY == 0 else 1)

    gc.disable()
    try:
        yield collect
    finally:
        gc.enable()


def write_size(target: StorageBackend) -> int:
    """Events per write into *target* when the caller names no size.

    `DEFAULT_BATCH_SIZE`, or the target's own batch size (`SupportsBatching`) when it asks
    for larger writes, up to 20 000: ClickHouse, which makes a part per insert, takes 10 000
    events a write.
    """
    if isinstance(target, SupportsBatching):
        return max(DEFAULT_BATCH_SIZE, min(target.batching.max_events, _LARGEST_BATCH_SIZE))
    return DEFAULT_BATCH_SIZE


def store_events(  # noqa: PLR0913 - keyword-only options, each with a default
    events: Iterable[StoredEvent],
    target: StorageBackend,
    *,
    since: dt.datetime | None = None,
    app_id: str | None = None,
    batch_size: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> CopyResult:
    """Store *events* (in order) into *target* through its ``write``, each event once.

    *app_id* and *since* narrow the events read from the target to find the
    keyless events it holds; events before *since* are left out. Writes hold
    *batch_size* events, `write_size` of the target by default. *progress*
    is called after every batch with the number of events done.

    While it runs, the process's automatic garbage collection is off and a
    collection follows each batch instead; it is back on when this returns
    (unless the caller had turned it off).

    Raises:
        TypeError: *target* cannot list its events (`SupportsEvents`), so keyless
            events could not be stored once.
        BackendError: from the target's write or either side's read.
    """
    if batch_size is None:
        batch_size = write_size(target)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if not isinstance(target, SupportsEvents):
        raise TypeError(
            f"{type(target).__name__} cannot list its events: a copy into it could not tell "
            "which events without a key it holds already"
        )
    copied = present = 0
    with (
        contextlib.closing(_tally_target(target, app_id, since)) as tally,
        _collect_per_batch() as collect,
        _ReadAhead(_batches(events, since, batch_size)) as batches,
    ):
        for batch in batches:
            fresh: Sequence[StoredEvent] = batch
            if tally.records:
                keyless = [index for index, stored in enumerate(batch) if stored.key is None]
                taken = tally.take([_fingerprint(batch[index]) for index in keyless])
                skip = {index for index, held in zip(keyless, taken, strict=True) if held}
                if skip:
                    fresh = [stored for index, stored in enumerate(batch) if index not in skip]
                    present += len(skip)
            if fresh:
                result = target.write(fresh)
                copied += result.inserted
                present += result.duplicates
            collect()
            if progress is not None:
                progress(copied + present)
    return CopyResult(copied=copied, present=present)


def copy_events(  # noqa: PLR0913 - keyword-only options, each with a default
    source: SupportsEvents,
    target: StorageBackend,
    *,
    app_id: str | None = None,
    since: dt.datetime | None = None,
    batch_size: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> CopyResult:
    """Copy every event *source* holds into *target*, exactly, each event once.

    Every field is kept (wire fields, unknown fields, receive time, fields
    cut, and the stored key as it is), so a device that re-sends an old batch
    to the new store is still recognised. Events are read in storage order and
    written in batches of *batch_size* through ``target.write``, the call a
    server makes: a server may write to *target* meanwhile.

    Running it again, or after it was interrupted, stores only what is missing:
    keys the target holds are duplicates, and keyless events are matched by
    their whole stored record (see "Moving to a server backend" in the storage
    docs for the rule and its limits). Memory stays bounded; the target's
    keyless events are counted in a scratch file. While it runs, the process's
    automatic garbage collection is off and a collection follows each batch
    instead; it is back on when this returns (unless the caller had turned it
    off).

    Args:
        source: Where the events are; any backend with ``events()``.
        target: Where they go; it must have ``events()`` too.
        app_id: Only this app's events.
        since: Only events received at or after this moment.
        batch_size: Events per ``write`` call; by default 5 000, or the target's own
            batch size when it declares a larger one (ClickHouse: 10 000), up to 20 000.
        progress: Called after each batch with the number of events done so far.

    Returns:
        How many events were copied, and how many the target held already.
    """
    return store_events(
        source.events(app_id=app_id),
        target,
        since=since,
        app_id=app_id,
        batch_size=batch_size,
        progress=progress,
    )


def _lines(stream: IO[bytes]) -> Iterator[bytes]:
    yield from stream


def import_json_lines(
    stream: IO[bytes],
    target: StorageBackend,
    *,
    batch_size: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> CopyResult:
    """Store the events of an ``export --format jsonl`` stream into *target*, each once.

    Writes hold *batch_size* events, by default as many as for `copy_events`.
    """
    return store_events(
        read_json_lines(_lines(stream)), target, batch_size=batch_size, progress=progress
    )


def describe(result: CopyResult, verb: str) -> str:
    """The closing line of ``copy`` and ``import``."""
    return f"{verb} {result.copied} events, {result.present} already present"
