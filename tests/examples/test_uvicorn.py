"""The ASGI examples under a real uvicorn process, configured the way an operator would.

Each test starts the example's own run command on 127.0.0.1 and a free port, with
``UPDATER_STATS_STORAGE`` pointing at a fresh SQLite file, sends concurrent batches (every batch
twice, as devices re-send one whose answer was lost) and stops the server; then every event
must be in the file exactly once.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from updater_stats import SQLiteBackend

from ..conftest import load_fixture, stored
from .conftest import Server

pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

BATCHES = 30
EVENTS_PER_BATCH = 5
SINGLES = 10
#: Seconds each request has.
REQUEST_TIMEOUT = 20.0


def traffic() -> tuple[list[list[dict[str, Any]]], list[dict[str, Any]]]:
    """Batches of queued events (with timestamps) and single events (without) from many devices."""
    queued = load_fixture("android_batch")[0]
    single = load_fixture("android_worker_single")
    batches = [
        [
            {
                **queued,
                "device_id": f"00000000-0000-4000-8000-{b:012d}",
                "timestamp": 1764115200000 + e,
            }
            for e in range(EVENTS_PER_BATCH)
        ]
        for b in range(BATCHES)
    ]
    singles = [{**single, "device_id": f"11111111-0000-4000-8000-{s:012d}"} for s in range(SINGLES)]
    return batches, singles


async def send_all(url: str, bodies: list[Any]) -> list[Any]:
    limits = httpx.Limits(max_connections=len(bodies))
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT, limits=limits) as client:
        responses = await asyncio.gather(*(client.post(url, json=body) for body in bodies))
    return [(response.status_code, response.json()) for response in responses]


@pytest.mark.parametrize("module", ["fastapi_app", "starlette_app", "litestar_app"])
def test_concurrent_batches_are_stored_exactly_once(
    serve: Callable[[str, Path], Server], tmp_path: Path, module: str
) -> None:
    pytest.importorskip(module.removesuffix("_app"))
    database = tmp_path / "stats.sqlite3"
    server = serve(module, database)
    batches, singles = traffic()
    bodies: list[Any] = [*batches, *singles, *batches]  # all at once; every batch twice

    answers = asyncio.run(send_all(server.url, bodies))
    exit_status = server.stop()

    ok_batch = {
        "status": "ok",
        "results": [{"status": "ok", "index": i} for i in range(EVENTS_PER_BATCH)],
    }
    ok_single = {"status": "ok"}
    assert (
        answers
        == [(200, ok_batch)] * BATCHES + [(200, ok_single)] * SINGLES + [(200, ok_batch)] * BATCHES
    )
    # uvicorn re-raises SIGTERM once it has shut down; its last log line says it finished.
    assert exit_status in {0, -signal.SIGTERM}, server.log_text
    assert "Finished server process" in server.log_text
    assert "Traceback" not in server.log_text
    backend = SQLiteBackend(database)
    try:
        events = [(e.event.device_id, e.event.timestamp) for e in stored(backend)]
    finally:
        backend.close()
    sent = [(e["device_id"], e.get("timestamp")) for e in [*itertools.chain(*batches), *singles]]
    assert len(events) == len(set(events)) == BATCHES * EVENTS_PER_BATCH + SINGLES
    assert set(events) == set(sent)
