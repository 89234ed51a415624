"""PostgreSQL: psycopg 3 and its connection pool, for teams that run a database server already.

Writes: each batch is one statement, ``INSERT ... SELECT ... ON CONFLICT DO
NOTHING`` over the batch sent as one JSON array (known keys are skipped by the
unique index, the row count says how many were new): one round trip, atomic
on its own. The schema lives in its own PostgreSQL schema
(``updater_stats`` by default), is created on first use and migrated under an
advisory lock, with its version in a table beside it.

PostgreSQL text and ``jsonb`` cannot hold NUL (``U+0000``), nor a lone
surrogate; ``jsonb`` also rewrites numbers (``1e16`` comes back as an integer,
``-0.0`` as ``0``). So that every event reads back exactly as it came, strings
holding such characters are stored with a reversible escape (see `escape`),
and JSON floats are written in a form ``jsonb`` keeps. Ordinary text, which is
nearly all of it, is stored unchanged, so plain SQL on the tables works.

Connection loss: the write fails with `BackendError` (a 503, the device
retries), the pool drops the broken connection and reconnects in the
background, and later writes succeed again without a restart. A connection
the server closed while it sat in the pool (a restart) is noticed before a
write uses it, without a round trip (see `_check_connection`).

Deadlines: the collector's writes (`write_by`) wait for a pooled connection, for
locks (``lock_timeout``) and for the statement (``statement_timeout``) no longer
than their deadline allows, so a table locked elsewhere or a slow server fails
the write, rolled back, instead of committing it after the device was answered.
A server that stops answering altogether (a network cut, a stopped process)
cannot enforce its own timeouts: the collector answers 503 at the deadline, and
the statement may still commit when the server resumes (see the reliability page).
"""

from __future__ import annotations

from ._backend import SCHEMA_VERSION, PostgresBackend, escape, from_jsonb, to_jsonb, unescape
from ._reports import PostgresReports

__all__ = [
    "SCHEMA_VERSION",
    "PostgresBackend",
    "PostgresReports",
    "escape",
    "from_jsonb",
    "to_jsonb",
    "unescape",
]
