"""The updater-stats endpoint in a Litestar app: a controller you register next to your own.

Run:      uvicorn --app-dir examples litestar_app:app   (then POST to http://127.0.0.1:8000/stats)
Install:  pip install "updater-stats[frameworks,server]"  (Litestar; uvicorn comes with server)
Storage:  UPDATER_STATS_STORAGE=sqlite:////var/lib/stats.sqlite3, or call
          updater_stats.configure(...) at start-up; the default is ./updater_stats.sqlite3.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Litestar, MediaType, Request, Response, get, post

import updater_stats


class StatsController(Controller):
    path = "/stats"

    @get()
    async def health(self) -> dict[str, str]:
        return {"status": "ok"}  # operators' health check

    @post()
    async def collect(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        # arespond stores in a worker thread, so a slow disk never blocks the event loop.
        answer = await updater_stats.arespond(await request.body())
        return Response(answer.json(), status_code=answer.status_code, media_type=MediaType.JSON)


# Litestar refuses bodies over 10 MB by default, and the largest real batch is bigger: let
# everything up to updater-stats' own cap (16 MiB) through; Litestar answers 413 above it.
app = Litestar([StatsController], request_max_body_size=updater_stats.Policy().max_body_bytes)
