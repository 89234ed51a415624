"""Crash `updater-stats serve` with kill -9, again and again, and count what survived.

    python -m scripts.crash_run --storage sqlite:////tmp/crash.sqlite3 --cycles 10

Each cycle starts the server, lets devices post batches for a few seconds, kills the
server with SIGKILL mid-stream, and starts the next cycle on the same storage. Then
the devices send every batch that was never acknowledged once more, as the plugin
does from its on-disk queue. At the end every event must be stored exactly once:
the script prints requests sent, acknowledged, events stored, lost and doubled, and
exits 1 unless lost and doubled are both zero. docs/reliability.md records runs.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter

from updater_stats import backend_from_url

EVENT = {
    "app_id": "com.example.app",
    "device_id": "0b5e5c1a-93b4-4f0e-a3a2-1f7f6f3b2d10",
    "platform": "android",
    "action": "download_complete",
    "version_name": "1.4.2",
    "version_build": "2.0.0",
    "version_code": "200",
    "version_os": "14",
    "plugin_version": "8.42.0",
}
BATCH = 10


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def post(port: int, stamps: list[int]) -> int:
    batch = [{**EVENT, "timestamp": ts} for ts in stamps]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/stats", body=json.dumps(batch).encode())
        return conn.getresponse().status
    finally:
        conn.close()


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def start(storage: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "updater_stats", "serve", "--storage", storage, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Its own process group: the kill takes every worker with it, as a crash of the machine
        # or of the service would (kill -9 of uvicorn's supervisor alone leaves them serving).
        start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if listening(port):
            return process, port
        time.sleep(0.05)
    kill_all(process)
    raise SystemExit("the server did not start")


def kill_all(process: subprocess.Popen[bytes]) -> None:
    """kill -9 of the server and its workers at once, then reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def cycle(
    storage: str, seconds: float, devices: int, first: int
) -> tuple[Counter[str], set[int], set[int]]:
    """One run until kill -9: counts, every stamp sent, the stamps acknowledged."""
    process, port = start(storage)
    counts: Counter[str] = Counter()
    sent: set[int] = set()
    acked: set[int] = set()
    lock = threading.Lock()
    killed = threading.Event()

    def device(number: int) -> None:
        for i in range(10**9):
            if killed.is_set():
                return
            base = first + (number * 10**7 + i) * BATCH
            stamps = list(range(base, base + BATCH))
            with lock:
                sent.update(stamps)
                counts["requests"] += 1
            try:
                status = post(port, stamps)
            except (OSError, http.client.HTTPException):
                return  # the server died, maybe mid-answer: the batch stays queued
            with lock:
                counts[str(status)] += 1
                if status == 200:
                    acked.update(stamps)

    threads = [threading.Thread(target=device, args=(n,)) for n in range(devices)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    kill_all(process)
    killed.set()
    for thread in threads:
        thread.join()
    return counts, sent, acked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--storage", required=True, help="A storage URL the server and this script share."
    )
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=3.0, help="Load per cycle before kill -9.")
    parser.add_argument("--devices", type=int, default=8)
    args = parser.parse_args()

    totals: Counter[str] = Counter()
    sent: set[int] = set()
    acked: set[int] = set()
    for number in range(args.cycles):
        counts, cycle_sent, cycle_acked = cycle(
            args.storage, args.seconds, args.devices, number * 10**12
        )
        totals.update(counts)
        sent |= cycle_sent
        acked |= cycle_acked
        print(f"cycle {number + 1}: {counts['requests']} requests, {counts['200']} acknowledged")

    # The devices' queues: everything never acknowledged goes out again, to a live server.
    process, port = start(args.storage)
    try:
        unacked = sorted(sent - acked)
        for i in range(0, len(unacked), 200):
            chunk = unacked[i : i + 200]
            if post(port, chunk) != 200:
                raise SystemExit("a retry was refused")
            totals["retried events"] += len(chunk)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait()

    backend = backend_from_url(args.storage)
    try:
        stored = Counter(e.event.timestamp for e in backend.events())  # type: ignore[attr-defined]
    finally:
        backend.close()
    lost = len(acked - set(stored))
    doubled = sum(1 for n in stored.values() if n > 1)
    missing_after_retry = len(sent - set(stored))
    print(
        f"{args.cycles} kill -9 cycles: {totals['requests']} requests sent, "
        f"{totals['200']} acknowledged ({len(acked)} events), "
        f"{totals['retried events']} events re-sent after the crashes, "
        f"{len(stored)} events stored; acknowledged but lost: {lost}; stored twice: {doubled}; "
        f"never stored after the retries: {missing_after_retry}"
    )
    if lost or doubled or missing_after_retry:
        sys.exit(1)


if __name__ == "__main__":
    main()
