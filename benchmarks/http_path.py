"""The HTTP path: `updater-stats serve` (its defaults, durable SQLite) under load.

    .venv/bin/python benchmarks/http_path.py               # 20 runs of 15 s each
    .venv/bin/python benchmarks/http_path.py --quick       # 20 runs of 2 s, for CI
    .venv/bin/python benchmarks/http_path.py --client python   # without wrk

Side by side, in one run, on 127.0.0.1 only:

- ``updater-stats serve --log-level warning`` with its defaults and a fresh SQLite
  file (WAL, synced after every commit: every answer after its events are on disk);
  its default worker count follows the cores it may use, so the pinned runs have one
  worker and the unpinned runs one per core (two on a 2-core machine);
- a no-op ASGI app answering ``{"status":"ok"}`` after reading the body, under
  the same uvicorn with the same options: the ceiling of the server itself;
- the durable floor, ``floor_server.py``: the same uvicorn, workers and group commit as
  ``serve`` with nothing else (no validation, no keys, one table without an index), its
  answers after the WAL is synced following each commit; and the same without that sync,
  answering before the disk has the events, to show what the sync costs (``--no-floor``
  leaves both out);
- the Node baseline in ``node_baseline/`` (Express and better-sqlite3, WAL,
  ``synchronous=FULL``, one transaction per request), when ``node`` is installed:
  its pinned dependencies are installed there with ``npm ci`` first.

Each gets single-event bodies (an old plugin's object, no timestamp) and
200-event arrays shaped like real traffic (a current plugin's queue: one
device per body, a new device every request, timestamps never repeated), and
runs twice: pinned (the server on core 0, the load generator on core 1, with
``taskset``: the fair comparison with a single-threaded Node server) and
unpinned. The load generator is ``wrk`` (Debian package ``wrk``) with a Lua
script, one thread; without wrk, or with ``--client python``, an asyncio
client in this process. Prints requests/s, events/s, p50/p99 latency, the
servers' resident memory, and the issue's ratios with met or MISSED.
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

from _bodies import (
    DEVICE_PREFIX,
    batch_template,
    device_fields,
    encode,
    info_line,
    ratio,
    ratio_line,
)

BATCH_SIZE = 200
# Twelve hex digits that every request replaces with its own: the end of the device id.
PLACEHOLDER = "@@DEVICE@@@@"
# Each stands for a timestamp: the request's own start, plus the event's offset.
TIME_MARKER = "@@TIME@@"
NODE_BASELINE = Path(__file__).resolve().parent / "node_baseline"
FLOOR_SERVER = Path(__file__).resolve().parent / "floor_server.py"
# The floor's kinds, and floor_server.py's mode for each: FULL syncs the WAL after each commit.
FLOORS = {"floor": "FULL", "floor-nosync": "NORMAL"}
# The server on the first core, the load generator on the second (pinned runs).
SERVER_CORE, LOAD_CORE = "0", "1"
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
        access_log=False,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _pinned(command: list[str], core: str | None) -> list[str]:
    return command if core is None else ["taskset", "-c", core, *command]


@contextlib.contextmanager
def server(
    kind: str, folder: Path, core: str | None
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A started server process on 127.0.0.1; stopped (SIGTERM, then SIGKILL) on the way out."""
    port = _free_port()
    if kind == "noop":
        command = [sys.executable, __file__, "--noop-server", str(port)]
    elif kind in FLOORS:
        file = folder / f"{kind}.sqlite3"
        command = [sys.executable, str(FLOOR_SERVER), str(port), str(file), FLOORS[kind]]
    elif kind == "node":
        command = ["node", str(NODE_BASELINE / "server.js"), str(port), str(folder / "node.db")]
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
    process = subprocess.Popen(_pinned(command, core), stdout=log, stderr=subprocess.STDOUT)
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


def node_ready() -> str | None:
    """Why the Node baseline cannot run, or `None` once its dependencies are installed."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node or npm is not installed"
    lock = NODE_BASELINE / "package-lock.json"
    installed = NODE_BASELINE / "node_modules" / ".package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return None
    done = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"],
        cwd=NODE_BASELINE,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        return f"npm ci failed: {done.stderr.strip().splitlines()[-1:]}"
    return None


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
            # The server and its worker processes, if it has any.
            total = sum(_rss_kb(pid) for pid in _tree(self.pid))
            if total:
                self.samples.append(total / 1024)

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


def _tree(pid: int) -> list[int]:
    pids = [pid]
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        for child in children:
            pids.extend(_tree(int(child)))
    return pids


def _rss_kb(pid: int) -> int:
    with contextlib.suppress(OSError):
        status = Path(f"/proc/{pid}/status").read_text()
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        if match:
            return int(match.group(1))
    return 0


# -- the load generators -------------------------------------------------------------------

_LUA = """
local parts = {%(parts)s}
local offsets = {%(offsets)s}
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
# Between two parts: the device's twelve hex digits, or a timestamp (an offset, a number).
_LUA_REQUEST = """
local sent = 0
local start = 1790000000000
request = function()
  sent = sent + 1
  local device = string.format("%04x%08x", thread_id, sent)
  local base = start + (thread_id * 100000000 + sent) * 10000
  local out = {}
  for i = 1, #offsets do
    out[#out + 1] = parts[i]
    local offset = offsets[i]
    if offset < 0 then
      out[#out + 1] = device
    else
      out[#out + 1] = string.format("%.0f", base + offset)
    end
  end
  out[#out + 1] = parts[#parts]
  return wrk.format(nil, nil, nil, table.concat(out))
end
"""
_MARKERS = re.compile(f"({re.escape(PLACEHOLDER)}|{re.escape(TIME_MARKER)})")


def _split(template: str, offsets: list[int]) -> tuple[list[str], list[int]]:
    """The template's text between markers, and per marker -1 (device) or a time offset."""
    pieces = _MARKERS.split(template)
    times = iter(offsets)
    kinds = [-1 if marker == PLACEHOLDER else next(times) for marker in pieces[1::2]]
    return pieces[0::2], kinds


def fill(template: str, offsets: list[int], request: int) -> str:
    """*template* for the *request*-th request: what the Lua script sends, in Python."""
    parts, kinds = _split(template, offsets)
    base = 1_790_000_000_000 + request * 10_000
    out = [parts[0]]
    for kind, part in zip(kinds, parts[1:], strict=True):
        out.append(f"{request:012x}" if kind < 0 else str(base + kind))
        out.append(part)
    return "".join(out)


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def run_wrk(
    url: str, body: tuple[str, list[int]], args: argparse.Namespace, folder: Path, core: str | None
) -> dict[str, Any]:
    template, offsets = body
    parts, kinds = _split(template, offsets)
    varying = bool(kinds)
    script = folder / "bench.lua"
    script.write_text(
        _LUA
        % {
            "parts": ", ".join(_lua_string(part) for part in parts),
            "offsets": ", ".join(str(kind) for kind in kinds),
            "body": "" if varying else f"wrk.body = {_lua_string(template)}",
            "request": _LUA_REQUEST if varying else "",
        }
    )
    seconds = args.seconds
    command = ["wrk", "-t1", f"-c{args.connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    output = subprocess.run(
        _pinned([*command, "-s", str(script), url], core),
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
    port: int, body: tuple[str, list[int]], seconds: float, connections: int
) -> dict[str, Any]:
    template, offsets = body
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
                body = fill(template, offsets, counter).encode()
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


def load(
    args: argparse.Namespace,
    port: int,
    body: tuple[str, list[int]],
    folder: Path,
    core: str | None,
) -> dict[str, Any]:
    if args.client == "wrk":
        return run_wrk(f"http://127.0.0.1:{port}/stats", body, args, folder, core)
    if core is not None:
        os.sched_setaffinity(0, {int(core)})
    try:
        return asyncio.run(_python_load(port, body, args.seconds, args.connections))
    finally:
        if core is not None:
            os.sched_setaffinity(0, range(os.cpu_count() or 1))


# -- the runs ------------------------------------------------------------------------------


def templates() -> dict[str, tuple[tuple[str, list[int]], int]]:
    rng = random.Random(3)
    single = {**device_fields(rng, DEVICE_PREFIX + "0" * 12, current=False), "action": "set"}
    batch = batch_template(rng, BATCH_SIZE, device_marker=PLACEHOLDER, time_marker=TIME_MARKER)
    return {
        "single": ((encode(single).decode(), []), 1),
        f"{BATCH_SIZE}-event": (batch, BATCH_SIZE),
    }


def stored_events(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])


def one_run(  # noqa: PLR0913 - one figure, everything it depends on
    kind: str,
    body: tuple[str, list[int]],
    events: int,
    args: argparse.Namespace,
    folder: Path,
    *,
    pinned: bool,
) -> dict[str, Any]:
    run_folder = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=folder))
    server_core, load_core = (SERVER_CORE, LOAD_CORE) if pinned else (None, None)
    with server(kind, run_folder, server_core) as (process, port):
        sampler = MemorySampler(process.pid)
        sampler.start()
        figures = load(args, port, body, run_folder, load_core)
        sampler.stop.set()
        sampler.join()
    figures.update(sampler.summary())
    # Only answers that say the events were stored count.
    figures["rps"] = (figures["requests"] - figures["failed"]) / figures["seconds"]
    figures["eps"] = figures["rps"] * events
    if kind == "library":
        figures["stored"] = stored_events(run_folder / "http.sqlite3")
        figures["workers"] = workers_line(run_folder / "library.log")
    elif kind in FLOORS:
        figures["stored"] = stored_events(run_folder / f"{kind}.sqlite3")
    return figures


def workers_line(log: Path) -> str:
    """What ``serve`` said at start-up about its worker processes (their number, and why)."""
    with contextlib.suppress(OSError):
        for line in log.read_text(errors="replace").splitlines():
            if re.fullmatch(r"\d+ workers? \(.*\)", line.strip()):
                return line.strip()
    return "workers: not said"


_LABELS = {
    "noop": "no-op ASGI app",
    "library": "updater-stats serve",
    "floor": "durable floor",
    "floor-nosync": "floor without sync",
    "node": "Node baseline",
}


def show(name: str, kind: str, events: int, figures: dict[str, Any]) -> None:
    line = (
        f"  {name:<19} {kind:<9} {figures['rps']:>9,.0f} req/s {figures['eps']:>10,.0f} events/s"
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
        acked = (figures["requests"] - figures["failed"]) * events
        if figures["stored"] < acked:
            problems.append(f"LOST: stored {figures['stored']} events, {acked} acknowledged")
    if problems:
        print("    " + "; ".join(problems))
    if "workers" in figures:
        print(f"    serve ran {figures['workers']}")


def report(results: dict[tuple[str, str, str], dict[str, Any]], placements: list[str]) -> None:
    batch = f"{BATCH_SIZE}-event"
    print()
    for placement in placements:
        lib = results["library", "single", placement]
        noop = results["noop", "single", placement]
        name = f"single, {placement}: serve / no-op req/s"
        print(ratio_line(name, ratio(lib["rps"], noop["rps"]), 0.6))
        print(
            f"target single, {placement}: p99 {lib['p99'] * 1e3:.1f} ms (<= 20 ms: "
            f"{'met' if lib['p99'] <= 0.020 else 'MISSED'}); peak RSS "
            f"{lib['rss_peak']:.0f} MB (< 150 MB: "
            f"{'met' if lib['rss_peak'] < 150 else 'MISSED'}), growth "
            f"{lib['rss_late'] - lib['rss_early']:+.1f} MB over the run"
        )
        node = results.get(("node", "single", placement))
        if node is not None:
            name = f"single, {placement}: serve / Node baseline req/s"
            value = ratio(lib["rps"], node["rps"])
            print(
                ratio_line(name, value, 3, times=True)
                if placement == "pinned"
                else info_line(name, value, times=True)
            )
        if ("floor", "single", placement) in results:
            floor_lines(results, placement)
        lib_batch = results["library", batch, placement]
        noop_batch = results["noop", batch, placement]
        print(
            info_line(
                f"{batch}, {placement}: serve / no-op events/s",
                ratio(lib_batch["eps"], noop_batch["eps"]),
            )
        )
        node_batch = results.get(("node", batch, placement))
        if node_batch is not None:
            print(
                info_line(
                    f"{batch}, {placement}: serve / Node baseline events/s",
                    ratio(lib_batch["eps"], node_batch["eps"]),
                    times=True,
                )
            )
        rate = f"{lib_batch['eps']:,.0f}".replace(",", " ")
        print(
            f"target {batch}, {placement}: {rate} events/s with serve's defaults "
            f"(>= 100 000: {'met' if lib_batch['eps'] >= 100_000 else 'MISSED'})"
        )


def floor_lines(results: dict[tuple[str, str, str], dict[str, Any]], placement: str) -> None:
    """What the durable floor says of this placement: the most serve's target could be."""
    lib, noop = results["library", "single", placement], results["noop", "single", placement]
    floor, nosync = (
        results["floor", "single", placement],
        results["floor-nosync", "single", placement],
    )
    batch = f"{BATCH_SIZE}-event"
    for name, value in [
        (f"single, {placement}: durable floor / no-op req/s", ratio(floor["rps"], noop["rps"])),
        (
            f"single, {placement}: floor without sync / no-op req/s",
            ratio(nosync["rps"], noop["rps"]),
        ),
        (f"single, {placement}: serve / durable floor req/s", ratio(lib["rps"], floor["rps"])),
        (
            f"{batch}, {placement}: serve / durable floor events/s",
            ratio(
                results["library", batch, placement]["eps"],
                results["floor", batch, placement]["eps"],
            ),
        ),
    ]:
        print(info_line(name, value))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 s runs: a smoke test for CI")
    parser.add_argument("--seconds", type=float, help="length of each run (15; --quick: 2)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--client", choices=["wrk", "python"], default=None)
    parser.add_argument(
        "--placement",
        choices=["pinned", "unpinned", "both"],
        default="both",
        help="pinned: server on core 0, load on core 1 (taskset); unpinned: where the OS likes",
    )
    parser.add_argument("--no-node", action="store_true", help="leave out the Node baseline")
    parser.add_argument(
        "--no-floor", action="store_true", help="leave out the durable floor (floor_server.py)"
    )
    parser.add_argument("--noop-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.noop_server is not None:
        serve_noop(args.noop_server)
        return
    if args.seconds is None:
        args.seconds = 2.0 if args.quick else 15.0
    if args.client is None:
        args.client = "wrk" if shutil.which("wrk") else "python"
    import uvicorn  # noqa: PLC0415 - reported, not used here

    loop = "uvloop" if _importable("uvloop") else "asyncio"
    http = "httptools" if _importable("httptools") else "h11"
    print(
        f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, uvicorn "
        f"{uvicorn.__version__} ({http}, {loop}), load: {args.client}, {args.connections} "
        f"connections, {args.seconds:g} s per run, {os.cpu_count()} cores"
    )
    placements = ["pinned", "unpinned"] if args.placement == "both" else [args.placement]
    if "pinned" in placements and (shutil.which("taskset") is None or (os.cpu_count() or 1) < 2):
        print("pinned runs skipped: they need taskset and two cores")
        placements.remove("pinned")
    apps = ["noop", "library"] if args.no_floor else ["noop", "library", *FLOORS]
    why_not = "left out (--no-node)" if args.no_node else node_ready()
    if why_not is None:
        apps.append("node")
        version = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
        print(
            f"Node baseline: node {version.stdout.strip()}, Express and better-sqlite3 (WAL, FULL)"
        )
    else:
        print(f"Node baseline skipped: {why_not}")
    results: dict[tuple[str, str, str], dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="updater-stats-http-") as name:
        folder = Path(name)
        for placement in placements:
            print(f"{placement}:")
            for kind, (body, events) in templates().items():
                for app in apps:
                    figures = one_run(app, body, events, args, folder, pinned=placement == "pinned")
                    results[app, kind, placement] = figures
                    show(_LABELS[app], kind, events, figures)
    report(results, placements)
    print(
        "figures "
        + json.dumps({" ".join(key): data for key, data in results.items()}, sort_keys=True)
    )


def _importable(module: str) -> bool:
    import importlib.util  # noqa: PLC0415

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    main()
