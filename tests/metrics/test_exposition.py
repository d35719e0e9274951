"""The exposition: every figure the operators' guide names, with its labels, read right.

The database figures are checked against rows the test wrote itself, so each
count is known: deliveries by channel and state, the queue of due rows,
approvals pending, the audit chain's length and each feed's staleness.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import __version__, audit
from alertcast.dispatch import ledger
from alertcast.metrics import SEND_OUTCOMES, Metrics, metrics, send_outcome
from alertcast.ports import OutboundMessage
from alertcast.store.engine import make_engine
from alertcast.store.tables import DELIVERY_STATES, alerts, deliveries, dispatch_routes, feed_state
from tests.metrics.conftest import label_sets, samples, store_alert, value

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

SPEC = {
    "alertcast_info": {"version", "roles"},
    "alertcast_deliveries": {"channel", "state"},
    "alertcast_send_seconds_bucket": {"channel", "outcome", "le"},
    "alertcast_send_seconds_count": {"channel", "outcome"},
    "alertcast_send_seconds_sum": {"channel", "outcome"},
    "alertcast_queue_depth": {"channel"},
    "alertcast_queue_oldest_pending_seconds": {"channel"},
    "alertcast_rate_limiter_wait_seconds_bucket": {"channel", "le"},
    "alertcast_rate_limiter_wait_seconds_count": {"channel"},
    "alertcast_rate_limiter_wait_seconds_sum": {"channel"},
    "alertcast_provider_throttled_total": {"channel", "provider"},
    "alertcast_feed_polls_total": {"feed", "result"},
    "alertcast_feed_staleness_seconds": {"feed"},
    "alertcast_approvals_pending": set(),
    "alertcast_audit_records": set(),
    "alertcast_database_up": set(),
}
"""Each metric of the interface and the label names its samples carry."""


async def _plan(engine: AsyncEngine, alert_id: int, channel: str, targets: list[str]) -> None:
    await ledger.plan(
        engine,
        alert_id=alert_id,
        channel=channel,
        targets=targets,
        message=OutboundMessage(parts=("Aviso de prueba",), severity="Minor"),
        priority=30,
        deadline=None,
        now=NOW - timedelta(seconds=90),
    )


async def _set_states(engine: AsyncEngine, channel: str, states: dict[str, str]) -> None:
    async with engine.begin() as conn:
        for target, state in states.items():
            await conn.execute(
                update(deliveries)
                .where(deliveries.c.channel == channel, deliveries.c.target == target)
                .values(state=state)
            )


async def _route(engine: AsyncEngine, alert_id: int, state: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(dispatch_routes).values(
                alert_id=alert_id,
                route="all",
                channel="tg",
                state=state,
                approval="one",
                decision="{}",
                created_at=NOW,
                updated_at=NOW,
            )
        )


async def _alert_state(engine: AsyncEngine, alert_id: int, state: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(update(alerts).where(alerts.c.id == alert_id).values(state=state))


async def test_every_figure_appears_with_its_labels_and_the_database_counts(
    engine: AsyncEngine,
) -> None:
    first = await store_alert(engine)
    await _plan(
        engine,
        first,
        "sms",
        ["+5215500000001", "+5215500000002", "+5215500000003", "+5215500000004"],
    )
    await _plan(engine, first, "tg", ["@canal"])
    await _set_states(engine, "sms", {"+5215500000002": "sent", "+5215500000003": "failed"})
    await _set_states(engine, "tg", {"@canal": "delivered"})
    async with engine.begin() as conn:
        # Due for 30 s: in the queue.
        await conn.execute(
            update(deliveries)
            .where(deliveries.c.target == "+5215500000001")
            .values(next_attempt_at=NOW - timedelta(seconds=30))
        )
        # A retry not yet due: pending, but not in the queue.
        await conn.execute(
            update(deliveries)
            .where(deliveries.c.target == "+5215500000004")
            .values(next_attempt_at=NOW + timedelta(seconds=60), attempts=1)
        )

    submitted, held, planned, cancelled = [await store_alert(engine) for _ in range(4)]
    await _alert_state(engine, submitted, "submitted")
    await _route(engine, held, "awaiting_approval")
    await _route(engine, planned, "planned")
    await _route(engine, cancelled, "awaiting_approval")
    await _alert_state(engine, cancelled, "cancelled")

    async with engine.begin() as conn:
        await conn.execute(
            insert(feed_state),
            [
                {"feed": "sismos", "last_success_at": NOW - timedelta(seconds=75)},
                {"feed": "nunca", "last_success_at": None, "consecutive_failures": 3},
            ],
        )

    m = Metrics(roles=["worker", "web"], wall=lambda: NOW)
    m.observe_send("sms", 0.2, "ok")
    m.rate_wait("sms", 0.5)
    m.throttled("sms", "sms")
    m.feed_polled("sismos", "changed")
    await m.refresh_from_database(engine)
    found = samples(m.render())

    for name, labels in SPEC.items():
        sets = label_sets(found, name)
        assert sets, f"{name} is missing"
        assert sets == {frozenset(labels)}, (name, sets)

    assert value(found, "alertcast_info", version=__version__, roles="web,worker") == 1
    assert value(found, "alertcast_database_up") == 1

    for state in DELIVERY_STATES:  # every state, zeros included, for each channel
        assert value(found, "alertcast_deliveries", channel="sms", state=state) is not None
    assert value(found, "alertcast_deliveries", channel="sms", state="pending") == 2
    assert value(found, "alertcast_deliveries", channel="sms", state="sent") == 1
    assert value(found, "alertcast_deliveries", channel="sms", state="failed") == 1
    assert value(found, "alertcast_deliveries", channel="sms", state="claimed") == 0
    assert value(found, "alertcast_deliveries", channel="tg", state="delivered") == 1

    assert value(found, "alertcast_queue_depth", channel="sms") == 1
    assert value(found, "alertcast_queue_oldest_pending_seconds", channel="sms") == 30
    # A channel with rows but nothing due reads 0, not absent.
    assert value(found, "alertcast_queue_depth", channel="tg") == 0
    assert value(found, "alertcast_queue_oldest_pending_seconds", channel="tg") == 0

    assert value(found, "alertcast_approvals_pending") == 2  # submitted + active and held
    chain = [record async for record in audit.iter_records(engine)]
    assert chain
    assert value(found, "alertcast_audit_records") == len(chain) == chain[-1].seq

    assert value(found, "alertcast_feed_staleness_seconds", feed="sismos") == 75
    assert value(found, "alertcast_feed_staleness_seconds", feed="nunca") is None

    assert value(found, "alertcast_send_seconds_count", channel="sms", outcome="ok") == 1
    assert value(found, "alertcast_send_seconds_sum", channel="sms", outcome="ok") == 0.2
    assert value(found, "alertcast_rate_limiter_wait_seconds_sum", channel="sms") == 0.5
    assert value(found, "alertcast_provider_throttled_total", channel="sms", provider="sms") == 1
    assert value(found, "alertcast_feed_polls_total", feed="sismos", result="changed") == 1

    # No target appears anywhere in the exposition.
    body = m.render().decode()
    assert "+5215500000001" not in body
    assert "@canal" not in body


async def test_figures_are_cached_for_a_moment_then_read_again(engine: AsyncEngine) -> None:
    now = [100.0]
    m = Metrics(clock=lambda: now[0], cache_s=2.0)
    alert_id = await store_alert(engine)
    await _plan(engine, alert_id, "sms", ["+5215500000001"])
    await m.refresh_from_database(engine)
    assert value(samples(m.render()), "alertcast_queue_depth", channel="sms") == 1

    await _plan(engine, alert_id, "sms", ["+5215500000002"])
    now[0] += 1.0
    await m.refresh_from_database(engine)
    assert value(samples(m.render()), "alertcast_queue_depth", channel="sms") == 1  # cached

    now[0] += 1.5
    await m.refresh_from_database(engine)
    assert value(samples(m.render()), "alertcast_queue_depth", channel="sms") == 2


async def test_a_slow_read_is_kept_longer_so_scrapes_never_load_the_database(
    engine: AsyncEngine,
) -> None:
    # The clock reads: start of a read that takes 1 s, its end, then scrapes at 105 and 111.5.
    ticks = iter([100.0, 101.0, 101.0, 105.0, 111.5, 111.5, 111.5])
    m = Metrics(clock=lambda: next(ticks), cache_s=2.0, busy_factor=10.0)
    alert_id = await store_alert(engine)
    await _plan(engine, alert_id, "sms", ["+5215500000001"])
    await m.refresh_from_database(engine)
    await _plan(engine, alert_id, "sms", ["+5215500000002"])
    await m.refresh_from_database(engine)  # 4 s after a 1 s read: still kept (10 s)
    assert value(samples(m.render()), "alertcast_queue_depth", channel="sms") == 1
    await m.refresh_from_database(engine)  # 10.5 s after: read again
    assert value(samples(m.render()), "alertcast_queue_depth", channel="sms") == 2


async def test_only_configured_feeds_are_reported_stale_when_they_are_known(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(feed_state),
            [
                {"feed": "sismos", "last_success_at": NOW - timedelta(seconds=5)},
                {"feed": "retirado", "last_success_at": NOW - timedelta(days=40)},
            ],
        )
    m = Metrics(wall=lambda: NOW, feeds=["sismos"])
    await m.refresh_from_database(engine)
    found = samples(m.render())
    assert value(found, "alertcast_feed_staleness_seconds", feed="sismos") == 5
    assert value(found, "alertcast_feed_staleness_seconds", feed="retirado") is None

    m.set_feeds(None)
    await m.refresh_from_database(engine)
    found = samples(m.render())
    assert value(found, "alertcast_feed_staleness_seconds", feed="retirado") == 40 * 86400


async def test_an_unreadable_database_drops_its_figures_but_not_the_counters(
    tmp_path: Path,
) -> None:
    unmigrated = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        m = Metrics()
        m.feed_polled("sismos", "failed")
        await m.refresh_from_database(unmigrated)
        found = samples(m.render())
    finally:
        await unmigrated.dispose()
    assert value(found, "alertcast_database_up") == 0
    assert value(found, "alertcast_feed_polls_total", feed="sismos", result="failed") == 1
    assert not label_sets(found, "alertcast_queue_depth")
    assert not label_sets(found, "alertcast_deliveries")


def test_outcome_labels_come_from_a_fixed_set() -> None:
    assert send_outcome(None) == "ok"
    assert send_outcome("RateLimited") == "rate_limited"
    assert send_outcome("SentButUnknown") == "sent_but_unknown"
    assert send_outcome("KeyError") == "other"  # an adapter's bug never names a label
    assert {send_outcome(c) for c in (None, "Transient", "Permanent", "RecipientGone")} <= set(
        SEND_OUTCOMES
    )
    m = Metrics()
    try:
        m.observe_send("sms", 0.1, "429 Too Many Requests from +5215500000001")
    except ValueError:
        pass
    else:
        raise AssertionError("a free-text outcome was accepted as a label")
    assert "Too Many" not in m.render().decode()


def test_each_metrics_has_its_own_registry_and_the_process_has_one() -> None:
    a, b = Metrics(), Metrics()
    a.feed_polled("sismos", "changed")
    polls = {"feed": "sismos", "result": "changed"}
    assert value(samples(a.render()), "alertcast_feed_polls_total", **polls) == 1
    assert value(samples(b.render()), "alertcast_feed_polls_total", **polls) is None
    assert metrics() is metrics()
