"""ClickHouse specifics, on the real engine in-process (chdb): layout, dedup, inserts, cluster DDL.

The contract suite (test_contract.py) and the endpoint tests already run here.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from updater_stats import (
    BackendError,
    Collector,
    StoredEvent,
    UpdaterStatsError,
    backend_from_url,
)
from updater_stats._models import BOOLEAN_FIELDS, REQUIRED_FIELDS, SCALAR_FIELDS
from updater_stats.backends import Batching
from updater_stats.backends.clickhouse import (
    CLICKHOUSE_BATCHING,
    SCHEMA_VERSION,
    ClickHouseBackend,
    create_statements,
    migration_statements,
)
from updater_stats.backends.clickhouse._backend import _columns, _row_id
from updater_stats.testing import assert_same_events, stored_event

from ..conftest import VALID_EVENT, body
from ..doc_blocks import ROOT, blocks
from ..helpers import V1_FIELDS, legacy_key
from . import servers


@pytest.fixture
def backend() -> Iterator[ClickHouseBackend]:
    backend = servers.clickhouse_backend()
    yield backend
    backend.close()


def query(backend: ClickHouseBackend, sql: str, **parameters: object) -> list[tuple]:
    backend.ping()
    assert backend._client is not None
    return backend._client.query(sql, parameters=parameters).result_rows


def test_table_layout(backend: ClickHouseBackend):
    ((engine, partition, sorting, comment),) = query(
        backend,
        "SELECT engine, partition_key, sorting_key, comment FROM system.tables "
        "WHERE database = {db:String} AND name = 'events'",
        db=backend.database,
    )

    assert engine == "ReplacingMergeTree"
    assert partition == "toYYYYMM(received_at)"
    assert sorting == "app_id, version_name, action, event_time, row_id"
    assert comment == f"updater-stats events, schema version {SCHEMA_VERSION}"
    indexes = query(
        backend,
        "SELECT name, type FROM system.data_skipping_indices WHERE database = {db:String}",
        db=backend.database,
    )
    assert set(indexes) == {("row_id_bloom", "bloom_filter"), ("seq_minmax", "minmax")}
    types = column_types(backend, backend.database)
    assert types["truncated"] == "Array(String)"
    # Every field but the identifying ones may be absent: NULL.
    assert {name for name in SCALAR_FIELDS if "Nullable" in types[name]} == (
        set(SCALAR_FIELDS) - set(REQUIRED_FIELDS) - BOOLEAN_FIELDS
    )
    for field in ABSENT:
        assert types[field] == "LowCardinality(Nullable(String))"


ABSENT = dict.fromkeys(
    ("platform", "version_build", "version_code", "version_os", "plugin_version")
)


def column_types(backend: ClickHouseBackend, database: str) -> dict[str, str]:
    rows = query(
        backend,
        "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = 'events'",
        db=database,
    )
    return dict(rows)


def test_columns_hold_every_field(backend: ClickHouseBackend):
    event = stored_event(custom_id="u", metadata={"duration_ms": "1500"}, stats_mode="batch")
    backend.write([event])

    ((custom_id, duration, extras, device_ts, key),) = query(
        backend,
        f"SELECT custom_id, metadata['duration_ms'], JSONExtractString(extras, 'stats_mode'), "
        f"device_ts, event_key FROM {backend.database}.events",
    )
    assert (custom_id, duration, extras, key) == ("u", "1500", "batch", event.key)
    assert device_ts == VALID_EVENT["timestamp"]


def test_a_device_clock_out_of_range_is_clamped_for_sorting_only(backend: ClickHouseBackend):
    far = stored_event(timestamp=2**63 - 1)
    backend.write([far])

    ((event_time,),) = query(backend, f"SELECT toString(event_time) FROM {backend.database}.events")
    assert event_time == "2299-12-31 23:59:59.999"
    assert next(iter(backend.events())).event.timestamp == 2**63 - 1


def test_copies_racing_from_two_processes_collapse_and_reports_stay_exact(backend):
    event = stored_event(timestamp=5)
    other = ClickHouseBackend(
        "chdb://memory", database=backend.database, batching=servers.TEST_CLICKHOUSE_BATCHING
    )
    backend.write([event])
    # The other process looked the key up before this one inserted it: both insert.
    other._known_row_ids = lambda client, events, key_ids: set()  # type: ignore[method-assign]
    other.write([event])
    table = f"{backend.database}.events"

    assert query(backend, f"SELECT count(), uniqExact(row_id) FROM {table}") == [(2, 1)]
    assert len(list(backend.events())) == 1  # read with FINAL
    query(backend, f"OPTIMIZE TABLE {table} FINAL")
    assert query(backend, f"SELECT count() FROM {table}") == [(1,)]
    other.close()


def test_one_insert_per_batch_not_per_request(backend: ClickHouseBackend):
    collector = Collector(backend, batching=Batching(max_delay=0.3, delay_lone_requests=True))
    start = threading.Barrier(40)

    def send(ts: int) -> None:
        start.wait()
        collector.handle(body({**VALID_EVENT, "timestamp": ts}))

    threads = [threading.Thread(target=send, args=(ts,)) for ts in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert len(list(backend.events())) == 40
    assert backend.inserts <= 2


def test_the_default_batching_holds_requests_so_they_share_inserts():
    backend = servers.clickhouse_backend(batching=None)
    assert backend.batching == CLICKHOUSE_BATCHING
    collector = Collector(backend)

    started = time.monotonic()
    collector.handle(body(VALID_EVENT))
    assert time.monotonic() - started >= CLICKHOUSE_BATCHING.max_delay * 0.9
    assert backend.inserts == 1
    collector.close()


def test_cluster_ddl_is_valid_clickhouse_sql(backend: ClickHouseBackend):
    statements = create_statements("stats", "events", cluster="main")

    assert len(statements) == 3
    database, local, distributed = statements
    assert database == "CREATE DATABASE IF NOT EXISTS `stats` ON CLUSTER `main`"
    assert "CREATE TABLE IF NOT EXISTS `stats`.`events_local` ON CLUSTER `main`" in local
    assert (
        "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/stats/events_local', "
        "'{replica}')" in local
    )
    assert "ON CLUSTER `main` AS `stats`.`events_local`" in distributed
    assert (
        "ENGINE = Distributed('main', 'stats', 'events_local', cityHash64(app_id, device_id))"
        in distributed
    )
    # One node has no cluster nor Keeper: the engine's own parser checks every statement...
    for statement in statements:
        (formatted,) = query(backend, "SELECT formatQuery({q:String})", q=statement)[0]
        assert "ON CLUSTER main" in formatted
    # ... and each shard's table is the single-node table, which runs here, plus ON CLUSTER
    # and replication.
    name = servers.unique_name("shard")
    single_node = create_statements(name, "events_local")[1]
    assert local == (
        single_node.replace(f"`{name}`", "`stats`")
        .replace(" (\n", " ON CLUSTER `main` (\n", 1)
        .replace(
            "ENGINE = ReplacingMergeTree",
            "ENGINE = ReplicatedReplacingMergeTree("
            "'/clickhouse/tables/{shard}/stats/events_local', '{replica}')",
        )
    )
    query(backend, f"CREATE DATABASE {name}")
    assert backend._client is not None
    backend._client.command(single_node)
    ((sorting,),) = query(
        backend, "SELECT sorting_key FROM system.tables WHERE database = {db:String}", db=name
    )
    assert sorting == "app_id, version_name, action, event_time, row_id"


def test_a_cluster_backend_creates_its_tables_on_the_cluster(backend: ClickHouseBackend):
    clustered = ClickHouseBackend(
        "chdb://memory", database=servers.unique_name("c"), cluster="main"
    )

    # The in-process engine knows no cluster: the DDL reached it ON CLUSTER, and failed.
    with pytest.raises(BackendError, match="main") as info:
        clustered.write([stored_event()])

    assert "cluster" in str(info.value).lower()
    clustered.close()


def test_a_newer_schema_is_refused(backend: ClickHouseBackend):
    backend.ping()
    query(
        backend,
        f"ALTER TABLE {backend.database}.events MODIFY COMMENT "
        "'updater-stats events, schema version 99'",
    )
    newer = ClickHouseBackend("chdb://memory", database=backend.database)

    with pytest.raises(UpdaterStatsError, match="newer than this updater-stats"):
        newer.ping()
    newer.close()


def test_urls():
    backend = backend_from_url(
        "clickhouse://user:p%40ss@db.example:9000/stats?cluster=main&table=ev"
        "&batch_delay_ms=50&batch_max_events=500&max_execution_time=5"
    )
    secure = backend_from_url("clickhouses://db.example")

    assert isinstance(backend, ClickHouseBackend)
    assert isinstance(secure, ClickHouseBackend)
    assert backend._dsn == "http://user:p%40ss@db.example:9000"
    assert (backend.database, backend.table, backend.cluster) == ("stats", "ev", "main")
    assert backend.batching.max_delay == 0.05
    assert backend.batching.max_events == 500
    assert backend._settings == {"max_execution_time": "5"}
    assert secure._dsn == "https://db.example:8443"
    assert secure.database == "updater_stats"
    assert secure.batching == CLICKHOUSE_BATCHING


def test_chdb_urls_name_a_folder_as_sqlite_urls_name_a_file(tmp_path, monkeypatch):
    # Parsing only: chdb hosts one engine per process, and the tests' engine is in memory.
    monkeypatch.chdir(tmp_path)
    relative = backend_from_url("chdb:///data?database=stats&table=ev&batch_delay_ms=5")
    absolute = backend_from_url(f"chdb:///{tmp_path}/other%20dir")
    in_memory = backend_from_url("chdb://")

    assert isinstance(relative, ClickHouseBackend)
    assert relative.dsn == f"chdb://{tmp_path}/data"
    assert (relative.database, relative.table) == ("stats", "ev")
    assert relative.batching.max_delay == 0.005
    assert absolute.dsn == f"chdb://{tmp_path}/other%20dir"
    assert absolute.database == "updater_stats"
    assert in_memory.dsn == "chdb://memory"


def test_a_chdb_url_without_chdb_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "chdb", None)  # find_spec then says it is missing
    with pytest.raises(UpdaterStatsError, match=r"pip install 'updater-stats\[chdb\]'"):
        backend_from_url("chdb:///data")


def test_a_bad_url_option_is_a_configuration_error():
    with pytest.raises(UpdaterStatsError, match="bad ClickHouse URL"):
        backend_from_url("clickhouse://localhost/db?batch_delay_ms=soon")


def test_an_unreachable_server_is_503_and_nothing_connects_before_first_use():
    backend = backend_from_url("clickhouse://127.0.0.1:1/stats")  # nobody listens on port 1

    with pytest.raises(BackendError) as info:
        Collector(backend).handle(body(VALID_EVENT))

    assert info.value.status_code == 503
    with pytest.raises(BackendError):
        backend.ping()
    backend.close()


def test_received_at_keeps_milliseconds(backend: ClickHouseBackend):
    moment = dt.datetime(2026, 5, 4, 3, 2, 1, 654321, tzinfo=dt.timezone.utc)
    backend.write([stored_event(received_at=moment)])

    (read,) = backend.events()
    assert read.received_at == moment.replace(microsecond=654000)


def test_the_docs_show_the_real_ddl_and_working_queries(backend: ClickHouseBackend):
    sql_blocks = [code.strip() for code in blocks(ROOT / "docs" / "clickhouse.md", "sql")]
    single, report, cluster = sql_blocks

    assert single == ";\n\n".join(create_statements("updater_stats")) + ";"
    database, local, distributed = create_statements("updater_stats", cluster="main")
    shown = cluster.split(";\n\n")
    assert shown[0] == database
    assert shown[2] == distributed + ";"
    assert shown[1].split("\n")[0] == local.split("\n")[0]
    assert shown[1].split("\n")[-4:] == local.split("\n")[-4:]

    backend.write([stored_event(timestamp=ts, action="set") for ts in range(3)])
    rows = query(backend, report.rstrip(";").replace("updater_stats.", f"{backend.database}."))
    assert rows == [("1.4.2", 3)]


# -- schema version 2: absent fields and cut fields -----------------------------------------

# Schema version 1 as updater-stats 0.x created it: a copy, so that a change to the code's
# DDL cannot change what this test migrates from.
V1_TABLE = """
CREATE TABLE IF NOT EXISTS `{db}`.`events` (
    `row_id` UUID,
    `event_key` Nullable(String),
    `seq` UInt64,
    `received_at` DateTime64(3, 'UTC'),
    `event_time` DateTime64(3, 'UTC'),
    `device_ts` Nullable(Int64),
    `action_known` Bool,
    `app_id` LowCardinality(String),
    `device_id` String,
    `platform` LowCardinality(String),
    `action` LowCardinality(String),
    `version_name` LowCardinality(String),
    `old_version_name` LowCardinality(Nullable(String)),
    `version_build` LowCardinality(String),
    `version_code` LowCardinality(String),
    `version_os` LowCardinality(String),
    `plugin_version` LowCardinality(String),
    `custom_id` Nullable(String),
    `is_prod` Bool,
    `is_emulator` Bool,
    `install_source` LowCardinality(Nullable(String)),
    `default_channel` LowCardinality(Nullable(String)),
    `channel` LowCardinality(Nullable(String)),
    `key_id` LowCardinality(Nullable(String)),
    `has_metadata` Bool,
    `metadata` Map(String, String),
    `extras` String,
    INDEX row_id_bloom row_id TYPE bloom_filter GRANULARITY 4,
    INDEX seq_minmax seq TYPE minmax GRANULARITY 1
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (app_id, version_name, action, event_time, row_id)
COMMENT 'updater-stats events, schema version 1'
"""
V1_COLUMNS = [
    "row_id",
    "event_key",
    "seq",
    "received_at",
    "event_time",
    "device_ts",
    "action_known",
    *V1_FIELDS,
    "has_metadata",
    "metadata",
    "extras",
]


def v1_row(stored: StoredEvent, seq: int) -> list[Any]:
    event = stored.event
    event_time = stored.received_at
    if event.timestamp is not None:
        event_time = dt.datetime.fromtimestamp(event.timestamp / 1000, tz=dt.timezone.utc)
    return [
        uuid.uuid4() if stored.key is None else _row_id(stored.key),
        stored.key,
        seq,
        stored.received_at,
        event_time,
        event.timestamp,
        event.action_known,
        *(getattr(event, field) for field in V1_FIELDS),
        event.metadata is not None,
        dict(event.metadata or {}),
        json.dumps(event.extras) if event.extras else "",
    ]


def v1_table(backend: ClickHouseBackend, database: str, events: list[StoredEvent]) -> None:
    """A version 1 table in *database* holding *events*, rows as version 1 wrote them."""
    client = backend._client
    assert client is not None
    client.command(f"CREATE DATABASE {database}")
    client.command(V1_TABLE.format(db=database))
    rows = [v1_row(stored, seq) for seq, stored in enumerate(events, start=1)]
    client.insert(f"{database}.events", rows, column_names=V1_COLUMNS)


def as_v1(stored: StoredEvent) -> StoredEvent:
    return attrs.evolve(stored, key=legacy_key(stored.event))


def cut(stored: StoredEvent, *paths: str) -> StoredEvent:
    return attrs.evolve(stored, truncated=tuple(sorted(paths)))


def comment(backend: ClickHouseBackend, database: str) -> str:
    ((text,),) = query(
        backend,
        "SELECT comment FROM system.tables WHERE database = {db:String} AND name = 'events'",
        db=database,
    )
    return str(text)


def test_a_version_1_table_with_rows_is_migrated_on_open_and_keeps_them(
    backend: ClickHouseBackend,
):
    backend.ping()
    database = servers.unique_name("v1")
    old = [
        as_v1(stored_event(timestamp=1, custom_id="user-1", metadata={"k": "v"}, stats_mode="b")),
        as_v1(stored_event(timestamp=2, version_name="1.0\x00beta", metadata={})),
        as_v1(stored_event(timestamp=None, action="app_crash", blob=[1e16, -0.0])),
        as_v1(stored_event(timestamp=3, is_prod=False, channel="", defaultChannel="beta")),
    ]
    v1_table(backend, database, old)
    assert comment(backend, database) == "updater-stats events, schema version 1"
    migrated = ClickHouseBackend(
        "chdb://memory", database=database, batching=servers.TEST_CLICKHOUSE_BATCHING
    )

    read = list(migrated.events())

    assert_same_events(read, old)
    assert [stored.truncated for stored in read] == [()] * len(old)
    assert comment(backend, database) == f"updater-stats events, schema version {SCHEMA_VERSION}"
    types = column_types(backend, database)
    assert [types[field] for field in ABSENT] == ["LowCardinality(Nullable(String))"] * 5
    assert types["truncated"] == "Array(String)"

    # The migrated table takes what version 1 could not hold.
    new = [
        stored_event(timestamp=10, **ABSENT),
        cut(stored_event(timestamp=11, custom_id="c" * 10), "custom_id", "metadata.stack"),
    ]
    assert migrated.write(new).inserted == 2
    read = list(migrated.events())
    assert_same_events(read, old + new)
    assert [stored.truncated for stored in read[-2:]] == [(), ("custom_id", "metadata.stack")]
    # Rows stored before the upgrade keep their version 1 keys: the same event sent again
    # now has a key of its whole content, and is stored a second time (docs/clickhouse.md).
    resent = stored_event(timestamp=1, custom_id="user-1", metadata={"k": "v"}, stats_mode="b")
    assert resent.key != old[0].key
    assert migrated.write([resent]).inserted == 1
    migrated.close()

    # A migration cut short before its last step (the comment) runs again without harm.
    query(
        backend,
        f"ALTER TABLE {database}.events MODIFY COMMENT 'updater-stats events, schema version 1'",
    )
    again = ClickHouseBackend("chdb://memory", database=database)
    assert_same_events(again.events(), [*old, *new, resent])
    assert comment(backend, database) == f"updater-stats events, schema version {SCHEMA_VERSION}"
    again.close()


def test_the_migration_alters_the_shards_then_the_distributed_table(backend: ClickHouseBackend):
    statements = migration_statements("stats", "events", cluster="main")

    targets = [statement.split(" MODIFY ", 1)[0] for statement in statements]
    assert (
        targets
        == [
            "ALTER TABLE `stats`.`events_local` ON CLUSTER `main`",
            "ALTER TABLE `stats`.`events` ON CLUSTER `main`",
        ]
        * 2
    )
    assert all("MODIFY COMMENT" in statement for statement in statements[2:])
    # Each shard's statements are the single-node ones, plus ON CLUSTER.
    single = migration_statements("stats", "events_local")
    on_cluster = "`stats`.`events_local` ON CLUSTER `main`"
    assert [statements[0], statements[2]] == [
        statement.replace("`stats`.`events_local`", on_cluster) for statement in single
    ]
    for statement in statements:
        (formatted,) = query(backend, "SELECT formatQuery({q:String})", q=statement)[0]
        assert "ON CLUSTER main" in formatted


def test_absent_fields_and_cut_fields_read_back_exactly(backend: ClickHouseBackend):
    plain = [
        stored_event(timestamp=1, **ABSENT),
        *(stored_event(timestamp=2 + n, **{field: None}) for n, field in enumerate(ABSENT)),
        cut(stored_event(timestamp=10), "custom_id"),
        cut(stored_event(timestamp=11, platform=None), "extras", "metadata", "metadata.stack"),
        stored_event(timestamp=12, platform="", version_os=""),  # empty is not absent
    ]
    # A path no UTF-8 string holds (a lone surrogate, from outside the collector): the batch
    # goes as rows of bytes instead of columns.
    odd = [
        cut(stored_event(timestamp=20), "metadata.a\x00b", "metadata.\ud800"),
        stored_event(timestamp=21, **ABSENT),
    ]
    assert _columns(odd, [1, 2], 0) is None
    assert _columns(plain, list(range(len(plain))), 0) is not None

    assert backend.write(plain).inserted == len(plain)
    assert backend.write(odd).inserted == len(odd)

    read = list(backend.events())
    assert_same_events(read, plain + odd)
    assert [stored.truncated for stored in read] == [stored.truncated for stored in plain + odd]
    table = f"{backend.database}.events"
    assert query(backend, f"SELECT device_ts FROM {table} WHERE platform IS NULL ORDER BY seq") == [
        (1,),
        (2,),
        (11,),
        (21,),
    ]
    assert query(backend, f"SELECT platform, version_os FROM {table} WHERE device_ts = 12") == [
        ("", "")
    ]
    assert query(backend, f"SELECT device_ts FROM {table} WHERE has(truncated, 'custom_id')") == [
        (10,)
    ]


def test_a_write_that_cannot_start_by_its_deadline_fails_and_stores_nothing(
    backend: ClickHouseBackend,
):
    events = [stored_event(timestamp=ts) for ts in range(3)]
    with pytest.raises(BackendError) as info:
        backend.write_by(events, time.monotonic() - 0.01)
    assert info.value.code == "storage_timeout"

    holder_has_lock = threading.Event()
    release = threading.Event()

    def hold() -> None:  # a long erasure or purge holds the backend, as forget() does
        with backend._lock:
            holder_has_lock.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holder_has_lock.wait(5)
    started = time.monotonic()
    with pytest.raises(BackendError) as info:
        backend.write_by(events, started + 0.3)
    took = time.monotonic() - started
    release.set()
    holder.join(10)

    assert info.value.code == "storage_timeout"
    assert 0.25 <= took < 2
    assert list(backend.events()) == []
    assert backend.write_by(events, time.monotonic() + 5).inserted == 3  # in time: written
    assert len(list(backend.events())) == 3


def test_the_collector_bounds_clickhouse_writes_by_their_deadline(backend: ClickHouseBackend):
    seen: list[float] = []
    write_by = backend.write_by

    def recording(events: object, deadline: float) -> object:
        seen.append(deadline - time.monotonic())
        return write_by(events, deadline)  # type: ignore[arg-type]

    backend.write_by = recording  # type: ignore[method-assign]
    collector = Collector(backend, deadline=1.0)
    assert collector.handle(body({**VALID_EVENT, "timestamp": 1}))["status"] == "ok"
    assert len(seen) == 1
    assert 0.5 < seen[0] <= 0.9  # the deadline less its margin (a tenth of it)
