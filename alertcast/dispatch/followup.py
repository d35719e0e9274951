"""Follow-ups: an Update or a Cancel acts on the message a target already received.

When an Update or a Cancel arrives, :mod:`alertcast.dispatch.cancellation`
stops what of the old alert was not sent yet. What *was* sent is still on
people's screens, so the new alert's own rows carry the follow-up: a row
going to a (channel, target) that already received a message of an alert it
replaces becomes an edit of, a reply to, or a replacement for that earlier
message, as the channel prefers (:class:`alertcast.ports.FollowUpChannel`).
The worker calls :func:`earlier_messages` once per claimed batch and
:func:`send` instead of ``channel.send``.

Which alerts a row's alert replaces:

* **Its CAP story.** The ``alert_references`` links, followed back to the
  first message and forward again through the messages continuing that
  story that were sent before it (an issuer often names only the first
  alert, while the target saw the last Update). This is the story
  :mod:`alertcast.lifecycle` walks. Of those, only alerts the lifecycle
  actually ended the same way count: ``superseded`` for an Update (or an
  Alert that carries references), ``cancelled`` for a Cancel; of the same
  sender and the same status. So a drill never edits a real warning, a
  message of another sender never rewrites ours (a delegate's Cancel goes
  out as a plain message), and an Update arriving after a Cancel never
  rewrites the cancelled message.
* **What the planner says.** The planner writes into the stored message
  (:class:`alertcast.ports.OutboundMessage` ``extra``):

  ``extra["msg_type"]``
      the CAP msgType the message acts as ("Alert", "Update", "Cancel"...),
      read instead of the alert's own when present. "Cancel" asks for the
      channel's Cancel follow-up; "Update", or "Alert" (whose references
      make it an update), for its Update follow-up; anything else for none.
  ``extra["replaces"]``
      list of alert ids (int) the message replaces: its resolved CAP
      references. Added to the story and checked the same way, so a
      planner can name nothing the lifecycle did not end.
  ``extra["group_update_of"]``
      the key (``sender,identifier,sent``) of the first alert of the routing
      group (``group_by``) this alert updates. The lifecycle knows nothing
      of it (the first alert stays active); the operator's routing rules
      decided it, and their group key already keeps drills apart from real
      alerts, so it is taken as given: a follow-up of that alert's message.

Of the rows of those alerts on the same channel and target that were sent
(``sent`` or ``delivered``, with a provider message id), the latest one
(latest alert sent, then latest row) is the message followed up. An edit
keeps the message's id, so a story of three Updates keeps editing one post.
A row a delivery receipt turned ``failed`` is not followed up: the person
never got it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import (
    BigInteger,
    Integer,
    Text,
    and_,
    bindparam,
    func,
    literal,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.dispatch.ledger import Delivery, DeliveryState
from alertcast.domain import AlertKey, MsgType, parse_references
from alertcast.errors import Permanent
from alertcast.ports import FOLLOW_UP_KINDS, Channel, FollowUpChannel, Receipt
from alertcast.store.alerts import AlertState, key_matches
from alertcast.store.engine import database_errors, read_only
from alertcast.store.tables import alert_references, alerts, deliveries

log = structlog.get_logger(__name__)

EXTRA_MSG_TYPE = "msg_type"
"""``OutboundMessage.extra`` key: the msgType the message acts as, instead of the alert's own."""

EXTRA_REPLACES = "replaces"
"""``OutboundMessage.extra`` key: alert ids (int) the message replaces, checked like its story."""

EXTRA_GROUP_UPDATE_OF = "group_update_of"
"""``OutboundMessage.extra`` key: key text of the routing group's first alert, taken as given."""

UPDATE = MsgType.UPDATE.value
CANCEL = MsgType.CANCEL.value

_FOLLOWED_STATES = (DeliveryState.SENT.value, DeliveryState.DELIVERED.value)
"""Rows whose message reached the provider (and was not reported undelivered)."""

_ENDED_BY = {UPDATE: AlertState.SUPERSEDED.value, CANCEL: AlertState.CANCELLED.value}
"""The state the lifecycle leaves a replaced alert in, per follow-up msgType."""


@dataclass(frozen=True, slots=True)
class EarlierMessage:
    """The message a delivery follows up: the earlier row, its provider id, and how.

    ``msg_type`` is "Update" or "Cancel": what the delivery's message does to
    this one, the question asked of :meth:`FollowUpChannel.follow_up_for`.
    """

    delivery_id: int
    alert_id: int
    provider_message_id: str
    msg_type: str


def follow_up_msg_type(alert_msg_type: str, extra: Mapping[str, Any]) -> str | None:
    """The follow-up msgType of a delivery: "Update", "Cancel", or None (Ack, Error act on none)."""
    declared = extra.get(EXTRA_MSG_TYPE)
    msg_type = declared if isinstance(declared, str) and declared else alert_msg_type
    if msg_type == CANCEL:
        return CANCEL
    if msg_type in (UPDATE, MsgType.ALERT.value):
        return UPDATE
    return None


def declared_replaces(extra: Mapping[str, Any]) -> frozenset[int]:
    """The alert ids in ``extra["replaces"]``; anything not an integer id is ignored."""
    value = extra.get(EXTRA_REPLACES)
    if not isinstance(value, list | tuple):
        return frozenset()
    return frozenset(int(v) for v in value if isinstance(v, int) and not isinstance(v, bool))


def group_update_of(extra: Mapping[str, Any]) -> AlertKey | None:
    """The key in ``extra["group_update_of"]``, or None when absent or not one valid key."""
    value = extra.get(EXTRA_GROUP_UPDATE_OF)
    if not isinstance(value, str):
        return None
    keys, problems = parse_references(value)
    if len(keys) != 1 or problems:
        log.warning("delivery.group_update_of_unreadable", value=value)
        return None
    return keys[0]


def _story_query(origins: Sequence[int]) -> Any:
    """(origin, alert_id) for every alert of each origin's story sent before it.

    Two recursive walks over ``alert_references``: up to the messages an
    origin descends from, then down through the messages continuing them,
    only through those sent before the origin (a newer message's story is
    not the origin's to follow up). ``UNION`` keeps each pair once, so a
    reference cycle ends the walk.
    """
    up_ref = alert_references.alias("up_ref")
    up = (
        select(
            alert_references.c.alert_id.label("origin"),
            alert_references.c.ref_alert_id.label("alert_id"),
        )
        .where(
            alert_references.c.alert_id.in_(list(origins)),
            alert_references.c.ref_alert_id.is_not(None),
        )
        .cte("story_up", recursive=True)
    )
    up = up.union(
        select(up.c.origin, up_ref.c.ref_alert_id)
        .join(up_ref, up_ref.c.alert_id == up.c.alert_id)
        .where(up_ref.c.ref_alert_id.is_not(None))
    )
    # Downwards the references are matched by key, as the lifecycle does: that
    # is the indexed way in (ix_alert_references_target).
    node = alerts.alias("down_node")
    down_ref = alert_references.alias("down_ref")
    later = alerts.alias("down_alert")
    origin = alerts.alias("down_origin")
    down = select(up.c.origin, up.c.alert_id).cte("story", recursive=True)
    down = down.union(
        select(down.c.origin, down_ref.c.alert_id)
        .join(node, node.c.id == down.c.alert_id)
        .join(
            down_ref,
            and_(
                down_ref.c.ref_sender == node.c.sender,
                down_ref.c.ref_identifier == node.c.identifier,
                down_ref.c.ref_sent_utc == node.c.sent_utc,
            ),
        )
        .join(later, later.c.id == down_ref.c.alert_id)
        .join(origin, origin.c.id == down.c.origin)
        .where(later.c.sent_utc < origin.c.sent_utc)
    )
    return select(down.c.origin, down.c.alert_id, literal(0, Integer).label("trusted")).where(
        down.c.alert_id != down.c.origin
    )


def _declared_queries(
    replaces: Iterable[tuple[int, int]], groups: Iterable[tuple[int, AlertKey]]
) -> list[Any]:
    """One small SELECT per declared (origin, replaced): ids to check, group keys to trust."""
    checked = [
        select(
            literal(origin, BigInteger).label("origin"),
            literal(replaced, BigInteger).label("alert_id"),
            literal(0, Integer).label("trusted"),
        )
        for origin, replaced in sorted(replaces)
    ]
    trusted = [
        select(
            literal(origin, BigInteger).label("origin"),
            alerts.c.id.label("alert_id"),
            literal(1, Integer).label("trusted"),
        ).where(key_matches(key), alerts.c.id != origin)
        for origin, key in sorted(set(groups), key=lambda pair: (pair[0], str(pair[1])))
    ]
    return checked + trusted


def _earlier_query(deliveries_: Sequence[Delivery], dialect: str) -> Any:
    """The rows, on the batch's (channel, target) places, of what each origin replaces.

    Any state: whether a row was sent is judged in Python. A condition on
    ``state`` here would tempt the planner to walk every sent row of the
    ledger by the claim index instead of looking up the few places through
    the unique ``(alert_id, channel, target)`` index.

    The places are given so that each engine does that lookup: PostgreSQL
    joins the rows of ``unnest(channels, targets)`` (a list of targets would
    only filter the rows of the channel, not seek them); SQLite seeks every
    pair of two ``IN`` lists, whose cross product may add rows of other
    places, which Python leaves out.
    """
    origins = sorted({d.alert_id for d in deliveries_})
    replaces: set[tuple[int, int]] = set()
    groups: set[tuple[int, AlertKey]] = set()
    for delivery in deliveries_:
        extra = delivery.message.extra
        for replaced in declared_replaces(extra):
            if replaced != delivery.alert_id:
                replaces.add((delivery.alert_id, replaced))
        first = group_update_of(extra)
        if first is not None:
            groups.add((delivery.alert_id, first))
    candidates = union_all(_story_query(origins), *_declared_queries(replaces, groups)).cte(
        "candidates"
    )
    replaced_alert = alerts.alias("replaced")
    origin_alert = alerts.alias("replacing")
    pairs = sorted({(d.channel, d.target) for d in deliveries_})
    query = (
        select(
            candidates.c.origin,
            candidates.c.trusted,
            deliveries.c.id,
            deliveries.c.alert_id,
            deliveries.c.channel,
            deliveries.c.target,
            deliveries.c.state,
            deliveries.c.provider_message_id,
            replaced_alert.c.state.label("replaced_state"),
            replaced_alert.c.sender.label("replaced_sender"),
            replaced_alert.c.identifier.label("replaced_identifier"),
            replaced_alert.c.status.label("replaced_status"),
            replaced_alert.c.sent_utc.label("replaced_sent"),
            origin_alert.c.sender.label("origin_sender"),
            origin_alert.c.status.label("origin_status"),
            origin_alert.c.msg_type.label("origin_msg_type"),
        )
        .select_from(candidates)
        .join(replaced_alert, replaced_alert.c.id == candidates.c.alert_id)
        .join(origin_alert, origin_alert.c.id == candidates.c.origin)
    )
    if dialect == "postgresql":
        places = (
            func.unnest(
                bindparam("channels", [c for c, _ in pairs], type_=postgresql.ARRAY(Text)),
                bindparam("targets", [t for _, t in pairs], type_=postgresql.ARRAY(Text)),
            )
            .table_valued("channel", "target")
            .render_derived(name="place")
        )
        return query.join(places, true()).join(
            deliveries,
            and_(
                deliveries.c.alert_id == candidates.c.alert_id,
                deliveries.c.channel == places.c.channel,
                deliveries.c.target == places.c.target,
            ),
        )
    return query.join(
        deliveries,
        and_(
            deliveries.c.alert_id == candidates.c.alert_id,
            deliveries.c.channel.in_(sorted({c for c, _ in pairs})),
            deliveries.c.target.in_(sorted({t for _, t in pairs})),
        ),
    )


async def alerts_with_a_story(engine: AsyncEngine, alert_ids: Sequence[int]) -> set[int]:
    """Which of ``alert_ids`` continue an earlier alert (an Update, a Cancel, a follow-on).

    The story of an alert is fixed once it is stored, so a worker can ask once
    per alert and skip the look-up for every later batch of a plain first
    Alert's fan-out.
    """
    if not alert_ids:
        return set()
    story = _story_query(sorted(set(alert_ids))).subquery("story")
    with database_errors("cannot read which alerts continue earlier ones"):
        async with read_only(engine) as conn:
            return {
                int(v) for v in (await conn.execute(select(story.c.origin).distinct())).scalars()
            }


def declares_follow_up(delivery: Delivery) -> bool:
    """The message names what it replaces or its routing group (the planner's notes)."""
    extra = delivery.message.extra
    return bool(declared_replaces(extra)) or group_update_of(extra) is not None


async def earlier_messages(
    engine: AsyncEngine, deliveries_: Sequence[Delivery]
) -> dict[int, EarlierMessage]:
    """For a claimed batch, the earlier message each delivery follows up, by delivery id.

    One read-only query for the whole batch; deliveries with nothing to
    follow up are absent from the result. It leans on the unique index
    ``(alert_id, channel, target)`` of the ledger, so it stays cheap while
    the replaced alert has millions of rows.
    """
    deliveries_ = [d for d in deliveries_ if _may_follow_up(d)]
    if not deliveries_:
        return {}
    query = _earlier_query(deliveries_, engine.dialect.name)
    with database_errors("cannot find the earlier messages of a delivery batch"):
        async with read_only(engine) as conn:
            rows: list[Row[Any]] = list(await conn.execute(query))
    by_place: dict[tuple[int, str, str], list[Row[Any]]] = defaultdict(list)
    for row in rows:
        by_place[(int(row.origin), row.channel, row.target)].append(row)
    found: dict[int, EarlierMessage] = {}
    for delivery in deliveries_:
        earlier = _pick(
            delivery, by_place.get((delivery.alert_id, delivery.channel, delivery.target))
        )
        if earlier is not None:
            found[delivery.id] = earlier
    return found


def _may_follow_up(delivery: Delivery) -> bool:
    """False for a message that declares itself a plain first Alert: nothing to look up.

    Most of a fan-out is such messages; skipping them spares every claim the
    story query. A message that declares nothing is looked up (it may be an
    Update stored without the planner's notes).
    """
    extra = delivery.message.extra
    return not (
        extra.get(EXTRA_MSG_TYPE) == "Alert"
        and not declared_replaces(extra)
        and group_update_of(extra) is None
    )


def _pick(delivery: Delivery, rows: list[Row[Any]] | None) -> EarlierMessage | None:
    """The latest eligible earlier row for ``delivery`` among its place's candidates."""
    if not rows:
        return None
    msg_type = follow_up_msg_type(rows[0].origin_msg_type, delivery.message.extra)
    if msg_type is None:
        return None
    first = group_update_of(delivery.message.extra)
    eligible = [
        row
        for row in rows
        if row.state in _FOLLOWED_STATES
        and row.provider_message_id is not None
        and _eligible(row, msg_type, first)
    ]
    if not eligible:
        return None
    latest = max(eligible, key=lambda r: (r.replaced_sent, int(r.id)))
    return EarlierMessage(
        delivery_id=int(latest.id),
        alert_id=int(latest.alert_id),
        provider_message_id=str(latest.provider_message_id),
        msg_type=msg_type,
    )


def _eligible(row: Row[Any], msg_type: str, group_first: AlertKey | None) -> bool:
    if row.trusted:
        # Only this delivery's own group: another delivery of the alert may name another.
        key = AlertKey(row.replaced_sender, row.replaced_identifier, row.replaced_sent)
        return key == group_first
    return bool(
        row.replaced_state == _ENDED_BY[msg_type]
        and row.replaced_sender == row.origin_sender
        and row.replaced_status == row.origin_status
    )


async def send(channel: Channel, delivery: Delivery, earlier: EarlierMessage | None) -> Receipt:
    """Send ``delivery``: plainly, or as the channel's follow-up of ``earlier``.

    A plain ``channel.send`` when there is no earlier message, the channel
    is not a :class:`FollowUpChannel`, or it has no follow-up for this msgType.
    Otherwise:

    * **edit** (an Update on Telegram, Mastodon): the earlier message now
      reads as the new one, and nobody gets a second notification for what
      is a correction. The receipt names the edited message.
    * **reply** (a Cancel on Telegram, Mastodon): the notice is threaded
      under the warning it cancels, so whoever scrolls back to the warning
      sees it was called off.
    * **delete** (a Cancel on X, Bluesky): the notice is *sent first*, then
      the earlier post is deleted. Deleting alone would leave a person who
      saw the warning not knowing it was called off (a post that vanished
      says nothing) and a screenshot of it unanswered; the deletion only
      keeps the stale warning from being found and acted on later. Sending
      first means a failed send deletes nothing and is retried like any
      send. A failed deletion is logged and does not fail the delivery: the
      notice went out, and failing the row would send it a second time.

    An edit or reply refused as :class:`alertcast.errors.Permanent` (message
    too old, deleted, not editable) falls back to a plain send: people must
    still be told, and a new message tells them. Every other error is raised
    as from ``send``, so the retry policy treats it the same way (a retry
    tries the follow-up again).
    """
    if earlier is None or not isinstance(channel, FollowUpChannel):
        return await channel.send(delivery.message, delivery.target)
    kind = channel.follow_up_for(earlier.msg_type)
    if kind is None:
        return await channel.send(delivery.message, delivery.target)
    if kind not in FOLLOW_UP_KINDS or kind not in channel.follow_ups:
        log.warning(
            "delivery.follow_up_unsupported",
            channel=delivery.channel,
            delivery_id=delivery.id,
            follow_up=kind,
        )
        return await channel.send(delivery.message, delivery.target)
    context = {
        "channel": delivery.channel,
        "delivery_id": delivery.id,
        "follow_up": kind,
        "earlier_delivery_id": earlier.delivery_id,
        "msg_type": earlier.msg_type,
    }
    if kind == "delete":
        receipt = await channel.send(delivery.message, delivery.target)
        try:
            await channel.delete(earlier.provider_message_id, delivery.target)
        except Exception as exc:
            log.warning(
                "delivery.follow_up_delete_failed",
                error=f"{type(exc).__name__}: {exc}",
                **context,
            )
        else:
            log.info("delivery.follow_up", **context)
        return receipt
    try:
        if kind == "edit":
            receipt = await channel.edit(
                earlier.provider_message_id, delivery.message, delivery.target
            )
            if receipt.provider_message_id is None:
                receipt = Receipt(
                    provider_message_id=earlier.provider_message_id, delivered=receipt.delivered
                )
        else:
            receipt = await channel.reply(
                earlier.provider_message_id, delivery.message, delivery.target
            )
    except Permanent as exc:
        log.info("delivery.follow_up_fallback", reason=str(exc) or "Permanent", **context)
        return await channel.send(delivery.message, delivery.target)
    log.info("delivery.follow_up", **context)
    return receipt
