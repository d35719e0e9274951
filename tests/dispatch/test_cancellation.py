"""A Cancel or Update received through ingest stops the pending deliveries of what it replaces."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit
from alertcast.cap_writer import to_cap_xml
from alertcast.dispatch import ledger
from alertcast.dispatch.cancellation import cancel_on_lifecycle, stopped_alert_ids
from alertcast.domain import MsgType
from alertcast.ingest import Ingestor
from alertcast.ports import OutboundMessage
from alertcast.store.alerts import AlertRepository
from tests.dispatch.conftest import make_alert


def test_only_cancel_and_supersede_effects_stop_deliveries() -> None:
    assert stopped_alert_ids(("cancelled 12", "superseded 9", "expired 3", "withdrawn 4")) == [
        12,
        9,
    ]


async def test_an_update_and_a_cancel_stop_the_pending_rows_they_replace(
    engine: AsyncEngine,
) -> None:
    ingestor = Ingestor(AlertRepository(engine), effect_listeners=(cancel_on_lifecycle(engine),))
    first = make_alert("ROAD-1")
    update = make_alert(
        "ROAD-1-U",
        msg_type=MsgType.UPDATE,
        references=(first,),
        sent=first.sent + timedelta(minutes=5),
    )
    cancel = make_alert(
        "ROAD-1-C",
        msg_type=MsgType.CANCEL,
        references=(update,),
        sent=first.sent + timedelta(minutes=9),
    )
    outcome = await ingestor.ingest_bytes(to_cap_xml(first), source="t", actor="t")
    first_id = outcome.items[0].alert_id
    assert first_id is not None
    await ledger.plan(
        engine,
        alert_id=first_id,
        channel="fake",
        targets=["a", "b"],
        message=OutboundMessage(parts=("x",)),
        priority=30,
        deadline=None,
    )

    updated = await ingestor.ingest_bytes(to_cap_xml(update), source="t", actor="t")
    update_id = updated.items[0].alert_id
    assert update_id is not None
    assert await ledger.progress(engine, first_id) == {"fake": {"cancelled": 2}}

    await ledger.plan(
        engine,
        alert_id=update_id,
        channel="fake",
        targets=["a", "b", "c"],
        message=OutboundMessage(parts=("y",)),
        priority=30,
        deadline=None,
    )
    await ingestor.ingest_bytes(to_cap_xml(cancel), source="t", actor="t")

    assert await ledger.progress(engine, update_id) == {"fake": {"cancelled": 3}}
    records = [r async for r in audit.iter_records(engine) if r.action == "delivery.cancelled"]
    assert [r.actor for r in records] == ["lifecycle", "lifecycle"]
    await audit.verify_chain(engine)
