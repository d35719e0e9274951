"""A virtual clock for the rate limiter: time moves only when every task is waiting on it.

Tests then measure exact send times with no sleeping on wall time, and the
outcome is the same on every run (asyncio runs ready callbacks in FIFO order).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")

# Loop iterations given to woken tasks before time moves on: far more than
# any path through ``acquire`` needs between two sleeps.
_SETTLE_ROUNDS = 40


class VirtualClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + max(0.0, seconds), next(self._order), future))
        await future

    async def run(self, awaitable: Awaitable[T]) -> T:
        """Run ``awaitable`` to completion, advancing virtual time whenever all tasks wait."""
        task = asyncio.ensure_future(awaitable)
        while not task.done():
            for _ in range(_SETTLE_ROUNDS):
                await asyncio.sleep(0)
                if task.done():
                    break
            else:
                if not self._timers:
                    raise RuntimeError("deadlock: nothing is waiting on the clock")
                deadline = self._timers[0][0]
                self.now = max(self.now, deadline)
                while self._timers and self._timers[0][0] <= deadline:
                    _, _, future = heapq.heappop(self._timers)
                    if not future.done():
                        future.set_result(None)
        return task.result()

    async def advance(self, seconds: float) -> None:
        """Let virtual time pass (as a task of its own would, by sleeping)."""
        await self.sleep(seconds)
