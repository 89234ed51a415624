"""How long the reports take over many stored events in SQLite.

    .venv/bin/python benchmarks/report_queries.py            # 1 000 000 events
    .venv/bin/python benchmarks/report_queries.py --quick    # 20 000 events, for CI

Writes a simulated rollout (scripts/sample_rollout.py) through `SQLiteBackend`
into a temporary file, then times each report over the whole app and over the
last seven days. Prints one line per report.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.sample_rollout import APP, rollout  # noqa: E402

from updater_stats import SQLiteBackend  # noqa: E402
from updater_stats.backends.sqlite import SQLiteReports  # noqa: E402
from updater_stats.reports import ReportQuery, Reports  # noqa: E402

START = dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc)
EVENTS_PER_DEVICE = 15  # about what the simulation sends over 14 days


def fill(path: Path, events: int) -> int:
    backend = SQLiteBackend(path)
    stream = rollout(events // EVENTS_PER_DEVICE + 1, start=START, seed=1)
    written = 0
    while written < events:
        chunk = list(itertools.islice(stream, min(50_000, events - written)))
        if not chunk:
            break
        backend.write(chunk)
        written += len(chunk)
    backend.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="20 000 events")
    args = parser.parse_args()
    events = 20_000 if args.quick else args.events
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.sqlite3"
        began = time.perf_counter()
        stored = fill(path, events)
        print(f"stored {stored} events in {time.perf_counter() - began:.1f} s")
        queries = {
            "all time": ReportQuery(app_id=APP),
            "last 7 days": ReportQuery(
                app_id=APP, since=START + dt.timedelta(days=7), until=START + dt.timedelta(days=14)
            ),
        }
        with Reports(SQLiteReports(path)) as reports:
            reports_to_time = {
                "versions": reports.versions,
                "funnel": reports.funnel,
                "adoption": reports.adoption,
                "active_devices": reports.active_devices,
                "download_latency": reports.download_latency,
                "daily": reports.daily,
            }
            for label, query in queries.items():
                total = 0.0
                for name, report in reports_to_time.items():
                    began = time.perf_counter()
                    report(query)
                    took = time.perf_counter() - began
                    total += took
                    print(f"{label:>12}  {name:<17} {took:6.2f} s")
                print(f"{label:>12}  {'all reports':<17} {total:6.2f} s")


if __name__ == "__main__":
    main()
