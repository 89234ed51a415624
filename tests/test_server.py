"""`updater-stats serve` as a real server process, then `updater-stats export` over what it stored."""

from __future__ import annotations

import gzip
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from updater_stats import SQLiteBackend
from updater_stats._cores import cgroup_cpu_limit

from .conftest import VALID_EVENT, body, fixture_bytes, load_fixture
from .live_server import HOST, Server, free_port, raw_exchange

pytest.importorskip("uvicorn")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path)
    yield running
    running.stop()


def export(storage: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "updater_stats", "export", "--storage", storage, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_plugin_shaped_bodies_then_export_shows_exactly_what_was_stored(server: Server):
    android = fixture_bytes("android_batch")
    assert server.request("POST", data=android, headers={"Content-Type": "application/json"}) == (
        200,
        {"status": "ok", "results": [{"status": "ok", "index": i} for i in range(6)]},
    )
    assert server.request("POST", data=fixture_bytes("android_worker_single")) == (
        200,
        {"status": "ok"},
    )
    gzipped = gzip.compress(fixture_bytes("ios_batch"))
    assert server.request("POST", data=gzipped, headers={"Content-Encoding": "gzip"})[0] == 200
    mixed = body([VALID_EVENT, {**VALID_EVENT, "device_id": 7}])
    status, answer = server.request("POST", "/", data=mixed)
    assert status == 200
    assert [r["status"] for r in answer["results"]] == ["ok", "error"]
    assert server.request("POST", data=android)[0] == 200  # a device retry: stored once

    status, answer = server.request("POST", data=b"not json")
    assert (status, answer["error"]) == (400, "invalid_json")
    status, answer = server.request("POST", data=body({**VALID_EVENT, "is_prod": "no"}))
    assert (status, answer["moreInfo"]["fields"]) == (400, ["is_prod"])
    status, answer = server.request("PUT")
    assert (status, answer["error"]) == (405, "method_not_allowed")
    assert server.request("GET") == (200, {"status": "ok"})
    head = (
        b"POST /stats HTTP/1.1\r\nHost: x\r\nContent-Length: 17000000\r\nConnection: close\r\n\r\n"
    )
    status, content = raw_exchange(HOST, server.port, head + b"[")
    assert (status, json.loads(content)["error"]) == (413, "body_too_large")

    result = export(server.storage)

    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    wire = [{k: v for k, v in line.items() if not k.startswith("_")} for line in lines]
    expected = [
        *load_fixture("android_batch"),
        load_fixture("android_worker_single"),
        *load_fixture("ios_batch"),
        VALID_EVENT,
    ]
    assert wire == expected
    assert all(line["_action_known"] is True for line in lines)
    assert lines[0]["_device_time"] == "2025-11-26T00:00:00Z"
    assert lines[6]["_device_time"] is None  # the worker's single event has no timestamp


def test_sigterm_during_a_stream_loses_no_acknowledged_event(tmp_path: Path):
    server = Server(tmp_path)
    acked: list[int] = []
    answered_other: list[int] = []
    stop = threading.Event()
    lock = threading.Lock()

    def client(worker: int) -> None:
        for i in range(100_000):
            if stop.is_set():
                return
            ts = worker * 1_000_000 + i
            try:
                status, _ = server.request("POST", data=body({**VALID_EVENT, "timestamp": ts}))
            except OSError:
                time.sleep(0.01)  # refused or reset while shutting down: the device retries
                if server.process.poll() is not None:
                    return
                continue
            with lock:
                (acked if status == 200 else answered_other).append(ts)

    threads = [threading.Thread(target=client, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    clean = server.stop(signal.SIGTERM)
    stop.set()
    for thread in threads:
        thread.join(30)

    assert clean, server.output
    assert len(acked) > 50
    assert answered_other == []  # every answer the server gave was a 200
    stored = [e.event.timestamp for e in SQLiteBackend(server.database).events()]
    assert len(stored) == len(set(stored))
    assert set(acked) <= set(stored)


def test_sigint_shuts_down_cleanly(tmp_path: Path):
    server = Server(tmp_path)
    assert server.request("POST", data=body(VALID_EVENT))[0] == 200

    assert server.stop(signal.SIGINT), server.output
    assert len(list(SQLiteBackend(server.database).events())) == 1


def test_two_workers_share_the_file(tmp_path: Path):
    server = Server(tmp_path, "--workers", "2")
    try:
        for i in range(40):
            assert server.request("POST", data=body({**VALID_EVENT, "timestamp": i}))[0] == 200
    finally:
        assert server.stop(), server.output
    stored = sorted(e.event.timestamp for e in SQLiteBackend(server.database).events())
    assert stored == list(range(40))


def some_cores(count: int) -> set[int]:
    """*count* of the cores this process may run on; the test is skipped on fewer."""
    if shutil.which("taskset") is None or not hasattr(os, "sched_getaffinity"):
        pytest.skip("needs taskset and a CPU affinity (Linux)")
    cores = sorted(os.sched_getaffinity(0))
    # serve counts no more cores than a control group's CPU quota gives it, either.
    quota = cgroup_cpu_limit()
    if len(cores) < count or (quota is not None and math.ceil(quota) < count):
        pytest.skip(f"needs {count} cores")
    return set(cores[:count])


def test_on_two_cores_serve_runs_two_workers_and_stores_every_acknowledged_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    pytest.importorskip("prometheus_client")
    # Each worker's counters go to a file named by its pid: which workers answered. serve makes
    # the directory in TMPDIR, here where the test can look.
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    server = Server(tmp_path, "--metrics", cores=some_cores(2))  # no --workers: the default
    acked: set[int] = set()
    lock = threading.Lock()
    try:
        assert "2 workers (one per core, at most 2 for SQLite)" in server.output
        # Ready means one worker answers; the other may still be starting.
        deadline = time.monotonic() + 20
        while server.output.count("Application startup complete") < 2:
            assert time.monotonic() < deadline, server.output
            time.sleep(0.05)
        started = set(re.findall(r"Started server process \[(\d+)\]", server.output))
        assert len(started) == 2, server.output
        (metrics_dir,) = temp.glob("updater-stats-metrics-*")

        def device(first: int) -> None:
            # A connection per request: the kernel hands each to either worker.
            for ts in range(first, first + 200, 8):
                batch = [{**VALID_EVENT, "timestamp": ts * 10 + k} for k in range(3)]
                if server.request("POST", data=body(batch))[0] == 200:
                    with lock:
                        acked.update(event["timestamp"] for event in batch)

        answered: set[str] = set()
        rounds = 0
        while answered != started and rounds < 20:
            threads = [threading.Thread(target=device, args=(rounds * 200 + w,)) for w in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            rounds += 1
            answered = {path.stem.rsplit("_", 1)[1] for path in metrics_dir.glob("counter_*.db")}
        assert answered == started, "both workers should have answered"
    finally:
        assert server.stop(), server.output
    assert len(acked) == rounds * 8 * 25 * 3  # every request was answered 200
    stored = [e.event.timestamp for e in SQLiteBackend(server.database).events()]
    assert len(stored) == len(set(stored))
    assert set(stored) == acked


def test_on_one_core_serve_runs_one_worker(tmp_path: Path):
    # What `taskset -c 0 updater-stats serve` gets: one process, no supervisor.
    server = Server(tmp_path, cores=some_cores(1))
    try:
        assert server.request("POST", data=body(VALID_EVENT))[0] == 200
    finally:
        assert server.stop(), server.output
    assert "1 worker (one per core, at most 2 for SQLite)" in server.output
    assert "Started parent process" not in server.output
    assert len(re.findall(r"Started server process", server.output)) == 1


def test_serve_refuses_an_unknown_storage_url_before_binding(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "updater_stats", "serve", "--storage", "mysql://x/y", "--port", "1"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 1
    assert "unknown storage URL 'mysql://x/y'" in result.stderr


def test_the_console_script_is_installed_and_runs():
    script = Path(sys.executable).parent / "updater-stats"

    result = subprocess.run(
        [str(script), "serve", "--help"], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0
    assert "--storage" in result.stdout


def test_serve_logs_why_events_are_refused_once_per_reason_per_interval(tmp_path: Path):
    # Each worker throttles its own lines: one worker, so that one line per reason is all.
    server = Server(tmp_path, "--workers", "1")
    bad = {**VALID_EVENT, "is_prod": "yes"}
    for _ in range(5):
        status, answer = server.request("POST", "/stats", body([VALID_EVENT, bad]))
        assert status == 200
        assert answer["results"][1]["status"] == "error"
    other = {**VALID_EVENT, "is_emulator": "no"}
    assert server.request("POST", "/stats", body(other))[0] == 400
    server.stop()
    lines = [line for line in server.output.splitlines() if "rejected event:" in line]
    # uvicorn's own format, at the default level; one line per reason, not one per event.
    assert lines == [
        (
            "INFO:     rejected event: code=invalid_event app_id=com.example.app fields=is_prod "
            "index=1"
        ),
        (
            "INFO:     rejected event: code=invalid_event app_id=com.example.app "
            "fields=is_emulator index=None"
        ),
    ]


@pytest.mark.parametrize("flag", [None, "--access-log"])
def test_serve_logs_each_request_only_with_access_log(tmp_path: Path, flag: str | None):
    running = Server(tmp_path, *([flag] if flag else []))
    for _ in range(3):
        assert running.request("POST", "/stats", body(VALID_EVENT))[0] == 200
    assert running.request("POST", "/stats", b"{")[0] == 400
    assert running.stop()
    answered = [line for line in running.output.splitlines() if '"POST /stats HTTP/1.1"' in line]
    if flag:
        assert len(answered) == 4, running.output
    else:
        assert answered == [], running.output
        # The refusal is logged all the same, by the library.
        assert "rejected body: code=invalid_json" in running.output, running.output


def test_serve_export_and_report_on_the_in_process_clickhouse_engine(tmp_path: Path):
    pytest.importorskip("chdb")
    storage = "chdb:///clickhouse-data"  # relative to the working directory, as sqlite:///
    running = Server(tmp_path, storage=storage)
    try:
        status, _ = running.request("POST", "/stats", body([VALID_EVENT]))
        assert status == 200
    finally:
        assert running.stop()
    assert (tmp_path / "clickhouse-data").is_dir()
    exported = subprocess.run(
        [sys.executable, "-m", "updater_stats", "export", "--storage", storage],
        capture_output=True, text=True, check=False, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    (line,) = exported.stdout.splitlines()
    assert json.loads(line)["device_id"] == VALID_EVENT["device_id"]
    report = subprocess.run(
        [sys.executable, "-m", "updater_stats", "report", "--storage", storage,
         "--app", VALID_EVENT["app_id"], "--since", "1d", "--format", "csv"],
        capture_output=True, text=True, check=False, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr
    assert f"\n{VALID_EVENT['version_name']},1,1,0," in report.stdout


def test_serve_refuses_several_workers_on_the_in_process_engine(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "updater_stats", "serve", "--storage", "chdb:///data",
         "--workers", "2", "--port", str(free_port())],
        capture_output=True, text=True, check=False, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    assert "serves one process: use --workers 1" in result.stderr
