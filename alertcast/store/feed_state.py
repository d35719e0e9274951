"""What alertcast remembers about each feed between polls, and about each entry it listed.

``feed_state`` holds one row per feed: the validators of the last document
that was *fully* handled (ETag, Last-Modified, SHA-256: a receipt, so a
document whose linked alerts could not all be fetched is read again next
time), the health counters, when to poll next, and the lease that lets one
instance among several poll it. ``feed_entries`` holds one row per entry a
feed listed (a linked document's URL, or an embedded alert's key), so that a
linked document is fetched once, and so that an entry that leaves a complete
index can be told apart from one that never was there.

The functions taking a connection work inside the caller's transaction (the
health stage writes the state and its audit record together); the
:class:`FeedStateRepository` methods each run their own short transaction.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alertcast.errors import StoreError
from alertcast.store.engine import database_errors, read_only
from alertcast.store.tables import feed_entries, feed_state

ERROR_TEXT_LIMIT = 2000
"""``last_error`` is a reason for people; a server's whole error page is not kept."""


@dataclass(frozen=True, slots=True)
class FeedState:
    """One row of ``feed_state``."""

    feed: str
    etag: str | None = None
    last_modified: str | None = None
    content_sha256: str | None = None
    last_attempt_at: datetime | None = None
    last_success_at: datetime | None = None
    last_change_at: datetime | None = None
    consecutive_failures: int = 0
    last_error: str | None = None
    items_seen: int = 0
    next_poll_at: datetime | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One row of ``feed_entries``: an entry a feed listed."""

    feed: str
    entry_id: str
    alert_id: int | None
    link: str | None
    etag: str | None
    content_sha256: str | None
    first_seen_at: datetime
    last_seen_at: datetime
    gone_at: datetime | None


@dataclass(frozen=True, slots=True)
class Validators:
    """What a conditional GET sends back, and the body's hash for servers that ignore it."""

    etag: str | None
    last_modified: str | None
    content_sha256: str | None


def _state(row: Row[Any]) -> FeedState:
    return FeedState(
        feed=row.feed,
        etag=row.etag,
        last_modified=row.last_modified,
        content_sha256=row.content_sha256,
        last_attempt_at=row.last_attempt_at,
        last_success_at=row.last_success_at,
        last_change_at=row.last_change_at,
        consecutive_failures=int(row.consecutive_failures),
        last_error=row.last_error,
        items_seen=int(row.items_seen),
        next_poll_at=row.next_poll_at,
        lease_owner=row.lease_owner,
        lease_until=row.lease_until,
    )


def _entry(row: Row[Any]) -> FeedEntry:
    return FeedEntry(
        feed=row.feed,
        entry_id=row.entry_id,
        alert_id=int(row.alert_id) if row.alert_id is not None else None,
        link=row.link,
        etag=row.etag,
        content_sha256=row.content_sha256,
        first_seen_at=row.first_seen_at,
        last_seen_at=row.last_seen_at,
        gone_at=row.gone_at,
    )


def _insert(conn: AsyncConnection, table: Any) -> Any:
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise StoreError(f"feed state cannot be kept in a {dialect!r} database")


def _owned_by(owner: str | None) -> Any:
    return (
        feed_state.c.lease_owner == owner if owner is not None else feed_state.c.feed.is_not(None)
    )


# --------------------------------------------------------------------------- feed_state


async def ensure(conn: AsyncConnection, feed: str) -> None:
    """Create the feed's row if it has none yet (safe when two instances race)."""
    await conn.execute(
        _insert(conn, feed_state).values(feed=feed).on_conflict_do_nothing(index_elements=["feed"])
    )


async def get(conn: AsyncConnection, feed: str, *, for_update: bool = False) -> FeedState | None:
    """The feed's row; ``for_update`` locks it on PostgreSQL until the transaction ends."""
    query = select(feed_state).where(feed_state.c.feed == feed)
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return _state(row) if row is not None else None


async def acquire_lease(
    conn: AsyncConnection, feed: str, *, owner: str, now: datetime, until: datetime
) -> FeedState | None:
    """Take or renew the feed's lease; the state when granted, None when another holds it.

    One conditional UPDATE decides: it matches only when nobody holds the
    lease, ``owner`` does, or the holder's lease ran out. On PostgreSQL, two
    instances racing for the same row are serialised by the row lock, and the
    loser re-checks the condition against the winner's values, so exactly one
    of them is granted.
    """
    await ensure(conn, feed)
    statement = (
        update(feed_state)
        .where(
            feed_state.c.feed == feed,
            or_(
                feed_state.c.lease_owner.is_(None),
                feed_state.c.lease_owner == owner,
                feed_state.c.lease_until.is_(None),
                feed_state.c.lease_until <= now,
            ),
        )
        .values(lease_owner=owner, lease_until=until)
        .returning(*feed_state.c)
    )
    row = (await conn.execute(statement)).first()
    return _state(row) if row is not None else None


async def acquire_leases(
    conn: AsyncConnection, grants: dict[str, datetime], *, owner: str, now: datetime
) -> dict[str, FeedState]:
    """Take the leases of many feeds at once (an instance starting); the granted ones' state.

    ``grants`` maps each feed to the lease end wanted. The same condition as
    :func:`acquire_lease`, run as one ``executemany``, then one read-back:
    starting with a thousand feeds costs three statements, not a thousand
    transactions.
    """
    if not grants:
        return {}
    names = list(grants)
    await conn.execute(
        _insert(conn, feed_state).on_conflict_do_nothing(index_elements=["feed"]),
        [{"feed": name} for name in names],
    )
    await conn.execute(
        update(feed_state)
        .where(
            feed_state.c.feed == bindparam("p_feed"),
            or_(
                feed_state.c.lease_owner.is_(None),
                feed_state.c.lease_owner == owner,
                feed_state.c.lease_until.is_(None),
                feed_state.c.lease_until <= now,
            ),
        )
        .values(
            lease_owner=owner,
            lease_until=bindparam("p_until", type_=feed_state.c.lease_until.type),
        ),
        [{"p_feed": name, "p_until": until} for name, until in grants.items()],
    )
    granted: dict[str, FeedState] = {}
    for start in range(0, len(names), 500):
        rows = await conn.execute(
            select(feed_state).where(feed_state.c.feed.in_(names[start : start + 500]))
        )
        for row in rows:
            state = _state(row)
            if state.lease_owner == owner and state.lease_until == grants[state.feed]:
                granted[state.feed] = state
    return granted


async def extend_lease(conn: AsyncConnection, feed: str, *, owner: str, until: datetime) -> bool:
    """Push the lease's end further; False when ``owner`` no longer holds it."""
    result = await conn.execute(
        update(feed_state)
        .where(feed_state.c.feed == feed, feed_state.c.lease_owner == owner)
        .values(lease_until=until)
    )
    return bool(result.rowcount)


async def release_lease(conn: AsyncConnection, feed: str, *, owner: str) -> bool:
    """Give the lease up (on a clean stop), so another instance takes over at once."""
    result = await conn.execute(
        update(feed_state)
        .where(feed_state.c.feed == feed, feed_state.c.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
    )
    return bool(result.rowcount)


@cache
def _quiet_success_statement(
    *, changed: bool, validators: bool, owner: bool, returning: bool = True
) -> Any:
    """The UPDATE for a success after a success, built once per shape.

    It matches only a row with no failures counted (so no recovery can be
    missed) and, when ``owner``, a lease still held by the poller; when it
    matches nothing the caller takes the slow, locking path. Building the
    statement once keeps SQLAlchemy from compiling and hashing it on every
    poll, which is most of the cost of polling a thousand quiet feeds.
    """
    conditions = [
        feed_state.c.feed == bindparam("p_feed"),
        feed_state.c.consecutive_failures == 0,
    ]
    if owner:
        conditions.append(feed_state.c.lease_owner == bindparam("p_owner"))
    values: dict[str, Any] = {
        "last_attempt_at": bindparam("p_now", type_=feed_state.c.last_attempt_at.type),
        "last_success_at": bindparam("p_now", type_=feed_state.c.last_success_at.type),
        "last_error": None,
        "items_seen": feed_state.c.items_seen + bindparam("p_new_items"),
        "next_poll_at": bindparam("p_next", type_=feed_state.c.next_poll_at.type),
    }
    if changed:
        values["last_change_at"] = bindparam("p_now", type_=feed_state.c.last_change_at.type)
    if validators:
        values["etag"] = bindparam("p_etag")
        values["last_modified"] = bindparam("p_last_modified")
        values["content_sha256"] = bindparam("p_sha")
    if owner:
        values["lease_until"] = bindparam("p_lease_until", type_=feed_state.c.lease_until.type)
    statement = update(feed_state).where(*conditions).values(**values)
    return statement.returning(*feed_state.c) if returning else statement


async def record_success(
    conn: AsyncConnection,
    feed: str,
    *,
    now: datetime,
    changed: bool,
    validators: Validators | None,
    new_items: int,
    next_poll_at: datetime,
    owner: str | None,
    lease_until: datetime | None,
) -> tuple[FeedState, FeedState] | None:
    """Record a poll that worked; (before, after), or None when ``owner`` lost the lease.

    ``validators`` None keeps the stored ones (the document was read but not
    fully handled, so it must not be skipped next time); ``changed`` moves
    ``last_change_at``. A success after a success is one statement; after a
    failure the row is locked and read first, so the caller can tell a
    recovery.
    """
    held = owner is not None and lease_until is not None
    quick = _quiet_success_statement(changed=changed, validators=validators is not None, owner=held)
    parameters: dict[str, Any] = {
        "p_feed": feed,
        "p_now": now,
        "p_new_items": new_items,
        "p_next": next_poll_at,
    }
    if validators is not None:
        parameters |= {
            "p_etag": validators.etag,
            "p_last_modified": validators.last_modified,
            "p_sha": validators.content_sha256,
        }
    if held:
        parameters |= {"p_owner": owner, "p_lease_until": lease_until}
    row = (await conn.execute(quick, parameters)).first()
    if row is not None:
        after = _state(row)
        return dataclasses.replace(after, items_seen=after.items_seen - new_items), after

    await ensure(conn, feed)
    before = await get(conn, feed, for_update=True)
    assert before is not None
    values: dict[str, Any] = {
        "last_attempt_at": now,
        "last_success_at": now,
        "consecutive_failures": 0,
        "last_error": None,
        "items_seen": before.items_seen + new_items,
        "next_poll_at": next_poll_at,
    }
    if changed:
        values["last_change_at"] = now
    if validators is not None:
        values["etag"] = validators.etag
        values["last_modified"] = validators.last_modified
        values["content_sha256"] = validators.content_sha256
    if owner is not None and lease_until is not None:
        values["lease_until"] = lease_until
    result = await conn.execute(
        update(feed_state)
        .where(feed_state.c.feed == feed, _owned_by(owner))
        .values(**values)
        .returning(*feed_state.c)
    )
    updated = result.first()
    return (before, _state(updated)) if updated is not None else None


async def record_failure(
    conn: AsyncConnection,
    feed: str,
    *,
    now: datetime,
    error: str,
    next_poll_at: datetime,
    owner: str | None,
    lease_until: datetime | None,
) -> tuple[FeedState, FeedState] | None:
    """Record a failed poll; (before, after), or None when ``owner`` lost the lease."""
    await ensure(conn, feed)
    before = await get(conn, feed, for_update=True)
    assert before is not None
    values: dict[str, Any] = {
        "last_attempt_at": now,
        "consecutive_failures": before.consecutive_failures + 1,
        "last_error": error[:ERROR_TEXT_LIMIT],
        "next_poll_at": next_poll_at,
    }
    if owner is not None and lease_until is not None:
        values["lease_until"] = lease_until
    result = await conn.execute(
        update(feed_state)
        .where(feed_state.c.feed == feed, _owned_by(owner))
        .values(**values)
        .returning(*feed_state.c)
    )
    row = result.first()
    return (before, _state(row)) if row is not None else None


async def forget_validators(conn: AsyncConnection, feed: str) -> None:
    """Drop the stored ETag/Last-Modified/hash, so the next poll reads the document afresh."""
    await conn.execute(
        update(feed_state)
        .where(feed_state.c.feed == feed)
        .values(etag=None, last_modified=None, content_sha256=None)
    )


# --------------------------------------------------------------------------- quiet polls


@dataclass(frozen=True, slots=True)
class _QuietWrite:
    feed: str
    now: datetime
    owner: str | None
    validators: bool
    parameters: dict[str, Any]
    done: asyncio.Future[FeedState | None]


class QuietSuccessWriter:
    """Writes the records of quiet polls of many feeds together, a few times a second.

    Most polls change nothing: a 304, or the same body again, after a poll
    that also worked. Each still has to move ``last_success_at``,
    ``next_poll_at`` and the lease. Written one transaction per poll, a
    thousand quiet feeds cost a commit (and, on SQLite, an fsync) each; here
    the polls that end within :attr:`linger_s` of each other share one
    transaction, one ``executemany`` per statement shape and one read-back.

    :meth:`record` answers with the state after the write, or None when the
    quick write did not apply (a failure was counted meanwhile, or the lease
    was lost): the caller then records the poll the ordinary way, which tells
    a recovery or a lost lease apart. Nothing that needs an audit record goes
    through here.
    """

    def __init__(self, engine: AsyncEngine, *, linger_s: float = 0.25, max_batch: int = 500):
        self.linger_s = linger_s
        self._engine = engine
        self._max_batch = max_batch
        self._pending: list[_QuietWrite] = []
        self._flusher: asyncio.Task[None] | None = None

    async def record(
        self,
        feed: str,
        *,
        now: datetime,
        validators: Validators | None,
        next_poll_at: datetime,
        owner: str | None,
        lease_until: datetime | None,
    ) -> FeedState | None:
        held = owner is not None and lease_until is not None
        parameters: dict[str, Any] = {
            "p_feed": feed,
            "p_now": now,
            "p_new_items": 0,
            "p_next": next_poll_at,
        }
        if validators is not None:
            parameters |= {
                "p_etag": validators.etag,
                "p_last_modified": validators.last_modified,
                "p_sha": validators.content_sha256,
            }
        if held:
            parameters |= {"p_owner": owner, "p_lease_until": lease_until}
        done: asyncio.Future[FeedState | None] = asyncio.get_running_loop().create_future()
        self._pending.append(
            _QuietWrite(
                feed, now, owner if held else None, validators is not None, parameters, done
            )
        )
        if self._flusher is None or self._flusher.done():
            delay = 0.0 if len(self._pending) >= self._max_batch else self.linger_s
            self._flusher = asyncio.create_task(self._flush_after(delay), name="quiet-writes")
        return await done

    async def aclose(self) -> None:
        """Write what is pending (on shutdown)."""
        if self._flusher is not None:
            await self._flusher
        writes, self._pending = self._pending, []
        if writes:
            await self._flush(writes)

    async def _flush_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        writes, self._pending = self._pending, []
        self._flusher = None
        if writes:
            await self._flush(writes)

    async def _flush(self, writes: list[_QuietWrite]) -> None:
        try:
            with database_errors("cannot record the feeds' polls"):
                async with self._engine.begin() as conn:
                    shapes: dict[tuple[bool, bool], list[dict[str, Any]]] = {}
                    for write in writes:
                        shape = (write.validators, write.owner is not None)
                        shapes.setdefault(shape, []).append(write.parameters)
                    for (validators, owner), rows in shapes.items():
                        statement = _quiet_success_statement(
                            changed=False, validators=validators, owner=owner, returning=False
                        )
                        await conn.execute(statement, rows)
                    names = [write.feed for write in writes]
                    found = {
                        row.feed: _state(row)
                        for row in await conn.execute(
                            select(feed_state).where(feed_state.c.feed.in_(names))
                        )
                    }
        except BaseException as exc:
            for write in writes:
                if not write.done.done():
                    write.done.set_exception(exc)
            if isinstance(exc, Exception):
                return
            raise
        for write in writes:
            state = found.get(write.feed)
            applied = (
                state is not None
                and state.last_attempt_at == write.now
                and state.consecutive_failures == 0
                and (write.owner is None or state.lease_owner == write.owner)
            )
            if not write.done.done():
                write.done.set_result(state if applied else None)


# --------------------------------------------------------------------------- feed_entries


async def entries(conn: AsyncConnection, feed: str) -> dict[str, FeedEntry]:
    """Every entry stored for ``feed``, by entry id (those gone from the index included)."""
    rows = await conn.execute(select(feed_entries).where(feed_entries.c.feed == feed))
    return {row.entry_id: _entry(row) for row in rows}


async def upsert_entry(
    conn: AsyncConnection,
    feed: str,
    entry_id: str,
    *,
    now: datetime,
    alert_id: int | None = None,
    link: str | None = None,
    etag: str | None = None,
    content_sha256: str | None = None,
) -> None:
    """Record that the feed lists ``entry_id`` now; the given fields replace the stored ones.

    Fields passed as None keep their stored value, so that touching an entry
    never forgets the alert or the validators learnt earlier.
    """
    values: dict[str, Any] = {
        "feed": feed,
        "entry_id": entry_id,
        "alert_id": alert_id,
        "link": link,
        "etag": etag,
        "content_sha256": content_sha256,
        "first_seen_at": now,
        "last_seen_at": now,
        "gone_at": None,
    }
    changes: dict[str, Any] = {"last_seen_at": now, "gone_at": None}
    for name in ("alert_id", "link", "etag", "content_sha256"):
        if values[name] is not None:
            changes[name] = values[name]
    statement = (
        _insert(conn, feed_entries)
        .values(**values)
        .on_conflict_do_update(index_elements=["feed", "entry_id"], set_=changes)
    )
    await conn.execute(statement)


async def touch_entries(
    conn: AsyncConnection, feed: str, entry_ids: Iterable[str], *, now: datetime
) -> None:
    """Mark entries already stored as listed now (and back, if they had gone)."""
    ids = list(entry_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        await conn.execute(
            update(feed_entries)
            .where(feed_entries.c.feed == feed, feed_entries.c.entry_id.in_(chunk))
            .values(last_seen_at=now, gone_at=None)
        )


async def mark_gone(
    conn: AsyncConnection, feed: str, present: Iterable[str], *, now: datetime
) -> list[FeedEntry]:
    """Entries that were listed and are not in ``present`` any more: mark them gone, return them."""
    keep = set(present)
    rows = await conn.execute(
        select(feed_entries).where(feed_entries.c.feed == feed, feed_entries.c.gone_at.is_(None))
    )
    gone = [_entry(row) for row in rows if row.entry_id not in keep]
    ids = [entry.entry_id for entry in gone]
    for start in range(0, len(ids), 500):
        await conn.execute(
            update(feed_entries)
            .where(
                and_(
                    feed_entries.c.feed == feed,
                    feed_entries.c.entry_id.in_(ids[start : start + 500]),
                )
            )
            .values(gone_at=now)
        )
    return gone


async def prune_gone(conn: AsyncConnection, feed: str, *, before: datetime) -> int:
    """Forget entries that left the index before ``before``; how many were forgotten."""
    result = await conn.execute(
        feed_entries.delete().where(
            feed_entries.c.feed == feed,
            feed_entries.c.gone_at.is_not(None),
            feed_entries.c.gone_at < before,
        )
    )
    return int(result.rowcount or 0)


# --------------------------------------------------------------------------- repository


class FeedStateRepository:
    """Short transactions over the two tables, for the poller and the CLI."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def get(self, feed: str) -> FeedState | None:
        with database_errors(f"cannot read the state of feed {feed}"):
            async with read_only(self._engine) as conn:
                return await get(conn, feed)

    async def all(self) -> dict[str, FeedState]:
        with database_errors("cannot read the feeds' state"):
            async with read_only(self._engine) as conn:
                rows = await conn.execute(select(feed_state).order_by(feed_state.c.feed))
                return {row.feed: _state(row) for row in rows}

    async def entries(self, feed: str) -> dict[str, FeedEntry]:
        with database_errors(f"cannot read the entries of feed {feed}"):
            async with read_only(self._engine) as conn:
                return await entries(conn, feed)

    async def acquire_lease(
        self, feed: str, *, owner: str, now: datetime, until: datetime
    ) -> FeedState | None:
        with database_errors(f"cannot take the lease of feed {feed}"):
            async with self._engine.begin() as conn:
                return await acquire_lease(conn, feed, owner=owner, now=now, until=until)

    async def acquire_leases(
        self, grants: dict[str, datetime], *, owner: str, now: datetime
    ) -> dict[str, FeedState]:
        with database_errors("cannot take the feeds' leases"):
            async with self._engine.begin() as conn:
                return await acquire_leases(conn, grants, owner=owner, now=now)

    async def extend_lease(self, feed: str, *, owner: str, until: datetime) -> bool:
        with database_errors(f"cannot extend the lease of feed {feed}"):
            async with self._engine.begin() as conn:
                return await extend_lease(conn, feed, owner=owner, until=until)

    async def release_lease(self, feed: str, *, owner: str) -> bool:
        with database_errors(f"cannot release the lease of feed {feed}"):
            async with self._engine.begin() as conn:
                return await release_lease(conn, feed, owner=owner)

    async def forget_validators(self, feed: str) -> None:
        with database_errors(f"cannot update feed {feed}"):
            async with self._engine.begin() as conn:
                await forget_validators(conn, feed)
