"""``POST /api/v1/ingest/cap``: issuers push CAP with a token; bad pushes are refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit
from alertcast.cap import to_cap_xml
from alertcast.config import FeedConfig
from alertcast.domain import (
    Alert,
    MsgType,
)
from alertcast.ingest import Ingestor
from alertcast.store.alerts import AlertRepository, AlertState
from alertcast.web.app import make_web_app
from alertcast.web.ingest_api import PUSH_PATH, FailureThrottle, add_push_route
from tests.builders import quake_alert

TOKEN = "s3cr3t-push-token-7f2a9c"
OTHER_TOKEN = "another-feed-token-41b0"
SENDER = "sasmex@example.mx"
SENT = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
XML = {"Content-Type": "application/cap+xml"}


def make(
    identifier: str,
    *,
    sender: str = SENDER,
    msg_type: MsgType = MsgType.ALERT,
    references: tuple[Alert, ...] = (),
    minutes: int = 0,
) -> Alert:
    return quake_alert(
        identifier,
        sender=sender,
        sent=SENT + timedelta(minutes=minutes),
        msg_type=msg_type,
        references=references,
        headline="Alerta sísmica",
    )


def push_feed(
    name: str = "sasmex", *, env: str = "PUSH_TOKEN_SASMEX", **changes: Any
) -> FeedConfig:
    fields: dict[str, Any] = {
        "name": name,
        "kind": "push",
        "file": Path(f"feeds/{name}.toml"),
        "max_bytes": 20_000,
        "secrets": {"token": env},
        "mapping": {"senders": [SENDER]},
    }
    fields.update(changes)
    return FeedConfig(**fields)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> AsyncIterator[TestClient[Any, Any]]:
    monkeypatch.setenv("PUSH_TOKEN_SASMEX", TOKEN)
    monkeypatch.setenv("PUSH_TOKEN_OTHER", OTHER_TOKEN)
    repository = AlertRepository(engine)
    ingestor = Ingestor(repository, clock=lambda: SENT + timedelta(minutes=30))
    app = make_web_app(engine, repository)
    feeds = [
        push_feed(),
        push_feed("other", env="PUSH_TOKEN_OTHER", mapping={}, max_bytes=1_000_000),
    ]
    add_push_route(app, ingestor, feeds, throttle=FailureThrottle(burst=3, clock=clock))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {**XML, "Authorization": f"Bearer {token}"}


async def actions(engine: AsyncEngine) -> list[str]:
    return [r.action for r in await audit.tail(engine, 50)]


async def test_a_good_push_is_stored_with_201(
    client: TestClient[Any, Any], engine: AsyncEngine
) -> None:
    alert = make("SASMEX-1")

    response = await client.post(PUSH_PATH, data=to_cap_xml(alert), headers=bearer())

    assert response.status == 201
    assert await response.json() == {
        "alerts": [{"key": str(alert.key), "created": True, "state": "active"}]
    }
    stored = await AlertRepository(engine).get(alert.key)
    assert stored is not None and stored.alert == alert
    assert stored.source == "push:sasmex" and stored.feed == "sasmex"
    (record,) = await audit.tail(engine, 1)
    assert (record.action, record.actor) == ("alert.ingested", "push:sasmex")

    again = await client.post(PUSH_PATH, data=to_cap_xml(alert), headers=bearer())
    assert again.status == 200
    assert await again.json() == {
        "alerts": [{"key": str(alert.key), "created": False, "state": "active"}]
    }
    assert await audit.count(engine) == 1


async def test_the_lifecycle_applies_to_pushed_alerts(
    client: TestClient[Any, Any], engine: AsyncEngine
) -> None:
    alert = make("SASMEX-1")
    cancel = make("SASMEX-2", msg_type=MsgType.CANCEL, references=(alert,), minutes=5)

    first = await client.post(PUSH_PATH, data=to_cap_xml(cancel), headers=bearer())
    second = await client.post(PUSH_PATH, data=to_cap_xml(alert), headers=bearer())

    assert first.status == second.status == 201
    (item,) = (await second.json())["alerts"]
    assert item["state"] == AlertState.CANCELLED.value


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        (XML, "missing bearer token"),
        ({**XML, "Authorization": f"Basic {TOKEN}"}, "missing bearer token"),
        ({**XML, "Authorization": "Bearer "}, "missing bearer token"),
        (bearer("not-the-token"), "invalid token"),
        (bearer(TOKEN[:-1]), "invalid token"),
    ],
    ids=["none", "basic", "empty", "wrong", "prefix"],
)
async def test_a_push_without_a_valid_token_is_401_and_audited(
    client: TestClient[Any, Any],
    engine: AsyncEngine,
    capsys: pytest.CaptureFixture[str],
    headers: dict[str, str],
    reason: str,
) -> None:
    alert = make("FORGED-1")

    response = await client.post(PUSH_PATH, data=to_cap_xml(alert), headers=headers)

    assert response.status == 401
    assert response.content_type == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="alertcast"')
    body = await response.json()
    assert body["status"] == 401 and reason in body["detail"]
    assert await AlertRepository(engine).count() == 0
    (record,) = await audit.tail(engine, 5)
    assert (record.action, record.actor, record.subject) == ("push.refused", "push", "push")
    assert record.data["reason"] == reason and record.data["status"] == 401
    assert record.data["remote"] == "127.0.0.1"
    logged = capsys.readouterr().err
    assert "push.refused" in logged
    for secret in (TOKEN, TOKEN[:-1], "not-the-token"):
        assert secret not in logged
        assert secret not in record.data_json


async def test_each_feed_has_its_own_token_and_senders(
    client: TestClient[Any, Any], engine: AsyncEngine
) -> None:
    stranger = make("X-1", sender="someone@example.org")

    refused = await client.post(PUSH_PATH, data=to_cap_xml(stranger), headers=bearer())
    accepted = await client.post(PUSH_PATH, data=to_cap_xml(stranger), headers=bearer(OTHER_TOKEN))

    assert refused.status == 403
    assert refused.content_type == "application/problem+json"
    assert "someone@example.org" in (await refused.json())["detail"]
    assert accepted.status == 201  # the other feed lists no senders: any sender may push
    records = [r for r in await audit.tail(engine, 5) if r.action == "push.refused"]
    (record,) = records
    assert record.subject == str(stranger.key) and record.actor == "push:sasmex"
    assert record.data["senders"] == ["someone@example.org"] and record.data["status"] == 403
    stored = await AlertRepository(engine).get(stranger.key)
    assert stored is not None and stored.feed == "other"


async def test_a_document_over_the_feed_limit_is_413(
    client: TestClient[Any, Any], engine: AsyncEngine
) -> None:
    big = make("BIG-1")
    padded = to_cap_xml(big).replace(b"<identifier>", b"<!--" + b"x" * 30_000 + b"--><identifier>")

    declared = await client.post(PUSH_PATH, data=padded, headers=bearer())

    async def stream() -> AsyncIterator[bytes]:  # chunked: no Content-Length to trust
        for start in range(0, len(padded), 4096):
            yield padded[start : start + 4096]

    streamed = await client.post(PUSH_PATH, data=stream(), headers=bearer())

    for response in (declared, streamed):
        assert response.status == 413
        assert response.content_type == "application/problem+json"
        assert "20000 bytes" in (await response.json())["detail"]
    assert await AlertRepository(engine).count() == 0
    assert await actions(engine) == ["push.refused", "push.refused"]


async def test_a_broken_document_is_422_with_the_reason(
    client: TestClient[Any, Any], engine: AsyncEngine
) -> None:
    broken = b'<?xml version="1.0"?><alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><ident'

    response = await client.post(PUSH_PATH, data=broken, headers=bearer())

    assert response.status == 422
    assert response.content_type == "application/problem+json"
    body = await response.json()
    assert body["status"] == 422 and body["detail"].startswith("not a usable CAP document: ")
    assert len(body["detail"]) > len("not a usable CAP document: ")
    (record,) = await audit.tail(engine, 1)
    assert record.action == "cap.rejected" and record.actor == "push:sasmex"
    assert record.data["feed"] == "sasmex"

    # ... and the next good document goes through.
    good = await client.post(PUSH_PATH, data=to_cap_xml(make("OK-1")), headers=bearer())
    assert good.status == 201


async def test_a_document_that_is_not_xml_is_415(
    client: TestClient[Any, Any], engine: AsyncEngine
) -> None:
    headers = {**bearer(), "Content-Type": "application/json"}
    response = await client.post(PUSH_PATH, data=b"{}", headers=headers)
    assert response.status == 415
    assert response.content_type == "application/problem+json"
    assert await actions(engine) == ["push.refused"]
    for content_type in ("text/xml", "application/xml; charset=utf-8"):
        ok = await client.post(
            PUSH_PATH,
            data=to_cap_xml(make(f"CT-{content_type[:4]}")),
            headers={**bearer(), "Content-Type": content_type},
        )
        assert ok.status == 201


async def test_failed_attempts_are_throttled_per_address(
    client: TestClient[Any, Any], engine: AsyncEngine, clock: Clock
) -> None:
    alert = to_cap_xml(make("T-1"))
    for _ in range(3):
        assert (await client.post(PUSH_PATH, data=alert, headers=bearer("guess"))).status == 401

    throttled = await client.post(PUSH_PATH, data=alert, headers=bearer())

    assert throttled.status == 429  # even the right token waits: guessing must not go on
    assert int(throttled.headers["Retry-After"]) >= 1
    assert throttled.content_type == "application/problem+json"
    assert await actions(engine) == ["push.refused"] * 3  # throttled attempts are not audited

    clock.now += 15  # the allowance refills at 6 a minute
    assert (await client.post(PUSH_PATH, data=alert, headers=bearer())).status == 201


def test_the_throttle_refills_and_forgets_old_addresses() -> None:
    clock = Clock()
    throttle = FailureThrottle(burst=2, per_minute=60, max_addresses=2, clock=clock)
    throttle.failed("a")
    throttle.failed("a")
    assert throttle.retry_after("a") == pytest.approx(1.0)
    clock.now += 1
    assert throttle.retry_after("a") is None
    throttle.failed("b")
    throttle.failed("c")  # "a" is forgotten, the least recently seen
    assert throttle.retry_after("a") is None


async def test_there_is_no_push_route_without_push_feeds(engine: AsyncEngine) -> None:
    app = make_web_app(engine, AlertRepository(engine))
    async with TestClient(TestServer(app)) as client:
        response = await client.post(PUSH_PATH, data=b"<alert/>", headers=bearer())
        assert response.status in (404, 405)
    with pytest.raises(ValueError, match="ingestor"):
        make_web_app(engine, AlertRepository(engine), push_feeds=[push_feed()])


async def test_make_web_app_registers_the_push_route(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUSH_TOKEN_SASMEX", TOKEN)
    repository = AlertRepository(engine)
    app: web.Application = make_web_app(
        engine, repository, ingestor=Ingestor(repository), push_feeds=[push_feed()]
    )
    async with TestClient(TestServer(app)) as client:
        response = await client.post(PUSH_PATH, data=to_cap_xml(make("R-1")), headers=bearer())
        assert response.status == 201
        assert (await client.get("/healthz")).status == 200
