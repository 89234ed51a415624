"""Every benchmark in benchmarks/, in its quick mode, so that none can rot.

Only that each runs and prints its figures and ratios is checked: timings on a
shared CI machine mean nothing, so no test asserts one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
RATIO = re.compile(r"^ratio  .+ +\d+(?:\.\d+)?(?:%|x)", re.MULTILINE)


def run(script: str, *args: str, timeout: float = 240) -> str:
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=environment,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


def test_library_path_prints_its_figures_and_ratios():
    output = run("library_path.py")

    for line in [
        "parse + structure, no storage",
        "SQLiteBackend.write() alone",
        "library handle(), 1 caller",
        "floor handler, no checks",
        "seed-style handler",
    ]:
        assert output.count(line) == 2, output  # 200-event and single-event bodies
    assert "200-event bodies: library / parse+structure" in output
    assert "200-event bodies: library / seed-style" in output
    assert "200-event bodies: floor handler / parse+structure" in output
    assert "single events a write, 2000 held:" in output
    assert len(RATIO.findall(output)) == 7, output


@pytest.mark.parametrize("client", ["python", "wrk"])
def test_http_path_prints_its_figures_and_ratios(client):
    if client == "wrk" and not any(
        (Path(folder) / "wrk").exists() for folder in os.environ["PATH"].split(os.pathsep)
    ):
        pytest.skip("wrk is not installed (the Debian package wrk); the Python client ran")
    # The Node baseline once, with wrk; its first run installs it (npm ci).
    node = () if client == "wrk" else ("--no-node",)
    output = run("http_path.py", "--client", client, "--seconds", "1", *node, timeout=900)

    assert f"load: {client}" in output
    placements = ["pinned", "unpinned"]
    if "pinned runs skipped" in output:  # one core, or no taskset
        placements = ["unpinned"]
    apps = ["no-op ASGI app", "updater-stats serve", "durable floor", "floor without sync"]
    measured_node = "Node baseline skipped" not in output
    if measured_node:
        apps.append("Node baseline")
    for app in apps:
        # Single events and 200-event bodies, in each placement.
        assert output.count(f"  {app} ") == 2 * len(placements), output
    for placement in placements:
        assert f"single, {placement}: serve / no-op req/s" in output
        assert f"target single, {placement}: p99" in output
        assert f"target 200-event, {placement}:" in output
        assert (f"single, {placement}: serve / Node baseline req/s" in output) == measured_node
        assert f"single, {placement}: durable floor / no-op req/s" in output
        assert f"single, {placement}: floor without sync / no-op req/s" in output
        assert f"single, {placement}: serve / durable floor req/s" in output
        assert f"200-event, {placement}: serve / durable floor events/s" in output
    assert "answers not 200" not in output, output
    assert "LOST" not in output, output
    ratios = (8 if measured_node else 6) * len(placements)
    assert len(RATIO.findall(output)) == ratios, output


def test_server_backends_prints_its_figures_and_ratios():
    output = run("server_backends.py")

    assert "PostgreSQL" in output
    assert "ClickHouse" in output
    for backend in ["PostgreSQL", "ClickHouse"]:
        # Off CI a missing server may skip a backend; in CI every backend must be measured.
        if os.environ.get("CI") or f"{backend}: skipped" not in output:
            assert f"{backend}: library / bulk load" in output, output


def test_copy_store_prints_its_figures_and_ratios():
    output = run("copy_store.py")

    for backend in ["PostgreSQL", "ClickHouse"]:
        if os.environ.get("CI") or f"{backend}: skipped" not in output:
            assert f"{backend}: copy / bulk load" in output, output
    assert output.count("copy_events from SQLite") == len(RATIO.findall(output)), output
    assert output.count("the same again (all present)") == len(RATIO.findall(output)), output


def test_dashboard_pages_prints_each_page_and_the_index_cost():
    output = run("dashboard_pages.py")

    pages = re.findall(r"^page  (.+?) +\d+\.\d\d s +\d+ KiB$", output, re.MULTILINE)
    assert pages == [
        "apps",
        "app, 14 days",
        "app, 7 days, ios",
        "version 1.2.0",
        "version, page 2",
        "devices, first page",
        "devices, by device_id",
        "devices, by custom_id",
        "device timeline",
    ], output
    assert re.search(r"^day summaries built in \d+\.\d s$", output, re.MULTILINE), output
    assert re.search(r"^slowest page \d+\.\d\d s$", output, re.MULTILINE), output
    assert re.search(r"^target every page under 1 s: (met|MISSED)$", output, re.MULTILINE), output
    assert re.search(r"^peak memory \d+ MiB", output, re.MULTILINE), output
    assert len(re.findall(r"^write (with|without) +events_app_custom", output, re.MULTILINE)) == 2
    assert len(RATIO.findall(output)) == 1, output
