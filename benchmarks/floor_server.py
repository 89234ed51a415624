"""The durable floor: the least work a stats endpoint does when it answers after a commit.

    python benchmarks/floor_server.py PORT DATABASE_FILE [FULL|NORMAL]

Not an endpoint to deploy: it checks nothing, finds no duplicates and keeps one table without
an index. It is what ``http_path.py`` measures ``serve`` against besides the no-op app: the
same uvicorn with the same options, the same worker count as ``serve``'s default (one per
core it may use, at most two), and the same group commit (a writer thread per worker takes
every request queued, stores their events in one transaction, then answers them all), with
nothing else. Each event is a row holding its JSON text and the receive time.

With ``FULL`` (the default), every answer comes after its events are on disk, as ``serve``'s
do: SQLite commits with ``synchronous=NORMAL`` and the writer syncs the WAL file after each
commit, out of the write lock, as ``serve``'s workers do once they share a file (with SQLite's
own sync inside the commit, two workers wait out each other's syncs: slower). With ``NORMAL``,
nothing syncs: an answer may come before the disk has the events, which ``serve`` never does;
that figure shows what the sync at each commit costs on the machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

_OK = b'{"status":"ok"}'
_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"15")],
}
_BODY = {"type": "http.response.body", "body": _OK}
_BAD = {
    "type": "http.response.start",
    "status": 400,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"15")],
}

Waiter = tuple[list[str], asyncio.AbstractEventLoop, "asyncio.Future[None]"]


class _Writer:
    """Group commit: one transaction for every request queued, then one wake-up per loop."""

    def __init__(self, file: str, synchronous: str) -> None:
        self._conn = sqlite3.connect(
            file, timeout=30, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._wal = f"{file}-wal"
        self._sync = synchronous == "FULL"
        self._wal_fd: int | None = None
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS events "
            "(id INTEGER PRIMARY KEY, received_at INTEGER NOT NULL, event TEXT NOT NULL)"
        )
        self._queue: list[Waiter] = []
        self._work = threading.Condition()
        threading.Thread(target=self._run, daemon=True).start()

    def put(self, waiter: Waiter) -> None:
        with self._work:
            self._queue.append(waiter)
            self._work.notify()

    def _run(self) -> None:
        while True:
            with self._work:
                while not self._queue:
                    self._work.wait()
                batch, self._queue = self._queue, []
            now = int(time.time() * 1000)
            error: Exception | None = None
            try:
                self._conn.execute("BEGIN IMMEDIATE")  # one transaction, one sync, for all
                self._conn.executemany(
                    "INSERT INTO events (received_at, event) VALUES (?, ?)",
                    [(now, event) for events, _, _ in batch for event in events],
                )
                self._conn.execute("COMMIT")
                if self._sync:
                    if self._wal_fd is None:  # the WAL exists once something was committed
                        self._wal_fd = os.open(self._wal, os.O_RDONLY)
                    os.fdatasync(self._wal_fd)
            except (sqlite3.Error, OSError) as exc:
                error = exc  # its requests are answered 500, not left waiting
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
            by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
            for _, loop, future in batch:
                by_loop.setdefault(loop, []).append(future)
            for loop, futures in by_loop.items():
                loop.call_soon_threadsafe(_answered, futures, error)


def _answered(futures: list[asyncio.Future[None]], error: Exception | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


_writer: _Writer | None = None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _writer  # noqa: PLW0603 - one writer per worker process, made at start-up
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _writer = _Writer(os.environ["FLOOR_FILE"], os.environ["FLOOR_SYNCHRONOUS"])
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["method"] != "POST":  # the plugin's GET, and the start-up probe
        await send(_START)
        await send(_BODY)
        return
    message = await receive()
    body = message.get("body", b"")
    while message.get("more_body", False):
        message = await receive()
        body += message.get("body", b"")
    try:
        payload = json.loads(body)
    except ValueError:
        await send(_BAD)
        await send({"type": "http.response.body", "body": b'{"error":"bad"}'})
        return
    # A single event's text is the body itself; an array's events are each encoded again.
    events = [json.dumps(e) for e in payload] if type(payload) is list else [body.decode()]
    if events:
        assert _writer is not None
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        _writer.put((events, loop, future))
        await future
    await send(_START)
    await send(_BODY)


def main() -> None:
    import uvicorn  # noqa: PLC0415 - only the server process needs it

    port, file = int(sys.argv[1]), sys.argv[2]
    synchronous = sys.argv[3] if len(sys.argv) > 3 else "FULL"
    if synchronous not in {"FULL", "NORMAL"}:
        raise SystemExit(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
    os.environ["FLOOR_FILE"], os.environ["FLOOR_SYNCHRONOUS"] = file, synchronous
    # The workers `serve` starts by default: one per core this process may use, at most two.
    workers = min(2, len(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else 1
    with sqlite3.connect(file) as conn:  # WAL before the workers open it together
        conn.execute("PRAGMA journal_mode = WAL")
    uvicorn.run(
        "floor_server:app",
        app_dir=str(Path(__file__).resolve().parent),
        host="127.0.0.1",
        port=port,
        workers=workers,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=30,
        access_log=False,
    )


if __name__ == "__main__":
    main()
