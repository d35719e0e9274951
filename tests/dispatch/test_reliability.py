"""The worker, the ledger and the real webhook channel against a provider that misbehaves.

Three promises are checked end to end, over HTTP:

* With a fifth of the requests failing in every way a provider fails (500,
  429, timeouts before and after accepting, reset connections), every row
  ends ``sent`` or ``unknown``, each attempt is classified as the fault
  deserves, and the provider's own record agrees with the ledger: nothing
  ``sent`` is missing there, and a message arrives twice only where an
  ambiguous outcome allowed a second attempt.
* Worker processes killed with SIGKILL mid-fan-out lose nothing, and every
  message delivered twice is one whose send had started when its worker died
  (the audit trail lists it under ``reclaimed_after_send_started``).
* On PostgreSQL two workers share a fan-out without sending any row twice,
  and when one is killed the other finishes its rows.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit, lifecycle
from alertcast.channels.webhook import WebhookChannel, idempotency_key
from alertcast.dispatch import ledger
from alertcast.dispatch.retry import RetryPolicy
from alertcast.dispatch.worker import Worker
from alertcast.domain import Severity
from alertcast.ports import OutboundMessage
from alertcast.store.engine import make_engine
from alertcast.store.migrate import upgrade
from alertcast.store.tables import deliveries
from alertcast.testing import UnlimitedLimiter
from tests.dispatch.conftest import StoreAlert, make_alert
from tests.fakes.http_provider import AMBIGUOUS_FAULTS, FAULT_KINDS, FakeProvider

REPO = Path(__file__).resolve().parents[2]
CHANNEL = "hook"
SECRET = b"reliability-secret"
SECRET_ENV = "ALERTCAST_TEST_WEBHOOK_SECRET"
POLICY = RetryPolicy(max_attempts=8, initial_s=0.01, max_delay_s=0.1, jitter_s=0.01)
CLIENT_TIMEOUT_S = 1.0
HANG_S = 1.5
"""How long the fake holds a request it times out: past the client's timeout."""

EXPECTED_ERROR = {
    "ok": None,
    "error_500": "Transient",
    "rate_limited": "RateLimited",
    "timeout_before": "SentButUnknown",
    "timeout_after": "SentButUnknown",
    "reset": "SentButUnknown",
}
"""The error class each answer of the fake must be classified as."""


def message_for(alert_id: int, severity: str) -> OutboundMessage:
    return OutboundMessage(
        parts=(f"Aviso {alert_id}",), severity=severity, extra={"alert_id": alert_id}
    )


async def plan(
    engine: AsyncEngine, alert_id: int, message: OutboundMessage, count: int, prefix: str
) -> list[str]:
    targets = [f"{prefix}-{i}" for i in range(count)]
    await ledger.plan(
        engine,
        alert_id=alert_id,
        channel=CHANNEL,
        targets=iter(targets),
        message=message,
        priority=20,
        deadline=None,
    )
    return targets


async def rows_of(engine: AsyncEngine) -> list[Any]:
    query = select(
        deliveries.c.id,
        deliveries.c.alert_id,
        deliveries.c.target,
        deliveries.c.state,
        deliveries.c.attempts,
        deliveries.c.lease_owner,
        deliveries.c.attempt_started_at,
    ).order_by(deliveries.c.id)
    async with engine.connect() as conn:
        return list(await conn.execute(query))


async def attempt_errors(engine: AsyncEngine) -> dict[int, list[str | None]]:
    """Per delivery id, the error class of each recorded attempt (None: accepted), in order."""
    seen: dict[int, list[str | None]] = defaultdict(list)
    async for record in audit.iter_records(engine):
        if record.action == "delivery.outcomes":
            for outcome in record.data["outcomes"]:
                seen[int(outcome["id"])].append(outcome.get("error_class"))
    return seen


async def audited_claims(engine: AsyncEngine) -> tuple[set[int], Counter[str]]:
    """Ids listed ``reclaimed_after_send_started`` by any claim, and claims per actor."""
    possibly_twice: set[int] = set()
    actors: Counter[str] = Counter()
    async for record in audit.iter_records(engine):
        if record.action == "delivery.claimed":
            possibly_twice.update(int(i) for i in record.data["reclaimed_after_send_started"])
            actors[record.actor] += 1
    return possibly_twice, actors


async def wait_finished(engine: AsyncEngine, alert_ids: list[int], limit_s: float) -> None:
    loop = asyncio.get_running_loop()
    until = loop.time() + limit_s
    while loop.time() < until:
        counts = [await ledger.progress(engine, a) for a in alert_ids]
        if all(ledger.is_finished(c) for c in counts):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not finished after {limit_s} s: {counts}")


# --------------------------------------------------------------------------- a. faults


async def test_a_fifth_of_requests_failing_loses_nothing_and_the_provider_agrees(
    engine: AsyncEngine, store_alert: StoreAlert
) -> None:
    minor_id = await store_alert(severity=Severity.MINOR)
    extreme_id = await store_alert(severity=Severity.EXTREME)
    minor = message_for(minor_id, "Minor")
    extreme = message_for(extreme_id, "Extreme")
    targets = {
        minor_id: await plan(engine, minor_id, minor, 1000, "minor"),
        extreme_id: await plan(engine, extreme_id, extreme, 1000, "extreme"),
    }
    messages = {minor_id: minor, extreme_id: extreme}

    async with FakeProvider(
        errors=0.2,
        seed=5,
        latency_s=(0.0, 0.002),
        hang_s=HANG_S,
        retry_after="0.02",
        secret=SECRET,
    ) as fake:
        channel = WebhookChannel(CHANNEL, fake.url, secret=SECRET, timeout_s=CLIENT_TIMEOUT_S)
        worker = Worker(
            engine,
            {CHANNEL: channel},
            UnlimitedLimiter(),
            "w-faults",
            batch=200,
            concurrency=64,
            lease_s=30,
            poll_s=0.02,
            default_policy=POLICY,
        )
        stop = asyncio.Event()

        async def watch() -> None:
            try:
                await wait_finished(engine, [minor_id, extreme_id], limit_s=120)
            finally:
                stop.set()

        try:
            await asyncio.gather(worker.run(stop), watch())
        finally:
            await channel.aclose()

    # Every kind of fault happened, and every signature verified.
    assert set(fake.faults) == set(FAULT_KINDS)
    assert fake.rejected == 0

    rows = await rows_of(engine)
    errors = await attempt_errors(engine)
    received = fake.by_target()
    resent_after_second_ambiguity: list[str] = []
    assert len(rows) == 2000
    for row in rows:
        # the worker names the ledger row in each send; the key follows the row
        sent_as = replace(
            messages[row.alert_id],
            extra={**messages[row.alert_id].extra, "delivery_id": row.id, "alert_id": row.alert_id},
        )
        answers = fake.answers[idempotency_key(sent_as, row.target)]
        context = f"{row.target}: answers {answers}, errors {errors[row.id]}, state {row.state}"
        # Never lost: every row is classified, within its attempts.
        assert row.state in ("sent", "unknown"), context
        assert 1 <= row.attempts <= POLICY.max_attempts, context
        # One request per attempt, each classified as its fault deserves.
        assert len(answers) == row.attempts, context
        assert errors[row.id] == [EXPECTED_ERROR[a] for a in answers], context
        # The final state follows the last answer.
        assert (row.state == "sent") == (answers[-1] == "ok"), context
        # The provider received the message once per accepting answer.
        accepted = sum(1 for a in answers if a in ("ok", "timeout_after"))
        assert received[row.target] == accepted, context
        if row.state == "sent":
            assert received[row.target] >= 1, context
        ambiguous = [a for a in answers if a in AMBIGUOUS_FAULTS]
        if row.alert_id == minor_id:
            # A Minor message is never tried again after an ambiguous outcome.
            assert len(ambiguous) <= 1, context
            assert not ambiguous or answers[-1] in AMBIGUOUS_FAULTS, context
            assert received[row.target] <= 1, context
        else:
            # An Extreme one is tried once more; it arrives twice only if the first one
            # was accepted without an answer.
            if received[row.target] > 1:
                assert "timeout_after" in answers, context
            if len(ambiguous) >= 2:
                second = [i for i, a in enumerate(answers) if a in AMBIGUOUS_FAULTS][1]
                if second != len(answers) - 1 or row.state != "unknown":
                    resent_after_second_ambiguity.append(context)

    # The retry policy: "a second ambiguous attempt stays unknown".
    assert resent_after_second_ambiguity == []
    # Duplicates at the provider only where an ambiguous outcome allowed a second attempt.
    twice = {target for target, n in received.items() if n > 1}
    assert twice <= set(targets[extreme_id])
    assert fake.duplicates == sum(received[t] - 1 for t in twice)
    await audit.verify_chain(engine)


# --------------------------------------------------------------------------- subprocesses


def worker_command(database_url: str, url: str, worker_id: str, lease_s: float) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tests.dispatch.worker_process",
        "--database-url",
        database_url,
        "--url",
        url,
        "--worker-id",
        worker_id,
        "--channel",
        CHANNEL,
        "--secret-env",
        SECRET_ENV,
        "--lease-s",
        str(lease_s),
        "--batch",
        "500",
        "--concurrency",
        "128",
        "--timeout-s",
        "5",
        "--idle-exit-s",
        "1",
    ]


@asynccontextmanager
async def worker_process(
    database_url: str, url: str, worker_id: str, lease_s: float, log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A worker subprocess; killed on the way out unless it already ended."""
    with log.open("ab") as stderr:
        process = await asyncio.create_subprocess_exec(
            *worker_command(database_url, url, worker_id, lease_s),
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO), SECRET_ENV: SECRET.decode()},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def kill(process: asyncio.subprocess.Process) -> None:
    process.send_signal(signal.SIGKILL)
    await process.wait()


async def wait_received(
    fake: FakeProvider, count: int, *processes: asyncio.subprocess.Process
) -> None:
    loop = asyncio.get_running_loop()
    until = loop.time() + 120
    while len(fake.received) < count:
        for process in processes:
            if process.returncode is not None:
                raise AssertionError(f"a worker process exited early ({process.returncode})")
        if loop.time() > until:
            raise AssertionError(f"only {len(fake.received)} of {count} messages arrived")
        await asyncio.sleep(0.005)


async def in_flight(engine: AsyncEngine, worker_id: str) -> set[int]:
    """Rows ``worker_id`` started sending and recorded no outcome for: what it left if dead."""
    return {
        int(r.id)
        for r in await rows_of(engine)
        if r.state == "claimed" and r.attempt_started_at and r.lease_owner == worker_id
    }


async def store_fan_out(database_url: str, count: int) -> tuple[AsyncEngine, int, list[str]]:
    await upgrade(database_url)
    engine = make_engine(database_url)
    stored = await lifecycle.ingest_alert(
        engine,
        make_alert(f"FAN-OUT-{count}"),
        raw=None,
        source="test",
        actor="test",
        now=datetime.now(UTC),
    )
    alert_id = stored.result.alert_id
    targets = await plan(engine, alert_id, message_for(alert_id, "Minor"), count, "sub")
    return engine, alert_id, targets


def assert_duplicates_accounted_for(
    received: Counter[str],
    id_of: dict[str, int],
    left_in_flight: set[int],
    possibly_twice: set[int],
) -> None:
    twice = {id_of[target] for target, n in received.items() if n > 1}
    duplicates = sum(n - 1 for n in received.values())
    assert twice <= left_in_flight  # only sends a dead worker had started
    assert twice <= possibly_twice  # and each is in the audit trail
    assert duplicates <= len(left_in_flight)


# --------------------------------------------------------------------------- b. kill -9

FAN_OUT = 20_000
KILLS = 3


async def test_workers_killed_mid_fan_out_lose_nothing(database_url: str, tmp_path: Path) -> None:
    engine, alert_id, targets = await store_fan_out(database_url, FAN_OUT)
    rng = random.Random(20_000)
    # One kill at a random point of each of KILLS equal stretches of 10-85 % of the fan-out.
    stretch = FAN_OUT * 3 // 4 // KILLS
    kill_at = [FAN_OUT // 10 + i * stretch + rng.randrange(stretch) for i in range(KILLS)]
    left_in_flight: set[int] = set()
    killed_with: list[int] = []
    log = tmp_path / "workers.log"
    try:
        async with FakeProvider(latency_s=(0.0, 0.002), secret=SECRET) as fake:
            for number, threshold in enumerate(kill_at, start=1):
                worker_id = f"killed-{number}"
                async with worker_process(database_url, fake.url, worker_id, 2.0, log) as process:
                    await wait_received(fake, threshold, process)
                    await asyncio.sleep(rng.uniform(0, 0.05))
                    await kill(process)
                stranded = await in_flight(engine, worker_id)
                killed_with.append(len(stranded))
                left_in_flight |= stranded
            async with worker_process(database_url, fake.url, "survivor", 2.0, log) as process:
                await wait_finished(engine, [alert_id], limit_s=180)
                await asyncio.wait_for(process.wait(), timeout=30)  # it stops once idle
                assert process.returncode == 0

        received = fake.by_target()
        assert set(received) == set(targets)  # nothing lost
        assert fake.rejected == 0
        assert await ledger.progress(engine, alert_id) == {CHANNEL: {"sent": FAN_OUT}}
        id_of = {r.target: int(r.id) for r in await rows_of(engine)}
        possibly_twice, _ = await audited_claims(engine)
        assert left_in_flight <= possibly_twice  # every stranded send was re-claimed, audited
        assert_duplicates_accounted_for(received, id_of, left_in_flight, possibly_twice)
        await audit.verify_chain(engine)
        print(
            f"kills after {kill_at} messages stranded {killed_with} sends;"
            f" {sum(received.values()) - FAN_OUT} duplicates"
        )
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------- c. two workers

SHARED_FAN_OUT = 5000


@pytest.mark.postgres
async def test_two_workers_share_a_fan_out_and_one_finishes_after_the_other_dies(
    pg_database_url: str, tmp_path: Path
) -> None:
    engine, alert_id, targets = await store_fan_out(pg_database_url, SHARED_FAN_OUT)
    log = tmp_path / "workers.log"
    try:
        async with (
            FakeProvider(latency_s=(0.0, 0.002), secret=SECRET) as fake,
            worker_process(pg_database_url, fake.url, "w1", 3.0, log) as first,
            worker_process(pg_database_url, fake.url, "w2", 3.0, log) as second,
        ):
            await wait_received(fake, SHARED_FAN_OUT * 2 // 5, first, second)
            await kill(first)
            assert fake.duplicates == 0  # sharing, nothing was sent twice
            stranded = await in_flight(engine, "w1")
            _, actors = await audited_claims(engine)
            assert actors["worker:w1"] > 0 and actors["worker:w2"] > 0  # both took work
            await wait_finished(engine, [alert_id], limit_s=120)
            await asyncio.wait_for(second.wait(), timeout=30)
            assert second.returncode == 0

        received = fake.by_target()
        assert set(received) == set(targets)
        assert await ledger.progress(engine, alert_id) == {CHANNEL: {"sent": SHARED_FAN_OUT}}
        rows = await rows_of(engine)
        id_of = {r.target: int(r.id) for r in rows}
        possibly_twice, _ = await audited_claims(engine)
        assert stranded <= possibly_twice  # w2 took over w1's stranded rows
        assert_duplicates_accounted_for(received, id_of, stranded, possibly_twice)
        await audit.verify_chain(engine)
        print(f"the kill stranded {len(stranded)} sends; {fake.duplicates} duplicates")
    finally:
        await engine.dispose()
