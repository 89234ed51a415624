"""What the core and the backends both speak of when batching writes: `Batching` and the
answer deadline. It lives below both, so that no backend imports the writer."""

from __future__ import annotations

import attrs

__all__ = ["DEFAULT_DEADLINE", "Batching"]

#: Seconds from reading a request's body to its answer, 200 or 503. Android gives up after
#: 10 s and iOS after 20 s: a 503 they never see is as bad as no answer, and a write that
#: commits after they gave up is sent again.
DEFAULT_DEADLINE = 5.0


@attrs.frozen(kw_only=True)
class Batching:
    """How a collector groups concurrent requests into storage writes.

    A backend may declare its preference as a ``batching`` attribute (the
    ClickHouse backend does); `Collector(batching=...)` overrides it.

    Attributes:
        max_events: Events in one storage write. Requests are never split: a
            request larger than this is written alone.
        max_delay: Seconds a batch may stay open for more requests, counted
            from the arrival of its oldest request or from the end of the
            previous write, whichever is later. Applied only while
            requests arrive together (the previous write held several, or
            several are queued), unless `delay_lone_requests` is set: a lone
            request is then written at once, since waiting gains nothing.
            Without `delay_lone_requests`, a batch also closes as soon as
            it holds as many requests as the previous write did: the callers
            that write answered are back, and waiting longer only adds latency.
        delay_lone_requests: Hold every request up to `max_delay`, even one
            that arrives alone. For stores that want few large inserts.
        max_pending_events: Events queued for the next writes. Past it a
            caller waits for room (a request larger than this waits for an
            empty queue): memory stays bounded when storage is slow. How long
            a caller waits in all is its deadline (`Collector`'s ``deadline``).
    """

    max_events: int = attrs.field(default=1000, validator=attrs.validators.gt(0))
    max_delay: float = attrs.field(default=0.002, validator=attrs.validators.ge(0))
    delay_lone_requests: bool = False
    max_pending_events: int = attrs.field(default=10_000, validator=attrs.validators.gt(0))
