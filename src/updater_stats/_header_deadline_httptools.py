"""uvicorn's httptools protocol with `_header_deadline`'s check: a module of its own, since
importing it needs httptools, which the ``server`` extra installs on CPython only."""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ._header_deadline import HeaderDeadline

__all__ = ["HttpToolsWithHeaderDeadline"]


class HttpToolsWithHeaderDeadline(HeaderDeadline, HttpToolsProtocol):
    """uvicorn's httptools protocol, its connections closed when their headers come too late."""
