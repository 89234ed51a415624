"""SQLite, PostgreSQL, ClickHouse and the reference implementation (over `MemoryBackend`) report
the same figures for the same events, all exact.

The servers come from the backend tests' fixtures: a throwaway PostgreSQL cluster and the
in-process ClickHouse engine (chdb). Each backend stores the same arrivals, re-sends included,
through its own `write`; each report must equal the plain recount.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from updater_stats import MemoryBackend, SQLiteBackend, StorageBackend, StoredEvent
from updater_stats.reports import (
    ReportQuery,
    Reports,
    RunningGroup,
    reports_for,
    summarize,
)

from ..backends.servers import clickhouse_backend, postgres_backend
from . import recount
from .build import event
from .generate import generate, kept
from .queries import QUERIES

SEEDS = [11, 12]
BACKENDS: dict[str, Callable[[Path], StorageBackend]] = {
    "sqlite": lambda tmp: SQLiteBackend(tmp / "stats.sqlite3"),
    "postgres": lambda _tmp: postgres_backend(),
    "clickhouse": lambda _tmp: clickhouse_backend(),
    "memory": lambda _tmp: MemoryBackend(),
}
# Each SQL backend hands out its own read side (the push-down); memory gets the reference.
READ_SIDES = {
    "sqlite": "SQLiteReports",
    "postgres": "PostgresReports",
    "clickhouse": "ClickHouseReports",
    "memory": "EventReportSource",
}


@pytest.fixture(scope="module", params=SEEDS)
def arrivals(request: pytest.FixtureRequest) -> list[StoredEvent]:
    events = generate(request.param, devices=45)
    # Text every database must keep apart exactly: composite names, non-ASCII, a NUL.
    events += [
        event("set", "2.0.0-β", dev=9001, platform="ios"),
        event("app_crash", "2.0.0-β:ü.js", dev=9001, platform="ios"),
        event("set", "nul\x00name", dev=9002, old_version_name="2.0.0-β"),
    ]
    return sorted(events, key=lambda stored: stored.received_at)


@pytest.fixture(scope="module", params=list(BACKENDS))
def reports(
    request: pytest.FixtureRequest,
    arrivals: list[StoredEvent],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Reports]:
    backend = BACKENDS[request.param](tmp_path_factory.mktemp(request.param))
    result = backend.write(arrivals)
    assert result.inserted == len(kept(arrivals))
    with reports_for(backend) as opened:
        assert type(opened.source).__name__ == READ_SIDES[request.param]
        yield opened
    backend.close()


def test_every_report_equals_the_recount(reports, arrivals, query):
    events = kept(arrivals)
    source = reports.source
    assert sorted(source.version_counts(query), key=lambda c: c.version) == recount.versions(
        events, query
    )
    assert sorted(source.funnel_counts(query), key=lambda c: c.version) == recount.funnel(
        events, query
    )
    assert sorted(
        source.running_versions(query),
        key=lambda g: (g.version, g.platform, g.os_version, g.plugin_version, g.native_version),
    ) == recount.running(events, query)
    assert reports.active_devices(query) == recount.active(events, query)
    assert reports.download_latency(query) == recount.latency(events, query)
    assert reports.daily(query) == recount.daily(events, query)


def test_summaries_are_identical_across_backends(tmp_path):
    arrivals = sorted(generate(21, devices=30), key=lambda stored: stored.received_at)
    summaries = {}
    for name, make in BACKENDS.items():
        backend = make(tmp_path)
        backend.write(arrivals)
        with reports_for(backend) as reports:
            summaries[name] = [summarize(reports, query).to_json() for query in QUERIES.values()]
        backend.close()
    assert summaries["postgres"] == summaries["sqlite"]
    assert summaries["clickhouse"] == summaries["sqlite"]
    assert summaries["memory"] == summaries["sqlite"]
    assert any(version["failures"] for version in summaries["sqlite"][0]["versions"])


ABSENT = dict.fromkeys(
    ("platform", "version_build", "version_code", "version_os", "plugin_version")
)


def test_absent_optional_fields_are_reported_alike(tmp_path):
    events = [
        event("app_moved_to_foreground", "1.0.0", dev=1, **ABSENT),
        # One moment, with and without a platform: every database takes the same one as latest.
        event("app_moved_to_foreground", "1.0.0", dev=2, **ABSENT),
        event("app_moved_to_foreground", "1.0.0", dev=2, **{**ABSENT, "platform": "ios"}),
        event("download_fail", "1.0.0", dev=3, plugin_version="7.0.0"),  # old plugin: no update
        event("download_fail", "1.0.0", dev=4, **ABSENT),  # no plugin version: not counted
        event("download_fail", "1.0.0", dev=5, plugin_version="8.42.0"),  # a failure
    ]
    query = ReportQuery(app_id=events[0].event.app_id)
    blank = {"os_version": "", "plugin_version": "", "native_version": ""}
    summaries = []
    for make in BACKENDS.values():
        backend = make(tmp_path)
        assert backend.write(events).inserted == len(events)
        with reports_for(backend) as reports:
            (counts,) = reports.source.version_counts(query)
            assert (counts.devices, counts.failures, counts.failed_devices) == (
                5,
                {"download_fail": 1},
                1,
            )
            running = sorted(reports.source.running_versions(query), key=lambda g: g.platform)
            assert running == [
                RunningGroup(version="1.0.0", platform="", devices=1, **blank),
                RunningGroup(version="1.0.0", platform="ios", devices=1, **blank),
            ]
            summaries.append(summarize(reports, query).to_json())
        backend.close()
    assert all(summary == summaries[0] for summary in summaries)
