"""Release health: a verdict per version from the failure rate's 95 % interval.

The rate alone misleads both ways: 1 failure among 3 devices is "33 %" and
0 among 10 is "0 %". The Wilson interval says what the devices seen so far
can and cannot rule out, and the verdict follows from where it lies against
the limit.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import attrs

from .._query import ReportQuery
from ._reports import Reports, VersionReport


class Verdict(str, enum.Enum):
    """How a version is doing. `exit_code` is what ``updater-stats gate`` exits with."""

    HEALTHY = "healthy"
    WARNING = "warning"
    AT_RISK = "at_risk"
    INSUFFICIENT_DATA = "insufficient_data"

    def __str__(self) -> str:
        return self.value

    @property
    def exit_code(self) -> int:
        """0 healthy, 1 at risk, 2 insufficient data, 3 warning (not proven either way)."""
        return _EXIT_CODES[self]


_EXIT_CODES = {
    Verdict.HEALTHY: 0,
    Verdict.AT_RISK: 1,
    Verdict.INSUFFICIENT_DATA: 2,
    Verdict.WARNING: 3,
}


def _positive_delta(_: object, attribute: attrs.Attribute[Any], value: dt.timedelta) -> None:
    if value <= dt.timedelta(0):
        raise ValueError(f"{attribute.name} must be positive, not {value}")


@attrs.frozen(kw_only=True)
class HealthPolicy:
    """What "healthy" means.

    Attributes:
        max_failure_rate: The share of devices that may see a failure.
        min_devices: Fewer devices than this in the window: `Verdict.INSUFFICIENT_DATA`.
        window: How far back from now the verdict looks.
    """

    max_failure_rate: float = attrs.field(
        default=0.05, validator=[attrs.validators.gt(0.0), attrs.validators.lt(1.0)]
    )
    min_devices: int = attrs.field(default=50, validator=attrs.validators.ge(1))
    window: dt.timedelta = attrs.field(default=dt.timedelta(days=7), validator=_positive_delta)


def _pct(value: float) -> str:
    return f"{value * 100:.1f} %"


def judge(report: VersionReport, policy: HealthPolicy) -> tuple[Verdict, tuple[str, ...]]:
    """The verdict on one version's figures, with the reasons in sentences."""
    limit = _pct(policy.max_failure_rate)
    if report.devices < policy.min_devices or report.failure_interval is None:
        needed = (
            f"{report.devices} devices tried {report.version} in the window; "
            f"at least {policy.min_devices} are needed for a verdict"
        )
        return Verdict.INSUFFICIENT_DATA, (needed,)
    assert report.failure_rate is not None  # noqa: S101 - set whenever the interval is.
    low, high = report.failure_interval
    seen = (
        f"{report.failed_devices} of {report.devices} devices saw a failure "
        f"({_pct(report.failure_rate)}; 95 % interval {_pct(low)} to {_pct(high)})"
    )
    if low > policy.max_failure_rate:
        verdict = Verdict.AT_RISK
        why = f"even the interval's lower bound {_pct(low)} is above the {limit} limit"
    elif high > policy.max_failure_rate:
        verdict = Verdict.WARNING
        why = (
            f"the interval straddles the {limit} limit: the devices seen so far can "
            f"neither rule out a failure rate above it nor confirm one"
        )
    else:
        verdict = Verdict.HEALTHY
        why = f"even the interval's upper bound {_pct(high)} is within the {limit} limit"
    reasons = [seen, why]
    if report.failures:
        top = sorted(report.failures.items(), key=lambda item: (-item[1], item[0]))[:3]
        reasons.append("most frequent failures: " + ", ".join(f"{a} ({n})" for a, n in top))
    if report.rollbacks:
        rolled = ", ".join(f"{a} ({n})" for a, n in report.rollbacks.items())
        reasons.append(f"rollbacks away from {report.version}: {rolled}")
    return verdict, tuple(reasons)


@attrs.frozen(kw_only=True)
class HealthReport:
    """The verdict on one version, the figures behind it and the reasons in words."""

    app_id: str
    version: str
    verdict: Verdict
    reasons: tuple[str, ...]
    policy: HealthPolicy
    since: dt.datetime
    until: dt.datetime
    figures: VersionReport

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: what ``updater-stats gate --json`` prints."""
        figures = self.figures
        interval = figures.failure_interval
        return {
            "app_id": self.app_id,
            "version": self.version,
            "verdict": self.verdict.value,
            "exit_code": self.verdict.exit_code,
            "reasons": list(self.reasons),
            "since": self.since.isoformat().replace("+00:00", "Z"),
            "until": self.until.isoformat().replace("+00:00", "Z"),
            "devices": figures.devices,
            "failed_devices": figures.failed_devices,
            "failure_rate": figures.failure_rate,
            "failure_interval": None if interval is None else list(interval),
            "failures": dict(figures.failures),
            "rollbacks": dict(figures.rollbacks),
            "installs": figures.installs,
            "policy": {
                "max_failure_rate": self.policy.max_failure_rate,
                "min_devices": self.policy.min_devices,
                "window_seconds": int(self.policy.window.total_seconds()),
            },
        }


def release_health(  # noqa: PLR0913 - keyword-only filters, as in ReportQuery.
    reports: Reports,
    app_id: str,
    version: str,
    policy: HealthPolicy | None = None,
    *,
    now: dt.datetime | None = None,
    platform: str | None = None,
    channel: str | None = None,
    all_devices: bool = False,
) -> HealthReport:
    """The verdict on *version* over the policy's window up to *now* (default: the current time)."""
    policy = policy or HealthPolicy()
    query = ReportQuery.last(
        app_id,
        policy.window,
        now=now,
        platform=platform,
        channel=channel,
        all_devices=all_devices,
    )
    assert query.since is not None  # noqa: S101 - ReportQuery.last sets both bounds.
    assert query.until is not None  # noqa: S101
    figures = reports.version(query, version)
    verdict, reasons = judge(figures, policy)
    return HealthReport(
        app_id=app_id,
        version=version,
        verdict=verdict,
        reasons=reasons,
        policy=policy,
        since=query.since,
        until=query.until,
        figures=figures,
    )
