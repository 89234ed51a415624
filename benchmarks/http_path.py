"""The HTTP path: `updater-stats serve` (one worker, durable SQLite) under load.

    .venv/bin/python benchmarks/http_path.py               # 4 runs of 60 s each
    .venv/bin/python benchmarks/http_path.py --quick       # 4 runs of 2 s, for CI
    .venv/bin/python benchmarks/http_path.py --client python   # without wrk

Side by side, in one run, on 127.0.0.1 only:

- ``updater-stats serve --log-level warning`` with one worker and a fresh SQLite
  file (WAL, ``synchronous=FULL``: every answer after its events are synced);
- a no-op ASGI app answering ``{"status":"ok"}`` after reading the body, under
  the same uvicorn with the same options: the ceiling of the server itself.

Each gets single-event bodies (an old plugin's object, no timestamp) and
100-event arrays (a current plugin's queue, each request from a new device, so
that no event is a duplicate). The load generator is ``wrk`` (Debian package
``wrk``) with a Lua script, one thread, on the other core; without wrk, or with
``--client python``, an asyncio client in this process. Prints requests/s,
events/s, p50/p99 latency, the server's resident memory over the run, and the
issue's ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _bodies import batch_events, device_fields, encode, info_line, ratio_line

BATCH_SIZE = 100
# Twelve hex digits that every request replaces with its own: the end of the device id.
PLACEHOLDER = "@@DEVICE@@@@"
DEVICE_PREFIX = "0b5e5c1a-93b4-4f0e-a3a2-"
_OK = b'{"status":"ok"}'


# -- the servers ---------------------------------------------------------------------------


async def noop_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads the whole body, answers ``{"status":"ok"}``: what any endpoint must do at least."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body", False):
        pass
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_OK)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _OK})


def serve_noop(port: int) -> None:
    import uvicorn  # noqa: PLC0415 - only the server process needs it

    # The options `updater-stats serve` passes, so the two differ only by the app.
    uvicorn.run(
        noop_app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=30,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def server(kind: str, folder: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A started server process on 127.0.0.1; stopped (SIGTERM, then SIGKILL) on the way out."""
    port = _free_port()
    if kind == "noop":
        command = [sys.executable, __file__, "--noop-server", str(port)]
    else:
        storage = f"sqlite:///{folder / 'http.sqlite3'}"
        command = [
            sys.executable,
            "-m",
            "updater_stats",
            "serve",
            "--storage",
            storage,
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
    log = (folder / f"{kind}.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_listening(port, process)
        yield process, port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_until_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as s:
            s.sendall(b"GET /stats HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            if s.recv(64).startswith(b"HTTP/1.1 200"):
                return
        time.sleep(0.1)
    raise RuntimeError("the server did not start within 30 s")


class MemorySampler(threading.Thread):
    """The server's resident set size, twice a second, from /proc."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            with contextlib.suppress(OSError):
                status = Path(f"/proc/{self.pid}/status").read_text()
                match = re.search(r"VmRSS:\s+(\d+) kB", status)
                if match:
                    self.samples.append(int(match.group(1)) / 1024)

    def summary(self) -> dict[str, float]:
        samples = self.samples or [0.0]
        fifth = max(1, len(samples) // 5)
        # After the first fifth (start-up, first pages of the file) against the last fifth.
        early = sorted(samples[fifth : 2 * fifth] or samples[:1])
        late = sorted(samples[-fifth:])
        return {
            "rss_peak": max(samples),
            "rss_early": early[len(early) // 2],
            "rss_late": late[len(late) // 2],
        }


# -- the load generators -------------------------------------------------------------------

_LUA = """
local parts = {%(parts)s}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
%(body)s
local counter = 0
local thread_id = 0
setup = function(thread)
  thread:set("thread_id", counter)
  counter = counter + 1
end
%(request)s
"""
_LUA_REQUEST = """
local sent = 0
request = function()
  sent = sent + 1
  return wrk.format(nil, nil, nil, table.concat(parts, string.format("%04x%08x", thread_id, sent)))
end
"""


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def run_wrk(
    url: str, template: str, seconds: float, connections: int, folder: Path
) -> dict[str, Any]:
    varying = PLACEHOLDER in template
    script = folder / "bench.lua"
    script.write_text(
        _LUA
        % {
            "parts": ", ".join(_lua_string(part) for part in template.split(PLACEHOLDER)),
            "body": "" if varying else f"wrk.body = {_lua_string(template)}",
            "request": _LUA_REQUEST if varying else "",
        }
    )
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    output = subprocess.run(
        [*command, "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    took = _seconds(re.search(r"requests in ([\d.]+\w+)", output).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    return {
        "requests": requests,
        "seconds": took,
        "p50": _seconds(re.search(r"50%\s+([\d.]+\w+)", output).group(1)),  # type: ignore[union-attr]
        "p99": _seconds(re.search(r"99%\s+([\d.]+\w+)", output).group(1)),  # type: ignore[union-attr]
        "failed": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1).strip() if errors else "none",
    }


def _seconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]


async def _python_load(
    port: int, template: str, seconds: float, connections: int
) -> dict[str, Any]:
    latencies: list[float] = []
    failed = 0
    counter = 0
    deadline = time.perf_counter() + seconds

    async def connection() -> None:
        nonlocal failed, counter
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                counter += 1
                body = template.replace(PLACEHOLDER, f"{counter:012x}").encode()
                writer.write(
                    b"POST /stats HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                )
                began = time.perf_counter()
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))  # type: ignore[union-attr]
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - began)
                if not head.startswith(b"HTTP/1.1 200"):
                    failed += 1
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    took = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": took,
        "p50": latencies[len(latencies) // 2],
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "failed": failed,
        "socket_errors": "none",
    }


def load(args: argparse.Namespace, port: int, template: str, folder: Path) -> dict[str, Any]:
    if args.client == "wrk":
        url = f"http://127.0.0.1:{port}/stats"
        return run_wrk(url, template, args.seconds, args.connections, folder)
    return asyncio.run(_python_load(port, template, args.seconds, args.connections))


# -- the runs ------------------------------------------------------------------------------


def templates() -> dict[str, tuple[str, int]]:
    rng = random.Random(3)
    single = {**device_fields(rng, DEVICE_PREFIX + "0" * 12, current=False), "action": "set"}
    batch = batch_events(rng, BATCH_SIZE, device_id=DEVICE_PREFIX + PLACEHOLDER)
    return {
        "single": (encode(single).decode(), 1),
        f"{BATCH_SIZE}-event": (encode(batch).decode(), BATCH_SIZE),
    }


def stored_events(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])


def one_run(
    kind: str, body: str, events: int, args: argparse.Namespace, folder: Path
) -> dict[str, Any]:
    run_folder = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=folder))
    with server(kind, run_folder) as (process, port):
        sampler = MemorySampler(process.pid)
        sampler.start()
        figures = load(args, port, body, run_folder)
        sampler.stop.set()
        sampler.join()
    figures.update(sampler.summary())
    figures["rps"] = figures["requests"] / figures["seconds"]
    figures["eps"] = figures["rps"] * events
    if kind == "library":
        figures["stored"] = stored_events(run_folder / "http.sqlite3")
    return figures


def show(name: str, kind: str, events: int, figures: dict[str, Any]) -> None:
    line = (
        f"  {name:<17} {kind:<8} {figures['rps']:>9,.0f} req/s {figures['eps']:>10,.0f} events/s"
        f"  p50 {figures['p50'] * 1e3:6.2f} ms  p99 {figures['p99'] * 1e3:6.2f} ms"
        f"  RSS {figures['rss_early']:.0f} -> {figures['rss_late']:.0f} MB"
        f" (peak {figures['rss_peak']:.0f})"
    )
    print(line.replace(",", " "))
    problems = []
    if figures["failed"]:
        problems.append(f"{figures['failed']} answers not 200")
    if figures["socket_errors"] != "none":
        problems.append(f"socket errors: {figures['socket_errors']}")
    if "stored" in figures:
        acked = figures["requests"] * events
        problems.append(
            f"stored {figures['stored']} events, {acked} acknowledged "
            "(requests still in flight when the load stopped are stored too)"
        )
    if problems:
        print("    " + "; ".join(problems))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 s runs: a smoke test for CI")
    parser.add_argument("--seconds", type=float, help="length of each run (60; --quick: 2)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--client", choices=["wrk", "python"], default=None)
    parser.add_argument("--noop-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.noop_server is not None:
        serve_noop(args.noop_server)
        return
    if args.seconds is None:
        args.seconds = 2.0 if args.quick else 60.0
    if args.client is None:
        args.client = "wrk" if shutil.which("wrk") else "python"
    import uvicorn  # noqa: PLC0415 - reported, not used here

    loop = "uvloop" if _importable("uvloop") else "asyncio"
    http = "httptools" if _importable("httptools") else "h11"
    print(
        f"Python {sys.version.split()[0]}, uvicorn {uvicorn.__version__} ({http}, {loop}), "
        f"load: {args.client}, {args.connections} connections, {args.seconds:g} s per run, "
        f"{os.cpu_count()} cores"
    )
    results: dict[tuple[str, str], dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="updater-stats-http-") as name:
        folder = Path(name)
        for kind, (body, events) in templates().items():
            for app in ("noop", "library"):
                figures = one_run(app, body, events, args, folder)
                results[app, kind] = figures
                label = "no-op ASGI app" if app == "noop" else "updater-stats serve"
                show(label, kind, events, figures)
    single_lib, single_noop = results["library", "single"], results["noop", "single"]
    batch_lib = results["library", f"{BATCH_SIZE}-event"]
    batch_noop = results["noop", f"{BATCH_SIZE}-event"]
    print()
    print(ratio_line("single: serve / no-op req/s", single_lib["rps"] / single_noop["rps"], 0.60))
    print(
        f"target single: p99 {single_lib['p99'] * 1e3:.1f} ms (<= 20 ms: "
        f"{'met' if single_lib['p99'] <= 0.020 else 'MISSED'}); peak RSS "
        f"{single_lib['rss_peak']:.0f} MB (< 150 MB: "
        f"{'met' if single_lib['rss_peak'] < 150 else 'MISSED'}), growth "
        f"{single_lib['rss_late'] - single_lib['rss_early']:+.1f} MB over the run"
    )
    print(info_line("100-event: serve / no-op req/s", batch_lib["rps"] / batch_noop["rps"]))
    print(
        f"target 100-event: {batch_lib['eps']:,.0f} events/s on one worker (>= 100 000: "
        f"{'met' if batch_lib['eps'] >= 100_000 else 'MISSED'})".replace(",", " ")
    )
    print("figures " + json.dumps({f"{app} {kind}": data for (app, kind), data in results.items()}))


def _importable(module: str) -> bool:
    import importlib.util  # noqa: PLC0415

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    main()
