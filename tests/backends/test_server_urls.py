"""The server schemes of `backend_from_url`: lazy, and a missing driver names its extra."""

from __future__ import annotations

import sys

import pytest

from updater_stats import ConfigurationError, backend_from_url
from updater_stats.backends._url import _SCHEMES


@pytest.mark.parametrize(
    ("url", "module", "extra"),
    [
        ("postgresql://localhost/stats", "psycopg", "postgres"),
        ("postgres://localhost/stats", "psycopg_pool", "postgres"),
        ("clickhouse://localhost/stats", "clickhouse_connect", "clickhouse"),
        ("clickhouses://localhost/stats", "clickhouse_connect", "clickhouse"),
    ],
)
def test_a_missing_driver_names_the_extra(monkeypatch, url, module, extra):
    # As if the driver were not installed: importing it fails.
    monkeypatch.setitem(sys.modules, module, None)
    for name in list(sys.modules):
        if name.startswith(
            ("updater_stats.backends.postgres", "updater_stats.backends.clickhouse")
        ):
            monkeypatch.delitem(sys.modules, name)

    with pytest.raises(ConfigurationError) as info:
        backend_from_url(url)

    assert info.value.code == "missing_extra"
    assert f"pip install 'updater-stats[{extra}]'" in info.value.message


def test_server_schemes_are_dotted_paths_imported_on_use():
    assert {"postgresql", "postgres", "clickhouse", "clickhouses", "chdb"} <= set(_SCHEMES)
    for target, extra in _SCHEMES.values():
        module, _, factory = target.partition(":")
        assert module.startswith("updater_stats.backends.")
        assert factory.endswith(".from_url")
        assert extra in {None, "postgres", "clickhouse", "chdb"}


def test_the_unknown_scheme_error_lists_the_server_schemes():
    with pytest.raises(ConfigurationError) as info:
        backend_from_url("mysql://localhost/db")

    for scheme in ("postgresql://", "clickhouse://", "clickhouses://", "chdb://", "sqlite://"):
        assert scheme in info.value.message
