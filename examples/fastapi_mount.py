"""updater-stats' own ASGI app mounted inside a FastAPI app: no route to write.

Run:      uvicorn --app-dir examples fastapi_mount:app   (then POST to http://127.0.0.1:8000/hooks/stats)
Install:  pip install "updater-stats[frameworks,server]"  (FastAPI; uvicorn comes with server)
Storage:  UPDATER_STATS_STORAGE=sqlite:////var/lib/stats.sqlite3, read when the app is created;
          the default is ./updater_stats.sqlite3.
"""

from __future__ import annotations

from fastapi import FastAPI

from updater_stats.asgi import create_app

app = FastAPI()


@app.get("/")
async def home() -> dict[str, str]:
    return {"app": "yours"}  # your own routes stay as they are


# Everything under /hooks goes to updater-stats: POST /hooks/stats stores events, GET /hooks/stats
# is the health check, GET /hooks/ready checks storage. Starlette and Litestar mount it the same
# way. Storage runs in a worker thread, never on the event loop.
app.mount("/hooks", create_app())
