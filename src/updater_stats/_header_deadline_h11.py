"""uvicorn's h11 protocol with `_header_deadline`'s check, for where httptools is not
installed."""

from __future__ import annotations

from uvicorn.protocols.http.h11_impl import H11Protocol

from ._header_deadline import HeaderDeadline

__all__ = ["H11WithHeaderDeadline"]


class H11WithHeaderDeadline(HeaderDeadline, H11Protocol):
    """uvicorn's h11 protocol, its connections closed when their headers come too late."""
