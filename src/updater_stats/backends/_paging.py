"""Reading a whole store in pages, as every built-in backend's ``events()`` does."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from .._models import StoredEvent

__all__ = ["paged"]


class _Row(Protocol):
    def __getitem__(self, index: int, /) -> Any: ...


RowT = TypeVar("RowT", bound=_Row)


def paged(
    fetch: Callable[[int], Sequence[RowT]], decode: Callable[[RowT], StoredEvent]
) -> Iterator[StoredEvent]:
    """The events of every page *fetch* gives, in storage order, one page in memory at a time.

    ``fetch(after)`` returns the next page: rows whose first column is their position in
    storage order (an id or sequence number), each greater than *after*, in that order; an
    empty page ends the reading. Positions start above 0. Each page is a fresh query, so no
    cursor or transaction stays open between pages while the caller works.
    """
    after = 0
    while rows := fetch(after):
        after = rows[-1][0]
        yield from map(decode, rows)
