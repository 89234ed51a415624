"""At most one log line per reason per interval, so a flood of bad input cannot fill a disk.

The intake logs each rejected event or body with its reason; a public endpoint can be sent
millions of them. `LogThrottle` lets the first line of a reason through, holds back the others
for `LOG_INTERVAL` seconds, and tells the next line it lets through how many it held back.
The intake metrics still count every one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable

__all__ = ["LOG_INTERVAL", "LogThrottle"]

#: Seconds between two log lines of the same reason.
LOG_INTERVAL = 60.0
#: Reasons remembered at once; beyond this, lines of new reasons are held back too.
MAX_REASONS = 256


class LogThrottle:
    """Decides, per reason, whether a log line goes out now.

    Args:
        interval: Seconds between two lines of the same reason.
        clock: A monotonic clock in seconds; tests may pass their own.
        max_reasons: How many reasons are tracked in one interval (memory stays bounded).
    """

    def __init__(
        self,
        interval: float = LOG_INTERVAL,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_reasons: int = MAX_REASONS,
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._max_reasons = max_reasons
        self._lock = threading.Lock()
        # reason -> [when its last line went out, lines held back since]
        self._reasons: dict[Hashable, list[float]] = {}

    def admit(self, reason: Hashable) -> int | None:
        """`None`: hold this line back. Else log it: the count says how many were held back."""
        now = self._clock()
        with self._lock:
            entry = self._reasons.get(reason)
            if entry is None:
                if len(self._reasons) >= self._max_reasons:
                    self._forget_quiet(now)
                    if len(self._reasons) >= self._max_reasons:
                        return None
                self._reasons[reason] = [now, 0]
                return 0
            if now - entry[0] >= self._interval:
                held = int(entry[1])
                entry[0], entry[1] = now, 0
                return held
            entry[1] += 1
            return None

    def _forget_quiet(self, now: float) -> None:
        """Drop the reasons whose interval is over and that held nothing back."""
        for reason, (last, held) in list(self._reasons.items()):
            if now - last >= self._interval and not held:
                del self._reasons[reason]
