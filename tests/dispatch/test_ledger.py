"""The delivery ledger on both databases: planning, claiming, leases, deadlines, cancel, re-drive.

Every scenario ends with the audit chain verified: each move of a row is in it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit
from alertcast.dispatch import ledger
from alertcast.dispatch.ledger import DeliveryState, Outcome
from alertcast.domain import Severity, Urgency
from alertcast.ports import OutboundMessage
from alertcast.store.tables import deliveries
from tests.dispatch.conftest import StoreAlert

MESSAGE = OutboundMessage(parts=("Sismo fuerte: protéjase",), language="es-MX", severity="Minor")


async def _states(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(deliveries.c.state, func.count()).group_by(deliveries.c.state)
        )
        return {state: int(n) for state, n in rows}


async def _audit_actions(engine: AsyncEngine) -> list[str]:
    return [record.action async for record in audit.iter_records(engine)]


async def _plan(
    engine: AsyncEngine,
    alert_id: int,
    targets: list[str],
    *,
    priority: int = 40,
    deadline: datetime | None = None,
    channel: str = "fake",
) -> ledger.PlanResult:
    return await ledger.plan(
        engine,
        alert_id=alert_id,
        channel=channel,
        targets=targets,
        message=MESSAGE,
        priority=priority,
        deadline=deadline,
    )


async def test_planning_twice_adds_the_rows_once(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    alert_id = await store_alert()
    targets = [f"chat-{i}" for i in range(25)] + ["chat-0"]

    first = await _plan(engine, alert_id, targets)
    second = await _plan(engine, alert_id, targets)

    assert (first.targets, first.inserted) == (26, 25)
    assert (second.targets, second.inserted) == (26, 0)
    assert await _states(engine) == {"pending": 25}
    assert await ledger.progress(engine, alert_id) == {"fake": {"pending": 25}}
    assert (await _audit_actions(engine)).count("delivery.planned") == 2
    await audit.verify_chain(engine)


async def test_planning_streams_a_large_generator_batch_by_batch(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    alert_id = await store_alert()
    pulled = 0
    ahead: list[int] = []

    def targets() -> Iterator[str]:
        nonlocal pulled
        for i in range(20_000):
            pulled += 1
            yield f"+52155{i:08d}"

    def on_batch(done: int) -> None:
        # At each commit the generator has been read no further than that batch.
        ahead.append(pulled - done)

    result = await ledger.plan(
        engine,
        alert_id=alert_id,
        channel="sms",
        targets=targets(),
        message=MESSAGE,
        priority=30,
        deadline=None,
        batch=1000,
        on_batch=on_batch,
    )

    assert result == ledger.PlanResult(targets=20_000, inserted=20_000, batches=20)
    assert len(ahead) == 20 and max(ahead) == 0
    assert await ledger.progress(engine, alert_id) == {"sms": {"pending": 20_000}}
    assert (await _audit_actions(engine)).count("delivery.planned") == 20
    await audit.verify_chain(engine)


async def test_planning_reads_an_async_iterable(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    alert_id = await store_alert()

    async def targets() -> AsyncIterator[str]:
        for i in range(7):
            yield f"chat-{i}"

    result = await ledger.plan(
        engine,
        alert_id=alert_id,
        channel="fake",
        targets=targets(),
        message=MESSAGE,
        priority=1,
        deadline=None,
        batch=3,
    )
    assert (result.inserted, result.batches) == (7, 3)


def test_priority_puts_extreme_immediate_first() -> None:
    extreme = ledger.priority_for(Severity.EXTREME, Urgency.IMMEDIATE)
    routine = ledger.priority_for(Severity.MINOR, Urgency.EXPECTED)
    assert extreme < routine
    assert ledger.priority_for(Severity.EXTREME, Urgency.IMMEDIATE, route_priority=1) > routine


async def test_claims_take_the_most_urgent_rows_first(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    routine = await store_alert()
    extreme = await store_alert(severity=Severity.EXTREME)
    await _plan(engine, routine, [f"road-{i}" for i in range(300)], priority=31)
    await _plan(engine, extreme, ["a", "b", "c"], priority=0)

    first = await ledger.claim(engine, worker="w1", channels=["fake"], limit=5, lease_s=60)

    assert [d.alert_id for d in first] == [extreme] * 3 + [routine] * 2
    assert first[0].message == MESSAGE
    assert await _states(engine) == {"claimed": 5, "pending": 298}
    await audit.verify_chain(engine)


async def test_only_the_named_channels_are_claimed(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    alert_id = await store_alert()
    await _plan(engine, alert_id, ["x"], channel="sms")
    await _plan(engine, alert_id, ["y"], channel="telegram")

    claimed = await ledger.claim(engine, worker="w", channels=["telegram"], limit=10, lease_s=60)

    assert [(d.channel, d.target) for d in claimed] == [("telegram", "y")]


async def test_an_expired_lease_gives_the_rows_back(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    alert_id = await store_alert()
    await _plan(engine, alert_id, ["a", "b"])
    t0 = datetime.now(UTC)
    taken = await ledger.claim(
        engine, worker="dead", channels=["fake"], limit=10, lease_s=30, now=t0
    )
    assert len(taken) == 2
    assert await ledger.start_attempt(engine, taken[0].id, worker="dead", now=t0)

    still_leased = await ledger.claim(
        engine,
        worker="alive",
        channels=["fake"],
        limit=10,
        lease_s=30,
        now=t0 + timedelta(seconds=10),
    )
    assert still_leased == []

    later = t0 + timedelta(seconds=31)
    back = await ledger.claim(
        engine, worker="alive", channels=["fake"], limit=10, lease_s=30, now=later
    )
    assert sorted(d.target for d in back) == ["a", "b"]
    # The dead worker's late outcome no longer applies: the row belongs to another worker.
    stale = Outcome(delivery_id=taken[0].id, alert_id=alert_id, state=DeliveryState.SENT)
    assert not await ledger.record_outcome(engine, stale, worker="dead", now=later)

    claims = [r for r in await audit.tail(engine, 50) if r.action == "delivery.claimed"]
    assert sorted(claims[-1].data["reclaimed"]) == sorted(d.id for d in taken)
    assert claims[-1].data["reclaimed_after_send_started"] == [taken[0].id]
    await audit.verify_chain(engine)


async def test_renewed_leases_are_not_taken(engine: AsyncEngine, store_alert: StoreAlert) -> None:
    alert_id = await store_alert()
    await _plan(engine, alert_id, ["a"])
    t0 = datetime.now(UTC)
    taken = await ledger.claim(engine, worker="w1", channels=["fake"], limit=1, lease_s=30, now=t0)
    renewed = await ledger.renew_leases(
        engine, worker="w1", ids=[taken[0].id], lease_s=30, now=t0 + timedelta(seconds=20)
    )
    assert renewed == 1
    assert (
        await ledger.claim(
            engine,
            worker="w2",
            channels=["fake"],
            limit=1,
            lease_s=30,
            now=t0 + timedelta(seconds=40),
        )
        == []
    )


async def test_rows_past_their_deadline_die_instead_of_being_sent(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    alert_id = await store_alert()
    t0 = datetime.now(UTC)
    await _plan(engine, alert_id, ["a", "b"], deadline=t0 + timedelta(minutes=1))

    claimed = await ledger.claim(
        engine, worker="w", channels=["fake"], limit=10, lease_s=30, now=t0 + timedelta(minutes=2)
    )

    assert claimed == []
    assert await _states(engine) == {"dead": 2}
    assert "delivery.dead" in await _audit_actions(engine)
    await audit.verify_chain(engine)


async def test_cancel_stops_every_row_not_yet_being_sent(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    alert_id = await store_alert()
    other = await store_alert()
    await _plan(engine, alert_id, [f"t{i}" for i in range(6)])
    await _plan(engine, other, ["o1"])
    claimed = await ledger.claim(engine, worker="w", channels=["fake"], limit=3, lease_s=60)
    in_flight, waiting = claimed[0], claimed[1]
    assert await ledger.start_attempt(engine, in_flight.id, worker="w")

    cancelled = await ledger.cancel_for_alert(engine, [alert_id], "Cancel received", "officer:ana")

    assert cancelled == 5  # three pending, two claimed but not started
    assert not await ledger.start_attempt(engine, waiting.id, worker="w")
    counts = await ledger.progress(engine, alert_id)
    assert counts == {"fake": {"cancelled": 5, "claimed": 1}}
    assert await ledger.progress(engine, other) == {"fake": {"pending": 1}}
    # The send that had started is still recorded when it ends.
    sent = Outcome(delivery_id=in_flight.id, alert_id=alert_id, state=DeliveryState.SENT)
    assert await ledger.record_outcome(engine, sent, worker="w")
    record = [r for r in await audit.tail(engine, 10) if r.action == "delivery.cancelled"][-1]
    assert record.actor == "officer:ana"
    assert record.data["per_channel"] == {"fake": 5}
    await audit.verify_chain(engine)


async def test_rows_of_an_alert_already_cancelled_are_never_claimed(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    from alertcast.domain import MsgType
    from tests.dispatch.conftest import make_alert

    original = make_alert("QUAKE-1")
    alert_id = await store_alert(original)
    await _plan(engine, alert_id, ["a", "b"])
    # The lifecycle cancels the alert; its pending rows were not touched in that transaction.
    cancel = make_alert(
        "QUAKE-1-C",
        msg_type=MsgType.CANCEL,
        references=(original,),
        sent=original.sent + timedelta(minutes=1),
    )
    await store_alert(cancel)

    assert await ledger.claim(engine, worker="w", channels=["fake"], limit=10, lease_s=30) == []
    assert await _states(engine) == {"cancelled": 2}
    await audit.verify_chain(engine)


async def test_release_puts_unstarted_rows_back(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    alert_id = await store_alert()
    await _plan(engine, alert_id, ["a", "b"])
    claimed = await ledger.claim(engine, worker="w", channels=["fake"], limit=2, lease_s=60)
    assert await ledger.start_attempt(engine, claimed[0].id, worker="w")

    released = await ledger.release(engine, worker="w", ids=[d.id for d in claimed])

    assert released == 1
    assert await _states(engine) == {"claimed": 1, "pending": 1}


async def test_dead_rows_are_listed_and_redriven(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    alert_id = await store_alert()
    await _plan(engine, alert_id, ["a", "b", "c"])
    claimed = await ledger.claim(engine, worker="w", channels=["fake"], limit=3, lease_s=60)
    outcomes = [
        Outcome(d.id, alert_id, DeliveryState.DEAD, error_class="Transient", error="502")
        for d in claimed[:2]
    ] + [Outcome(claimed[2].id, alert_id, DeliveryState.SENT, provider_message_id="m1")]
    assert len(await ledger.record_outcomes(engine, outcomes, worker="w")) == 3

    dead = await ledger.list_deliveries(engine, state="dead", alert_id=alert_id)
    assert sorted(row.target for row in dead) == ["a", "b"]
    assert dead[0].last_error_class == "Transient"

    with pytest.raises(ValueError, match="only dead, failed, unknown"):
        await ledger.redrive(engine, actor="ops", state="sent")
    assert await ledger.redrive(engine, actor="ops", state="dead", alert_id=alert_id) == 2
    assert await ledger.redrive(engine, actor="ops", ids=[claimed[2].id]) == 0  # sent stays sent
    assert await ledger.progress(engine, alert_id) == {"fake": {"pending": 2, "sent": 1}}
    assert "delivery.retried" in await _audit_actions(engine)
    await audit.verify_chain(engine)


async def test_an_outcome_cannot_reschedule_without_a_time(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    with pytest.raises(ValueError, match="next_attempt_at"):
        await ledger.record_outcomes(engine, [Outcome(1, 1, DeliveryState.PENDING)], worker="w")


async def test_a_claim_looks_past_rows_it_had_to_close(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    expired_alert = await store_alert()
    live_alert = await store_alert()
    t0 = datetime.now(UTC)
    await _plan(
        engine,
        expired_alert,
        [f"late-{i}" for i in range(10)],
        priority=0,
        deadline=t0 + timedelta(seconds=1),
    )
    await _plan(engine, live_alert, ["x", "y", "z"], priority=50)

    claimed = await ledger.claim(
        engine, worker="w", channels=["fake"], limit=4, lease_s=30, now=t0 + timedelta(seconds=5)
    )

    assert sorted(d.target for d in claimed) == ["x", "y", "z"]
    assert await _states(engine) == {"dead": 10, "claimed": 3}
    await audit.verify_chain(engine)


async def test_a_fan_out_stores_its_message_once(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    from alertcast.store.tables import delivery_messages

    first = await store_alert()
    second = await store_alert()
    await _plan(engine, first, [f"a{i}" for i in range(30)])
    await _plan(engine, second, ["b"])  # the same message for another alert
    await ledger.plan(
        engine,
        alert_id=second,
        channel="sms",
        targets=["c"],
        message=OutboundMessage(parts=("otro texto",)),
        priority=1,
        deadline=None,
    )

    async with engine.connect() as conn:
        stored = (await conn.execute(select(delivery_messages.c.sha256))).scalars().all()
        pointers = (await conn.execute(select(deliveries.c.message_id).distinct())).all()
    assert len(stored) == 2 and len(pointers) == 2
    planned = [r for r in await audit.tail(engine, 10) if r.action == "delivery.planned"]
    assert planned[0].data["message_sha256"] in stored
    claimed = await ledger.claim(engine, worker="w", channels=["fake", "sms"], limit=40, lease_s=60)
    assert {d.message for d in claimed} == {MESSAGE, OutboundMessage(parts=("otro texto",))}


async def test_planning_keeps_each_targets_group(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    alert_id = await store_alert()

    result = await ledger.plan(
        engine,
        alert_id=alert_id,
        channel="telegram",
        targets=["-100:1", "-100:2", "-200:1", "solo"],
        message=MESSAGE,
        priority=1,
        deadline=None,
        batch=3,
        group_of=lambda t: t.split(":")[0] if ":" in t else None,
    )

    assert (result.inserted, result.batches) == (4, 2)
    claimed = await ledger.claim(engine, worker="w", channels=["telegram"], limit=10, lease_s=60)
    assert {d.target: d.group_key for d in claimed} == {
        "-100:1": "-100",
        "-100:2": "-100",
        "-200:1": "-200",
        "solo": None,
    }


async def test_a_group_start_leaves_out_cancelled_and_foreign_rows(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    doomed = await store_alert()
    alive = await store_alert()
    await _plan(engine, doomed, ["d1", "d2"])
    await _plan(engine, alive, ["a1", "a2", "a3"])
    mine = await ledger.claim(engine, worker="w", channels=["fake"], limit=4, lease_s=60)
    theirs = await ledger.claim(engine, worker="other", channels=["fake"], limit=4, lease_s=60)
    assert len(mine) == 4 and len(theirs) == 1
    await ledger.cancel_for_alert(engine, [doomed], "Cancel received", "lifecycle")

    ids = [d.id for d in mine + theirs]
    started = await ledger.start_attempts(engine, ids, worker="w")

    assert started == {d.id for d in mine if d.alert_id == alive}
    assert await ledger.start_attempts(engine, ids, worker="w") == set()  # once only
    # Rows started are out of a later cancel's reach: their sends are under way.
    assert await ledger.cancel_for_alert(engine, [alive], "Cancel received", "lifecycle") == 1
    assert await ledger.progress(engine, alive) == {"fake": {"cancelled": 1, "claimed": 2}}
    await audit.verify_chain(engine)


async def test_outcomes_and_starts_are_written_together(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    alert_id = await store_alert()
    await _plan(engine, alert_id, ["a", "b", "c"])
    claimed = await ledger.claim(engine, worker="w", channels=["fake"], limit=3, lease_s=60)
    first, second, third = claimed
    assert await ledger.start_attempt(engine, first.id, worker="w")
    done = Outcome(first.id, alert_id, DeliveryState.SENT, provider_message_id="m1")
    stale = Outcome(third.id, alert_id, DeliveryState.SENT)  # never started, owned by "w"

    applied, started = await ledger.record_and_start(engine, [done], [second.id], worker="w")
    assert applied == [done] and started == {second.id}
    applied, started = await ledger.record_and_start(engine, [], [], worker="w")
    assert (applied, started) == ([], set())
    with pytest.raises(ValueError, match="next_attempt_at"):
        await ledger.record_and_start(
            engine, [Outcome(third.id, alert_id, DeliveryState.PENDING)], [], worker="w"
        )

    rows = {d.target: d for d in await ledger.list_deliveries(engine, alert_id=alert_id)}
    assert (rows["a"].state, rows["a"].provider_message_id) == ("sent", "m1")
    assert (rows["b"].state, rows["b"].attempts) == ("claimed", 1)
    assert await ledger.record_outcomes(engine, [stale], worker="someone-else") == []
    outcomes = [r for r in await audit.tail(engine, 10) if r.action == "delivery.outcomes"]
    assert [o["id"] for o in outcomes[-1].data["outcomes"]] == [first.id]
    await audit.verify_chain(engine)


async def test_the_migration_moves_each_payload_into_one_stored_message(
    database_url: str,
) -> None:
    from alembic import command
    from sqlalchemy import text

    from alertcast.store.engine import make_engine
    from alertcast.store.migrate import _config, upgrade
    from alertcast.store.tables import delivery_messages

    def to(revision: str) -> Callable[[Any], None]:
        """Migrate down to ``revision``, or up to the newest with "head"."""

        def run(connection: Any) -> None:
            if revision == "head":
                command.upgrade(_config(connection), revision)
            else:
                command.downgrade(_config(connection), revision)

        return run

    await upgrade(database_url)
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(to("0005"))
        async with engine.begin() as conn:
            now = datetime.now(UTC)
            await conn.execute(
                text(
                    "INSERT INTO alerts (sender, identifier, sent, sent_utc, status, msg_type,"
                    " cap_version, source, normalized, warnings, received_at)"
                    " VALUES ('s', 'i', 'x', :now, 'Actual', 'Alert', '1.2', 't', '{}', '[]',"
                    " :now)"
                ),
                {"now": now.replace(tzinfo=None) if "sqlite" in database_url else now},
            )
            for target, payload in (
                ("a", '{"parts":["uno"]}'),
                ("b", '{"parts":["uno"]}'),
                ("c", '{"parts":["dos"]}'),
            ):
                await conn.execute(
                    text(
                        "INSERT INTO deliveries (alert_id, channel, target, state, priority,"
                        " attempts, next_attempt_at, payload, created_at, updated_at)"
                        " VALUES (1, 'fake', :t, 'pending', 1, 0, :now, :p, :now, :now)"
                    ),
                    {
                        "t": target,
                        "p": payload,
                        "now": now.replace(tzinfo=None) if "sqlite" in database_url else now,
                    },
                )
        async with engine.begin() as conn:
            await conn.run_sync(to("head"))

        async with engine.connect() as conn:
            messages = dict(
                (
                    await conn.execute(select(delivery_messages.c.id, delivery_messages.c.payload))
                ).all()
            )
            pointers = dict(
                (await conn.execute(select(deliveries.c.target, deliveries.c.message_id))).all()
            )
        assert sorted(messages.values()) == ['{"parts":["dos"]}', '{"parts":["uno"]}']
        assert {t: messages[m] for t, m in pointers.items()} == {
            "a": '{"parts":["uno"]}',
            "b": '{"parts":["uno"]}',
            "c": '{"parts":["dos"]}',
        }

        async with engine.begin() as conn:
            await conn.run_sync(to("0005"))
        async with engine.connect() as conn:
            back = (await conn.execute(text("SELECT target, payload FROM deliveries"))).all()
        assert sorted(tuple(r) for r in back) == [
            ("a", '{"parts":["uno"]}'),
            ("b", '{"parts":["uno"]}'),
            ("c", '{"parts":["dos"]}'),
        ]
    finally:
        await engine.dispose()
