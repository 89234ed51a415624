"""The updater-stats endpoint in a Starlette app: two routes you add next to your own.

Run:      uvicorn --app-dir examples starlette_app:app   (then POST to http://127.0.0.1:8000/stats)
Install:  pip install "updater-stats[frameworks,server]"  (Starlette; uvicorn comes with server)
Storage:  UPDATER_STATS_STORAGE=sqlite:////var/lib/stats.sqlite3, or call
          updater_stats.configure(...) at start-up; the default is ./updater_stats.sqlite3.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import updater_stats


async def health(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})  # operators' health check


async def collect(request: Request) -> Response:
    # arespond stores in a worker thread, so a slow disk never blocks the event loop.
    answer = await updater_stats.arespond(await request.body())
    return Response(answer.json(), status_code=answer.status_code, media_type="application/json")


routes = [
    Route("/stats", health, methods=["GET"]),
    Route("/stats", collect, methods=["POST"]),
]
app = Starlette(routes=routes)
