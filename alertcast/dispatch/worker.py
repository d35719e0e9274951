"""The dispatch worker: claim rows, send them within the rate limits, record what happened.

One worker per process is enough (sends are concurrent inside it); on
PostgreSQL any number of processes on any number of hosts may run one each.
The loop::

    claim (most urgent first) ─► start ─► send, ``concurrency`` at a time ─► record outcomes
       ▲                                                                        │
       └──────── claim the next batch before this one runs dry ◄────────────────┘

Why it is shaped so:

* **Claim ahead.** :meth:`Worker.run` claims the next ``batch`` while the
  last rows of the current one are still waiting for a send slot, so the
  provider is never left idle while a batch ends and the next is claimed. An
  Extreme alert planned during a routine fan-out is claimed by the next
  claim: it waits behind at most the rows already in hand (about one batch).
  :meth:`Worker.run_once` claims one batch and sends only that.
* **Start in groups, just ahead.** A row is started (marked in the ledger
  as being sent, :func:`ledger.record_and_start`) once it has its rate-limit
  token and is among the next ``start_ahead`` (half the concurrency) rows
  to get a send slot; rows that reach that point while a write is under way
  are started together by the next one. The start is checked against a
  cancel in the same statement that marks it, so a cancel that commits
  first always wins; a cancel that commits after it finds the row begun, as
  before, and it is sent at once or as soon as a slot frees (about one send's
  time). Starting a little ahead keeps the database write off the send's
  path: were a slot held while its row is being started, every send would
  wait for a commit and the provider would idle.
* **Outcomes in groups too**, about ``concurrency`` per transaction, written
  as sends finish: a crashed worker leaves few sends whose outcome the
  ledger does not know; those are sent again after its lease runs out, and
  the claim that takes them lists them in the audit trail
  (``reclaimed_after_send_started``).
* **One writer at a time on SQLite.** SQLite has one write lock, and a
  writer that finds it taken sleeps in its busy handler for milliseconds;
  the worker's own transactions therefore queue on an in-process lock
  instead of colliding. PostgreSQL needs no such thing.

Stopping (SIGTERM sets ``stop``): no new claim is made; a row whose send has
not started is not started, and is released back to pending; sends in flight
(and the few rows started ahead) get ``drain_s`` to finish and are then
cancelled; a cancelled send is recorded ``unknown`` (the request may have
left), while a row started ahead that never got its slot stays begun in the
ledger and is taken again, listed as possibly sent, once its lease runs out.
Leases are renewed while rows are in hand, so a slow provider never makes a
live worker's rows look abandoned.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alertcast.dispatch import followup, ledger
from alertcast.dispatch.ledger import Delivery, DeliveryState, Outcome
from alertcast.dispatch.retry import RetryPolicy, decide, succeeded
from alertcast.errors import Permanent, StoreError
from alertcast.metrics import Metrics, send_outcome
from alertcast.metrics import metrics as process_metrics
from alertcast.ports import Channel
from alertcast.store.engine import database_errors
from alertcast.subscribers.model import SUBSCRIBER_TARGET_PREFIX

log = structlog.get_logger(__name__)


class Limiter(Protocol):
    """The rate limiter as the worker uses it (``alertcast.ratelimit.RateLimiter``)."""

    async def acquire(
        self,
        channel: str,
        *,
        recipient: str | None = None,
        group: str | None = None,
        cost: float = 1.0,
    ) -> None: ...

    def pause(self, channel: str, seconds: float) -> None: ...


AddressResolver = Callable[[Sequence[str]], Awaitable[Mapping[str, str]]]
"""Given subscriber targets (``sub:ID``), their current addresses; the departed are absent."""

STORY_CACHE_SIZE = 10_000
"""Alerts whose "continues an earlier alert" answer a worker keeps."""

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
        start_ahead: int | None = None,
        resolve_addresses: AddressResolver | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        if batch < 1 or concurrency < 1:
            raise ValueError("batch and concurrency must be at least 1")
        if start_ahead is not None and start_ahead < 0:
            raise ValueError("start_ahead cannot be negative")
        self.engine = engine
        self.channels = dict(channels)
        self.limiter = limiter
        self.worker_id = worker_id
        self.batch = batch
        self.concurrency = concurrency
        self.start_ahead = start_ahead if start_ahead is not None else max(1, concurrency // 2)
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.drain_s = drain_s
        self.policies = dict(policies or {})
        self.default_policy = default_policy or RetryPolicy()
        self.on_recipient_gone = on_recipient_gone
        self.clock = clock
        self.resolve_addresses = resolve_addresses
        self.metrics = metrics if metrics is not None else process_metrics()
        self._addresses: dict[str, str] = {}
        self._held: set[int] = set()
        self._earlier: dict[int, followup.EarlierMessage] = {}
        self._continues: dict[int, bool] = {}
        self._writes = _WriteQueue(engine.dialect.name == "sqlite")
        self._conn: AsyncConnection | None = None

    def policy_for(self, channel: str) -> RetryPolicy:
        return self.policies.get(channel, self.default_policy)

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set; then finish in flight within ``drain_s`` and return."""
        log.info("worker.started", worker=self.worker_id, channels=sorted(self.channels))
        renewer = asyncio.create_task(self._renew_leases(stop))
        try:
            while not stop.is_set():
                try:
                    claimed = await self._work(stop, claim_ahead=True)
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
        return await self._work(stop if stop is not None else asyncio.Event(), claim_ahead=False)

    async def _work(self, stop: asyncio.Event, *, claim_ahead: bool) -> int:
        claimed = await self._claim()
        if not claimed:
            return 0
        try:
            return await self._send(claimed, stop, claim_ahead=claim_ahead)
        finally:
            self._held.clear()
            self._earlier.clear()
            self._addresses.clear()
            await self._close_connection()

    async def _claim(self) -> list[Delivery]:
        async with self._writes:
            claimed = await ledger.claim(
                self.engine,
                worker=self.worker_id,
                channels=sorted(self.channels),
                limit=self.batch,
                lease_s=self.lease_s,
                now=self.clock(),
            )
        self._held.update(d.id for d in claimed)
        await self._resolve(claimed)
        if claimed:
            try:
                self._earlier.update(
                    await followup.earlier_messages(self.engine, await self._may_follow_up(claimed))
                )
            except StoreError as exc:  # people must still be told: plain sends then
                log.warning("worker.follow_up_lookup_failed", worker=self.worker_id, error=str(exc))
        return claimed

    async def _may_follow_up(self, claimed: list[Delivery]) -> list[Delivery]:
        """The claimed rows that may follow up an earlier message; asks once per alert.

        Most of a fan-out belongs to a plain first Alert, which continues no
        story: knowing that per alert spares every later batch the look-up.
        """
        unknown = {d.alert_id for d in claimed} - self._continues.keys()
        if unknown:
            found = await followup.alerts_with_a_story(self.engine, sorted(unknown))
            if len(self._continues) > STORY_CACHE_SIZE:
                self._continues.clear()
            self._continues.update({alert_id: alert_id in found for alert_id in unknown})
        return [d for d in claimed if self._continues[d.alert_id] or followup.declares_follow_up(d)]

    async def _resolve(self, claimed: list[Delivery]) -> None:
        """Look up the addresses behind subscriber targets (``sub:ID``), a batch at a time.

        The ledger never holds a subscriber's phone number or chat id: only
        this lookup, right before sending, decrypts them, and they live in
        memory for the batch alone.
        """
        wanted = sorted(
            {d.target for d in claimed if d.target.startswith(SUBSCRIBER_TARGET_PREFIX)}
            - set(self._addresses)
        )
        if not wanted or self.resolve_addresses is None:
            return
        try:
            self._addresses.update(await self.resolve_addresses(wanted))
        except StoreError as exc:  # the sends fail Transient below and are retried
            log.error("worker.address_lookup_failed", worker=self.worker_id, error=str(exc))

    async def _write(self, outcomes: list[Outcome], start_ids: list[int]) -> set[int]:
        """One transaction: the outcomes of ended sends, and the starts of the next ones."""
        async with self._writes:
            bind = await self._own_connection()
            try:
                applied, started = await ledger.record_and_start(
                    bind, outcomes, start_ids, worker=self.worker_id, now=self.clock()
                )
            except StoreError:
                await self._close_connection()
                raise
        if outcomes:
            self._held.difference_update(o.delivery_id for o in outcomes)
            await self._recipients_gone(applied)
        return started

    async def _own_connection(self) -> AsyncEngine | AsyncConnection:
        """On SQLite, the connection this worker keeps for its writes while it sends a batch.

        Its writes are one at a time there anyway (see ``_WriteQueue``), and a
        kept connection spares each small transaction a pool checkout and the
        rollback the pool issues on return. On PostgreSQL the pool is used, so
        that starts and claims may overlap.
        """
        if not self._writes.serialises:
            return self.engine
        if self._conn is None:
            with database_errors("cannot connect to the database"):
                self._conn = await self.engine.connect()
        return self._conn

    async def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _send(
        self, claimed: list[Delivery], stop: asyncio.Event, *, claim_ahead: bool
    ) -> int:
        """Send ``claimed`` (with ``claim_ahead``, also rows claimed meanwhile); return the count.

        Outcomes are written as sends finish, a few at a time, not once at the
        end: that is what bounds the duplicates after a crash, since only sends
        whose outcome was not yet written are sent again when the lease runs out.
        """
        slots = _Slots(self.concurrency, self.start_ahead)
        writer = _Writer(self._write, outcomes_per_write=self.concurrency)
        started: set[int] = set()
        finished: set[int] = set()
        queued: set[int] = set()  # rows in hand without a send slot: when few, claim more
        every: list[Delivery] = []
        by_task: dict[asyncio.Task[Outcome | _NotSent], Delivery] = {}
        pending: set[asyncio.Task[Outcome | _NotSent]] = set()

        def launch(rows: list[Delivery]) -> None:
            every.extend(rows)
            for delivery in rows:
                queued.add(delivery.id)
                task = asyncio.create_task(
                    self._send_one(delivery, stop, slots, started, writer, queued)
                )
                by_task[task] = delivery
                pending.add(task)

        launch(claimed)
        refill: asyncio.Task[list[Delivery]] | None = None
        dry = not claim_ahead
        stopping = asyncio.create_task(stop.wait())
        loop = asyncio.get_running_loop()
        drain_until: float | None = None
        try:
            while pending or refill is not None:
                if (
                    not dry
                    and refill is None
                    and not stop.is_set()
                    and len(queued) < self.concurrency
                ):
                    refill = asyncio.create_task(self._claim())
                timeout: float | None = None
                waiting: set[asyncio.Future[Any]] = set(pending)
                if refill is not None:
                    waiting.add(refill)
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
                if refill is not None and refill in done:
                    more = _claimed(refill)
                    refill = None
                    dry = not more
                    launch(more)
                for task in pending & done:
                    pending.discard(task)
                    outcome = _result(task, by_task.pop(task))
                    if isinstance(outcome, Outcome):
                        writer.record(outcome)
                        finished.add(outcome.delivery_id)
                if drain_until is not None and pending and loop.time() >= drain_until:
                    for task in pending:
                        task.cancel()
                    await asyncio.wait(pending)
                    pending.clear()
                    if refill is not None:
                        # Rows it claims are released below with the other unstarted ones.
                        await asyncio.wait({refill})
                        every.extend(_claimed(refill))
                        refill = None
        finally:
            stopping.cancel()
        await writer.drain()
        interrupted = [_interrupted(d) for d in every if d.id in started and d.id not in finished]
        await self._record(interrupted)
        unstarted = [d.id for d in every if d.id not in started]
        if unstarted:
            async with self._writes:
                await ledger.release(
                    self.engine, worker=self.worker_id, ids=unstarted, now=self.clock()
                )
        return len(every)

    async def _record(self, outcomes: list[Outcome]) -> None:
        if outcomes:
            await self._write(outcomes, [])

    async def _send_one(
        self,
        delivery: Delivery,
        stop: asyncio.Event,
        slots: _Slots,
        started: set[int],
        writer: _Writer,
        queued: set[int],
    ) -> Outcome | _NotSent:
        async with slots.starting:
            queued.discard(delivery.id)
            if stop.is_set():
                return _NOT_STARTED
            acquire = self.limiter.acquire(
                delivery.channel,
                recipient=delivery.target,
                group=delivery.group_key,
                cost=send_cost(delivery),
            )
            if not await _unless_stopped(acquire, stop):
                return _NOT_STARTED
            if not await writer.start(delivery.id):
                log.info("delivery.not_started", delivery_id=delivery.id, reason="cancelled")
                return _NOT_STARTED
            async with slots.sending:
                started.add(delivery.id)
                return await self._attempt(delivery)

    async def _attempt(self, delivery: Delivery) -> Outcome:
        """Send a started row once and judge the answer."""
        channel = self.channels[delivery.channel]
        attempts = delivery.attempts + 1
        earlier = self._earlier.pop(delivery.id, None)
        began = time.perf_counter()
        try:
            address = self._address_of(delivery)
            receipt = await followup.send(channel, _addressed(delivery, address), earlier)
        except Exception as exc:
            took = time.perf_counter() - began
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
            took = time.perf_counter() - began
            outcome = succeeded(delivery, receipt)
        self._observe(delivery.channel, channel, took, outcome.error_class)
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

    def _observe(
        self, name: str, channel: Channel, seconds: float, error_class: str | None
    ) -> None:
        """Count one attempt for ``/metrics``: its latency and outcome, and a provider's 429.

        The provider label is the channel's kind (a bounded set), never its account.
        """
        outcome = send_outcome(error_class)
        self.metrics.observe_send(name, seconds, outcome)
        if outcome == "rate_limited":
            self.metrics.throttled(name, channel.kind)

    def _address_of(self, delivery: Delivery) -> str:
        """The address to send to: the target itself, or the subscriber's behind ``sub:ID``."""
        if not delivery.target.startswith(SUBSCRIBER_TARGET_PREFIX):
            return delivery.target
        address = self._addresses.get(delivery.target)
        if address is not None:
            return address
        if self.resolve_addresses is None:
            raise Permanent(f"no address lookup for subscriber target {delivery.target}")
        raise Permanent("the subscriber left before this message was sent")

    async def _renew_leases(self, stop: asyncio.Event) -> None:
        interval = max(self.lease_s / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            if not self._held:
                continue
            try:
                async with self._writes:
                    await ledger.renew_leases(
                        self.engine,
                        worker=self.worker_id,
                        ids=sorted(self._held),
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


def send_cost(delivery: Delivery) -> float:
    """Rate-limit tokens one send takes: each message of a multi-part alert (SMS: each segment)."""
    declared = delivery.message.extra.get("cost")
    if isinstance(declared, int | float) and not isinstance(declared, bool) and declared >= 1:
        return float(declared)
    return float(max(1, len(delivery.message.parts)))


def _addressed(delivery: Delivery, address: str) -> Delivery:
    """The delivery as the channel sees it: its real address, and its ledger ids in the message.

    The message object is shared by every row of a fan-out; each send gets
    its own copy carrying ``delivery_id`` and ``alert_id`` (a webhook's
    idempotency key, for one, is derived from them).
    """
    extra = {**delivery.message.extra, "delivery_id": delivery.id, "alert_id": delivery.alert_id}
    return replace(delivery, target=address, message=replace(delivery.message, extra=extra))


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


def _claimed(task: asyncio.Task[list[Delivery]]) -> list[Delivery]:
    """The rows a claim ahead returned; none when it failed (the next loop claims again)."""
    if task.cancelled():
        return []
    error = task.exception()
    if error is not None:
        log.error("worker.store_error", error=f"{type(error).__name__}: {error}")
        return []
    return task.result()


class _Slots:
    """Send slots, and the few rows allowed to be started ahead of a free one.

    Starting a row is a database write; were it to hold a send slot, every
    send would wait for one, and the provider would idle meanwhile. So up to
    ``ahead`` rows are started while all slots are busy, and each takes the
    next free slot: a started row waits at most about one send's time, and a
    cancel stops every row but those few (they count as begun, as the ledger
    records them).
    """

    def __init__(self, concurrency: int, ahead: int) -> None:
        self.starting = asyncio.Semaphore(concurrency + ahead)
        self.sending = asyncio.Semaphore(concurrency)


class _WriteQueue:
    """Lets one of this worker's write transactions run at a time, where the database needs it.

    On SQLite a second writer would only sleep in the busy handler until the
    first commits (milliseconds each time); queueing here costs nothing and
    lets the start and outcome groups grow while they wait. Elsewhere it
    lets everything through.
    """

    def __init__(self, serialise: bool) -> None:
        self._lock = asyncio.Lock() if serialise else None

    @property
    def serialises(self) -> bool:
        return self._lock is not None

    async def __aenter__(self) -> None:
        if self._lock is not None:
            await self._lock.acquire()

    async def __aexit__(self, *exc: object) -> None:
        if self._lock is not None:
            self._lock.release()


class _Writer:
    """Writes the worker's rows in groups: each transaction starts and records all that waits.

    A row asks to be started once it holds a send slot and its rate token,
    and is sent as soon as the start commits; an ended send leaves its
    outcome. Whatever arrived while a transaction was being written goes
    into the next one, so under load the groups grow by themselves and the
    database sees one transaction per group instead of two per send, while
    nothing waits on purpose: alone, a row is started at once. Outcomes go
    with the first group after ``outcomes_per_write`` of them wait (each
    write appends an audit record per alert, so they are worth gathering),
    and all of them when the batch ends: a crash leaves about that many sends
    unrecorded, to be sent again.
    """

    def __init__(
        self,
        write: Callable[[list[Outcome], list[int]], Awaitable[set[int]]],
        outcomes_per_write: int,
    ) -> None:
        self._write_group = write
        self._outcomes_per_write = outcomes_per_write
        self._asking: list[tuple[int, asyncio.Future[bool]]] = []
        self._outcomes: list[Outcome] = []
        self._writing: asyncio.Task[None] | None = None
        self._error: BaseException | None = None
        self._draining = False

    async def start(self, delivery_id: int) -> bool:
        """True once the row is marked started and may be sent; False when it may not."""
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._asking.append((delivery_id, answer))
        self._wake()
        return await answer

    def record(self, outcome: Outcome) -> None:
        """Write ``outcome`` with a coming group, once enough outcomes wait."""
        self._outcomes.append(outcome)
        if len(self._outcomes) >= self._outcomes_per_write:
            self._wake()

    async def drain(self) -> None:
        """Return once everything handed in is written; raise the first write error, if any."""
        self._draining = True
        if self._outcomes:
            self._wake()
        while self._writing is not None:
            await asyncio.shield(self._writing)
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _outcomes_due(self) -> bool:
        return bool(self._outcomes) and (
            self._draining or len(self._outcomes) >= self._outcomes_per_write
        )

    def _wake(self) -> None:
        if self._writing is None:
            self._writing = asyncio.create_task(self._write())

    async def _write(self) -> None:
        try:
            await asyncio.sleep(0)  # let the rows ready in this turn join the group
            while self._asking or self._outcomes_due():
                group, self._asking = self._asking, []
                outcomes: list[Outcome] = []
                if self._outcomes_due():
                    outcomes, self._outcomes = self._outcomes, []
                try:
                    ok = await self._write_group(outcomes, [i for i, _ in group])
                except asyncio.CancelledError:
                    for _, answer in group:
                        answer.cancel()
                    raise
                except Exception as exc:
                    log.error("worker.write_failed", error=str(exc), outcomes=len(outcomes))
                    if outcomes and self._error is None:
                        self._error = exc
                    for _, answer in group:
                        if not answer.done():
                            answer.set_exception(exc)
                    continue
                for delivery_id, answer in group:
                    if not answer.done():
                        answer.set_result(delivery_id in ok)
        finally:
            self._writing = None
