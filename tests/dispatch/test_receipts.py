"""Delivery receipts move sent rows forward only, once, audited; unknown ids are reported."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit
from alertcast.dispatch import ledger
from alertcast.dispatch.ledger import DeliveryState, Outcome
from alertcast.dispatch.receipts import record_receipt, target_state
from alertcast.ports import OutboundMessage
from alertcast.store.tables import deliveries
from tests.dispatch.conftest import StoreAlert


async def _sent(
    engine: AsyncEngine, alert_id: int, targets: Sequence[str], *, channel: str = "sms"
) -> dict[str, str]:
    """Plan and mark ``targets`` sent, as the worker would; target -> provider message id."""
    await ledger.plan(
        engine,
        alert_id=alert_id,
        channel=channel,
        targets=targets,
        message=OutboundMessage(parts=("Aviso",)),
        priority=10,
        deadline=None,
    )
    claimed = await ledger.claim(engine, worker="w", channels=[channel], limit=100, lease_s=60)
    ids = {d.target: f"SM{alert_id}{d.target}" for d in claimed}
    for delivery in claimed:
        assert await ledger.start_attempt(engine, delivery.id, worker="w")
    await ledger.record_outcomes(
        engine,
        [
            Outcome(
                delivery_id=d.id,
                alert_id=d.alert_id,
                state=DeliveryState.SENT,
                provider_message_id=ids[d.target],
            )
            for d in claimed
        ],
        worker="w",
    )
    return ids


async def _row(engine: AsyncEngine, provider_message_id: str) -> tuple[str, str | None, str | None]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(
                    deliveries.c.state, deliveries.c.last_error_class, deliveries.c.last_error
                ).where(deliveries.c.provider_message_id == provider_message_id)
            )
        ).one()
        return row.state, row.last_error_class, row.last_error


async def _receipt_records(engine: AsyncEngine) -> list[audit.AuditRecord]:
    return [r async for r in audit.iter_records(engine) if r.action == "delivery.receipt"]


def test_statuses_map_to_states() -> None:
    assert target_state("delivered") is DeliveryState.DELIVERED
    assert target_state("READ") is DeliveryState.DELIVERED
    assert target_state("undelivered") is DeliveryState.FAILED
    assert target_state("failed") is DeliveryState.FAILED
    assert target_state("queued") is None
    assert target_state("sent") is None
    assert target_state("something-new") is None


async def test_delivered_moves_a_sent_row_and_is_audited(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    alert_id = await store_alert()
    ids = await _sent(engine, alert_id, ["+525500000001", "+525500000002"])

    result = await record_receipt(
        engine, channel="sms", provider_message_id=ids["+525500000001"], status="delivered"
    )

    assert result.found and result.state == "delivered" and len(result.changed) == 1
    assert await _row(engine, ids["+525500000001"]) == ("delivered", None, None)
    assert (await _row(engine, ids["+525500000002"]))[0] == "sent"
    [record] = await _receipt_records(engine)
    assert record.subject == f"deliveries:alert:{alert_id}"
    assert record.actor == "provider:sms"
    assert record.data["ids"] == list(result.changed)
    assert record.data["status"] == "delivered" and record.data["state"] == "delivered"
    await audit.verify_chain(engine)


async def test_undelivered_fails_the_row_with_the_provider_code(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    alert_id = await store_alert()
    ids = await _sent(engine, alert_id, ["+525500000001"])

    result = await record_receipt(
        engine,
        channel="sms",
        provider_message_id=ids["+525500000001"],
        status="undelivered",
        error_code="30003",
    )

    assert result.state == "failed"
    state, error_class, error = await _row(engine, ids["+525500000001"])
    assert (state, error_class) == ("failed", "Permanent")
    assert error is not None and "undelivered" in error and "30003" in error
    [record] = await _receipt_records(engine)
    assert record.data["error_code"] == "30003"


async def test_progress_statuses_change_nothing_and_write_nothing(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    alert_id = await store_alert()
    ids = await _sent(engine, alert_id, ["+525500000001"])
    before = await audit.count(engine)

    for status in ("queued", "sent", "sending", "accepted"):
        result = await record_receipt(
            engine, channel="sms", provider_message_id=ids["+525500000001"], status=status
        )
        assert result.found and result.changed == () and result.state is None

    assert (await _row(engine, ids["+525500000001"]))[0] == "sent"
    assert await audit.count(engine) == before


_LATE = [
    ("delivered", "sent", "delivered"),
    ("delivered", "undelivered", "delivered"),
    ("read", "queued", "delivered"),
    ("failed", "delivered", "failed"),
    ("undelivered", "sent", "failed"),
]
"""(first status, a later one, the state the row keeps)."""


async def test_a_row_never_moves_backwards(engine: AsyncEngine, store_alert: StoreAlert) -> None:
    alert_id = await store_alert()
    targets = [f"+52550000000{n}" for n in range(len(_LATE))]
    ids = await _sent(engine, alert_id, targets)

    for target, (first, then, state) in zip(targets, _LATE, strict=True):
        pmid = ids[target]
        await record_receipt(engine, channel="sms", provider_message_id=pmid, status=first)
        row_before = await _row(engine, pmid)
        late = await record_receipt(engine, channel="sms", provider_message_id=pmid, status=then)

        assert late.found and late.changed == (), (first, then)
        assert await _row(engine, pmid) == row_before, (first, then)
        assert row_before[0] == state, (first, then)

    assert len(await _receipt_records(engine)) == len(_LATE)


async def test_repeats_are_idempotent(engine: AsyncEngine, store_alert: StoreAlert) -> None:
    alert_id = await store_alert()
    pmid = (await _sent(engine, alert_id, ["+525500000001"]))["+525500000001"]

    results = [
        await record_receipt(engine, channel="sms", provider_message_id=pmid, status="delivered")
        for _ in range(3)
    ]

    assert [len(r.changed) for r in results] == [1, 0, 0]
    assert all(r.delivery_ids == results[0].delivery_ids for r in results)
    assert (await _row(engine, pmid))[0] == "delivered"
    assert len(await _receipt_records(engine)) == 1


async def test_unknown_ids_and_other_channels_are_reported_not_raised(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    alert_id = await store_alert()
    pmid = (await _sent(engine, alert_id, ["+525500000001"]))["+525500000001"]
    before = await audit.count(engine)

    unknown = await record_receipt(
        engine, channel="sms", provider_message_id="SM-nobody", status="delivered"
    )
    elsewhere = await record_receipt(
        engine, channel="whatsapp", provider_message_id=pmid, status="delivered"
    )
    queued = await record_receipt(
        engine, channel="sms", provider_message_id="SM-nobody", status="queued"
    )

    assert [r.found for r in (unknown, elsewhere, queued)] == [False, False, False]
    assert unknown.delivery_ids == () and unknown.state is None
    assert (await _row(engine, pmid))[0] == "sent"
    assert await audit.count(engine) == before


async def test_a_late_receipt_never_closes_a_row_sent_again(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    alert_id = await store_alert()
    pmid = (await _sent(engine, alert_id, ["+525500000001"]))["+525500000001"]
    await record_receipt(engine, channel="sms", provider_message_id=pmid, status="failed")
    assert await ledger.redrive(engine, actor="operator", state="failed") == 1

    late = await record_receipt(engine, channel="sms", provider_message_id=pmid, status="delivered")

    assert late.found and late.changed == ()
    assert (await _row(engine, pmid))[0] == "pending"


async def test_one_provider_message_shared_by_two_alerts_moves_both_rows(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    first_id = await store_alert()
    second_id = await store_alert()
    pmid = (await _sent(engine, first_id, ["a"]))["a"]
    await ledger.plan(
        engine,
        alert_id=second_id,
        channel="sms",
        targets=["a"],
        message=OutboundMessage(parts=("Aviso",)),
        priority=10,
        deadline=None,
    )
    [claimed] = await ledger.claim(engine, worker="w", channels=["sms"], limit=10, lease_s=60)
    assert await ledger.start_attempt(engine, claimed.id, worker="w")
    # An edit: the second alert's row carries the first one's message id.
    await ledger.record_outcome(
        engine,
        Outcome(claimed.id, second_id, DeliveryState.SENT, provider_message_id=pmid),
        worker="w",
    )

    result = await record_receipt(engine, channel="sms", provider_message_id=pmid, status="read")

    assert len(result.changed) == 2
    records = await _receipt_records(engine)
    assert sorted(r.subject for r in records) == sorted(
        [f"deliveries:alert:{first_id}", f"deliveries:alert:{second_id}"]
    )
    await audit.verify_chain(engine)
