"""Role leases on SQLite and PostgreSQL: one holder at a time, renewal, expiry, release, loss."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.errors import StoreError
from alertcast.ha.leases import RoleLease, all_leases
from alertcast.store.engine import make_engine
from alertcast.store.tables import role_leases
from tests.clocks import HandClock

NAME = "bot:ciudadanos"
WAIT_S = 15.0
"""How long a test waits for something that should happen within a few lease periods."""


@dataclass
class Clock(HandClock):
    """A wall clock the lease tests move by hand, starting on a December morning."""

    now: datetime = field(default_factory=lambda: datetime(2026, 12, 6, 9, 0, tzinfo=UTC))


async def owner_of(engine: AsyncEngine, name: str = NAME) -> str | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(select(role_leases.c.owner).where(role_leases.c.name == name))
        ).first()
    return row.owner if row is not None else None


def pair(engine: AsyncEngine, clock: Clock, **timing: float) -> tuple[RoleLease, RoleLease]:
    options = {"ttl_s": 15.0, "renew_every_s": 5.0, **timing}
    return (
        RoleLease(engine, NAME, "instance-a", clock=clock, **options),
        RoleLease(engine, NAME, "instance-b", clock=clock, **options),
    )


async def test_of_two_owners_one_wins_and_the_other_is_refused(engine: AsyncEngine) -> None:
    a, b = pair(engine, Clock())
    assert await a.try_acquire() is True
    assert await b.try_acquire() is False
    assert (a.held, b.held) == (True, False)
    assert await owner_of(engine) == "instance-a"
    assert await a.try_acquire() is True  # taking it again is renewing it


async def test_racing_owners_on_separate_connections_are_granted_it_exactly_once(
    database_url: str, engine: AsyncEngine
) -> None:
    engines = [make_engine(database_url) for _ in range(4)]
    clock = Clock()
    try:
        for round_number in range(5):
            name = f"bot:race-{round_number}"
            leases = [RoleLease(e, name, f"owner-{i}", clock=clock) for i, e in enumerate(engines)]
            granted = await asyncio.gather(*(lease.try_acquire() for lease in leases))
            winners = [lease.owner for lease, won in zip(leases, granted, strict=True) if won]
            assert len(winners) == 1
            assert await owner_of(engine, name) == winners[0]
            assert sum(lease.held for lease in leases) == 1
    finally:
        for other in engines:
            await other.dispose()


async def test_renewing_extends_the_lease_and_keeps_when_it_was_acquired(
    engine: AsyncEngine,
) -> None:
    clock = Clock()
    a, b = pair(engine, clock)
    assert await a.try_acquire()
    first = await a.holder()
    clock.advance(4)
    assert await a.renew() is True
    renewed = await a.holder()
    assert first is not None and renewed is not None
    assert renewed.acquired_at == first.acquired_at
    assert renewed.renewed_at == clock.now
    assert renewed.expires_at == clock.now + timedelta(seconds=15)
    assert a.expires_at == renewed.expires_at
    clock.advance(14)  # past the first expiry, within the renewed one
    assert await b.try_acquire() is False
    assert await owner_of(engine) == "instance-a"


async def test_an_expired_lease_goes_to_the_other_and_the_old_holder_s_renewal_fails(
    engine: AsyncEngine,
) -> None:
    clock = Clock()
    a, b = pair(engine, clock)
    assert await a.try_acquire()
    clock.advance(14)
    assert await b.try_acquire() is False  # one second left
    clock.advance(1)
    assert await b.try_acquire() is True
    taken = await b.holder()
    assert taken is not None and taken.owner == "instance-b"
    assert taken.acquired_at == clock.now  # a new owner: a new acquisition time
    assert await a.renew() is False
    assert a.held is False and a.expires_at is None
    assert await owner_of(engine) == "instance-b"


async def test_a_renewal_after_someone_else_took_it_returns_false_and_changes_nothing(
    engine: AsyncEngine,
) -> None:
    clock = Clock()
    a, b = pair(engine, clock)
    assert await a.try_acquire()
    await a.release()
    assert await b.try_acquire()
    before = await b.holder()
    clock.advance(1)
    assert await a.renew() is False
    assert await b.holder() == before


async def test_a_released_lease_is_taken_by_the_other_at_once(engine: AsyncEngine) -> None:
    clock = Clock()
    a, b = pair(engine, clock)
    assert await a.try_acquire()
    await a.release()
    assert a.held is False
    released = await a.holder()
    assert released is not None and released.owner is None
    assert await b.try_acquire() is True  # no time has passed
    assert await owner_of(engine) == "instance-b"
    await a.release()  # releasing what another holds does nothing
    assert await owner_of(engine) == "instance-b"


async def test_a_holder_that_cannot_renew_stops_trusting_its_lease_before_it_runs_out(
    engine: AsyncEngine,
) -> None:
    clock = Clock()
    a, b = pair(engine, clock)
    assert await a.try_acquire()
    clock.advance(9)
    assert a.held is True
    clock.advance(1)  # five seconds (one renewal period) left: no longer to be trusted
    assert a.held is False
    assert await b.try_acquire() is False  # yet nobody else may take it before it runs out


async def test_leases_are_listed_by_name(engine: AsyncEngine) -> None:
    clock = Clock()
    for name, owner in (("bot:b", "instance-b"), ("bot:a", "instance-a")):
        assert await RoleLease(engine, name, owner, clock=clock).try_acquire()
    listed = await all_leases(engine)
    assert [(lease.name, lease.owner) for lease in listed] == [
        ("bot:a", "instance-a"),
        ("bot:b", "instance-b"),
    ]


def test_a_time_to_live_shorter_than_two_renewals_is_refused(engine: AsyncEngine) -> None:
    with pytest.raises(ValueError, match="at least twice"):
        RoleLease(engine, NAME, "x", ttl_s=5, renew_every_s=3)
    with pytest.raises(ValueError, match="positive"):
        RoleLease(engine, NAME, "x", ttl_s=5, renew_every_s=0)


# --------------------------------------------------------------------------- hold()


class Part:
    """A part run under a lease (a bot's consumer): records starts and stops."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.running = False
        self.events: list[str] = []
        self.changed = asyncio.Event()

    async def start(self) -> None:
        self.running = True
        self.events.append("start")
        self.changed.set()

    async def stop(self) -> None:
        self.running = False
        self.events.append("stop")
        self.changed.set()


async def until(predicate: object, what: str) -> None:
    assert callable(predicate)
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.01)


def counting(lease: RoleLease, method: str, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record each call of ``lease.<method>`` (and its result), still calling through."""
    calls: list[object] = []
    original = getattr(lease, method)

    async def counted() -> object:
        result = await original()
        calls.append(result)
        return result

    monkeypatch.setattr(lease, method, counted)
    return calls


async def test_hold_runs_the_part_on_one_instance_and_hands_it_over_on_a_clean_stop(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A long time to live: the standby can only take over this soon if the lease is released.
    a = RoleLease(engine, NAME, "instance-a", ttl_s=600, renew_every_s=0.05)
    b = RoleLease(engine, NAME, "instance-b", ttl_s=600, renew_every_s=0.05)
    part_a, part_b = Part("a"), Part("b")
    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    tries_b = counting(b, "try_acquire", monkeypatch)
    renewals_a = counting(a, "renew", monkeypatch)
    task_a = asyncio.create_task(a.hold(stop_a, part_a.start, part_a.stop))
    await until(lambda: part_a.running, "instance A to take the lease")
    task_b = asyncio.create_task(b.hold(stop_b, part_b.start, part_b.stop))
    try:
        await until(lambda: len(tries_b) >= 3, "instance B to try several times")
        await until(lambda: len(renewals_a) >= 3, "instance A to renew several times")
        assert tries_b[:3] == [False, False, False]
        assert all(renewals_a)
        assert (part_a.running, part_b.running) == (True, False)
        assert part_b.events == []

        stop_a.set()
        await task_a
        assert part_a.events == ["start", "stop"]
        await until(lambda: part_b.running, "instance B to take over")
        assert await owner_of(engine) == "instance-b"
        assert part_a.running is False
    finally:
        stop_a.set()
        stop_b.set()
        await asyncio.gather(task_a, task_b)
    assert part_b.events == ["start", "stop"]
    released = await b.holder()
    assert released is not None and released.owner is None


async def test_a_standby_takes_over_when_the_holder_dies_without_a_word(
    engine: AsyncEngine,
) -> None:
    dead = RoleLease(engine, NAME, "instance-a", ttl_s=0.4, renew_every_s=0.1)
    assert await dead.try_acquire()  # ... and the instance dies: no renewal, no release
    standby = RoleLease(engine, NAME, "instance-b", ttl_s=0.4, renew_every_s=0.1)
    part = Part("b")
    stop = asyncio.Event()
    task = asyncio.create_task(standby.hold(stop, part.start, part.stop))
    try:
        await until(lambda: part.running, "the standby to take over")
        assert await owner_of(engine) == "instance-b"
        assert standby.held
    finally:
        stop.set()
        await task


async def test_a_holder_whose_lease_was_taken_stops_its_part_at_once(
    engine: AsyncEngine,
) -> None:
    clock = Clock()
    holder = RoleLease(engine, NAME, "instance-a", ttl_s=15, renew_every_s=0.05, clock=clock)
    part = Part("a")
    stop = asyncio.Event()
    task = asyncio.create_task(holder.hold(stop, part.start, part.stop))
    try:
        await until(lambda: part.running, "the lease to be taken")
        # Another instance whose clock says the lease ran out (the holder stalled) takes it.
        later = Clock(clock.now + timedelta(seconds=16))
        other = RoleLease(engine, NAME, "instance-b", ttl_s=15, renew_every_s=5, clock=later)
        assert await other.try_acquire()
        await until(lambda: not part.running, "the holder to stop its part")
        assert part.events == ["start", "stop"]
        assert holder.held is False
        assert await owner_of(engine) == "instance-b"
    finally:
        stop.set()
        await task
    assert part.events == ["start", "stop"]  # not stopped twice, not restarted
    assert await owner_of(engine) == "instance-b"  # the end released nothing of B's


async def test_a_holder_that_cannot_reach_the_database_stops_its_part_before_expiry(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    holder = RoleLease(engine, NAME, "instance-a", ttl_s=10, renew_every_s=0.05, clock=clock)
    part = Part("a")
    stop = asyncio.Event()
    task = asyncio.create_task(holder.hold(stop, part.start, part.stop))
    failures: list[str] = []
    try:
        await until(lambda: part.running, "the lease to be taken")
        expires = holder.expires_at
        assert expires is not None

        async def unreachable() -> bool:
            failures.append("renew")
            raise StoreError("cannot renew the lease bot:ciudadanos: connection refused")

        monkeypatch.setattr(holder, "renew", unreachable)
        await until(lambda: len(failures) >= 3, "several failed renewals")
        assert part.running is True  # with time to spare, the holder keeps trying
        clock.advance(9.96)  # less than one renewal period left before the lease runs out
        await until(lambda: not part.running, "the holder to give its part up")
        assert clock.now < expires  # stopped before anyone else could take over
        assert part.events == ["start", "stop"]
    finally:
        stop.set()
        await task


async def test_a_part_that_fails_to_start_is_stopped_and_its_lease_released(
    engine: AsyncEngine,
) -> None:
    lease = RoleLease(engine, NAME, "instance-a", ttl_s=600, renew_every_s=0.05)
    stops: list[str] = []
    attempts: list[str] = []
    stop = asyncio.Event()

    async def failing_start() -> None:
        attempts.append("start")
        if len(attempts) >= 2:
            stop.set()
        raise RuntimeError("Telegram is unreachable")

    async def record_stop() -> None:
        stops.append("stop")

    await asyncio.wait_for(lease.hold(stop, failing_start, record_stop), timeout=WAIT_S)
    assert attempts == ["start", "start"]  # tried again, the loop went on
    assert stops == ["stop", "stop"]
    released = await lease.holder()
    assert released is not None and released.owner is None
