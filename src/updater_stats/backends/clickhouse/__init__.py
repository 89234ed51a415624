"""ClickHouse: stats at scale, through the official ``clickhouse-connect`` driver.

ClickHouse wants few, large inserts. The collector's writer groups requests
(see `CLICKHOUSE_BATCHING`): every batch is one ``INSERT``, however many
requests it answers.

Layout: one ``ReplacingMergeTree`` table, partitioned by the month the server
received the event, ordered by ``(app_id, version_name, action, event_time,
row_id)`` so that per-app and per-version queries read a narrow range.

Keys: `row_id` is derived from the event key (random for events without one),
and every key field is in the sorting key, so copies of one event collapse in
merges. Before each insert the backend looks the batch's keys up and leaves
known ones out: that is what `WriteResult.duplicates` counts, and the table
holds each key once. Only writers in several processes racing on one key can
still leave two copies until a merge: reports count ``uniqExact(row_id)`` (or
read ``FINAL``) and are exact anyway.

Strings go to ClickHouse as bytes, so any text, NUL included, reads back
exactly; unknown fields are kept as JSON text.

Deadlines: the collector's writes (`write_by`) wait for this backend's lock and
for the server's answers no longer than their deadline allows. An insert whose
answer is cut off may still be stored by the server: a re-send of its keyed
events is then found by the key look-up and counted as duplicates.
"""

from __future__ import annotations

from ._backend import (
    CLICKHOUSE_BATCHING,
    SCHEMA_VERSION,
    ClickHouseBackend,
    create_statements,
    migration_statements,
    ttl_expression,
)
from ._reports import ClickHouseReports

__all__ = [
    "CLICKHOUSE_BATCHING",
    "SCHEMA_VERSION",
    "ClickHouseBackend",
    "ClickHouseReports",
    "create_statements",
    "migration_statements",
    "ttl_expression",
]
