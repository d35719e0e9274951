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
  harmless. Each batch is one ``INSERT ... SELECT`` over the targets passed
  as a single array, and the rendered message is stored once
  (``delivery_messages``, by SHA-256) with every row pointing at it.
* **One lock order.** Every transaction that changes rows appends to the
  audit trail, whose lock serialises writers anyway; each takes that lock
  first (:func:`alertcast.store.alerts.lock_alert_writes`) so that no two
  ledger transactions can wait for each other's row locks in a cycle. The
  one exception, starting attempts without recording outcomes, touches only
  rows the worker holds and takes no other lock. Transactions are short:
  sends happen outside them.
* **Claiming** takes the most urgent due rows first (``priority`` then
  ``next_attempt_at``; lower priority numbers go first) and also rows whose
  lease expired. On PostgreSQL the rows are picked with ``FOR UPDATE SKIP
  LOCKED``; on SQLite the transaction's ``BEGIN IMMEDIATE`` write lock makes
  one claimer at a time. Rows past their deadline are turned ``dead`` on the
  way; rows of an alert already cancelled or superseded are turned
  ``cancelled``, which also covers a crash between the lifecycle change and
  :func:`cancel_for_alert`.
* **Starting an attempt** marks the row as being sent, right before the
  send, for a group of rows at once (:func:`start_attempts`, or with the
  outcomes of ended sends in :func:`record_and_start`): each row is marked
  only while it is still claimed by this worker under a live lease, checked
  in the statement that marks it. A cancel that commits before it wins, so a
  cancelled row is never sent; a send that started before is left to finish
  and recorded.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy import and_, bindparam, case, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alertcast import audit
from alertcast.domain import Severity, Urgency
from alertcast.ports import OutboundMessage
from alertcast.store.alerts import lock_alert_writes
from alertcast.store.engine import database_errors, read_only
from alertcast.store.tables import UtcDateTime, alerts, deliveries, delivery_messages

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


_INSERT_COLUMNS = (
    "alert_id, channel, target, group_key, state, priority, attempts,"
    " next_attempt_at, deadline_at, message_id, created_at, updated_at"
)


def _insert_sql(dialect: str, grouped: bool) -> Any:
    """One ``INSERT ... SELECT`` of a whole batch: the targets travel as one array parameter.

    Every other column is the same for the batch, so it is bound once rather
    than once per row: planning costs one parameter and one statement per
    batch, not a dozen parameters per row to build, bind and convert.
    """
    if dialect == "postgresql":
        source = (
            "unnest(CAST(:targets AS TEXT[]), CAST(:groups AS TEXT[])) AS t(target, grp)"
            if grouped
            else "unnest(CAST(:targets AS TEXT[])) AS t(target)"
        )
        target, group = "t.target", ("t.grp" if grouped else "NULL")
        cast_at = "CAST(:at AS TIMESTAMPTZ)"
        cast_deadline = "CAST(:deadline AS TIMESTAMPTZ)"
        where = ""
    else:
        source = "json_each(:targets)"
        target, group = (
            ("json_extract(value, '$[0]')", "json_extract(value, '$[1]')")
            if grouped
            else ("value", "NULL")
        )
        cast_at, cast_deadline = ":at", ":deadline"
        # SQLite needs a WHERE before ON CONFLICT to parse INSERT ... SELECT.
        where = " WHERE true"
    # Only the fixed fragments above are interpolated; every value is a bound parameter.
    sql = (
        f"INSERT INTO deliveries ({_INSERT_COLUMNS}) "  # noqa: S608
        f"SELECT CAST(:alert_id AS BIGINT), CAST(:channel AS TEXT), {target}, {group}, "
        f"'{DeliveryState.PENDING.value}', CAST(:priority AS INTEGER), 0, {cast_at}, "
        f"{cast_deadline}, CAST(:message_id AS BIGINT), {cast_at}, {cast_at} "
        f"FROM {source}{where} "
        "ON CONFLICT (alert_id, channel, target) DO NOTHING"
    )
    return text(sql).bindparams(
        bindparam("at", type_=UtcDateTime), bindparam("deadline", type_=UtcDateTime)
    )


def _batch_params(
    dialect: str, targets: list[str], group_of: Callable[[str], str | None] | None
) -> dict[str, Any]:
    if dialect == "postgresql":
        params: dict[str, Any] = {"targets": targets}
        if group_of is not None:
            params["groups"] = [group_of(t) for t in targets]
        return params
    if group_of is None:
        return {"targets": json.dumps(targets, ensure_ascii=False)}
    pairs = [[t, group_of(t)] for t in targets]
    return {"targets": json.dumps(pairs, ensure_ascii=False)}


def message_digest(payload: str) -> str:
    """The hex SHA-256 a stored message is known by (its canonical JSON, UTF-8)."""
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


async def _store_message(conn: AsyncConnection, payload: str, digest: str, at: datetime) -> int:
    """The id of the stored message with this content, storing it first if it is new."""
    values = {"sha256": digest, "payload": payload, "created_at": at}
    if conn.dialect.name == "postgresql":
        insert: Any = postgresql.insert(delivery_messages).values(values)
    else:
        insert = sqlite.insert(delivery_messages).values(values)
    await conn.execute(insert.on_conflict_do_nothing(index_elements=["sha256"]))
    found = await conn.execute(
        select(delivery_messages.c.id).where(delivery_messages.c.sha256 == digest)
    )
    return int(found.scalar_one())


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

    The message is stored once (``delivery_messages``, keyed by its SHA-256)
    and every row points at it. Each transaction carries one audit record
    (``delivery.planned``) with the count it added and the message's digest.
    ``group_of`` gives a target's group (for per-group rate limits);
    ``on_batch`` is called after each commit with the rows read so far, so
    callers (and tests) can watch the stream move.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    payload = audit.canonical_json(message.to_json())
    digest = message_digest(payload)
    dialect = engine.dialect.name
    statement = _insert_sql(dialect, grouped=group_of is not None)
    message_id: int | None = None
    seen = inserted = batches = 0
    async for chunk in _batches(targets, batch):
        at = _now(now)
        unique = list(dict.fromkeys(chunk))
        params = _batch_params(dialect, unique, group_of)
        with database_errors(f"cannot plan deliveries of alert {alert_id} on {channel}"):
            async with engine.begin() as conn:
                await lock_alert_writes(conn)
                if message_id is None:
                    message_id = await _store_message(conn, payload, digest, at)
                result = await conn.execute(
                    statement,
                    {
                        **params,
                        "alert_id": alert_id,
                        "channel": channel,
                        "priority": priority,
                        "at": at,
                        "deadline": deadline,
                        "message_id": message_id,
                    },
                )
                added = int(result.rowcount)
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
                        "message_sha256": digest,
                    },
                    at=at,
                )
        seen += len(chunk)
        inserted += added
        batches += 1
        if on_batch is not None:
            on_batch(seen)
    if dialect == "postgresql" and inserted >= ANALYZE_AFTER:
        await _refresh_statistics(engine)
    log.info(
        "delivery.planned",
        alert_id=alert_id,
        channel=channel,
        targets=seen,
        inserted=inserted,
        batches=batches,
    )
    return PlanResult(targets=seen, inserted=inserted, batches=batches)


ANALYZE_AFTER = 10_000
"""Rows planned at once past which PostgreSQL's statistics of the ledger are refreshed."""


async def _refresh_statistics(engine: AsyncEngine) -> None:
    """``ANALYZE deliveries``, so that claims read the claim index in order.

    A fan-out grows the table by orders of magnitude within seconds, well
    before autovacuum's own analyze. Until then the planner believes a
    handful of rows are pending, and each claim fetches and sorts every
    pending row (hundreds of milliseconds at 100,000) instead of reading the
    first few from the index. A failure only costs speed, so it is logged.
    """
    try:
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE deliveries"))
    except Exception as exc:  # statistics only make claims faster
        log.warning("delivery.analyze_failed", error=str(exc))


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
    unknown_attempts: int = 0
    """Earlier attempts whose outcome was ambiguous: the retry policy re-sends one at most once."""


def _delivery(row: Row[Any], messages: Mapping[int, OutboundMessage]) -> Delivery:
    """A claimed row as read before the claim's update (which counts a vanished send)."""
    vanished = row.state == DeliveryState.CLAIMED.value and row.attempt_started_at is not None
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
        message=messages[int(row.message_id)],
        unknown_attempts=int(row.unknown_attempts) + (1 if vanished else 0),
    )


async def _messages(conn: AsyncConnection, rows: Sequence[Row[Any]]) -> dict[int, OutboundMessage]:
    """The messages of ``rows``, each distinct one read and parsed once."""
    ids = sorted({int(r.message_id) for r in rows})
    if not ids:
        return {}
    found = await conn.execute(
        select(delivery_messages.c.id, delivery_messages.c.payload).where(
            delivery_messages.c.id.in_(ids)
        )
    )
    return {int(i): OutboundMessage.from_json(json.loads(payload)) for i, payload in found}


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
    with database_errors("cannot claim deliveries"):
        async with engine.begin() as conn:
            await lock_alert_writes(conn)
            messages: dict[int, OutboundMessage] = {}
            rows: list[Row[Any]] = []
            expired: list[Row[Any]] = []
            ended: list[Row[Any]] = []
            taken: list[Row[Any]] = []
            # Rows closed on the way (deadline, alert ended) do not count: look
            # again, so a worker is never idle while due rows wait behind them.
            for _ in range(_CLAIM_ROUNDS):
                want = limit - len(taken)
                found = await _pick(conn, channels, at, want, [int(r.id) for r in taken])
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
                        # a send begun by a worker that then vanished may have arrived
                        unknown_attempts=deliveries.c.unknown_attempts
                        + case((deliveries.c.attempt_started_at.is_not(None), 1), else_=0),
                    )
                )
                messages = await _messages(conn, taken)
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
    return [_delivery(r, messages) for r in taken]


def _order(row: Row[Any]) -> tuple[int, datetime, int]:
    return (int(row.priority), row.next_attempt_at, int(row.id))


async def _pick(
    conn: AsyncConnection, channels: Sequence[str], at: datetime, want: int, exclude: list[int]
) -> list[Row[Any]]:
    """Up to ``want`` due rows, most urgent first, locked (skipping rows others hold).

    Pending rows and rows under an expired lease are looked up apart, each
    along the claim index in the claiming order, and merged here: one query
    with an OR of the two would make the database sort every due row before
    taking the first few, which costs seconds once a million rows wait.
    """
    found: list[Row[Any]] = []
    for state, due in (
        (DeliveryState.PENDING, deliveries.c.next_attempt_at <= at),
        (DeliveryState.CLAIMED, deliveries.c.lease_until < at),
    ):
        query = (
            select(deliveries, alerts.c.state.label("alert_state"))
            .join(alerts, alerts.c.id == deliveries.c.alert_id)
            .where(
                deliveries.c.state == state.value,
                due,
                deliveries.c.channel.in_(list(channels)),
            )
            .order_by(deliveries.c.priority, deliveries.c.next_attempt_at, deliveries.c.id)
            .limit(want)
            .with_for_update(skip_locked=True, of=deliveries)
        )
        if exclude:
            query = query.where(deliveries.c.id.not_in(exclude))
        found.extend(await conn.execute(query))
    found.sort(key=_order)
    return found[:want]


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
    return delivery_id in await start_attempts(engine, [delivery_id], worker=worker, now=now)


async def start_attempts(
    engine: AsyncEngine, ids: Sequence[int], *, worker: str, now: datetime | None = None
) -> set[int]:
    """Mark the sends of several claimed rows as begun, in one transaction; return those marked.

    The rows left out were cancelled, or their lease was lost or ran out: the
    caller must not send them. Only the returned rows may be sent, and only
    after this returns, so a cancel that committed first always wins.

    Why one statement is as safe as one per row: the cancel and this update
    each change a row only while ``attempt_started_at`` is unset (cancel) or
    the row is still claimed (here). On SQLite the two transactions cannot
    overlap at all; on PostgreSQL the second to reach a row waits for the
    first's row lock and then re-checks its condition against the committed
    row. Whichever commits first wins, row by row; the other leaves that row
    alone. No audit lock is needed (the start is not a change of state: the
    outcome that follows is audited with the attempt count).
    """
    if not ids:
        return set()
    at = _now(now)
    with database_errors("cannot start delivery attempts"):
        async with engine.begin() as conn:
            return await _start(conn, ids, worker, at)


async def _start(conn: AsyncConnection, ids: Sequence[int], worker: str, at: datetime) -> set[int]:
    result = await conn.execute(
        update(deliveries)
        .where(
            deliveries.c.id.in_(list(ids)),
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
        .returning(deliveries.c.id)
    )
    return {int(i) for i in result.scalars()}


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
    _check_outcomes(outcomes)
    at = _now(now)
    with database_errors("cannot record delivery outcomes"):
        async with engine.begin() as conn:
            await lock_alert_writes(conn)
            return await _apply_outcomes(conn, outcomes, worker, at)


@asynccontextmanager
async def _transaction(bind: AsyncEngine | AsyncConnection) -> AsyncIterator[AsyncConnection]:
    """A transaction on a pooled connection (engine) or on the caller's own connection."""
    if isinstance(bind, AsyncConnection):
        async with bind.begin():
            yield bind
    else:
        async with bind.begin() as conn:
            yield conn


async def record_and_start(
    bind: AsyncEngine | AsyncConnection,
    outcomes: Sequence[Outcome],
    start_ids: Sequence[int],
    *,
    worker: str,
    now: datetime | None = None,
) -> tuple[list[Outcome], set[int]]:
    """:func:`record_outcomes` and :func:`start_attempts` in one transaction.

    A busy worker has, at any moment, sends that just ended and rows about
    to be sent; writing both at once halves its commits. Returns the outcomes
    applied and the rows started, each as the two functions would. ``bind``
    may be a connection the caller keeps for its many small transactions,
    which spares a pool checkout and reset each time.
    """
    _check_outcomes(outcomes)
    if not outcomes and not start_ids:
        return [], set()
    at = _now(now)
    with database_errors("cannot record delivery outcomes and start attempts"):
        async with _transaction(bind) as conn:
            applied: list[Outcome] = []
            if outcomes:
                await lock_alert_writes(conn)
                applied = await _apply_outcomes(conn, outcomes, worker, at)
            started = await _start(conn, start_ids, worker, at) if start_ids else set()
    return applied, started


def _check_outcomes(outcomes: Sequence[Outcome]) -> None:
    for outcome in outcomes:
        if outcome.state is DeliveryState.CLAIMED:
            raise ValueError("an outcome cannot leave a delivery claimed")
        if outcome.state is DeliveryState.PENDING and outcome.next_attempt_at is None:
            raise ValueError("a rescheduled delivery needs next_attempt_at")


async def _apply_outcomes(
    conn: AsyncConnection, outcomes: Sequence[Outcome], worker: str, at: datetime
) -> list[Outcome]:
    """Write the outcomes that still apply and audit them; the caller holds the audit lock."""
    held = select(deliveries.c.id).where(
        deliveries.c.id.in_(sorted({o.delivery_id for o in outcomes})),
        deliveries.c.state == DeliveryState.CLAIMED.value,
        deliveries.c.lease_owner == worker,
    )
    if conn.dialect.name == "postgresql":
        held = held.with_for_update()
    owned = {int(i) for i in (await conn.execute(held)).scalars()}
    applied = _first_per_row(outcomes, owned)
    kept = {id(o) for o in applied}
    for outcome in outcomes:
        if id(outcome) not in kept:
            log.warning("delivery.outcome_stale", delivery_id=outcome.delivery_id, worker=worker)
    if applied:
        await conn.execute(_OUTCOME_UPDATE, [_outcome_params(o, at) for o in applied])
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
                # never the address itself: the audit trail cannot be erased, a person can
                subject=f"delivery:{gone.delivery_id}",
                data={
                    "delivery_id": gone.delivery_id,
                    "channel": gone.channel,
                    "reason": _short(gone.error),
                },
                at=at,
            )
    return applied


_OUTCOME_UPDATE = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("b_id"))
    .values(
        state=bindparam("b_state"),
        lease_owner=None,
        lease_until=None,
        attempt_started_at=None,
        updated_at=bindparam("b_at", type_=UtcDateTime),
        last_error_class=bindparam("b_error_class"),
        last_error=bindparam("b_error"),
        unknown_attempts=deliveries.c.unknown_attempts + bindparam("b_ambiguous"),
        next_attempt_at=func.coalesce(
            bindparam("b_next", type_=UtcDateTime), deliveries.c.next_attempt_at
        ),
        provider_message_id=func.coalesce(
            bindparam("b_provider_id", type_=deliveries.c.provider_message_id.type),
            deliveries.c.provider_message_id,
        ),
    )
)
"""One statement for a batch of outcomes, run with one parameter set per row.

The rows were checked (and on PostgreSQL locked) as this worker's before,
in the same transaction, so each update is sure to apply.
"""


def _outcome_params(outcome: Outcome, at: datetime) -> dict[str, Any]:
    return {
        "b_id": outcome.delivery_id,
        "b_state": outcome.state.value,
        "b_at": at,
        "b_error_class": outcome.error_class,
        "b_error": _short(outcome.error),
        "b_next": outcome.next_attempt_at,
        "b_provider_id": outcome.provider_message_id,
        "b_ambiguous": 1 if outcome.error_class == "SentButUnknown" else 0,
    }


def _first_per_row(outcomes: Sequence[Outcome], owned: set[int]) -> list[Outcome]:
    """The outcomes that apply: one per row still held, the first given for it."""
    applied: list[Outcome] = []
    seen: set[int] = set()
    for outcome in outcomes:
        if outcome.delivery_id in owned and outcome.delivery_id not in seen:
            seen.add(outcome.delivery_id)
            applied.append(outcome)
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

    @classmethod
    def from_row(cls, r: Any) -> DeliveryRow:
        """The row of a ``select(deliveries)``, so every reader of the ledger shows it alike."""
        return cls(
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
            return [DeliveryRow.from_row(r) for r in await conn.execute(query)]


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
