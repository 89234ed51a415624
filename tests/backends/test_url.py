from __future__ import annotations

from pathlib import Path

import pytest

from updater_stats import (
    ConfigurationError,
    MemoryBackend,
    SQLiteBackend,
    StorageBackend,
    backend_from_url,
)
from updater_stats.backends import _url


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///stats.sqlite3", "stats.sqlite3"),
        ("sqlite:///data/stats.sqlite3", "data/stats.sqlite3"),
        ("sqlite:////var/lib/stats.sqlite3", "/var/lib/stats.sqlite3"),
        ("sqlite:///with%20space.sqlite3", "with space.sqlite3"),
        ("sqlite://:memory:", ":memory:"),
        ("sqlite://", ":memory:"),
        ("SQLITE:///upper.sqlite3", "upper.sqlite3"),
    ],
)
def test_sqlite_urls(url, path):
    backend = backend_from_url(url)
    assert isinstance(backend, SQLiteBackend)
    assert backend.path == path


def test_memory_url():
    assert isinstance(backend_from_url("memory://"), MemoryBackend)


def test_built_in_backends_satisfy_the_protocol(tmp_path: Path):
    assert isinstance(SQLiteBackend(tmp_path / "x.sqlite3"), StorageBackend)
    assert isinstance(MemoryBackend(), StorageBackend)


@pytest.mark.parametrize(
    "url", ["mysql://localhost/db", "stats.sqlite3", "", "redis://", "://nothing"]
)
def test_unknown_schemes_are_a_configuration_error(url):
    with pytest.raises(ConfigurationError, match="unknown storage URL") as info:
        backend_from_url(url)
    assert info.value.code == "unknown_storage_url"
    assert "sqlite://" in info.value.message


def test_a_missing_driver_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(_url._SCHEMES, "fancy", ("updater_stats_no_such_module:Backend", "fancy"))

    with pytest.raises(ConfigurationError) as info:
        backend_from_url("fancy://host/db")

    assert info.value.code == "missing_extra"
    assert "pip install 'updater-stats[fancy]'" in info.value.message
