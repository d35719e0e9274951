"""The delivery ledger: one row per (alert, channel, target), and every move of it audited.

The ledger, not a Python object in memory, is the truth about what was sent:
a crashed worker loses nothing (its leases expire and its rows come back) and
a restart resumes. States::

    pending ─claim─► claimed ─send─► sent / delivered / failed / dead / unknown
       ▲                │
       └─ reschedule ◄──┘ (retry later; lease released; lease expired)
    pending / claimed-but-not-started ─cancel─► cancelled

Why each choice:

* **Planning streams.** Targets come from an iterator (sync or async) and go
  in ``batch`` rows per transaction with ``ON CONFLICT DO NOTHING``, so a
  million recipients are never in memory at once and planning twice is
  harmless.
* **One lock order.** Every transaction that changes rows appends to the
  audit trail, whose lock serialises writers anyway; each takes that lock
  first (:func:`alertcast.store.alerts.lock_alert_writes`) so that no two
  ledger transactions can wait for each other's row locks in a cycle. The
  one exception, :func:`start_attempt`, touches a single row and takes no
  other lock. Transactions are short: sends happen outside them.
* **Claiming** takes the most urgent due rows first (``priority`` then
  ``next_attempt_at``; lower priority numbers go first) and also rows whose
  lease expired. On PostgreSQL the rows are picked with ``FOR UPDATE SKIP
  LOCKED``; on SQLite the transaction's ``BEGIN IMMEDIATE`` write lock makes
  one claimer at a time. Rows past their deadline are turned ``dead`` on the
  way; rows of an alert already cancelled or superseded are turned
  ``cancelled``, which also covers a crash between the lifecycle change and
  :func:`cancel_for_alert`.
* **Starting an attempt** is its own tiny transaction, right before the
  send: it succeeds only while the row is still claimed by this worker under
  a live lease. A cancel that commits before it wins, so nothing of a
  cancelled alert is sent after the cancel commits; a send that started
  before is left to finish and recorded.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import AsyncIterable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alertcast import audit
from alertcast.domain import Severity, Urgency
from alertcast.ports import OutboundMessage
from alertcast.store.alerts import lock_alert_writes
from alertcast.store.engine import database_errors, read_only
from alertcast.store.tables import alerts, deliveries

log = structlog.get_logger(__name__)

ERROR_TEXT_LIMIT = 500
"""Characters of an error message kept in the row and the audit trail."""

_ENDED_ALERT_STATES = ("cancelled", "superseded")
"""Alert states whose deliveries must no longer go out."""

_CLAIM_ROUNDS = 5
"""Selections per claim when the rows found were closed instead (past deadline, alert ended)."""


class DeliveryState(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    DEAD = "dead"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


FINISHED_STATES = frozenset(
    {
        DeliveryState.SENT,
        DeliveryState.DELIVERED,
        DeliveryState.FAILED,
        DeliveryState.DEAD,
        DeliveryState.CANCELLED,
        DeliveryState.UNKNOWN,
    }
)
"""States no worker will touch again (unless an operator re-drives the row)."""


def priority_for(severity: Severity, urgency: Urgency, route_priority: int = 0) -> int:
    """The ledger priority of an alert's deliveries: lower is sent sooner.

    The route's own priority dominates, then severity, then urgency, so an
    Extreme Immediate alert (0) overtakes a Minor Expected road report (31).
    """
    return route_priority * 100 + severity.rank * 10 + urgency.rank


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _subject(alert_id: int) -> str:
    return f"deliveries:alert:{alert_id}"


def _short(text: str | None) -> str | None:
    if text is None:
        return None
    return text if len(text) <= ERROR_TEXT_LIMIT else text[: ERROR_TEXT_LIMIT - 1] + "…"


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True, slots=True)
class PlanResult:
    """What :func:`plan` did: targets read, rows new (the rest existed), transactions used."""

    targets: int
    inserted: int
    batches: int


async def _batches(
    targets: AsyncIterable[str] | Iterable[str], size: int
) -> AsyncIterable[list[str]]:
    chunk: list[str] = []
    if isinstance(targets, AsyncIterable):
        async for target in targets:
            chunk.append(target)
            if len(chunk) >= size:
                yield chunk
                chunk = []
    else:
        for target in targets:
            chunk.append(target)
            if len(chunk) >= size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def _insert(conn: AsyncConnection, rows: list[dict[str, Any]]) -> Any:
    if conn.dialect.name == "postgresql":
        return (
            postgresql.insert(deliveries)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["alert_id", "channel", "target"])
            .returning(deliveries.c.id)
        )
    return (
        sqlite.insert(deliveries)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["alert_id", "channel", "target"])
        .returning(deliveries.c.id)
    )


async def plan(
    engine: AsyncEngine,
    *,
    alert_id: int,
    channel: str,
    targets: AsyncIterable[str] | Iterable[str],
    message: OutboundMessage,
    priority: int,
    deadline: datetime | None,
    batch: int = 1000,
    group_of: Callable[[str], str | None] | None = None,
    actor: str = "dispatch",
    now: datetime | None = None,
    on_batch: Callable[[int], object] | None = None,
) -> PlanResult:
    """Add one pending row per target, ``batch`` rows per transaction; idempotent.

    Each transaction carries one audit record (``delivery.planned``) with the
    count it added. ``group_of`` gives a target's group (for per-group rate
    limits); ``on_batch`` is called after each commit with the rows read so
    far, so callers (and tests) can watch the stream move.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    payload = audit.canonical_json(message.to_json())
    seen = inserted = batches = 0
    async for chunk in _batches(targets, batch):
        at = _now(now)
        unique = list(dict.fromkeys(chunk))
        rows = [
            {
                "alert_id": alert_id,
                "channel": channel,
                "target": target,
                "group_key": group_of(target) if group_of is not None else None,
                "state": DeliveryState.PENDING.value,
                "priority": priority,
                "attempts": 0,
                "next_attempt_at": at,
                "deadline_at": deadline,
                "payload": payload,
                "created_at": at,
                "updated_at": at,
            }
            for target in unique
        ]
        with database_errors(f"cannot plan deliveries of alert {alert_id} on {channel}"):
            async with engine.begin() as conn:
                await lock_alert_writes(conn)
                added = len((await conn.execute(_insert(conn, rows))).all())
                await audit.append(
                    conn,
                    actor=actor,
                    action="delivery.planned",
                    subject=_subject(alert_id),
                    data={
                        "alert_id": alert_id,
                        "channel": channel,
                        "targets": len(chunk),
                        "inserted": added,
                        "priority": priority,
                    },
                    at=at,
                )
        seen += len(chunk)
        inserted += added
        batches += 1
        if on_batch is not None:
            on_batch(seen)
    log.info(
        "delivery.planned",
        alert_id=alert_id,
        channel=channel,
        targets=seen,
        inserted=inserted,
        batches=batches,
    )
    return PlanResult(targets=seen, inserted=inserted, batches=batches)


# --------------------------------------------------------------------------- claiming


@dataclass(frozen=True, slots=True)
class Delivery:
    """A claimed row: what a worker needs to send it and judge the outcome."""

    id: int
    alert_id: int
    channel: str
    target: str
    group_key: str | None
    priority: int
    attempts: int
    deadline_at: datetime | None
    last_error_class: str | None
    message: OutboundMessage


def _delivery(row: Row[Any]) -> Delivery:
    return Delivery(
        id=int(row.id),
        alert_id=int(row.alert_id),
        channel=row.channel,
        target=row.target,
        group_key=row.group_key,
        priority=int(row.priority),
        attempts=int(row.attempts),
        deadline_at=row.deadline_at,
        last_error_class=row.last_error_class,
        message=OutboundMessage.from_json(json.loads(row.payload)),
    )


def _due(now: datetime) -> Any:
    return or_(
        and_(
            deliveries.c.state == DeliveryState.PENDING.value,
            deliveries.c.next_attempt_at <= now,
        ),
        and_(
            deliveries.c.state == DeliveryState.CLAIMED.value,
            deliveries.c.lease_until < now,
        ),
    )


def _group_by_alert(rows: Iterable[Row[Any]]) -> dict[int, list[Row[Any]]]:
    grouped: dict[int, list[Row[Any]]] = defaultdict(list)
    for row in rows:
        grouped[int(row.alert_id)].append(row)
    return grouped


async def claim(
    engine: AsyncEngine,
    *,
    worker: str,
    channels: Sequence[str],
    limit: int,
    lease_s: float,
    now: datetime | None = None,
) -> list[Delivery]:
    """Claim up to ``limit`` due rows of ``channels`` for ``worker``, most urgent first.

    Due means pending with ``next_attempt_at`` reached, or claimed under an
    expired lease (its worker died). Returned in claiming order.
    """
    if limit < 1 or not channels:
        return []
    at = _now(now)
    lease_until = at + timedelta(seconds=lease_s)
    picked = (
        select(
            deliveries,
            alerts.c.state.label("alert_state"),
        )
        .join(alerts, alerts.c.id == deliveries.c.alert_id)
        .where(deliveries.c.channel.in_(list(channels)), _due(at))
        .order_by(deliveries.c.priority, deliveries.c.next_attempt_at, deliveries.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=deliveries)
    )
    with database_errors("cannot claim deliveries"):
        async with engine.begin() as conn:
            await lock_alert_writes(conn)
            rows: list[Row[Any]] = []
            expired: list[Row[Any]] = []
            ended: list[Row[Any]] = []
            taken: list[Row[Any]] = []
            # Rows closed on the way (deadline, alert ended) do not count: look
            # again, so a worker is never idle while due rows wait behind them.
            for _ in range(_CLAIM_ROUNDS):
                want = limit - len(taken)
                query = picked.limit(want)
                if taken:
                    query = query.where(deliveries.c.id.not_in([r.id for r in taken]))
                found = list(await conn.execute(query))
                rows.extend(found)
                dead_now = [r for r in found if r.deadline_at is not None and r.deadline_at <= at]
                dead_ids = {r.id for r in dead_now}
                ended_now = [
                    r
                    for r in found
                    if r.id not in dead_ids and r.alert_state in _ENDED_ALERT_STATES
                ]
                closed = dead_ids | {r.id for r in ended_now}
                taken.extend(r for r in found if r.id not in closed)
                await _close_rows(
                    conn, dead_now, DeliveryState.DEAD, at, "DeadlineExceeded", worker
                )
                await _close_rows(
                    conn, ended_now, DeliveryState.CANCELLED, at, "AlertEnded", worker
                )
                expired.extend(dead_now)
                ended.extend(ended_now)
                if not closed or len(found) < want or len(taken) >= limit:
                    break
            if taken:
                await conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id.in_([r.id for r in taken]))
                    .values(
                        state=DeliveryState.CLAIMED.value,
                        lease_owner=worker,
                        lease_until=lease_until,
                        attempt_started_at=None,
                        updated_at=at,
                    )
                )
                for alert_id, group in _group_by_alert(taken).items():
                    reclaimed = [r for r in group if r.state == DeliveryState.CLAIMED.value]
                    await audit.append(
                        conn,
                        actor=f"worker:{worker}",
                        action="delivery.claimed",
                        subject=_subject(alert_id),
                        data={
                            "ids": [int(r.id) for r in group],
                            "lease_until": lease_until.isoformat(),
                            "reclaimed": [int(r.id) for r in reclaimed],
                            "reclaimed_after_send_started": [
                                int(r.id) for r in reclaimed if r.attempt_started_at is not None
                            ],
                        },
                        at=at,
                    )
    if rows:
        log.debug(
            "delivery.claimed",
            worker=worker,
            claimed=len(taken),
            dead=len(expired),
            ended=len(ended),
        )
    return [_delivery(r) for r in taken]


async def _close_rows(
    conn: AsyncConnection,
    rows: Sequence[Row[Any]],
    state: DeliveryState,
    at: datetime,
    reason: str,
    worker: str,
) -> None:
    if not rows:
        return
    await conn.execute(
        update(deliveries)
        .where(deliveries.c.id.in_([r.id for r in rows]))
        .values(
            state=state.value,
            lease_owner=None,
            lease_until=None,
            last_error_class=reason,
            updated_at=at,
        )
    )
    for alert_id, group in _group_by_alert(rows).items():
        await audit.append(
            conn,
            actor=f"worker:{worker}",
            action=f"delivery.{state.value}",
            subject=_subject(alert_id),
            data={"ids": [int(r.id) for r in group], "reason": reason},
            at=at,
        )
    log.info(f"delivery.{state.value}", count=len(rows), reason=reason)


async def start_attempt(
    engine: AsyncEngine, delivery_id: int, *, worker: str, now: datetime | None = None
) -> bool:
    """Mark the send of a claimed row as begun; False when it may no longer be sent.

    False means the row was cancelled, or the lease was lost or ran out: the
    caller must not send. Once this returns True a cancel no longer applies.
    """
    at = _now(now)
    with database_errors("cannot start a delivery attempt"):
        async with engine.begin() as conn:
            result = await conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.id == delivery_id,
                    deliveries.c.state == DeliveryState.CLAIMED.value,
                    deliveries.c.lease_owner == worker,
                    deliveries.c.lease_until > at,
                    deliveries.c.attempt_started_at.is_(None),
                )
                .values(
                    attempts=deliveries.c.attempts + 1,
                    attempt_started_at=at,
                    updated_at=at,
                )
            )
            return bool(result.rowcount == 1)


async def renew_leases(
    engine: AsyncEngine,
    *,
    worker: str,
    ids: Sequence[int],
    lease_s: float,
    now: datetime | None = None,
) -> int:
    """Extend the lease of ``worker``'s claimed rows among ``ids``; return how many."""
    if not ids:
        return 0
    at = _now(now)
    with database_errors("cannot renew delivery leases"):
        async with engine.begin() as conn:
            await lock_alert_writes(conn)
            result = await conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.id.in_(list(ids)),
                    deliveries.c.state == DeliveryState.CLAIMED.value,
                    deliveries.c.lease_owner == worker,
                )
                .values(lease_until=at + timedelta(seconds=lease_s))
            )
            return int(result.rowcount)


async def release(
    engine: AsyncEngine, *, worker: str, ids: Sequence[int], now: datetime | None = None
) -> int:
    """Give back claimed rows whose send never started (a stopping worker); audited."""
    if not ids:
        return 0
    at = _now(now)
    with database_errors("cannot release deliveries"):
        async with engine.begin() as conn:
            await lock_alert_writes(conn)
            rows = list(
                await conn.execute(
                    update(deliveries)
                    .where(
                        deliveries.c.id.in_(list(ids)),
                        deliveries.c.state == DeliveryState.CLAIMED.value,
                        deliveries.c.lease_owner == worker,
                        deliveries.c.attempt_started_at.is_(None),
                    )
                    .values(
                        state=DeliveryState.PENDING.value,
                        lease_owner=None,
                        lease_until=None,
                        updated_at=at,
                    )
                    .returning(deliveries.c.id, deliveries.c.alert_id)
                )
            )
            for alert_id, group in _group_by_alert(rows).items():
                await audit.append(
                    conn,
                    actor=f"worker:{worker}",
                    action="delivery.released",
                    subject=_subject(alert_id),
                    data={"ids": sorted(int(r.id) for r in group)},
                    at=at,
                )
    return len(rows)


# --------------------------------------------------------------------------- outcomes


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one attempt, as the retry policy decided.

    ``state`` is the row's next state; ``pending`` means rescheduled at
    ``next_attempt_at``. ``recipient_gone`` asks for the subscription behind
    the target to be deactivated.
    """

    delivery_id: int
    alert_id: int
    state: DeliveryState
    next_attempt_at: datetime | None = None
    error_class: str | None = None
    error: str | None = None
    provider_message_id: str | None = None
    recipient_gone: bool = False
    channel: str | None = None
    target: str | None = None


async def record_outcomes(
    engine: AsyncEngine,
    outcomes: Sequence[Outcome],
    *,
    worker: str,
    now: datetime | None = None,
) -> list[Outcome]:
    """Write the outcomes of a batch of attempts in one transaction; return those applied.

    An outcome applies only while ``worker`` still holds the row: a worker
    whose lease ran out and was taken over must not overwrite the new owner.
    One ``delivery.outcomes`` audit record per alert lists every transition.
    """
    if not outcomes:
        return []
    for outcome in outcomes:
        if outcome.state is DeliveryState.CLAIMED:
            raise ValueError("an outcome cannot leave a delivery claimed")
        if outcome.state is DeliveryState.PENDING and outcome.next_attempt_at is None:
            raise ValueError("a rescheduled delivery needs next_attempt_at")
    at = _now(now)
    applied: list[Outcome] = []
    with database_errors("cannot record delivery outcomes"):
        async with engine.begin() as conn:
            await lock_alert_writes(conn)
            for outcome in outcomes:
                values: dict[str, Any] = {
                    "state": outcome.state.value,
                    "lease_owner": None,
                    "lease_until": None,
                    "attempt_started_at": None,
                    "updated_at": at,
                    "last_error_class": outcome.error_class,
                    "last_error": _short(outcome.error),
                }
                if outcome.next_attempt_at is not None:
                    values["next_attempt_at"] = outcome.next_attempt_at
                if outcome.provider_message_id is not None:
                    values["provider_message_id"] = outcome.provider_message_id
                result = await conn.execute(
                    update(deliveries)
                    .where(
                        deliveries.c.id == outcome.delivery_id,
                        deliveries.c.state == DeliveryState.CLAIMED.value,
                        deliveries.c.lease_owner == worker,
                    )
                    .values(**values)
                )
                if result.rowcount == 1:
                    applied.append(outcome)
                else:
                    log.warning(
                        "delivery.outcome_stale", delivery_id=outcome.delivery_id, worker=worker
                    )
            by_alert: dict[int, list[Outcome]] = defaultdict(list)
            for outcome in applied:
                by_alert[outcome.alert_id].append(outcome)
            for alert_id, group in by_alert.items():
                await audit.append(
                    conn,
                    actor=f"worker:{worker}",
                    action="delivery.outcomes",
                    subject=_subject(alert_id),
                    data={"outcomes": [_outcome_json(o) for o in group]},
                    at=at,
                )
                for gone in (o for o in group if o.recipient_gone):
                    await audit.append(
                        conn,
                        actor=f"worker:{worker}",
                        action="subscription.deactivate",
                        subject=f"{gone.channel}:{gone.target}",
                        data={"delivery_id": gone.delivery_id, "reason": _short(gone.error)},
                        at=at,
                    )
    return applied


async def record_outcome(
    engine: AsyncEngine, outcome: Outcome, *, worker: str, now: datetime | None = None
) -> bool:
    """:func:`record_outcomes` for one outcome; True when it applied."""
    return bool(await record_outcomes(engine, [outcome], worker=worker, now=now))


def _outcome_json(outcome: Outcome) -> dict[str, Any]:
    record: dict[str, Any] = {"id": outcome.delivery_id, "state": outcome.state.value}
    if outcome.error_class is not None:
        record["error_class"] = outcome.error_class
        record["error"] = _short(outcome.error)
    if outcome.next_attempt_at is not None:
        record["next_attempt_at"] = outcome.next_attempt_at.isoformat()
    if outcome.provider_message_id is not None:
        record["provider_message_id"] = outcome.provider_message_id
    return record


# --------------------------------------------------------------------------- cancel


async def cancel_for_alert(
    engine: AsyncEngine,
    alert_ids: Sequence[int],
    reason: str,
    actor: str,
    *,
    now: datetime | None = None,
) -> int:
    """Cancel every row of ``alert_ids`` not yet being sent, atomically; return how many.

    Pending rows and claimed rows whose send has not started become
    ``cancelled``; rows already sent (or being sent) are left as they are.
    One ``delivery.cancelled`` audit record per alert, in the same transaction.
    """
    ids = sorted({int(a) for a in alert_ids})
    if not ids:
        return 0
    at = _now(now)
    with database_errors("cannot cancel deliveries"):
        async with engine.begin() as conn:
            await lock_alert_writes(conn)
            rows = list(
                await conn.execute(
                    update(deliveries)
                    .where(
                        deliveries.c.alert_id.in_(ids),
                        or_(
                            deliveries.c.state == DeliveryState.PENDING.value,
                            and_(
                                deliveries.c.state == DeliveryState.CLAIMED.value,
                                deliveries.c.attempt_started_at.is_(None),
                            ),
                        ),
                    )
                    .values(
                        state=DeliveryState.CANCELLED.value,
                        lease_owner=None,
                        lease_until=None,
                        last_error_class="Cancelled",
                        last_error=_short(reason),
                        updated_at=at,
                    )
                    .returning(deliveries.c.id, deliveries.c.alert_id, deliveries.c.channel)
                )
            )
            grouped = _group_by_alert(rows)
            for alert_id in ids:
                group = grouped.get(alert_id, [])
                counts: dict[str, int] = defaultdict(int)
                for row in group:
                    counts[row.channel] += 1
                await audit.append(
                    conn,
                    actor=actor,
                    action="delivery.cancelled",
                    subject=_subject(alert_id),
                    data={"alert_id": alert_id, "reason": reason, "per_channel": dict(counts)},
                    at=at,
                )
    log.info("delivery.cancelled", alerts=ids, count=len(rows), reason=reason, actor=actor)
    return len(rows)


# --------------------------------------------------------------------------- reading


async def progress(engine: AsyncEngine, alert_id: int) -> dict[str, dict[str, int]]:
    """Per channel, how many rows of the alert are in each state."""
    query = (
        select(deliveries.c.channel, deliveries.c.state, func.count())
        .where(deliveries.c.alert_id == alert_id)
        .group_by(deliveries.c.channel, deliveries.c.state)
    )
    counts: dict[str, dict[str, int]] = {}
    with database_errors(f"cannot read the progress of alert {alert_id}"):
        async with read_only(engine) as conn:
            for channel, state, n in await conn.execute(query):
                counts.setdefault(channel, {})[state] = int(n)
    return {channel: counts[channel] for channel in sorted(counts)}


def is_finished(counts: Mapping[str, Mapping[str, int]]) -> bool:
    """True when no row of the alert is pending or claimed any more."""
    return all(
        n == 0 or DeliveryState(state) in FINISHED_STATES
        for per_state in counts.values()
        for state, n in per_state.items()
    )


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """A row as the CLI and the API show it."""

    id: int
    alert_id: int
    channel: str
    target: str
    state: str
    priority: int
    attempts: int
    next_attempt_at: datetime
    last_error_class: str | None
    last_error: str | None
    provider_message_id: str | None
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "alert_id": self.alert_id,
            "channel": self.channel,
            "target": self.target,
            "state": self.state,
            "priority": self.priority,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at.isoformat(),
            "last_error_class": self.last_error_class,
            "last_error": self.last_error,
            "provider_message_id": self.provider_message_id,
            "updated_at": self.updated_at.isoformat(),
        }


async def list_deliveries(
    engine: AsyncEngine,
    *,
    state: str | None = None,
    alert_id: int | None = None,
    limit: int = 1000,
) -> list[DeliveryRow]:
    """Rows by id, optionally of one state and one alert."""
    query = select(deliveries).order_by(deliveries.c.id).limit(limit)
    if state is not None:
        query = query.where(deliveries.c.state == DeliveryState(state).value)
    if alert_id is not None:
        query = query.where(deliveries.c.alert_id == alert_id)
    with database_errors("cannot list deliveries"):
        async with read_only(engine) as conn:
            return [
                DeliveryRow(
                    id=int(r.id),
                    alert_id=int(r.alert_id),
                    channel=r.channel,
                    target=r.target,
                    state=r.state,
                    priority=int(r.priority),
                    attempts=int(r.attempts),
                    next_attempt_at=r.next_attempt_at,
                    last_error_class=r.last_error_class,
                    last_error=r.last_error,
                    provider_message_id=r.provider_message_id,
                    updated_at=r.updated_at,
                )
                for r in await conn.execute(query)
            ]


REDRIVABLE_STATES = (DeliveryState.DEAD, DeliveryState.FAILED, DeliveryState.UNKNOWN)
"""States an operator may send again with ``alertcast deliveries retry``."""


async def redrive(
    engine: AsyncEngine,
    *,
    actor: str,
    ids: Sequence[int] = (),
    state: str | None = None,
    alert_id: int | None = None,
    now: datetime | None = None,
) -> int:
    """Put dead, failed or unknown rows back to pending, due now; audited. Return how many.

    Either ``ids``, or ``state`` (and optionally ``alert_id``) selects the rows.
    Rows in other states are left alone: a sent message is not re-sent by accident.
    """
    allowed = [s.value for s in REDRIVABLE_STATES]
    if state is not None and DeliveryState(state) not in REDRIVABLE_STATES:
        raise ValueError(f"only {', '.join(allowed)} deliveries can be retried, not {state}")
    if not ids and state is None:
        raise ValueError("name the deliveries to retry, or a state")
    at = _now(now)
    query = update(deliveries).where(deliveries.c.state.in_(allowed))
    if ids:
        query = query.where(deliveries.c.id.in_([int(i) for i in ids]))
    if state is not None:
        query = query.where(deliveries.c.state == state)
    if alert_id is not None:
        query = query.where(deliveries.c.alert_id == alert_id)
    query = query.values(
        state=DeliveryState.PENDING.value,
        next_attempt_at=at,
        attempts=0,
        lease_owner=None,
        lease_until=None,
        attempt_started_at=None,
        updated_at=at,
    ).returning(deliveries.c.id, deliveries.c.alert_id, deliveries.c.state)
    with database_errors("cannot retry deliveries"):
        async with engine.begin() as conn:
            await lock_alert_writes(conn)
            rows = list(await conn.execute(query))
            for group_alert, group in _group_by_alert(rows).items():
                await audit.append(
                    conn,
                    actor=actor,
                    action="delivery.retried",
                    subject=_subject(group_alert),
                    data={"ids": sorted(int(r.id) for r in group)},
                    at=at,
                )
    log.info("delivery.retried", count=len(rows), actor=actor)
    return len(rows)
