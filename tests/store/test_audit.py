"""The audit trail: a hash chain that commits with its change and shows any tampering."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit
from alertcast.errors import AuditError, StoreError
from alertcast.store.engine import make_engine, read_only
from alertcast.store.migrate import upgrade


async def _fill(engine: AsyncEngine, n: int) -> list[audit.AuditRecord]:
    start = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    return [
        await audit.record(
            engine,
            actor=f"officer-{i % 3}",
            action="alert.sent",
            subject=f"alert-{i}",
            data={"channel": "sms", "n": i, "text": "Évacuez ⚠"},
            at=start + timedelta(seconds=i),
        )
        for i in range(1, n + 1)
    ]


async def _sql(engine: AsyncEngine, *statements: str, **params: Any) -> None:
    async with engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement), params)


async def test_an_empty_chain_verifies_to_zero(engine: AsyncEngine) -> None:
    assert await audit.verify_chain(engine) == 0
    assert await audit.count(engine) == 0
    assert await audit.tail(engine) == []


async def test_records_are_chained_from_the_genesis_value(engine: AsyncEngine) -> None:
    records = await _fill(engine, 3)

    assert [r.seq for r in records] == [1, 2, 3]
    assert records[0].prev_hash == audit.GENESIS_HASH
    assert records[1].prev_hash == records[0].hash
    assert records[2].prev_hash == records[1].hash
    assert all(r.hash == r.expected_hash() for r in records)
    assert await audit.verify_chain(engine) == 3


async def test_stored_text_is_the_hashed_text(engine: AsyncEngine) -> None:
    at = datetime(2024, 5, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    written = await audit.record(
        engine,
        actor="officer",
        action="alert.approved",
        subject="x",
        data={"z": 1, "a": [1.5, None, True], "ü": "ü"},
        at=at,
    )
    assert written.at == "2024-05-01T12:00:00.000000+00:00"
    assert written.data_json == '{"a":[1.5,null,true],"z":1,"ü":"ü"}'

    (read,) = await audit.tail(engine, 1)
    assert read == written
    assert read.timestamp == at
    assert read.data == {"z": 1, "a": [1.5, None, True], "ü": "ü"}


async def test_unhashable_input_is_refused_before_anything_is_written(engine: AsyncEngine) -> None:
    with pytest.raises(ValueError, match="time zone"):
        await audit.record(
            engine, actor="a", action="b", subject="c", data={}, at=datetime(2024, 1, 1)
        )
    with pytest.raises(ValueError):
        await audit.record(engine, actor="a", action="b", subject="c", data={"x": float("nan")})
    with pytest.raises(TypeError):
        await audit.record(engine, actor="a", action="b", subject="c", data={"x": object()})
    with pytest.raises(ValueError, match="NUL"):
        await audit.record(engine, actor="a\x00", action="b", subject="c", data={})
    assert await audit.count(engine) == 0


async def test_a_record_rolls_back_with_its_transaction(engine: AsyncEngine) -> None:
    await _fill(engine, 2)
    with pytest.raises(RuntimeError, match="change failed"):
        async with engine.begin() as conn:
            await audit.append(conn, actor="a", action="b", subject="c", data={})
            raise RuntimeError("change failed")
    assert await audit.count(engine) == 2

    after = await audit.record(engine, actor="a", action="b", subject="c", data={})
    assert after.seq == 3  # the rolled-back record left no gap
    assert await audit.verify_chain(engine) == 3


async def test_read_only_connections_cannot_append(engine: AsyncEngine) -> None:
    async with read_only(engine) as conn:
        with pytest.raises(StoreError, match="read-only"):
            await audit.append(conn, actor="a", action="b", subject="c", data={})


def _forged_hash(seq: int, prev_hash: str) -> str:
    return audit.compute_hash(
        seq=seq,
        at="2024-05-01T12:00:30.000000+00:00",
        actor="intruder",
        action="alert.sent",
        subject="forged",
        data="{}",
        prev_hash=prev_hash,
    )


async def _edit_data(engine: AsyncEngine, records: list[audit.AuditRecord]) -> None:
    await _sql(engine, 'UPDATE audit_log SET data = \'{"channel":"none"}\' WHERE seq = 5')


async def _edit_and_rehash(engine: AsyncEngine, records: list[audit.AuditRecord]) -> None:
    edited = records[4]
    new_hash = audit.compute_hash(
        seq=5,
        at=edited.at,
        actor="someone-else",
        action=edited.action,
        subject=edited.subject,
        data=edited.data_json,
        prev_hash=edited.prev_hash,
    )
    await _sql(
        engine,
        "UPDATE audit_log SET actor = 'someone-else', hash = :h WHERE seq = 5",
        h=new_hash,
    )


async def _delete_middle(engine: AsyncEngine, records: list[audit.AuditRecord]) -> None:
    await _sql(engine, "DELETE FROM audit_log WHERE seq = 5")


async def _delete_first(engine: AsyncEngine, records: list[audit.AuditRecord]) -> None:
    await _sql(engine, "DELETE FROM audit_log WHERE seq = 1")


async def _delete_and_renumber(engine: AsyncEngine, records: list[audit.AuditRecord]) -> None:
    await _sql(
        engine,
        "DELETE FROM audit_log WHERE seq = 5",
        "UPDATE audit_log SET seq = -seq WHERE seq > 5",
        "UPDATE audit_log SET seq = -seq - 1 WHERE seq < 0",
    )


async def _insert_forged(engine: AsyncEngine, records: list[audit.AuditRecord]) -> None:
    """A well-formed record slipped in after 4, later ones renumbered to make room."""
    await _sql(
        engine,
        "UPDATE audit_log SET seq = -seq WHERE seq >= 5",
        "UPDATE audit_log SET seq = -seq + 1 WHERE seq < 0",
        "INSERT INTO audit_log (seq, at, actor, action, subject, data, prev_hash, hash) "
        "VALUES (5, '2024-05-01T12:00:30.000000+00:00', 'intruder', 'alert.sent', 'forged', "
        "'{}', :prev, :h)",
        prev=records[3].hash,
        h=_forged_hash(5, records[3].hash),
    )


async def _swap(engine: AsyncEngine, records: list[audit.AuditRecord]) -> None:
    await _sql(
        engine,
        "UPDATE audit_log SET seq = -1 WHERE seq = 5",
        "UPDATE audit_log SET seq = 5 WHERE seq = 6",
        "UPDATE audit_log SET seq = 6 WHERE seq = -1",
    )


@pytest.mark.parametrize(
    ("tamper", "first_bad", "reason"),
    [
        (_edit_data, 5, "edited"),
        (_edit_and_rehash, 6, "prev_hash"),
        (_delete_middle, 5, "missing"),
        (_delete_first, 1, "missing"),
        (_delete_and_renumber, 5, "prev_hash"),
        (_insert_forged, 6, "prev_hash"),
        (_swap, 5, "prev_hash"),
    ],
    ids=lambda value: getattr(value, "__name__", str(value)).strip("_"),
)
async def test_verify_names_the_first_tampered_record(
    engine: AsyncEngine, tamper: Any, first_bad: int, reason: str
) -> None:
    records = await _fill(engine, 10)
    assert await audit.verify_chain(engine, batch=4) == 10

    await tamper(engine, records)

    with pytest.raises(AuditError, match=reason) as caught:
        await audit.verify_chain(engine, batch=4)
    assert caught.value.sequence == first_bad


async def test_progress_reports_every_batch(engine: AsyncEngine) -> None:
    await _fill(engine, 10)
    steps: list[int] = []
    assert await audit.verify_chain(engine, batch=4, progress=steps.append) == 10
    assert steps == [4, 4, 2]


async def test_iter_records_streams_in_order_from_a_point(engine: AsyncEngine) -> None:
    written = await _fill(engine, 7)
    assert [r async for r in audit.iter_records(engine, batch=3)] == written
    assert [r async for r in audit.iter_records(engine, since_seq=4, batch=2)] == written[4:]
    assert [r async for r in audit.iter_records(engine, since_seq=7)] == []


async def test_tail_returns_the_last_records_oldest_first(engine: AsyncEngine) -> None:
    written = await _fill(engine, 5)
    assert await audit.tail(engine, 2) == written[3:]
    assert await audit.tail(engine, 50) == written
    assert await audit.count(engine) == 5


async def test_concurrent_writers_produce_one_contiguous_chain(database_url: str) -> None:
    """Four engines (four pools, as four processes would have) appending in parallel."""
    await upgrade(database_url)
    engines = [make_engine(database_url) for _ in range(4)]

    async def writer(number: int, engine: AsyncEngine) -> None:
        for i in range(25):
            await audit.record(
                engine,
                actor=f"writer-{number}",
                action="test.append",
                subject=f"{number}/{i}",
                data={"i": i},
            )

    try:
        await asyncio.gather(*(writer(n, e) for n, e in enumerate(engines)))
        records = [r async for r in audit.iter_records(engines[0])]
        assert [r.seq for r in records] == list(range(1, 101))
        assert sorted(r.subject for r in records) == sorted(
            f"{n}/{i}" for n in range(4) for i in range(25)
        )
        assert await audit.verify_chain(engines[0], batch=30) == 100
    finally:
        for engine in engines:
            await engine.dispose()


async def test_exports_hold_every_record_and_can_be_verified_offline(engine: AsyncEngine) -> None:
    written = await _fill(engine, 6)

    lines = io.StringIO()
    assert await audit.export_jsonl(audit.iter_records(engine, batch=4), lines) == 6
    exported = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert exported == [r.to_json() for r in written]
    for item in exported:
        recomputed = audit.compute_hash(
            seq=item["seq"],
            at=item["at"],
            actor=item["actor"],
            action=item["action"],
            subject=item["subject"],
            data=audit.canonical_json(item["data"]),
            prev_hash=item["prev_hash"],
        )
        assert recomputed == item["hash"]

    table = io.StringIO(newline="")
    assert await audit.export_csv(audit.iter_records(engine, batch=4), table) == 6
    rows = list(csv.reader(io.StringIO(table.getvalue(), newline="")))
    assert tuple(rows[0]) == audit.CSV_COLUMNS
    assert rows[1:] == [
        [str(r.seq), r.at, r.actor, r.action, r.subject, r.data_json, r.prev_hash, r.hash]
        for r in written
    ]
