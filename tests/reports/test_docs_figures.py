"""The figures docs/reports.md states in prose are read from the page and checked here.

Each test finds its sentence on the page with a pattern, so changing a figure in the docs
without changing the code (or the other way round) fails a test.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from updater_stats.cli import cli
from updater_stats.reports import HealthPolicy, Verdict, VersionCounts, VersionReport, judge

from .build import database, event

PAGE = (Path(__file__).parents[2] / "docs" / "reports.md").read_text()


def found(pattern: str) -> re.Match[str]:
    match = re.search(pattern, PAGE.replace("\n", " "))
    assert match is not None, f"docs/reports.md no longer says: {pattern}"
    return match


def verdict_of(failed: int, devices: int) -> tuple[Verdict, VersionReport]:
    report = VersionReport.from_counts(
        VersionCounts(version="1.2.0", devices=devices, failed_devices=failed)
    )
    # The default policy, with min_devices low enough to let the interval speak.
    verdict, _ = judge(report, HealthPolicy(min_devices=1))
    return verdict, report


def pct(value: float) -> str:
    return f"{value * 100:.1f}"


def test_no_failure_among_few_devices_is_a_warning():
    match = found(
        r"0 failures among (\d+) devices is still `warning` \(the interval reaches ([\d.]+) %\)"
    )
    verdict, report = verdict_of(0, int(match.group(1)))
    assert verdict is Verdict.WARNING
    assert pct(report.failure_interval[1]) == match.group(2)


def test_failure_free_devices_needed_to_prove_the_limit():
    match = found(
        r"(\d+) failure-free devices are needed before the 5 % limit is proven "
        r"\((\d+) reach ([\d.]+) %\)"
    )
    needed, fewer = int(match.group(1)), int(match.group(2))
    assert fewer == needed - 1
    assert verdict_of(0, needed)[0] is Verdict.HEALTHY
    verdict, report = verdict_of(0, fewer)
    assert verdict is Verdict.WARNING
    assert pct(report.failure_interval[1]) == match.group(3)
    assert HealthPolicy().max_failure_rate == 0.05


def test_many_failures_are_at_risk():
    match = found(r"(\d+) failures among (\d+) is `at_risk` \(at least ([\d.]+) %\)")
    verdict, report = verdict_of(int(match.group(1)), int(match.group(2)))
    assert verdict is Verdict.AT_RISK
    assert pct(report.failure_interval[0]) == match.group(3)


def test_the_gate_example_prints_what_the_page_shows(tmp_path, monkeypatch):
    block = re.search(
        r"^\$ (updater-stats gate --app (\S+) --version (\S+))\n(.*?)\n\$ ",
        PAGE,
        re.MULTILINE | re.DOTALL,
    )
    assert block is not None, "docs/reports.md no longer shows a gate run"
    now = dt.datetime.now(dt.timezone.utc)
    # 100 devices installed it; 9 crashed, 4 failed to unpack it, one of them both: 12 failed.
    events = []
    for n in range(1, 101):
        at = now - dt.timedelta(hours=2, seconds=n)
        events.append(event("set", block.group(3), dev=n, received=at, app_id=block.group(2)))
        crash = event("app_crash", block.group(3), dev=n, received=at, app_id=block.group(2))
        unzip = event("unzip_fail", block.group(3), dev=n, received=at, app_id=block.group(2))
        events += [crash] * (n <= 9) + [unzip] * (9 <= n <= 12)
    storage = f"sqlite:///{database(tmp_path, events)}"
    monkeypatch.setenv("UPDATER_STATS_STORAGE", storage)
    result = CliRunner().invoke(cli, block.group(1).split()[1:], catch_exceptions=False)
    assert result.output.splitlines() == block.group(4).splitlines()
    assert result.exit_code == 1


@pytest.mark.parametrize("verdict", list(Verdict))
def test_the_exit_code_table_is_the_code(verdict):
    found(rf"\| `{verdict.value}` \| [^|]+ \| {verdict.exit_code} \|")
