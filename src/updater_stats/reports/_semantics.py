"""What the reports count, in one place: section 4 of the stats protocol as constants.

Every query builder reads these sets and numbers; none spells an action itself.
"""

from __future__ import annotations

import datetime as dt

from .._actions import (
    DOWNLOAD_START_ACTIONS,
    FAILURE_ACTIONS,
    TARGET_VERSION_ACTIONS,
    Action,
    download_fail_means_no_update,
)

#: A device clock may run this far ahead of the server and still be believed.
MAX_CLOCK_AHEAD = dt.timedelta(minutes=5)
#: Queued events arrive late, but not later than this: older device times are not believed.
MAX_QUEUE_DELAY = dt.timedelta(days=30)

#: `version_name` and `old_version_name` of composite per-file names ("1.4.2:main.js")
#: count under the part before the first colon.
COMPOSITE_SEPARATOR = ":"

FAILURES: frozenset[Action] = FAILURE_ACTIONS
ROLLBACKS: tuple[Action, ...] = (Action.UPDATE_FAIL, Action.RESET)

#: Funnel step 1: a download started. Old plugins send no start event, so their first
#: progress event (`download_10`) stands in for it.
DOWNLOAD_STARTS: frozenset[Action] = DOWNLOAD_START_ACTIONS | {Action.DOWNLOAD_10}
DOWNLOAD_DONE = Action.DOWNLOAD_COMPLETE
INSTALL = Action.SET
LAUNCHES: frozenset[Action] = frozenset({Action.APP_MOVED_TO_FOREGROUND, Action.APP_LAUNCH_READY})
FUNNEL_STEPS: tuple[str, ...] = ("download_started", "download_complete", "set", "launched")

#: Events whose `version_name` is the bundle the device runs: every known action except the
#: target-version ones. Unknown actions are left out: nobody knows yet what they name.
RUNNING_VERSION_ACTIONS: frozenset[Action] = frozenset(set(Action) - TARGET_VERSION_ACTIONS)

#: The metadata key a download completion may carry its own duration in.
DURATION_KEY = "duration_ms"
#: A `duration_ms` is believed when it is 1 to 12 ASCII digits (up to ~31 years).
DURATION_MAX_DIGITS = 12

PERCENTILES: tuple[int, ...] = (50, 90, 99)

DAY_MS = 86_400_000


def counted_version(version_name: str) -> str:
    """The version an event counts under: composite ``"<version>:<file>"`` names lose the file."""
    return version_name.split(COMPOSITE_SEPARATOR, 1)[0]


def no_update_plugin_versions(plugin_versions: list[str]) -> list[str]:
    """Which of these plugin versions sent `download_fail` for "no update" (not a failure)."""
    return sorted(v for v in set(plugin_versions) if download_fail_means_no_update(v))


def nearest_rank(percent: int, count: int) -> int:
    """The 1-based rank of the *percent* percentile among *count* sorted values (nearest rank)."""
    # ceil(percent * count / 100) in integers, the same in every SQL dialect.
    return (percent * count + 99) // 100
