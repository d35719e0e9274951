"""``GET /metrics`` over HTTP: the format Prometheus reads, and never a failed scrape."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.metrics import Metrics, metrics
from alertcast.store.engine import make_engine
from alertcast.web.metrics_api import add_metrics_route
from tests.metrics.conftest import samples, value


async def test_the_endpoint_serves_the_text_format_without_credentials(
    engine: AsyncEngine,
) -> None:
    m = Metrics(roles=["web"])
    app = web.Application()
    endpoint = add_metrics_route(app, engine, m)
    assert endpoint is not None
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        found = samples(await response.read())
        assert value(found, "alertcast_database_up") == 1
        assert value(found, "alertcast_audit_records") is not None
        assert (await client.post("/metrics")).status == 405


async def test_an_unreachable_database_still_answers_with_the_process_figures(
    tmp_path: Path,
) -> None:
    missing = make_engine(f"sqlite:///{tmp_path / 'no-such-folder' / 'alertcast.db'}")
    m = Metrics()
    m.throttled("tg", "telegram")
    app = web.Application()
    add_metrics_route(app, missing, m)
    try:
        async with TestClient(TestServer(app)) as client:
            response = await client.get("/metrics")
            assert response.status == 200
            found = samples(await response.read())
    finally:
        await missing.dispose()
    assert value(found, "alertcast_database_up") == 0
    assert (
        value(found, "alertcast_provider_throttled_total", channel="tg", provider="telegram") == 1
    )


async def test_without_a_metrics_object_the_process_one_is_served(engine: AsyncEngine) -> None:
    app = web.Application()
    add_metrics_route(app, engine)
    metrics().feed_polled("endpoint-test", "skipped")
    async with TestClient(TestServer(app)) as client:
        found = samples(await (await client.get("/metrics")).read())
    assert (
        value(found, "alertcast_feed_polls_total", feed="endpoint-test", result="skipped") or 0
    ) >= 1
