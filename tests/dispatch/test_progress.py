"""An alert's delivery progress on both databases: counts, current rate, ETA, finished.

Every figure is read at an injected ``now``, and the rows are moved with the
ledger's own functions at chosen instants, so each expected value is exact.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.config import ChannelConfig
from alertcast.dispatch import ledger
from alertcast.dispatch.ledger import DeliveryState, Outcome
from alertcast.dispatch.progress import (
    AlertNotFound,
    AlertProgress,
    ChannelProgress,
    alert_progress,
    channel_rate_limits,
)
from alertcast.ports import OutboundMessage
from alertcast.store.tables import DELIVERY_STATES
from tests.dispatch.conftest import StoreAlert

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MESSAGE = OutboundMessage(parts=("Sismo fuerte: protéjase",), language="es-MX")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def plan_rows(
    engine: AsyncEngine, alert_id: int, channel: str, count: int, *, when: datetime = T0
) -> None:
    """``count`` pending rows of ``alert_id`` on ``channel``, planned at ``when``."""
    await ledger.plan(
        engine,
        alert_id=alert_id,
        channel=channel,
        targets=[f"{channel}-{alert_id}-{i}" for i in range(count)],
        message=MESSAGE,
        priority=10,
        deadline=None,
        now=when,
    )


async def finish(
    engine: AsyncEngine,
    alert_id: int,
    channel: str,
    count: int,
    state: DeliveryState,
    *,
    when: datetime,
) -> None:
    """Claim ``count`` due rows of ``channel`` and record ``state`` for them at ``when``."""
    claimed = await ledger.claim(
        engine, worker="w", channels=[channel], limit=count, lease_s=3600, now=when
    )
    assert len(claimed) == count
    assert {d.alert_id for d in claimed} == {alert_id}
    outcomes = [Outcome(d.id, alert_id, state) for d in claimed]
    assert len(await ledger.record_outcomes(engine, outcomes, worker="w", now=when)) == count


async def test_counts_per_channel_and_state_with_totals(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    alert_id = await store_alert()
    other = await store_alert()
    await plan_rows(engine, alert_id, "telegram", 10)
    await plan_rows(engine, alert_id, "sms", 4)
    await plan_rows(engine, other, "mastodon", 7)  # another alert's rows are not counted
    await finish(engine, alert_id, "telegram", 5, DeliveryState.SENT, when=at(10))
    await finish(engine, alert_id, "telegram", 2, DeliveryState.DEAD, when=at(20))
    await ledger.claim(engine, worker="w", channels=["sms"], limit=1, lease_s=600, now=at(25))

    progress = await alert_progress(engine, alert_id, now=at(30))

    assert [c.channel for c in progress.channels] == ["sms", "telegram"]
    sms, telegram = progress.channels
    assert sms.counts == {"pending": 3, "claimed": 1}
    assert (sms.total, sms.done, sms.remaining, sms.finished) == (4, 0, 4, False)
    assert telegram.counts == {"pending": 3, "sent": 5, "dead": 2}
    assert (telegram.total, telegram.done, telegram.remaining) == (10, 7, 3)
    assert progress.counts == {"pending": 6, "claimed": 1, "sent": 5, "dead": 2}
    assert (progress.total, progress.done, progress.remaining) == (14, 7, 7)
    assert progress.fraction == pytest.approx(0.5)
    assert not progress.finished
    assert progress.channel("telegram") is telegram and progress.channel("fax") is None


async def test_json_has_every_state_and_counts_only(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    alert_id = await store_alert()
    await plan_rows(engine, alert_id, "telegram", 3)
    await finish(engine, alert_id, "telegram", 1, DeliveryState.SENT, when=at(10))

    body = (await alert_progress(engine, alert_id, now=at(20))).to_json()

    assert body["alert_id"] == alert_id
    assert body["at"] == at(20).isoformat()
    assert body["window_s"] == 60.0
    assert body["finished"] is False
    channel = body["channels"][0]
    assert list(channel["counts"]) == list(DELIVERY_STATES)
    assert channel["counts"]["sent"] == 1 and channel["counts"]["pending"] == 2
    assert (channel["total"], channel["done"], channel["remaining"]) == (3, 1, 2)
    assert channel["rate_per_s"] == 0.1  # one row over the 10 s since the first send
    assert channel["eta_s"] == 20.0
    assert channel["oldest_pending_age_s"] == 20.0
    assert body["totals"]["counts"] == channel["counts"]
    assert body["totals"]["eta_s"] == 20.0
    assert "telegram-" not in repr(body), "no target is ever part of the figures"


async def test_rate_counts_rows_finished_in_the_window_only(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    alert_id = await store_alert()
    await plan_rows(engine, alert_id, "telegram", 100)
    await finish(engine, alert_id, "telegram", 30, DeliveryState.SENT, when=at(10))  # too old
    await finish(engine, alert_id, "telegram", 12, DeliveryState.SENT, when=at(80))
    await finish(engine, alert_id, "telegram", 4, DeliveryState.FAILED, when=at(100))
    await finish(engine, alert_id, "telegram", 2, DeliveryState.UNKNOWN, when=at(120))
    await finish(engine, alert_id, "telegram", 6, DeliveryState.SENT, when=at(200))  # after now

    progress = await alert_progress(engine, alert_id, now=at(130), window_s=60)
    (telegram,) = progress.channels
    # 18 rows in (70, 130]; the window covers 50 s, from the first of them to now.
    assert telegram.rate_per_s == pytest.approx(18 / 50)
    assert progress.rate_per_s == pytest.approx(18 / 50)

    # A window wider than the fan-out's history counts all of it, over its true span.
    wide = await alert_progress(engine, alert_id, now=at(130), window_s=600)
    assert wide.channels[0].rate_per_s == pytest.approx(48 / 120)

    # Nothing finished in the window: the rate is zero, whatever happened before.
    later = await alert_progress(engine, alert_id, now=at(400), window_s=60)
    assert later.channels[0].rate_per_s == 0.0


async def test_a_fan_out_that_just_began_shows_its_real_speed(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    alert_id = await store_alert()
    await plan_rows(engine, alert_id, "sms", 1000)
    await finish(engine, alert_id, "sms", 100, DeliveryState.SENT, when=at(1))
    await finish(engine, alert_id, "sms", 100, DeliveryState.SENT, when=at(3))

    progress = await alert_progress(engine, alert_id, now=at(5), window_s=60)
    # 200 rows in the 4 s since the first: 50/s, not 200/60.
    assert progress.channels[0].rate_per_s == pytest.approx(50.0)
    assert progress.channels[0].eta_s == pytest.approx(800 / 50)

    # Rows finished a moment ago are measured over at least one second.
    instant = await alert_progress(engine, alert_id, now=at(3.1), window_s=1.5)
    assert instant.channels[0].rate_per_s == pytest.approx(100.0)


async def test_cancelled_rows_are_done_but_not_in_the_rate(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    alert_id = await store_alert()
    await plan_rows(engine, alert_id, "telegram", 10)
    await finish(engine, alert_id, "telegram", 4, DeliveryState.DELIVERED, when=at(10))
    await ledger.cancel_for_alert(engine, [alert_id], "Cancel received", "test", now=at(12))

    progress = await alert_progress(engine, alert_id, now=at(14))
    (telegram,) = progress.channels
    assert telegram.counts == {"delivered": 4, "cancelled": 6}
    assert (telegram.done, telegram.remaining) == (10, 0)
    assert telegram.rate_per_s == pytest.approx(4 / 4)
    assert telegram.finished and progress.finished
    assert telegram.eta_s == 0.0 and progress.eta_s == 0.0
    assert telegram.oldest_pending_age_s is None and progress.oldest_pending_age_s is None


async def test_eta_from_the_rate_or_the_channel_limit(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    alert_id = await store_alert()
    await plan_rows(engine, alert_id, "telegram", 100)
    await plan_rows(engine, alert_id, "sms", 50)

    # Before any send: no rate, so the ETA is known only where the limit is.
    before = await alert_progress(engine, alert_id, now=at(1), limits={"sms": 10.0})
    sms = before.channel("sms")
    telegram = before.channel("telegram")
    assert sms is not None and telegram is not None
    assert sms.rate_per_s == 0.0 and sms.eta_s == pytest.approx(5.0)
    assert sms.rate_limit_per_s == 10.0
    assert telegram.eta_s is None
    assert before.eta_s is None, "the alert's ETA is unknown while one channel's is"

    # Sending: ETA = remaining / rate; the limit caps a rate measured in a burst.
    await finish(engine, alert_id, "telegram", 20, DeliveryState.SENT, when=at(2))
    await finish(engine, alert_id, "sms", 30, DeliveryState.SENT, when=at(2))
    during = await alert_progress(engine, alert_id, now=at(6), limits={"sms": 5.0})
    telegram = during.channel("telegram")
    sms = during.channel("sms")
    assert telegram is not None and sms is not None
    assert telegram.rate_per_s == pytest.approx(5.0)
    assert telegram.eta_s == pytest.approx(80 / 5.0)
    assert sms.rate_per_s == pytest.approx(7.5)
    assert sms.eta_s == pytest.approx(20 / 5.0)
    assert during.rate_per_s == pytest.approx(12.5)
    assert during.eta_s == pytest.approx(16.0), "channels send in parallel: the slowest one"

    # Sent, then stalled: no rate in the window, and the limit promises nothing.
    stalled = await alert_progress(engine, alert_id, now=at(300), limits={"sms": 5.0})
    assert [c.eta_s for c in stalled.channels] == [None, None]
    assert stalled.eta_s is None


async def test_oldest_waiting_row_age(engine: AsyncEngine, store_alert: StoreAlert) -> None:
    alert_id = await store_alert()
    await plan_rows(engine, alert_id, "telegram", 2, when=T0)
    await plan_rows(engine, alert_id, "sms", 2, when=at(40))
    await ledger.claim(engine, worker="w", channels=["telegram"], limit=2, lease_s=600, now=at(50))

    progress = await alert_progress(engine, alert_id, now=at(100))
    sms, telegram = progress.channels
    assert telegram.oldest_pending_age_s == pytest.approx(100.0), "claimed rows still wait"
    assert sms.oldest_pending_age_s == pytest.approx(60.0)
    assert progress.oldest_pending_age_s == pytest.approx(100.0)


async def test_the_same_now_gives_the_same_figures(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    alert_id = await store_alert()
    await plan_rows(engine, alert_id, "telegram", 9)
    await finish(engine, alert_id, "telegram", 3, DeliveryState.SENT, when=at(7))
    first = await alert_progress(engine, alert_id, now=at(11), limits={"telegram": 30.0})
    second = await alert_progress(engine, alert_id, now=at(11), limits={"telegram": 30.0})
    assert first == second
    assert first.to_json() == second.to_json()


async def test_an_alert_without_deliveries_is_finished_and_a_missing_one_is_not_found(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    alert_id = await store_alert()
    empty = await alert_progress(engine, alert_id, now=T0)
    assert empty.channels == ()
    assert (empty.total, empty.finished, empty.eta_s, empty.rate_per_s) == (0, True, 0.0, 0.0)

    with pytest.raises(AlertNotFound) as raised:
        await alert_progress(engine, alert_id + 1000, now=T0)
    assert raised.value.alert_id == alert_id + 1000

    with pytest.raises(ValueError, match="window_s"):
        await alert_progress(engine, alert_id, now=T0, window_s=0)


def test_a_channel_with_no_rows_left_is_finished() -> None:
    done = ChannelProgress("x", {"sent": 2}, 2, 2, 0.0, 0.0, None)
    waiting = ChannelProgress("y", {"pending": 1}, 1, 0, 0.0, None, 3.0)
    progress = AlertProgress(1, T0, 60.0, (done, waiting))
    assert done.finished and done.fraction == 1.0
    assert not waiting.finished and waiting.fraction == 0.0
    assert not progress.finished and progress.eta_s is None


def test_limits_come_from_the_enabled_channels_configuration() -> None:
    channels = [
        ChannelConfig("bot", "telegram", file=Path("bot.toml"), options={"rate_per_s": 12}),
        ChannelConfig("off", "telegram", file=Path("off.toml"), enabled=False),
    ]
    assert channel_rate_limits(channels) == {"bot": 12.0}
