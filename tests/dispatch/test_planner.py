"""From a stored alert to ledger rows: routed once, held for approval, rendered, planned."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit
from alertcast.cap_writer import to_cap_xml
from alertcast.config import Config, load_config
from alertcast.dispatch import ledger
from alertcast.dispatch.cancellation import cancel_on_lifecycle
from alertcast.dispatch.planner import Planner, ledger_priority
from alertcast.domain import MsgType, Severity
from alertcast.ingest import Ingestor
from alertcast.ports import OutboundMessage
from alertcast.store.alerts import AlertRepository
from alertcast.store.tables import deliveries, delivery_messages, dispatch_routes
from tests.dispatch.conftest import make_alert

RULES = """
[route]

[[route.routes]]
name = "quakes"
category = "Geo"
channels = ["feed-post", "hook"]
approval = "auto"
continue = true

[[route.routes]]
name = "quakes-reviewed"
category = "Geo"
channels = ["reviewed"]
approval = "two"
"""


def _config(root: Path, rules: str = RULES, extra: dict[str, str] | None = None) -> Config:
    (root / "channels").mkdir()
    for name, text in (extra or {}).items():
        (root / "channels" / f"{name}.toml").write_text(text, encoding="utf-8")
    (root / "feeds").mkdir()
    for name, target in (("feed-post", "@alertas"), ("hook", None), ("reviewed", None)):
        lines = [f'name = "{name}"', 'kind = "console"', "[options]", 'language = "es"']
        if target:
            lines.append(f'target = "{target}"')
        (root / "channels" / f"{name}.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "rules.toml").write_text(rules, encoding="utf-8")
    config_file = root / "alertcast.toml"
    config_file.write_text("[service]\n", encoding="utf-8")
    return load_config(config_file)


async def _store(engine: AsyncEngine, alert_xml: bytes, ingestor: Ingestor | None = None) -> int:
    ingestor = ingestor or Ingestor(AlertRepository(engine))
    outcome = await ingestor.ingest_bytes(alert_xml, source="t", actor="t")
    alert_id = outcome.items[0].alert_id
    assert alert_id is not None
    return alert_id


async def _rows(engine: AsyncEngine, alert_id: int) -> list[dict[str, object]]:
    """The alert's ledger rows, each with its message as ``payload``."""
    query = (
        select(deliveries, delivery_messages.c.payload)
        .join(delivery_messages, delivery_messages.c.id == deliveries.c.message_id)
        .where(deliveries.c.alert_id == alert_id)
        .order_by(deliveries.c.id)
    )
    async with engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(query)]


async def test_auto_routes_are_planned_and_approval_routes_are_held(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    planner = Planner(engine, config)
    alert = make_alert("Q-1", severity=Severity.EXTREME)
    alert_id = await _store(engine, to_cap_xml(alert))

    result = await planner.dispatch(alert_id)

    assert result.routed and result.planned == 2 and result.awaiting_approval == 1
    rows = await _rows(engine, alert_id)
    assert sorted((r["channel"], r["target"]) for r in rows) == [
        ("feed-post", "@alertas"),
        ("hook", "post"),
    ]
    message = json.loads(str(rows[0]["payload"]))
    assert message["language"] == "es-MX" and message["severity"] == "Extreme"
    assert message["extra"]["alert_id"] == alert_id and message["extra"]["msg_type"] == "Alert"
    assert "ack" not in message["extra"]  # a channel post has nobody to answer "I am safe"
    assert "Q-1" in "".join(message["parts"])  # the headline, rendered
    assert rows[0]["deadline_at"] == alert.expires
    # Extreme and Immediate outranks everything routine (lower goes first in the ledger)
    assert rows[0]["priority"] == ledger_priority(100) < ledger_priority(60)
    states = {r.channel: r.state for r in await planner.routes(alert_id)}
    assert states == {"feed-post": "planned", "hook": "planned", "reviewed": "awaiting_approval"}
    actions = [r.action for r in await audit.tail(engine, 20)]
    assert actions.count("dispatch.routed") == 1
    assert actions.count("dispatch.route_planned") == 2


async def test_an_alert_is_routed_once_however_often_it_is_dispatched(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    alert_id = await _store(engine, to_cap_xml(make_alert("Q-2")))
    first = await Planner(engine, config).dispatch(alert_id)
    again = await Planner(engine, config).dispatch(alert_id)  # another instance, later
    assert first.routed and not again.routed
    assert len(await _rows(engine, alert_id)) == 2
    actions = [r.action for r in await audit.tail(engine, 30)]
    assert actions.count("dispatch.routed") == 1


async def test_a_route_whose_template_fails_is_marked_failed_and_the_others_go_on(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    (tmp_path / "channels" / "templates" / "hook").mkdir(parents=True)
    (tmp_path / "channels" / "templates" / "hook" / "earthquake.es.j2").write_text(
        "{{ info.headline | no_such_filter }}", encoding="utf-8"
    )
    config = load_config(tmp_path / "alertcast.toml")
    alert_id = await _store(engine, to_cap_xml(make_alert("Q-3")))

    result = await Planner(engine, config).dispatch(alert_id)

    routes = {r.channel: r for r in await Planner(engine, config).routes(alert_id)}
    assert routes["hook"].state == "failed" and result.failed == 1
    assert [(r["channel"]) for r in await _rows(engine, alert_id)] == ["feed-post"]
    record = next(r for r in await audit.tail(engine, 20) if r.action == "dispatch.route_failed")
    assert record.data["channel"] == "hook" and record.data["detail"]


async def test_catch_up_routes_what_a_crash_left_unrouted_or_half_planned(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    planner = Planner(engine, config)
    never_routed = await _store(engine, to_cap_xml(make_alert("Q-4")))
    half = await _store(engine, to_cap_xml(make_alert("Q-5")))
    await planner.dispatch(half)
    # as if the process died after routing, before one route was planned
    async with engine.begin() as conn:
        await conn.execute(
            update(dispatch_routes)
            .where(dispatch_routes.c.alert_id == half)
            .where(dispatch_routes.c.channel == "hook")
            .values(state="planning")
        )
        await conn.execute(
            deliveries.delete().where(
                (deliveries.c.alert_id == half) & (deliveries.c.channel == "hook")
            )
        )

    assert await planner.catch_up() == 1

    assert len(await _rows(engine, never_routed)) == 2
    assert sorted(str(r["channel"]) for r in await _rows(engine, half)) == ["feed-post", "hook"]
    assert await planner.catch_up() == 0  # nothing left: nothing done twice


async def test_through_ingest_a_cancel_stops_the_rest_and_reaches_who_was_told(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    planner = Planner(engine, config)
    ingestor = Ingestor(
        AlertRepository(engine),
        listeners=(planner.on_new_alert,),
        effect_listeners=(cancel_on_lifecycle(engine),),
    )
    first = make_alert("Q-6")
    first_id = await _store(engine, to_cap_xml(first), ingestor)
    assert len(await _rows(engine, first_id)) == 2
    # the post went out; the webhook had not been sent yet
    async with engine.begin() as conn:
        await conn.execute(
            update(deliveries)
            .where((deliveries.c.alert_id == first_id) & (deliveries.c.channel == "feed-post"))
            .values(state="sent", provider_message_id="m-1")
        )
    cancel = make_alert(
        "Q-6-C",
        msg_type=MsgType.CANCEL,
        references=(first,),
        sent=first.sent + timedelta(minutes=3),
    )
    cancel_id = await _store(engine, to_cap_xml(cancel), ingestor)

    assert await ledger.progress(engine, first_id) == {
        "feed-post": {"sent": 1},
        "hook": {"cancelled": 1},
    }
    # a Cancel has no info, so no category route takes it; it follows the routes of what
    # it cancels, to those who were told, and to nobody else
    rows = await _rows(engine, cancel_id)
    assert [(r["channel"], r["target"]) for r in rows] == [("feed-post", "@alertas")]
    extra = json.loads(str(rows[0]["payload"]))["extra"]
    assert extra["msg_type"] == "Cancel" and extra["replaces"] == [first_id]
    routes = {r.channel: r.state for r in await planner.routes(cancel_id)}
    assert routes == {"feed-post": "planned", "hook": "planned"}  # never approved: not followed


async def test_nothing_is_planned_for_an_alert_no_route_takes(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    config = _config(tmp_path, rules="[route]\n")
    alert_id = await _store(engine, to_cap_xml(make_alert("Q-7")))
    result = await Planner(engine, config).dispatch(alert_id)
    assert result.routed and result.planned == 0
    assert await _rows(engine, alert_id) == []
    record = next(r for r in await audit.tail(engine, 5) if r.action == "dispatch.routed")
    assert record.data["routes"] == []


async def test_what_whatsapp_could_not_deliver_outside_the_window_goes_by_sms(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    (tmp_path / "channels" / "wa.toml").write_text(
        'name = "wa"\nkind = "console"\n[options]\nsms_fallback = "sms-line"\n', encoding="utf-8"
    )
    (tmp_path / "channels" / "sms-line.toml").write_text(
        'name = "sms-line"\nkind = "console"\n', encoding="utf-8"
    )
    config = load_config(tmp_path / "alertcast.toml")
    planner = Planner(engine, config)
    alert_id = await _store(engine, to_cap_xml(make_alert("Q-8", severity=Severity.EXTREME)))
    await ledger.plan(
        engine,
        alert_id=alert_id,
        channel="wa",
        targets=["whatsapp:+5215512345678", "whatsapp:+5215587654321", "whatsapp:+5215500000000"],
        message=OutboundMessage(parts=("Sismo",)),
        priority=0,
        deadline=None,
    )
    errors = {
        "whatsapp:+5215512345678": "whatsapp.outside_session: no approved template",
        "whatsapp:+5215587654321": "provider reported undelivered (error 63016)",
        "whatsapp:+5215500000000": "provider reported undelivered (error 30003)",
    }
    async with engine.begin() as conn:
        for target, error in errors.items():
            await conn.execute(
                update(deliveries)
                .where((deliveries.c.channel == "wa") & (deliveries.c.target == target))
                .values(state="failed", last_error_class="Permanent", last_error=error)
            )

    assert await planner.fall_back() == 2
    assert await planner.fall_back() == 0  # once per person

    rows = [r for r in await _rows(engine, alert_id) if r["channel"] == "sms-line"]
    assert sorted(str(r["target"]) for r in rows) == ["+5215512345678", "+5215587654321"]
    message = json.loads(str(rows[0]["payload"]))
    assert "Q-8" in "".join(message["parts"])  # rendered for SMS, not the WhatsApp text


async def test_messages_of_an_alert_on_our_cap_feed_link_to_its_public_page(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    rules = RULES.replace('channels = ["feed-post", "hook"]', 'channels = ["feed-post", "cap"]')
    config = _config(tmp_path, rules=rules, extra={"cap": 'name = "cap"\nkind = "cap"\n'})
    alert_id = await _store(engine, to_cap_xml(make_alert("Q-9")))

    await Planner(engine, config, site_url="https://alertas.example.gob.mx").dispatch(alert_id)

    post = next(r for r in await _rows(engine, alert_id) if r["channel"] == "feed-post")
    text = "".join(json.loads(str(post["payload"]))["parts"])
    assert f"https://alertas.example.gob.mx/alerts/{alert_id}" in text


async def test_without_our_cap_feed_no_link_to_a_page_that_would_not_exist(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    alert_id = await _store(engine, to_cap_xml(make_alert("Q-10")))
    await Planner(engine, config, site_url="https://alertas.example.gob.mx").dispatch(alert_id)
    for row in await _rows(engine, alert_id):
        assert "/alerts/" not in "".join(json.loads(str(row["payload"]))["parts"])
