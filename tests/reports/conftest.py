"""Fixtures the report tests share."""

from __future__ import annotations

import pytest

from updater_stats.reports import ReportQuery

from .queries import QUERIES


@pytest.fixture(params=list(QUERIES), ids=list(QUERIES))
def query(request: pytest.FixtureRequest) -> ReportQuery:
    """Each of `QUERIES` in turn, for every report test that takes a `query`."""
    return QUERIES[request.param]
