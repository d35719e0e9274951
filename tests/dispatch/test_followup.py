"""Follow-ups: an Update edits, a Cancel answers, what a target already received.

Alerts go through the real lifecycle (so references and supersession are the
stored ones), rows through the real ledger; the channel is a recording fake.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.dispatch import followup, ledger
from alertcast.dispatch.ledger import Outcome
from alertcast.dispatch.receipts import record_receipt
from alertcast.dispatch.retry import RetryPolicy, decide, succeeded
from alertcast.domain import Alert, MsgType, Status
from alertcast.errors import Permanent, RecipientGone, Transient
from alertcast.ports import Channel, FollowUpChannel, OutboundMessage
from alertcast.store.tables import deliveries
from alertcast.testing import FollowUpRecordingChannel, RecordingChannel
from tests.builders import quake_alert
from tests.dispatch.conftest import SENDER, StoreAlert, make_alert


def _alert(
    identifier: str,
    minutes: int,
    *,
    msg_type: MsgType = MsgType.ALERT,
    references: tuple[Alert, ...] = (),
    status: Status = Status.ACTUAL,
    sender: str = SENDER,
) -> Alert:
    sent = (
        datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1) + timedelta(minutes=minutes)
    )
    if status is Status.ACTUAL and sender == SENDER:
        return make_alert(identifier, msg_type=msg_type, references=references, sent=sent)
    return quake_alert(
        identifier,
        sender=sender,
        sent=sent,
        msg_type=msg_type,
        status=status,
        references=references,
    )


async def _plan(
    engine: AsyncEngine,
    alert_id: int,
    targets: Sequence[str],
    *,
    channel: str = "tg",
    text: str = "Aviso",
    extra: dict[str, object] | None = None,
) -> None:
    await ledger.plan(
        engine,
        alert_id=alert_id,
        channel=channel,
        targets=targets,
        message=OutboundMessage(parts=(text,), severity="Severe", extra=extra or {}),
        priority=10,
        deadline=None,
    )


async def _dispatch(engine: AsyncEngine, channel: Channel) -> list[Outcome]:
    """What the worker does with one batch: claim, find earlier messages, send, record."""
    claimed = await ledger.claim(engine, worker="w", channels=[channel.name], limit=100, lease_s=60)
    earlier = await followup.earlier_messages(engine, claimed)
    outcomes: list[Outcome] = []
    for delivery in claimed:
        assert await ledger.start_attempt(engine, delivery.id, worker="w")
        try:
            receipt = await followup.send(channel, delivery, earlier.get(delivery.id))
        except Exception as exc:
            now = datetime.now(UTC)
            outcome = decide(
                delivery, exc, attempts=delivery.attempts + 1, now=now, policy=RetryPolicy()
            ).outcome
        else:
            outcome = succeeded(delivery, receipt)
        outcomes.append(outcome)
    return await ledger.record_outcomes(engine, outcomes, worker="w")


async def _rows(engine: AsyncEngine, alert_id: int) -> dict[str, tuple[str, str | None]]:
    """target -> (state, provider_message_id) of one alert's rows."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(deliveries.c.target, deliveries.c.state, deliveries.c.provider_message_id).where(
                deliveries.c.alert_id == alert_id
            )
        )
        return {r.target: (r.state, r.provider_message_id) for r in rows}


async def _first_alert_sent(
    engine: AsyncEngine, store_alert: StoreAlert, channel: Channel, targets: Sequence[str]
) -> tuple[Alert, int]:
    first = _alert("QUAKE-1", 0)
    first_id = await store_alert(first)
    await _plan(engine, first_id, targets, text="Sismo fuerte")
    await _dispatch(engine, channel)
    assert {state for state, _ in (await _rows(engine, first_id)).values()} == {"sent"}
    return first, first_id


def _kinds(channel: FollowUpRecordingChannel) -> list[tuple[str, str, str]]:
    return [(f.kind, f.target, f.of) for f in channel.follow_ups_done]


# --------------------------------------------------------------------------- pure parts


def test_the_fake_channel_is_a_follow_up_channel_and_the_plain_one_is_not() -> None:
    assert isinstance(FollowUpRecordingChannel(), FollowUpChannel)
    assert not isinstance(RecordingChannel(), FollowUpChannel)


def test_msg_type_and_declared_replacements_read_from_extra() -> None:
    assert followup.follow_up_msg_type("Update", {}) == "Update"
    assert followup.follow_up_msg_type("Alert", {}) == "Update"
    assert followup.follow_up_msg_type("Cancel", {}) == "Cancel"
    assert followup.follow_up_msg_type("Ack", {}) is None
    assert followup.follow_up_msg_type("Alert", {"msg_type": "Cancel"}) == "Cancel"
    assert followup.declared_replaces({"replaces": [3, "4", True, 5]}) == {3, 5}
    assert followup.declared_replaces({"replaces": 3}) == frozenset()
    first = make_alert("QUAKE-1")
    assert followup.group_update_of({"group_update_of": str(first.key)}) == first.key
    assert followup.group_update_of({"group_update_of": "not a key"}) is None


# --------------------------------------------------------------------------- update / cancel


async def test_an_update_edits_the_message_each_target_received(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    channel = FollowUpRecordingChannel(name="tg")
    first, first_id = await _first_alert_sent(engine, store_alert, channel, ["a", "b"])
    before = await _rows(engine, first_id)

    update_id = await store_alert(
        _alert("QUAKE-1-U", 5, msg_type=MsgType.UPDATE, references=(first,))
    )
    await _plan(engine, update_id, ["a", "b", "c"], text="Sismo: réplica")
    await _dispatch(engine, channel)

    assert sorted(_kinds(channel)) == [
        ("edit", "a", before["a"][1]),
        ("edit", "b", before["b"][1]),
    ]
    assert all(
        f.message is not None and f.message.parts == ("Sismo: réplica",)
        for f in channel.follow_ups_done
    )
    # "c" never saw the first message: it gets a message of its own.
    assert channel.targets == ["a", "b", "c"]
    after = await _rows(engine, update_id)
    assert after["a"] == ("sent", before["a"][1])
    assert after["b"] == ("sent", before["b"][1])
    assert after["c"][0] == "sent" and after["c"][1] not in {before["a"][1], before["b"][1]}


async def test_a_second_update_edits_the_same_message_again(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    channel = FollowUpRecordingChannel(name="tg")
    first, first_id = await _first_alert_sent(engine, store_alert, channel, ["a"])
    original = (await _rows(engine, first_id))["a"][1]
    update = _alert("QUAKE-1-U1", 5, msg_type=MsgType.UPDATE, references=(first,))
    update_id = await store_alert(update)
    await _plan(engine, update_id, ["a"])
    await _dispatch(engine, channel)
    # The issuer names only the first alert again; the story still reaches the first Update.
    second_id = await store_alert(
        _alert("QUAKE-1-U2", 9, msg_type=MsgType.UPDATE, references=(first,))
    )
    await _plan(engine, second_id, ["a"])
    claimed_before = await _rows(engine, second_id)
    assert claimed_before["a"] == ("pending", None)
    await _dispatch(engine, channel)

    assert _kinds(channel) == [("edit", "a", original), ("edit", "a", original)]
    assert (await _rows(engine, second_id))["a"] == ("sent", original)


async def test_a_cancel_replies_to_the_latest_message_of_the_story(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    channel = FollowUpRecordingChannel(name="tg", preferences={"Cancel": "reply"})
    first, first_id = await _first_alert_sent(engine, store_alert, channel, ["a"])
    # This channel sends Updates as new messages, so "a" holds two messages.
    update = _alert("QUAKE-1-U", 5, msg_type=MsgType.UPDATE, references=(first,))
    update_id = await store_alert(update)
    await _plan(engine, update_id, ["a"])
    await _dispatch(engine, channel)
    update_message = (await _rows(engine, update_id))["a"][1]
    assert update_message != (await _rows(engine, first_id))["a"][1]
    assert channel.follow_ups_done == []

    cancel_id = await store_alert(
        _alert("QUAKE-1-C", 9, msg_type=MsgType.CANCEL, references=(first,))
    )
    await _plan(engine, cancel_id, ["a"], text="CANCELADO / CANCELLED")
    await _dispatch(engine, channel)

    assert _kinds(channel) == [("reply", "a", update_message)]
    state, reply_id = (await _rows(engine, cancel_id))["a"]
    assert state == "sent" and reply_id == channel.follow_ups_done[0].provider_message_id


async def test_delete_on_cancel_sends_the_notice_then_deletes_the_warning(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    channel = FollowUpRecordingChannel(name="x", preferences={"Cancel": "delete"})
    first = _alert("QUAKE-1", 0)
    first_id = await store_alert(first)
    await _plan(engine, first_id, ["@feed"], channel="x")
    await _dispatch(engine, channel)
    warning = (await _rows(engine, first_id))["@feed"][1]

    cancel_id = await store_alert(
        _alert("QUAKE-1-C", 9, msg_type=MsgType.CANCEL, references=(first,))
    )
    await _plan(engine, cancel_id, ["@feed"], channel="x", text="CANCELADO / CANCELLED")
    await _dispatch(engine, channel)

    assert [m.message.parts for m in channel.sent] == [("Aviso",), ("CANCELADO / CANCELLED",)]
    assert _kinds(channel) == [("delete", "@feed", warning)]
    assert (await _rows(engine, cancel_id))["@feed"] == (
        "sent",
        channel.sent[1].provider_message_id,
    )


async def test_a_failed_delete_still_counts_the_notice_as_sent(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    channel = FollowUpRecordingChannel(name="x", preferences={"Cancel": "delete"})
    first = _alert("QUAKE-1", 0)
    first_id = await store_alert(first)
    await _plan(engine, first_id, ["@feed"], channel="x")
    await _dispatch(engine, channel)
    channel.fail_follow_up("delete", Transient("503"))

    cancel_id = await store_alert(
        _alert("QUAKE-1-C", 9, msg_type=MsgType.CANCEL, references=(first,))
    )
    await _plan(engine, cancel_id, ["@feed"], channel="x", text="CANCELADO / CANCELLED")
    await _dispatch(engine, channel)

    assert len(channel.sent) == 2
    assert (await _rows(engine, cancel_id))["@feed"][0] == "sent"


# --------------------------------------------------------------------------- plain sends


async def test_a_channel_without_follow_ups_sends_plainly(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    channel = RecordingChannel(name="tg")
    first, first_id = await _first_alert_sent(engine, store_alert, channel, ["a"])
    update_id = await store_alert(
        _alert("QUAKE-1-U", 5, msg_type=MsgType.UPDATE, references=(first,))
    )
    await _plan(engine, update_id, ["a"], text="Sismo: réplica")

    claimed = await ledger.claim(engine, worker="w", channels=["tg"], limit=10, lease_s=60)
    earlier = await followup.earlier_messages(engine, claimed)
    # The earlier message is found; it is the channel that has no follow-up for it.
    assert [(e.alert_id, e.msg_type) for e in earlier.values()] == [(first_id, "Update")]
    assert await ledger.start_attempt(engine, claimed[0].id, worker="w")
    receipt = await followup.send(channel, claimed[0], earlier[claimed[0].id])

    assert [m.message.parts for m in channel.sent] == [("Sismo fuerte",), ("Sismo: réplica",)]
    assert receipt.provider_message_id == channel.sent[1].provider_message_id


async def test_a_follow_up_channel_with_no_choice_for_the_msg_type_sends_plainly(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    channel = FollowUpRecordingChannel(name="tg", preferences={"Cancel": "reply"})
    first, _ = await _first_alert_sent(engine, store_alert, channel, ["a"])
    update_id = await store_alert(
        _alert("QUAKE-1-U", 5, msg_type=MsgType.UPDATE, references=(first,))
    )
    await _plan(engine, update_id, ["a"])
    await _dispatch(engine, channel)

    assert channel.follow_ups_done == []
    assert len(channel.sent) == 2


async def test_earlier_rows_cancelled_or_failed_are_not_followed_up(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    channel = FollowUpRecordingChannel(name="tg")
    channel.fail("b", Permanent("chat not found"))
    first = _alert("QUAKE-1", 0)
    first_id = await store_alert(first)
    await _plan(engine, first_id, ["a", "b"])
    await _dispatch(engine, channel)  # "a" sent, "b" failed
    await _plan(engine, first_id, ["c"])
    await ledger.cancel_for_alert(engine, [first_id], "test", "test")  # "c" cancelled
    assert {t: s for t, (s, _) in (await _rows(engine, first_id)).items()} == {
        "a": "sent",
        "b": "failed",
        "c": "cancelled",
    }

    update_id = await store_alert(
        _alert("QUAKE-1-U", 5, msg_type=MsgType.UPDATE, references=(first,))
    )
    await _plan(engine, update_id, ["a", "b", "c"])
    await _dispatch(engine, channel)

    assert [(f.kind, f.target) for f in channel.follow_ups_done] == [("edit", "a")]
    assert sorted(channel.targets) == ["a", "b", "c"]


async def test_a_message_reported_undelivered_is_not_followed_up(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    channel = FollowUpRecordingChannel(name="tg")
    first, first_id = await _first_alert_sent(engine, store_alert, channel, ["a"])
    pmid = (await _rows(engine, first_id))["a"][1]
    assert pmid is not None
    await record_receipt(engine, channel="tg", provider_message_id=pmid, status="undelivered")

    update_id = await store_alert(
        _alert("QUAKE-1-U", 5, msg_type=MsgType.UPDATE, references=(first,))
    )
    await _plan(engine, update_id, ["a"])
    await _dispatch(engine, channel)

    assert channel.follow_ups_done == []
    assert channel.targets == ["a", "a"]


async def test_an_exercise_never_edits_an_actual_warning(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    channel = FollowUpRecordingChannel(name="tg")
    first, _ = await _first_alert_sent(engine, store_alert, channel, ["a"])
    # Superseded by a real Update, so only the status tells the drill apart.
    await store_alert(_alert("QUAKE-1-U", 3, msg_type=MsgType.UPDATE, references=(first,)))
    drill_id = await store_alert(
        _alert("DRILL-U", 5, msg_type=MsgType.UPDATE, references=(first,), status=Status.EXERCISE)
    )
    await _plan(engine, drill_id, ["a"])
    claimed = await ledger.claim(engine, worker="w", channels=["tg"], limit=10, lease_s=60)

    assert await followup.earlier_messages(engine, claimed) == {}


async def test_another_sender_never_edits_our_warning(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    channel = FollowUpRecordingChannel(name="tg")
    first, _ = await _first_alert_sent(engine, store_alert, channel, ["a"])
    # A legitimate Update supersedes the warning; a foreign one naming it must still not edit it.
    await store_alert(_alert("QUAKE-1-U", 3, msg_type=MsgType.UPDATE, references=(first,)))
    foreign_id = await store_alert(
        _alert(
            "OTHER-U",
            5,
            msg_type=MsgType.UPDATE,
            references=(first,),
            sender="someone.else@example.org",
        )
    )
    await _plan(engine, foreign_id, ["a"])
    claimed = await ledger.claim(engine, worker="w", channels=["tg"], limit=10, lease_s=60)

    assert await followup.earlier_messages(engine, claimed) == {}


async def test_an_update_after_a_cancel_does_not_rewrite_the_cancelled_warning(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    channel = FollowUpRecordingChannel(name="tg")
    first, _ = await _first_alert_sent(engine, store_alert, channel, ["a"])
    await store_alert(_alert("QUAKE-1-C", 3, msg_type=MsgType.CANCEL, references=(first,)))
    late_id = await store_alert(
        _alert("QUAKE-1-U", 5, msg_type=MsgType.UPDATE, references=(first,))
    )
    await _plan(engine, late_id, ["a"])
    claimed = await ledger.claim(engine, worker="w", channels=["tg"], limit=10, lease_s=60)

    assert await followup.earlier_messages(engine, claimed) == {}


async def test_an_update_to_another_channel_or_target_is_a_plain_send(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    telegram = FollowUpRecordingChannel(name="tg")
    mastodon = FollowUpRecordingChannel(name="masto")
    first, _ = await _first_alert_sent(engine, store_alert, telegram, ["a"])
    update_id = await store_alert(
        _alert("QUAKE-1-U", 5, msg_type=MsgType.UPDATE, references=(first,))
    )
    await _plan(engine, update_id, ["a"], channel="masto")
    await _dispatch(engine, mastodon)

    assert mastodon.follow_ups_done == [] and mastodon.targets == ["a"]


async def test_a_routing_group_update_edits_the_group_s_first_message(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    channel = FollowUpRecordingChannel(name="tg")
    first, first_id = await _first_alert_sent(engine, store_alert, channel, ["a", "b"])
    original = await _rows(engine, first_id)
    # An Alert CAP does not link; the routing rules grouped it with the first one.
    grouped_id = await store_alert(_alert("QUAKE-2", 5))
    extra: dict[str, object] = {
        "msg_type": "Alert",
        "replaces": [],
        "group_update_of": str(first.key),
    }
    await _plan(engine, grouped_id, ["a"], extra=extra)
    await _plan(engine, grouped_id, ["b"])  # nothing declared for "b"
    await _dispatch(engine, channel)

    assert _kinds(channel) == [("edit", "a", original["a"][1])]
    assert channel.targets == ["a", "b", "b"]


async def test_declared_replacements_are_checked_like_references(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    channel = FollowUpRecordingChannel(name="tg")
    _, first_id = await _first_alert_sent(engine, store_alert, channel, ["a"])
    # The first alert is still active: naming it does not make this message its update.
    other_id = await store_alert(_alert("QUAKE-2", 5, msg_type=MsgType.UPDATE))
    await _plan(engine, other_id, ["a"], extra={"msg_type": "Update", "replaces": [first_id]})
    claimed = await ledger.claim(engine, worker="w", channels=["tg"], limit=10, lease_s=60)

    assert await followup.earlier_messages(engine, claimed) == {}


async def test_an_ack_follows_up_nothing(engine: AsyncEngine, store_alert: StoreAlert) -> None:
    channel = FollowUpRecordingChannel(name="tg")
    first, _ = await _first_alert_sent(engine, store_alert, channel, ["a"])
    update_id = await store_alert(
        _alert("QUAKE-1-U", 5, msg_type=MsgType.UPDATE, references=(first,))
    )
    # The story does hold a superseded message; declared as an Ack, the message acts on none.
    await _plan(engine, update_id, ["a"], extra={"msg_type": "Ack"})
    claimed = await ledger.claim(engine, worker="w", channels=["tg"], limit=10, lease_s=60)

    assert await followup.earlier_messages(engine, claimed) == {}


# --------------------------------------------------------------------------- errors


async def test_an_edit_refused_for_good_falls_back_to_a_plain_send(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    channel = FollowUpRecordingChannel(name="tg")
    first, _ = await _first_alert_sent(engine, store_alert, channel, ["a"])
    channel.fail_follow_up("edit", Permanent("message can't be edited"))
    update_id = await store_alert(
        _alert("QUAKE-1-U", 5, msg_type=MsgType.UPDATE, references=(first,))
    )
    await _plan(engine, update_id, ["a"], text="Sismo: réplica")
    await _dispatch(engine, channel)

    assert channel.follow_ups_done == []
    assert [m.message.parts for m in channel.sent] == [("Sismo fuerte",), ("Sismo: réplica",)]
    assert (await _rows(engine, update_id))["a"] == ("sent", channel.sent[1].provider_message_id)


async def test_a_reply_refused_for_good_falls_back_to_a_plain_send(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    channel = FollowUpRecordingChannel(name="tg")
    first, _ = await _first_alert_sent(engine, store_alert, channel, ["a"])
    channel.fail_follow_up("reply", Permanent("message to reply not found"))
    cancel_id = await store_alert(
        _alert("QUAKE-1-C", 5, msg_type=MsgType.CANCEL, references=(first,))
    )
    await _plan(engine, cancel_id, ["a"], text="CANCELADO / CANCELLED")
    await _dispatch(engine, channel)

    assert [m.message.parts for m in channel.sent][-1] == ("CANCELADO / CANCELLED",)
    assert (await _rows(engine, cancel_id))["a"][0] == "sent"


@pytest.mark.parametrize(
    ("error", "state"),
    [(Transient("502"), "pending"), (RecipientGone("bot was blocked"), "failed")],
)
async def test_other_follow_up_errors_are_judged_like_send_errors(
    engine: AsyncEngine, store_alert: StoreAlert, error: Exception, state: str
) -> None:
    channel = FollowUpRecordingChannel(name="tg")
    first, _ = await _first_alert_sent(engine, store_alert, channel, ["a"])
    channel.fail_follow_up("edit", error)
    update_id = await store_alert(
        _alert("QUAKE-1-U", 5, msg_type=MsgType.UPDATE, references=(first,))
    )
    await _plan(engine, update_id, ["a"])
    outcomes = await _dispatch(engine, channel)

    assert len(channel.sent) == 1  # no fallback send
    assert [o.error_class for o in outcomes] == [type(error).__name__]
    assert (await _rows(engine, update_id))["a"][0] == state
