"""Every figure the SQLite read side and the reference implementation report equals a plain
recount of the same events."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator

import pytest

from updater_stats import MemoryBackend, SQLiteBackend, StoredEvent
from updater_stats.backends.sqlite import SQLiteReports
from updater_stats.reports import EventReportSource, Reports

from . import recount
from .generate import generate, kept

SEEDS = [1, 2, 3, 4, 5, 6]


@pytest.fixture(scope="module", params=["sqlite", "reference"])
def source(request: pytest.FixtureRequest) -> str:
    """The SQL read side (SQLite's), or the reference implementation over `MemoryBackend`."""
    return str(request.param)


@pytest.fixture(scope="module", params=SEEDS)
def dataset(
    request: pytest.FixtureRequest, source: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[list[StoredEvent], Reports]]:
    arrivals = generate(request.param)
    events = kept(arrivals)
    if source == "sqlite":
        path = tmp_path_factory.mktemp("reports") / "stats.sqlite3"
        backend = SQLiteBackend(path)
        result = backend.write(arrivals)
        backend.close()
        reports = Reports(SQLiteReports(path))
    else:
        memory = MemoryBackend()
        result = memory.write(arrivals)
        reports = Reports(EventReportSource(memory))
    # The generator's idea of what is kept is the backend's: duplicates really were sent.
    assert result.inserted == len(events) < len(arrivals)
    yield events, reports
    reports.close()


def test_version_counts(dataset, query):
    events, reports = dataset
    expected = recount.versions(events, query)
    assert sorted(reports.source.version_counts(query), key=lambda c: c.version) == expected
    assert any(c.failures for c in expected) or query.channel is not None


def test_version_reports_derive_rates_from_the_counts(dataset, query):
    events, reports = dataset
    by_version = {c.version: c for c in recount.versions(events, query)}
    for report in reports.versions(query):
        counts = by_version[report.version]
        assert report.devices == counts.devices
        assert report.failure_events == sum(counts.failures.values())
        if counts.devices:
            assert report.failure_rate == counts.failed_devices / counts.devices
            low, high = report.failure_interval
            assert low <= report.failure_rate <= high
        else:
            assert report.failure_rate is None
            assert report.failure_interval is None


def test_funnel(dataset, query):
    events, reports = dataset
    got = sorted(reports.source.funnel_counts(query), key=lambda c: c.version)
    assert got == recount.funnel(events, query)
    for report in reports.funnel(query):
        steps = [step.devices for step in report.steps]
        assert steps == sorted(steps, reverse=True)  # a device never skips a step


def test_running_versions(dataset, query):
    events, reports = dataset
    got = sorted(
        reports.source.running_versions(query),
        key=lambda g: (g.version, g.platform, g.os_version, g.plugin_version, g.native_version),
    )
    assert got == recount.running(events, query)


def test_active_devices(dataset, query):
    events, reports = dataset
    assert reports.active_devices(query) == recount.active(events, query)


def test_download_latency(dataset, query):
    events, reports = dataset
    assert reports.download_latency(query) == recount.latency(events, query)


def test_daily_counts(dataset, query):
    events, reports = dataset
    assert reports.daily(query) == recount.daily(events, query)


def test_adoption_shares_add_up(dataset, query):
    events, reports = dataset
    adoption = reports.adoption(query)
    groups = recount.running(events, query)
    assert adoption.devices == sum(g.devices for g in groups)
    for split in ("versions", "platforms", "os_versions", "plugin_versions", "native_versions"):
        shares = getattr(adoption, split)
        assert sum(s.devices for s in shares) == adoption.devices
        if adoption.devices:
            assert sum(s.share for s in shares) == pytest.approx(1.0)
    versions = {s.value: s.devices for s in adoption.versions}
    for group in groups:
        assert versions[group.version] >= group.devices


def test_the_generated_data_exercises_every_rule(dataset):
    """Guards the generator: each special case must be present, or the recounts prove little."""
    events, _ = dataset
    actions = {s.event.action for s in events}
    assert {
        "download_10",
        "download_0",
        "download_complete",
        "set",
        "update_fail",
        "reset",
    } <= actions
    assert any(":" in s.event.version_name for s in events)
    assert any(s.key is None for s in events)
    assert any(s.event.is_emulator for s in events)
    assert any(not s.event.is_prod for s in events)
    assert any(recount.event_time(s) != recount.ms(s.device_time) for s in events if s.device_time)
    assert any(
        s.event.action == "download_fail" and recount.download_fail_counts(s.event.plugin_version)
        for s in events
    )
    # Version order differs from text order: 1.10.0 is newer than 1.9.0.
    assert {"1.9.0", "1.10.0"} <= {s.event.version_name for s in events}
    # An unkeyed event sent twice is stored twice: the repeats are in the recount's input.
    unkeyed = Counter(
        json.dumps(s.event.to_wire(), sort_keys=True) for s in events if s.key is None
    )
    assert max(unkeyed.values()) > 1


def test_the_generated_data_has_every_kind_of_download_fail():
    plugins = {
        s.event.plugin_version
        for seed in SEEDS
        for s in generate(seed)
        if s.event.action == "download_fail"
    }
    # Counted, "no update" (a pre-release of the fixed version among them) and unreadable.
    assert any(recount.download_fail_counts(v) for v in plugins)
    assert "7.17.0-beta.1" in plugins
    assert "6.x-beta" in plugins
