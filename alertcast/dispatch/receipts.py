"""Delivery receipts: what a provider reports later about a message it accepted.

A send ends ``sent`` when the provider took the message; whether it reached
the phone is known only when the provider calls back (a Twilio status
callback: queued, sent, delivered, undelivered, failed, read). The row is
found by ``(channel, provider_message_id)`` and moves only forward::

    sent ─delivered / read─► delivered
    sent ─undelivered / failed─► failed (Permanent, with the provider's error code)

Why these rules:

* **Never backwards.** Callbacks arrive out of order and more than once; a
  late ``sent`` after ``delivered`` changes nothing, a repeat ``delivered``
  changes nothing (and writes no second audit record), and ``delivered``
  and ``failed`` are final for receipts: an operator re-drive, not a stray
  callback, is what sends again.
* **Only ``sent`` rows move.** A row that is pending or claimed again (re-driven
  by an operator) still carries the id of its earlier attempt; a late
  receipt of that attempt must not close the new one.
* **Audited like the ledger.** A receipt that changes rows appends one
  ``delivery.receipt`` record per alert in the same transaction, after
  :func:`alertcast.store.alerts.lock_alert_writes`, the ledger's lock order.
  The row is looked up before the lock is taken, and a receipt that moves
  nothing (queued, sent, a repeat, an unknown id) stops there: no lock, no
  record. At three callbacks per SMS they would otherwise queue every
  sender behind the audit lock for nothing. The update re-checks state and
  id under the lock, so a row re-driven in between is left alone.
* **Unknown ids are reported, not raised.** A callback for a message the
  ledger does not know (another system's number, a receipt that beat the
  worker's outcome to the database) is logged and answered ``found=False``;
  the caller (an HTTP endpoint) still answers the provider.

The lookup by ``(channel, provider_message_id)`` works without an index but
scans the ledger; an index on those two columns makes it a point lookup.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit
from alertcast.dispatch.ledger import ERROR_TEXT_LIMIT, DeliveryState
from alertcast.store.alerts import lock_alert_writes
from alertcast.store.engine import database_errors, read_only
from alertcast.store.tables import deliveries, early_receipts

log = structlog.get_logger(__name__)

RECEIPT_ACTION = "delivery.receipt"

DELIVERED_STATUSES = frozenset({"delivered", "read"})
"""Provider statuses meaning the recipient got the message ("read" implies delivered)."""

FAILED_STATUSES = frozenset({"undelivered", "failed", "canceled"})
"""Provider statuses meaning the message will not reach the recipient."""

PROGRESS_STATUSES = frozenset(
    {"accepted", "scheduled", "queued", "sending", "sent", "receiving", "received"}
)
"""Provider statuses that say nothing the ledger does not know already."""

_MOVABLE = (DeliveryState.SENT.value,)
"""The only row state a receipt moves from."""


@dataclass(frozen=True, slots=True)
class ReceiptResult:
    """What :func:`record_receipt` did.

    ``found`` is False when no row of ``channel`` has that provider id.
    ``delivery_ids`` are the rows with that id (an edited message is shared
    by the rows of every alert it carried); ``changed`` those the receipt
    moved, to ``state``. ``state`` is None when nothing moved.
    """

    channel: str
    provider_message_id: str
    status: str
    found: bool
    delivery_ids: tuple[int, ...] = ()
    changed: tuple[int, ...] = ()
    state: str | None = None
    held: bool = False
    """True when no row had the id yet and the receipt was kept to be applied later."""


def target_state(status: str) -> DeliveryState | None:
    """The state a provider status moves a ``sent`` row to, or None for no move."""
    normalized = status.strip().lower()
    if normalized in DELIVERED_STATUSES:
        return DeliveryState.DELIVERED
    if normalized in FAILED_STATUSES:
        return DeliveryState.FAILED
    if normalized not in PROGRESS_STATUSES:
        log.warning("delivery.receipt_status_unknown", status=status)
    return None


def _error_text(status: str, error_code: str | None) -> str:
    text = f"provider reported {status}" + (f" (error {error_code})" if error_code else "")
    return text[:ERROR_TEXT_LIMIT]


def _matching(channel: str, provider_message_id: str) -> Any:
    return select(deliveries.c.id, deliveries.c.alert_id, deliveries.c.state).where(
        deliveries.c.channel == channel,
        deliveries.c.provider_message_id == provider_message_id,
    )


async def record_receipt(
    engine: AsyncEngine,
    *,
    channel: str,
    provider_message_id: str,
    status: str,
    error_code: str | None = None,
    at: datetime | None = None,
) -> ReceiptResult:
    """Apply one provider status callback to the ledger; idempotent, never backwards.

    ``channel`` is the channel instance name the row was sent on; ``status``
    the provider's word (case-insensitive); ``error_code`` its error code,
    kept in the row's error text and the audit record.
    """
    when = at if at is not None else datetime.now(UTC)
    moved_to = target_state(status)
    # Found outside the lock: without an index this read scans the ledger, and
    # every writer would wait behind it. The update below re-checks each row.
    with database_errors("cannot read the delivery of a receipt"):
        async with read_only(engine) as conn:
            rows: list[Row[Any]] = list(await conn.execute(_matching(channel, provider_message_id)))
    candidates = [int(r.id) for r in rows if r.state in _MOVABLE]
    if moved_to is not None and _may_come_later(rows):
        # The provider can answer before the worker has written the send's outcome
        # (outcomes are written a few at a time): keep the receipt for later.
        await _hold(engine, channel, provider_message_id, status, error_code, when)
        return ReceiptResult(channel, provider_message_id, status, found=False, held=True)
    if moved_to is None or not candidates:
        return _result(channel, provider_message_id, status, rows, [], None)
    values: dict[str, Any] = {"state": moved_to.value, "updated_at": when}
    if moved_to is DeliveryState.FAILED:
        values["last_error_class"] = "Permanent"
        values["last_error"] = _error_text(status, error_code)
    with database_errors("cannot record a delivery receipt"):
        async with engine.begin() as conn:
            await lock_alert_writes(conn)
            moved: list[Row[Any]] = list(
                await conn.execute(
                    update(deliveries)
                    .where(
                        deliveries.c.id.in_(candidates),
                        deliveries.c.state.in_(_MOVABLE),
                        deliveries.c.channel == channel,
                        deliveries.c.provider_message_id == provider_message_id,
                    )
                    .values(**values)
                    .returning(deliveries.c.id, deliveries.c.alert_id)
                )
            )
            by_alert: dict[int, list[Row[Any]]] = defaultdict(list)
            for row in moved:
                by_alert[int(row.alert_id)].append(row)
            for alert_id, group in sorted(by_alert.items()):
                await audit.append(
                    conn,
                    actor=f"provider:{channel}",
                    action=RECEIPT_ACTION,
                    subject=f"deliveries:alert:{alert_id}",
                    data={
                        "channel": channel,
                        "provider_message_id": provider_message_id,
                        "status": status,
                        "error_code": error_code,
                        "ids": sorted(int(r.id) for r in group),
                        "state": moved_to.value,
                    },
                    at=when,
                )
    return _result(channel, provider_message_id, status, rows, moved, moved_to)


def _result(
    channel: str,
    provider_message_id: str,
    status: str,
    rows: list[Row[Any]],
    moved: list[Row[Any]],
    state: DeliveryState | None,
) -> ReceiptResult:
    if not rows:
        log.warning(
            "delivery.receipt_unknown",
            channel=channel,
            provider_message_id=provider_message_id,
            status=status,
        )
        return ReceiptResult(channel, provider_message_id, status, found=False)
    result = ReceiptResult(
        channel,
        provider_message_id,
        status,
        found=True,
        delivery_ids=tuple(sorted(int(r.id) for r in rows)),
        changed=tuple(sorted(int(r.id) for r in moved)),
        state=state.value if moved and state is not None else None,
    )
    log.debug(
        "delivery.receipt",
        channel=channel,
        provider_message_id=provider_message_id,
        status=status,
        rows=len(rows),
        changed=len(result.changed),
    )
    return result


EARLY_RECEIPT_MAX_AGE = timedelta(days=1)
"""Early receipts still unmatched after this long are dropped (logged and audited)."""


def _may_come_later(rows: list[Row[Any]]) -> bool:
    """No row carries the id yet: its send's outcome may still be on its way."""
    return not rows


async def _hold(
    engine: AsyncEngine,
    channel: str,
    provider_message_id: str,
    status: str,
    error_code: str | None,
    when: datetime,
) -> None:
    with database_errors("cannot keep an early delivery receipt"):
        async with engine.begin() as conn:
            await conn.execute(
                early_receipts.insert().values(
                    channel=channel,
                    provider_message_id=provider_message_id,
                    status=status[:32],
                    error_code=error_code[:32] if error_code else None,
                    received_at=when,
                )
            )
    log.info(
        "delivery.receipt_held",
        channel=channel,
        provider_message_id=provider_message_id,
        status=status,
    )


async def apply_early_receipts(engine: AsyncEngine, *, now: datetime | None = None) -> int:
    """Apply held receipts whose rows now carry the provider id; drop the stale ones.

    Run periodically by the dispatcher. Receipts are applied in the order they
    arrived, so a late "delivered" after an early "sent" ends delivered.
    Returns how many were applied.
    """
    when = now if now is not None else datetime.now(UTC)
    with database_errors("cannot read the early delivery receipts"):
        async with read_only(engine) as conn:
            held = list(
                await conn.execute(select(early_receipts).order_by(early_receipts.c.id).limit(1000))
            )
    applied = 0
    done: list[int] = []
    stale: list[Row[Any]] = []
    for receipt in held:
        with database_errors("cannot read the delivery of a receipt"):
            async with read_only(engine) as conn:
                found = list(
                    await conn.execute(_matching(receipt.channel, receipt.provider_message_id))
                )
        if found:
            await record_receipt(
                engine,
                channel=receipt.channel,
                provider_message_id=receipt.provider_message_id,
                status=receipt.status,
                error_code=receipt.error_code,
                at=receipt.received_at,
            )
            applied += 1
            done.append(int(receipt.id))
        elif when - receipt.received_at > EARLY_RECEIPT_MAX_AGE:
            stale.append(receipt)
            done.append(int(receipt.id))
    if done:
        with database_errors("cannot clear the early delivery receipts"):
            async with engine.begin() as conn:
                if stale:
                    await lock_alert_writes(conn)
                    await audit.append(
                        conn,
                        actor="dispatch",
                        action="delivery.receipt_unmatched",
                        subject="deliveries:receipts",
                        data={
                            "receipts": [
                                {
                                    "channel": r.channel,
                                    "provider_message_id": r.provider_message_id,
                                    "status": r.status,
                                }
                                for r in stale
                            ]
                        },
                        at=when,
                    )
                await conn.execute(early_receipts.delete().where(early_receipts.c.id.in_(done)))
    for receipt in stale:
        log.warning(
            "delivery.receipt_unmatched",
            channel=receipt.channel,
            provider_message_id=receipt.provider_message_id,
            status=receipt.status,
        )
    return applied
