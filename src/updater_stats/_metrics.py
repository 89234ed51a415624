"""Intake metrics: what the endpoint accepted, refused, and why; counted in-process.

Every `Collector` owns an `IntakeMetrics`. The collector records each answer and
each rejected event; the storage writer's outcome (``WriteResult``) says how
many events of a write were new and how many duplicates, so nothing costs an
extra storage round trip. `IntakeMetrics.snapshot` reads the counters;
`updater_stats._prometheus` mirrors them into prometheus-client counters for
``/metrics``.

Labels are bounded: the endpoint is public, and a label per made-up ``app_id``
or field name would let anyone grow the process's memory without end.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Mapping, Sequence
from typing import Protocol

import attrs

from ._models import WIRE_KEYS, StoredEvent, WriteResult

__all__ = ["IntakeMetrics", "IntakeSnapshot", "MetricsSink"]

#: Label of apps past `IntakeMetrics.max_apps`.
OTHER_APPS = "_other"
#: Label of rejected events whose ``app_id`` itself was not valid.
INVALID_APP = "_invalid"
#: Label of duplicates a backend did not attribute, in a write holding several apps.
UNATTRIBUTED = "_unattributed"
#: Label of errors about a field the protocol does not name (an unknown extra field).
OTHER_FIELD = "_other"

_KNOWN_FIELDS = frozenset(WIRE_KEYS.values()) | {"extras"}

# The counters, each with its label names: the Prometheus names are built from these.
COUNTERS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "requests": ("Stats requests answered, by outcome code ('ok' or the error code).", ("code",)),
    "accepted": ("Events answered 'ok': stored, or already stored (duplicates).", ("app_id",)),
    "duplicates": ("Accepted events that were already stored (re-sent batches).", ("app_id",)),
    "unknown_actions": ("Accepted events whose action this version does not know.", ("app_id",)),
    "truncated": ("Accepted events stored with a value cut at a cap.", ("app_id",)),
    "rejected": ("Events refused by validation, by error code.", ("app_id", "code")),
    "failed": ("Valid events storage failed to store (answered 503; devices retry).", ("app_id",)),
    "field_errors": ("Validation errors, by wire field.", ("field",)),
}


class MetricsSink(Protocol):
    """**Protocol:** receives every increment as it happens (the Prometheus mirror is one)."""

    def inc(self, counter: str, labels: tuple[str, ...], amount: int) -> None: ...


@attrs.frozen
class IntakeSnapshot:
    """The counters of an `IntakeMetrics` at one moment.

    Attributes:
        requests: Answers by outcome: ``"ok"`` or an error code (``invalid_json``,
            ``body_too_large``, ``storage_unavailable``, ...).
        accepted: Events answered "ok", per ``app_id`` (new and duplicate alike).
        duplicates: Of those, the ones storage already held, per ``app_id``.
        unknown_actions: Accepted events with an action this version does not know.
        truncated: Accepted events stored with a value cut at a cap (see `Policy`).
        rejected: Events refused by validation, per ``(app_id, code)``; ``app_id``
            is ``"_invalid"`` when the event's own ``app_id`` was not valid.
        failed: Valid events that storage failed to store, per ``app_id``.
        field_errors: Validation errors per wire field.
    """

    requests: Mapping[str, int]
    accepted: Mapping[str, int]
    duplicates: Mapping[str, int]
    unknown_actions: Mapping[str, int]
    rejected: Mapping[tuple[str, str], int]
    failed: Mapping[str, int]
    field_errors: Mapping[str, int]
    truncated: Mapping[str, int] = attrs.field(factory=dict)


class IntakeMetrics:
    """Thread-safe counters of one collector's intake.

    Args:
        max_apps: Distinct ``app_id`` labels kept; later apps count under ``"_other"``.
            With `Policy.allowed_app_ids` set, only those apps can appear anyway.
    """

    def __init__(self, *, max_apps: int = 100) -> None:
        self.max_apps = max_apps
        self._lock = threading.Lock()
        self._counts: dict[str, collections.Counter[tuple[str, ...]]] = {
            name: collections.Counter() for name in COUNTERS
        }
        self._apps: set[str] = set()
        self._sinks: list[MetricsSink] = []
        #: Set by the Prometheus mirror, so that every app shares one per collector.
        self.exporter: object | None = None

    def __repr__(self) -> str:
        return f"<IntakeMetrics {sum(self._counts['requests'].values())} requests>"

    # -- recording (the collector calls these) ---------------------------------------------

    def _app(self, app_id: str) -> str:
        """Hold the lock."""
        if app_id in self._apps:
            return app_id
        if len(self._apps) < self.max_apps:
            self._apps.add(app_id)
            return app_id
        return OTHER_APPS

    def _add(self, counter: str, labels: tuple[str, ...], amount: int = 1) -> None:
        """Hold the lock."""
        if amount:
            self._counts[counter][labels] += amount
            for sink in self._sinks:
                sink.inc(counter, labels, amount)

    def request(self, code: str) -> None:
        """One answer: ``"ok"`` or the error code sent."""
        with self._lock:
            self._add("requests", (code,))

    def rejected(self, app_id: str | None, code: str, fields: Sequence[str]) -> None:
        """One event refused; *app_id* only when it was itself valid."""
        with self._lock:
            app = INVALID_APP if app_id is None else self._app(app_id)
            self._add("rejected", (app, code))
            for field in fields:
                self._add("field_errors", (field if field in _KNOWN_FIELDS else OTHER_FIELD,))

    def written(self, events: Sequence[StoredEvent], result: WriteResult) -> None:
        """One successful storage write of *events*."""
        per_app: collections.Counter[str] = collections.Counter()
        unknown: collections.Counter[str] = collections.Counter()
        truncated: collections.Counter[str] = collections.Counter()
        for stored in events:
            per_app[stored.event.app_id] += 1
            if not stored.action_known:
                unknown[stored.event.app_id] += 1
            if stored.truncated:
                truncated[stored.event.app_id] += 1
        duplicates = _duplicates_per_app(events, result, per_app)
        with self._lock:
            for app_id, count in per_app.items():
                label = (self._app(app_id),)
                self._add("accepted", label, count)
                self._add("unknown_actions", label, unknown[app_id])
                self._add("truncated", label, truncated[app_id])
            for app_id, count in duplicates.items():
                label = (app_id if app_id == UNATTRIBUTED else self._app(app_id),)
                self._add("duplicates", label, count)

    def failed(self, events: Sequence[StoredEvent]) -> None:
        """A storage write of *events* failed."""
        per_app = collections.Counter(stored.event.app_id for stored in events)
        with self._lock:
            for app_id, count in per_app.items():
                self._add("failed", (self._app(app_id),), count)

    # -- reading ---------------------------------------------------------------------------

    def add_sink(self, sink: MetricsSink) -> None:
        """Send every later increment to *sink*, after the counts so far."""
        with self._lock:
            for counter, counts in self._counts.items():
                for labels, amount in counts.items():
                    sink.inc(counter, labels, amount)
            self._sinks.append(sink)

    def snapshot(self) -> IntakeSnapshot:
        """The counters now."""
        with self._lock:
            flat = {name: dict(counts) for name, counts in self._counts.items()}
        return IntakeSnapshot(
            requests={labels[0]: n for labels, n in flat["requests"].items()},
            accepted={labels[0]: n for labels, n in flat["accepted"].items()},
            duplicates={labels[0]: n for labels, n in flat["duplicates"].items()},
            unknown_actions={labels[0]: n for labels, n in flat["unknown_actions"].items()},
            rejected={(labels[0], labels[1]): n for labels, n in flat["rejected"].items()},
            failed={labels[0]: n for labels, n in flat["failed"].items()},
            field_errors={labels[0]: n for labels, n in flat["field_errors"].items()},
            truncated={labels[0]: n for labels, n in flat["truncated"].items()},
        )


def _duplicates_per_app(
    events: Sequence[StoredEvent], result: WriteResult, per_app: Mapping[str, int]
) -> Mapping[str, int]:
    if result.duplicates == 0:
        return {}
    if len(per_app) == 1:  # the usual case: one app per write, nothing to attribute
        return {next(iter(per_app)): result.duplicates}
    indexes = result.duplicate_indexes
    if indexes is None or len(indexes) != result.duplicates:
        return {UNATTRIBUTED: result.duplicates}
    return collections.Counter(events[index].event.app_id for index in indexes)
