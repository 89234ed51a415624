"""`AppSettings`, what the ASGI and WSGI apps are built from, and the one reader of the environment.

Every ``UPDATER_STATS_*`` variable is read here, and only here: `AppSettings.from_env` for the
apps, and the small readers below for the default collector and the dashboard. The two
pseudonymisation variables are parsed by `Privacy.from_env`, which `from_env` calls with the
same mapping: `Privacy` sits below this module, so its parser stays with it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ._batching import DEFAULT_DEADLINE
from ._policy import Policy
from .backends import StorageBackend, check_storage_url, redacted_url
from .exceptions import ConfigurationError
from .privacy import Privacy

if TYPE_CHECKING:
    # Only named: the collector reads the environment through this module, not the other way.
    from ._collector import Collector

__all__ = [
    "ALLOWED_APPS_ENV_VAR",
    "BYTES_IN_FLIGHT_ENV_VAR",
    "DASHBOARD_ENV_VAR",
    "DEADLINE_ENV_VAR",
    "DEFAULT_BYTES_IN_FLIGHT",
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_STORAGE_URL",
    "HEADER_TIMEOUT_ENV_VAR",
    "METRICS_ENV_VAR",
    "PATH_ENV_VAR",
    "STORAGE_ENV_VAR",
    "TOKEN_ENV_VAR",
    "AppSettings",
]

#: Read by the default collector when `configure` was not called.
STORAGE_ENV_VAR = "UPDATER_STATS_STORAGE"
#: A SQLite file in the working directory.
DEFAULT_STORAGE_URL = "sqlite:///updater_stats.sqlite3"
#: Seconds from reading a body to answering it, for collectors built from the environment.
DEADLINE_ENV_VAR = "UPDATER_STATS_DEADLINE"
#: The stats path `create_app_from_env` serves, for servers that import the app by name.
PATH_ENV_VAR = "UPDATER_STATS_PATH"
#: Comma-separated ``app_id`` values the apps built from the environment accept.
ALLOWED_APPS_ENV_VAR = "UPDATER_STATS_ALLOWED_APPS"
#: ``1``: the apps built from the environment serve ``/metrics`` (``serve --metrics`` sets it).
METRICS_ENV_VAR = "UPDATER_STATS_METRICS"
#: `create_app_from_env`'s `max_bytes_in_flight`, in bytes.
BYTES_IN_FLIGHT_ENV_VAR = "UPDATER_STATS_MAX_BYTES_IN_FLIGHT"
#: The request bytes the app holds at once unless told otherwise: 64 MiB.
DEFAULT_BYTES_IN_FLIGHT = 64 * 1024 * 1024
#: ``1``: `create_server_app_from_env` serves the dashboard too (set by ``serve --dashboard``).
DASHBOARD_ENV_VAR = "UPDATER_STATS_DASHBOARD"
#: The dashboard token, read by `create_dashboard` and ``serve --dashboard``.
TOKEN_ENV_VAR = "UPDATER_STATS_DASHBOARD_TOKEN"  # noqa: S105 - a variable name, not a secret
#: Seconds ``serve``'s connections have to send a request's headers (``--header-timeout``).
HEADER_TIMEOUT_ENV_VAR = "UPDATER_STATS_HEADER_TIMEOUT"
#: Devices give up after 10 seconds (Android).
DEFAULT_HEADER_TIMEOUT = 10.0

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def _bad(message: str) -> ConfigurationError:
    return ConfigurationError(message, code="bad_setting")


def _normal_path(path: str) -> str:
    # Anything else is left for the validator, which names the field.
    return "/" + path.strip("/") if isinstance(path, str) else path


def _is_path(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str):
        raise _bad(f"{attribute.name} must be a path such as '/stats', not {value!r}")


def _seconds(value: float) -> float:
    # A whole number of seconds is a number of seconds; anything else meets the validator.
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if is_number else value


def _positive_seconds(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (isinstance(value, float) and value > 0 and math.isfinite(value)):
        raise _bad(f"{attribute.name} must be a positive number of seconds, not {value!r}")


def _positive_bytes(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        raise _bad(f"{attribute.name} must be a whole number of bytes, 1 or more, not {value!r}")


def _is_bool(_instance: object, attribute: attrs.Attribute[bool], value: bool) -> None:
    if not isinstance(value, bool):
        raise _bad(f"{attribute.name} must be True or False, not {value!r}")


def _policy(policy: Policy | None) -> Policy:
    return Policy() if policy is None else policy


def _is_policy(_instance: object, attribute: attrs.Attribute[Policy], value: Policy) -> None:
    if not isinstance(value, Policy):
        raise _bad(f"{attribute.name} must be a Policy, not {type(value).__name__}")


def _is_privacy(
    _instance: object, attribute: attrs.Attribute[Privacy | None], value: Privacy | None
) -> None:
    if value is not None and not isinstance(value, Privacy):
        raise _bad(f"{attribute.name} must be a Privacy or None, not {type(value).__name__}")


def _storage_repr(storage: object) -> str:
    """A storage URL's password stays out of ``repr``, as the backends keep theirs out."""
    return repr(redacted_url(storage) if isinstance(storage, str) else storage)


@attrs.frozen(kw_only=True)
class AppSettings:
    """Everything the ASGI and WSGI apps are built from: one value for both.

    Build it in code, or from the environment with `from_env`, and pass it to
    `asgi.create_app` or `wsgi.create_app` as ``settings=``; the keyword arguments
    those take are these fields, one by one. Values are checked here, when the
    settings are made, not when the first request comes.

    Attributes:
        storage: A storage URL, a `StorageBackend`, a `Collector`, or `None`: the
            ``UPDATER_STATS_STORAGE`` environment variable when the app is built,
            else ``sqlite:///updater_stats.sqlite3``. A `Collector` keeps its own
            policy, privacy and deadline, and stays open when the app closes.
        path: The stats path devices POST to (and operators GET); ``/`` is always served too.
        ready_path: Answers 200 when storage answers, 503 otherwise (the reason is logged).
        policy: Validation and size limits (`None`: the defaults).
        body_timeout: Seconds a client has to send its whole body; a slower one gets 408,
            which devices retry. ASGI app only: under WSGI, the server's own timeout does it.
        privacy: Pseudonymise ``device_id`` / ``custom_id`` (see `Privacy`); `None` stores
            them as sent.
        metrics: Serve the intake counters as Prometheus text on *metrics_path* (the
            ``metrics`` extra); the path is public, like the stats path.
        metrics_path: Where the Prometheus text is served when *metrics* is on.
        max_bytes_in_flight: Request bytes held at once by bodies over 64 KiB (see
            `StatsASGIApp`). ASGI app only.
        deadline: Seconds from a body's arrival to its answer, 200 or 503 (see `Collector`).

    Raises:
        ConfigurationError: a value of the wrong kind or out of range, or two paths
            that are the same; the message names the field.
    """

    storage: str | StorageBackend | Collector | None = attrs.field(default=None, repr=_storage_repr)
    path: str = attrs.field(default="/stats", converter=_normal_path, validator=_is_path)
    ready_path: str = attrs.field(default="/ready", converter=_normal_path, validator=_is_path)
    policy: Policy = attrs.field(factory=Policy, converter=_policy, validator=_is_policy)
    body_timeout: float = attrs.field(default=30.0, converter=_seconds, validator=_positive_seconds)
    privacy: Privacy | None = attrs.field(default=None, validator=_is_privacy)
    metrics: bool = attrs.field(default=False, validator=_is_bool)
    metrics_path: str = attrs.field(default="/metrics", converter=_normal_path, validator=_is_path)
    max_bytes_in_flight: int = attrs.field(
        default=DEFAULT_BYTES_IN_FLIGHT, validator=_positive_bytes
    )
    deadline: float = attrs.field(
        default=DEFAULT_DEADLINE, converter=_seconds, validator=_positive_seconds
    )

    def __attrs_post_init__(self) -> None:
        # A path that shadows the stats path would turn the devices' POSTs into 405s.
        if self.ready_path in {self.path, "/"}:
            raise _bad(f"ready_path {self.ready_path!r} is where devices POST")
        if self.metrics:
            if self.metrics_path in {self.path, "/"}:
                raise _bad(f"metrics_path {self.metrics_path!r} is where devices POST")
            if self.metrics_path == self.ready_path:
                raise _bad(f"metrics_path {self.metrics_path!r} is the ready_path")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AppSettings:
        """The settings the environment asks for (*environ*, default `os.environ`).

        What ``updater-stats serve`` hands its worker processes, and what
        `create_app_from_env` builds its app from. Unset or empty variables mean
        the default:

        - ``UPDATER_STATS_STORAGE``: the storage URL, whose scheme must be one that
          `backend_from_url` knows (nothing is opened yet);
        - ``UPDATER_STATS_PATH``: the stats path;
        - ``UPDATER_STATS_ALLOWED_APPS``: comma-separated ``app_id`` values (the policy's
          ``allowed_app_ids``); unset accepts any app;
        - ``UPDATER_STATS_PSEUDONYM_SECRET`` and ``UPDATER_STATS_CUSTOM_ID``: the privacy
          (see `Privacy.from_env`);
        - ``UPDATER_STATS_METRICS``: ``1`` (or ``true``, ``yes``, ``on``) serves ``/metrics``;
        - ``UPDATER_STATS_MAX_BYTES_IN_FLIGHT``: bytes;
        - ``UPDATER_STATS_DEADLINE``: seconds.

        Raises:
            ConfigurationError: a variable holds a value it cannot mean; the message names it.
        """
        env = os.environ if environ is None else environ
        path = env.get(PATH_ENV_VAR) or "/stats"
        storage = storage_from_env(env)
        try:
            check_storage_url(storage)
        except ConfigurationError as error:
            raise _bad(f"{STORAGE_ENV_VAR}: {error.message}") from None
        values: dict[str, Any] = {
            "storage": storage,
            "policy": Policy(allowed_app_ids=_allowed_apps(env) or None),
            "privacy": Privacy.from_env(env),
            "metrics": _flag(env, METRICS_ENV_VAR),
            "max_bytes_in_flight": _bytes_in_flight(env),
            "deadline": deadline_from_env(env),
        }
        try:
            return cls(path=path, **values)
        except ConfigurationError as error:
            # Every other value was checked above: the path is what clashes.
            raise _bad(f"{PATH_ENV_VAR}={path!r}: {error.message}") from None


def merged(
    settings: AppSettings | None,
    storage: str | StorageBackend | Collector | None,
    options: Mapping[str, Any],
) -> AppSettings:
    """*settings* (default: `AppSettings()`) with *storage*, when given, and *options* on top.

    What the apps' constructors and ``create_app`` do with their arguments, in one place.

    Raises:
        TypeError: *settings* is no `AppSettings`, or an option is no field of it.
        ConfigurationError: a value is bad.
    """
    if settings is None:
        settings = AppSettings()
    elif not isinstance(settings, AppSettings):
        raise TypeError(f"settings must be an AppSettings, not {type(settings).__name__}")
    fields = attrs.fields_dict(AppSettings)
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise TypeError(
            f"unexpected keyword argument {unknown[0]!r}: the apps take "
            + ", ".join(name for name in fields if name != "storage")
            + " (the fields of AppSettings)"
        )
    changes = dict(options)
    if storage is not None:
        changes["storage"] = storage
    return attrs.evolve(settings, **changes) if changes else settings


def worker_environ(settings: AppSettings) -> dict[str, str]:
    """The variables `AppSettings.from_env` reads back as *settings*: how ``serve`` hands its
    settings to worker processes.

    Only what ``serve`` sets has a variable: the storage URL, the path, the policy's
    allow-list, metrics, the body budget and the deadline. The privacy variables are
    inherited as they are.

    Raises:
        ConfigurationError: the storage is an object, not a URL.
    """
    if not isinstance(settings.storage, (str, type(None))):
        raise _bad("only a storage URL can be handed to another process, not an object")
    allowed = settings.policy.allowed_app_ids
    return {
        STORAGE_ENV_VAR: settings.storage or "",
        PATH_ENV_VAR: settings.path,
        ALLOWED_APPS_ENV_VAR: ",".join(sorted(allowed or ())),
        METRICS_ENV_VAR: "1" if settings.metrics else "",
        BYTES_IN_FLIGHT_ENV_VAR: str(settings.max_bytes_in_flight),
        DEADLINE_ENV_VAR: repr(settings.deadline),
    }


# -- One reader per variable: for `from_env`, and for those who need one setting alone ----------


def _env(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def storage_from_env(environ: Mapping[str, str] | None = None) -> str:
    """``UPDATER_STATS_STORAGE``, or `DEFAULT_STORAGE_URL` when it is unset or empty."""
    return _env(environ).get(STORAGE_ENV_VAR) or DEFAULT_STORAGE_URL


def deadline_from_env(environ: Mapping[str, str] | None = None) -> float:
    """``UPDATER_STATS_DEADLINE`` in seconds, or `DEFAULT_DEADLINE` when unset.

    Raises:
        ConfigurationError: the value is not a positive number of seconds.
    """
    raw = _env(environ).get(DEADLINE_ENV_VAR, "").strip()
    if not raw:
        return DEFAULT_DEADLINE
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ConfigurationError(
            f"{DEADLINE_ENV_VAR} must be a positive number of seconds, not {raw!r}",
            code="bad_deadline",
        )
    return seconds


def header_timeout_from_env(environ: Mapping[str, str] | None = None) -> float:
    """``UPDATER_STATS_HEADER_TIMEOUT`` in seconds, as ``serve`` hands it to its workers;
    `DEFAULT_HEADER_TIMEOUT` when unset or not a positive number (``serve`` checked it)."""
    raw = _env(environ).get(HEADER_TIMEOUT_ENV_VAR, "").strip()
    try:
        seconds = float(raw)
    except ValueError:
        return DEFAULT_HEADER_TIMEOUT
    return seconds if seconds > 0 and math.isfinite(seconds) else DEFAULT_HEADER_TIMEOUT


def dashboard_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``UPDATER_STATS_DASHBOARD`` asks for the dashboard.

    Raises:
        ConfigurationError: the value is not one of ``1``, ``0``, ``true``, ``false``, ...
    """
    return _flag(_env(environ), DASHBOARD_ENV_VAR)


def dashboard_token_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """``UPDATER_STATS_DASHBOARD_TOKEN`` without surrounding blanks; `None` when unset or blank."""
    return _env(environ).get(TOKEN_ENV_VAR, "").strip() or None


def _flag(environ: Mapping[str, str], name: str) -> bool:
    raw = environ.get(name, "")
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    # A typo must not silently mean "off" (or "on").
    raise _bad(f"{name} must be 1 or 0 (or true/false, yes/no, on/off), not {raw!r}")


def _allowed_apps(environ: Mapping[str, str]) -> frozenset[str]:
    raw = environ.get(ALLOWED_APPS_ENV_VAR, "")
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


def _bytes_in_flight(environ: Mapping[str, str]) -> int:
    raw = environ.get(BYTES_IN_FLIGHT_ENV_VAR, "").strip()
    if not raw:
        return DEFAULT_BYTES_IN_FLIGHT
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise _bad(
            f"{BYTES_IN_FLIGHT_ENV_VAR} must be a whole number of bytes, 1 or more, not {raw!r}"
        )
    return value
