"""The updater-stats endpoint in a Flask app: a blueprint you register next to your own.

Run:      flask --app examples/flask_app.py run    (then POST to http://127.0.0.1:5000/stats)
Install:  pip install "updater-stats[frameworks]"  (Flask comes with the frameworks extra)
Storage:  UPDATER_STATS_STORAGE=sqlite:////var/lib/stats.sqlite3, or call
          updater_stats.configure(...) at start-up; the default is ./updater_stats.sqlite3.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, request

import updater_stats

stats = Blueprint("updater_stats", __name__)


@stats.get("/stats")
def health() -> dict[str, str]:
    return {"status": "ok"}  # operators' health check


@stats.post("/stats")
def collect() -> Response:
    answer = updater_stats.respond(request.get_data(cache=False))  # never raises for bad input
    return Response(answer.json(), status=answer.status_code, mimetype="application/json")


app = Flask(__name__)
# Flask reads any body by default; cap it at updater-stats' own limit (16 MiB), which lets the
# largest real batch through. Over it, Flask answers 413 before the body is read.
app.config["MAX_CONTENT_LENGTH"] = updater_stats.Policy().max_body_bytes
app.register_blueprint(stats)
