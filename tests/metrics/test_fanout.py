"""A real fan-out through the worker moves the figures an operator watches, read over HTTP.

The webhook channel sends to a fake provider that answers some requests with
429. The channel is held after ``HOLD_AFTER`` sends, so the first scrape is
taken while the fan-out is surely under way; the second once it is over.
Between them, deliveries move from pending to sent, the queue drains, and the
send latency count grows by the sends made meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.channels.webhook import WebhookChannel
from alertcast.dispatch import ledger
from alertcast.dispatch.retry import RetryPolicy
from alertcast.dispatch.worker import Worker
from alertcast.metrics import CONTENT_TYPE, Metrics
from alertcast.ports import OutboundMessage, Receipt
from alertcast.ratelimit import RateLimiter, RateLimits
from alertcast.web.metrics_api import add_metrics_route
from tests.fakes.http_provider import FakeProvider
from tests.metrics.conftest import Samples, samples, store_alert, value

CHANNEL = "hook"
ROWS = 120
HOLD_AFTER = 30
POLICY = RetryPolicy(max_attempts=20, initial_s=0.01, max_delay_s=0.05, jitter_s=0.01)


class HeldChannel:
    """The webhook channel, holding every send after the first ``hold_after`` until released."""

    def __init__(self, inner: WebhookChannel, hold_after: int) -> None:
        self.inner = inner
        self.hold_after = hold_after
        self.started = 0
        self.finished = 0
        self.release = asyncio.Event()

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def kind(self) -> str:
        return self.inner.kind

    async def send(self, message: OutboundMessage, target: str) -> Receipt:
        self.started += 1
        if self.started > self.hold_after:
            await self.release.wait()
        try:
            return await self.inner.send(message, target)
        finally:
            self.finished += 1

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Return once ``check`` holds (bounded, so a bug fails the test instead of hanging)."""
    for _ in range(3000):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def _scrape(client: TestClient[Any, Any]) -> Samples:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE
    return samples(await response.read())


def _sends(found: Samples) -> float:
    return sum(
        v
        for (name, labels), v in found.items()
        if name == "alertcast_send_seconds_count" and ("channel", CHANNEL) in labels
    )


async def test_a_fan_out_moves_deliveries_queue_and_latency_between_scrapes(
    engine: AsyncEngine,
) -> None:
    m = Metrics(cache_s=0.0, busy_factor=0.0)  # every scrape reads the database
    alert_id = await store_alert(engine)
    targets = [f"https://receptor-{i}.example.org/aviso" for i in range(ROWS)]
    await ledger.plan(
        engine,
        alert_id=alert_id,
        channel=CHANNEL,
        targets=targets,
        message=OutboundMessage(parts=("Aviso",), severity="Minor"),
        priority=30,
        deadline=None,
    )
    app = web.Application()
    add_metrics_route(app, engine, m)
    limiter = RateLimiter({CHANNEL: RateLimits(global_per_s=None)}, metrics=m)

    async with (
        FakeProvider(errors=0.15, kinds=("rate_limited",), seed=3, retry_after="0.01") as fake,
        TestClient(TestServer(app)) as client,
    ):
        channel = HeldChannel(WebhookChannel(CHANNEL, fake.url, secret=None), HOLD_AFTER)
        worker = Worker(
            engine,
            {CHANNEL: channel},
            limiter,
            "w-metrics",
            batch=20,
            concurrency=4,
            poll_s=0.02,
            default_policy=POLICY,
            metrics=m,
        )
        stop = asyncio.Event()
        running = asyncio.create_task(worker.run(stop))
        try:

            async def held() -> bool:
                observed = m.registry.get_sample_value(
                    "alertcast_send_seconds_count", {"channel": CHANNEL, "outcome": "ok"}
                )
                limited = m.registry.get_sample_value(
                    "alertcast_send_seconds_count",
                    {"channel": CHANNEL, "outcome": "rate_limited"},
                )
                return (observed or 0) + (limited or 0) >= HOLD_AFTER

            await _until(held, "the first sends were observed")
            during = await _scrape(client)

            channel.release.set()

            async def finished() -> bool:
                return ledger.is_finished(await ledger.progress(engine, alert_id))

            await _until(finished, "the fan-out finished")
            after = await _scrape(client)
        finally:
            stop.set()
            await running
            await channel.aclose()

    def rows(found: Samples, state: str) -> float:
        return value(found, "alertcast_deliveries", channel=CHANNEL, state=state) or 0

    # During: sends observed, most rows still waiting, a queue of due rows.
    assert _sends(during) == HOLD_AFTER
    assert rows(during, "pending") + rows(during, "claimed") >= ROWS - HOLD_AFTER
    assert rows(during, "sent") <= HOLD_AFTER
    assert (value(during, "alertcast_queue_depth", channel=CHANNEL) or 0) > 0

    # After: every row sent, the queue empty, and every attempt counted.
    assert rows(after, "sent") == ROWS
    assert rows(after, "pending") == rows(after, "claimed") == 0
    assert value(after, "alertcast_queue_depth", channel=CHANNEL) == 0
    assert value(after, "alertcast_queue_oldest_pending_seconds", channel=CHANNEL) == 0
    assert _sends(after) > _sends(during)
    assert _sends(after) == fake.requests  # one observation per request the provider saw
    assert value(after, "alertcast_send_seconds_count", channel=CHANNEL, outcome="ok") == ROWS

    # Each 429 the provider gave is counted once, under the channel's kind.
    throttled = fake.faults["rate_limited"]
    assert throttled > 0
    assert (
        value(after, "alertcast_provider_throttled_total", channel=CHANNEL, provider="webhook")
        == throttled
    )
    assert (
        value(after, "alertcast_send_seconds_count", channel=CHANNEL, outcome="rate_limited")
        == throttled
    )
    # Every attempt first waited for (or was granted at once) its rate-limit token.
    assert value(after, "alertcast_rate_limiter_wait_seconds_count", channel=CHANNEL) == _sends(
        after
    )
