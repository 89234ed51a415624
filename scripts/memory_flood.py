"""Flood `updater-stats serve` with maximum-size batches and watch its memory.

    python -m scripts.memory_flood --clients 32 --seconds 20

Each client posts, again and again, a real worst-case batch: 200 events, each with
30 metadata values of 2048 characters (about 12.8 MB). The server runs twice in
one go, with the default body budget (`--max-bytes-in-flight`, 64 MiB for the whole
server) and with the budget lifted, each time with serve's default worker count (or
``--workers N``), and the script prints each run's peak resident memory, its processes'
added up, and answers. docs/reliability.md records a run.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from scripts.crash_run import listening
from updater_stats.asgi import DEFAULT_BYTES_IN_FLIGHT

EVENT = {
    "app_id": "com.example.app",
    "device_id": "0b5e5c1a-93b4-4f0e-a3a2-1f7f6f3b2d10",
    "platform": "android",
    "action": "webview_javascript_error",
    "version_name": "1.4.2",
    "version_build": "2.0.0",
    "version_code": "200",
    "version_os": "14",
    "plugin_version": "8.42.0",
}
UNBOUNDED = 2**40


def worst_case_batch(serial: int) -> bytes:
    metadata = {f"{i:02}".ljust(64, "k"): "v" * 2048 for i in range(30)}
    events = [{**EVENT, "metadata": metadata, "timestamp": serial * 1000 + i} for i in range(200)]
    return json.dumps(events).encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> int:
    """The resident memory of *pid* and every process under it (serve's workers), in MiB."""
    return sum(_rss_kib(process) for process in [pid, *descendants(pid)]) // 1024


def _rss_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0  # ended meanwhile
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def descendants(pid: int) -> list[int]:
    """Every live process under *pid*, from the kernel's list of each one's children (the
    way `benchmarks/http_path.py` samples serve's memory): no walk of all of /proc."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []  # ended meanwhile
    return [int(child) for child in children] + [
        grandchild for child in children for grandchild in descendants(int(child))
    ]


def post(port: int, data: bytes) -> int:
    head = f"POST /stats HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        sock.sendall((head + "Connection: close\r\n\r\n").encode() + data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split()[1])


def flood(
    budget: int, clients: int, seconds: float, workers: int | None = None
) -> tuple[int, int, Counter[str]]:
    """One server under the flood: (resident MiB at start, peak resident MiB, answers), its
    processes added up; *workers*: serve's default when None."""
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        storage = f"sqlite:///{directory}/flood.sqlite3"
        command = ["serve", "--storage", storage, "--port", str(port), "--log-level", "warning"]
        if workers is not None:
            command += ["--workers", str(workers)]
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "updater_stats", *command, "--max-bytes-in-flight", str(budget)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while not listening(port):
                time.sleep(0.05)
            start_rss = rss_mib(process.pid)
            answers: Counter[str] = Counter()
            stop = time.monotonic() + seconds
            bodies = [worst_case_batch(n) for n in range(2)]

            def client(number: int) -> None:
                sent = 0
                while time.monotonic() < stop:
                    status = post(port, bodies[(number + sent) % 2])
                    answers[str(status)] += 1
                    sent += 1

            threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
            for thread in threads:
                thread.start()
            peak = start_rss
            while any(thread.is_alive() for thread in threads):
                peak = max(peak, rss_mib(process.pid))
                time.sleep(0.05)
        finally:
            process.terminate()
            process.wait(30)
    return start_rss, peak, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, help="serve's worker processes (its default)")
    args = parser.parse_args()
    print(f"{args.clients} clients posting {len(worst_case_batch(0)) / 1e6:.1f} MB batches")
    for label, budget in [("default budget", DEFAULT_BYTES_IN_FLIGHT), ("no budget", UNBOUNDED)]:
        start, peak, answers = flood(budget, args.clients, args.seconds, args.workers)
        shown = ", ".join(f"{count} x {status}" for status, count in sorted(answers.items()))
        print(f"{label}: resident {start} MiB at start, peak {peak} MiB; answers: {shown}")


if __name__ == "__main__":
    main()
