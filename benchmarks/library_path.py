"""The library path: `Collector.handle()` into durable SQLite, against its limits.

    .venv/bin/python benchmarks/library_path.py            # about a minute
    .venv/bin/python benchmarks/library_path.py --quick    # a few seconds, for CI

Side by side, on the same bodies, in one run:

- raw limit: JSON parse (orjson when installed, as the library) and cattrs
  structure of every event into `AppInfos`, with no validation hooks and no storage;
- library: `Collector.handle()` into a SQLite file (WAL, synced after every commit:
  each answer only after its events are synced), from one caller, and from
  several threads at once as a threaded server calls it;
- floor handler: the least a durable handler does, ``json.loads``, each event's JSON
  text and receive time into one table without an index, one transaction (synced) per
  body: no checks, no keys, no duplicates found; what storage and parsing alone allow;
- seed-style: the hand-written handler, ``json.loads`` and one ``INSERT`` plus
  ``commit`` per event, into SQLite with its defaults (also durable).

Then the CPU an event of `SQLiteBackend.write()` alone for single events, 32 a write (what
group commit gathers under single-event load), into a table of 32 000: each index's pages
show in it.

Bodies are 200-event arrays like current plugins send (one device's queue per
body, a different device in each, no timestamp repeated: the same shape as
``http_path.py`` sends) and single objects like old ones (see ``_bodies.py``).
Prints events/s for each and the issue's ratios.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cattrs
from _bodies import batch_bodies, handle_from_threads, info_line, rate, ratio_line, single_bodies
from cattrs.gen import make_dict_structure_fn, override

from updater_stats import AppInfos, Collector, SQLiteBackend, parse_event
from updater_stats._decode import orjson
from updater_stats._models import StoredEvent

BATCH_SIZE = 200


def _plain_structure() -> Callable[[dict[str, Any]], AppInfos]:
    """cattrs at its plainest: the one renamed key, no checks of ours."""
    converter = cattrs.Converter()
    return make_dict_structure_fn(  # type: ignore[no-any-return]
        AppInfos, converter, default_channel=override(rename="defaultChannel")
    )


def raw_limit(bodies: Sequence[bytes]) -> float:
    """Seconds to parse and structure every event of *bodies*, storing nothing."""
    loads = orjson.loads if orjson is not None else json.loads
    structure = _plain_structure()
    began = time.perf_counter()
    for body in bodies:
        payload = loads(body)
        for item in payload if type(payload) is list else [payload]:
            structure(item)
    return time.perf_counter() - began


def library(bodies: Sequence[bytes], folder: Path, threads: int) -> float:
    """Seconds for `Collector.handle()` to store *bodies* durably, from *threads* callers."""
    collector = Collector(SQLiteBackend(folder / f"library-{threads}.sqlite3"))
    try:
        collector.handle(b"[]")  # opens and creates the file: not part of the timing
        return handle_from_threads(collector, bodies, threads)
    finally:
        collector.close()


_SEED_COLUMNS = (
    "app_id",
    "device_id",
    "platform",
    "action",
    "version_name",
    "old_version_name",
    "version_build",
    "version_code",
    "version_os",
    "plugin_version",
    "custom_id",
    "is_prod",
    "is_emulator",
    "install_source",
    "default_channel",
    "timestamp",
    "metadata",
)


def floor_handler(bodies: Sequence[bytes], folder: Path) -> float:
    """Seconds for the floor handler (module docstring) to store *bodies* durably."""
    conn = sqlite3.connect(folder / "floor.sqlite3", isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")  # synced at each commit, as the library
        conn.execute(
            "CREATE TABLE events "
            "(id INTEGER PRIMARY KEY, received_at INTEGER NOT NULL, event TEXT NOT NULL)"
        )
        began = time.perf_counter()
        for body in bodies:
            payload = json.loads(body)
            now = int(time.time() * 1000)
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO events (received_at, event) VALUES (?, ?)",
                [
                    (now, json.dumps(event))
                    for event in (payload if type(payload) is list else [payload])
                ],
            )
            conn.execute("COMMIT")
        return time.perf_counter() - began
    finally:
        conn.close()


def seed_style(bodies: Sequence[bytes], folder: Path, budget: float) -> tuple[int, float]:
    """Events stored and seconds taken by the twenty-line handler, stopping after *budget* s."""
    conn = sqlite3.connect(folder / "seed.sqlite3")  # the defaults: rollback journal, FULL sync
    conn.execute(f"CREATE TABLE stats (id INTEGER PRIMARY KEY, {', '.join(_SEED_COLUMNS)})")
    insert = (
        f"INSERT INTO stats ({', '.join(_SEED_COLUMNS)}) "
        f"VALUES ({', '.join('?' for _ in _SEED_COLUMNS)})"
    )

    def handle(body: bytes) -> int:
        data = json.loads(body)
        events = data if isinstance(data, list) else [data]
        for event in events:
            row = [event.get(name) for name in _SEED_COLUMNS]
            row[_SEED_COLUMNS.index("default_channel")] = event.get("defaultChannel")
            metadata = event.get("metadata")
            row[-1] = None if metadata is None else json.dumps(metadata)
            conn.execute(insert, row)
            conn.commit()
        return len(events)

    stored = 0
    began = time.perf_counter()
    try:
        for body in bodies:
            stored += handle(body)
            if time.perf_counter() - began > budget:
                break
        return stored, time.perf_counter() - began
    finally:
        conn.close()


def events_in(bodies: Sequence[bytes]) -> int:
    return sum(len(payload) if type(payload := json.loads(body)) is list else 1 for body in bodies)


def storage_alone(bodies: Sequence[bytes], folder: Path) -> float:
    """Seconds for `SQLiteBackend.write` alone to store the events, one write per body.

    The events are decoded and validated beforehand, untimed: this is the ceiling that
    storage puts on the library, whatever the library does before it.
    """
    received_at = dt.datetime.now(dt.timezone.utc)
    writes = []
    for body in bodies:
        payload = json.loads(body)
        items = payload if type(payload) is list else [payload]
        writes.append([StoredEvent.from_event(parse_event(i), received_at) for i in items])
    backend = SQLiteBackend(folder / "storage-alone.sqlite3")
    try:
        backend.write([])  # opens and creates the file: not part of the timing
        began = time.perf_counter()
        for events in writes:
            backend.write(events)
        return time.perf_counter() - began
    finally:
        backend.close()


#: Single events a write in `grouped_write_cpu`: what group commit gathers from 32 connections.
GROUP = 32


def grouped_write_cpu(folder: Path, held: int, written: int) -> float:
    """µs of CPU an event for `SQLiteBackend.write()` of single events, `GROUP` a write.

    The writer's commits under single-event load: old plugins' events (no timestamp, so no
    key), each from another device, into a table holding *held* events already. Decoded and
    validated beforehand, untimed. CPU time, not wall time: it is what the disk's noise
    disturbs least, and where each index's pages show (each dirty page is copied, written
    to the WAL and checkpointed).
    """
    received_at = dt.datetime.now(dt.timezone.utc)
    events = [
        StoredEvent.from_event(parse_event(json.loads(body)), received_at)
        for body in single_bodies(held + written, seed=5)
    ]
    backend = SQLiteBackend(folder / "grouped.sqlite3")
    try:
        for start in range(0, held, 1000):
            backend.write(events[start : min(start + 1000, held)])
        began = time.process_time()
        for start in range(held, held + written, GROUP):
            backend.write(events[start : start + GROUP])
        return (time.process_time() - began) / written * 1e6
    finally:
        backend.close()


def run(bodies: Sequence[bytes], label: str, folder: Path, threads: int, budget: float) -> dict:
    events = events_in(bodies)
    raw = raw_limit(bodies)
    storage = storage_alone(bodies, folder)
    one = library(bodies, folder, 1)
    many = library(bodies, folder, threads)
    floor = floor_handler(bodies, folder)
    seed_events, seed = seed_style(bodies, folder, budget)
    figures = {
        "raw": events / raw,
        "storage": events / storage,
        "library": events / one,
        "library_threads": events / many,
        "floor": events / floor,
        "seed": seed_events / seed,
    }
    print(f"\n{label}: {len(bodies)} bodies, {events} events")
    for name, count, seconds in [
        ("parse + structure, no storage", events, raw),
        ("SQLiteBackend.write() alone", events, storage),
        ("library handle(), 1 caller", events, one),
        (f"library handle(), {threads} threads", events, many),
        ("floor handler, no checks", events, floor),
        ("seed-style handler", seed_events, seed),
    ]:
        print(f"  {name:<33} {rate(count, seconds):>14}  ({seconds:.2f} s)")
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few bodies: a smoke test for CI")
    parser.add_argument("--batches", type=int, default=1000, help="200-event bodies")
    parser.add_argument("--singles", type=int, default=10_000, help="single-event bodies")
    parser.add_argument("--threads", type=int, default=8, help="concurrent callers")
    parser.add_argument("--seed-seconds", type=float, default=10.0, help="seed-style time limit")
    args = parser.parse_args(argv)
    if args.quick:
        args.batches, args.singles, args.seed_seconds = 8, 200, 0.3
    print(
        f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, "
        f"JSON: {'orjson ' + orjson.__version__ if orjson is not None else 'json (stdlib)'}"
    )
    with tempfile.TemporaryDirectory(prefix="updater-stats-bench-") as name:
        folder = Path(name)
        for part in ("batch", "single"):
            (folder / part).mkdir()
        batch = run(
            batch_bodies(args.batches, BATCH_SIZE),
            f"{BATCH_SIZE}-event bodies",
            folder / "batch",
            args.threads,
            args.seed_seconds,
        )
        single = run(
            single_bodies(args.singles),
            "single-event bodies",
            folder / "single",
            args.threads,
            args.seed_seconds,
        )
        held, written = (2_000, 20 * GROUP) if args.quick else (32_000, 1_000 * GROUP)
        cpu = grouped_write_cpu(folder / "single", held, written)
    print(
        f"\nSQLiteBackend.write(), {GROUP} single events a write, {held} held: "
        f"{cpu:.1f} µs of CPU an event"
    )
    print()
    best = max(batch["library"], batch["library_threads"])
    print(ratio_line("200-event bodies: library / parse+structure", best / batch["raw"], 0.40))
    print(
        info_line(
            "200-event bodies: storage alone / parse+structure", batch["storage"] / batch["raw"]
        )
    )
    print(info_line("200-event bodies: library / storage alone", best / batch["storage"]))
    print(
        info_line(
            "200-event bodies: floor handler / parse+structure", batch["floor"] / batch["raw"]
        )
    )
    print(
        ratio_line("200-event bodies: library / seed-style", best / batch["seed"], 20, times=True)
    )
    best_single = max(single["library"], single["library_threads"])
    print(info_line("single events: library / parse+structure", best_single / single["raw"]))
    print(
        info_line("single events: library / seed-style", best_single / single["seed"], times=True)
    )


if __name__ == "__main__":
    main()
