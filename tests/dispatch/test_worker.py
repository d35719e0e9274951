"""The worker against a recording fake channel: outcomes per error class, priority, cancel, stop.

No timing assertions: time is a clock the tests move, and ordering is observed
from what the fake channel received.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit
from alertcast.dispatch import ledger
from alertcast.dispatch.retry import RetryPolicy
from alertcast.dispatch.worker import Worker
from alertcast.errors import Permanent, RateLimited, RecipientGone, SentButUnknown, Transient
from alertcast.ports import Channel, OutboundMessage, Receipt
from alertcast.store.tables import deliveries
from alertcast.testing import RecordingChannel, UnlimitedLimiter
from tests.dispatch.conftest import StoreAlert


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def message(severity: str = "Minor") -> OutboundMessage:
    return OutboundMessage(parts=("Aviso",), severity=severity)


async def _rows(engine: AsyncEngine) -> dict[str, tuple[str, int, str | None]]:
    """target -> (state, attempts, last_error_class)."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(
                deliveries.c.target,
                deliveries.c.state,
                deliveries.c.attempts,
                deliveries.c.last_error_class,
            )
        )
        return {r.target: (r.state, int(r.attempts), r.last_error_class) for r in rows}


async def _until_finished(engine: AsyncEngine, alert_ids: list[int]) -> None:
    """Return once no row of the alerts is pending or claimed (bounded, so a bug fails)."""
    for _ in range(20_000):
        counts = [await ledger.progress(engine, alert_id) for alert_id in alert_ids]
        if all(ledger.is_finished(c) for c in counts):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the fan-out never finished: {counts}")


def _worker(
    engine: AsyncEngine,
    channel: Channel,
    limiter: UnlimitedLimiter | None = None,
    **kwargs: object,
) -> Worker:
    return Worker(engine, {channel.name: channel}, limiter or UnlimitedLimiter(), "w1", **kwargs)  # type: ignore[arg-type]


async def test_each_error_class_leads_to_its_state(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    minor = await store_alert()
    severe = await store_alert()
    channel = RecordingChannel()
    channel.fail("transient", Transient("502 Bad Gateway"))
    channel.fail("limited", RateLimited("429 Too Many Requests", retry_after=7))
    channel.fail("refused", Permanent("400 message is too long"))
    channel.fail("gone", RecipientGone("403 bot was blocked by the user"))
    channel.fail("ambiguous", SentButUnknown("timeout after the request was sent"))
    channel.fail("ambiguous-severe", SentButUnknown("timeout"), times=2)
    await ledger.plan(
        engine,
        alert_id=minor,
        channel="fake",
        targets=["ok", "transient", "limited", "refused", "gone", "ambiguous"],
        message=message("Minor"),
        priority=30,
        deadline=None,
    )
    await ledger.plan(
        engine,
        alert_id=severe,
        channel="fake",
        targets=["ambiguous-severe"],
        message=message("Severe"),
        priority=10,
        deadline=None,
    )
    gone: list[tuple[str, str]] = []

    async def deactivate(channel_name: str, target: str) -> None:
        gone.append((channel_name, target))

    clock = Clock()
    limiter = UnlimitedLimiter()
    worker = _worker(engine, channel, limiter, clock=clock, on_recipient_gone=deactivate)

    assert await worker.run_once() == 7
    assert await _rows(engine) == {
        "ok": ("sent", 1, None),
        "transient": ("pending", 1, "Transient"),
        "limited": ("pending", 1, "RateLimited"),
        "refused": ("failed", 1, "Permanent"),
        "gone": ("failed", 1, "RecipientGone"),
        "ambiguous": ("unknown", 1, "SentButUnknown"),
        "ambiguous-severe": ("pending", 1, "SentButUnknown"),
    }
    assert limiter.pauses == [("fake", 7.0)]
    assert gone == [("fake", "gone")]
    assert await worker.run_once() == 0  # the rescheduled rows are not due yet

    clock.advance(600)
    assert await worker.run_once() == 3
    rows = await _rows(engine)
    assert rows["transient"] == ("sent", 2, None)
    assert rows["limited"] == ("sent", 2, None)
    # An ambiguous Severe send is retried once, then left unknown.
    assert rows["ambiguous-severe"] == ("unknown", 2, "SentButUnknown")
    assert channel.targets.count("ok") == 1

    actions = [r.action async for r in audit.iter_records(engine)]
    assert "subscription.deactivate" in actions
    assert actions.count("delivery.outcomes") >= 3
    await audit.verify_chain(engine)


async def test_transient_failures_end_dead_after_max_attempts_or_at_the_deadline(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    alert_id = await store_alert()
    clock = Clock()
    channel = RecordingChannel()
    channel.fail_all(Transient("503"))
    await ledger.plan(
        engine,
        alert_id=alert_id,
        channel="fake",
        targets=["a"],
        message=message(),
        priority=1,
        deadline=None,
        now=clock.now,
    )
    await ledger.plan(
        engine,
        alert_id=alert_id,
        channel="fake",
        targets=["b"],
        message=message(),
        priority=1,
        deadline=clock.now + timedelta(seconds=30),
        now=clock.now,
    )
    policy = RetryPolicy(max_attempts=3, initial_s=60, jitter_s=0)
    worker = _worker(engine, channel, clock=clock, default_policy=policy)

    for _ in range(5):
        await worker.run_once()
        clock.advance(3600)

    rows = await _rows(engine)
    assert rows["a"] == ("dead", 3, "Transient")
    assert rows["b"] == ("dead", 1, "Transient")  # the next try would fall after the deadline
    await audit.verify_chain(engine)


async def test_an_extreme_alert_overtakes_a_routine_backlog(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    routine = await store_alert()
    extreme = await store_alert()
    await ledger.plan(
        engine,
        alert_id=routine,
        channel="fake",
        targets=[f"road-{i}" for i in range(500)],
        message=message(),
        priority=31,
        deadline=None,
    )
    channel = RecordingChannel()
    worker = _worker(engine, channel, batch=50, concurrency=1)
    await worker.run_once()
    await ledger.plan(
        engine,
        alert_id=extreme,
        channel="fake",
        targets=[f"tsunami-{i}" for i in range(20)],
        message=message("Extreme"),
        priority=0,
        deadline=None,
    )

    await worker.run_once()

    next_batch = channel.targets[50:100]
    assert next_batch[:20] == [f"tsunami-{i}" for i in range(20)]
    assert len(channel.sent) == 100


async def test_a_worker_sends_a_whole_fan_out_once_and_stops(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    alert_id = await store_alert()
    targets = [f"chat-{i}" for i in range(300)]
    await ledger.plan(
        engine,
        alert_id=alert_id,
        channel="fake",
        targets=targets,
        message=message(),
        priority=20,
        deadline=None,
    )
    channel = RecordingChannel()
    stop = asyncio.Event()
    worker = _worker(engine, channel, batch=40, concurrency=8, poll_s=0.01)

    async def watch() -> None:
        await _until_finished(engine, [alert_id])
        stop.set()

    await asyncio.gather(worker.run(stop), watch())

    assert sorted(channel.targets) == sorted(targets)
    assert await ledger.progress(engine, alert_id) == {"fake": {"sent": 300}}
    await audit.verify_chain(engine)


async def test_nothing_of_a_cancelled_alert_is_sent_after_the_cancel_commits(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    doomed = await store_alert()
    other = await store_alert()
    for alert_id, prefix in ((doomed, "doomed"), (other, "other")):
        await ledger.plan(
            engine,
            alert_id=alert_id,
            channel="fake",
            targets=[f"{prefix}-{i}" for i in range(200)],
            message=message(),
            priority=20,
            deadline=None,
        )
    started_before_cancel: set[str] = set()
    sends = 0

    async def cancel_midway(target: str) -> None:
        nonlocal sends
        sends += 1
        if sends == 60:
            await ledger.cancel_for_alert(engine, [doomed], "Cancel received", "lifecycle")
            async with engine.connect() as conn:
                rows = await conn.execute(
                    select(deliveries.c.target).where(
                        deliveries.c.alert_id == doomed,
                        deliveries.c.attempt_started_at.is_not(None)
                        | deliveries.c.state.in_(["sent"]),
                    )
                )
                started_before_cancel.update(r.target for r in rows)

    channel = RecordingChannel(before_send=cancel_midway)
    stop = asyncio.Event()
    worker = _worker(engine, channel, batch=25, concurrency=5, poll_s=0.01)

    async def watch() -> None:
        await _until_finished(engine, [doomed, other])
        stop.set()

    await asyncio.gather(worker.run(stop), watch())

    doomed_sent = {t for t in channel.targets if t.startswith("doomed-")}
    assert started_before_cancel  # the cancel did land mid-fan-out
    assert doomed_sent <= started_before_cancel
    counts = await ledger.progress(engine, doomed)
    # "cancelled" is absent when every doomed row had begun before the cancel (a slow machine).
    assert counts["fake"].get("cancelled", 0) == 200 - len(doomed_sent), counts
    assert await ledger.progress(engine, other) == {"fake": {"sent": 200}}
    await audit.verify_chain(engine)


class BlockingLimiter(UnlimitedLimiter):
    """Lets ``allowed`` sends through, then waits forever (a budget that never refills)."""

    def __init__(self, allowed: int, on_blocked: Callable[[], None]) -> None:
        super().__init__()
        self.allowed = allowed
        self.on_blocked = on_blocked

    async def acquire(
        self,
        channel: str,
        *,
        recipient: str | None = None,
        group: str | None = None,
        cost: float = 1.0,
    ) -> None:
        if self.acquired >= self.allowed:
            self.on_blocked()
            await asyncio.Event().wait()
        self.acquired += 1


async def test_stopping_finishes_in_flight_and_releases_the_rest(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    alert_id = await store_alert()
    await ledger.plan(
        engine,
        alert_id=alert_id,
        channel="fake",
        targets=[f"chat-{i}" for i in range(30)],
        message=message(),
        priority=20,
        deadline=None,
    )
    stop = asyncio.Event()
    channel = RecordingChannel()
    worker = _worker(engine, channel, BlockingLimiter(5, stop.set), batch=30, concurrency=4)

    await asyncio.wait_for(worker.run(stop), timeout=60)

    assert len(channel.sent) == 5
    assert await ledger.progress(engine, alert_id) == {"fake": {"pending": 25, "sent": 5}}
    async with engine.connect() as conn:
        owners = (await conn.execute(select(deliveries.c.lease_owner).distinct())).scalars().all()
    assert owners == [None]
    assert "delivery.released" in [r.action async for r in audit.iter_records(engine)]
    await audit.verify_chain(engine)


async def test_a_send_cut_off_at_shutdown_is_recorded_unknown(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    alert_id = await store_alert()
    await ledger.plan(
        engine,
        alert_id=alert_id,
        channel="fake",
        targets=["slow"],
        message=message(),
        priority=20,
        deadline=None,
    )
    stop = asyncio.Event()

    async def hang(target: str) -> None:
        stop.set()
        await asyncio.Event().wait()

    channel = RecordingChannel(before_send=hang)
    worker = _worker(engine, channel, drain_s=0.05)

    await asyncio.wait_for(worker.run(stop), timeout=60)

    assert (await _rows(engine))["slow"] == ("unknown", 1, "SentButUnknown")
    await audit.verify_chain(engine)


async def test_the_worker_drives_the_real_rate_limiter(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    from alertcast.ratelimit import RateLimiter, RateLimits

    alert_id = await store_alert()
    await ledger.plan(
        engine,
        alert_id=alert_id,
        channel="fake",
        targets=[f"chat-{i}" for i in range(40)],
        message=message(),
        priority=20,
        deadline=None,
    )
    channel = RecordingChannel()
    channel.fail("chat-3", RateLimited("429", retry_after=0.01))
    limiter = RateLimiter({"fake": RateLimits(global_per_s=10_000, burst=100)})
    worker = Worker(engine, {"fake": channel}, limiter, "w1", batch=40)

    assert await worker.run_once() == 40

    counts = await ledger.progress(engine, alert_id)
    assert counts == {"fake": {"pending": 1, "sent": 39}}
    assert (await _rows(engine))["chat-3"] == ("pending", 1, "RateLimited")


class FlakyChannel(RecordingChannel):
    """Fails one send in five, at random (seeded), with every error class a provider causes."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        import random

        self._random = random.Random(seed)
        self._errors: list[Exception] = [
            Transient("500 Internal Server Error"),
            Transient("connection reset by peer"),
            Transient("timeout before the request was read"),
            SentButUnknown("timeout after the request was sent"),
            RateLimited("429 Too Many Requests", retry_after=1),
        ]

    async def send(self, message: OutboundMessage, target: str) -> Receipt:
        if self._random.random() < 0.2:
            self.attempts.append(target)
            raise self._random.choice(self._errors)
        return await super().send(message, target)


async def test_with_one_send_in_five_failing_every_row_ends_sent_or_classified(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    alert_id = await store_alert()
    clock = Clock()
    await ledger.plan(
        engine,
        alert_id=alert_id,
        channel="fake",
        targets=[f"chat-{i}" for i in range(400)],
        message=message("Minor"),
        priority=20,
        deadline=None,
        now=clock.now,
    )
    channel = FlakyChannel(seed=5)
    policy = RetryPolicy(max_attempts=4)
    worker = _worker(engine, channel, clock=clock, default_policy=policy, batch=100)

    for _ in range(100):
        if ledger.is_finished(await ledger.progress(engine, alert_id)):
            break
        await worker.run_once()
        clock.advance(600)

    rows = await _rows(engine)
    states = {state for state, _, _ in rows.values()}
    assert states <= {"sent", "unknown", "dead"}
    for target, (state, attempts, error_class) in rows.items():
        assert attempts <= policy.max_attempts + 3, target  # 429s are waited out, not counted
        if state == "unknown":
            assert error_class == "SentButUnknown"
        if state == "dead":
            assert error_class == "Transient" and attempts >= policy.max_attempts
    sent = [t for t, (state, _, _) in rows.items() if state == "sent"]
    assert sorted(channel.targets) == sorted(sent)  # each sent row was sent exactly once
    assert len(sent) > 300
    await audit.verify_chain(engine)


async def test_only_the_few_rows_started_ahead_escape_a_cancel(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    from sqlalchemy import func

    alert_id = await store_alert()
    await ledger.plan(
        engine,
        alert_id=alert_id,
        channel="fake",
        targets=[f"chat-{i}" for i in range(10)],
        message=message(),
        priority=20,
        deadline=None,
    )
    gate = asyncio.Event()

    async def hold(target: str) -> None:
        await gate.wait()

    channel = RecordingChannel(before_send=hold)
    worker = _worker(engine, channel, batch=10, concurrency=2, start_ahead=1, poll_s=0.01)
    stop = asyncio.Event()
    begun_query = (
        select(func.count())
        .select_from(deliveries)
        .where(deliveries.c.attempt_started_at.is_not(None))
    )

    async def begun() -> int:
        async with engine.connect() as conn:
            return int((await conn.execute(begun_query)).scalar_one())

    async def scenario() -> None:
        try:
            for _ in range(2000):
                if await begun() >= 3:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            # Two sends under way, one row started ahead of a free slot, no more.
            assert await begun() == 3
            assert await ledger.cancel_for_alert(engine, [alert_id], "Cancel", "test") == 7
            gate.set()
            await _until_finished(engine, [alert_id])
        finally:
            gate.set()
            stop.set()

    await asyncio.gather(worker.run(stop), scenario())

    assert len(channel.targets) == 3
    assert await ledger.progress(engine, alert_id) == {"fake": {"cancelled": 7, "sent": 3}}
    await audit.verify_chain(engine)


async def test_subscriber_targets_are_resolved_right_before_sending_and_never_stored(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    alert_id = await store_alert()
    await ledger.plan(
        engine,
        alert_id=alert_id,
        channel="fake",
        targets=["sub:1", "sub:2", "sub:3"],
        message=message(),
        priority=0,
        deadline=None,
    )
    asked: list[list[str]] = []

    async def resolve(targets: Sequence[str]) -> dict[str, str]:
        asked.append(list(targets))
        known = {"sub:1": "+525512345678", "sub:2": "+525587654321"}  # sub:3 has left
        return {t: known[t] for t in targets if t in known}

    channel = RecordingChannel()
    await _worker(engine, channel, resolve_addresses=resolve).run_once()

    assert sorted(channel.targets) == ["+525512345678", "+525587654321"]
    assert asked == [["sub:1", "sub:2", "sub:3"]]  # one lookup for the batch
    rows = await _rows(engine)
    assert set(rows) == {"sub:1", "sub:2", "sub:3"}  # the ledger keeps only ids
    assert rows["sub:1"][0] == rows["sub:2"][0] == "sent"
    assert rows["sub:3"] == ("failed", 1, "Permanent")
