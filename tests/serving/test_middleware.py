"""The request time budget: one periodic check cancels what runs over, and only that."""

from __future__ import annotations

import asyncio
import time

import pytest

from churnops.serving.middleware import Deadlines


async def _serve(deadlines: Deadlines, seconds: float) -> str:
    """A request that takes ``seconds``; returns how it ended, as the middleware sees it."""
    task = deadlines.enter()
    try:
        await asyncio.sleep(seconds)
        return "answered"
    except asyncio.CancelledError:
        if not deadlines.expired(task):
            raise
        return "timed out"
    finally:
        deadlines.leave(task)


def test_a_request_over_its_budget_is_cancelled_and_one_within_is_not() -> None:
    async def main() -> tuple[list[str], float, bool]:
        deadlines = Deadlines(0.2)
        started = time.monotonic()
        quick, slow = await asyncio.gather(_serve(deadlines, 0.05), _serve(deadlines, 5.0))
        took = time.monotonic() - started
        await asyncio.sleep(0.15)  # the check stops once nothing is in flight
        return [quick, slow], took, deadlines._timer is None

    ended, took, idle = asyncio.run(main())
    assert ended == ["answered", "timed out"]
    assert 0.2 <= took < 0.2 + 0.02 + 0.5  # budget + one check interval (+ a slow machine)
    assert idle


def test_a_cancel_from_elsewhere_is_not_taken_for_a_timeout() -> None:
    async def main() -> None:
        deadlines = Deadlines(10.0)
        request = asyncio.create_task(_serve(deadlines, 5.0))
        await asyncio.sleep(0.05)
        request.cancel()  # shutdown, or the client went away
        with pytest.raises(asyncio.CancelledError):
            await request
        assert not deadlines._running

    asyncio.run(main())
