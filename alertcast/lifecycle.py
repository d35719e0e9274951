"""The CAP lifecycle: what an Update, a Cancel, an expiry or a vanished alert does to the others.

A received message is stored once per key (see :mod:`alertcast.store.alerts`);
this module decides, in the same transaction, what it changes. Every change
of state is written to the audit trail with the target's key as subject and
the message that caused it in ``by``, so an office can show why a warning
stopped being active.

The rules, and why:

* **Links.** One ``alert_references`` row per reference. A reference to an
  alert never seen is kept (``ref_alert_id`` NULL) and audited as
  ``alert.reference_unknown``; when that alert arrives later, the link is
  resolved (``alert.reference_resolved``) and the earlier message's effect is
  applied then, so an alert whose Cancel came first is stored cancelled.
* **What cancels, what supersedes.** Only msgType Cancel cancels. An Update
  supersedes; so does an Alert that carries references (Pelmorex's "minor
  update" keeps msgType Alert and names the alert it replaces). Ack and
  Error messages are linked and change nothing. Only Alert and Update
  messages ever change state: a Cancel, Ack or Error record stays ``active``
  and is never listed by :func:`active_alerts`.
* **The story, not only the named message.** A Cancel of A also ends the
  messages that continue A's story (they reference A, directly or through
  each other) and were sent before the Cancel; an Update of A likewise
  supersedes older versions of A's story. Issuers often reference only the
  first alert of a story; without this an earlier Update would stay active
  beside the Cancel.
* **Late messages.** A message sent before a newer message of its story that
  we already hold is overtaken when it arrives: it is stored ``superseded``
  (or ``cancelled`` when the newer message is a Cancel). This is also the rule
  for the Update of an already cancelled alert: sent before the Cancel, it is
  stored cancelled; sent after it, it is the issuer's latest word and stays
  active. Either way the cancelled alert is never resurrected.
* **Transitions.** A Cancel moves active, superseded or withdrawn alerts to
  ``cancelled`` (an explicit word from the issuer overrides the inference
  "withdrawn"). An Update moves active or withdrawn alerts to
  ``superseded``. An expired alert changes no more: the message is stored and
  ``alert.reference_no_effect`` is audited. So is an Update of a cancelled
  alert.
* **Senders.** A message changes only alerts of its own sender, unless the
  feed it came from lists its sender in ``mapping.delegates``: either a list
  of senders that may act for any sender, or a table ``delegate = [senders]``.
  A reference across senders is linked and refused
  (``alert.reference_foreign_sender``); Pelmorex sample #9 is such a case.
  Refusing is the conservative choice: a wrongly kept warning is corrected by
  the next message, a wrongly silenced one may cost lives.
* **Status.** A message changes only alerts of the same status: an Exercise
  or Test never cancels or supersedes an Actual alert, and the reverse
  (``alert.reference_status_mismatch``). A drill must never silence a real
  warning. Refusals are audited for the messages a message names; for the
  rest of the story they are silent, as those were not named.
* **Expiry** is by ``expires_at`` against the clock: an alert already expired
  when it arrives is stored ``expired``; :func:`expire_due` expires the rest.
* **Withdrawal** (:func:`withdraw`) is the poller's inference that an alert
  left its issuer's complete index before it expired, without a Cancel.

Concurrency: every transaction here takes the audit trail's lock before it
reads (PostgreSQL advisory lock; SQLite's ``BEGIN IMMEDIATE`` write lock), so
two messages of one story arriving at the same moment are applied one after
the other and never miss each other.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import structlog
from sqlalchemy import Select, and_, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alertcast import audit
from alertcast.alert_json import alert_from_json
from alertcast.cap_writer import to_cap_xml
from alertcast.config import FeedConfig
from alertcast.domain import Alert, AlertKey, MsgType, Status, parse_datetime
from alertcast.errors import StoreError
from alertcast.store.alerts import (
    AlertState,
    IngestResult,
    StoredAlert,
    alert_columns,
    insert_alert,
    key_matches,
    lock_alert_writes,
    stored_from_row,
)
from alertcast.store.engine import database_errors, read_only
from alertcast.store.tables import alert_references, alerts

__all__ = [
    "AlertState",
    "ChainLink",
    "Delegates",
    "LifecyclePolicy",
    "StoredMessage",
    "activate_alert",
    "activate_in",
    "active_alerts",
    "chain",
    "expire_due",
    "ingest_alert",
    "withdraw",
]

log = structlog.get_logger(__name__)

LIFECYCLE_ACTOR = "lifecycle"
"""Actor of the audit records written by :func:`expire_due`."""

BATCH_SIZE = 500
"""Alerts changed per transaction by :func:`withdraw` and :func:`expire_due`."""

MAX_CHAIN = 2000
"""How many messages a chain walk visits at most, so a pathological feed cannot stall ingest."""

_STATEFUL = (MsgType.ALERT.value, MsgType.UPDATE.value)
"""Only these messages have a state that other messages change."""

_Effect = Literal["cancel", "supersede"]

_TRANSITIONS: dict[_Effect, dict[AlertState, AlertState]] = {
    "cancel": {
        AlertState.ACTIVE: AlertState.CANCELLED,
        AlertState.SUPERSEDED: AlertState.CANCELLED,
        AlertState.WITHDRAWN: AlertState.CANCELLED,
    },
    "supersede": {
        AlertState.ACTIVE: AlertState.SUPERSEDED,
        AlertState.WITHDRAWN: AlertState.SUPERSEDED,
    },
}
"""Allowed changes per effect; anything else is no change (never a resurrection)."""


# --------------------------------------------------------------------------- policy


@dataclass(frozen=True, slots=True)
class Delegates:
    """Senders a feed allows to cancel or update alerts of other senders."""

    for_anyone: frozenset[str] = frozenset()
    for_senders: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def allows(self, sender: str, target_sender: str) -> bool:
        return sender in self.for_anyone or target_sender in self.for_senders.get(
            sender, frozenset()
        )

    @classmethod
    def from_mapping(cls, value: object, *, feed: str) -> Delegates:
        """Read ``mapping.delegates``: a list of senders, or a table ``delegate = [senders]``."""
        if value is None:
            return cls()
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return cls(for_anyone=frozenset(value))
        if isinstance(value, Mapping):
            table: dict[str, frozenset[str]] = {}
            for delegate, senders in value.items():
                if isinstance(senders, str):
                    senders = [senders]
                if not isinstance(delegate, str) or not (
                    isinstance(senders, list | tuple) and all(isinstance(s, str) for s in senders)
                ):
                    log.warning("lifecycle.delegates_ignored", feed=feed, delegate=str(delegate))
                    continue
                table[delegate] = frozenset(senders)
            return cls(for_senders=table)
        log.warning("lifecycle.delegates_ignored", feed=feed, reason="not a list or a table")
        return cls()


@dataclass(frozen=True, slots=True)
class LifecyclePolicy:
    """What the configuration says about the lifecycle: delegates per feed name."""

    delegates: Mapping[str, Delegates] = field(default_factory=dict)

    def may_act_for(self, feed: str | None, sender: str, target_sender: str) -> bool:
        """True when a message from ``sender``, received via ``feed``, may change the target."""
        if sender == target_sender:
            return True
        delegates = self.delegates.get(feed) if feed is not None else None
        return delegates is not None and delegates.allows(sender, target_sender)

    @classmethod
    def from_feeds(cls, feeds: Iterable[FeedConfig]) -> LifecyclePolicy:
        return cls(
            {
                feed.name: Delegates.from_mapping(feed.mapping.get("delegates"), feed=feed.name)
                for feed in feeds
                if feed.mapping.get("delegates") is not None
            }
        )


# --------------------------------------------------------------------------- nodes


@dataclass(slots=True)
class _Node:
    """The columns of one stored message that the rules read; ``state`` is kept current."""

    id: int
    key: AlertKey
    status: Status
    msg_type: MsgType
    state: AlertState
    sent_utc: datetime
    expires_at: datetime | None
    feed: str | None


_NODE_COLUMNS = (
    alerts.c.id,
    alerts.c.sender,
    alerts.c.identifier,
    alerts.c.sent,
    alerts.c.sent_utc,
    alerts.c.status,
    alerts.c.msg_type,
    alerts.c.state,
    alerts.c.expires_at,
    alerts.c.feed,
)


def _node(row: Row[Any]) -> _Node:
    return _Node(
        id=int(row.id),
        key=AlertKey(row.sender, row.identifier, parse_datetime(row.sent)),
        status=Status(row.status),
        msg_type=MsgType(row.msg_type),
        state=AlertState(row.state),
        sent_utc=row.sent_utc,
        expires_at=row.expires_at,
        feed=row.feed,
    )


def _nodes_query() -> Select[Any]:
    return select(*_NODE_COLUMNS)


async def _node_by_key(conn: AsyncConnection, key: AlertKey) -> _Node | None:
    row = (await conn.execute(_nodes_query().where(key_matches(key)))).first()
    return _node(row) if row is not None else None


def _ref_key(row: Row[Any, Any, Any] | Row[Any]) -> AlertKey:
    return AlertKey(row.ref_sender, row.ref_identifier, row.ref_sent_utc)


def _refers_to_any(keys: Sequence[AlertKey]) -> Any:
    return or_(
        *(
            and_(
                alert_references.c.ref_sender == key.sender,
                alert_references.c.ref_identifier == key.identifier,
                alert_references.c.ref_sent_utc == key.sent,
            )
            for key in keys
        )
    )


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _effect_of(msg_type: MsgType, has_references: bool) -> _Effect | None:
    if msg_type is MsgType.CANCEL:
        return "cancel"
    if msg_type is MsgType.UPDATE or (msg_type is MsgType.ALERT and has_references):
        return "supersede"
    return None


# --------------------------------------------------------------------------- one transaction


class _Transaction:
    """The state changes of one transaction: applies the rules, audits, collects effects."""

    def __init__(
        self, conn: AsyncConnection, *, now: datetime, actor: str, policy: LifecyclePolicy
    ) -> None:
        self.conn = conn
        self.now = now
        self.actor = actor
        self.policy = policy
        self.effects: list[str] = []

    async def audit(self, action: str, subject: AlertKey, data: Mapping[str, Any]) -> None:
        await audit.append(
            self.conn, actor=self.actor, action=action, subject=str(subject), data=data
        )

    async def set_state(
        self,
        node: _Node,
        state: AlertState,
        *,
        by: _Node | None = None,
        reason: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        await self.conn.execute(
            update(alerts)
            .where(alerts.c.id == node.id)
            .values(state=state.value, state_changed_at=self.now)
        )
        data: dict[str, Any] = {"alert_id": node.id, "previous_state": node.state.value}
        if by is not None:
            data["by"] = str(by.key)
        if reason is not None:
            data["reason"] = reason
        data.update(extra or {})
        await self.audit(f"alert.{state.value}", node.key, data)
        log.info(f"alert.{state.value}", alert=str(node.key), by=data.get("by"), reason=reason)
        node.state = state
        self.effects.append(f"{state.value} {node.id}")

    def lapsed(self, node: _Node) -> bool:
        return node.expires_at is not None and node.expires_at <= self.now

    async def apply(
        self,
        message: _Node,
        target: _Node,
        effect: _Effect,
        *,
        named: bool,
        reason: str | None = None,
    ) -> None:
        """Apply ``message``'s effect to ``target``; refusals are audited when it was named."""
        if target.id == message.id or target.msg_type.value not in _STATEFUL:
            return
        refusal: tuple[str, dict[str, Any]] | None = None
        if not self.policy.may_act_for(message.feed, message.key.sender, target.key.sender):
            refusal = (
                "alert.reference_foreign_sender",
                {"sender": message.key.sender, "target_sender": target.key.sender},
            )
        elif message.status is not target.status:
            refusal = (
                "alert.reference_status_mismatch",
                {"status": message.status.value, "target_status": target.status.value},
            )
        if refusal is not None:
            if named:
                action, data = refusal
                await self.audit(
                    action, target.key, {"by": str(message.key), "effect": effect, **data}
                )
                log.warning(action, alert=str(target.key), by=str(message.key), **data)
            return
        if target.state is AlertState.EXPIRED or self.lapsed(target):
            if target.state is AlertState.ACTIVE:
                await self.set_state(target, AlertState.EXPIRED, reason="expired")
            if named:
                await self._no_effect(message, target, effect, "the alert has expired")
            return
        new_state = _TRANSITIONS[effect].get(target.state)
        if new_state is None:
            if named and effect == "supersede" and target.state is AlertState.CANCELLED:
                await self._no_effect(message, target, effect, "the alert was cancelled")
            return
        await self.set_state(target, new_state, by=message, reason=reason)

    async def _no_effect(self, message: _Node, target: _Node, effect: _Effect, why: str) -> None:
        await self.audit(
            "alert.reference_no_effect",
            target.key,
            {"by": str(message.key), "effect": effect, "state": target.state.value, "reason": why},
        )
        log.info("alert.reference_no_effect", alert=str(target.key), by=str(message.key), why=why)

    # ------------------------------------------------------------------ a new message

    async def on_new(self, message: _Node, references: Sequence[AlertKey]) -> None:
        if self.lapsed(message):
            await self.set_state(message, AlertState.EXPIRED, reason="expired before it arrived")
        named = await self._link(message, references)
        effect = _effect_of(message.msg_type, bool(references))
        if effect is not None:
            for target in named:
                await self.apply(message, target, effect, named=True)
            already = {target.id for target in named}
            for older in await self._story_after(references, before=message):
                if older.id not in already:
                    await self.apply(message, older, effect, named=False)
            if effect == "supersede" and message.state is AlertState.ACTIVE:
                await self._overtake(message, references)
        await self._resolve_referrers(message)

    async def _link(self, message: _Node, references: Sequence[AlertKey]) -> list[_Node]:
        """Insert the reference rows; return the referenced messages we hold."""
        found: list[_Node] = []
        for key in references:
            target = await _node_by_key(self.conn, key)
            await self.conn.execute(
                alert_references.insert().values(
                    alert_id=message.id,
                    ref_sender=key.sender,
                    ref_identifier=key.identifier,
                    ref_sent_utc=key.sent,
                    ref_alert_id=target.id if target is not None else None,
                )
            )
            if target is None:
                await self.audit("alert.reference_unknown", key, {"by": str(message.key)})
                log.info("alert.reference_unknown", alert=str(key), by=str(message.key))
            else:
                found.append(target)
        return found

    async def _story_after(self, roots: Sequence[AlertKey], *, before: _Node) -> list[_Node]:
        """Messages continuing the story of ``roots`` (referencing them, transitively).

        Only messages sent before ``before`` are collected and walked through:
        a newer message's story is not the older message's to end.
        """
        seen: dict[int, _Node] = {}
        frontier = list(roots)
        while frontier and len(seen) < MAX_CHAIN:
            next_frontier: list[AlertKey] = []
            for keys in _chunks(frontier, 100):
                query = (
                    _nodes_query()
                    .join(alert_references, alert_references.c.alert_id == alerts.c.id)
                    .where(_refers_to_any(keys))
                    .where(alerts.c.sent_utc < before.sent_utc)
                )
                for row in await self.conn.execute(query):
                    node = _node(row)
                    if node.id == before.id or node.id in seen:
                        continue
                    seen[node.id] = node
                    next_frontier.append(node.key)
            frontier = next_frontier
        return sorted(seen.values(), key=lambda n: (n.sent_utc, n.id))

    async def _ancestors(self, references: Sequence[AlertKey]) -> list[AlertKey]:
        """The keys a message descends from: its references, theirs, and so on."""
        found: dict[AlertKey, None] = dict.fromkeys(references)
        frontier = list(references)
        while frontier and len(found) < MAX_CHAIN:
            next_frontier: list[AlertKey] = []
            for key in frontier:
                rows = await self.conn.execute(
                    select(
                        alert_references.c.ref_sender,
                        alert_references.c.ref_identifier,
                        alert_references.c.ref_sent_utc,
                    )
                    .join(alerts, alerts.c.id == alert_references.c.alert_id)
                    .where(key_matches(key))
                )
                for row in rows:
                    parent = _ref_key(row)
                    if parent not in found:
                        found[parent] = None
                        next_frontier.append(parent)
            frontier = next_frontier
        return list(found)

    async def _overtake(self, message: _Node, references: Sequence[AlertKey]) -> None:
        """Apply to a late message the newer messages of its story that are already held.

        "Newer" means a message of the same sender and status that names one
        of this message's ancestors and was sent later (a Cancel sent at the
        same instant counts too). Its effect also reaches the messages that
        continue this one and are older than it: they could not be linked to
        the newer message before this one arrived.
        """
        ancestors = await self._ancestors(references)
        newer: dict[int, _Node] = {}
        for keys in _chunks(ancestors, 100):
            query = (
                _nodes_query()
                .join(alert_references, alert_references.c.alert_id == alerts.c.id)
                .where(_refers_to_any(keys))
                .where(alerts.c.id != message.id)
                .where(alerts.c.sender == message.key.sender)
                .where(alerts.c.status == message.status.value)
                .where(alerts.c.sent_utc >= message.sent_utc)
            )
            for row in await self.conn.execute(query):
                newer.setdefault(int(row.id), _node(row))
        for later in sorted(newer.values(), key=lambda n: (n.sent_utc, n.id)):
            effect = _effect_of(later.msg_type, True)
            if effect is None or (effect == "supersede" and later.sent_utc <= message.sent_utc):
                continue
            await self.apply(later, message, effect, named=False, reason="overtaken on arrival")
            for older in await self._story_after([message.key], before=later):
                await self.apply(later, older, effect, named=False)

    async def _resolve_referrers(self, message: _Node) -> None:
        """Link messages that referenced this one before it arrived, and apply their effect."""
        waiting = and_(
            alert_references.c.ref_sender == message.key.sender,
            alert_references.c.ref_identifier == message.key.identifier,
            alert_references.c.ref_sent_utc == message.key.sent,
            alert_references.c.ref_alert_id.is_(None),
        )
        referrer_ids = (
            (await self.conn.execute(select(alert_references.c.alert_id).where(waiting)))
            .scalars()
            .all()
        )
        if not referrer_ids:
            return
        await self.conn.execute(
            update(alert_references).where(waiting).values(ref_alert_id=message.id)
        )
        rows = await self.conn.execute(
            _nodes_query()
            .where(alerts.c.id.in_(referrer_ids))
            .order_by(alerts.c.sent_utc, alerts.c.id)
        )
        for referrer in [_node(row) for row in rows]:
            await self.audit(
                "alert.reference_resolved",
                message.key,
                {"alert_id": message.id, "by": str(referrer.key)},
            )
            effect = _effect_of(referrer.msg_type, True)
            if effect is not None:
                await self.apply(referrer, message, effect, named=True)


# --------------------------------------------------------------------------- ingest


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """What :func:`ingest_alert` did: the alert as stored, and the store's result."""

    alert: Alert
    """As stored: with references inferred from its thread when it had none."""
    warnings: tuple[str, ...]
    result: IngestResult


async def ingest_alert(
    engine: AsyncEngine,
    alert: Alert,
    *,
    raw: bytes | None,
    source: str,
    actor: str,
    now: datetime,
    warnings: Sequence[str] = (),
    cap_version: str = "1.2",
    feed: str | None = None,
    thread: str | None = None,
    policy: LifecyclePolicy | None = None,
) -> StoredMessage:
    """Store ``alert`` and apply the lifecycle, all in one transaction.

    Idempotent on the alert key: a known key changes nothing and reports the
    alert's current state. ``thread`` (with ``feed``) links an Update or
    Cancel that has no references to the latest alert of the same thread.
    """
    with database_errors(f"cannot store alert {alert.key}"):
        async with engine.begin() as conn:
            await lock_alert_writes(conn)
            alert, inferred = await _with_thread_references(conn, alert, feed=feed, thread=thread)
            all_warnings = (*warnings, *inferred)
            result = await insert_alert(
                conn,
                alert,
                raw=raw,
                source=source,
                actor=actor,
                warnings=all_warnings,
                cap_version=cap_version,
                feed=feed,
                thread=thread,
            )
            if not result.created:
                return StoredMessage(alert, all_warnings, result)
            node, transaction = await _enter(
                conn, alert, result.alert_id, feed=feed, now=now, actor=actor, policy=policy
            )
    return StoredMessage(
        alert,
        all_warnings,
        dataclasses.replace(result, state=node.state, effects=tuple(transaction.effects)),
    )


RELEASABLE = (AlertState.SUBMITTED, AlertState.SCHEDULED)
"""States of a composed alert that :func:`activate_alert` may issue."""


async def activate_alert(
    engine: AsyncEngine,
    alert_id: int,
    *,
    actor: str,
    now: datetime,
    policy: LifecyclePolicy | None = None,
) -> StoredMessage:
    """Issue a composed alert now: ``active``, with the lifecycle applied, in one transaction.

    See :func:`activate_in`; this opens the transaction (taking the alert
    writers' lock) around it.
    """
    with database_errors(f"cannot release alert {alert_id}"):
        async with engine.begin() as conn:
            await lock_alert_writes(conn)
            return await activate_in(conn, alert_id, actor=actor, now=now, policy=policy)


async def activate_in(
    conn: AsyncConnection,
    alert_id: int,
    *,
    actor: str,
    now: datetime,
    policy: LifecyclePolicy | None = None,
) -> StoredMessage:
    """Issue a composed alert inside the caller's transaction (which holds the writers' lock).

    A composed alert (state ``submitted`` or ``scheduled``) was stored with no
    lifecycle effects and no reference rows. Issuing it sets its CAP ``sent``
    to ``now`` (when it was issued, to the second), rewrites the stored
    document and its CAP XML to match, makes it ``active`` and then applies the
    same rules as :func:`ingest_alert` for a new message: its references are
    linked and a Cancel or Update ends what it names. ``received_at`` becomes
    the release time too, so an interrupted planning is caught up like any
    alert received then. Audited as ``alert.released`` (with ``actor``),
    before the lifecycle's own records. StoreError when the alert does not
    exist or is not in a releasable state.
    """
    row = (
        await conn.execute(
            select(alerts.c.normalized, alerts.c.state, alerts.c.source).where(
                alerts.c.id == alert_id
            )
        )
    ).first()
    if row is None:
        raise StoreError(f"alert {alert_id} does not exist")
    state = AlertState(row.state)
    if state not in RELEASABLE:
        raise StoreError(f"alert {alert_id} is {state.value}, not waiting for release")
    composed = alert_from_json(json.loads(row.normalized))
    sent = now.replace(microsecond=0)
    alert = dataclasses.replace(composed, sent=sent)
    raw = to_cap_xml(alert)
    await conn.execute(
        update(alerts)
        .where(alerts.c.id == alert_id)
        .values(
            **alert_columns(alert),
            raw=raw,
            received_at=now,
            state=AlertState.ACTIVE.value,
            state_changed_at=now,
        )
    )
    record = await audit.append(
        conn,
        actor=actor,
        action="alert.released",
        subject=str(alert.key),
        data={
            "alert_id": alert_id,
            "previous_state": state.value,
            "source": row.source,
            "status": alert.status.value,
            "msg_type": alert.msg_type.value,
            "raw_sha256": hashlib.sha256(raw).hexdigest(),
        },
        at=now,
    )
    node, transaction = await _enter(
        conn, alert, alert_id, feed=None, now=now, actor=actor, policy=policy
    )
    log.info("alert.released", alert=str(alert.key), alert_id=alert_id, actor=actor)
    result = IngestResult(
        key=alert.key,
        created=True,
        alert_id=alert_id,
        audit_seq=record.seq,
        state=node.state,
        effects=tuple(transaction.effects),
    )
    return StoredMessage(alert, (), result)


async def _enter(
    conn: AsyncConnection,
    alert: Alert,
    alert_id: int,
    *,
    feed: str | None,
    now: datetime,
    actor: str,
    policy: LifecyclePolicy | None,
) -> tuple[_Node, _Transaction]:
    """A message just in force (stored, or released by officers) takes its effect on its story."""
    node = _Node(
        id=alert_id,
        key=alert.key,
        status=alert.status,
        msg_type=alert.msg_type,
        state=AlertState.ACTIVE,
        sent_utc=alert.sent,
        expires_at=alert.expires,
        feed=feed,
    )
    transaction = _Transaction(conn, now=now, actor=actor, policy=policy or LifecyclePolicy())
    await transaction.on_new(node, _own_references(alert))
    return node, transaction


def _own_references(alert: Alert) -> list[AlertKey]:
    """The alert's references without repeats (same instant in two spellings) or itself."""
    unique = dict.fromkeys(alert.references)
    if alert.key in unique:
        log.warning("alert.references_itself", alert=str(alert.key))
        del unique[alert.key]
    return list(unique)


async def _with_thread_references(
    conn: AsyncConnection, alert: Alert, *, feed: str | None, thread: str | None
) -> tuple[Alert, tuple[str, ...]]:
    """Fill in the references of an Update or Cancel from its thread; note it in the warnings.

    The target is the latest Alert or Update of the same feed and thread, not
    superseded, sent no later than this message. A message already stored
    gets the references it was stored with, so that re-reading a feed gives
    the same alert and never looks like a changed copy.
    """
    if (
        alert.references
        or feed is None
        or thread is None
        or alert.msg_type not in (MsgType.UPDATE, MsgType.CANCEL)
    ):
        return alert, ()
    stored = (
        await conn.execute(select(alerts.c.normalized).where(key_matches(alert.key)))
    ).scalar_one_or_none()
    if stored is not None:
        return dataclasses.replace(
            alert, references=alert_from_json(json.loads(stored)).references
        ), ()
    latest = (
        await conn.execute(
            select(alerts.c.sender, alerts.c.identifier, alerts.c.sent)
            .where(alerts.c.feed == feed, alerts.c.thread == thread)
            .where(alerts.c.msg_type.in_(_STATEFUL))
            .where(alerts.c.state != AlertState.SUPERSEDED.value)
            .where(alerts.c.sent_utc <= alert.sent)
            .order_by(alerts.c.sent_utc.desc(), alerts.c.id.desc())
            .limit(1)
        )
    ).first()
    if latest is None:
        log.warning("alert.thread_unlinked", alert=str(alert.key), feed=feed, thread=thread)
        return alert, (
            f"{alert.msg_type.value} names no earlier message and thread {thread!r} "
            f"of feed {feed!r} has no earlier alert to link it to",
        )
    target = AlertKey(latest.sender, latest.identifier, parse_datetime(latest.sent))
    log.info("alert.references_inferred", alert=str(alert.key), target=str(target), thread=thread)
    return dataclasses.replace(alert, references=(target,)), (
        f"references inferred from thread {thread!r} of feed {feed!r}: {target}",
    )


# --------------------------------------------------------------------------- withdraw / expire


async def withdraw(
    engine: AsyncEngine, *, alert_ids: Sequence[int], feed: str, now: datetime
) -> int:
    """Mark alerts that left ``feed``'s complete index as withdrawn; return how many.

    Only alerts still active, not expired at ``now``, of msgType Alert or
    Update, and stored from this same feed are withdrawn: an alert first
    stored from another feed is that feed's to judge (two feeds often carry
    the same national alert, and one dropping it says nothing about the
    other). Each is audited as ``alert.withdrawn``.
    """
    ids = list(dict.fromkeys(int(alert_id) for alert_id in alert_ids))
    changed = 0
    for batch in _chunks(ids, BATCH_SIZE):
        with database_errors(f"cannot withdraw alerts of feed {feed}"):
            async with engine.begin() as conn:
                await lock_alert_writes(conn)
                rows = await conn.execute(
                    _nodes_query()
                    .where(alerts.c.id.in_(batch))
                    .where(alerts.c.state == AlertState.ACTIVE.value)
                    .where(alerts.c.feed == feed)
                    .where(alerts.c.msg_type.in_(_STATEFUL))
                    .where(or_(alerts.c.expires_at.is_(None), alerts.c.expires_at > now))
                    .order_by(alerts.c.id)
                )
                transaction = _Transaction(
                    conn, now=now, actor=f"feed:{feed}", policy=LifecyclePolicy()
                )
                for node in [_node(row) for row in rows]:
                    await transaction.set_state(
                        node,
                        AlertState.WITHDRAWN,
                        reason="left the feed's index before it expired, with no Cancel",
                        extra={"feed": feed},
                    )
                changed += len(transaction.effects)
    if len(ids) != changed:
        log.info("lifecycle.withdraw_skipped", feed=feed, asked=len(ids), withdrawn=changed)
    return changed


async def expire_due(engine: AsyncEngine, *, now: datetime) -> int:
    """Mark active alerts whose ``expires_at`` is at or before ``now`` as expired.

    Works in batches of :data:`BATCH_SIZE`, one transaction each, so that a
    backlog never holds the audit lock for long. Returns how many expired.
    """
    total = 0
    while True:
        with database_errors("cannot expire alerts"):
            async with engine.begin() as conn:
                await lock_alert_writes(conn)
                rows = await conn.execute(
                    _nodes_query()
                    .where(alerts.c.state == AlertState.ACTIVE.value)
                    .where(alerts.c.expires_at.is_not(None))
                    .where(alerts.c.expires_at <= now)
                    .order_by(alerts.c.expires_at, alerts.c.id)
                    .limit(BATCH_SIZE)
                )
                nodes = [_node(row) for row in rows]
                transaction = _Transaction(
                    conn, now=now, actor=LIFECYCLE_ACTOR, policy=LifecyclePolicy()
                )
                for node in nodes:
                    expires = node.expires_at.isoformat() if node.expires_at else None
                    await transaction.set_state(
                        node, AlertState.EXPIRED, reason="expired", extra={"expires": expires}
                    )
        total += len(nodes)
        if len(nodes) < BATCH_SIZE:
            break
    if total:
        log.info("lifecycle.expired", count=total)
    return total


# --------------------------------------------------------------------------- queries


@dataclass(frozen=True, slots=True)
class ChainLink:
    """One message of a chain; a never-seen message has only its key (``seen`` False)."""

    key: AlertKey
    seen: bool
    alert_id: int | None = None
    msg_type: MsgType | None = None
    status: Status | None = None
    state: AlertState | None = None
    references: tuple[AlertKey, ...] = ()
    """The keys this message references, as stored links."""


async def chain(engine: AsyncEngine, key_or_id: AlertKey | int) -> list[ChainLink]:
    """The whole chain of an alert, ordered by sent time.

    Everything connected to it by references in either direction, transitively:
    what it references, what references it, and their own links, including
    messages referenced but never seen. Empty when nothing is known about it.
    At most :data:`MAX_CHAIN` messages are returned.
    """
    with database_errors("cannot read the chain of an alert"):
        async with read_only(engine) as conn:
            if isinstance(key_or_id, int):
                start = (await conn.execute(_nodes_query().where(alerts.c.id == key_or_id))).first()
                if start is None:
                    return []
                first_key = _node(start).key
            else:
                first_key = key_or_id
            links: dict[AlertKey, ChainLink] = {}
            queue = [first_key]
            while queue and len(links) < MAX_CHAIN:
                key = queue.pop()
                if key in links:
                    continue
                link, neighbours = await _chain_link(conn, key)
                if link is None:
                    continue
                links[key] = link
                queue.extend(n for n in neighbours if n not in links)
    return sorted(links.values(), key=lambda link: (link.key.sent, link.key.identifier))


async def _chain_link(
    conn: AsyncConnection, key: AlertKey
) -> tuple[ChainLink | None, list[AlertKey]]:
    node = await _node_by_key(conn, key)
    references: list[AlertKey] = []
    if node is not None:
        rows = await conn.execute(
            select(
                alert_references.c.ref_sender,
                alert_references.c.ref_identifier,
                alert_references.c.ref_sent_utc,
            ).where(alert_references.c.alert_id == node.id)
        )
        references = [_ref_key(row) for row in rows]
    referrers = [
        _node(row).key
        for row in await conn.execute(
            _nodes_query()
            .join(alert_references, alert_references.c.alert_id == alerts.c.id)
            .where(_refers_to_any([key]))
        )
    ]
    if node is None:
        if not referrers:
            return None, []
        return ChainLink(key=key, seen=False), referrers
    link = ChainLink(
        key=node.key,
        seen=True,
        alert_id=node.id,
        msg_type=node.msg_type,
        status=node.status,
        state=node.state,
        references=tuple(references),
    )
    return link, [*references, *referrers]


async def active_alerts(
    engine: AsyncEngine, *, now: datetime, limit: int = 100
) -> list[StoredAlert]:
    """Alerts in force at ``now``, newest sent first.

    Active Alert and Update messages whose ``expires_at`` has not passed (the
    clock is checked here too, so an alert :func:`expire_due` has not reached
    yet is not listed). Cancel, Ack and Error messages are never listed.
    """
    query = (
        select(alerts)
        .where(alerts.c.state == AlertState.ACTIVE.value)
        .where(alerts.c.msg_type.in_(_STATEFUL))
        .where(or_(alerts.c.expires_at.is_(None), alerts.c.expires_at > now))
        .order_by(alerts.c.sent_utc.desc(), alerts.c.id.desc())
        .limit(limit)
    )
    with database_errors("cannot list active alerts"):
        async with read_only(engine) as conn:
            rows = (await conn.execute(query)).all()
    return [stored_from_row(row) for row in rows]
