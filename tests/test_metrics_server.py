"""``updater-stats serve --workers 2 --metrics``: every scrape gives the totals of both workers."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from updater_stats.testing import wire_event

from .conftest import body
from .live_server import HOST, Server
from .prometheus_text import samples

pytest.importorskip("uvicorn")

ROUND = 30  # requests sent in one round
THREADS = 6


def scrape(server: Server) -> str:
    conn = http.client.HTTPConnection(HOST, server.port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("content-type", "").startswith("text/plain")
        return response.read().decode()
    finally:
        conn.close()


def test_two_workers_add_up_in_every_scrape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # serve makes the multiprocess directory itself, in TMPDIR: here, where the test can look.
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    server = Server(tmp_path, "--workers", "2", "--metrics")
    try:
        errors: list[BaseException] = []
        sent = 0

        def send(first: int) -> None:
            # Each request on a connection of its own, so that both workers take some.
            try:
                for i in range(first, first + ROUND, THREADS):
                    event = wire_event(timestamp=i)
                    status, _ = server.request("POST", data=body([event, event]))  # 1 duplicate
                    assert status == 200
                    if i % 10 == 0:
                        assert server.request("POST", data=b"[")[0] == 400
            except BaseException as exc:
                errors.append(exc)

        (metrics_dir,) = temp.glob("updater-stats-metrics-*")
        workers: set[str] = set()
        # Which worker accepts a connection is the kernel's choice: send until both did.
        while len(workers) < 2 and sent < 20 * ROUND:
            threads = [threading.Thread(target=send, args=(sent + w,)) for w in range(THREADS)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            assert errors == []
            sent += ROUND
            workers = {path.stem.rsplit("_", 1)[1] for path in metrics_dir.glob("counter_*.db")}
        assert len(workers) == 2, "both workers should have counted requests"

        expected = {
            ("updater_stats_requests_total", (("code", "ok"),)): sent,
            ("updater_stats_requests_total", (("code", "invalid_json"),)): sent // 10,
            ("updater_stats_events_accepted_total", (("app_id", "com.example.app"),)): 2 * sent,
            ("updater_stats_events_duplicates_total", (("app_id", "com.example.app"),)): sent,
        }
        for _ in range(8):  # whichever worker answers, the totals are the same
            assert samples(scrape(server)) == expected
    finally:
        assert server.stop()
    assert not metrics_dir.exists()  # serve removed the directory it made


SEVERAL_APPS_IN_ONE_PROCESS = """
import json
from updater_stats import MemoryBackend
from updater_stats.testing import wire_event
from updater_stats.wsgi import create_app

apps = [create_app(MemoryBackend(), metrics=True) for _ in range(2)]
for stamp in range(3):  # the two apps take turns
    for app in apps:
        app.collector.handle(json.dumps([wire_event(timestamp=stamp)]).encode())
print(apps[0].exporter.render().decode())
"""


def test_multiprocess_mode_adds_up_several_apps_of_one_process(tmp_path: Path):
    # A process of its own: prometheus-client picks its mode when it is first imported.
    directory = tmp_path / "metrics"
    directory.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", SEVERAL_APPS_IN_ONE_PROCESS],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )

    found = samples(result.stdout)
    assert found[("updater_stats_requests_total", (("code", "ok"),))] == 6
    assert found[("updater_stats_events_accepted_total", (("app_id", "com.example.app"),))] == 6
    assert len(list(directory.glob("counter_*.db"))) == 1  # one process, one file
