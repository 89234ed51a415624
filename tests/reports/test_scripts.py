"""The benchmark and the docs' chart script run (the benchmark in its quick mode)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from scripts import make_report_chart

ROOT = Path(__file__).resolve().parent.parent.parent


def test_benchmark_quick_mode_times_every_report():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "report_queries.py"), "--quick"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    lines = result.stdout.splitlines()
    assert lines[0].startswith("stored 20000 events")
    for report in ("versions", "funnel", "adoption", "active_devices", "download_latency", "daily"):
        assert sum(report in line for line in lines) == 2  # all time, last 7 days


def test_chart_script_draws_the_docs_chart(tmp_path):
    output = tmp_path / "chart.png"
    make_report_chart.main(output)
    assert output.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert output.stat().st_size > 20_000
