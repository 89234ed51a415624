"""``/metrics``: the intake counters as Prometheus text, through prometheus-client.

The counters of an `IntakeMetrics` are mirrored, increment by increment, into
prometheus-client ``Counter`` objects. In one process they live in a registry
of their own. Under a multi-worker server, prometheus-client's multiprocess
mode applies, as its documentation describes: with ``PROMETHEUS_MULTIPROC_DIR``
set (before the workers start), each worker's counters are written to files in
that directory and every scrape adds up all workers' files, so whichever
worker answers ``/metrics`` gives the totals.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from ._metrics import COUNTERS, IntakeMetrics
from .exceptions import ConfigurationError

__all__ = ["MULTIPROC_ENV_VAR", "PrometheusExporter", "exporter_for"]

MULTIPROC_ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"
_PREFIX = "updater_stats_"
# Counter names as Prometheus shows them (prometheus-client adds ``_total``).
_NAMES = {
    "requests": "requests",
    "accepted": "events_accepted",
    "duplicates": "events_duplicates",
    "unknown_actions": "events_unknown_action",
    "truncated": "events_truncated",
    "rejected": "events_rejected",
    "failed": "events_failed",
    "field_errors": "field_errors",
}


_lock = threading.Lock()
# Multiprocess mode: one set of counters per process, whatever the number of apps in it. Two
# counters of one name in one process would write the same slots of the same file, each from
# its own running total, and lose counts.
_process_counters: dict[str, Any] | None = None


def _client() -> Any:
    try:
        import prometheus_client  # noqa: PLC0415 - an optional extra.
        import prometheus_client.multiprocess  # noqa: PLC0415
    except ImportError:
        raise ConfigurationError(
            "/metrics needs prometheus-client: pip install 'updater-stats[metrics]'",
            code="missing_extra",
        ) from None
    return prometheus_client


class PrometheusExporter:
    """The Prometheus side of one `IntakeMetrics`: counters, and the text a scrape gets."""

    def __init__(self, metrics: IntakeMetrics) -> None:
        client = _client()
        self._client = client
        directory = os.environ.get(MULTIPROC_ENV_VAR)
        self.multiprocess = bool(directory)
        if directory and not Path(directory).is_dir():
            # Found now rather than by every scrape failing.
            raise ConfigurationError(
                f"{MULTIPROC_ENV_VAR} is {directory!r}, which is not a directory: create it "
                "(empty) before the server starts",
                code="bad_metrics_dir",
            )
        # Multiprocess mode: counters registered nowhere (their values go to the shared
        # files), and each scrape reads the files through a fresh registry.
        self._registry = None if self.multiprocess else client.CollectorRegistry()
        if self.multiprocess:
            global _process_counters  # noqa: PLW0603 - one set per process, made on first use
            if _process_counters is None:
                _process_counters = self._make_counters()
            self._counters = _process_counters
        else:
            self._counters = self._make_counters()
        metrics.add_sink(self)

    def _make_counters(self) -> dict[str, Any]:
        return {
            counter: self._client.Counter(
                _PREFIX + _NAMES[counter], text, labels, registry=self._registry
            )
            for counter, (text, labels) in COUNTERS.items()
        }

    def inc(self, counter: str, labels: tuple[str, ...], amount: int) -> None:
        self._counters[counter].labels(*labels).inc(amount)

    @property
    def content_type(self) -> str:
        return str(self._client.CONTENT_TYPE_LATEST)

    def render(self) -> bytes:
        """The Prometheus text exposition of the counters (every worker's, in multiprocess mode)."""
        registry = self._registry
        if registry is None:
            registry = self._client.CollectorRegistry()
            self._client.multiprocess.MultiProcessCollector(registry)
        return bytes(self._client.generate_latest(registry))


def exporter_for(metrics: IntakeMetrics) -> PrometheusExporter:
    """The one exporter of *metrics*, made on first use.

    Raises:
        ConfigurationError: prometheus-client is not installed (the ``metrics`` extra).
    """
    with _lock:  # two apps made at once over one collector still share one exporter
        exporter = metrics.exporter
        if not isinstance(exporter, PrometheusExporter):
            exporter = PrometheusExporter(metrics)
            metrics.exporter = exporter
        return exporter
