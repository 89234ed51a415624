"""Server backends: events/s into PostgreSQL and ClickHouse, library against bulk load.

    .venv/bin/python benchmarks/server_backends.py             # 100 000 events per backend
    .venv/bin/python benchmarks/server_backends.py --quick     # 2 000, for CI
    .venv/bin/python benchmarks/server_backends.py --postgres-url postgresql://...

Side by side, on the same events, in one run:

- library: `Collector.handle()` on 200-event bodies from several threads, as a
  threaded server calls it (decode, validate, deduplicate, group commit);
- bulk load: the same rows, already in the driver's form, in one ``COPY``
  (PostgreSQL) or one ``INSERT`` (ClickHouse) into an identical table.

PostgreSQL: a throwaway cluster on 127.0.0.1 (the tests' ``initdb`` helper,
``fsync=off`` for both sides alike), or ``--postgres-url``. ClickHouse: the
in-process engine (chdb) through clickhouse-connect, as the tests use it. A
backend whose server or driver is missing is reported as skipped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _bodies import batch_bodies, handle_from_threads, rate, ratio_line
from _clickhouse import bulk_insert
from _postgres import bulk_copy, postgres_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from updater_stats import Collector, parse_event  # noqa: E402
from updater_stats._decode import decode_body  # noqa: E402
from updater_stats._models import StoredEvent  # noqa: E402

BATCH_SIZE = 200


def stored_events(bodies: Sequence[bytes]) -> list[StoredEvent]:
    """The events of *bodies* as the collector stores them (built outside any timing)."""
    now = dt.datetime.now(dt.timezone.utc)
    return [
        StoredEvent.from_event(parse_event(item), now)
        for body in bodies
        for item in decode_body(body, 1 << 30)
    ]


def through_library(backend: Any, bodies: Sequence[bytes], threads: int) -> float:
    """Seconds for *threads* callers of `Collector.handle()` to store every body."""
    collector = Collector(backend)
    try:
        collector.handle(b"[]")
        backend.ping()  # connects and creates the schema: not part of the timing
        return handle_from_threads(collector, bodies, threads)
    finally:
        collector.close()


def compare(
    name: str,
    library: Callable[[], float],
    bulk: Callable[[], float],
    events: int,
    bulk_label: str,
) -> float:
    lib_seconds = library()
    bulk_seconds = bulk()
    print(f"\n{name}: {events} events")
    for label, seconds in [
        ("library handle(), 200-event bodies", lib_seconds),
        (bulk_label, bulk_seconds),
    ]:
        print(f"  {label:<35} {rate(events, seconds):>14}  ({seconds:.2f} s)")
    return bulk_seconds / lib_seconds


# -- PostgreSQL ----------------------------------------------------------------------------


def postgres(bodies: Sequence[bytes], url: str | None, threads: int) -> float | None:
    with postgres_url(url) as server_url:
        if server_url is None:
            return None
        from updater_stats.backends import postgres as pg  # noqa: PLC0415 - an extra

        events = stored_events(bodies)
        bulk = bulk_copy(server_url, events)
        library = pg.PostgresBackend(server_url, schema=f"bench_library_{uuid.uuid4().hex[:8]}")
        return compare(
            "PostgreSQL",
            lambda: through_library(library, bodies, threads),
            bulk,
            len(events),
            "one COPY of the same rows",
        )


# -- ClickHouse ----------------------------------------------------------------------------


def clickhouse(bodies: Sequence[bytes], threads: int) -> float | None:
    events = stored_events(bodies)
    with bulk_insert(events) as bulk:
        if bulk is None:
            return None
        from updater_stats.backends import clickhouse as ch  # noqa: PLC0415 - an extra

        # The backend's own batching: up to 10 000 events per INSERT, requests held up to 200 ms.
        library = ch.ClickHouseBackend(
            "chdb://memory", database=f"bench_library_{uuid.uuid4().hex[:8]}"
        )
        return compare(
            "ClickHouse (chdb, in-process)",
            lambda: through_library(library, bodies, threads),
            bulk,
            len(events),
            "one INSERT of the same rows",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 000 events: a smoke test for CI")
    parser.add_argument("--batches", type=int, default=500, help="200-event bodies")
    parser.add_argument("--threads", type=int, default=32, help="callers into PostgreSQL")
    # ClickHouse holds each request up to 200 ms to gather large inserts: it is made for many
    # devices at once, and 32 callers would measure the delay, not the backend.
    parser.add_argument(
        "--clickhouse-threads", type=int, default=128, help="callers into ClickHouse"
    )
    parser.add_argument("--postgres-url", help="a server of your own (default: a throwaway one)")
    parser.add_argument("--skip", choices=["postgres", "clickhouse"], action="append", default=[])
    args = parser.parse_args()
    if args.quick:
        args.batches = 10
    bodies = batch_bodies(args.batches, BATCH_SIZE, seed=5)
    print(
        f"Python {sys.version.split()[0]}, threads calling handle(): {args.threads} "
        f"(PostgreSQL), {args.clickhouse_threads} (ClickHouse)"
    )
    ratios: dict[str, float | None] = {}
    if "postgres" not in args.skip:
        ratios["PostgreSQL"] = postgres(bodies, args.postgres_url, args.threads)
    if "clickhouse" not in args.skip:
        ratios["ClickHouse"] = clickhouse(bodies, args.clickhouse_threads)
    print()
    for name, value in ratios.items():
        if value is not None:
            print(ratio_line(f"{name}: library / bulk load", value, 0.30))


if __name__ == "__main__":
    main()
