"""How long each dashboard page takes over many stored events in SQLite.

    .venv/bin/python benchmarks/dashboard_pages.py            # 1 000 000 events
    .venv/bin/python benchmarks/dashboard_pages.py --quick    # 20 000 events, for CI

Writes the simulated rollout of benchmarks/report_queries.py into a temporary file, builds
its day summaries (as the dashboard's thread does after its first page; their time printed),
then asks the dashboard (through its ASGI interface, as a server would) for each page: the
apps page, an app over 14 and 7 days, a version and its second page of failing devices, the
device list, a search by device_id and by custom_id, and a device's timeline. Prints one line
per page, whether every page took under a second (met / MISSED), and the process's peak
memory.

Then the write cost of the index the custom_id search uses (``events_app_custom``, schema 5):
`SQLiteBackend.write` of the same events in 200-event writes, every event with a custom_id,
into a file with the index and one without.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import attrs
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from report_queries import START, fill  # noqa: E402
from scripts.sample_rollout import APP, rollout  # noqa: E402

from updater_stats import SQLiteBackend, StoredEvent  # noqa: E402
from updater_stats.backends.sqlite import SQLiteReports  # noqa: E402
from updater_stats.dashboard import create_dashboard  # noqa: E402

TOKEN = "benchmark-token-0123456789"
NOW = START + dt.timedelta(days=13, hours=12)


def pages(device_id: str, custom_id: str) -> dict[str, str]:
    until = (START + dt.timedelta(days=13)).date().isoformat()
    return {
        "apps": "/dashboard/",
        "app, 14 days": f"/dashboard/app?app={APP}&days=14&until={until}",
        "app, 7 days, ios": f"/dashboard/app?app={APP}&days=7&until={until}&platform=ios",
        "version 1.2.0": f"/dashboard/version?app={APP}&version=1.2.0&until={until}",
        "version, page 2": f"/dashboard/version?app={APP}&version=1.2.0&until={until}&page=2",
        "devices, first page": f"/dashboard/devices?app={APP}",
        "devices, by device_id": f"/dashboard/devices?app={APP}&q={device_id}",
        "devices, by custom_id": f"/dashboard/devices?app={APP}&q={custom_id}",
        "device timeline": f"/dashboard/device?app={APP}&id={device_id}",
    }


def a_device(path: Path) -> tuple[str, str]:
    backend = SQLiteBackend(path)
    try:
        for stored in backend.events(app_id=APP, chunk_size=10):
            return stored.event.device_id, "user-1234"
    finally:
        backend.close()
    raise SystemExit("no events")


def build_summaries(path: Path) -> float:
    """Seconds to bring the file's day summaries up to date (the dashboard's thread does
    this after its first page; the pages are timed once it is done)."""
    began = time.perf_counter()
    reports = SQLiteReports(path, summaries=True)
    try:
        while not reports.summaries_ready():
            time.sleep(0.2)
    finally:
        reports.close()
    return time.perf_counter() - began


async def time_pages(path: Path) -> list[tuple[str, float, int]]:
    app = create_dashboard(f"sqlite:///{path}", token=TOKEN, clock=lambda: NOW)
    device_id, custom_id = a_device(path)
    results = []
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        await client.get("/dashboard/", headers=headers)  # opens the read connection
        for name, url in pages(device_id, custom_id).items():
            began = time.perf_counter()
            answer = await client.get(url, headers=headers)
            took = time.perf_counter() - began
            if answer.status_code != 200:
                raise SystemExit(f"{name}: {answer.status_code} {answer.text[:200]}")
            results.append((name, took, len(answer.content)))
    app.close()
    return results


def with_custom_ids(count: int) -> list[StoredEvent]:
    stream = rollout(count // 15 + 1, start=START, seed=2)
    return [
        attrs.evolve(s, event=attrs.evolve(s.event, custom_id=f"user-{s.event.device_id[:8]}"))
        for s in itertools.islice(stream, count)
    ]


def write_rate(path: Path, events: list[StoredEvent], *, index: bool) -> float:
    backend = SQLiteBackend(path)
    backend.write(events[:1])  # creates the file and its schema
    if not index:
        with sqlite3.connect(path) as conn:
            conn.execute("DROP INDEX events_app_custom")
    began = time.perf_counter()
    for n in range(1, len(events), 200):
        backend.write(events[n : n + 200])
    took = time.perf_counter() - began
    backend.close()
    return (len(events) - 1) / took


def write_cost(folder: Path, count: int) -> None:
    events = with_custom_ids(count)
    rates = {}
    for index in (False, True, False, True):  # alternated, so drift hits both alike
        name = "with" if index else "without"
        path = folder / f"write-{name}-{len(rates)}.sqlite3"
        rates.setdefault(name, []).append(write_rate(path, events, index=index))
    best = {name: max(values) for name, values in rates.items()}
    for name, rate in best.items():
        print(f"write {name:<7} events_app_custom  {rate:10,.0f} events/s")
    print(f"ratio  with / without events_app_custom {best['with'] / best['without'] * 100:.0f}%")


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
        print(f"day summaries built in {build_summaries(path):.1f} s")
        worst = 0.0
        for name, took, size in asyncio.run(time_pages(path)):
            worst = max(worst, took)
            print(f"page  {name:<24} {took:6.2f} s  {size / 1024:6.0f} KiB")
        print(f"slowest page {worst:.2f} s")
        print(f"target every page under 1 s: {'met' if worst < 1 else 'MISSED'}")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak memory {peak:.0f} MiB (the whole process, writing included)")
        write_cost(Path(folder), 20_000 if args.quick else 200_000)


if __name__ == "__main__":
    main()
