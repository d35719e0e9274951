"""Several instances on one database: a feed is polled by one of them at a time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.feeds.http import FetchResult, HttpFetcher
from alertcast.feeds.lease import FeedLease, grace_s
from alertcast.feeds.poller import Poller
from alertcast.store.engine import make_engine
from alertcast.store.feed_state import FeedStateRepository
from tests.feeds.conftest import CountingIngestor, FakeClock, feed_config, make_poller
from tests.feeds.feed_server import FeedServer, atom_embedded, cap_alert


async def test_one_instance_polls_per_interval_and_the_other_takes_over_on_a_clean_stop(
    engine: AsyncEngine, server: FeedServer, session: aiohttp.ClientSession
) -> None:
    server.publish("/index.atom", atom_embedded([cap_alert("A-1")]))
    feed = feed_config("shared", server.link("/index.atom"), interval_s=60, jitter=0)
    clock = FakeClock()
    ingestor = CountingIngestor(engine)
    a = make_poller(feed, engine, session, ingestor, owner="instance-a", clock=clock)
    b = make_poller(feed, engine, session, ingestor, owner="instance-b", clock=clock)

    assert (await a.poll_once()).status == "changed"
    refused = await b.poll_once()
    assert (refused.status, refused.holder) == ("skipped", "instance-a")
    for _ in range(3):
        clock.advance(60)
        assert (await b.poll_once()).status == "skipped"
        assert (await a.poll_once()).status == "not-modified"
        assert (await b.poll_once()).status == "skipped"
    assert len(server.hits("/index.atom")) == 4  # one fetch per interval

    await a.lease.release()  # instance A stops cleanly
    early = await b.poll_once()
    # B holds the feed now, but A already polled in this interval: B waits for A's plan.
    assert (early.status, early.next_poll_at) == ("skipped", clock.now + timedelta(seconds=60))
    assert len(server.hits("/index.atom")) == 4
    clock.advance(60)
    taken_over = await b.poll_once()
    assert taken_over.status == "not-modified"  # B uses A's validators: the state is shared
    assert len(server.hits("/index.atom")) == 5
    state = await FeedStateRepository(engine).get("shared")
    assert state is not None and state.lease_owner == "instance-b"

    clock.advance(60)
    assert (await a.poll_once()).status == "skipped"  # A is back, B keeps the feed
    assert (await b.poll_once()).status == "not-modified"


async def test_a_crashed_holder_s_lease_runs_out_and_another_takes_over(
    engine: AsyncEngine, server: FeedServer, session: aiohttp.ClientSession
) -> None:
    server.publish("/index.atom", atom_embedded([cap_alert("A-1")]))
    feed = feed_config("shared", server.link("/index.atom"), interval_s=60, jitter=0)
    clock = FakeClock()
    ingestor = CountingIngestor(engine)
    a = make_poller(feed, engine, session, ingestor, owner="instance-a", clock=clock)
    b = make_poller(feed, engine, session, ingestor, owner="instance-b", clock=clock)
    await a.poll_once()  # then instance A dies without a word

    clock.advance(60)
    assert (await b.poll_once()).status == "skipped"  # A's lease still runs
    clock.advance(grace_s(feed) + 1)
    assert (await b.poll_once()).status == "not-modified"
    assert [hit.status for hit in server.hits("/index.atom")] == [200, 304]


async def test_racing_instances_are_granted_the_lease_exactly_once(
    database_url: str, engine: AsyncEngine
) -> None:
    engines = [make_engine(database_url) for _ in range(4)]
    clock = FakeClock()
    try:
        for number in range(5):
            feed = feed_config(f"race-{number}", "https://x.example/feed")
            leases = [
                FeedLease(feed, FeedStateRepository(e), f"owner-{i}", clock=clock)
                for i, e in enumerate(engines)
            ]
            granted = await asyncio.gather(*(lease.acquire() for lease in leases))
            winners = [state.lease_owner for state in granted if state is not None]
            assert len(winners) == 1
            state = await FeedStateRepository(engine).get(feed.name)
            assert state is not None and state.lease_owner == winners[0]
    finally:
        for other in engines:
            await other.dispose()


class _RecordingFetcher(HttpFetcher):
    def __init__(self, session: aiohttp.ClientSession, owner: str, seen: list[str]) -> None:
        super().__init__(session)
        self._owner = owner
        self._seen = seen

    async def fetch(self, url: str, **kwargs: Any) -> FetchResult:
        self._seen.append(self._owner)
        return await super().fetch(url, **kwargs)


async def test_two_running_services_share_a_feed_and_hand_it_over(
    database_url: str, engine: AsyncEngine, server: FeedServer, session: aiohttp.ClientSession
) -> None:
    server.publish("/index.atom", atom_embedded([cap_alert("A-1")]))
    feed = feed_config("shared", server.link("/index.atom"), interval_s=0.2, jitter=0)
    fetched_by: list[str] = []
    second_engine = make_engine(database_url)  # each instance has its own pool

    def instance(owner: str, on: AsyncEngine) -> Poller:
        return Poller(
            [feed],
            fetcher=_RecordingFetcher(session, owner, fetched_by),
            ingestor=CountingIngestor(on),
            repository=FeedStateRepository(on),
            owner=owner,
        )

    async def until(condition: Any) -> None:
        for _ in range(300):
            if condition():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"gave up waiting; fetched by {fetched_by}")

    first = asyncio.create_task(instance("instance-a", engine).run())
    second = asyncio.create_task(instance("instance-b", second_engine).run())
    try:
        await until(lambda: len(fetched_by) >= 5)
        holder = fetched_by[0]
        first_task, other = (
            (first, "instance-b") if holder == "instance-a" else (second, "instance-a")
        )
        assert set(fetched_by) == {holder}
        first_task.cancel()  # the holder stops cleanly and gives the lease up
        await asyncio.gather(first_task, return_exceptions=True)
        count = len(fetched_by)
        await until(lambda: fetched_by[count:].count(other) >= 3)
        assert set(fetched_by[count:]) == {other}
    finally:
        for task in (first, second):
            task.cancel()
        await asyncio.gather(first, second, return_exceptions=True)
        await second_engine.dispose()


async def test_an_instance_takes_the_free_leases_of_all_its_feeds_at_once(
    engine: AsyncEngine, server: FeedServer, session: aiohttp.ClientSession
) -> None:
    clock = FakeClock()
    repository = FeedStateRepository(engine)
    later = clock.now + timedelta(minutes=10)
    assert await repository.acquire_lease("busy", owner="other", now=clock.now, until=later)
    grants = {name: later for name in ("free", "busy", "new")}
    granted = await repository.acquire_leases(grants, owner="me", now=clock.now)
    assert set(granted) == {"free", "new"}
    assert all(state.lease_owner == "me" for state in granted.values())
    busy = await repository.get("busy")
    assert busy is not None and busy.lease_owner == "other"
    clock.advance(601)  # the other instance's lease ran out
    assert set(await repository.acquire_leases(grants, owner="me", now=clock.now)) == set(grants)


async def test_a_restarted_instance_resumes_each_feed_s_schedule(
    engine: AsyncEngine, server: FeedServer, session: aiohttp.ClientSession
) -> None:
    server.publish("/index.atom", atom_embedded([cap_alert("A-1")]))
    feed = feed_config("resumed", server.link("/index.atom"), interval_s=30, jitter=0)
    fetched_by: list[str] = []

    def instance(owner: str) -> Poller:
        return Poller(
            [feed],
            fetcher=_RecordingFetcher(session, owner, fetched_by),
            ingestor=CountingIngestor(engine),
            repository=FeedStateRepository(engine),
            owner=owner,
        )

    first = asyncio.create_task(instance("before-restart").run())
    repository = FeedStateRepository(engine)
    for _ in range(100):
        polled = await repository.get("resumed")
        if polled is not None and polled.last_success_at is not None:
            break
        await asyncio.sleep(0.05)
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    state = await FeedStateRepository(engine).get("resumed")
    assert state is not None and state.lease_owner is None  # given up on the way out
    assert state.next_poll_at is not None

    second = instance("after-restart")
    await second._claim()
    (poller,) = second.feeds
    assert poller.lease.held(datetime.now(UTC))
    delay = await poller._first_delay()
    planned = (state.next_poll_at - datetime.now(UTC)).total_seconds()
    assert 25 < delay <= 30 and abs(delay - planned) < 1  # not polled again before its time
    assert fetched_by == ["before-restart"]
