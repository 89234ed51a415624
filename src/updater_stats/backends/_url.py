"""Storage URLs: a lazy table of schemes, so a missing driver names its extra."""

from __future__ import annotations

import importlib
from collections.abc import Collection
from importlib.metadata import EntryPoint, entry_points
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .._storage import ReportSource, StorageBackend
from ..exceptions import ConfigurationError

# Scheme -> "module:factory". Modules are imported only when their scheme is
# used, so a missing driver for one backend never breaks another.
_SCHEMES: dict[str, tuple[str, str | None]] = {
    "sqlite": ("updater_stats.backends.sqlite:SQLiteBackend.from_url", None),
    "memory": ("updater_stats.backends.memory:MemoryBackend.from_url", None),
    "postgresql": ("updater_stats.backends.postgres:PostgresBackend.from_url", "postgres"),
    "postgres": ("updater_stats.backends.postgres:PostgresBackend.from_url", "postgres"),
    "clickhouse": ("updater_stats.backends.clickhouse:ClickHouseBackend.from_url", "clickhouse"),
    "clickhouses": ("updater_stats.backends.clickhouse:ClickHouseBackend.from_url", "clickhouse"),
    "chdb": ("updater_stats.backends.clickhouse:ClickHouseBackend.from_url", "chdb"),
}


# Scheme -> "module:factory" of a read side that opens a store without writing to it (no
# file or table created), for schemes whose backend would create one. Others are opened
# as backends and asked for their read side (server backends connect lazily).
_READERS: dict[str, str] = {"sqlite": "updater_stats.backends.sqlite:SQLiteReports.from_url"}


#: The entry-point group in which an installed package registers a storage URL scheme of its
#: own: the entry point's name is the scheme, its object a callable taking the whole URL and
#: returning the backend (a class's ``from_url``, say). Built-in schemes cannot be replaced.
URL_SCHEMES_GROUP = "updater_stats.backends"


def _registered() -> dict[str, EntryPoint]:
    """The schemes installed packages register, by lower-case name."""
    return {point.name.lower(): point for point in entry_points(group=URL_SCHEMES_GROUP)}


def backend_from_url(url: str) -> StorageBackend:
    """The backend a storage URL names.

    - ``sqlite:///relative/path.sqlite3``, ``sqlite:////absolute/path.sqlite3``
    - ``sqlite://:memory:`` (or ``sqlite://``): SQLite in memory
    - ``memory://``: the pure-Python `MemoryBackend`
    - ``postgresql://user:password@host:5432/database?schema=updater_stats``
      (or ``postgres://``): `PostgresBackend`, extra ``postgres``
    - ``clickhouse://user:password@host:8123/database`` (``clickhouses://``
      for HTTPS): `ClickHouseBackend`, extra ``clickhouse``
    - ``chdb:///relative/folder``, ``chdb:////absolute/folder`` (``chdb://``: in memory):
      `ClickHouseBackend` on the in-process engine, extra ``chdb``
    - any scheme an installed package registers in the `URL_SCHEMES_GROUP` entry-point
      group: its factory is called with the whole URL (see "Write your own backend")

    Raises:
        ConfigurationError: for a URL whose scheme is unknown, malformed, or
            whose driver is not installed.
    """
    scheme = _scheme(url)
    if scheme not in _SCHEMES:
        return _registered_backend(scheme, url)
    target, extra = _SCHEMES[scheme]
    backend: StorageBackend = _load(target, scheme, extra)(url)
    return backend


def check_storage_url(url: str) -> None:
    """Raise `ConfigurationError` unless *url* names a built-in or registered scheme.

    Opens nothing and imports no driver: a setting can be checked where it is read (the
    environment, a command line), before a backend is built from it.
    """
    scheme = _scheme(url)
    if scheme in _SCHEMES or (scheme and scheme in _registered()):
        return
    raise _unknown(url, _registered())


def redacted_url(url: str) -> str:
    """*url* with its password, if any, as ``***``: for logs, messages and ``repr``."""
    if "@" not in url:
        return url
    try:
        password = urlsplit(url).password
    except ValueError:
        return url
    return url.replace(f":{password}@", ":***@", 1) if password else url


def _unknown(url: str, registered: Collection[str]) -> ConfigurationError:
    known = ", ".join(f"{name}://" for name in sorted({*_SCHEMES, *registered}))
    return ConfigurationError(
        f"unknown storage URL {redacted_url(url)!r}: expected one of {known}",
        code="unknown_storage_url",
    )


def reader_from_url(url: str) -> ReportSource | None:
    """A `ReportSource` that opens the store a URL names without creating or writing
    anything, for the schemes whose backend would create its store on opening (``sqlite:``);
    `None` for the others, which `updater_stats.reports.open_reports` opens as backends and
    asks for their read side."""
    scheme = _scheme(url)
    if scheme not in _READERS:
        return None
    source: ReportSource = _load(_READERS[scheme], scheme, _SCHEMES[scheme][1])(url)
    return source


def _scheme(url: str) -> str:
    return urlsplit(url).scheme.lower() if "://" in url else ""


def _load(target: str, scheme: str, extra: str | None) -> Any:
    """The object *target* (``module:qualified.name``) names, importing its module now."""
    module_name, _, qualname = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"{scheme}:// storage needs an extra: pip install 'updater-stats[{extra}]' ({exc})",
            code="missing_extra",
        ) from exc
    found: Any = module
    for part in qualname.split("."):
        found = getattr(found, part)
    return found


def _registered_backend(scheme: str, url: str) -> StorageBackend:
    """The backend of a scheme an installed package registers."""
    registered = _registered()
    point = registered.get(scheme) if scheme else None
    if point is None:
        raise _unknown(url, registered)
    try:
        factory: Any = point.load()
    except Exception as exc:
        raise ConfigurationError(
            f"{scheme}:// storage is registered by {point.value!r}, which failed to load: "
            f"{type(exc).__name__}: {exc}",
            code="missing_extra",
        ) from exc
    backend = factory(url)
    if not isinstance(backend, StorageBackend):
        raise ConfigurationError(
            f"{scheme}:// storage ({point.value}) gave {type(backend).__name__}, "
            "which has no write() and close(): not a StorageBackend",
            code="bad_storage_url",
        )
    return backend


def split_parameters(
    url: str, own: Collection[str]
) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """A storage URL's query parameters: those named in *own* (the backend's options), and
    the rest in order (for the driver), blank values kept."""
    ours: dict[str, str] = {}
    theirs: list[tuple[str, str]] = []
    for name, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if name in own:
            ours[name] = value
        else:
            theirs.append((name, value))
    return ours, theirs


def url_path(url: str) -> str:
    """The percent-decoded part of a URL after ``scheme://``, query and fragment removed."""
    rest = url.split("://", 1)[1]
    return unquote(rest.split("?", 1)[0].split("#", 1)[0])
