"""Calling an ASGI app in-process, through the ASGI protocol itself."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import attrs

from updater_stats.asgi import StatsASGIApp


@attrs.define
class Answer:
    """What the app sent back, and how many times it called `receive` for the body."""

    status: int
    headers: dict[str, str]
    body: bytes
    receive_calls: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def call(
    app: StatsASGIApp,
    *,
    method: str = "POST",
    path: str = "/stats",
    chunks: list[bytes] | None = None,
    headers: dict[str, str] | None = None,
    root_path: str = "",
) -> Answer:
    """One request through the app: the body arrives in *chunks*, as a server would pass it."""
    pending = list(chunks if chunks is not None else [b""])
    calls = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if not pending:
            return {"type": "http.disconnect"}
        chunk = pending.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": root_path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    asyncio.run(app(scope, receive, send))
    start, content = sent
    return Answer(
        status=start["status"],
        headers={k.decode(): v.decode() for k, v in start["headers"]},
        body=content["body"],
        receive_calls=calls,
    )
