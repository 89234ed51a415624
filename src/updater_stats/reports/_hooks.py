"""Acting on a change of verdict: call a function or POST to a webhook, once per change."""

from __future__ import annotations

import datetime as dt
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import attrs

from ..exceptions import UpdaterStatsError
from ._health import HealthPolicy, HealthReport, Verdict, release_health
from ._reports import Reports


class HookError(UpdaterStatsError):
    """A verdict hook failed: the webhook did not answer 2xx, or the callable raised."""

    default_code = "hook_failed"


@attrs.frozen(kw_only=True)
class VerdictChange:
    """A version's verdict changed. `previous` is `None` the first time a version is checked."""

    previous: Verdict | None
    report: HealthReport

    def to_json(self) -> dict[str, Any]:
        """`HealthReport.to_json` with ``previous``: the verdict before, or `None`."""
        return {
            "previous": None if self.previous is None else self.previous.value,
            **self.report.to_json(),
        }


Hook = Callable[[VerdictChange], object]


def webhook(url: str, *, timeout: float = 10.0) -> Hook:
    """A hook that POSTs the change as JSON to *url* (``http://`` or ``https://``)."""
    if not url.lower().startswith(("http://", "https://")):
        raise ValueError(f"a webhook URL must be http:// or https://, not {url!r}")

    def post(change: VerdictChange) -> None:
        data = json.dumps(change.to_json()).encode()
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked above.
            url, data=data, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
                answer.read()
        except (urllib.error.URLError, OSError) as exc:
            raise HookError(f"webhook {url} failed: {exc}") from exc

    return post


class HealthWatcher:
    """Checks versions and runs a hook each time a version's verdict changes.

    For rollout automation: call `check` on a schedule (a cron job, a loop) and
    pause the rollout from the hook when the verdict becomes `Verdict.AT_RISK`.
    The last verdict per (app, version) is kept in memory; pass *known* to
    carry it over from an earlier process.

    Args:
        reports: Where the figures come from.
        on_change: A callable taking a `VerdictChange`, or a webhook URL.
        policy: What healthy means.
        known: Verdicts already acted on, by ``(app_id, version)``.
    """

    def __init__(
        self,
        reports: Reports,
        on_change: Hook | str,
        policy: HealthPolicy | None = None,
        *,
        known: dict[tuple[str, str], Verdict] | None = None,
    ) -> None:
        self._reports = reports
        self._hook: Hook = webhook(on_change) if isinstance(on_change, str) else on_change
        self._policy = policy or HealthPolicy()
        self._known = dict(known or {})
        self._lock = threading.Lock()

    @property
    def known(self) -> dict[tuple[str, str], Verdict]:
        """The last verdict seen per ``(app_id, version)``."""
        with self._lock:
            return dict(self._known)

    def check(self, app_id: str, version: str, *, now: dt.datetime | None = None) -> HealthReport:
        """The current verdict; the hook runs first when it differs from the last one.

        A failing hook raises `HookError` and the verdict is not recorded, so the next
        check runs the hook again rather than losing the change.
        """
        report = release_health(self._reports, app_id, version, self._policy, now=now)
        key = (app_id, version)
        with self._lock:
            previous = self._known.get(key)
        if previous is not report.verdict:
            try:
                self._hook(VerdictChange(previous=previous, report=report))
            except HookError:
                raise
            except Exception as exc:
                raise HookError(f"the verdict hook raised {exc!r}") from exc
            with self._lock:
                self._known[key] = report.verdict
        return report
