"""The dashboard as an ASGI 3 application: routing, access, response headers."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import threading
from collections.abc import Callable
from importlib import resources
from urllib.parse import parse_qsl

from .._http import Disconnected, Receive, Scope, Send, read_chunks, serve_lifespan
from .._inventory import DashboardData
from ..exceptions import UpdaterStatsError
from ..reports import HealthPolicy
from ._auth import COOKIE, SESSION_SECONDS, Gate
from ._pages import BadRequestError, NotFoundError, Pages

log = logging.getLogger("updater_stats.dashboard")

#: Self only: no script runs at all, styles and images come from the dashboard itself.
CSP = (
    "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
_SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]
_MAX_FORM_BYTES = 4096
_STATIC = {"dashboard.css": "text/css; charset=utf-8", "favicon.svg": "image/svg+xml"}


def _static(name: str) -> bytes:
    return (resources.files("updater_stats.dashboard") / "static" / name).read_bytes()


class DashboardApp:
    """The read-only dashboard over one storage; see `create_dashboard`."""

    def __init__(
        self,
        data: Callable[[], DashboardData],
        *,
        token: str,
        policy: HealthPolicy,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self._open_data = data
        self._data: DashboardData | None = None
        self._gate = Gate(token)
        self._policy = policy
        self._clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))
        self._pages: dict[str, Pages] = {}
        self._login_only: dict[str, Pages] = {}
        self._lock = threading.Lock()  # pages are built in worker threads
        self._static = {name: _static(name) for name in _STATIC}

    def _pages_for(self, prefix: str) -> Pages:
        with self._lock:
            pages = self._pages.get(prefix)
            if pages is None:
                if self._data is None:
                    self._data = self._open_data()
                pages = Pages(self._data, policy=self._policy, prefix=prefix)
                self._pages[prefix] = pages
            return pages

    def close(self) -> None:
        """Close the read connection (opened on the first page asked for)."""
        with self._lock:
            data, self._data = self._data, None
            self._pages.clear()
        if data is not None:
            data.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send, self.close)
            return
        if scope["type"] != "http":
            return
        await self._http(scope, receive, send)

    def _authorised(self, headers: dict[str, str]) -> bool:
        authorization = headers.get("authorization", "")
        if authorization[:7].lower() == "bearer ":
            return self._gate.token_ok(authorization[7:].strip())
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE and self._gate.session_ok(value):
                return True
        return False

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        root = scope.get("root_path", "")
        path: str = scope["path"]
        if root and path.startswith(root):
            path = path[len(root) :]
        # Served alone, the dashboard lives under /dashboard; mounted, under its mount path.
        prefix = root
        if not root and (path == "/dashboard" or path.startswith("/dashboard/")):
            prefix, path = "/dashboard", path[len("/dashboard") :]
        path = path or "/"
        method = scope["method"]
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
        }
        secure = scope.get("scheme") == "https"
        name = path.removeprefix("/static/")
        if name in _STATIC and method in {"GET", "HEAD"}:
            # Style and icon only, nothing stored: the login page needs them before a login.
            await self._send(send, 200, self._static[name], _STATIC[name], head=method == "HEAD")
            return
        if path == "/login":
            await self._login(receive, send, method, prefix, secure=secure)
            return
        if not self._authorised(headers):
            await self._refuse(send, prefix)
            return
        if method not in {"GET", "HEAD"}:
            await self._send(send, 405, b"method not allowed", "text/plain; charset=utf-8")
            return
        args = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), encoding="utf-8"))
        await self._page(send, prefix, path, args, head=method == "HEAD")

    async def _page(
        self, send: Send, prefix: str, path: str, args: dict[str, str], *, head: bool
    ) -> None:
        now = self._clock()
        loop = asyncio.get_running_loop()

        def build() -> str | None:
            pages = self._pages_for(prefix)
            views: dict[str, Callable[[], str]] = {
                "/": lambda: pages.apps(now),
                "/app": lambda: pages.app(args, now),
                "/version": lambda: pages.version(args, now),
                "/devices": lambda: pages.devices(args),
                "/device": lambda: pages.device(args),
            }
            view = views.get(path)
            return None if view is None else view()

        try:
            html = await loop.run_in_executor(None, build)
        except NotFoundError:
            html = None
        except BadRequestError as error:
            await self._send(
                send, 400, f"bad parameter: {error}".encode(), "text/plain; charset=utf-8"
            )
            return
        except UpdaterStatsError:
            # The reason (a path, a host, a driver's words) goes to the log, not to the page.
            log.exception("the dashboard cannot read storage")
            body = b"storage is unavailable"
            await self._send(send, 503, body, "text/plain; charset=utf-8")
            return
        if html is None:
            await self._send(send, 404, b"not found", "text/plain; charset=utf-8")
            return
        body = html.encode("utf-8", "surrogatepass")
        await self._send(send, 200, body, "text/html; charset=utf-8", head=head)

    async def _login(
        self, receive: Receive, send: Send, method: str, prefix: str, *, secure: bool
    ) -> None:
        loop = asyncio.get_running_loop()
        pages = await loop.run_in_executor(None, functools.partial(self._login_pages, prefix))
        if method in {"GET", "HEAD"}:
            page = pages.login().encode()
            await self._send(send, 200, page, "text/html; charset=utf-8", head=method == "HEAD")
            return
        if method != "POST":
            await self._send(send, 405, b"method not allowed", "text/plain; charset=utf-8")
            return
        body = await _read_form(receive)
        offered = dict(parse_qsl(body.decode("utf-8", "replace"))).get("token", "") if body else ""
        if not offered or not self._gate.token_ok(offered):
            await self._send(
                send, 401, pages.login(failed=True).encode(), "text/html; charset=utf-8"
            )
            return
        attributes = f"Path={prefix or '/'}; Max-Age={SESSION_SECONDS}; HttpOnly; SameSite=Strict"
        if secure:
            attributes += "; Secure"
        cookie = f"{COOKIE}={self._gate.session()}; {attributes}"
        await self._send(
            send,
            303,
            b"",
            "text/plain; charset=utf-8",
            extra=[(b"location", f"{prefix}/".encode()), (b"set-cookie", cookie.encode())],
        )

    def _login_pages(self, prefix: str) -> Pages:
        # The login form needs no data: a Pages without a connection renders it, built once.
        with self._lock:
            pages = self._login_only.get(prefix)
            if pages is None:
                pages = Pages(None, policy=self._policy, prefix=prefix)
                self._login_only[prefix] = pages
            return pages

    async def _refuse(self, send: Send, prefix: str) -> None:
        # No detail: the same answer whether a token, a cookie or nothing was offered.
        page = self._login_pages(prefix).login()
        await self._send(
            send,
            401,
            page.encode(),
            "text/html; charset=utf-8",
            extra=[(b"www-authenticate", b'Bearer realm="updater-stats dashboard"')],
        )

    async def _send(  # noqa: PLR0913 - one response, spelled out
        self,
        send: Send,
        status: int,
        body: bytes,
        content_type: str,
        *,
        head: bool = False,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        headers = [
            (b"content-type", content_type.encode()),
            (b"content-length", str(len(body)).encode()),
            *_SECURITY_HEADERS,
            *(extra or []),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else body})


async def _read_form(receive: Receive) -> bytes | None:
    """The login form's body, or `None` when it is too large or the client went away."""
    try:
        return await read_chunks(receive, _MAX_FORM_BYTES)
    except Disconnected:
        return None
