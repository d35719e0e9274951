"""The audit trail: an append-only, hash-chained record of everything that was done.

After an alert has gone out, an office must be able to show what it received,
what it sent and who decided; and show that the record was not edited since.
Each record carries the hash of the one before it, so changing, removing,
inserting or reordering any record breaks the chain at that point, and
:func:`verify_chain` names the first sequence number where it breaks.

Each record's hash is the SHA-256 of the canonical JSON of its fields::

    {"action": ..., "actor": ..., "at": ..., "data": "<canonical JSON text>",
     "prev_hash": ..., "seq": ..., "subject": ...}

with sorted keys, no whitespace and UTF-8 text. ``at`` is ISO-8601 UTC with
microseconds; ``data`` is itself canonical JSON, and it is that *text* which is
hashed and stored, so reading a record back from either database reproduces
exactly the bytes that were hashed. The first record's ``prev_hash`` is
:data:`GENESIS_HASH`.

Ordering. Records are written inside the transaction of the change they
describe (:func:`append`), so a change and its record commit or roll back
together. Sequence numbers are not taken from a database sequence (a rolled
back transaction would leave a gap that looks like a deleted record): the
writer reads the last record and writes the next one while holding a lock
that every writer takes, kept until commit. On PostgreSQL that is a
transaction-level advisory lock; on SQLite the ``BEGIN IMMEDIATE`` write lock
each transaction starts with. So sequence order, chain order and commit order
are the same, and a reader never sees record *n + 1* without record *n*.

What the chain cannot show: that records were removed from the *end*, or that
someone with write access appended records of their own with correct hashes.
Comparing :func:`verify_chain`'s count and the last hash with a copy kept
elsewhere (an export, a printed report) covers the first.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO, cast

import structlog
from sqlalchemy import func, select, text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alertcast.errors import AuditError, StoreError
from alertcast.store.engine import database_errors, is_read_only, read_only
from alertcast.store.tables import audit_log

log = structlog.get_logger(__name__)

GENESIS_HASH = "0" * 64
"""``prev_hash`` of the first record."""

AUDIT_LOCK_KEY = 0x616C_6572_7463_0002
"""PostgreSQL advisory lock key every audit writer holds until it commits."""

CSV_COLUMNS = ("seq", "at", "actor", "action", "subject", "data", "prev_hash", "hash")


def canonical_json(value: Any) -> str:
    """The one JSON spelling of ``value``: sorted keys, no whitespace, raw UTF-8.

    NaN and infinities are refused: they are not JSON, and another verifier
    could not reproduce the text.
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def format_at(at: datetime) -> str:
    """``at`` as the hashed text: ISO-8601 in UTC, always with microseconds."""
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: an audit time needs a time zone")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def compute_hash(
    *, seq: int, at: str, actor: str, action: str, subject: str, data: str, prev_hash: str
) -> str:
    """SHA-256 (hex) of a record's canonical form; ``at`` and ``data`` as stored text."""
    body = canonical_json(
        {
            "seq": seq,
            "at": at,
            "actor": actor,
            "action": action,
            "subject": subject,
            "data": data,
            "prev_hash": prev_hash,
        }
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One record, with ``at`` and ``data_json`` exactly as stored and hashed."""

    seq: int
    at: str
    actor: str
    action: str
    subject: str
    data_json: str
    prev_hash: str
    hash: str

    @property
    def data(self) -> dict[str, Any]:
        """The record's data, parsed."""
        return cast(dict[str, Any], json.loads(self.data_json))

    @property
    def timestamp(self) -> datetime:
        """``at`` as an aware datetime."""
        return datetime.fromisoformat(self.at)

    def expected_hash(self) -> str:
        """The hash this record's fields call for (equal to ``hash`` unless tampered with)."""
        return compute_hash(
            seq=self.seq,
            at=self.at,
            actor=self.actor,
            action=self.action,
            subject=self.subject,
            data=self.data_json,
            prev_hash=self.prev_hash,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict, ``data`` parsed: re-serialised canonically, it is the hashed text."""
        return {
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "data": self.data,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def record_from_row(row: Row[Any]) -> AuditRecord:
    """The row of a ``select(audit_log)`` as a record, for every reader of the trail."""
    return AuditRecord(
        seq=int(row.seq),
        at=row.at,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        data_json=row.data,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def _check_text(name: str, value: str) -> None:
    if not isinstance(value, str):
        raise TypeError(f"audit {name} must be a string, not {type(value).__name__}")
    if "\x00" in value:
        # PostgreSQL text cannot hold NUL; refuse it everywhere so both stores agree.
        raise ValueError(f"audit {name} contains a NUL character")
    # Lone surrogates cannot be encoded, so they could never be hashed.
    value.encode("utf-8")


async def _lock_chain(conn: AsyncConnection) -> None:
    if is_read_only(conn):
        raise StoreError("cannot append to the audit trail from a read-only connection")
    dialect = conn.dialect.name
    if dialect == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK_KEY})
    elif dialect != "sqlite":
        raise StoreError(f"the audit trail does not support the {dialect!r} database")
    # On SQLite the transaction began with BEGIN IMMEDIATE: this connection
    # already holds the database's only write lock.


async def append(
    conn: AsyncConnection,
    *,
    actor: str,
    action: str,
    subject: str,
    data: Mapping[str, Any],
    at: datetime | None = None,
) -> AuditRecord:
    """Append a record inside the caller's transaction; it commits or rolls back with it.

    The chain stays locked for other writers until that transaction ends, so
    call this as late in the transaction as possible and commit soon after.
    On PostgreSQL the transaction must be READ COMMITTED (the default): a
    snapshot taken before the lock would not see the latest record, and the
    insert would then fail on the duplicate sequence number rather than fork
    the chain.

    ``at`` defaults to now; a naive datetime is refused. ``data`` must be JSON
    serialisable (TypeError otherwise) without NaN or infinities (ValueError).
    """
    for name, value in (("actor", actor), ("action", action), ("subject", subject)):
        _check_text(name, value)
    data_json = canonical_json(dict(data))
    _check_text("data", data_json)
    at_text = format_at(at if at is not None else datetime.now(UTC))

    await _lock_chain(conn)
    last = (
        await conn.execute(
            select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
        )
    ).first()
    seq, prev_hash = (1, GENESIS_HASH) if last is None else (int(last.seq) + 1, last.hash)
    record_hash = compute_hash(
        seq=seq,
        at=at_text,
        actor=actor,
        action=action,
        subject=subject,
        data=data_json,
        prev_hash=prev_hash,
    )
    await conn.execute(
        audit_log.insert().values(
            seq=seq,
            at=at_text,
            actor=actor,
            action=action,
            subject=subject,
            data=data_json,
            prev_hash=prev_hash,
            hash=record_hash,
        )
    )
    log.debug("audit.appended", seq=seq, action=action, subject=subject)
    return AuditRecord(seq, at_text, actor, action, subject, data_json, prev_hash, record_hash)


async def record(
    engine: AsyncEngine,
    *,
    actor: str,
    action: str,
    subject: str,
    data: Mapping[str, Any],
    at: datetime | None = None,
) -> AuditRecord:
    """Append a record in a transaction of its own, for actions that change nothing else."""
    with database_errors("cannot write the audit record"):
        async with engine.begin() as conn:
            return await append(conn, actor=actor, action=action, subject=subject, data=data, at=at)


async def _fetch_batch(engine: AsyncEngine, after_seq: int, limit: int) -> list[AuditRecord]:
    # One short read per batch: no connection or snapshot is held while the
    # caller works through the records, and since the chain only grows at the
    # end, consecutive batches still read one consistent prefix of it.
    query = (
        select(audit_log).where(audit_log.c.seq > after_seq).order_by(audit_log.c.seq).limit(limit)
    )
    with database_errors("cannot read the audit trail"):
        async with read_only(engine) as conn:
            return [record_from_row(row) for row in await conn.execute(query)]


async def iter_records(
    engine: AsyncEngine, *, since_seq: int = 0, batch: int = 1000
) -> AsyncIterator[AuditRecord]:
    """Records with ``seq > since_seq`` in order, read ``batch`` at a time."""
    async for item in _batched_records(engine, since_seq, batch, None):
        yield item


async def tail(engine: AsyncEngine, n: int = 20) -> list[AuditRecord]:
    """The last ``n`` records, oldest first."""
    if n < 1:
        return []
    query = select(audit_log).order_by(audit_log.c.seq.desc()).limit(n)
    with database_errors("cannot read the audit trail"):
        async with read_only(engine) as conn:
            return [record_from_row(row) for row in await conn.execute(query)][::-1]


async def count(engine: AsyncEngine) -> int:
    """How many records the trail holds."""
    with database_errors("cannot count the audit records"):
        async with read_only(engine) as conn:
            result = await conn.execute(select(func.count()).select_from(audit_log))
            return int(result.scalar_one())


def _check_record(item: AuditRecord, expected_seq: int, expected_prev: str) -> None:
    if item.seq != expected_seq:
        # Records come in seq order from a primary key, so the only way to
        # miss the expected number is that it is gone.
        missing = (
            f"record {expected_seq} is missing"
            if item.seq == expected_seq + 1
            else f"records {expected_seq} to {item.seq - 1} are missing"
        )
        raise AuditError(expected_seq, f"{missing} (deleted?); the next record is {item.seq}")
    if item.prev_hash != expected_prev:
        previous = "the genesis value" if expected_seq == 1 else f"record {expected_seq - 1}"
        raise AuditError(
            item.seq,
            f"prev_hash does not match the hash of {previous} "
            "(a record was removed, inserted or moved here)",
        )
    if item.expected_hash() != item.hash:
        raise AuditError(item.seq, "hash does not match the record's content (it was edited)")


async def verify_chain(
    engine: AsyncEngine,
    *,
    batch: int = 5000,
    progress: Callable[[int], object] | None = None,
) -> int:
    """Check the whole chain from the first record; return how many records were checked.

    Reads ``batch`` records at a time, so memory stays flat however long the
    trail is. ``progress``, when given, is called after each batch with the
    number of records just checked, so ``Progress(total=await count(engine))``'s
    ``advance`` can be passed as it is. Raises AuditError with the first
    sequence number at which the chain is broken.
    """
    checked = 0
    expected_prev = GENESIS_HASH
    expected_seq = 1
    async for item in _batched_records(engine, 0, batch, progress):
        _check_record(item, expected_seq, expected_prev)
        checked += 1
        expected_seq = item.seq + 1
        expected_prev = item.hash
    log.info("audit.verified", records=checked)
    return checked


async def _batched_records(
    engine: AsyncEngine,
    after: int,
    batch: int,
    progress: Callable[[int], object] | None,
) -> AsyncIterator[AuditRecord]:
    if batch < 1:
        raise ValueError("batch must be at least 1")
    while True:
        records = await _fetch_batch(engine, after, batch)
        for item in records:
            yield item
        if records and progress is not None:
            progress(len(records))
        if len(records) < batch:
            return
        after = records[-1].seq


async def export_jsonl(records: AsyncIterable[AuditRecord], out: TextIO) -> int:
    """Write one JSON object per line per record; return how many were written."""
    written = 0
    async for item in records:
        out.write(json.dumps(item.to_json(), ensure_ascii=False, sort_keys=True))
        out.write("\n")
        written += 1
    return written


async def export_csv(records: AsyncIterable[AuditRecord], out: TextIO) -> int:
    """Write a header and one row per record (``data`` as its canonical JSON text).

    Open ``out`` with ``newline=""`` as the csv module requires.
    """
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    written = 0
    async for item in records:
        writer.writerow(
            (
                item.seq,
                item.at,
                item.actor,
                item.action,
                item.subject,
                item.data_json,
                item.prev_hash,
                item.hash,
            )
        )
        written += 1
    return written
