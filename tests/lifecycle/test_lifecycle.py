"""The CAP lifecycle on both databases: links, cancel, supersede, order, senders, status, expiry.

Every scenario ends by checking that the audit trail still verifies, and most
check the exact audit records written, because "why did this warning stop"
must always be answerable from the trail.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit, lifecycle
from alertcast.cap import to_cap_xml
from alertcast.config import FeedConfig
from alertcast.domain import (
    Alert,
    AlertKey,
    MsgType,
    Scope,
    Status,
)
from alertcast.feeds.base import FeedItem
from alertcast.ingest import Ingestor, ItemOutcome
from alertcast.lifecycle import AlertState
from alertcast.store.alerts import AlertRepository
from alertcast.store.engine import make_engine
from alertcast.store.tables import alert_references
from tests.builders import quake_alert

MINUS_SIX = timezone(timedelta(hours=-6))
T0 = datetime(2026, 3, 10, 8, 0, tzinfo=MINUS_SIX)  # 14:00 UTC
NOW = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
SENDER = "proteccion.civil@example.mx"


def make(
    identifier: str,
    *,
    minutes: int = 0,
    msg_type: MsgType = MsgType.ALERT,
    status: Status = Status.ACTUAL,
    sender: str = SENDER,
    references: Sequence[Alert | AlertKey] = (),
    expires_in: timedelta | None = timedelta(days=1),
) -> Alert:
    return quake_alert(
        identifier,
        sender=sender,
        sent=T0 + timedelta(minutes=minutes),
        msg_type=msg_type,
        status=status,
        references=references,
        expires_in=expires_in,
    )


class Harness:
    """An ingestor with a settable clock and a listener that records what it heard."""

    def __init__(self, engine: AsyncEngine, feeds: Sequence[FeedConfig] = ()) -> None:
        self.engine = engine
        self.now = NOW
        self.announced: list[AlertKey] = []
        self.repository = AlertRepository(engine)
        self.ingestor = Ingestor(
            self.repository, feeds=feeds, clock=lambda: self.now, listeners=(self._heard,)
        )

    async def _heard(self, alert: Alert, _source: str) -> None:
        self.announced.append(alert.key)

    async def ingest(
        self, alert: Alert, *, feed: str = "sismos", thread: str | None = None
    ) -> ItemOutcome:
        item = FeedItem(alert=alert, raw=to_cap_xml(alert), cap_version="1.2", thread=thread)
        return await self.ingestor.ingest_item(item, feed=feed, actor=f"feed:{feed}")

    async def state(self, alert: Alert | AlertKey) -> AlertState:
        stored = await self.repository.get(alert.key if isinstance(alert, Alert) else alert)
        assert stored is not None, f"{alert} is not stored"
        return stored.state

    async def states(self, *alerts: Alert) -> list[str]:
        return [(await self.state(a)).value for a in alerts]

    async def audit_since(self, seq: int) -> list[tuple[str, str]]:
        return [(r.action, r.subject) async for r in audit.iter_records(self.engine, since_seq=seq)]

    async def last_seq(self) -> int:
        return await audit.count(self.engine)


@pytest.fixture
def harness(engine: AsyncEngine) -> Harness:
    return Harness(engine)


async def test_alert_then_update_then_cancel(harness: Harness, engine: AsyncEngine) -> None:
    alert = make("SISMO-1")
    update = make("SISMO-2", minutes=10, msg_type=MsgType.UPDATE, references=[alert])
    cancel = make("SISMO-3", minutes=30, msg_type=MsgType.CANCEL, references=[alert])

    first = await harness.ingest(alert)
    assert first.created and first.state is AlertState.ACTIVE and first.effects == ()

    seq = await harness.last_seq()
    second = await harness.ingest(update)
    assert second.state is AlertState.ACTIVE
    assert second.effects == (f"superseded {first.alert_id}",)
    assert await harness.states(alert, update) == ["superseded", "active"]
    assert await harness.audit_since(seq) == [
        ("alert.ingested", str(update.key)),
        ("alert.superseded", str(alert.key)),
    ]

    # The Cancel names only the first alert; the Update continues that story, so it ends too.
    seq = await harness.last_seq()
    third = await harness.ingest(cancel)
    assert third.state is AlertState.ACTIVE  # a Cancel record itself has no lifecycle
    assert set(third.effects) == {f"cancelled {first.alert_id}", f"cancelled {second.alert_id}"}
    assert await harness.states(alert, update) == ["cancelled", "cancelled"]
    assert await harness.audit_since(seq) == [
        ("alert.ingested", str(cancel.key)),
        ("alert.cancelled", str(alert.key)),
        ("alert.cancelled", str(update.key)),
    ]
    records = await audit.tail(engine, 2)
    assert records[0].data == {
        "alert_id": first.alert_id,
        "previous_state": "superseded",
        "by": str(cancel.key),
    }

    assert harness.announced == [alert.key, update.key, cancel.key]
    assert await lifecycle.active_alerts(engine, now=NOW, limit=10) == []
    assert await audit.verify_chain(engine) == await harness.last_seq()


async def test_the_same_message_twice_changes_nothing(
    harness: Harness, engine: AsyncEngine
) -> None:
    alert = make("SISMO-1")
    cancel = make("SISMO-2", minutes=5, msg_type=MsgType.CANCEL, references=[alert])
    await harness.ingest(alert)
    await harness.ingest(cancel)
    seq = await harness.last_seq()

    again = await harness.ingest(cancel)
    bytes_again = await harness.ingestor.ingest_bytes(
        to_cap_xml(cancel), source="inbox:again.xml", actor="feed:inbox"
    )

    assert not again.created and again.effects == () and not again.content_differs
    assert again.state is AlertState.ACTIVE
    assert [i.created for i in bytes_again.items] == [False]
    assert await harness.audit_since(seq) == []
    async with engine.connect() as conn:
        rows = (await conn.execute(select(alert_references))).all()
    assert len(rows) == 1


async def test_a_cancel_that_comes_first_is_applied_when_its_alert_arrives(
    harness: Harness, engine: AsyncEngine
) -> None:
    alert = make("SISMO-1")
    cancel = make("SISMO-2", minutes=5, msg_type=MsgType.CANCEL, references=[alert])

    seq = await harness.last_seq()
    early = await harness.ingest(cancel)
    assert early.effects == ()
    assert await harness.audit_since(seq) == [
        ("alert.ingested", str(cancel.key)),
        ("alert.reference_unknown", str(alert.key)),
    ]

    seq = await harness.last_seq()
    late = await harness.ingest(alert)

    assert late.created and late.state is AlertState.CANCELLED
    assert late.effects == (f"cancelled {late.alert_id}",)
    assert await harness.audit_since(seq) == [
        ("alert.ingested", str(alert.key)),
        ("alert.reference_resolved", str(alert.key)),
        ("alert.cancelled", str(alert.key)),
    ]
    assert alert.key not in harness.announced  # a cancelled alert is never announced
    async with engine.connect() as conn:
        (row,) = (await conn.execute(select(alert_references))).all()
    assert row.alert_id == early.alert_id and row.ref_alert_id == late.alert_id
    assert await audit.verify_chain(engine) == await harness.last_seq()


async def test_a_reference_to_a_never_seen_alert_is_kept_and_marked(
    harness: Harness, engine: AsyncEngine
) -> None:
    ghost = AlertKey(SENDER, "NUNCA-VISTO", T0 - timedelta(hours=3))
    update = make("SISMO-9", msg_type=MsgType.UPDATE, references=[ghost])

    outcome = await harness.ingest(update)

    assert outcome.state is AlertState.ACTIVE and outcome.effects == ()
    async with engine.connect() as conn:
        (row,) = (await conn.execute(select(alert_references))).all()
    assert (row.ref_sender, row.ref_identifier) == (SENDER, "NUNCA-VISTO")
    assert row.ref_sent_utc == ghost.sent and row.ref_alert_id is None
    (record,) = [r for r in await audit.tail(engine, 5) if r.action == "alert.reference_unknown"]
    assert record.subject == str(ghost) and record.data == {"by": str(update.key)}

    links = await lifecycle.chain(engine, update.key)
    assert [(link.key, link.seen) for link in links] == [(ghost, False), (update.key, True)]
    assert links[1].references == (ghost,)
    assert links[0].state is None and links[0].msg_type is None
    assert await lifecycle.chain(engine, ghost) == links  # the chain is found from either end
    assert await lifecycle.chain(engine, AlertKey(SENDER, "nada", T0)) == []
    assert await audit.verify_chain(engine) == await harness.last_seq()


async def test_a_message_naming_the_same_alert_twice_links_it_once(harness: Harness) -> None:
    alert = make("SISMO-1")
    twice = make(
        "SISMO-2",
        minutes=5,
        msg_type=MsgType.UPDATE,
        references=[alert, AlertKey(SENDER, "SISMO-1", alert.sent.astimezone(UTC))],
    )
    await harness.ingest(alert)
    outcome = await harness.ingest(twice)
    assert outcome.effects == (f"superseded {outcome.alert_id - 1}",)


async def test_road_threads_link_updates_and_cancels_without_references(
    harness: Harness, engine: AsyncEngine
) -> None:
    sender = "capufe@example.mx"
    closed = make("capufe-1", sender=sender)
    other_road = make("capufe-2", minutes=1, sender=sender)
    one_lane = make("capufe-3", minutes=20, sender=sender, msg_type=MsgType.UPDATE)
    reopened = make("capufe-4", minutes=50, sender=sender, msg_type=MsgType.CANCEL)

    await harness.ingest(closed, feed="capufe", thread="mexico-cuernavaca:km45")
    await harness.ingest(other_road, feed="capufe", thread="mexico-puebla:km12")
    updated = await harness.ingest(one_lane, feed="capufe", thread="mexico-cuernavaca:km45")
    stored_update = await harness.repository.get(one_lane.key)
    assert stored_update is not None
    assert stored_update.alert.references == (closed.key,)
    assert stored_update.thread == "mexico-cuernavaca:km45" and stored_update.feed == "capufe"
    assert any("references inferred" in w for w in stored_update.warnings)
    assert updated.state is AlertState.ACTIVE
    assert await harness.states(closed, other_road) == ["superseded", "active"]

    # The Cancel links to the latest non-superseded alert of the thread: the Update.
    cancelled = await harness.ingest(reopened, feed="capufe", thread="mexico-cuernavaca:km45")
    stored_cancel = await harness.repository.get(reopened.key)
    assert stored_cancel is not None and stored_cancel.alert.references == (one_lane.key,)
    assert cancelled.effects == (f"cancelled {updated.alert_id}",)
    assert await harness.states(one_lane, other_road) == ["cancelled", "active"]

    # Reading the feed again finds the same messages, not changed copies.
    again = await harness.ingest(one_lane, feed="capufe", thread="mexico-cuernavaca:km45")
    assert not again.created and not again.content_differs

    # The stored message is a correct CAP Update: its references survive a round trip.
    assert b"<references>" in to_cap_xml(stored_cancel.alert)
    links = await lifecycle.chain(engine, closed.key)
    assert [link.key.identifier for link in links] == ["capufe-1", "capufe-3", "capufe-4"]
    assert [link.state for link in links] == [
        AlertState.SUPERSEDED,
        AlertState.CANCELLED,
        AlertState.ACTIVE,
    ]


async def test_an_update_of_a_thread_with_no_earlier_alert_says_so(harness: Harness) -> None:
    lonely = make("open511-77", msg_type=MsgType.UPDATE)
    outcome = await harness.ingest(lonely, feed="drivebc", thread="drivebc.ca/DBC-77")
    stored = await harness.repository.get(lonely.key)
    assert stored is not None and stored.alert.references == ()
    assert any("no earlier alert" in w for w in stored.warnings)
    assert outcome.state is AlertState.ACTIVE


@pytest.mark.parametrize(
    ("real", "drill"), [(Status.ACTUAL, Status.EXERCISE), (Status.ACTUAL, Status.TEST)]
)
async def test_a_drill_never_silences_a_real_warning(
    harness: Harness, engine: AsyncEngine, real: Status, drill: Status
) -> None:
    warning = make("TSUNAMI-1", status=real)
    drill_cancel = make(
        "SIMULACRO-1", minutes=5, status=drill, msg_type=MsgType.CANCEL, references=[warning]
    )
    await harness.ingest(warning)
    seq = await harness.last_seq()

    outcome = await harness.ingest(drill_cancel)

    assert outcome.effects == ()
    assert await harness.state(warning) is AlertState.ACTIVE
    assert await harness.audit_since(seq) == [
        ("alert.ingested", str(drill_cancel.key)),
        ("alert.reference_status_mismatch", str(warning.key)),
    ]
    (refusal,) = await audit.tail(engine, 1)
    assert refusal.data["status"] == drill.value and refusal.data["target_status"] == real.value

    # ... and the other way round: a real message does not touch a drill.
    exercise = make("SIMULACRO-2", minutes=6, status=drill)
    real_update = make(
        "TSUNAMI-2", minutes=7, status=real, msg_type=MsgType.UPDATE, references=[exercise]
    )
    await harness.ingest(exercise)
    assert (await harness.ingest(real_update)).effects == ()
    assert await harness.state(exercise) is AlertState.ACTIVE
    assert await audit.verify_chain(engine) == await harness.last_seq()


async def test_a_foreign_sender_is_linked_but_changes_nothing(engine: AsyncEngine) -> None:
    harness = Harness(engine)
    alert = make("SISMO-1", sender="ssn@example.mx")
    intruder = make(
        "X-1", minutes=5, sender="other@example.org", msg_type=MsgType.CANCEL, references=[alert]
    )
    await harness.ingest(alert)
    seq = await harness.last_seq()

    outcome = await harness.ingest(intruder)

    assert outcome.effects == ()
    assert await harness.state(alert) is AlertState.ACTIVE
    assert await harness.audit_since(seq) == [
        ("alert.ingested", str(intruder.key)),
        ("alert.reference_foreign_sender", str(alert.key)),
    ]
    links = await lifecycle.chain(engine, alert.key)
    assert [link.key for link in links] == [alert.key, intruder.key]


@pytest.mark.parametrize(
    "delegates",
    [["sasmex@example.mx"], {"sasmex@example.mx": ["ssn@example.mx"]}],
    ids=["list", "table"],
)
async def test_a_listed_delegate_may_act_for_another_sender(
    engine: AsyncEngine, delegates: Any
) -> None:
    feed = FeedConfig(
        name="sasmex",
        kind="cap-index",
        file=Path("feeds/sasmex.toml"),
        mapping={"delegates": delegates},
    )
    harness = Harness(engine, feeds=[feed])
    alert = make("SISMO-1", sender="ssn@example.mx")
    update = make(
        "SASMEX-2",
        minutes=5,
        sender="sasmex@example.mx",
        msg_type=MsgType.UPDATE,
        references=[alert],
    )
    await harness.ingest(alert, feed="ssn")

    # Through another feed the same sender is not a delegate.
    elsewhere = make(
        "SASMEX-1",
        minutes=4,
        sender="sasmex@example.mx",
        msg_type=MsgType.UPDATE,
        references=[alert],
    )
    assert (await harness.ingest(elsewhere, feed="ssn")).effects == ()

    outcome = await harness.ingest(update, feed="sasmex")
    # The alert it names, and the older Update of the same story from the delegate itself.
    assert outcome.effects == (
        f"superseded {outcome.alert_id - 2}",
        f"superseded {outcome.alert_id - 1}",
    )
    assert await harness.states(alert, elsewhere) == ["superseded", "superseded"]


async def test_pelmorex_minor_update_is_an_alert_that_supersedes(
    engine: AsyncEngine, corpus_dir: Path
) -> None:
    """Sample #9 keeps msgType Alert, carries references, and names another sender."""
    data = (corpus_dir / "cap" / "naad_pelmorex_Sample9_CAPCP_with_Minor_Update.xml").read_bytes()
    original = Alert(
        identifier="78A038D9-701C-659D-47A8-7C54C13884C2",
        sender="PelmorexTest",
        sent=datetime(2018, 4, 13, 9, 35, 16, tzinfo=timezone(timedelta(hours=-4))),
        status=Status.ACTUAL,
        msg_type=MsgType.ALERT,
        scope=Scope.PUBLIC,
    )
    for delegates, expected in (
        (None, AlertState.ACTIVE),
        (["testSender@Pelmorex-test"], AlertState.SUPERSEDED),
    ):
        mapping = {"delegates": delegates} if delegates else {}
        feed = FeedConfig(name="naad", kind="cap-index", file=Path("n.toml"), mapping=mapping)
        async with _fresh(engine) as fresh:
            harness = Harness(fresh, feeds=[feed])
            harness.now = datetime(2018, 4, 13, 14, 0, tzinfo=UTC)
            await harness.ingest(original, feed="naad")
            outcome = await harness.ingestor.ingest_bytes(
                data, source="naad:sample9", actor="feed:naad", feed="naad"
            )
            (item,) = outcome.items
            assert item.created and item.state is AlertState.ACTIVE
            assert await harness.state(original) is expected
            actions = [r.action for r in await audit.tail(fresh, 3)]
            if delegates is None:
                assert actions[-1] == "alert.reference_foreign_sender"
            else:
                assert actions[-1] == "alert.superseded"


class _fresh:
    """Empty the tables between two rounds of one test (same database, clean slate)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def __aenter__(self) -> AsyncEngine:
        from alertcast.store.tables import alerts, audit_log

        async with self.engine.begin() as conn:
            await conn.execute(alert_references.delete())
            await conn.execute(alerts.delete())
            await conn.execute(audit_log.delete())
        return self.engine

    async def __aexit__(self, *_: object) -> None:
        assert await audit.verify_chain(self.engine) == await audit.count(self.engine)


async def test_a_late_update_sent_before_the_cancel_is_stored_cancelled(
    harness: Harness, engine: AsyncEngine
) -> None:
    alert = make("SISMO-1")
    update = make("SISMO-2", minutes=10, msg_type=MsgType.UPDATE, references=[alert])
    cancel = make("SISMO-3", minutes=20, msg_type=MsgType.CANCEL, references=[alert])
    await harness.ingest(alert)
    await harness.ingest(cancel)

    late = await harness.ingest(update)

    assert late.state is AlertState.CANCELLED
    assert await harness.state(alert) is AlertState.CANCELLED  # never resurrected
    assert update.key not in harness.announced
    (record,) = [r for r in await audit.tail(engine, 5) if r.subject == str(update.key)][-1:]
    assert record.action == "alert.cancelled" and record.data["by"] == str(cancel.key)


async def test_an_update_sent_after_the_cancel_stays_active_and_resurrects_nothing(
    harness: Harness, engine: AsyncEngine
) -> None:
    alert = make("SISMO-1")
    cancel = make("SISMO-2", minutes=20, msg_type=MsgType.CANCEL, references=[alert])
    update = make("SISMO-3", minutes=30, msg_type=MsgType.UPDATE, references=[alert])
    await harness.ingest(alert)
    await harness.ingest(cancel)
    seq = await harness.last_seq()

    outcome = await harness.ingest(update)

    assert outcome.state is AlertState.ACTIVE and outcome.effects == ()
    assert await harness.state(alert) is AlertState.CANCELLED
    assert await harness.audit_since(seq) == [
        ("alert.ingested", str(update.key)),
        ("alert.reference_no_effect", str(alert.key)),
    ]


async def test_a_late_older_update_is_stored_superseded(harness: Harness) -> None:
    alert = make("SISMO-1")
    older = make("SISMO-2", minutes=10, msg_type=MsgType.UPDATE, references=[alert])
    newer = make("SISMO-3", minutes=20, msg_type=MsgType.UPDATE, references=[alert])
    await harness.ingest(alert)
    await harness.ingest(newer)

    late = await harness.ingest(older)

    assert late.state is AlertState.SUPERSEDED
    assert await harness.states(alert, older, newer) == ["superseded", "superseded", "active"]


async def test_an_update_supersedes_older_versions_of_the_story(harness: Harness) -> None:
    alert = make("SISMO-1")
    first = make("SISMO-2", minutes=10, msg_type=MsgType.UPDATE, references=[alert])
    second = make("SISMO-3", minutes=20, msg_type=MsgType.UPDATE, references=[alert])
    for message in (alert, first, second):
        await harness.ingest(message)
    assert await harness.states(alert, first, second) == ["superseded", "superseded", "active"]


async def test_an_alert_expired_on_arrival_is_stored_expired_and_not_announced(
    harness: Harness, engine: AsyncEngine
) -> None:
    old = make("SISMO-VIEJO", expires_in=timedelta(hours=1))
    seq = await harness.last_seq()
    outcome = await harness.ingest(old)
    assert outcome.created and outcome.state is AlertState.EXPIRED
    assert harness.announced == []
    assert await harness.audit_since(seq) == [
        ("alert.ingested", str(old.key)),
        ("alert.expired", str(old.key)),
    ]


async def test_a_cancel_of_an_expired_alert_is_stored_and_changes_nothing(
    harness: Harness, engine: AsyncEngine
) -> None:
    alert = make("SISMO-1", expires_in=timedelta(hours=2))
    harness.now = T0 + timedelta(hours=1)
    await harness.ingest(alert)
    assert await harness.state(alert) is AlertState.ACTIVE

    harness.now = NOW  # now past its expiry; expire_due has not run yet
    cancel = make("SISMO-2", minutes=300, msg_type=MsgType.CANCEL, references=[alert])
    seq = await harness.last_seq()
    outcome = await harness.ingest(cancel)

    assert outcome.created and await harness.state(alert) is AlertState.EXPIRED
    assert outcome.effects == (f"expired {outcome.alert_id - 1}",)
    assert await harness.audit_since(seq) == [
        ("alert.ingested", str(cancel.key)),
        ("alert.expired", str(alert.key)),
        ("alert.reference_no_effect", str(alert.key)),
    ]
    assert await audit.verify_chain(engine) == await harness.last_seq()


async def test_expire_due_expires_in_batches_and_audits_each(
    harness: Harness, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lifecycle, "BATCH_SIZE", 2)
    harness.now = T0
    short = [make(f"CORTA-{n}", minutes=n, expires_in=timedelta(hours=1)) for n in range(5)]
    lasting = make("LARGA", expires_in=timedelta(days=3))
    forever = make("SIN-FIN", expires_in=None)
    cancel = make("CANCELA", minutes=9, msg_type=MsgType.CANCEL, references=[short[4]])
    for message in (*short, lasting, forever, cancel):
        await harness.ingest(message)
    seq = await harness.last_seq()

    expired = await lifecycle.expire_due(engine, now=NOW)

    assert expired == 4  # the fifth short one was cancelled first
    assert await harness.states(*short) == ["expired"] * 4 + ["cancelled"]
    assert await harness.states(lasting, forever) == ["active", "active"]
    records = [r async for r in audit.iter_records(engine, since_seq=seq)]
    assert [r.action for r in records] == ["alert.expired"] * 4
    assert {r.subject for r in records} == {str(a.key) for a in short[:4]}
    assert all(r.actor == "lifecycle" for r in records)
    assert await lifecycle.expire_due(engine, now=NOW) == 0
    active = await lifecycle.active_alerts(engine, now=NOW, limit=10)
    assert [a.alert.identifier for a in active] == ["LARGA", "SIN-FIN"] or [
        a.alert.identifier for a in active
    ] == ["SIN-FIN", "LARGA"]
    assert all(a.state is AlertState.ACTIVE for a in active)
    assert await audit.verify_chain(engine) == await harness.last_seq()


async def test_withdraw_marks_only_active_unexpired_alerts_of_that_feed(
    harness: Harness, engine: AsyncEngine
) -> None:
    gone = make("AVISO-1")
    lapsed = make("AVISO-2", expires_in=timedelta(hours=2))
    cancelled = make("AVISO-3")
    cancel = make("AVISO-4", minutes=5, msg_type=MsgType.CANCEL, references=[cancelled])
    elsewhere = make("AVISO-5")
    harness.now = T0
    ids = [
        (await harness.ingest(m, feed="smn")).alert_id for m in (gone, lapsed, cancelled, cancel)
    ]
    other = (await harness.ingest(elsewhere, feed="ifrc")).alert_id
    seq = await harness.last_seq()

    count = await lifecycle.withdraw(engine, alert_ids=[*ids, other, ids[0]], feed="smn", now=NOW)

    assert count == 1
    assert await harness.states(gone, lapsed, cancelled, elsewhere) == [
        "withdrawn",
        "active",
        "cancelled",
        "active",
    ]
    (record,) = [r async for r in audit.iter_records(engine, since_seq=seq)]
    assert (record.action, record.subject, record.actor) == (
        "alert.withdrawn",
        str(gone.key),
        "feed:smn",
    )
    assert record.data["feed"] == "smn" and record.data["previous_state"] == "active"

    # A Cancel that turns up later is the issuer's explicit word: it wins over the inference.
    late_cancel = make("AVISO-6", minutes=60, msg_type=MsgType.CANCEL, references=[gone])
    harness.now = T0 + timedelta(hours=2)
    await harness.ingest(late_cancel, feed="smn")
    assert await harness.state(gone) is AlertState.CANCELLED
    assert await audit.verify_chain(engine) == await harness.last_seq()


async def test_the_chain_is_ordered_by_sent_and_reaches_both_ways(
    harness: Harness, engine: AsyncEngine
) -> None:
    alert = make("SISMO-1")
    update = make("SISMO-2", minutes=10, msg_type=MsgType.UPDATE, references=[alert])
    update2 = make("SISMO-3", minutes=20, msg_type=MsgType.UPDATE, references=[update])
    cancel = make("SISMO-4", minutes=30, msg_type=MsgType.CANCEL, references=[update2])
    unrelated = make("OTRO-1", minutes=5)
    for message in (cancel, update2, alert, update, unrelated):  # deliberately out of order
        await harness.ingest(message)

    by_key = await lifecycle.chain(engine, update.key)
    by_id = await lifecycle.chain(engine, (await harness.ingest(alert)).alert_id or 0)

    assert by_key == by_id
    assert [link.key.identifier for link in by_key] == ["SISMO-1", "SISMO-2", "SISMO-3", "SISMO-4"]
    assert all(link.seen for link in by_key)
    assert [link.msg_type for link in by_key] == [
        MsgType.ALERT,
        MsgType.UPDATE,
        MsgType.UPDATE,
        MsgType.CANCEL,
    ]
    # Cancelling the latest version leaves the older versions superseded, as in order.
    assert [link.state for link in by_key] == [
        AlertState.SUPERSEDED,
        AlertState.SUPERSEDED,
        AlertState.CANCELLED,
        AlertState.ACTIVE,
    ]
    assert by_key[2].references == (update.key,)
    assert await lifecycle.chain(engine, 10_000) == []
    assert await audit.verify_chain(engine) == await harness.last_seq()


async def test_an_alert_and_its_cancel_arriving_together_always_meet(
    database_url: str, engine: AsyncEngine
) -> None:
    """Two ingestors on two engines; whatever the interleaving, every alert ends cancelled."""
    second_engine = make_engine(database_url)
    try:
        harnesses = [Harness(engine), Harness(second_engine)]
        pairs = []
        for n in range(8):
            alert = make(f"PAR-{n}")
            cancel = make(f"CAN-{n}", minutes=1, msg_type=MsgType.CANCEL, references=[alert])
            pairs.append((alert, cancel))
        await asyncio.gather(
            *(
                job
                for n, (alert, cancel) in enumerate(pairs)
                for job in (
                    harnesses[n % 2].ingest(alert),
                    harnesses[(n + 1) % 2].ingest(cancel),
                )
            )
        )
        for alert, _ in pairs:
            assert await harnesses[0].state(alert) is AlertState.CANCELLED
        async with engine.connect() as conn:
            rows = (await conn.execute(select(alert_references))).all()
        assert len(rows) == 8 and all(row.ref_alert_id is not None for row in rows)
        assert await audit.verify_chain(engine) == await audit.count(engine)
    finally:
        await second_engine.dispose()


async def test_the_cap_corpus_goes_through_the_lifecycle(
    harness: Harness, engine: AsyncEngine, corpus_dir: Path
) -> None:
    """Every real sample is stored or refused; every reference becomes a link; the trail holds."""
    harness.now = datetime(2000, 1, 1, tzinfo=UTC)  # before every sample: none expired on arrival
    stored = 0
    references = 0
    for path in sorted((corpus_dir / "cap").iterdir()):
        outcome = await harness.ingestor.ingest_bytes(
            path.read_bytes(), source=f"corpus:{path.name}", actor="test", feed="corpus"
        )
        stored += len(outcome.new)
        references += sum(len(set(a.references)) for a in outcome.new)
    assert stored > 40
    async with engine.connect() as conn:
        rows = (await conn.execute(select(alert_references))).all()
    assert len(rows) == references > 10
    assert await audit.verify_chain(engine) == await harness.last_seq()


def _stories() -> dict[str, list[Alert]]:
    alert = make("S-1")
    first = make("S-2", minutes=10, msg_type=MsgType.UPDATE, references=[alert])
    star_second = make("S-3", minutes=20, msg_type=MsgType.UPDATE, references=[alert])
    chained_second = make("S-3", minutes=20, msg_type=MsgType.UPDATE, references=[first])
    cancel_first = make("S-4", minutes=30, msg_type=MsgType.CANCEL, references=[alert])
    cancel_last = make("S-4", minutes=30, msg_type=MsgType.CANCEL, references=[chained_second])
    third = make("S-5", minutes=25, msg_type=MsgType.UPDATE, references=[chained_second])
    drill_cancel = make(
        "S-6", minutes=15, msg_type=MsgType.CANCEL, status=Status.EXERCISE, references=[alert]
    )
    return {
        "all-name-the-first": [alert, first, star_second, cancel_first],
        "long-chain-cancel-names-the-first": [alert, first, chained_second, third, cancel_first],
        "a-drill-cancel-in-the-middle": [alert, first, drill_cancel, star_second],
        "each-names-the-last-cancel-names-the-first": [alert, first, chained_second, cancel_first],
        "each-names-the-last": [alert, first, chained_second, cancel_last],
    }


IN_ORDER = {
    "all-name-the-first": ["cancelled", "cancelled", "cancelled", "active"],
    "long-chain-cancel-names-the-first": ["cancelled"] * 4 + ["active"],
    "each-names-the-last-cancel-names-the-first": ["cancelled", "cancelled", "cancelled", "active"],
    "each-names-the-last": ["superseded", "superseded", "cancelled", "active"],
    "a-drill-cancel-in-the-middle": ["superseded", "superseded", "active", "active"],
}


@pytest.mark.parametrize("story", list(_stories()))
async def test_the_order_of_arrival_does_not_change_the_outcome(
    engine: AsyncEngine, story: str
) -> None:
    messages = _stories()[story]
    async with _fresh(engine):
        in_order = Harness(engine)
        for message in messages:
            await in_order.ingest(message)
        expected = await in_order.states(*messages)
    assert expected == IN_ORDER[story]
    for order in itertools.permutations(messages):
        async with _fresh(engine):
            harness = Harness(engine)
            for message in order:
                await harness.ingest(message)
            got = await harness.states(*messages)
            assert got == expected, [m.identifier for m in order]


@pytest.mark.parametrize("msg_type", [MsgType.ACK, MsgType.ERROR])
async def test_ack_and_error_messages_are_linked_and_change_nothing(
    harness: Harness, engine: AsyncEngine, msg_type: MsgType
) -> None:
    alert = make("SISMO-1")
    answer = make("RESP-1", minutes=5, msg_type=msg_type, references=[alert])
    await harness.ingest(alert)
    seq = await harness.last_seq()

    outcome = await harness.ingest(answer)

    assert outcome.effects == () and await harness.state(alert) is AlertState.ACTIVE
    assert await harness.audit_since(seq) == [("alert.ingested", str(answer.key))]
    assert [link.key for link in await lifecycle.chain(engine, alert.key)] == [
        alert.key,
        answer.key,
    ]
    active = await lifecycle.active_alerts(engine, now=NOW, limit=10)
    assert [a.alert.key for a in active] == [alert.key]  # an Ack is not an alert in force


async def test_a_failing_listener_never_stops_the_ingest(engine: AsyncEngine) -> None:
    heard: list[str] = []

    async def broken(alert: Alert, _source: str) -> None:
        raise RuntimeError("the channel is down")

    async def working(alert: Alert, _source: str) -> None:
        heard.append(alert.identifier)

    ingestor = Ingestor(AlertRepository(engine), clock=lambda: NOW, listeners=(broken, working))
    for name in ("SISMO-1", "SISMO-2"):
        outcome = await ingestor.ingest_bytes(
            to_cap_xml(make(name)), source=f"inbox:{name}", actor="feed:inbox"
        )
        assert outcome.error is None and len(outcome.new) == 1
    assert heard == ["SISMO-1", "SISMO-2"]
