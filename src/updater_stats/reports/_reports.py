"""`Reports`: the Python API over any `ReportSource`, with rates, intervals and shares."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType

import attrs
from typing_extensions import Self

from .. import _semantics as sem
from .._counts import (
    ActiveDevices,
    DailyVersionCounts,
    LatencyCounts,
    RunningGroup,
    VersionCounts,
)
from .._query import ReportQuery
from .._storage import ReportSource, StorageBackend, SupportsEvents, SupportsReportSource
from .._versions import version_order_key
from ..backends import backend_from_url, reader_from_url
from ..exceptions import ConfigurationError
from ._reference import EventReportSource
from ._wilson import wilson_interval


@attrs.frozen(kw_only=True)
class VersionReport:
    """Everything about one version; see `VersionCounts` for the counted figures.

    Attributes:
        failure_rate: ``failed_devices / devices``: the share of devices that tried the
            version and saw at least one failure. `None` without devices.
        failure_interval: The 95 % Wilson interval of `failure_rate`, or `None`.
    """

    version: str
    devices: int
    installs: int
    failures: Mapping[str, int]
    failed_devices: int
    failure_rate: float | None
    failure_interval: tuple[float, float] | None
    rollbacks: Mapping[str, int]
    replaced_by: Mapping[str, int]

    @property
    def failure_events(self) -> int:
        """Failure events of every kind, added up."""
        return sum(self.failures.values())

    @classmethod
    def from_counts(cls, counts: VersionCounts) -> VersionReport:
        """The report of *counts*, with its failure rate and interval (`None` without devices)."""
        rate = interval = None
        if counts.devices:
            rate = counts.failed_devices / counts.devices
            interval = wilson_interval(counts.failed_devices, counts.devices)
        return cls(
            version=counts.version,
            devices=counts.devices,
            installs=counts.installs,
            failures=counts.failures,
            failed_devices=counts.failed_devices,
            failure_rate=rate,
            failure_interval=interval,
            rollbacks=counts.rollbacks,
            replaced_by=counts.replaced_by,
        )


@attrs.frozen(kw_only=True)
class FunnelStep:
    """One step: distinct devices, and their share of the previous step (`None` for the first)."""

    name: str
    devices: int
    conversion: float | None


@attrs.frozen(kw_only=True)
class FunnelReport:
    """One version's update funnel: download started, download complete, set, launched.

    Attributes:
        steps: The four steps in that order, each with its devices and conversion.
    """

    version: str
    steps: tuple[FunnelStep, ...]


@attrs.frozen(kw_only=True)
class Share:
    """Devices with one value (a version, a platform, ...) and their share of all devices."""

    value: str
    devices: int
    share: float


@attrs.frozen(kw_only=True)
class AdoptionReport:
    """Devices by the version they run now, and by platform, OS, plugin and native version.

    "Now" is each device's latest running-version event in the query's window.
    """

    devices: int
    versions: tuple[Share, ...]
    platforms: tuple[Share, ...]
    os_versions: tuple[Share, ...]
    plugin_versions: tuple[Share, ...]
    native_versions: tuple[Share, ...]

    @property
    def live_versions(self) -> tuple[str, ...]:
        """Versions at least one device runs now, most devices first."""
        return tuple(share.value for share in self.versions)


def newest_first(names: Iterable[str]) -> list[str]:
    """Names in version order, newest first (see `updater_stats._versions`)."""
    return sorted(names, key=version_order_key, reverse=True)


def _shares(counter: Counter[str], total: int) -> tuple[Share, ...]:
    # Most devices first; equal counts newest first.
    rank = {name: n for n, name in enumerate(newest_first(counter))}
    ordered = sorted(counter.items(), key=lambda item: (-item[1], rank[item[0]]))
    return tuple(Share(value=value, devices=n, share=n / total) for value, n in ordered)


def adoption_from(groups: list[RunningGroup]) -> AdoptionReport:
    total = sum(group.devices for group in groups)
    splits: dict[str, Callable[[RunningGroup], str]] = {
        "versions": lambda g: g.version,
        "platforms": lambda g: g.platform,
        # "android 14": an OS version means little without its platform; either part is
        # left out when the device did not send it, so a device that sent neither is "".
        "os_versions": lambda g: " ".join(part for part in (g.platform, g.os_version) if part),
        "plugin_versions": lambda g: g.plugin_version,
        "native_versions": lambda g: g.native_version,
    }
    results: dict[str, tuple[Share, ...]] = {}
    for name, key in splits.items():
        counter: Counter[str] = Counter()
        for group in groups:
            counter[key(group)] += group.devices
        results[name] = _shares(counter, total)
    return AdoptionReport(devices=total, **results)


def funnel_from(counts_steps: tuple[int, ...]) -> tuple[FunnelStep, ...]:
    steps = []
    previous: int | None = None
    for name, devices in zip(sem.FUNNEL_STEPS, counts_steps, strict=True):
        conversion = None if previous is None else (devices / previous if previous else None)
        steps.append(FunnelStep(name=name, devices=devices, conversion=conversion))
        previous = devices
    return tuple(steps)


class Reports:
    """The reports over one `ReportSource`: per version, funnel, adoption, activity, latency.

    Every figure is computed from the stored events when asked; nothing is cached or
    pre-aggregated. Use it as a context manager, or call `close`.

    Args:
        source: Where the counts come from.
        backend: A backend the reports own (`open_reports` opened it for them): closed
            with them.
    """

    def __init__(self, source: ReportSource, *, backend: StorageBackend | None = None) -> None:
        self._source = source
        self._backend = backend

    @property
    def source(self) -> ReportSource:
        """The `ReportSource` the reports are computed over."""
        return self._source

    def versions(self, query: ReportQuery) -> list[VersionReport]:
        """One report per version, most devices first; equal counts newest version first."""
        reports = [VersionReport.from_counts(c) for c in self._source.version_counts(query)]
        reports.sort(key=lambda r: version_order_key(r.version), reverse=True)
        return sorted(reports, key=lambda r: -r.devices)

    def version(self, query: ReportQuery, version: str) -> VersionReport:
        """The report of one version (zero counts when it has no events)."""
        for report in self.versions(query):
            if report.version == version:
                return report
        return VersionReport.from_counts(VersionCounts(version=version))

    def funnel(self, query: ReportQuery) -> list[FunnelReport]:
        """The funnel of each version some device started downloading, newest version first."""
        rows = sorted(
            self._source.funnel_counts(query),
            key=lambda c: version_order_key(c.version),
            reverse=True,
        )
        return [
            FunnelReport(
                version=c.version,
                steps=funnel_from((c.download_started, c.download_complete, c.set, c.launched)),
            )
            for c in rows
        ]

    def adoption(self, query: ReportQuery) -> AdoptionReport:
        """Devices by the version they run now, and by platform, OS, plugin and native version."""
        return adoption_from(list(self._source.running_versions(query)))

    def active_devices(self, query: ReportQuery) -> ActiveDevices:
        """Distinct devices with any event, in all and per UTC day."""
        return self._source.active_devices(query)

    def download_latency(self, query: ReportQuery) -> list[LatencyCounts]:
        """Download times per version, newest version first."""
        return sorted(
            self._source.download_latency(query),
            key=lambda c: version_order_key(c.version),
            reverse=True,
        )

    def daily(self, query: ReportQuery) -> list[DailyVersionCounts]:
        """Per UTC day, oldest day first; within a day, versions oldest first."""
        return sorted(
            self._source.daily_counts(query), key=lambda c: (c.day, version_order_key(c.version))
        )

    def close(self) -> None:
        """Close the source's connections, and the backend the reports were given to own."""
        try:
            self._source.close()
        finally:
            if self._backend is not None:
                self._backend.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _read_side(backend: object) -> ReportSource:
    """The backend's read side: its own `ReportSource` (a new one when it hands them out),
    or the reference implementation over its events."""
    if isinstance(backend, SupportsReportSource):
        return backend.report_source()
    if isinstance(backend, ReportSource):
        return backend
    if isinstance(backend, SupportsEvents):
        return EventReportSource(backend)
    raise ConfigurationError(
        f"{type(backend).__name__} cannot be reported on: it implements neither ReportSource "
        "nor the read protocol (events())",
        code="no_read_side",
    )


def reports_for(backend: object) -> Reports:
    """`Reports` over a storage backend that pushes the counting down or streams its events.

    A backend that hands out its own `ReportSource` (`SupportsReportSource`: the built-in
    SQL backends, on a connection of their own, so the backend keeps writing undisturbed)
    gets its counts computed there; so does a backend that is a `ReportSource` itself. Any
    other backend with the read protocol (`SupportsEvents`, such as `MemoryBackend`) gets
    them from `EventReportSource`, which counts its events in Python. The backend stays
    yours: closing the reports leaves it open.

    Raises:
        ConfigurationError: the backend neither reports nor reads.
    """
    return Reports(_read_side(backend))


def open_reports(url: str) -> Reports:
    """`Reports` over the storage a URL names (``sqlite:///stats.sqlite3``, ``postgresql://``,
    or a scheme an installed package registers).

    Only reads: no database, schema or table is created by the built-in backends. Closing
    the reports closes what they opened.
    """
    source = reader_from_url(url)
    if source is not None:
        return Reports(source)
    # Server backends connect lazily: building one from the URL only parses it.
    backend = backend_from_url(url)
    try:
        source = _read_side(backend)
    except BaseException:
        backend.close()
        raise
    if isinstance(source, EventReportSource):
        # The reference reads through the backend: it stays open as long as the reports.
        return Reports(source, backend=backend)
    if isinstance(backend, SupportsReportSource):
        backend.close()  # its read side holds connections of its own
    return Reports(source)
