"""Who may see the dashboard: one token, compared in constant time, and a signed session cookie."""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from pathlib import Path

from .._settings import dashboard_token_from_env
from ..exceptions import ConfigurationError

#: The session cookie's name.
COOKIE = "updater_stats_dashboard"
#: How long a login lasts.
SESSION_SECONDS = 12 * 3600
#: Shorter tokens could be guessed by anyone who can reach the login form.
MIN_TOKEN_CHARS = 16


def read_token(token: str | None = None, token_file: str | os.PathLike[str] | None = None) -> str:
    """The token given, else the one in *token_file*, else ``UPDATER_STATS_DASHBOARD_TOKEN``.

    Raises:
        ConfigurationError: none is set, or it is shorter than 16 characters.
    """
    if token is None and token_file is not None:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise ConfigurationError(
                f"cannot read the dashboard token file: {error.strerror}", code="no_token"
            ) from None
    if token is None:
        token = dashboard_token_from_env()
    if not token:
        raise ConfigurationError(
            "the dashboard needs a token: set UPDATER_STATS_DASHBOARD_TOKEN or pass "
            "--dashboard-token-file (a random string of 16 characters or more)",
            code="no_token",
        )
    if len(token) < MIN_TOKEN_CHARS:
        # The message never holds the token: it may end up in a log.
        raise ConfigurationError(
            f"the dashboard token must be at least {MIN_TOKEN_CHARS} characters long",
            code="weak_token",
        )
    return token


class Gate:
    """Checks a bearer token or a session cookie; makes session cookies after a login."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()
        # Cookies are signed with a key derived from the token: changing it ends every session.
        self._key = hashlib.sha256(b"updater-stats dashboard session\x00" + self._token).digest()

    def token_ok(self, offered: str) -> bool:
        """Whether *offered* is the token (constant time)."""
        return hmac.compare_digest(offered.encode("utf-8", "surrogatepass"), self._token)

    def _sign(self, expires: int) -> str:
        return hmac.new(self._key, str(expires).encode(), hashlib.sha256).hexdigest()

    def session(self, now: float | None = None) -> str:
        """A new session cookie value."""
        expires = int(now if now is not None else time.time()) + SESSION_SECONDS
        return f"{expires}.{self._sign(expires)}"

    def session_ok(self, value: str, now: float | None = None) -> bool:
        """Whether *value* is a session this token signed that has not expired."""
        head, _, signature = value.partition(".")
        if not head.isdigit() or len(head) > 12:
            return False
        expected = self._sign(int(head))
        valid = hmac.compare_digest(signature.encode("ascii", "replace"), expected.encode())
        return valid and int(head) > (now if now is not None else time.time())
