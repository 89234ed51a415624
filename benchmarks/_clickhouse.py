"""ClickHouse for the benchmarks that compare with one ``INSERT``: the in-process engine."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any


@contextlib.contextmanager
def bulk_insert(events: Sequence[Any]) -> Iterator[Callable[[], float] | None]:
    """Seconds to load *events*' rows, as the backend builds them, in one ``INSERT`` into an
    empty table like the backend's (chdb, in-process); `None` after saying why when the engine
    or the driver is missing."""
    try:
        import chdb  # noqa: F401, PLC0415 - the in-process engine
        import clickhouse_connect  # noqa: PLC0415

        from updater_stats.backends.clickhouse import _backend as ch  # noqa: PLC0415
    except ImportError as exc:
        print(f"\nClickHouse: skipped ({exc}; pip install 'updater-stats[clickhouse]' chdb)")
        yield None
        return
    database = f"bench_bulk_{uuid.uuid4().hex[:8]}"
    rows = [
        ch._row(stored, ch._row_id(stored.key or str(index)), index)  # noqa: SLF001
        for index, stored in enumerate(events)
    ]
    table = ch.ClickHouseBackend("chdb://memory", database=database)
    table.ping()  # creates the table
    # The driver's first insert resolves optional imports (pandas, numpy): paid before either
    # clock starts, or it would count against whichever side inserts first.
    table.write(events[:1])
    client = clickhouse_connect.get_client(dsn="chdb://memory")
    client.command(f"TRUNCATE TABLE {database}.events")

    def bulk() -> float:
        began = time.perf_counter()
        client.insert(f"{database}.events", rows, column_names=ch._COLUMN_NAMES)  # noqa: SLF001
        return time.perf_counter() - began

    try:
        yield bulk
    finally:
        table.close()
