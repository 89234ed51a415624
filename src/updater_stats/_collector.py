"""`Collector`: request body in, answer out; and the process-wide default behind `handle()`."""

from __future__ import annotations

import asyncio
import atexit
import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from typing_extensions import Self

from ._batching import DEFAULT_DEADLINE, Batching
from ._decode import decode_body
from ._lifecycle import forget_events, purge_events
from ._logthrottle import LogThrottle
from ._metrics import IntakeMetrics
from ._models import Response, StoredEvent, WriteResult
from ._policy import Policy
from ._record import Recorder
from ._settings import (
    DEADLINE_ENV_VAR,
    DEFAULT_STORAGE_URL,
    STORAGE_ENV_VAR,
    deadline_from_env,
    storage_from_env,
)
from ._wire import Validator
from ._writer import BatchWriter
from .backends import (
    StorageBackend,
    SupportsBatching,
    SupportsDeadline,
    SupportsPing,
    backend_from_url,
)
from .exceptions import (
    BackendError,
    InvalidBodyError,
    InvalidEventError,
    PayloadTooLargeError,
    UpdaterStatsError,
)
from .privacy import Privacy

__all__ = [
    "DEADLINE_ENV_VAR",
    "DEFAULT_DEADLINE",
    "DEFAULT_STORAGE_URL",
    "STORAGE_ENV_VAR",
    "Collector",
    "ahandle",
    "arespond",
    "configure",
    "forget",
    "handle",
    "purge",
    "respond",
]

_OK: dict[str, Any] = {"status": "ok"}

# `ahandle` decodes and validates plain bodies up to this size on the event loop (a 200-event
# queue is about 80 KiB, a few milliseconds); larger or gzip-compressed bodies are decoded in a
# worker thread. A thread per body cost a hop, a future and a contest for the interpreter lock
# with the writer thread: 4 % more CPU and half again the thread switches per 200-event body.
_INLINE_BODY_BYTES = 512 * 1024
_GZIP_MAGIC = b"\x1f\x8b"

log = logging.getLogger("updater_stats")
# Rejected input, one line per event or body: field names and codes, never the body, never an id
# as sent. INFO: a public endpoint gets junk, and operators choose whether to see it.
intake_log = logging.getLogger("updater_stats.intake")


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _positive_seconds(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{attribute.name} must be a positive number of seconds, not {value!r}")


@attrs.define
class Collector:
    """Turns request bodies into stored events and the answers devices expect.

    Holds no global state: create one per app (or use the module-level
    `handle`, which uses a default one).

    Concurrent requests share storage writes (group commit, see `Batching`):
    each caller still gets its answer only once its own events are committed.
    Every request is answered within *deadline* seconds of `handle` being
    called, whatever storage is doing: past it, the answer is a 503 (code
    ``storage_timeout``) and events not yet being written are never written.

    Args:
        backend: Where events go.
        policy: Validation and size limits.
        clock: The server clock (UTC); tests may pass their own.
        batching: How concurrent requests are grouped into writes; by default
            the backend's ``batching`` attribute, else `Batching()`.
        privacy: Pseudonymise ``device_id`` / ``custom_id`` before storage (see `Privacy`);
            `None` stores them as sent.
        metrics: The intake counters; a new `IntakeMetrics` by default.
        deadline: Seconds from the call to `handle` (or `ahandle`), made as soon as
            the body is read, to its answer. Devices give up after 10 s (Android) or
            20 s (iOS), so keep it well under 10. Backends that support it
            (`SupportsDeadline`) stop waiting on storage before it.
    """

    backend: StorageBackend
    policy: Policy = attrs.field(factory=Policy)
    _clock: Callable[[], dt.datetime] = attrs.field(default=_utc_now, alias="clock")
    batching: Batching | None = attrs.field(default=None, kw_only=True)
    privacy: Privacy | None = attrs.field(default=None, kw_only=True)
    metrics: IntakeMetrics = attrs.field(factory=IntakeMetrics, kw_only=True)
    deadline: float = attrs.field(
        default=DEFAULT_DEADLINE,
        kw_only=True,
        converter=float,
        validator=_positive_seconds,
        on_setattr=attrs.setters.frozen,  # the writer holds it: set once, here
    )
    _writer: BatchWriter = attrs.field(init=False, repr=False)
    # Built once from the policy (and privacy): nothing is looked up per event.
    _validator: Validator = attrs.field(init=False, repr=False)
    _recorder: Recorder = attrs.field(init=False, repr=False)
    _log_throttle: LogThrottle = attrs.field(factory=LogThrottle, init=False, repr=False, eq=False)
    _write_by: Callable[[Sequence[StoredEvent], float], WriteResult] | None = attrs.field(
        init=False, repr=False
    )

    @_validator.default
    def _make_validator(self) -> Validator:
        return Validator(self.policy)

    @_recorder.default
    def _make_recorder(self) -> Recorder:
        return Recorder(self.policy, self.privacy)

    @_write_by.default
    def _find_write_by(self) -> Callable[[Sequence[StoredEvent], float], WriteResult] | None:
        # Once, not per write: a runtime-checkable isinstance costs microseconds.
        backend = self.backend
        return backend.write_by if isinstance(backend, SupportsDeadline) else None

    @_writer.default
    def _make_writer(self) -> BatchWriter:
        batching = self.batching
        if batching is None:
            backend = self.backend
            batching = backend.batching if isinstance(backend, SupportsBatching) else Batching()
        return BatchWriter(self._write_and_count, batching, deadline=self.deadline)

    def _write_and_count(self, events: Sequence[StoredEvent], write_by: float) -> WriteResult:
        """The backend's write, as the writer calls it, with its outcome counted per app.

        A backend that supports it is told when the write must be done by.
        """
        try:
            if self._write_by is not None:
                result = self._write_by(events, write_by)
            else:
                result = self.backend.write(events)
        except Exception:
            self.metrics.failed(events)
            raise
        # The writer refuses a result that does not account for every event: count only good ones.
        if (
            isinstance(result, WriteResult)
            and result.inserted >= 0
            and result.duplicates >= 0
            and result.inserted + result.duplicates == len(events)
        ):
            self.metrics.written(events, result)
        else:
            self.metrics.failed(events)
        return result

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        policy: Policy | None = None,
        privacy: Privacy | None = None,
        deadline: float = DEFAULT_DEADLINE,
    ) -> Collector:
        """A collector over the backend that *url* names (see `backend_from_url`)."""
        return cls(
            backend_from_url(url), policy=policy or Policy(), privacy=privacy, deadline=deadline
        )

    def handle(self, body: bytes) -> dict[str, Any]:
        """Validate and store one request body; return the JSON body of a 200 answer.

        The answer is returned only once the accepted events are stored, and
        within `deadline` seconds of this call.

        Raises:
            UpdaterStatsError: for every other answer, with `status_code` and `body`:
                400 for a body that is not usable JSON or a single invalid event,
                413 over a size cap, 503 when storage fails or the deadline passes.
        """
        since = time.monotonic()  # the deadline counts from here: the body has been read
        try:
            events, answer = self._prepare(body)
            self._writer.write(events, since=since)
        except UpdaterStatsError as error:
            self._refused(error)
            raise
        self.metrics.request("ok")
        return answer

    async def ahandle(self, body: bytes) -> dict[str, Any]:
        """`handle` for async frameworks: storage runs in the writer thread, not on the event loop.

        While its events are written the coroutine waits without holding a
        thread, so thousands of requests can share one storage write.
        """
        since = time.monotonic()  # the deadline counts from here: the body has been read
        try:
            if isinstance(body, (bytes, bytearray)) and (
                len(body) <= _INLINE_BODY_BYTES and not body.startswith(_GZIP_MAGIC)
            ):
                events, answer = self._prepare(body)
            else:
                events, answer = await asyncio.to_thread(self._prepare, body)
            await self._writer.awrite(events, since=since)
        except UpdaterStatsError as error:
            self._refused(error)
            raise
        self.metrics.request("ok")
        return answer

    def _refused(self, error: UpdaterStatsError) -> None:
        """Count a refused request; log what was wrong with a body (events log themselves)."""
        self.metrics.request(error.code)
        if isinstance(error, (InvalidBodyError, PayloadTooLargeError)):
            held = self._log_throttle.admit(("body", error.code))
            if held is not None:
                intake_log.info(
                    "rejected body: code=%s" + (f" held_back={held}" if held else ""),
                    error.code,
                    extra={"updater_stats": {"code": error.code, "held_back": held}},
                )

    def _rejected(self, item: Any, error: InvalidEventError, index: int | None) -> None:
        """Count and log one event refused by validation: field names and code, nothing sent."""
        app_id = item.get("app_id") if type(item) is dict else None
        if not isinstance(app_id, str) or "app_id" in error.fields:
            app_id = None  # a made-up app_id must not become a metrics label
        self.metrics.rejected(app_id, error.code, error.fields)
        if not intake_log.isEnabledFor(logging.INFO):
            return
        held = self._log_throttle.admit(("event", error.code, tuple(error.fields)))
        if held is None:
            return  # this reason was logged less than LOG_INTERVAL ago
        details: dict[str, Any] = {
            "code": error.code,
            "fields": list(error.fields),
            "app_id": app_id,
            "index": index,
            "held_back": held,
        }
        raw_device = item.get("device_id") if type(item) is dict else None
        privacy = self.privacy
        if (
            privacy is not None
            and privacy.device_id == "hash"
            and isinstance(raw_device, str)
            and "device_id" not in error.fields
        ):
            # Only the pseudonym, which is what storage holds: never the id as sent.
            details["device"] = privacy.device_pseudonym(raw_device)
        intake_log.info(
            "rejected event: code=%s app_id=%s fields=%s index=%s"
            + (f" held_back={held}" if held else ""),
            error.code,
            app_id,
            ",".join(error.fields),
            index,
            extra={"updater_stats": details},
        )

    def respond(self, body: bytes) -> Response:
        """`handle`, with every outcome as a `Response`: the few lines of a route, done once.

        Only programming errors (a body that is not bytes) still raise.
        """
        try:
            return Response(200, self.handle(body))
        except UpdaterStatsError as error:
            return Response(error.status_code, error.body)

    async def arespond(self, body: bytes) -> Response:
        """`respond` for async frameworks: storage runs in a worker thread."""
        try:
            return Response(200, await self.ahandle(body))
        except UpdaterStatsError as error:
            return Response(error.status_code, error.body)

    def _prepare(self, body: bytes) -> tuple[list[StoredEvent], dict[str, Any]]:
        """Decode and validate: the events to store, and the answer once they are stored."""
        if not isinstance(body, (bytes, bytearray, memoryview)):
            msg = f"handle() takes the raw request body as bytes, not {type(body).__name__}"
            raise TypeError(msg)
        payload = decode_body(bytes(body), self.policy.max_body_bytes)
        received_at = self._clock()
        if type(payload) is dict:
            outcome = self._validator.check(payload)
            if isinstance(outcome, InvalidEventError):
                self._rejected(payload, outcome, None)
                raise outcome
            return [self._recorder.record(*outcome, received_at)], dict(_OK)
        if type(payload) is list:
            return self._prepare_batch(payload, received_at)
        raise InvalidBodyError(
            "the body must be an event object or an array of events",
            code="invalid_body",
        )

    def _prepare_batch(
        self, items: list[Any], received_at: dt.datetime
    ) -> tuple[list[StoredEvent], dict[str, Any]]:
        if len(items) > self.policy.max_batch_events:
            raise PayloadTooLargeError(
                f"a batch holds at most {self.policy.max_batch_events} events, got {len(items)}",
                code="batch_too_large",
            )
        results: list[dict[str, Any]] = []
        accepted: list[StoredEvent] = []
        record = self._recorder.record
        for index, (item, outcome) in enumerate(
            zip(items, self._validator.check_all(items), strict=True)
        ):
            if isinstance(outcome, InvalidEventError):
                self._rejected(item, outcome, index)
                results.append({"status": "error", "index": index, **outcome.body})
            else:
                accepted.append(record(outcome[0], outcome[1], received_at))
                results.append({"status": "ok", "index": index})
        return accepted, {"status": "ok", "results": results}

    def ping(self) -> None:
        """Raise `BackendError` unless storage answers; for readiness checks.

        A backend without ``ping()`` (`SupportsPing`) is taken as ready.
        """
        backend = self.backend
        if not isinstance(backend, SupportsPing):
            return
        try:
            backend.ping()
        except BackendError:
            raise
        except Exception as exc:
            raise BackendError(f"storage does not answer: {type(exc).__name__}: {exc}") from exc

    def forget(self, *, device_id: str | None = None, custom_id: str | None = None) -> int:
        """Erase every stored event of a device and/or a user; return how many were deleted.

        Takes the ids as devices send them; with pseudonymisation on, their
        pseudonyms are erased too (and the ids as sent, stored before it was on).
        Events still waiting to be written are written first, so none escapes.

        Raises:
            ConfigurationError: the backend cannot erase (see `SupportsForget`).
            BackendError: storage failed.
        """
        self._writer.flush(self.deadline)
        return forget_events(
            self.backend, device_id=device_id, custom_id=custom_id, privacy=self.privacy
        )

    def purge(self, *, older_than: dt.timedelta | dt.datetime) -> int:
        """Delete every event received before *older_than*: a moment, or an age.

        Raises:
            ConfigurationError: the backend cannot purge (see `SupportsPurge`).
            BackendError: storage failed.
        """
        if isinstance(older_than, dt.timedelta):
            if older_than <= dt.timedelta(0):
                raise ValueError("older_than must be a positive age")
            older_than = self._clock() - older_than
        return purge_events(self.backend, older_than=older_than)

    def close(self) -> None:
        """Write what is queued, stop the writer, then close the backend."""
        self._writer.close()
        self.backend.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.close()


_default_lock = threading.Lock()
_default: Collector | None = None


def configure(
    storage: str | StorageBackend | None = None,
    *,
    policy: Policy | None = None,
    privacy: Privacy | None = None,
    deadline: float | None = None,
) -> Collector:
    """Set up the collector behind the module-level `handle` and return it.

    Args:
        storage: A backend object, or a storage URL. ``None`` reads the
            ``UPDATER_STATS_STORAGE`` environment variable, and falls back to
            ``sqlite:///updater_stats.sqlite3`` (a file in the working directory).
        policy: Validation and size limits.
        privacy: Pseudonymisation. ``None`` reads the environment (`Privacy.from_env`):
            nothing changes unless ``UPDATER_STATS_PSEUDONYM_SECRET`` or
            ``UPDATER_STATS_CUSTOM_ID`` is set.
        deadline: Seconds to answer each request in (see `Collector`). ``None`` reads
            ``UPDATER_STATS_DEADLINE``, and falls back to 5.

    A collector configured earlier is closed.
    """
    global _default
    if storage is None:
        storage = storage_from_env()
    if privacy is None:
        privacy = Privacy.from_env()
    if deadline is None:
        deadline = deadline_from_env()
    backend = backend_from_url(storage) if isinstance(storage, str) else storage
    collector = Collector(backend, policy=policy or Policy(), privacy=privacy, deadline=deadline)
    with _default_lock:
        previous, _default = _default, collector
    if previous is not None:
        previous.close()
    return collector


def _default_collector() -> Collector:
    global _default  # noqa: PLW0603
    collector = _default
    if collector is None:
        with _default_lock:
            if _default is None:
                _default = Collector.from_url(
                    storage_from_env(), privacy=Privacy.from_env(), deadline=deadline_from_env()
                )
            collector = _default
    return collector


def handle(body: bytes) -> dict[str, Any]:
    """`Collector.handle` on the default collector (see `configure`)."""
    return _default_collector().handle(body)


async def ahandle(body: bytes) -> dict[str, Any]:
    """`Collector.ahandle` on the default collector (see `configure`)."""
    return await _default_collector().ahandle(body)


def respond(body: bytes) -> Response:
    """`Collector.respond` on the default collector: a status code and a JSON body, never raises."""
    return _default_collector().respond(body)


async def arespond(body: bytes) -> Response:
    """`Collector.arespond` on the default collector."""
    return await _default_collector().arespond(body)


def forget(*, device_id: str | None = None, custom_id: str | None = None) -> int:
    """`Collector.forget` on the default collector: erase a device's or a user's events."""
    return _default_collector().forget(device_id=device_id, custom_id=custom_id)


def purge(*, older_than: dt.timedelta | dt.datetime) -> int:
    """`Collector.purge` on the default collector: delete events older than *older_than*."""
    return _default_collector().purge(older_than=older_than)


@atexit.register
def _close_default() -> None:
    global _default
    with _default_lock:
        collector, _default = _default, None
    if collector is not None:
        collector.close()
