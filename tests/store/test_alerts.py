"""The alert repository: idempotent on the CAP key, lossless, audited in the same transaction."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit
from alertcast.domain import (
    Alert,
    AlertKey,
    Area,
    Category,
    Certainty,
    Circle,
    Info,
    MsgType,
    NamedValue,
    Polygon,
    Resource,
    ResponseType,
    Scope,
    Severity,
    Status,
    Urgency,
)
from alertcast.store.alerts import AlertRepository
from alertcast.store.engine import make_engine

PLUS_TWO = timezone(timedelta(hours=2))
RAW = (
    b'<?xml version="1.0" encoding="UTF-8"?>\r\n'
    b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">'
    b"<identifier>x</identifier><!-- \xc3\xa9 --><Signature>AAEC/w==</Signature></alert>\n"
)


def make_alert(
    identifier: str = "FR-2024-0001", sent: datetime | None = None, **changes: Any
) -> Alert:
    fields: dict[str, Any] = {
        "identifier": identifier,
        "sender": "prefecture@example.fr",
        "sent": sent or datetime(2024, 5, 1, 14, 30, tzinfo=PLUS_TWO),
        "status": Status.ACTUAL,
        "msg_type": MsgType.ALERT,
        "scope": Scope.PUBLIC,
        "addresses": (),
        "codes": ("IPAWSv1.0",),
        "note": "Crue de la Loire",
        "incidents": ("crue-2024",),
        "infos": (
            Info(
                categories=(Category.MET, Category.SAFETY),
                event="Crue",
                urgency=Urgency.IMMEDIATE,
                severity=Severity.SEVERE,
                certainty=Certainty.OBSERVED,
                language="fr-FR",
                response_types=(ResponseType.EVACUATE,),
                event_codes=(NamedValue("SAME", "FLW"),),
                expires=datetime(2024, 5, 2, 14, 30, tzinfo=PLUS_TWO),
                headline="Évacuez les quais",
                instruction="Montez aux étages.",
                parameters=(NamedValue("level", "3"), NamedValue("level", "4")),
                resources=(
                    Resource("carte", "image/png", size=1024, uri="https://example.fr/c.png"),
                ),
                areas=(
                    Area(
                        "Orléans",
                        polygons=(
                            Polygon(((47.9, 1.9), (47.95, 1.9), (47.95, 1.95), (47.9, 1.9))),
                        ),
                        circles=(Circle(47.9, 1.9, 2.5),),
                        geocodes=(NamedValue("INSEE", "45234"),),
                    ),
                ),
            ),
        ),
    }
    fields.update(changes)
    return Alert(**fields)


async def ingest(repository: AlertRepository, alert: Alert, **options: Any) -> Any:
    options.setdefault("raw", RAW)
    options.setdefault("source", "feed:meteo")
    options.setdefault("actor", "poller")
    return await repository.ingest(alert, **options)


async def test_an_alert_round_trips_with_its_raw_bytes(engine: AsyncEngine) -> None:
    repository = AlertRepository(engine)
    alert = make_alert()

    result = await ingest(
        repository, alert, warnings=("polygon was not closed",), cap_version="1.1"
    )

    assert result.created
    assert result.key == alert.key
    stored = await repository.get(alert.key)
    assert stored is not None
    assert stored.id == result.alert_id
    assert stored.alert == alert
    assert stored.raw == RAW
    assert stored.source == "feed:meteo"
    assert stored.cap_version == "1.1"
    assert stored.warnings == ("polygon was not closed",)
    assert stored.received_at.tzinfo is not None
    assert abs(stored.received_at - datetime.now(UTC)) < timedelta(minutes=5)


async def test_a_composed_alert_has_no_raw_document(engine: AsyncEngine) -> None:
    repository = AlertRepository(engine)
    alert = make_alert(infos=())
    result = await ingest(repository, alert, raw=None, source="user:duty-officer")

    stored = await repository.get(alert.key)
    assert stored is not None and stored.raw is None and stored.alert == alert
    (record,) = await audit.tail(engine, 1)
    assert record.seq == result.audit_seq
    assert record.data["raw_sha256"] is None


async def test_the_same_key_is_stored_once(engine: AsyncEngine) -> None:
    repository = AlertRepository(engine)
    alert = make_alert()

    first = await ingest(repository, alert)
    again = await ingest(repository, alert, source="feed:other")

    assert first.created and not again.created
    assert again.alert_id == first.alert_id
    assert again.audit_seq is None and not again.content_differs
    assert await repository.count() == 1
    assert await audit.count(engine) == 1
    stored = await repository.get(alert.key)
    assert stored is not None and stored.source == "feed:meteo"  # the first copy is kept


async def test_the_same_instant_in_another_offset_is_the_same_key(engine: AsyncEngine) -> None:
    repository = AlertRepository(engine)
    local = make_alert()
    as_utc = make_alert(sent=local.sent.astimezone(UTC))
    assert local.key == as_utc.key

    await ingest(repository, local)
    again = await ingest(repository, as_utc)

    assert not again.created
    assert again.content_differs  # the stored text keeps the issuer's own offset
    found = await repository.get(as_utc.key)
    assert found is not None and found.alert.sent.utcoffset() == timedelta(hours=2)


async def test_a_known_key_with_other_content_is_flagged(engine: AsyncEngine) -> None:
    repository = AlertRepository(engine)
    await ingest(repository, make_alert())
    changed = await ingest(repository, make_alert(note="changed without a new identifier"))
    assert not changed.created and changed.content_differs
    stored = await repository.get(changed.key)
    assert stored is not None and stored.alert.note == "Crue de la Loire"


async def test_each_new_alert_is_audited(engine: AsyncEngine) -> None:
    repository = AlertRepository(engine)
    alert = make_alert(status=Status.EXERCISE, msg_type=MsgType.UPDATE)

    result = await ingest(repository, alert, actor="poller:meteo", cap_version="1.2")

    (record,) = await audit.tail(engine, 5)
    assert record.seq == result.audit_seq
    assert record.actor == "poller:meteo"
    assert record.action == "alert.ingested"
    assert record.subject == str(alert.key)
    assert record.data == {
        "source": "feed:meteo",
        "status": "Exercise",
        "msg_type": "Update",
        "cap_version": "1.2",
        "raw_sha256": hashlib.sha256(RAW).hexdigest(),
    }
    assert await audit.verify_chain(engine) == 1


async def test_the_alert_and_its_audit_record_commit_together(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    repository = AlertRepository(engine)
    real_append = audit.append

    async def append_then_fail(*args: Any, **kwargs: Any) -> audit.AuditRecord:
        await real_append(*args, **kwargs)
        raise RuntimeError("crash after the audit record")

    monkeypatch.setattr(audit, "append", append_then_fail)
    with pytest.raises(RuntimeError, match="crash after"):
        await ingest(repository, make_alert())

    assert await repository.count() == 0
    assert await repository.get(make_alert().key) is None
    assert await audit.count(engine) == 0

    monkeypatch.setattr(audit, "append", real_append)
    result = await ingest(repository, make_alert())
    assert result.created and result.audit_seq == 1


async def test_concurrent_ingests_of_one_key_store_one_row(engine: AsyncEngine) -> None:
    """Both ingests are held at the audit lock, so they overlap for certain; one wins."""
    repository = AlertRepository(engine)
    alert = make_alert()
    async with engine.begin() as blocker:
        if engine.dialect.name == "postgresql":
            await blocker.execute(
                text("SELECT pg_advisory_xact_lock(:k)"), {"k": audit.AUDIT_LOCK_KEY}
            )
        else:
            await blocker.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: holds the write lock
        tasks = [asyncio.create_task(ingest(repository, alert)) for _ in range(2)]
        await _until_waiting(engine, blocker, tasks, expected=2)
        assert not any(task.done() for task in tasks)
    results = await asyncio.gather(*tasks)

    assert sorted(r.created for r in results) == [False, True]
    assert len({r.alert_id for r in results}) == 1
    assert await repository.count() == 1
    assert await audit.count(engine) == 1


async def _until_waiting(
    engine: AsyncEngine, blocker: Any, tasks: list[Any], expected: int
) -> None:
    """On PostgreSQL, wait until the server shows the tasks blocked on a lock."""
    if engine.dialect.name != "postgresql":
        await asyncio.sleep(0.2)
        return
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    async with engine.connect() as probe:
        for _ in range(500):
            if (await probe.execute(query)).scalar_one() >= expected:
                return
            await probe.rollback()
            await asyncio.sleep(0.01)
    pytest.fail("the ingests never reached the lock")


async def test_many_writers_many_alerts(database_url: str, engine: AsyncEngine) -> None:
    engines = [engine, make_engine(database_url)]
    repositories = [AlertRepository(e) for e in engines]
    alerts = [make_alert(identifier=f"FR-{n:04d}") for n in range(20)]
    try:
        results = await asyncio.gather(
            *(ingest(repositories[n % 2], alert) for n, alert in enumerate(alerts * 2))
        )
    finally:
        await engines[1].dispose()

    assert sum(r.created for r in results) == 20
    assert await repositories[0].count() == 20
    assert await audit.verify_chain(engine) == 20


async def test_list_recent_is_newest_sent_first(engine: AsyncEngine) -> None:
    repository = AlertRepository(engine)
    base = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    for n, hours in enumerate([3, 1, 5, 2, 4]):
        await ingest(repository, make_alert(identifier=f"A{n}", sent=base + timedelta(hours=hours)))

    recent = await repository.list_recent(3)

    assert [s.alert.identifier for s in recent] == ["A2", "A4", "A0"]
    assert await repository.count() == 5


async def test_an_unknown_key_is_none(engine: AsyncEngine) -> None:
    repository = AlertRepository(engine)
    await ingest(repository, make_alert())
    other = AlertKey(
        "prefecture@example.fr", "FR-2024-0001", datetime(2024, 5, 1, 12, 31, tzinfo=UTC)
    )
    assert await repository.get(other) is None
