"""``GET /api/v1/alerts/{id}/progress``: the figures of ``alertcast status``, as JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import lifecycle
from alertcast.dispatch.ledger import DeliveryState
from alertcast.dispatch.progress import alert_progress
from alertcast.store.alerts import AlertRepository
from alertcast.store.engine import make_engine
from alertcast.web.app import make_web_app
from tests.dispatch.conftest import make_alert
from tests.dispatch.test_progress import finish, plan_rows

DAY_AGO = datetime.now(UTC) - timedelta(days=1)


def path(alert_id: int | str) -> str:
    return f"/api/v1/alerts/{alert_id}/progress"


@pytest.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[TestClient[Any, Any]]:
    app = make_web_app(engine, AlertRepository(engine), channel_limits={"sms": 10.0})
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def _store(engine: AsyncEngine, identifier: str) -> int:
    stored = await lifecycle.ingest_alert(
        engine, make_alert(identifier), raw=None, source="t", actor="t", now=DAY_AGO
    )
    return stored.result.alert_id


async def test_progress_is_the_same_json_as_the_cli(
    client: TestClient[Any, Any], engine: AsyncEngine
) -> None:
    alert_id = await _store(engine, "API-1")
    await plan_rows(engine, alert_id, "telegram", 5, when=DAY_AGO)
    await plan_rows(engine, alert_id, "sms", 30, when=DAY_AGO)
    await finish(engine, alert_id, "telegram", 4, DeliveryState.SENT, when=DAY_AGO)

    response = await client.get(path(alert_id))

    assert response.status == 200
    assert response.content_type == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.json()
    at = datetime.fromisoformat(body["at"])
    same = await alert_progress(engine, alert_id, now=at, limits={"sms": 10.0})
    assert body == same.to_json()
    sms, telegram = body["channels"]
    # Nothing sent on sms yet: its limit gives the ETA. Telegram sent a day ago, then stopped.
    assert (sms["channel"], sms["remaining"], sms["eta_s"]) == ("sms", 30, 3.0)
    assert telegram["eta_s"] is None and body["totals"]["eta_s"] is None
    assert telegram["counts"]["sent"] == 4 and telegram["counts"]["pending"] == 1
    assert body["totals"]["total"] == 35 and body["finished"] is False
    assert "telegram-" not in await response.text() and "sms-" not in await response.text()


async def test_an_alert_without_deliveries_has_no_channels(
    client: TestClient[Any, Any], engine: AsyncEngine
) -> None:
    alert_id = await _store(engine, "API-EMPTY")
    response = await client.get(path(alert_id))
    assert response.status == 200
    body = await response.json()
    assert body["channels"] == [] and body["finished"] is True
    assert body["totals"]["total"] == 0


async def test_no_such_alert_is_a_404_problem(
    client: TestClient[Any, Any], engine: AsyncEngine
) -> None:
    await _store(engine, "API-2")
    for given in ("999999", "abc", "-1", "1e3", "99999999999999999999"):
        response = await client.get(path(given))
        assert response.status == 404, given
        assert response.content_type == "application/problem+json"
        body = await response.json()
        assert body["status"] == 404 and body["title"] == "Not Found"


async def test_it_only_reads(client: TestClient[Any, Any], engine: AsyncEngine) -> None:
    alert_id = await _store(engine, "API-3")
    assert (await client.post(path(alert_id))).status == 405
    assert (await client.delete(path(alert_id))).status == 405


async def test_an_unreadable_database_is_a_503_problem(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'never-migrated.db'}")
    try:
        app = make_web_app(engine, AlertRepository(engine))
        async with TestClient(TestServer(app)) as client:
            response = await client.get(path(1))
            assert response.status == 503
            assert response.content_type == "application/problem+json"
            assert response.headers["Retry-After"] == "5"
    finally:
        await engine.dispose()
