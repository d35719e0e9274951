"""The dispatch worker: claim a batch, send it within the rate limits, record what happened.

One worker per process is enough (sends are concurrent inside it); on
PostgreSQL any number of processes on any number of hosts may run one each.
The loop is deliberately simple, a batch at a time::

    claim (most urgent first) ─► send with bounded concurrency ─► record outcomes

so an Extreme alert planned during a routine fan-out is claimed by the next
batch: the wait is at most one batch, which ``batch`` keeps small. Outcomes
are written as sends finish, about ``concurrency`` per transaction, so a
crashed worker leaves few sends whose outcome is unknown to the ledger; those
are sent again after its lease runs out, and the claim that takes them lists
them in the audit trail (``reclaimed_after_send_started``).

Stopping (SIGTERM sets ``stop``): no new claim is made; a row whose send has
not started is not started, and is released back to pending; sends in flight
get ``drain_s`` to finish and are then cancelled and recorded ``unknown`` (the
request may have left). Leases are renewed while a batch is in hand, so a
slow provider never makes a live worker's rows look abandoned.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.dispatch import ledger
from alertcast.dispatch.ledger import Delivery, DeliveryState, Outcome
from alertcast.dispatch.retry import RetryPolicy, decide, succeeded
from alertcast.errors import StoreError
from alertcast.ports import Channel

log = structlog.get_logger(__name__)


class Limiter(Protocol):
    """The rate limiter as the worker uses it (``alertcast.ratelimit.RateLimiter``)."""

    async def acquire(
        self, channel: str, *, recipient: str | None = None, group: str | None = None
    ) -> None: ...

    def pause(self, channel: str, seconds: float) -> None: ...


RecipientGoneHook = Callable[[str, str], Awaitable[None]]
"""Called with (channel, target) after a RecipientGone outcome is committed."""

_NotSent = Literal["not-started"]
_NOT_STARTED: _NotSent = "not-started"


def utc_now() -> datetime:
    return datetime.now(UTC)


class Worker:
    """Sends the ledger's rows for ``channels``; ``worker_id`` names it in leases and the audit."""

    def __init__(
        self,
        engine: AsyncEngine,
        channels: Mapping[str, Channel],
        limiter: Limiter,
        worker_id: str,
        *,
        batch: int = 100,
        concurrency: int = 32,
        lease_s: float = 60.0,
        poll_s: float = 0.5,
        drain_s: float = 10.0,
        policies: Mapping[str, RetryPolicy] | None = None,
        default_policy: RetryPolicy | None = None,
        on_recipient_gone: RecipientGoneHook | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if batch < 1 or concurrency < 1:
            raise ValueError("batch and concurrency must be at least 1")
        self.engine = engine
        self.channels = dict(channels)
        self.limiter = limiter
        self.worker_id = worker_id
        self.batch = batch
        self.concurrency = concurrency
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.drain_s = drain_s
        self.policies = dict(policies or {})
        self.default_policy = default_policy or RetryPolicy()
        self.on_recipient_gone = on_recipient_gone
        self.clock = clock
        self._held: list[int] = []

    def policy_for(self, channel: str) -> RetryPolicy:
        return self.policies.get(channel, self.default_policy)

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set; then finish in flight within ``drain_s`` and return."""
        log.info("worker.started", worker=self.worker_id, channels=sorted(self.channels))
        renewer = asyncio.create_task(self._renew_leases(stop))
        try:
            while not stop.is_set():
                try:
                    claimed = await self.run_once(stop)
                except StoreError as exc:
                    log.error("worker.store_error", worker=self.worker_id, error=str(exc))
                    claimed = 0
                if claimed == 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=self.poll_s)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            log.info("worker.stopped", worker=self.worker_id)

    async def run_once(self, stop: asyncio.Event | None = None) -> int:
        """Claim one batch, send it, record the outcomes; return how many rows were claimed."""
        stop = stop if stop is not None else asyncio.Event()
        claimed = await ledger.claim(
            self.engine,
            worker=self.worker_id,
            channels=sorted(self.channels),
            limit=self.batch,
            lease_s=self.lease_s,
            now=self.clock(),
        )
        if not claimed:
            return 0
        self._held = [d.id for d in claimed]
        try:
            await self._send_batch(claimed, stop)
        finally:
            self._held = []
        return len(claimed)

    async def _send_batch(self, claimed: list[Delivery], stop: asyncio.Event) -> None:
        """Send a claimed batch; outcomes are written as sends finish, a few at a time.

        Writing them early (not once at the end of the batch) is what bounds
        the duplicates after a crash: only sends whose outcome was not yet
        written are sent again when the lease runs out.
        """
        semaphore = asyncio.Semaphore(self.concurrency)
        started: set[int] = set()
        by_task = {
            asyncio.create_task(self._send_one(d, stop, semaphore, started)): d for d in claimed
        }
        pending: set[asyncio.Task[Outcome | _NotSent]] = set(by_task)
        finished: set[int] = set()
        buffer: list[Outcome] = []
        stopping = asyncio.create_task(stop.wait())
        loop = asyncio.get_running_loop()
        drain_until: float | None = None
        try:
            while pending:
                timeout: float | None = None
                waiting: set[asyncio.Future[Any]] = set(pending)
                if stop.is_set():
                    if drain_until is None:
                        log.info("worker.draining", worker=self.worker_id, in_flight=len(pending))
                        drain_until = loop.time() + self.drain_s
                    timeout = max(0.0, drain_until - loop.time())
                else:
                    waiting.add(stopping)
                done, _ = await asyncio.wait(
                    waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                for task in pending & done:
                    pending.discard(task)
                    outcome = _result(task, by_task[task])
                    if isinstance(outcome, Outcome):
                        buffer.append(outcome)
                        finished.add(by_task[task].id)
                if drain_until is not None and pending and loop.time() >= drain_until:
                    for task in pending:
                        task.cancel()
                    await asyncio.wait(pending)
                    pending.clear()
                if len(buffer) >= self.concurrency or (buffer and not pending):
                    await self._record(buffer)
                    buffer = []
        finally:
            stopping.cancel()
        interrupted = [_interrupted(d) for d in claimed if d.id in started and d.id not in finished]
        await self._record(buffer + interrupted)
        unstarted = [d.id for d in claimed if d.id not in started]
        if unstarted:
            await ledger.release(
                self.engine, worker=self.worker_id, ids=unstarted, now=self.clock()
            )

    async def _record(self, outcomes: list[Outcome]) -> None:
        if not outcomes:
            return
        applied = await ledger.record_outcomes(
            self.engine, outcomes, worker=self.worker_id, now=self.clock()
        )
        await self._recipients_gone(applied)

    async def _send_one(
        self,
        delivery: Delivery,
        stop: asyncio.Event,
        semaphore: asyncio.Semaphore,
        started: set[int],
    ) -> Outcome | _NotSent:
        async with semaphore:
            if stop.is_set():
                return _NOT_STARTED
            acquire = self.limiter.acquire(
                delivery.channel, recipient=delivery.target, group=delivery.group_key
            )
            if not await _unless_stopped(acquire, stop):
                return _NOT_STARTED
            if not await ledger.start_attempt(
                self.engine, delivery.id, worker=self.worker_id, now=self.clock()
            ):
                log.info("delivery.not_started", delivery_id=delivery.id, reason="cancelled")
                return _NOT_STARTED
            started.add(delivery.id)
            channel = self.channels[delivery.channel]
            attempts = delivery.attempts + 1
            try:
                receipt = await channel.send(delivery.message, delivery.target)
            except Exception as exc:
                decision = decide(
                    delivery,
                    exc,
                    attempts=attempts,
                    now=self.clock(),
                    policy=self.policy_for(delivery.channel),
                )
                if decision.pause_s > 0:
                    self.limiter.pause(delivery.channel, decision.pause_s)
                outcome = decision.outcome
            else:
                outcome = succeeded(delivery, receipt)
            log.info(
                "delivery.attempt",
                delivery_id=delivery.id,
                alert_id=delivery.alert_id,
                channel=delivery.channel,
                attempt=attempts,
                state=outcome.state.value,
                error_class=outcome.error_class,
            )
            return outcome

    async def _renew_leases(self, stop: asyncio.Event) -> None:
        interval = max(self.lease_s / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            if not self._held:
                continue
            try:
                await ledger.renew_leases(
                    self.engine,
                    worker=self.worker_id,
                    ids=list(self._held),
                    lease_s=self.lease_s,
                    now=self.clock(),
                )
            except StoreError as exc:
                log.warning("worker.lease_renewal_failed", worker=self.worker_id, error=str(exc))

    async def _recipients_gone(self, applied: list[Outcome]) -> None:
        if self.on_recipient_gone is None:
            return
        for outcome in applied:
            if outcome.recipient_gone and outcome.channel and outcome.target:
                try:
                    await self.on_recipient_gone(outcome.channel, outcome.target)
                except Exception:
                    log.exception(
                        "subscription.deactivate_failed",
                        channel=outcome.channel,
                        delivery_id=outcome.delivery_id,
                    )


async def _unless_stopped(waiting: Awaitable[None], stop: asyncio.Event) -> bool:
    """Await ``waiting`` unless ``stop`` is set first; True when it completed."""
    task = asyncio.ensure_future(waiting)
    if task.done():
        return True
    stopping = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if task in done:
        task.result()
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False


def _result(task: asyncio.Task[Outcome | _NotSent], delivery: Delivery) -> Outcome | None:
    """The outcome a finished send task returned; None when it did not send or broke."""
    if task.cancelled():
        return None
    error = task.exception()
    if error is not None:
        log.error(
            "delivery.worker_error",
            delivery_id=delivery.id,
            error=f"{type(error).__name__}: {error}",
        )
        return None
    result = task.result()
    return result if isinstance(result, Outcome) else None


def _interrupted(delivery: Delivery) -> Outcome:
    """A send cut off at shutdown: the request may have left, so the truth is unknown."""
    return Outcome(
        delivery_id=delivery.id,
        alert_id=delivery.alert_id,
        state=DeliveryState.UNKNOWN,
        error_class="SentButUnknown",
        error="interrupted when the worker stopped",
        channel=delivery.channel,
        target=delivery.target,
    )
