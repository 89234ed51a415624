"""Copying a store: events/s from SQLite into PostgreSQL and ClickHouse, against bulk load.

    .venv/bin/python benchmarks/copy_store.py             # 100 000 events
    .venv/bin/python benchmarks/copy_store.py --quick     # 2 000, for CI
    .venv/bin/python benchmarks/copy_store.py --postgres-url postgresql://...

Side by side, on the same events, in one run:

- copy: `copy_events` from a SQLite file (what ``updater-stats copy`` does): read
  in storage order, find what the target holds, write in batches through the
  target's own ``write``;
- bulk load: the same rows, already in the driver's form, in one ``COPY``
  (PostgreSQL) or one ``INSERT`` (ClickHouse) into an identical, empty table.

The events are realistic traffic (`_bodies`): 200-event batches from current
plugins, with keys, and one event in ten from old plugins, without one. The
copy also runs a second time into the same target, where everything is already
present (a re-run after an interruption), and its figure is printed too.
PostgreSQL: a throwaway cluster on 127.0.0.1 (the tests' helper, ``fsync=off``
for both sides alike), or ``--postgres-url``. ClickHouse: the in-process engine
(chdb). A backend whose server or driver is missing is reported as skipped. The
events and rows this script holds in memory are frozen out of the garbage
collector's passes while both sides run (`gc.freeze`): a real copy holds none.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import random
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _bodies import batch_bodies, rate, ratio_line, single_bodies
from _clickhouse import bulk_insert
from _postgres import bulk_copy, postgres_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from updater_stats import SQLiteBackend, parse_event  # noqa: E402
from updater_stats._decode import decode_body  # noqa: E402
from updater_stats._models import StoredEvent  # noqa: E402
from updater_stats._transfer import write_size  # noqa: E402
from updater_stats.backends import copy_events  # noqa: E402

TARGET = 0.30


def stored_events(batches: int) -> list[StoredEvent]:
    """*batches* 200-event bodies and a tenth as many single events, received over a day."""
    bodies = batch_bodies(batches, 200, seed=7) + single_bodies(batches * 20, seed=8)
    random.Random(9).shuffle(bodies)
    start = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    events: list[StoredEvent] = []
    for index, body in enumerate(bodies):
        received = start + dt.timedelta(seconds=index * 3)
        items = decode_body(body, 1 << 30)
        events.extend(
            StoredEvent.from_event(parse_event(item), received)
            for item in (items if isinstance(items, list) else [items])
        )
    return events


def source_file(events: Sequence[StoredEvent], folder: Path) -> SQLiteBackend:
    backend = SQLiteBackend(folder / "source.sqlite3")
    for start in range(0, len(events), 5000):
        backend.write(events[start : start + 5000])
    return backend


def compare(
    name: str, copy: Callable[[], tuple[float, float]], bulk: Callable[[], float], events: int
) -> float:
    # The events and the bulk load's rows, held in memory by this script alone, are left out
    # of the garbage collector's passes: without this, each full collection during either side
    # walked 580 000 objects that a real copy never holds (0.2 s a pass on a quiet machine, up
    # to 0.7 s on a busy one).
    gc.collect()
    gc.freeze()
    copy_seconds, again_seconds = copy()
    bulk_seconds = bulk()
    print(f"\n{name}: {events} events")
    for label, seconds in [
        ("copy_events from SQLite", copy_seconds),
        ("the same again (all present)", again_seconds),
        ("bulk load of the same rows", bulk_seconds),
    ]:
        print(f"  {label:<35} {rate(events, seconds):>14}  ({seconds:.2f} s)")
    gc.unfreeze()
    return bulk_seconds / copy_seconds


BATCH_SIZE: int | None = None  # as updater-stats copy: `write_size` of the target


def timed_copy(source: SQLiteBackend, target: Any, events: int) -> tuple[float, float]:
    """Seconds for the copy, and for the same copy run again."""
    target.ping()  # connects and creates the schema: not part of the timing
    times = []
    for expected_copied in (events, 0):
        began = time.perf_counter()
        result = copy_events(source, target, batch_size=BATCH_SIZE)
        times.append(time.perf_counter() - began)
        if result.copied != expected_copied or result.total != events:
            raise SystemExit(f"copy went wrong: {result}")
    target.close()
    return times[0], times[1]


# -- PostgreSQL ----------------------------------------------------------------------------


def postgres(source: SQLiteBackend, events: list[StoredEvent], url: str | None) -> float | None:
    with postgres_url(url) as server_url:
        if server_url is None:
            return None
        from updater_stats.backends import postgres as pg  # noqa: PLC0415 - an extra

        bulk = bulk_copy(server_url, events)
        target = pg.PostgresBackend(server_url, schema=f"bench_copy_{uuid.uuid4().hex[:8]}")
        return compare(
            f"PostgreSQL, {BATCH_SIZE or write_size(target)} events a write",
            lambda: timed_copy(source, target, len(events)),
            bulk,
            len(events),
        )


# -- ClickHouse ----------------------------------------------------------------------------


def clickhouse(source: SQLiteBackend, events: list[StoredEvent]) -> float | None:
    with bulk_insert(events) as bulk:
        if bulk is None:
            return None
        from updater_stats.backends import clickhouse as ch  # noqa: PLC0415 - an extra

        target = ch.ClickHouseBackend(
            "chdb://memory", database=f"bench_copy_{uuid.uuid4().hex[:8]}"
        )
        return compare(
            f"ClickHouse (chdb, in-process), {BATCH_SIZE or write_size(target)} events a write",
            lambda: timed_copy(source, target, len(events)),
            bulk,
            len(events),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="about 2 000 events: for CI")
    parser.add_argument("--batches", type=int, default=455, help="200-event bodies (+10 %% single)")
    parser.add_argument(
        "--batch-size", type=int, help="events per write (default: as updater-stats copy)"
    )
    parser.add_argument("--postgres-url", help="a server of your own (default: a throwaway one)")
    parser.add_argument("--skip", choices=["postgres", "clickhouse"], action="append", default=[])
    args = parser.parse_args()
    if args.quick:
        args.batches = 9
    global BATCH_SIZE  # noqa: PLW0603 - one setting for the whole run
    BATCH_SIZE = args.batch_size
    events = stored_events(args.batches)
    keyless = sum(stored.key is None for stored in events)
    print(f"Python {sys.version.split()[0]}, {len(events)} events, {keyless} without a key")
    ratios: dict[str, float | None] = {}
    with tempfile.TemporaryDirectory(prefix="updater-stats-bench-") as folder:
        source = source_file(events, Path(folder))
        if "postgres" not in args.skip:
            ratios["PostgreSQL"] = postgres(source, events, args.postgres_url)
        if "clickhouse" not in args.skip:
            ratios["ClickHouse"] = clickhouse(source, events)
        source.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory of the whole run (events built in memory included): {peak:.0f} MB")
    print()
    for name, value in ratios.items():
        if value is not None:
            print(ratio_line(f"{name}: copy / bulk load", value, TARGET))


if __name__ == "__main__":
    main()
