"""Received alerts: stored once per CAP key, with the document as it arrived.

Feeds repeat themselves (an Atom feed lists the same alert on every poll, two
feeds carry the same national alert), so storing is idempotent on the alert's
key ``(sender, identifier, sent)``: the first copy is kept, later copies are
reported as already known. The check is the database's own unique constraint
(``INSERT ... ON CONFLICT DO NOTHING``), so it also holds when two pollers
deliver the same alert at the same moment.

Three forms are kept: ``raw``, the bytes as received with any signature intact
(the evidence); ``normalized``, the model as canonical JSON (what the code
reads back); and the few columns needed to find and order alerts.

Each alert also carries its place in the CAP lifecycle: the ``feed`` and
``thread`` it came from, when it expires, and its ``state`` (active,
cancelled, superseded, withdrawn or expired). The rules that move an alert
between states live in :mod:`alertcast.lifecycle`, which stores alerts through
:func:`insert_alert` inside its own transaction; :meth:`AlertRepository.ingest`
stores an alert without applying them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy import ColumnElement, and_, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alertcast import audit
from alertcast.alert_json import alert_from_json, alert_to_json
from alertcast.domain import Alert, AlertKey
from alertcast.errors import StoreError
from alertcast.store.engine import database_errors, read_only
from alertcast.store.tables import alerts

log = structlog.get_logger(__name__)

INGESTED_ACTION = "alert.ingested"


class AlertState(StrEnum):
    """Where a stored alert stands in its lifecycle (the ``alerts.state`` column)."""

    ACTIVE = "active"
    """In force: nothing has cancelled, replaced or withdrawn it, and it has not expired."""
    CANCELLED = "cancelled"
    """A Cancel from its issuer (or a delegate) ended it."""
    SUPERSEDED = "superseded"
    """A newer message of the same story replaced it."""
    WITHDRAWN = "withdrawn"
    """It left its issuer's index of current alerts before expiring, with no Cancel."""
    EXPIRED = "expired"
    """Its ``expires`` time passed."""
    DRAFT = "draft"
    """Composed by an officer and still being edited; nothing reads it but the desk."""
    SUBMITTED = "submitted"
    """Composed and waiting for its approvals."""
    SCHEDULED = "scheduled"
    """Approved, and released at ``scheduled_for``."""
    REJECTED = "rejected"
    """An approver refused it (``review_reason`` says why); final."""
    DISCARDED = "discarded"
    """Withdrawn by an officer before anything went out; final."""


COMPOSED_STATES = (
    AlertState.DRAFT,
    AlertState.SUBMITTED,
    AlertState.SCHEDULED,
    AlertState.REJECTED,
    AlertState.DISCARDED,
)
"""States only a composed alert has: it is not yet (or never was) issued.

Such a row has no lifecycle effects and no ``alert_references`` rows; routing,
the public feed and the lifecycle only read ``active`` alerts, so it stays
invisible to them until :func:`alertcast.lifecycle.activate_alert` issues it.
"""


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What :meth:`AlertRepository.ingest` did with one alert.

    ``audit_seq`` is the sequence number of the ``alert.ingested`` record, None
    when the alert was already known. ``content_differs`` flags a known key
    whose stored content is not the same as this copy's: CAP requires a new
    identifier for a changed message, so this is an issuer's mistake or a
    forgery worth a look; the first copy stays the stored one.
    """

    key: AlertKey
    created: bool
    alert_id: int
    audit_seq: int | None = None
    content_differs: bool = False
    state: AlertState = AlertState.ACTIVE
    """The alert's state once the transaction that stored (or found) it ended."""
    effects: tuple[str, ...] = ()
    """Lifecycle changes this alert caused, e.g. ``"cancelled 12"`` (state, alert id)."""


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert as stored, with where it came from and the document it came in."""

    id: int
    alert: Alert
    raw: bytes | None
    source: str
    cap_version: str
    warnings: tuple[str, ...]
    received_at: datetime
    state: AlertState = AlertState.ACTIVE
    feed: str | None = None
    thread: str | None = None
    expires_at: datetime | None = None
    state_changed_at: datetime | None = None


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def key_matches(key: AlertKey) -> ColumnElement[bool]:
    """The condition selecting the alert with ``key`` (any spelling of the same instant)."""
    return and_(
        alerts.c.sender == key.sender,
        alerts.c.identifier == key.identifier,
        alerts.c.sent_utc == key.sent,
    )


def stored_from_row(row: Row[Any]) -> StoredAlert:
    """A :class:`StoredAlert` from a full ``alerts`` row."""
    return StoredAlert(
        id=int(row.id),
        alert=alert_from_json(json.loads(row.normalized)),
        raw=bytes(row.raw) if row.raw is not None else None,
        source=row.source,
        cap_version=row.cap_version,
        warnings=tuple(json.loads(row.warnings)),
        received_at=row.received_at,
        state=AlertState(row.state),
        feed=row.feed,
        thread=row.thread,
        expires_at=row.expires_at,
        state_changed_at=row.state_changed_at,
    )


class AlertRepository:
    """Stores and reads received alerts."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @property
    def engine(self) -> AsyncEngine:
        """The engine this repository works on (shared with the audit trail)."""
        return self._engine

    async def ingest(
        self,
        alert: Alert,
        *,
        raw: bytes | None,
        source: str,
        actor: str,
        warnings: Sequence[str] = (),
        cap_version: str = "1.2",
        feed: str | None = None,
        thread: str | None = None,
    ) -> IngestResult:
        """Store ``alert`` unless its key is already stored, and audit it if new.

        The alert row and its ``alert.ingested`` audit record are written in one
        transaction: either both exist or neither does. ``raw`` is None for an
        alert composed here rather than received. No lifecycle rule is applied
        (references are not linked, nothing is cancelled): received alerts go
        through :class:`alertcast.ingest.Ingestor`, which applies them.
        """
        with database_errors(f"cannot store alert {alert.key}"):
            async with self._engine.begin() as conn:
                await lock_alert_writes(conn)
                return await insert_alert(
                    conn,
                    alert,
                    raw=raw,
                    source=source,
                    actor=actor,
                    warnings=warnings,
                    cap_version=cap_version,
                    feed=feed,
                    thread=thread,
                )

    async def get(self, key: AlertKey) -> StoredAlert | None:
        """The stored alert with this key (any spelling of the same ``sent`` instant), or None."""
        with database_errors(f"cannot read alert {key}"):
            async with read_only(self._engine) as conn:
                row = (await conn.execute(select(alerts).where(key_matches(key)))).first()
        return stored_from_row(row) if row is not None else None

    async def list_recent(self, limit: int = 50) -> list[StoredAlert]:
        """The ``limit`` alerts sent last, newest first."""
        query = select(alerts).order_by(alerts.c.sent_utc.desc(), alerts.c.id.desc()).limit(limit)
        with database_errors("cannot list alerts"):
            async with read_only(self._engine) as conn:
                rows = (await conn.execute(query)).all()
        return [stored_from_row(row) for row in rows]

    async def get_by_id(self, alert_id: int) -> StoredAlert | None:
        """The stored alert with this row id, or None."""
        with database_errors(f"cannot read alert {alert_id}"):
            async with read_only(self._engine) as conn:
                row = (await conn.execute(select(alerts).where(alerts.c.id == alert_id))).first()
        return stored_from_row(row) if row is not None else None

    async def count(self) -> int:
        """How many alerts are stored."""
        with database_errors("cannot count alerts"):
            async with read_only(self._engine) as conn:
                result = await conn.execute(select(func.count()).select_from(alerts))
                return int(result.scalar_one())


async def lock_alert_writes(conn: AsyncConnection) -> None:
    """Take the audit trail's lock at the start of a transaction that stores or changes alerts.

    Every such transaction appends to the audit trail anyway, so it would take
    this lock later; taking it first gives all of them one lock order (no
    deadlock between a transaction waiting for the lock while holding a new
    alert row and one holding the lock while inserting the same key) and lets
    every read that follows see all that was committed before. On PostgreSQL
    it is the audit trail's advisory lock (taken again by ``audit.append``,
    which is harmless); READ COMMITTED makes each later statement see what
    committed before the lock was granted. On SQLite the transaction already
    began with ``BEGIN IMMEDIATE`` and holds the only write lock.
    """
    if conn.dialect.name == "postgresql":
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": audit.AUDIT_LOCK_KEY}
        )


async def insert_alert(
    conn: AsyncConnection,
    alert: Alert,
    *,
    raw: bytes | None,
    source: str,
    actor: str,
    warnings: Sequence[str] = (),
    cap_version: str = "1.2",
    feed: str | None = None,
    thread: str | None = None,
) -> IngestResult:
    """Insert ``alert`` and its ``alert.ingested`` record inside the caller's transaction.

    Idempotent on the alert key: a known key inserts nothing and reports the
    stored row (its id and current state). The audit record is appended last,
    so the chain lock is held for as short a time as the caller allows.
    """
    if alert.sent.tzinfo is None:
        raise ValueError(f"alert {alert.identifier!r} has a naive sent time")
    key = alert.key
    normalized = _canonical(alert_to_json(alert))
    values = {
        "sender": alert.sender,
        "identifier": alert.identifier,
        "sent": alert.sent.isoformat(),
        "sent_utc": alert.sent,
        "status": alert.status.value,
        "msg_type": alert.msg_type.value,
        "cap_version": cap_version,
        "source": source,
        "raw": raw,
        "normalized": normalized,
        "warnings": _canonical(list(warnings)),
        "received_at": datetime.now(UTC),
        "feed": feed,
        "thread": thread,
        "expires_at": alert.expires,
    }
    alert_id = await _insert_if_new(conn, values)
    if alert_id is None:
        return await _already_known(conn, key, normalized)
    record = await audit.append(
        conn,
        actor=actor,
        action=INGESTED_ACTION,
        subject=str(key),
        data={
            "source": source,
            "status": alert.status.value,
            "msg_type": alert.msg_type.value,
            "cap_version": cap_version,
            "raw_sha256": hashlib.sha256(raw).hexdigest() if raw is not None else None,
        },
    )
    return IngestResult(key=key, created=True, alert_id=alert_id, audit_seq=record.seq)


def alert_columns(alert: Alert) -> dict[str, Any]:
    """The columns that are read back from ``alert`` itself (key, status, document, expiry)."""
    if alert.sent.tzinfo is None:
        raise ValueError(f"alert {alert.identifier!r} has a naive sent time")
    return {
        "sender": alert.sender,
        "identifier": alert.identifier,
        "sent": alert.sent.isoformat(),
        "sent_utc": alert.sent,
        "status": alert.status.value,
        "msg_type": alert.msg_type.value,
        "normalized": _canonical(alert_to_json(alert)),
        "expires_at": alert.expires,
    }


async def insert_composed(
    conn: AsyncConnection,
    alert: Alert,
    *,
    source: str,
    created_by: str,
    now: datetime,
    state: AlertState = AlertState.DRAFT,
) -> int:
    """Insert an alert an officer composed, in ``state``; its row id.

    No lifecycle rule, no reference rows and no ``alert.ingested`` record: the
    alert is not issued yet (the desk audits the draft itself). A key already
    stored raises StoreError; composed identifiers are generated unique.
    """
    values = {
        **alert_columns(alert),
        "cap_version": "1.2",
        "source": source,
        "raw": None,
        "warnings": "[]",
        "received_at": now,
        "feed": None,
        "thread": None,
        "state": state.value,
        "state_changed_at": now,
        "created_by": created_by,
    }
    alert_id = await _insert_if_new(conn, values)
    if alert_id is None:
        raise StoreError(f"alert {alert.key} is already stored")
    return alert_id


async def _insert_if_new(conn: AsyncConnection, values: dict[str, Any]) -> int | None:
    """Insert the row; its id, or None when the key is already stored."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        statement: Any = postgresql.insert(alerts)
    elif dialect == "sqlite":
        statement = sqlite.insert(alerts)
    else:
        raise StoreError(f"alerts cannot be stored in a {dialect!r} database")
    statement = (
        statement.values(**values)
        .on_conflict_do_nothing(index_elements=["sender", "identifier", "sent_utc"])
        .returning(alerts.c.id)
    )
    new_id = (await conn.execute(statement)).scalar_one_or_none()
    return int(new_id) if new_id is not None else None


async def _already_known(conn: AsyncConnection, key: AlertKey, normalized: str) -> IngestResult:
    existing = (
        await conn.execute(
            select(alerts.c.id, alerts.c.normalized, alerts.c.state).where(key_matches(key))
        )
    ).one()
    differs = existing.normalized != normalized
    if differs:
        log.warning("alert.duplicate_key_differs", alert=str(key))
    return IngestResult(
        key=key,
        created=False,
        alert_id=int(existing.id),
        content_differs=differs,
        state=AlertState(existing.state),
    )
