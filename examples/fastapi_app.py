"""The updater-stats endpoint in a FastAPI app: a router you include next to your own.

Run:      uvicorn --app-dir examples fastapi_app:app   (then POST to http://127.0.0.1:8000/stats)
Install:  pip install "updater-stats[frameworks,server]"  (FastAPI; uvicorn comes with server)
Storage:  UPDATER_STATS_STORAGE=sqlite:////var/lib/stats.sqlite3, or call
          updater_stats.configure(...) at start-up; the default is ./updater_stats.sqlite3.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response

import updater_stats

router = APIRouter()


@router.get("/stats")
async def health() -> dict[str, str]:
    return {"status": "ok"}  # operators' health check


@router.post("/stats")
async def collect(request: Request) -> Response:
    # The raw body, not a pydantic model: updater-stats validates it to the protocol's rules.
    # arespond stores in a worker thread, so a slow disk never blocks the event loop.
    answer = await updater_stats.arespond(await request.body())
    return Response(answer.json(), status_code=answer.status_code, media_type="application/json")


app = FastAPI()
app.include_router(router)
