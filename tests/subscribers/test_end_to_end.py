"""From a stored alert to a subscriber's chat: targeting, the ledger by id, the address at send.

The planner picks the subscribers inside the alert's polygon, the ledger
holds only ``sub:ID`` targets, the worker looks the address up right before
sending, and a recipient who blocked the bot is deactivated without their
address ever reaching the audit trail.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit
from alertcast.areas import AreaCatalogue
from alertcast.config import Config, load_config
from alertcast.dispatch.planner import Planner
from alertcast.dispatch.worker import Worker
from alertcast.errors import RecipientGone
from alertcast.ingest import Ingestor
from alertcast.store.alerts import AlertRepository
from alertcast.store.tables import audit_log, deliveries
from alertcast.subscribers.audience import SubscriberAudience
from alertcast.subscribers.crypto import SubscriberKeys
from alertcast.subscribers.store import SubscriberStore
from alertcast.testing import RecordingChannel, UnlimitedLimiter

RULES = """
[route]

[[route.routes]]
name = "quakes-to-subscribers"
category = "Geo"
channels = ["dm"]
audience = { topics = ["sismos"], areas = ["alert"] }
approval = "auto"
"""

QUAKE = """<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier>
  <sender>sasmex@example.mx</sender>
  <sent>2026-12-06T10:00:00-06:00</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <language>es-MX</language>
    <category>Geo</category>
    <event>Sismo</event>
    <urgency>Immediate</urgency>
    <severity>Severe</severity>
    <certainty>Observed</certainty>
    <expires>2099-12-06T12:00:00-06:00</expires>
    <headline>Sismo fuerte en la Ciudad de México</headline>
    <area>
      <areaDesc>Centro de la Ciudad de México</areaDesc>
      <polygon>19.30,-99.20 19.50,-99.20 19.50,-99.00 19.30,-99.00 19.30,-99.20</polygon>
    </area>
  </info>
</alert>
"""


def _config(root: Path) -> Config:
    (root / "channels").mkdir()
    (root / "feeds").mkdir()
    (root / "channels" / "dm.toml").write_text('name = "dm"\nkind = "console"\n', "utf-8")
    (root / "rules.toml").write_text(RULES, encoding="utf-8")
    (root / "alertcast.toml").write_text("[service]\n", encoding="utf-8")
    return load_config(root / "alertcast.toml")


async def test_only_the_subscriber_inside_is_told_and_a_blocked_bot_deactivates_them(
    engine: AsyncEngine, keys: SubscriberKeys, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    store = SubscriberStore(engine, keys, kinds={"dm": "telegram"})
    inside = await store.subscribe(
        "dm", "1001", topics=["sismos"], point=(19.40, -99.10), consent_text="Acepto", source="t"
    )
    await store.subscribe(
        "dm", "1002", topics=["sismos"], point=(20.60, -100.40), consent_text="Acepto", source="t"
    )
    await store.subscribe(
        "dm", "1003", topics=["clima"], point=(19.41, -99.11), consent_text="Acepto", source="t"
    )
    planner = Planner(
        engine,
        config,
        audience=SubscriberAudience(store, AreaCatalogue(engine)),
    )
    ingestor = Ingestor(AlertRepository(engine), listeners=(planner.on_new_alert,))
    channel = RecordingChannel(name="dm")
    worker = Worker(
        engine,
        {"dm": channel},
        UnlimitedLimiter(),
        "w1",
        resolve_addresses=store.resolve_targets,
        on_recipient_gone=store.recipient_gone_hook(),
    )

    await ingestor.ingest_bytes(QUAKE.format(identifier="S-1").encode(), source="t", actor="t")
    await worker.run_once()

    assert channel.targets == ["1001"]  # inside and on the topic: exactly one message
    async with engine.connect() as conn:
        targets = list((await conn.execute(select(deliveries.c.target))).scalars())
    assert targets == [f"sub:{inside.id}"]  # the ledger never holds the chat id

    channel.fail("1001", RecipientGone("Forbidden: bot was blocked by the user"))
    await ingestor.ingest_bytes(QUAKE.format(identifier="S-2").encode(), source="t", actor="t")
    await worker.run_once()

    after = await store.get_by_id(inside.id)
    assert after is not None and not after.active
    async with engine.connect() as conn:
        records = [str(r) for r in (await conn.execute(select(audit_log.c.data))).scalars()]
    assert records and not any("1001" in record for record in records)
    assert await audit.verify_chain(engine) == await audit.count(engine)


async def test_messages_to_subscribers_ask_for_an_acknowledgement(
    engine: AsyncEngine, keys: SubscriberKeys, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    store = SubscriberStore(engine, keys, kinds={"dm": "telegram"})
    await store.subscribe(
        "dm", "1001", topics=["sismos"], point=(19.40, -99.10), consent_text="Acepto", source="t"
    )
    planner = Planner(engine, config, audience=SubscriberAudience(store, AreaCatalogue(engine)))
    ingestor = Ingestor(AlertRepository(engine), listeners=(planner.on_new_alert,))
    channel = RecordingChannel(name="dm")
    worker = Worker(
        engine, {"dm": channel}, UnlimitedLimiter(), "w1", resolve_addresses=store.resolve_targets
    )
    await ingestor.ingest_bytes(QUAKE.format(identifier="S-3").encode(), source="t", actor="t")
    await worker.run_once()
    (sent,) = channel.sent
    assert sent.message.extra["ack"] is True
    assert isinstance(sent.message.extra["alert_id"], int)
