"""The subscriber store on SQLite and PostgreSQL: privacy, upserts, erasure, audit, answers."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit
from alertcast.store.tables import acknowledgements, subscribers
from alertcast.subscribers.crypto import SubscriberKeys
from alertcast.subscribers.model import ACK_NEED_HELP, ACK_SAFE, Candidate, QuietHours, Subscriber
from alertcast.subscribers.phones import InvalidAddress
from alertcast.subscribers.store import SubscriberNotFound, SubscriberStore, scrub_reason
from tests.subscribers.conftest import CHANNEL_KINDS

NUMBER = "+525512345678"
TYPED = "55 1234 5678"
DIGITS = "5512345678"
CONSENT = "Recibirás alertas de Protección Civil. Responde BAJA para dejar de recibirlas."

StoreAlert = Callable[[], Awaitable[int]]


async def subscribe(
    store: SubscriberStore,
    address: str = TYPED,
    channel: str = "sms",
    *,
    consent_text: str = CONSENT,
    source: str = "sms-keyword",
    **choices: Any,
) -> Subscriber:
    return await store.subscribe(
        channel, address, consent_text=consent_text, source=source, **choices
    )


async def all_records(engine: AsyncEngine) -> list[audit.AuditRecord]:
    return [r async for r in audit.iter_records(engine)]


async def subscriber_records(engine: AsyncEngine) -> list[audit.AuditRecord]:
    return [r for r in await all_records(engine) if r.action.startswith("subscriber.")]


def assert_no_address(records: list[audit.AuditRecord], keys: SubscriberKeys) -> None:
    forbidden = [DIGITS, keys.lookup_hash("sms", NUMBER), keys.lookup_hash("whatsapp", NUMBER)]
    for item in records:
        text = json.dumps(item.to_json(), ensure_ascii=False)
        for value in forbidden:
            assert value not in text, f"{item.action} holds {value!r}"


async def test_addresses_are_encrypted_at_rest_and_found_by_keyed_hash(
    store: SubscriberStore, engine: AsyncEngine, keys: SubscriberKeys
) -> None:
    created = await subscribe(store, topics=["sismos", "clima"], areas=["INEGI_CVEGEO:09015"])
    assert created.channel == "sms" and created.active
    assert created.topics == {"sismos", "clima"}
    assert created.areas == ("INEGI_CVEGEO:09015",)

    async with engine.connect() as conn:
        row = (await conn.execute(select(subscribers))).one()
    stored = " ".join(repr(value) for value in row)
    assert DIGITS not in stored and NUMBER not in stored
    assert DIGITS.encode() not in bytes(row.address_enc)
    assert row.address_hash == keys.lookup_hash("sms", NUMBER)
    assert keys.decrypt(row.address_enc) == NUMBER

    for spelling in (TYPED, NUMBER, "(55) 1234-5678", "+52 55 1234 5678"):
        found = await store.get("sms", spelling)
        assert found is not None and found.id == created.id
    assert await store.get("whatsapp", NUMBER) is None
    assert await store.get("sms", "55 8765 4321") is None
    assert await store.get("sms", "not a number") is None
    assert await store.address_of(created.id) == NUMBER
    assert await store.get_by_id(created.id) == found


async def test_subscribing_again_keeps_one_row_with_the_new_choices(
    store: SubscriberStore, engine: AsyncEngine
) -> None:
    first = await subscribe(store, topics=["sismos"], point=(19.43, -99.13))
    again = await subscribe(store, NUMBER, topics=["clima", "salud"], language="en")
    assert again.id == first.id
    assert again.topics == {"clima", "salud"} and again.language == "en"
    assert again.point == (19.43, -99.13)
    assert again.created_at == first.created_at
    async with engine.connect() as conn:
        assert len((await conn.execute(select(subscribers.c.id))).all()) == 1
    opt_ins = [r for r in await all_records(engine) if r.action == "subscriber.opt_in"]
    assert [r.data["new"] for r in opt_ins] == [True, False]
    assert all(r.data["consent_text"] == CONSENT for r in opt_ins)
    assert all(r.subject == f"subscriber:{first.id}" for r in opt_ins)
    assert opt_ins[0].data["source"] == "sms-keyword" and opt_ins[0].data["channel"] == "sms"


async def test_one_number_is_a_separate_subscriber_on_each_channel(
    store: SubscriberStore,
) -> None:
    sms = await subscribe(store)
    whatsapp = await subscribe(store, channel="whatsapp", source="whatsapp-keyword")
    telegram = await subscribe(store, "123456789", channel="telegram", source="telegram-bot")
    assert len({sms.id, whatsapp.id, telegram.id}) == 3
    assert await store.address_of(telegram.id) == "123456789"
    assert await store.counts() == {"sms": 1, "telegram": 1, "whatsapp": 1}


async def test_bad_input_is_refused_before_anything_is_stored(
    store: SubscriberStore, engine: AsyncEngine
) -> None:
    with pytest.raises(InvalidAddress):
        await subscribe(store, "55 1234")
    with pytest.raises(InvalidAddress):
        await subscribe(store, "@x", channel="telegram")
    with pytest.raises(ValueError, match="topic"):
        await subscribe(store, topics=["politica"])
    with pytest.raises(ValueError, match="language"):
        await subscribe(store, language="fr")
    with pytest.raises(ValueError, match="latitude"):
        await subscribe(store, point=(91.0, 0.0))
    with pytest.raises(ValueError, match="consent_text"):
        await subscribe(store, consent_text="  ")
    assert await store.counts() == {}
    assert await subscriber_records(engine) == []


async def test_unsubscribing_erases_the_person_and_leaves_no_address_in_the_audit(
    store: SubscriberStore, engine: AsyncEngine, keys: SubscriberKeys, store_alert: StoreAlert
) -> None:
    person = await subscribe(store, point=(19.4, -99.1))
    alert_id = await store_alert()
    await store.record_ack(person.id, alert_id, ACK_SAFE)

    assert await store.unsubscribe("sms", "+52 55 1234 5678", consent_text="BAJA", source="sms")
    assert await store.get("sms", NUMBER) is None
    assert await store.get_by_id(person.id) is None
    async with engine.connect() as conn:
        assert (await conn.execute(select(subscribers))).all() == []
        assert (await conn.execute(select(acknowledgements))).all() == []
    assert await store.ack_counts(alert_id) == {ACK_SAFE: 0, ACK_NEED_HELP: 0}
    with pytest.raises(SubscriberNotFound):
        await store.address_of(person.id)

    assert not await store.unsubscribe("sms", NUMBER, consent_text="BAJA", source="sms")
    records = await subscriber_records(engine)
    assert [r.action for r in records] == [
        "subscriber.opt_in",
        "subscriber.ack",
        "subscriber.opt_out",
    ]
    opt_out = records[-1]
    assert opt_out.data == {
        "subscriber": person.id,
        "channel": "sms",
        "consent_text": "BAJA",
        "source": "sms",
    }
    assert_no_address(await all_records(engine), keys)
    assert "19.4" not in json.dumps([r.to_json() for r in records])
    assert await audit.verify_chain(engine) == len(await all_records(engine))


async def test_update_changes_only_what_is_given_and_audits_field_names(
    store: SubscriberStore, engine: AsyncEngine, keys: SubscriberKeys
) -> None:
    person = await subscribe(store, topics=["sismos"], areas=["INEGI_CVEGEO:09"])
    quiet = QuietHours(time(23, 0), time(7, 0), "America/Mexico_City")
    changed = await store.update(
        person.id, topics=["sismos", "clima"], point=(19.43, -99.13), quiet_hours=quiet, actor="bot"
    )
    assert changed.topics == {"sismos", "clima"}
    assert changed.areas == ("INEGI_CVEGEO:09",)
    assert changed.point == (19.43, -99.13)
    assert changed.quiet_hours == quiet
    assert changed.language == "es"

    same = await store.update(person.id, topics=["clima", "sismos"], actor="bot")
    assert same == changed

    cleared = await store.update(person.id, clear_point=True, clear_quiet_hours=True, actor="bot")
    assert cleared.point is None and cleared.quiet_hours is None

    updates = [r for r in await all_records(engine) if r.action == "subscriber.updated"]
    assert [r.data["fields"] for r in updates] == [
        ["point", "quiet_hours", "topics"],
        ["point", "quiet_hours"],
    ]
    assert all(r.actor == "bot" and r.subject == f"subscriber:{person.id}" for r in updates)
    assert "19.43" not in json.dumps([r.to_json() for r in updates])
    assert_no_address(await all_records(engine), keys)

    with pytest.raises(SubscriberNotFound):
        await store.update(person.id + 100, language="en", actor="bot")
    with pytest.raises(ValueError, match="time zone"):
        await store.update(
            person.id, quiet_hours=QuietHours(time(1, 0), time(2, 0), "Mars/Olympus"), actor="bot"
        )


async def test_a_recipient_gone_deactivates_and_subscribing_again_reactivates(
    store: SubscriberStore, engine: AsyncEngine, keys: SubscriberKeys
) -> None:
    person = await subscribe(store)
    other = await subscribe(store, "55 8765 4321")
    hook = store.recipient_gone_hook()
    await hook("sms", NUMBER)
    await hook("sms", "not a subscriber's number")
    await hook("webhook", "https://partner.example/hook")

    gone = await store.get("sms", NUMBER)
    assert gone is not None and not gone.active
    assert await store.counts() == {"sms": 1}
    assert not await store.deactivate("sms", NUMBER, reason="again")
    batches = [batch async for batch in store.candidates("sms")]
    assert [c.id for batch in batches for c in batch] == [other.id]

    assert await store.deactivate_by_address(
        "sms", "+525587654321", "Twilio 21610: +525587654321 replied STOP"
    )
    back = await subscribe(store)
    assert back.id == person.id and back.active
    records = [r for r in await all_records(engine) if r.action == "subscriber.deactivated"]
    assert [r.data["subscriber"] for r in records] == [person.id, other.id]
    assert "replied STOP" in records[1].data["reason"]
    assert_no_address(await all_records(engine), keys)
    assert "8765" not in json.dumps([r.to_json() for r in records])
    opt_ins = [r for r in await all_records(engine) if r.action == "subscriber.opt_in"]
    assert opt_ins[-1].data["reactivated"] is True


def test_reasons_lose_numbers_however_written() -> None:
    text = scrub_reason("To +52 55 1234-5678 unreachable (chat 123456789)", NUMBER)
    assert "1234" not in text and "123456789" not in text and "unreachable" in text
    assert len(scrub_reason("x" * 500, NUMBER)) <= 200


async def test_export_holds_everything_and_delete_erases_it(
    store: SubscriberStore, engine: AsyncEngine, store_alert: StoreAlert, keys: SubscriberKeys
) -> None:
    person = await subscribe(store, topics=["sismos"], areas=["INEGI_CVEGEO:09015"])
    alert_id = await store_alert()
    await store.record_ack(person.id, alert_id, ACK_NEED_HELP)

    data = await store.export(person.id, actor="cli:ana")
    assert data["address"] == NUMBER
    assert data["id"] == person.id and data["channel"] == "sms"
    assert data["topics"] == ["sismos"] and data["areas"] == ["INEGI_CVEGEO:09015"]
    assert data["acknowledgements"] == [
        {"alert_id": alert_id, "kind": ACK_NEED_HELP, "at": data["acknowledgements"][0]["at"]}
    ]
    json.dumps(data)
    with pytest.raises(SubscriberNotFound):
        await store.export(person.id + 1)

    assert await store.delete(person.id, actor="cli:ana")
    assert not await store.delete(person.id, actor="cli:ana")
    assert await store.get_by_id(person.id) is None
    assert await store.ack_counts(alert_id) == {ACK_SAFE: 0, ACK_NEED_HELP: 0}
    actions = [(r.action, r.actor) for r in await subscriber_records(engine)]
    assert ("subscriber.exported", "cli:ana") in actions
    assert actions[-1] == ("subscriber.deleted", "cli:ana")
    assert_no_address(await all_records(engine), keys)


async def test_purge_erases_only_long_deactivated_subscribers(
    engine: AsyncEngine, keys: SubscriberKeys
) -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    store = SubscriberStore(engine, keys, kinds=CHANNEL_KINDS, clock=lambda: now[0])
    old_gone = await subscribe(store, "55 1111 1111")
    quiet_active = await subscribe(store, "55 2222 2222")
    recent_gone = await subscribe(store, "55 3333 3333")
    await store.deactivate("sms", "55 1111 1111", reason="blocked")
    now[0] += timedelta(days=100)
    await store.deactivate("sms", "55 3333 3333", reason="blocked")
    now[0] += timedelta(days=5)

    with pytest.raises(ValueError):
        await store.purge_inactive(timedelta(0), actor="retention")
    assert await store.purge_inactive(timedelta(days=30), actor="retention") == 1
    assert await store.get_by_id(old_gone.id) is None
    assert await store.get_by_id(quiet_active.id) is not None
    assert await store.get_by_id(recent_gone.id) is not None
    assert await store.purge_inactive(timedelta(days=30), actor="retention") == 0

    purges = [r for r in await all_records(engine) if r.action == "subscriber.purged"]
    assert len(purges) == 1 and purges[0].data["subscribers"] == [old_gone.id]
    assert purges[0].actor == "retention" and purges[0].data["retention_days"] == 30


async def test_touch_keeps_a_deactivated_subscriber_from_the_purge(
    engine: AsyncEngine, keys: SubscriberKeys
) -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    store = SubscriberStore(engine, keys, kinds=CHANNEL_KINDS, clock=lambda: now[0])
    person = await subscribe(store)
    await store.deactivate("sms", NUMBER, reason="blocked")
    now[0] += timedelta(days=60)
    await store.touch(person.id)
    seen = await store.get_by_id(person.id)
    assert seen is not None and seen.last_seen_at == now[0]
    now[0] += timedelta(days=10)
    assert await store.purge_inactive(timedelta(days=30), actor="retention") == 0


async def test_answers_to_an_alert_count_the_last_answer_of_each_person(
    store: SubscriberStore, engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    alert_id, other_alert = await store_alert(), await store_alert()
    ana = await subscribe(store, "55 1111 1111")
    luis = await subscribe(store, "55 2222 2222")
    eva = await subscribe(store, "123", channel="telegram", source="telegram-bot")

    await store.record_ack(ana.id, alert_id, ACK_NEED_HELP)
    await store.record_ack(ana.id, alert_id, ACK_SAFE)
    await store.record_ack(luis.id, alert_id, ACK_NEED_HELP)
    await store.record_ack(eva.id, alert_id, ACK_SAFE)
    await store.record_ack(eva.id, other_alert, ACK_NEED_HELP)

    assert await store.ack_counts(alert_id) == {ACK_SAFE: 2, ACK_NEED_HELP: 1}
    assert await store.ack_counts(other_alert) == {ACK_SAFE: 0, ACK_NEED_HELP: 1}
    assert await store.ack_counts(other_alert + 100) == {ACK_SAFE: 0, ACK_NEED_HELP: 0}
    acks = [r for r in await all_records(engine) if r.action == "subscriber.ack"]
    assert len(acks) == 5
    assert acks[1].data == {"subscriber": ana.id, "alert_id": alert_id, "kind": ACK_SAFE}

    with pytest.raises(ValueError):
        await store.record_ack(ana.id, alert_id, "maybe")
    with pytest.raises(SubscriberNotFound):
        await store.record_ack(ana.id + 100, alert_id, ACK_SAFE)
    with pytest.raises(LookupError):
        await store.record_ack(ana.id, other_alert + 100, ACK_SAFE)


async def test_candidates_stream_active_subscribers_of_one_channel_in_batches(
    engine: AsyncEngine, keys: SubscriberKeys
) -> None:
    store = SubscriberStore(engine, keys, kinds=CHANNEL_KINDS, batch_size=3)
    ids = []
    for n in range(8):
        person = await subscribe(
            store,
            str(1000 + n),
            channel="telegram",
            source="telegram-bot",
            language="en" if n % 2 else "es",
            topics=["sismos"],
            areas=[f"INEGI_CVEGEO:0900{n}"],
            point=(19.0 + n / 10, -99.0) if n == 0 else None,
        )
        ids.append(person.id)
    await store.update(
        ids[1], quiet_hours=QuietHours(time(22, 0), time(6, 30), "America/Cancun"), actor="bot"
    )
    await subscribe(store)  # another channel
    await store.deactivate("telegram", "1007", reason="blocked")

    batches = [batch async for batch in store.candidates("telegram")]
    assert [len(batch) for batch in batches] == [3, 3, 1]
    flat = [c for batch in batches for c in batch]
    assert [c.id for c in flat] == ids[:7]
    assert flat[0] == Candidate(
        id=ids[0],
        language="es",
        topics=frozenset({"sismos"}),
        areas=("INEGI_CVEGEO:09000",),
        point=(19.0, -99.0),
        quiet_hours=None,
    )
    assert flat[1].language == "en"
    assert flat[1].quiet_hours == QuietHours(time(22, 0), time(6, 30), "America/Cancun")
    assert [batch async for batch in store.candidates("whatsapp")] == []

    addresses = await store.addresses_of([ids[0], ids[7], ids[2], 10_000])
    assert addresses == {ids[0]: "1000", ids[2]: "1002"}
