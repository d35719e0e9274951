"""Shared pieces for the feed tests: a local feed server, a session, a poller."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit
from alertcast.config import FeedConfig
from alertcast.feeds.base import FeedItem
from alertcast.feeds.http import HttpFetcher, make_session
from alertcast.feeds.poller import FeedPoller
from alertcast.ingest import Ingestor, ItemOutcome
from alertcast.store.alerts import AlertRepository
from alertcast.store.feed_state import FeedStateRepository
from alertcast.store.tables import alerts
from tests.clocks import HandClock
from tests.feeds.feed_server import FeedServer


@pytest.fixture
async def server() -> AsyncIterator[FeedServer]:
    async with FeedServer() as running:
        yield running


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    http = make_session()
    try:
        yield http
    finally:
        await http.close()


def feed_config(name: str, url: str, kind: str = "cap-index", **options: Any) -> FeedConfig:
    defaults: dict[str, Any] = {"interval_s": 60.0, "timeout_s": 5.0, "jitter": 0.1}
    defaults.update(options)
    return FeedConfig(name=name, kind=kind, file=Path(f"feeds/{name}.toml"), url=url, **defaults)


class CountingIngestor:
    """The real ingest stage, counting what the poller offers it."""

    def __init__(self, engine: AsyncEngine, feeds: Sequence[FeedConfig] = ()) -> None:
        self.inner = Ingestor(AlertRepository(engine), feeds=feeds)
        self.offered: list[FeedItem] = []

    async def ingest_item(self, item: FeedItem, *, feed: str, actor: str) -> ItemOutcome:
        self.offered.append(item)
        return await self.inner.ingest_item(item, feed=feed, actor=actor)


@dataclass
class FakeClock(HandClock):
    """A wall clock the feed tests move by hand, starting on a January afternoon."""

    now: datetime = field(default_factory=lambda: datetime(2026, 1, 19, 17, 0, tzinfo=UTC))


def make_poller(
    feed: FeedConfig,
    engine: AsyncEngine,
    session: aiohttp.ClientSession,
    ingestor: Any,
    *,
    owner: str = "instance-a",
    **options: Any,
) -> FeedPoller:
    return FeedPoller(
        feed,
        fetcher=HttpFetcher(session),
        ingestor=ingestor,
        repository=FeedStateRepository(engine),
        owner=owner,
        **options,
    )


async def actions(engine: AsyncEngine, action: str) -> list[audit.AuditRecord]:
    return [r for r in await audit.tail(engine, 1000) if r.action == action]


async def alert_states(engine: AsyncEngine) -> dict[str, str]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(alerts.c.identifier, alerts.c.state))
        return {row.identifier: row.state for row in rows}
