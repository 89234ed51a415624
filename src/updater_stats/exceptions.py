"""Every error updater-stats raises, rooted at `UpdaterStatsError`.

Each instance knows the HTTP answer it stands for: `status_code` and the JSON
`body` to send. A route catches `UpdaterStatsError` once and sends both.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "BackendError",
    "ConfigurationError",
    "InvalidBodyError",
    "InvalidEventError",
    "PayloadTooLargeError",
    "UpdaterStatsError",
]


class UpdaterStatsError(Exception):
    """Base of every updater-stats error.

    Attributes:
        code: A stable machine-readable error code, e.g. ``"invalid_json"``.
        message: A sentence for people.
        status_code: The HTTP status to answer with.
        body: The JSON object to answer with: ``{"error", "message"}`` plus
            ``"moreInfo"`` where there are details.
    """

    status_code: ClassVar[int] = 500
    default_code: ClassVar[str] = "internal_error"

    def __init__(
        self, message: str, *, code: str | None = None, more_info: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.more_info = more_info

    @property
    def body(self) -> dict[str, Any]:
        """The JSON answer: ``error`` (the `code`), ``message``, and ``moreInfo`` when set."""
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.more_info is not None:
            body["moreInfo"] = self.more_info
        return body


class ConfigurationError(UpdaterStatsError):
    """updater-stats was set up wrongly: an unknown storage URL, a missing extra, a bad option."""

    default_code = "configuration_error"


class InvalidBodyError(UpdaterStatsError):
    """The request body as a whole is unusable: not UTF-8, not JSON, bad gzip, a JSON scalar.

    Answered with 400: devices drop such a body, which is right, since
    sending it again cannot make it valid.
    """

    status_code = 400
    default_code = "invalid_body"


class InvalidEventError(UpdaterStatsError):
    """A single-event body failed validation.

    ``moreInfo`` lists every problem as ``"msg @ $.field"`` in ``errors`` and
    the offending wire field names in ``fields``.
    """

    status_code = 400
    default_code = "invalid_event"

    def __init__(self, errors: list[str], fields: list[str]) -> None:
        super().__init__(
            "; ".join(errors), more_info={"errors": list(errors), "fields": list(fields)}
        )
        self.errors = list(errors)
        self.fields = list(fields)


class PayloadTooLargeError(UpdaterStatsError):
    """The body, its decompressed form, or the batch is over a configured cap (413)."""

    status_code = 413
    default_code = "payload_too_large"


class BackendError(UpdaterStatsError):
    """Storage failed or is unavailable; answered with 503 so devices keep the events and retry.

    Backends raise it with ``raise BackendError(...) from exc`` around driver
    errors. Any other exception a backend raises is wrapped in one.
    """

    status_code = 503
    default_code = "storage_unavailable"

    #: What the public endpoint says. The detail (`message`, the chained driver error) goes
    #: to the logs: it names files, hosts and drivers, which are nobody else's business.
    public_message: ClassVar[str] = (
        "storage is unavailable: the events were not stored, send them again"
    )

    @property
    def body(self) -> dict[str, Any]:
        """The JSON answer: ``error`` (the `code`) and `public_message`, never the detail."""
        return {"error": self.code, "message": self.public_message}
