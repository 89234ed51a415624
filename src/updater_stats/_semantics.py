"""What the reports count, in one place: section 4 of the stats protocol as constants.

Every query builder reads these sets and numbers; none spells an action itself.
"""

from __future__ import annotations

import datetime as dt

from ._actions import (
    DOWNLOAD_START_ACTIONS,
    FAILURE_ACTIONS,
    RUNNING_VERSION_ACTIONS,
    Action,
    download_fail_counts,
)
from ._versions import version_order_key

#: A device clock may run this far ahead of the server and still be believed.
MAX_CLOCK_AHEAD = dt.timedelta(minutes=5)
#: Queued events arrive late, but not later than this: older device times are not believed.
MAX_QUEUE_DELAY = dt.timedelta(days=30)

#: `version_name` and `old_version_name` of composite per-file names ("1.4.2:main.js")
#: count under the part before the first colon.
COMPOSITE_SEPARATOR = ":"

#: The bundle shipped in the native app: where a `reset` lands, never a bundle it left.
BUILTIN = "builtin"

FAILURES: frozenset[Action] = FAILURE_ACTIONS
ROLLBACKS: tuple[Action, ...] = (Action.UPDATE_FAIL, Action.RESET)

#: Funnel step 1: a download started. Old plugins send no start event, so the first
#: progress event (`download_10`) counts as a start too, from any plugin.
DOWNLOAD_STARTS: frozenset[Action] = DOWNLOAD_START_ACTIONS | {Action.DOWNLOAD_10}
DOWNLOAD_DONE = Action.DOWNLOAD_COMPLETE
INSTALL = Action.SET
LAUNCHES: frozenset[Action] = frozenset({Action.APP_MOVED_TO_FOREGROUND, Action.APP_LAUNCH_READY})
FUNNEL_STEPS: tuple[str, ...] = ("download_started", "download_complete", "set", "launched")

#: Events whose `version_name` is the bundle the device runs (see `Action.runs_version`).
#: Unknown actions are left out: nobody knows yet what they name.
RUNNING: frozenset[Action] = RUNNING_VERSION_ACTIONS

#: The metadata key a download completion may carry its own duration in.
DURATION_KEY = "duration_ms"
#: A `duration_ms` is believed when it is 1 to 12 ASCII digits (up to ~31 years).
DURATION_MAX_DIGITS = 12

PERCENTILES: tuple[int, ...] = (50, 90, 99)

DAY_MS = 86_400_000


def counted_version(version_name: str) -> str:
    """The version an event counts under: composite ``"<version>:<file>"`` names lose the file."""
    return version_name.split(COMPOSITE_SEPARATOR, 1)[0]


def failing_download_plugins(plugin_versions: list[str]) -> list[str]:
    """Which of these plugin versions' `download_fail` events are failures."""
    return sorted(v for v in set(plugin_versions) if download_fail_counts(v))


RunningRow = tuple[str, str, str, str, str]


def running_tie_key(row: RunningRow) -> tuple[object, ...]:
    """Among one device's running-version events at the same event and receive time, the
    greatest key wins: the newest version (`version_order_key`), then the greatest platform,
    OS, plugin and native version text by code point.

    *row* is (version, platform, OS version, plugin version, native version).
    """
    version, *others = row
    return (version_order_key(version), *others)


def nearest_rank(percent: int, count: int) -> int:
    """The 1-based rank of the *percent* percentile among *count* sorted values (nearest rank)."""
    # ceil(percent * count / 100) in integers, the same in every SQL dialect.
    return (percent * count + 99) // 100
