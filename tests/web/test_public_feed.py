"""Our public CAP feed: publish through the ``cap`` channel, then read it as others would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from lxml import etree
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit, lifecycle
from alertcast.cap import parse_cap
from alertcast.cap_schema import schema_problems
from alertcast.channels.cap_feed import PUBLISHED_ACTION, CapFeedChannel, from_config
from alertcast.channels.registry import ChannelContext
from alertcast.config import ChannelConfig, FeedConfig
from alertcast.domain import (
    Alert,
    Area,
    Category,
    Certainty,
    Info,
    MsgType,
    Scope,
    Severity,
    Status,
    Urgency,
)
from alertcast.errors import ConfigError, Permanent
from alertcast.feeds.cap_index import CapIndexParser, IndexedLink
from alertcast.ports import OutboundMessage
from alertcast.store.tables import alerts, audit_log
from alertcast.web.public import add_public_routes

SITE = "https://alertas.example.org"
MEXICO = timezone(timedelta(hours=-6))
NOW = datetime.now(UTC).replace(microsecond=0)


def drill(identifier: str, *, sent: datetime, status: Status = Status.EXERCISE) -> Alert:
    """A bilingual alert whose texts try to break out of the page."""
    expires = sent + timedelta(hours=6)
    common: dict[str, Any] = {
        "categories": (Category.GEO,),
        "event": "Sismo",
        "urgency": Urgency.IMMEDIATE,
        "severity": Severity.EXTREME,
        "certainty": Certainty.OBSERVED,
        "expires": expires,
        "web": "javascript:alert(1)",
        "areas": (Area(area_desc="Costa de Guerrero"),),
    }
    return Alert(
        identifier=identifier,
        sender="sasmex@example.org",
        sent=sent,
        status=status,
        msg_type=MsgType.ALERT,
        scope=Scope.PUBLIC,
        infos=(
            Info(
                language="es-MX",
                headline="Sismo fuerte <script>alert('x')</script>",
                description="Sismo M7.2 frente a la costa.\nSegunda línea.",
                instruction="Aléjese de muros & ventanas",
                **common,
            ),
            Info(
                language="en-US",
                headline="Strong earthquake",
                instruction="Stay away from walls",
                **common,
            ),
        ),
    )


@pytest.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[TestClient[Any, Any]]:
    app = web.Application()
    add_public_routes(app, engine, SITE + "/")
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def store(engine: AsyncEngine, alert: Alert) -> int:
    stored = await lifecycle.ingest_alert(
        engine, alert, raw=None, source="t", actor="t", now=alert.sent
    )
    return stored.result.alert_id


async def publish(engine: AsyncEngine, alert_id: int, at: datetime = NOW) -> str | None:
    channel = CapFeedChannel("cap", engine, site_url=SITE, clock=at.timestamp)
    receipt = await channel.send(OutboundMessage(parts=("",), extra={"alert_id": alert_id}), "post")
    return receipt.provider_message_id


async def test_cap_document_is_valid_and_reads_back_equal(
    client: TestClient[Any, Any], engine: AsyncEngine
) -> None:
    alert = drill("SIM-1", sent=datetime(2026, 9, 19, 11, 0, tzinfo=MEXICO))
    alert_id = await store(engine, alert)
    assert await publish(engine, alert_id) == f"{SITE}/cap/{alert_id}.xml"

    response = await client.get(f"/cap/{alert_id}.xml")

    assert response.status == 200
    assert response.content_type == "application/cap+xml"
    assert response.headers["Cache-Control"] == "public, max-age=60"
    body = await response.read()
    root = etree.fromstring(body)
    assert schema_problems(root, "1.2", "/alert") == []
    parsed = parse_cap(body, strict=True)
    assert parsed.cap_version == "1.2"
    assert parsed.alert == alert


async def test_cap_document_validators_give_304(
    client: TestClient[Any, Any], engine: AsyncEngine
) -> None:
    alert_id = await store(engine, drill("SIM-2", sent=NOW - timedelta(minutes=5)))
    await publish(engine, alert_id)
    first = await client.get(f"/cap/{alert_id}.xml")
    etag = first.headers["ETag"]
    last_modified = first.headers["Last-Modified"]
    assert etag.startswith('"') and not etag.startswith("W/")

    again = await client.get(f"/cap/{alert_id}.xml", headers={"If-None-Match": etag})
    assert again.status == 304
    assert again.headers["ETag"] == etag
    assert await again.read() == b""
    since = await client.get(f"/cap/{alert_id}.xml", headers={"If-Modified-Since": last_modified})
    assert since.status == 304
    other = await client.get(f"/cap/{alert_id}.xml", headers={"If-None-Match": '"other"'})
    assert other.status == 200
    # If-None-Match decides when both are present (RFC 9110 §13.2.2).
    both = await client.get(
        f"/cap/{alert_id}.xml",
        headers={"If-None-Match": '"other"', "If-Modified-Since": last_modified},
    )
    assert both.status == 200
    older = await client.get(
        f"/cap/{alert_id}.xml", headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}
    )
    assert older.status == 200


async def test_atom_index_lists_newest_first_for_our_own_parser(
    client: TestClient[Any, Any], engine: AsyncEngine
) -> None:
    older = await store(engine, drill("SIM-A", sent=NOW - timedelta(minutes=30)))
    newer = await store(
        engine, drill("REAL-B", sent=NOW - timedelta(minutes=10), status=Status.ACTUAL)
    )
    await publish(engine, older, NOW - timedelta(minutes=20))
    await publish(engine, newer, NOW - timedelta(minutes=5))

    response = await client.get("/cap/index.atom")

    assert response.status == 200
    assert response.content_type == "application/atom+xml"
    body = await response.read()
    feed = FeedConfig(
        name="ours", kind="cap-index", file=Path("ours.toml"), url=SITE + "/cap/index.atom"
    )
    batch = CapIndexParser().parse(body, feed)
    assert batch.errors == ()
    assert batch.complete is False
    assert [link.url for link in batch.links] == [
        f"{SITE}/cap/{newer}.xml",
        f"{SITE}/cap/{older}.xml",
    ]
    first = batch.links[0]
    assert isinstance(first, IndexedLink) and first.hints is not None
    assert first.hints.identifier == "REAL-B"
    assert first.hints.msg_type is MsgType.ALERT
    assert first.hints.get("status") == "Actual"
    assert first.hints.sent == NOW - timedelta(minutes=10)
    root = etree.fromstring(body)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    types = root.xpath("//a:entry/a:link[@rel='alternate']/@type", namespaces=ns)
    assert types == ["application/cap+xml", "application/cap+xml"]

    etag = response.headers["ETag"]
    cached = await client.get("/cap/index.atom", headers={"If-None-Match": etag})
    assert cached.status == 304
    third = await store(engine, drill("SIM-C", sent=NOW - timedelta(minutes=1)))
    await publish(engine, third, NOW)
    changed = await client.get("/cap/index.atom", headers={"If-None-Match": etag})
    assert changed.status == 200
    assert changed.headers["ETag"] != etag


async def test_page_shows_the_drill_unmistakably_and_escapes_everything(
    client: TestClient[Any, Any], engine: AsyncEngine
) -> None:
    alert_id = await store(engine, drill("SIM-3", sent=NOW - timedelta(minutes=5)))
    await publish(engine, alert_id)

    spanish = await client.get(f"/alerts/{alert_id}")
    assert spanish.status == 200
    assert spanish.headers["Content-Language"] == "es"
    text = await spanish.text()
    assert "SIMULACRO / EXERCISE" in text
    assert "Esto no es una emergencia real." in text
    assert "<script>alert" not in text
    assert "&lt;script&gt;" in text
    assert "Aléjese de muros &amp; ventanas" in text
    assert 'href="javascript:' not in text
    assert "CANCELADA" not in text and "EXPIRADA" not in text

    english = await client.get(f"/alerts/{alert_id}?lang=en")
    english_text = await english.text()
    assert english.headers["Content-Language"] == "en"
    assert "EXERCISE / SIMULACRO" in english_text
    assert "Strong earthquake" in english_text
    assert "Stay away from walls" in english_text

    negotiated = await client.get(
        f"/alerts/{alert_id}", headers={"Accept-Language": "fr;q=1, en-GB;q=0.8, es;q=0.5"}
    )
    assert negotiated.headers["Content-Language"] == "en"


async def test_page_of_a_real_alert_has_no_banner(
    client: TestClient[Any, Any], engine: AsyncEngine
) -> None:
    alert_id = await store(
        engine, drill("REAL-4", sent=NOW - timedelta(minutes=5), status=Status.ACTUAL)
    )
    await publish(engine, alert_id)
    text = await (await client.get(f"/alerts/{alert_id}")).text()
    assert "SIMULACRO" not in text and "EXERCISE" not in text


async def test_page_says_cancelled_and_expired(
    client: TestClient[Any, Any], engine: AsyncEngine
) -> None:
    cancelled = await store(engine, drill("SIM-5", sent=NOW - timedelta(minutes=5)))
    expired = await store(engine, drill("SIM-6", sent=NOW - timedelta(days=2)))
    await publish(engine, cancelled)
    await publish(engine, expired)
    async with engine.begin() as conn:
        await conn.execute(update(alerts).where(alerts.c.id == cancelled).values(state="cancelled"))

    assert "CANCELADA" in await (await client.get(f"/alerts/{cancelled}")).text()
    assert "CANCELLED" in await (await client.get(f"/alerts/{cancelled}?lang=en")).text()
    assert "EXPIRADA" in await (await client.get(f"/alerts/{expired}")).text()


async def test_unpublished_alerts_do_not_exist(
    client: TestClient[Any, Any], engine: AsyncEngine
) -> None:
    hidden = await store(engine, drill("HIDDEN-7", sent=NOW - timedelta(minutes=5)))
    for path in (f"/cap/{hidden}.xml", f"/alerts/{hidden}", "/cap/abc.xml", "/alerts/-1"):
        response = await client.get(path)
        assert response.status == 404, path
    index = await (await client.get("/cap/index.atom")).text()
    assert "HIDDEN-7" not in index


async def test_publishing_is_idempotent_and_audited(engine: AsyncEngine) -> None:
    alert_id = await store(engine, drill("SIM-8", sent=NOW - timedelta(minutes=5)))
    await publish(engine, alert_id)
    await publish(engine, alert_id)
    async with engine.connect() as conn:
        records = (
            await conn.execute(select(func.count()).where(audit_log.c.action == PUBLISHED_ACTION))
        ).scalar_one()
    assert records == 1
    assert await audit.verify_chain(engine) >= 2  # ingest and publication, chain intact


async def test_drafts_and_missing_alerts_are_refused(engine: AsyncEngine) -> None:
    draft = await store(engine, drill("DRAFT-9", sent=NOW, status=Status.DRAFT))
    with pytest.raises(Permanent):
        await publish(engine, draft)
    with pytest.raises(Permanent):
        await publish(engine, 987654)
    channel = CapFeedChannel("cap", engine)
    with pytest.raises(Permanent):
        await channel.send(OutboundMessage(parts=("x",)), "post")


def test_from_config_needs_the_database(tmp_path: Path) -> None:
    config = ChannelConfig(name="cap", kind="cap", file=tmp_path / "cap.toml")
    with pytest.raises(ConfigError):
        from_config(config, ChannelContext(data_dir=tmp_path))
