"""updater-stats' own WSGI app mounted inside a Flask app: no route to write.

Run:      flask --app examples/flask_mount.py run   (then POST to http://127.0.0.1:5000/hooks/stats)
Install:  pip install "updater-stats[frameworks]"  (Flask)
Storage:  UPDATER_STATS_STORAGE=sqlite:////var/lib/stats.sqlite3, read when the app is created;
          the default is ./updater_stats.sqlite3.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from updater_stats.wsgi import create_app

app = Flask(__name__)


@app.get("/")
def home() -> dict[str, str]:
    return {"app": "yours"}  # your own routes stay as they are


# Everything under /hooks goes to updater-stats: POST /hooks/stats stores events, GET /hooks/stats
# is the health check, GET /hooks/ready checks storage. Any WSGI app (Django too) mounts it the same
# way, with a dispatcher in front of it.
app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/hooks": create_app()})  # type: ignore[method-assign]
