from __future__ import annotations

import asyncio
import time

from updater_stats import _deadlines
from updater_stats._deadlines import Deadlines, LoopDeadlines


def fired_after(schedule: list[tuple[str, float]], discard: set[str], wait: float) -> dict:
    """Add each (key, seconds from now); discard some; the moment each key fired, from start."""
    fired: dict[str, float] = {}

    async def main() -> None:
        start = time.monotonic()
        deadlines: Deadlines[str] = Deadlines(
            asyncio.get_running_loop(), lambda key: fired.setdefault(key, time.monotonic() - start)
        )
        for key, seconds in schedule:
            deadlines.add(key, start + seconds)
        for key in discard:
            deadlines.discard(key)
        await asyncio.sleep(wait)

    asyncio.run(main())
    return fired


def test_each_key_fires_at_its_deadline_never_before_in_any_order_added():
    fired = fired_after([("late", 0.15), ("early", 0.05), ("now", 0.0)], set(), 0.3)

    assert list(fired) == ["now", "early", "late"]
    assert fired["early"] >= 0.05
    assert fired["late"] >= 0.15
    assert fired["late"] < 0.25


def test_a_key_discarded_in_time_never_fires():
    assert fired_after([("done", 0.05), ("slow", 0.1)], {"done"}, 0.2).keys() == {"slow"}


def test_keys_discarded_in_time_do_not_pile_up(monkeypatch):
    monkeypatch.setattr(_deadlines, "_SLACK", 4)
    fired: list[int] = []

    async def main() -> None:
        deadlines: Deadlines[int] = Deadlines(asyncio.get_running_loop(), fired.append)
        far = time.monotonic() + 60
        for key in range(1000):
            deadlines.add(key, far + key)
            if key != 500:
                deadlines.discard(key)
        assert len(deadlines._heap) <= 2 + 4 + 1  # rebuilt: the pending key, and a few more
        deadlines.add(2000, time.monotonic() + 0.01)  # an earlier one: the timer comes sooner
        await asyncio.sleep(0.1)

    asyncio.run(main())
    assert fired == [2000]


def test_each_loop_has_deadlines_of_its_own():
    deadlines: LoopDeadlines[str] = LoopDeadlines(lambda key: None)

    async def main() -> tuple[object, object]:
        loop = asyncio.get_running_loop()
        return deadlines.on(loop), deadlines.on(loop)

    first, again = asyncio.run(main())
    other, _ = asyncio.run(main())
    assert first is again
    assert other is not first
