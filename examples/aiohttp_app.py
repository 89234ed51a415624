"""The updater-stats endpoint in an aiohttp app: a route table you add next to your own.

Run:      python examples/aiohttp_app.py   (then POST to http://127.0.0.1:8080/stats)
Install:  pip install "updater-stats[frameworks]"  (aiohttp comes with the frameworks extra)
Storage:  UPDATER_STATS_STORAGE=sqlite:////var/lib/stats.sqlite3, or call
          updater_stats.configure(...) at start-up; the default is ./updater_stats.sqlite3.
"""

from __future__ import annotations

from aiohttp import web

import updater_stats

routes = web.RouteTableDef()


@routes.get("/stats")
async def health(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})  # operators' health check


@routes.post("/stats")
async def collect(request: web.Request) -> web.Response:
    # arespond stores in a worker thread, so a slow disk never blocks the event loop.
    answer = await updater_stats.arespond(await request.read())
    return web.Response(
        body=answer.json(), status=answer.status_code, content_type="application/json"
    )


def create_app() -> web.Application:
    # aiohttp refuses bodies over 1 MiB by default, and a real batch can be several MB: let
    # everything up to updater-stats' own cap (16 MiB) through; aiohttp answers 413 above it.
    app = web.Application(client_max_size=updater_stats.Policy().max_body_bytes)
    app.add_routes(routes)
    return app


if __name__ == "__main__":
    web.run_app(create_app(), host="127.0.0.1", port=8080)
