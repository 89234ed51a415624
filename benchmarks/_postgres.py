"""PostgreSQL for the benchmarks that compare with one ``COPY``: a server, and the bulk load."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any


@contextlib.contextmanager
def postgres_url(url: str | None) -> Iterator[str | None]:
    """*url*, or a throwaway server's on 127.0.0.1 (destroyed after); `None` after saying why
    when the driver or the server binaries are missing."""
    try:
        import psycopg  # noqa: F401, PLC0415 - an extra
    except ImportError as exc:
        print(f"\nPostgreSQL: skipped ({exc}; pip install 'updater-stats[postgres]')")
        yield None
        return
    server = None
    if url is None:
        try:
            from tests.backends.servers import new_postgres_server  # noqa: PLC0415

            server = new_postgres_server()
        except BaseException as exc:  # noqa: BLE001 - pytest's Skipped is a BaseException
            print(f"\nPostgreSQL: skipped ({exc})")
            yield None
            return
        url = server.url
    try:
        yield url
    finally:
        if server is not None:
            server.destroy()


def bulk_copy(url: str, events: Sequence[Any]) -> Callable[[], float]:
    """Seconds to load *events*' rows, as the library's writes build them, in one ``COPY``
    into an empty table like the backend's (indexes and all)."""
    import psycopg  # noqa: PLC0415 - an extra

    from updater_stats.backends.postgres import _backend as pg  # noqa: PLC0415

    schema = f"bench_bulk_{uuid.uuid4().hex[:8]}"
    rows = pg._json_rows(events, escaped=True)  # noqa: SLF001 - escaped: what COPY takes as it is
    table = pg.PostgresBackend(url, schema=schema)
    table.ping()  # creates the table
    table.close()
    statement = psycopg.sql.SQL("COPY {}.events ({}) FROM STDIN").format(
        psycopg.sql.Identifier(schema),
        psycopg.sql.SQL(", ").join(map(psycopg.sql.Identifier, pg._COLUMNS)),  # noqa: SLF001
    )

    def bulk() -> float:
        with psycopg.connect(url) as conn:
            began = time.perf_counter()
            with conn.transaction(), conn.cursor() as cursor, cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
            return time.perf_counter() - began

    return bulk
