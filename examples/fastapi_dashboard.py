"""updater-stats' stats endpoint and its read-only dashboard, both mounted in a FastAPI app.

Run:      uvicorn --app-dir examples fastapi_dashboard:app   (then open http://127.0.0.1:8000/dashboard/)
Install:  pip install "updater-stats[frameworks,server,dashboard]"  (FastAPI, uvicorn, Jinja2)
Storage:  UPDATER_STATS_STORAGE=sqlite:////var/lib/stats.sqlite3, read when the apps are created;
          the default is ./updater_stats.sqlite3.
Token:    UPDATER_STATS_DASHBOARD_TOKEN, 16 characters or more; without it the app does not start.
"""

from __future__ import annotations

from fastapi import FastAPI

from updater_stats.asgi import create_app
from updater_stats.dashboard import create_dashboard

app = FastAPI()


@app.get("/")
async def home() -> dict[str, str]:
    return {"app": "yours"}


# Devices POST to /hooks/stats. The dashboard reads the same storage on a read-only connection
# of its own; every page under /dashboard asks for the token (a login form, or a bearer header).
app.mount("/hooks", create_app())
app.mount("/dashboard", create_dashboard())
