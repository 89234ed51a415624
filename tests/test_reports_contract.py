"""The reports contract kit itself: its data set exercises every rule, and a wrong figure fails
with the report, the query, the figure's path, what was expected and what came."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import attrs
import pytest

from updater_stats import Action, MemoryBackend, counts_as_failure
from updater_stats._reports_contract import (
    APP,
    OTHER_APP,
    SILENT_APP,
    WINDOW_SINCE,
    WINDOW_UNTIL,
)
from updater_stats._transfer import json_line
from updater_stats.reports import MAX_CLOCK_AHEAD, MAX_QUEUE_DELAY, EventReportSource, Reports
from updater_stats.testing import ReportsContract


def stored() -> list:
    backend = MemoryBackend()
    for batch in ReportsContract().batches():
        backend.write(batch)
    return list(backend.events())


def test_the_data_set_holds_every_case_the_contract_promises():
    contract = ReportsContract()
    events = stored()
    actions = Counter(s.event.action for s in events)
    # A failure of every kind, unknown actions, rollbacks, every download step.
    assert {a.value for a in Action if a.is_failure} <= set(actions)
    assert {"future_unknown_action", "SET", "reset", "update_fail", "download_10"} <= set(actions)
    download_fails = [s.event.plugin_version for s in events if s.event.action == "download_fail"]
    assert any(counts_as_failure("download_fail", v) for v in download_fails)
    assert {"7.16.3", "7.17.0-beta.1", "dev-build", "", None} <= set(download_fails)
    # Per-file names, pre-releases, free text; emulators and development builds.
    names = {s.event.version_name for s in events}
    assert any(":" in name for name in names)
    assert {"2.0.0-beta.2", "2.0.0-beta.10", "1.9.0", "1.10.0", "builtin", ""} <= names
    assert any(s.event.is_emulator for s in events)
    assert any(not s.event.is_prod for s in events)
    # Re-sends: duplicates refused, keyless events kept twice.
    memory = MemoryBackend()
    duplicates = sum(memory.write(batch).duplicates for batch in contract.batches())
    assert duplicates > 100
    # The same event at the same receive time twice: a keyless event in a batch re-sent as it was.
    keyless = Counter(json_line(s) for s in events if s.key is None)  # receive time included
    assert max(keyless.values()) > 1
    # Device clocks believed and not, behind and ahead.
    behind = [s for s in events if s.device_time and s.device_time < s.received_at]
    ahead = [s for s in events if s.device_time and s.device_time > s.received_at]
    assert any(s.received_at - s.device_time > MAX_QUEUE_DELAY for s in behind)
    assert any(
        dt.timedelta(days=1) < s.received_at - s.device_time <= MAX_QUEUE_DELAY for s in behind
    )
    assert any(s.device_time - s.received_at > MAX_CLOCK_AHEAD for s in ahead)
    assert any(s.device_time - s.received_at == MAX_CLOCK_AHEAD for s in ahead)
    # The window cuts through late events: some received after it, sent in it; some the reverse.
    assert any(
        s.received_at >= WINDOW_UNTIL and WINDOW_SINCE <= s.device_time < WINDOW_UNTIL
        for s in behind
    )
    assert any(
        WINDOW_SINCE <= s.received_at < WINDOW_UNTIL and s.device_time < WINDOW_SINCE
        for s in behind
    )
    assert {s.event.app_id for s in events} == {APP, OTHER_APP}
    assert SILENT_APP in {q.app_id for q in contract.queries.values()}


def test_every_query_but_the_empty_ones_has_figures_of_every_report():
    contract = ReportsContract()
    reports = contract.expected()
    for name, query in contract.queries.items():
        empty = query.app_id == SILENT_APP or "no events" in name
        figures = [
            reports.versions(query),
            reports.funnel(query),
            reports.adoption(query).versions,
            reports.active_devices(query).by_day,
            reports.download_latency(query),
            reports.daily(query),
        ]
        assert all(not f for f in figures) if empty else all(figures), name
        if not empty:
            assert any(v.failures for v in reports.versions(query)), name


class Wrong(EventReportSource):
    """The reference, but one crash too many for each version with failures."""

    def version_counts(self, query):
        return [
            attrs.evolve(
                c, failures={**c.failures, "app_crash": c.failures.get("app_crash", 0) + 1}
            )
            if c.failures
            else c
            for c in super().version_counts(query)
        ]

    def daily_counts(self, query):
        return super().daily_counts(query)[1:]


class WronglyReported(ReportsContract):
    def reports(self, backend):
        return Reports(Wrong(backend))


def failure_of(check) -> str:
    with pytest.raises(pytest.fail.Exception) as raised:
        check(MemoryBackend())
    return str(raised.value)


def test_a_wrong_figure_is_named_with_its_query_and_both_values():
    message = failure_of(WronglyReported().test_versions)

    first, *lines = message.splitlines()
    assert first.endswith("figures differ in versions from the reference implementation:")
    assert "versions[1.10.0].failures.app_crash: expected 12, got 13 (query: everything)" in lines
    assert "versions[builtin].failures.app_crash: expected nothing, got 1 (query: everything)" in (
        lines
    )
    assert "where the queries are:" in lines
    assert any(
        line.startswith("everything: ReportQuery(app_id='com.example.reports'") for line in lines
    )
    assert any(line.startswith("... and ") for line in lines)  # no endless message


def test_a_missing_row_is_one_line():
    message = failure_of(WronglyReported().test_daily)

    assert "daily[2026-03-02 builtin]: expected a row, got nothing (query: everything)" in message
    assert "(order)" not in message
    assert ".installs" not in message


def test_a_backend_that_reads_wrongly_fails_the_read_protocol_check():
    class LateSince(MemoryBackend):
        def events(self, *, app_id=None, since=None):
            later = None if since is None else since + dt.timedelta(minutes=1)
            return super().events(app_id=app_id, since=later)

    with pytest.raises(pytest.fail.Exception, match=r"\(query: window\)"):
        ReportsContract().test_the_read_protocol_gives_the_same_figures(LateSince())


def test_the_right_figures_pass():
    contract = ReportsContract()
    for name in dir(contract):
        if name.startswith("test_"):
            getattr(contract, name)(MemoryBackend())
