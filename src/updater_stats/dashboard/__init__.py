"""A read-only web dashboard over stored events: apps, versions, release health, devices.

Needs the ``dashboard`` extra (``pip install 'updater-stats[dashboard]'``: Jinja2).
`create_dashboard` returns a plain ASGI app; mount it in your own app, or run
``updater-stats serve --dashboard`` to serve it at ``/dashboard`` next to ``/stats``.
Every page needs the dashboard token; no page changes anything.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._inventory import DashboardData
from .._settings import (
    DASHBOARD_ENV_VAR,
    TOKEN_ENV_VAR,
    AppSettings,
    dashboard_from_env,
    storage_from_env,
)
from ..privacy import Privacy
from ..reports import HealthPolicy
from ._app import CSP, DashboardApp
from ._auth import read_token

if TYPE_CHECKING:
    from .._http import Receive, Scope, Send

__all__ = [
    "CSP",
    "DASHBOARD_ENV_VAR",
    "TOKEN_ENV_VAR",
    "DashboardApp",
    "DashboardData",
    "create_dashboard",
    "create_server_app_from_env",
    "read_token",
]


def create_dashboard(  # noqa: PLR0913 - keyword-only options, each with a default
    storage: object = None,
    *,
    token: str | None = None,
    token_file: str | os.PathLike[str] | None = None,
    privacy: Privacy | None = None,
    policy: HealthPolicy | None = None,
    clock: Callable[[], dt.datetime] | None = None,
    summaries: bool = True,
) -> DashboardApp:
    """The dashboard as an ASGI app over *storage*: a storage URL or a backend.

    ``None`` reads ``UPDATER_STATS_STORAGE`` (default ``sqlite:///updater_stats.sqlite3``).
    Storage is only read, on a connection of the dashboard's own, opened on the first page.

    Args:
        storage: What the stats endpoint writes to.
        token: The token every page asks for; default: *token_file*'s content, else
            ``UPDATER_STATS_DASHBOARD_TOKEN``.
        token_file: A file holding the token.
        privacy: How the endpoint stores ids (default: `Privacy.from_env`), so that a device
            search hashes what is typed the same way.
        policy: What "healthy" means for the verdicts and the drawn threshold.
        clock: The current time (tests); default: the system clock.
        summaries: Over an SQLite file, read the pages' figures from its day summaries
            (``<file>-summaries``, kept beside it and up to date by a thread): the same
            figures, a page in well under a second on a million events. `False` reads every
            event for every page.

    Raises:
        ConfigurationError: no token, or one shorter than 16 characters.
    """
    secret = read_token(token, token_file)
    if storage is None:
        storage = storage_from_env()
    if privacy is None:
        privacy = Privacy.from_env()
    target = storage

    def data() -> DashboardData:
        return DashboardData.open(target, privacy=privacy, summaries=summaries)

    return DashboardApp(data, token=secret, policy=policy or HealthPolicy(), clock=clock)


class _ServerApp:
    """``/dashboard`` to the dashboard, every other path to the stats endpoint."""

    def __init__(self, stats: Any, dashboard: DashboardApp) -> None:
        self.stats = stats
        self.dashboard = dashboard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            try:
                await self.stats(scope, receive, send)
            finally:
                self.dashboard.close()
            return
        path = scope.get("path", "")
        if path == "/dashboard" or path.startswith("/dashboard/"):
            await self.dashboard(scope, receive, send)
        else:
            await self.stats(scope, receive, send)


def create_server_app_from_env() -> Any:
    """What ``updater-stats serve`` runs: the stats endpoint, and the dashboard when
    ``UPDATER_STATS_DASHBOARD`` is ``1`` (its token from ``UPDATER_STATS_DASHBOARD_TOKEN``).

    Both read the storage and the privacy of one `AppSettings.from_env`.
    """
    from ..asgi import create_app  # noqa: PLC0415 - keeps the import graph one-way

    settings = AppSettings.from_env()
    wanted = dashboard_from_env()
    stats = create_app(settings=settings)
    if not wanted:
        return stats
    try:
        dashboard = create_dashboard(settings.storage, privacy=settings.privacy)
    except BaseException:
        stats.close()  # no server will run its lifespan now
        raise
    return _ServerApp(stats, dashboard)
