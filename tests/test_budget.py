from __future__ import annotations

import asyncio

import pytest

from updater_stats._budget import BodyBudget


def run(coroutine):
    return asyncio.run(coroutine)


def test_requests_that_fit_go_at_once_and_others_wait_their_turn():
    async def main() -> list[str]:
        budget = BodyBudget(100)
        order: list[str] = []
        assert await budget.acquire(60, timeout=1)

        async def later(name: str, size: int) -> None:
            assert await budget.acquire(size, timeout=5)
            order.append(name)

        second = asyncio.create_task(later("second", 60))
        await asyncio.sleep(0.01)
        third = asyncio.create_task(later("third", 10))  # would fit, but waits behind "second"
        await asyncio.sleep(0.01)
        assert order == []
        assert not budget.take(10)  # no jumping the queue either
        budget.release(60)
        await asyncio.gather(second, third)
        assert budget.in_use == 70
        return order

    assert run(main()) == ["second", "third"]


def test_a_body_larger_than_the_budget_is_let_in_alone():
    async def main() -> None:
        budget = BodyBudget(100)
        assert await budget.acquire(500, timeout=1)  # nothing in flight: admitted
        assert not await budget.acquire(1, timeout=0.05)  # now nothing else fits
        budget.release(500)
        assert budget.in_use == 0

    run(main())


def test_a_timed_out_waiter_leaves_the_queue_and_lets_the_next_in():
    async def main() -> None:
        budget = BodyBudget(100)
        assert budget.take(90)
        assert not await budget.acquire(50, timeout=0.05)  # gave up
        assert budget.take(10)  # the queue is empty again: this fits at once
        assert budget.in_use == 100

    run(main())


def test_a_cancelled_waiter_gives_back_nothing_it_did_not_get():
    async def main() -> None:
        budget = BodyBudget(100)
        assert budget.take(100)
        waiting = asyncio.create_task(budget.acquire(50, timeout=5))
        await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        budget.release(100)
        assert budget.in_use == 0

    run(main())


def test_a_budget_needs_a_positive_limit():
    with pytest.raises(ValueError, match="at least 1 byte"):
        BodyBudget(0)
