"""ClickHouse specifics, on the real engine in-process (chdb): layout, dedup, inserts, cluster DDL.

The contract suite (test_contract.py) and the endpoint tests already run here.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator

import pytest

from updater_stats import BackendError, Collector, UpdaterStatsError, backend_from_url
from updater_stats.backends import Batching
from updater_stats.backends.clickhouse import (
    CLICKHOUSE_BATCHING,
    SCHEMA_VERSION,
    ClickHouseBackend,
    create_statements,
)
from updater_stats.testing import stored_event

from ..conftest import VALID_EVENT, body
from ..test_docs import ROOT, blocks
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
