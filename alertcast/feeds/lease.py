"""One instance polls a feed at a time: a lease in the feed's ``feed_state`` row.

Several alertcast instances may share one PostgreSQL database (for high
availability). Each feed must still be fetched by only one of them per
interval, or issuers see doubled traffic and the health counters lie. The
right to poll a feed is a *lease*: the columns ``lease_owner`` and
``lease_until`` of its ``feed_state`` row.

* **Taking it** is one conditional UPDATE (see
  :func:`alertcast.store.feed_state.acquire_lease`): it matches only when the
  lease is free, already ours, or has run out. PostgreSQL's row lock makes two
  racing instances take turns, and the second re-checks the condition against
  the first one's write, so exactly one is granted.
* **Starting**: an instance reads all its feeds' state and takes every free
  lease in one ``executemany`` (:meth:`Poller.run`), each lease running to
  the feed's planned next poll plus the grace period.
* **Holding it**: after every poll the holder writes ``lease_until =
  next_poll_at + grace`` together with the poll's outcome, so in steady state
  holding costs no extra statement. While a long poll runs (an index with
  hundreds of linked documents), :meth:`FeedLease.keepalive` extends it every
  third of the grace period.
* **Handing over**: a clean stop releases the lease (owner and expiry set to
  NULL), and the standby instance, which re-tries every interval, takes over
  at its next try; it then waits for the ``next_poll_at`` the previous holder
  recorded, so the feed is not fetched twice within one interval. A crashed
  holder's lease runs out ``grace`` after its planned next poll, and a
  standby takes over then.

Why a lease row rather than ``pg_try_advisory_lock``: a session-level
advisory lock needs one dedicated connection held for the process's life
and is released silently when that connection drops (a holder behind a
network partition would not know it lost the feed); the row works the same on
SQLite and PostgreSQL, costs nothing extra per poll, and shows who polls
what in ``alertcast feeds list``. Its price is a clock assumption: instances
compare ``lease_until`` with their own clocks, so hosts must keep time (NTP)
to well within the grace period (at least a minute).

On SQLite there is one process; the lease is still taken (it also protects a
second process started by mistake on the same file) and never contested.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from datetime import datetime, timedelta

import structlog

from alertcast.config import FeedConfig
from alertcast.errors import StoreError
from alertcast.store.feed_state import FeedState, FeedStateRepository

log = structlog.get_logger(__name__)

MIN_GRACE_S = 60.0
"""The shortest grace period: how long past its planned next poll a lease stays held."""


def instance_id() -> str:
    """A name for this process that is unique among instances: host, pid and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def grace_s(feed: FeedConfig) -> float:
    """How long a lease outlives the holder's plans: room for one slow poll and clock skew."""
    return max(MIN_GRACE_S, 3 * feed.timeout_s)


class FeedLease:
    """The right to poll one feed, as seen from one instance."""

    def __init__(
        self,
        feed: FeedConfig,
        repository: FeedStateRepository,
        owner: str,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self.feed = feed
        self.owner = owner
        self._repository = repository
        self._clock = clock
        self._held_until: datetime | None = None
        self.holder: str | None = None
        """Who held the lease at the last refused attempt (for messages)."""
        self.holder_until: datetime | None = None

    @property
    def grace(self) -> timedelta:
        return timedelta(seconds=grace_s(self.feed))

    def held(self, now: datetime) -> bool:
        """True while this instance knows it holds the lease with a grace period to spare."""
        return self._held_until is not None and self._held_until - now >= self.grace / 2

    async def acquire(self) -> FeedState | None:
        """Take or renew the lease; the feed's state when granted, None when another holds it."""
        now = self._clock()
        state = await self._repository.acquire_lease(
            self.feed.name, owner=self.owner, now=now, until=now + self.grace
        )
        if state is None:
            self._held_until = None
            current = await self._repository.get(self.feed.name)
            self.holder = current.lease_owner if current else None
            self.holder_until = current.lease_until if current else None
            log.debug(
                "feed.lease_held_elsewhere",
                feed=self.feed.name,
                holder=self.holder,
                until=self.holder_until.isoformat() if self.holder_until else None,
            )
            return None
        if self._held_until is None:
            log.info("feed.lease_taken", feed=self.feed.name, owner=self.owner)
        self._held_until = state.lease_until
        self.holder, self.holder_until = self.owner, state.lease_until
        return state

    def granted(self, state: FeedState) -> None:
        """Note a lease taken for this feed together with others (:meth:`Poller.run`)."""
        log.info("feed.lease_taken", feed=self.feed.name, owner=self.owner)
        self._held_until = state.lease_until
        self.holder, self.holder_until = self.owner, state.lease_until

    def extended_to(self, until: datetime | None) -> None:
        """Note that the lease now runs to ``until`` (written with a poll's outcome)."""
        self._held_until = until

    def lost(self) -> None:
        """Note that the lease was found taken by another instance."""
        if self._held_until is not None:
            log.warning("feed.lease_lost", feed=self.feed.name, owner=self.owner)
        self._held_until = None

    async def release(self) -> None:
        """Give the lease up so a standby instance takes over at its next try."""
        if self._held_until is None:
            return
        self._held_until = None
        try:
            if await self._repository.release_lease(self.feed.name, owner=self.owner):
                log.info("feed.lease_released", feed=self.feed.name, owner=self.owner)
        except StoreError as exc:
            # The lease then simply runs out; a standby takes over a little later.
            log.warning("feed.lease_release_failed", feed=self.feed.name, reason=str(exc))

    @asynccontextmanager
    async def keepalive(self) -> AsyncIterator[None]:
        """Keep extending the lease while the body runs (a long poll must not lose it)."""
        task = asyncio.create_task(self._extend_forever(), name=f"lease:{self.feed.name}")
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    async def _extend_forever(self) -> None:
        period = grace_s(self.feed) / 3
        while True:
            await asyncio.sleep(period)
            until = self._clock() + self.grace
            try:
                still_ours = await self._repository.extend_lease(
                    self.feed.name, owner=self.owner, until=until
                )
            except StoreError as exc:
                log.warning("feed.lease_extend_failed", feed=self.feed.name, reason=str(exc))
                continue
            if not still_ours:
                self.lost()
                return
            self._held_until = until
