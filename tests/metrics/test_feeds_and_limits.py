"""Feed polls and rate-limiter waits are counted where they happen; staleness is read."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.feeds.http import make_session
from alertcast.metrics import Metrics
from alertcast.ratelimit import RateLimiter, RateLimits
from tests.feeds.conftest import CountingIngestor, FakeClock, feed_config, make_poller
from tests.feeds.feed_server import FeedServer, atom_embedded, cap_alert
from tests.metrics.conftest import samples, value
from tests.ratelimit.virtual_clock import VirtualClock


async def test_each_poll_is_counted_by_result_and_staleness_follows_the_last_success(
    engine: AsyncEngine,
) -> None:
    clock = FakeClock()
    m = Metrics(wall=clock)
    session = make_session()
    async with FeedServer() as server, session:
        server.publish("/index.atom", atom_embedded([cap_alert("M-1")]))
        ingestor = CountingIngestor(engine)
        good = make_poller(
            feed_config("sismos", server.link("/index.atom")),
            engine,
            session,
            ingestor,
            clock=clock,
            metrics=m,
        )
        broken = make_poller(
            feed_config("roto", server.link("/missing.atom")),
            engine,
            session,
            ingestor,
            clock=clock,
            metrics=m,
        )
        assert (await good.poll_once()).status == "changed"
        clock.advance(90)  # past the interval and its jitter
        assert (await good.poll_once()).status == "not-modified"
        assert (await broken.poll_once()).status == "failed"
        clock.advance(45)

    await m.refresh_from_database(engine)
    found = samples(m.render())
    polls = "alertcast_feed_polls_total"
    assert value(found, polls, feed="sismos", result="changed") == 1
    assert value(found, polls, feed="sismos", result="not-modified") == 1
    assert value(found, polls, feed="roto", result="failed") == 1
    assert value(found, polls, feed="roto", result="changed") is None
    # 45 s since the last successful poll; the broken feed never succeeded: no figure.
    assert value(found, "alertcast_feed_staleness_seconds", feed="sismos") == 45
    assert value(found, "alertcast_feed_staleness_seconds", feed="roto") is None


async def test_the_rate_limiter_observes_each_wait_on_its_clock() -> None:
    clock = VirtualClock()
    m = Metrics()
    limiter = RateLimiter({"sms": RateLimits(global_per_s=1.0)}, clock=clock, metrics=m)

    async def three_sends() -> None:
        for _ in range(3):
            await limiter.acquire("sms", recipient="+5215500000001")

    await clock.run(three_sends())
    found = samples(m.render())
    wait = "alertcast_rate_limiter_wait_seconds"
    # One token a second: the first send goes at once, the next two wait a second each.
    assert value(found, f"{wait}_count", channel="sms") == 3
    assert value(found, f"{wait}_sum", channel="sms") == 2.0
    assert value(found, f"{wait}_bucket", channel="sms", le="0.001") == 1
    assert value(found, f"{wait}_bucket", channel="sms", le="1.0") == 3
    assert "+5215500000001" not in m.render().decode()


async def test_a_paused_channel_wait_is_observed_too() -> None:
    clock = VirtualClock()
    m = Metrics()
    limiter = RateLimiter({"tg": RateLimits(global_per_s=None)}, clock=clock, metrics=m)
    limiter.pause("tg", 7.5)  # a provider's retry_after
    await clock.run(limiter.acquire("tg"))
    waited = m.registry.get_sample_value(
        "alertcast_rate_limiter_wait_seconds_sum", {"channel": "tg"}
    )
    assert waited == 7.5
