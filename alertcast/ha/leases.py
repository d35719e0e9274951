"""Role leases: a part that must run on one instance at a time, with fail-over.

Telegram allows one ``getUpdates`` consumer per bot token: a second one is
refused with "Conflict: terminated by other getUpdates request", and the two
would steal each other's updates. When several alertcast instances share one
PostgreSQL, each bot's consumer therefore runs where its lease ``bot:{channel}``
is held, and the other instances stand by to take over when that one dies.

A lease is one row of ``role_leases`` (name, owner, acquired_at, renewed_at,
expires_at):

* **Taking it** is one statement, ``INSERT ... ON CONFLICT (name) DO UPDATE
  ... WHERE`` the row is free (released), already ours, or expired. On
  PostgreSQL two instances racing for it are serialised by the row lock (the
  loser's conflict clause is evaluated against the winner's row, or its insert
  meets the winner's); on SQLite every write transaction holds the write lock.
  Either way exactly one of them is granted.
* **Holding it**: the holder renews every ``renew_every_s`` with an UPDATE
  that matches only while it is still the owner; a renewal that matches
  nothing means another instance took the lease, and the holder stops its
  consumer at once (``on_lost``).
* **Not hearing back**: when renewals fail (the database is unreachable) the
  holder gives the part up by itself once fewer than ``renew_every_s`` are
  left before its lease runs out, so it has stopped before anyone else may
  start.
* **Handing over**: a clean stop stops the consumer and then releases the lease
  (owner NULL), so a standby takes over at its next try. A crashed holder's
  lease runs out ``ttl_s`` after its last renewal; a standby re-tries at the
  moment it expires (and at least every ``renew_every_s``), so it takes over
  within ``ttl_s`` of the holder's death.

Like the feed leases (:mod:`alertcast.feeds.lease`) the row is compared with
each instance's own clock: hosts must keep time (NTP) to well within
``renew_every_s``. Why a row rather than a PostgreSQL advisory lock: the
same reasons as for the feed leases (it works on SQLite, a holder behind a
partition learns that it lost the lease, and ``role_leases`` shows who holds
what).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import case, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alertcast.errors import StoreError
from alertcast.store.engine import database_errors, read_only
from alertcast.store.tables import role_leases

log = structlog.get_logger(__name__)

DEFAULT_TTL_S = 15.0
"""How long a lease lasts without renewal: the longest a dead holder blocks a standby."""
DEFAULT_RENEW_EVERY_S = 5.0
"""How often the holder renews, and how often a standby tries to take over."""

Callback = Callable[[], Awaitable[None]]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class LeaseHolder:
    """A lease's row as read: who holds it and until when (owner None: released)."""

    name: str
    owner: str | None
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime


def _insert(conn: AsyncConnection) -> Any:
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(role_leases)
    if dialect == "sqlite":
        return sqlite.insert(role_leases)
    raise StoreError(f"role leases cannot be kept in a {dialect!r} database")


async def take(
    conn: AsyncConnection, name: str, *, owner: str, now: datetime, until: datetime
) -> bool:
    """Take or renew the lease ``name`` for ``owner`` in one statement; True when granted.

    Granted when there is no row yet, or the row is released, ``owner``'s, or
    expired at ``now``. ``acquired_at`` changes only when the owner does.
    """
    insert = _insert(conn).values(
        name=name, owner=owner, acquired_at=now, renewed_at=now, expires_at=until
    )
    statement = insert.on_conflict_do_update(
        index_elements=[role_leases.c.name],
        set_={
            "owner": insert.excluded.owner,
            "acquired_at": case(
                (role_leases.c.owner == owner, role_leases.c.acquired_at),
                else_=insert.excluded.acquired_at,
            ),
            "renewed_at": insert.excluded.renewed_at,
            "expires_at": insert.excluded.expires_at,
        },
        where=or_(
            role_leases.c.owner.is_(None),
            role_leases.c.owner == owner,
            role_leases.c.expires_at <= now,
        ),
    ).returning(role_leases.c.owner)
    row = (await conn.execute(statement)).first()
    return row is not None and row.owner == owner


async def extend(
    conn: AsyncConnection, name: str, *, owner: str, now: datetime, until: datetime
) -> bool:
    """Renew ``owner``'s lease to ``until``; False when another instance holds it now."""
    result = await conn.execute(
        update(role_leases)
        .where(role_leases.c.name == name, role_leases.c.owner == owner)
        .values(renewed_at=now, expires_at=until)
    )
    return bool(result.rowcount)


async def give_up(conn: AsyncConnection, name: str, *, owner: str, now: datetime) -> bool:
    """Release ``owner``'s lease so that a standby takes it at once; False when not held."""
    result = await conn.execute(
        update(role_leases)
        .where(role_leases.c.name == name, role_leases.c.owner == owner)
        .values(owner=None, expires_at=now)
    )
    return bool(result.rowcount)


async def read(conn: AsyncConnection, name: str) -> LeaseHolder | None:
    """The lease's row, or None when nobody ever took it."""
    row = (await conn.execute(select(role_leases).where(role_leases.c.name == name))).first()
    if row is None:
        return None
    return LeaseHolder(row.name, row.owner, row.acquired_at, row.renewed_at, row.expires_at)


async def all_leases(engine: AsyncEngine) -> list[LeaseHolder]:
    """Every lease's row, by name (for operators' tools)."""
    with database_errors("cannot read the role leases"):
        async with read_only(engine) as conn:
            rows = await conn.execute(select(role_leases).order_by(role_leases.c.name))
            return [
                LeaseHolder(r.name, r.owner, r.acquired_at, r.renewed_at, r.expires_at)
                for r in rows
            ]


class RoleLease:
    """The right to run one part (``bot:{channel}``) as seen from one instance.

    ``owner`` is this instance's name (:func:`alertcast.feeds.lease.instance_id`,
    one per process). ``clock`` gives aware UTC datetimes; tests move it by hand.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        name: str,
        owner: str,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        renew_every_s: float = DEFAULT_RENEW_EVERY_S,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if renew_every_s <= 0 or ttl_s < 2 * renew_every_s:
            raise ValueError(
                f"lease {name}: ttl_s ({ttl_s}) must be at least twice renew_every_s "
                f"({renew_every_s}), which must be positive, so that a failed renewal "
                "is retried before the lease runs out"
            )
        self.engine = engine
        self.name = name
        self.owner = owner
        self.ttl_s = ttl_s
        self.renew_every_s = renew_every_s
        self._clock = clock
        self._expires_at: datetime | None = None
        self._consuming = False
        # A statement that hangs (a server behind a partition) must not keep a
        # holder from noticing that its lease runs out. SQLite has no network
        # and one process: a statement cancelled there could leave its
        # transaction, and the file's write lock, behind; it is never timed out.
        self._statement_timeout_s = renew_every_s if engine.dialect.name == "postgresql" else None

    def __repr__(self) -> str:
        return f"RoleLease(name={self.name!r}, owner={self.owner!r}, held={self.held})"

    @property
    def expires_at(self) -> datetime | None:
        """When the lease runs out as last written by this instance (None: not held)."""
        return self._expires_at

    @property
    def held(self) -> bool:
        """True while this instance holds the lease with at least one renewal period to spare.

        Past that point the holder must assume it may lose the lease before it
        can renew it, and stops its part: nobody else can take it until it has
        fully run out.
        """
        if self._expires_at is None:
            return False
        margin = timedelta(seconds=self.renew_every_s)
        return self._clock() < self._expires_at - margin

    async def try_acquire(self) -> bool:
        """Take the lease when it is free, released, expired or already ours; True when held."""
        now = self._clock()
        until = now + timedelta(seconds=self.ttl_s)
        with database_errors(f"cannot take the lease {self.name}"):
            async with self.engine.begin() as conn:
                granted = await take(conn, self.name, owner=self.owner, now=now, until=until)
        self._expires_at = until if granted else None
        return granted

    async def renew(self) -> bool:
        """Extend the lease; False (and no longer held) when another instance has taken it."""
        now = self._clock()
        until = now + timedelta(seconds=self.ttl_s)
        with database_errors(f"cannot renew the lease {self.name}"):
            async with self.engine.begin() as conn:
                still_ours = await extend(conn, self.name, owner=self.owner, now=now, until=until)
        self._expires_at = until if still_ours else None
        return still_ours

    async def release(self) -> None:
        """Give the lease up (a clean stop) so that a standby takes over at its next try."""
        self._expires_at = None
        with database_errors(f"cannot release the lease {self.name}"):
            async with self.engine.begin() as conn:
                released = await give_up(conn, self.name, owner=self.owner, now=self._clock())
        if released:
            log.info("lease.released", lease=self.name, owner=self.owner)

    async def holder(self) -> LeaseHolder | None:
        """The lease's row as it is now (who holds it, until when)."""
        with database_errors(f"cannot read the lease {self.name}"):
            async with read_only(self.engine) as conn:
                return await read(conn, self.name)

    # ------------------------------------------------------------------ the loop

    async def hold(self, stop: asyncio.Event, on_acquired: Callback, on_lost: Callback) -> None:
        """Hold the lease until ``stop``: run the part while held, stand by otherwise.

        ``on_acquired`` starts the part when the lease is taken; ``on_lost``
        stops it when the lease is lost, given up for want of renewal, or at
        the end (before the lease is released, so a standby never starts while
        this part still runs). A part that fails to start is stopped, the lease
        released for another instance, and taking it tried again later.
        Database errors are logged and retried; they never end the loop.
        """
        try:
            while not stop.is_set():
                wait = await self._step(on_acquired, on_lost)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=wait)
        finally:
            if self._consuming:
                await self._stop_part(on_lost, reason="stopping")
            try:
                await self.release()
            except StoreError as exc:  # then it simply runs out; a standby takes over later
                log.warning("lease.release_failed", lease=self.name, reason=str(exc))

    async def _step(self, on_acquired: Callback, on_lost: Callback) -> float:
        """One round of :meth:`hold`; the seconds to wait before the next one."""
        if self._consuming:
            return await self._keep(on_lost)
        try:
            async with asyncio.timeout(self._statement_timeout_s):
                granted = await self.try_acquire()
        except (StoreError, TimeoutError) as exc:
            log.warning("lease.acquire_failed", lease=self.name, reason=_reason(exc))
            return self.renew_every_s
        if not granted:
            return await self._standby_wait()
        log.info("lease.acquired", lease=self.name, owner=self.owner, ttl_s=self.ttl_s)
        self._consuming = True
        try:
            await on_acquired()
        except Exception:  # the part could not start here; let another instance try
            log.exception("lease.start_failed", lease=self.name)
            await self._stop_part(on_lost, reason="start failed")
            with contextlib.suppress(StoreError):
                await self.release()
        return self.renew_every_s

    async def _keep(self, on_lost: Callback) -> float:
        """Renew a held lease; stop the part when it was taken or can no longer be trusted."""
        try:
            async with asyncio.timeout(self._statement_timeout_s):
                still_ours = await self.renew()
        except (StoreError, TimeoutError) as exc:
            if self.held:
                log.warning("lease.renew_failed", lease=self.name, reason=_reason(exc))
                return self._until_give_up()
            await self._stop_part(on_lost, reason="not renewed in time")
            return self.renew_every_s
        if not still_ours:
            await self._stop_part(on_lost, reason="taken by another instance")
            return 0.0  # see at once who holds it and when it runs out
        return self.renew_every_s

    def _until_give_up(self) -> float:
        """Seconds to the next renewal attempt after a failed one, never past the give-up point."""
        if self._expires_at is None:
            return self.renew_every_s
        give_up_at = self._expires_at - timedelta(seconds=self.renew_every_s)
        left = (give_up_at - self._clock()).total_seconds()
        return max(0.0, min(self.renew_every_s, left))

    async def _standby_wait(self) -> float:
        """How long a standby waits: until the holder's lease runs out, at most one period."""
        try:
            current = await self.holder()
        except StoreError:
            return self.renew_every_s
        if current is None:
            return self.renew_every_s
        if current.owner is None:  # released since our try: take it now
            return 0.0
        log.debug(
            "lease.standby",
            lease=self.name,
            holder=current.owner,
            until=current.expires_at.isoformat(),
        )
        left = (current.expires_at - self._clock()).total_seconds()
        return max(0.0, min(self.renew_every_s, left))

    async def _stop_part(self, on_lost: Callback, *, reason: str) -> None:
        self._consuming = False
        self._expires_at = None
        if reason == "stopping":
            log.info("lease.stopping", lease=self.name, owner=self.owner)
        else:
            log.warning("lease.lost", lease=self.name, owner=self.owner, reason=reason)
        try:
            await on_lost()
        except Exception:  # stopping must go on; the error is logged
            log.exception("lease.stop_failed", lease=self.name)


def _reason(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, StoreError) else "timed out"


__all__ = [
    "DEFAULT_RENEW_EVERY_S",
    "DEFAULT_TTL_S",
    "LeaseHolder",
    "RoleLease",
    "all_leases",
    "extend",
    "give_up",
    "read",
    "take",
]
