"""PostgreSQL: workers, each on its own engine (as on separate hosts), share a fan-out.

``FOR UPDATE SKIP LOCKED`` and the lease checks must keep any row from being
sent twice, however the claims interleave.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit, lifecycle
from alertcast.dispatch import ledger
from alertcast.dispatch.worker import Worker
from alertcast.ports import OutboundMessage
from alertcast.store.engine import make_engine
from alertcast.store.migrate import upgrade
from alertcast.testing import RecordingChannel, UnlimitedLimiter
from tests.dispatch.conftest import make_alert

FAN_OUT = 3000


@pytest.fixture
async def engines(pg_database_url: str) -> AsyncIterator[list[AsyncEngine]]:
    await upgrade(pg_database_url)
    made = [make_engine(pg_database_url) for _ in range(3)]
    try:
        yield made
    finally:
        for engine in made:
            await engine.dispose()


async def test_two_workers_share_a_fan_out_without_sending_any_row_twice(
    engines: list[AsyncEngine],
) -> None:
    planner, first, second = engines
    stored = await lifecycle.ingest_alert(
        planner, make_alert("FANOUT-1"), raw=None, source="t", actor="t", now=datetime.now(UTC)
    )
    alert_id = stored.result.alert_id
    await ledger.plan(
        planner,
        alert_id=alert_id,
        channel="fake",
        targets=(f"chat-{i}" for i in range(FAN_OUT)),
        message=OutboundMessage(parts=("Aviso",)),
        priority=20,
        deadline=None,
        batch=500,
    )
    channels = [RecordingChannel(delay_s=0.001), RecordingChannel(delay_s=0.001)]
    workers = [
        Worker(engine, {"fake": channel}, UnlimitedLimiter(), f"host-{n}", batch=50, poll_s=0.01)
        for n, (engine, channel) in enumerate(zip((first, second), channels, strict=True))
    ]
    stop = asyncio.Event()

    async def watch() -> None:
        for _ in range(30_000):
            if ledger.is_finished(await ledger.progress(planner, alert_id)):
                stop.set()
                return
            await asyncio.sleep(0.01)
        stop.set()

    await asyncio.gather(*(worker.run(stop) for worker in workers), watch())

    sent = Counter(target for channel in channels for target in channel.targets)
    assert len(sent) == FAN_OUT
    assert max(sent.values()) == 1
    assert all(channel.sent for channel in channels)  # both took part
    assert await ledger.progress(planner, alert_id) == {"fake": {"sent": FAN_OUT}}
    assert await audit.verify_chain(planner) > 0
