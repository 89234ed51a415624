"""Draw docs/img/report-daily.png from a simulated rollout: ``python -m scripts.make_report_chart``.

Runs the real pipeline: events are written by `SQLiteBackend`, counted by
`SQLiteReports`, drawn by `daily_chart`.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
from pathlib import Path

from updater_stats import SQLiteBackend
from updater_stats.backends.sqlite import SQLiteReports
from updater_stats.reports import ReportQuery, Reports, daily_chart

from .sample_rollout import APP, rollout

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "img" / "report-daily.png"
START = dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc)


def main(output: Path = OUTPUT) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sample.sqlite3"
        backend = SQLiteBackend(path)
        backend.write(sorted(rollout(3000, start=START, seed=6), key=lambda s: s.received_at))
        backend.close()
        query = ReportQuery(app_id=APP, since=START, until=START + dt.timedelta(days=14))
        with Reports(SQLiteReports(path)) as reports:
            daily = reports.daily(query)
        daily_chart(daily, output, title=f"{APP}: 3000 simulated devices, 14 days")
    sys.stdout.write(f"wrote {output}\n")


if __name__ == "__main__":
    main()
