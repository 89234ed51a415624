"""Storage URLs: a lazy table of schemes, so a missing driver names its extra."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from ..exceptions import ConfigurationError

if TYPE_CHECKING:
    from ._protocol import StorageBackend


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

    Raises:
        ConfigurationError: for a URL whose scheme is unknown, malformed, or
            whose driver is not installed.
    """
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    try:
        target, extra = _SCHEMES[scheme]
    except KeyError:
        known = ", ".join(f"{name}://" for name in sorted(_SCHEMES))
        raise ConfigurationError(
            f"unknown storage URL {url!r}: expected one of {known}", code="unknown_storage_url"
        ) from None
    module_name, _, qualname = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"{scheme}:// storage needs an extra: pip install 'updater-stats[{extra}]' ({exc})",
            code="missing_extra",
        ) from exc
    factory = module
    for part in qualname.split("."):
        factory = getattr(factory, part)
    backend: StorageBackend = factory(url)  # type: ignore[operator]
    return backend


def url_path(url: str) -> str:
    """The percent-decoded part of a URL after ``scheme://``, query and fragment removed."""
    rest = url.split("://", 1)[1]
    return unquote(rest.split("?", 1)[0].split("#", 1)[0])
