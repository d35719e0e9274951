"""The shared budget on PostgreSQL: instances together never draw more than it holds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.ratelimit import RateLimiter, RateLimits
from alertcast.ratelimit_shared import SharedBudget
from alertcast.store.engine import make_engine
from alertcast.store.migrate import upgrade

# So slow that nothing refills during a test: every grant comes out of the burst.
STILL = RateLimits(global_per_s=0.0001, burst=10)


@pytest.fixture
async def engines(pg_database_url: str) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """Two engines on one database, as two instances would have."""
    await upgrade(pg_database_url)
    first, second = make_engine(pg_database_url), make_engine(pg_database_url)
    try:
        yield first, second
    finally:
        await first.dispose()
        await second.dispose()


async def test_concurrent_instances_never_draw_more_than_the_budget(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    budgets = [SharedBudget(engine) for engine in engines]
    results = await asyncio.gather(*(budgets[i % 2].take("tg", STILL, 1.0) for i in range(40)))
    granted = sum(g for g, _ in results)
    assert granted == 10
    refused = [retry for g, retry in results if g == 0]
    assert len(refused) == 30
    assert all(retry > 1000 for retry in refused)  # the next token is hours away


async def test_a_lease_takes_several_tokens_at_once(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    budget = SharedBudget(engines[0])
    assert (await budget.take("tg", STILL, 4.0))[0] == 4
    assert (await budget.take("tg", STILL, 4.0))[0] == 4
    granted, retry = await budget.take("tg", STILL, 4.0)
    assert granted == 2
    assert retry > 0


async def test_a_pause_seen_by_one_instance_stops_the_other(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    first, second = (SharedBudget(engine) for engine in engines)
    assert (await first.take("tg", STILL, 1.0))[0] == 1
    first.pause("tg", 30.0)
    await first.drain()
    granted, retry = await second.take("tg", STILL, 1.0)
    assert granted == 0
    assert 20 < retry <= 30
    assert (await second.take("other", STILL, 1.0))[0] == 1  # other channels unaffected


async def test_limiters_sharing_a_budget_stop_together(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    limits = {"tg": RateLimits(global_per_s=0.0001, burst=3)}
    limiters = [RateLimiter(limits, shared=SharedBudget(engine)) for engine in engines]
    for i in range(3):
        await limiters[i % 2].acquire("tg", recipient=f"chat{i}")
    # The budget is spent: neither instance may send a fourth message.
    for limiter in limiters:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(limiter.acquire("tg", recipient="chat9"), timeout=0.5)


async def test_sqlite_is_refused(tmp_path: object) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/a.db")
    try:
        with pytest.raises(ValueError, match="PostgreSQL"):
            SharedBudget(engine)
    finally:
        await engine.dispose()
