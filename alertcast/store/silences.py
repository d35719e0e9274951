"""Silences: operators' time-boxed mutes, stored and audited.

A silence is a deliberate decision not to tell people something, so it is
treated like any other decision with consequences: it names its author and
reason, it ends by itself (``ends_at`` is required), and creating or ending
one writes an audit record in the same transaction as the change. Nothing
is ever deleted; an ended silence stays in the table as the record of what
was muted and when.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alertcast import audit
from alertcast.domain import format_cap_datetime
from alertcast.errors import AlertcastError, StoreError
from alertcast.rules_model import LabelMatcher, Silence
from alertcast.store.engine import database_errors, read_only
from alertcast.store.tables import silences

log = structlog.get_logger(__name__)

CREATED_ACTION = "silence.created"
EXPIRED_ACTION = "silence.expired"


class SilenceNotFoundError(AlertcastError, LookupError):
    """No silence has that id."""

    def __init__(self, silence_id: int) -> None:
        self.silence_id = silence_id
        super().__init__(f"there is no silence #{silence_id}")


@dataclass(frozen=True, slots=True)
class ExpireResult:
    """The silence after :meth:`SilenceRepository.expire`; ``expired_now`` is False
    when it had already ended (nothing was changed or audited then)."""

    silence: Silence
    expired_now: bool


def subject(silence_id: int) -> str:
    """The audit subject of a silence."""
    return f"silence:{silence_id}"


def check_new_silence(
    *,
    matchers: Sequence[LabelMatcher],
    starts_at: datetime,
    ends_at: datetime,
    author: str,
    reason: str,
    now: datetime,
) -> None:
    """Refuse a silence that would mute everything, never end, or come from nobody.

    Raises ValueError with a message for the person setting it.
    """
    if not matchers:
        raise ValueError("a silence needs at least one matcher (it would mute every alert)")
    for name, value in (("starts_at", starts_at), ("ends_at", ends_at), ("now", now)):
        if value.tzinfo is None:
            raise ValueError(f"{name} must carry a time zone")
    if ends_at <= starts_at:
        raise ValueError("a silence must end after it starts")
    if ends_at <= now:
        raise ValueError("that silence would already be over")
    if not author.strip():
        raise ValueError("a silence needs an author")
    if not reason.strip():
        raise ValueError("a silence needs a reason")


def _matchers_json(matchers: Sequence[LabelMatcher]) -> str:
    return json.dumps([m.to_json() for m in matchers], ensure_ascii=False, sort_keys=True)


def _silence_from_row(row: Row[Any]) -> Silence:
    try:
        matchers = tuple(
            LabelMatcher.make(item["label"], item["op"], item["value"])
            for item in json.loads(row.matchers)
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"silence #{row.id} has unreadable matchers: {exc}") from exc
    return Silence(
        id=int(row.id),
        matchers=matchers,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        author=row.author,
        reason=row.reason,
        created_at=row.created_at,
        expired_at=row.expired_at,
        include_extreme=bool(row.include_extreme),
    )


def _active_at(at: datetime) -> Any:
    return and_(
        silences.c.starts_at <= at,
        silences.c.ends_at > at,
        or_(silences.c.expired_at.is_(None), silences.c.expired_at > at),
    )


class SilenceRepository:
    """Adds, lists and ends silences; every change is audited in its own transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(
        self,
        *,
        matchers: Sequence[LabelMatcher],
        starts_at: datetime,
        ends_at: datetime,
        author: str,
        reason: str,
        include_extreme: bool = False,
        now: datetime | None = None,
    ) -> Silence:
        """Store a new silence and its ``silence.created`` audit record together."""
        created_at = now if now is not None else datetime.now(UTC)
        check_new_silence(
            matchers=matchers,
            starts_at=starts_at,
            ends_at=ends_at,
            author=author,
            reason=reason,
            now=created_at,
        )
        values = {
            "matchers": _matchers_json(matchers),
            "include_extreme": include_extreme,
            "starts_at": starts_at,
            "ends_at": ends_at,
            "author": author.strip(),
            "reason": reason.strip(),
            "created_at": created_at,
        }
        with database_errors("cannot store the silence"):
            async with self._engine.begin() as conn:
                result = await conn.execute(
                    silences.insert().values(**values).returning(silences.c.id)
                )
                silence_id = int(result.scalar_one())
                await audit.append(
                    conn,
                    actor=author.strip(),
                    action=CREATED_ACTION,
                    subject=subject(silence_id),
                    data={
                        "matchers": [str(m) for m in matchers],
                        "starts_at": format_cap_datetime(starts_at),
                        "ends_at": format_cap_datetime(ends_at),
                        "reason": reason.strip(),
                        "include_extreme": include_extreme,
                    },
                    at=created_at,
                )
        log.info(
            "silence.created",
            silence=silence_id,
            matchers=[str(m) for m in matchers],
            ends_at=ends_at.isoformat(),
            author=author.strip(),
        )
        return Silence(
            id=silence_id,
            matchers=tuple(matchers),
            starts_at=starts_at,
            ends_at=ends_at,
            author=author.strip(),
            reason=reason.strip(),
            created_at=created_at,
            include_extreme=include_extreme,
        )

    async def get(self, silence_id: int) -> Silence | None:
        with database_errors(f"cannot read silence #{silence_id}"):
            async with read_only(self._engine) as conn:
                row = (
                    await conn.execute(select(silences).where(silences.c.id == silence_id))
                ).first()
        return _silence_from_row(row) if row is not None else None

    async def active(self, at: datetime) -> list[Silence]:
        """The silences muting at ``at``, oldest first: what routing is given."""
        query = select(silences).where(_active_at(at)).order_by(silences.c.id)
        with database_errors("cannot read the active silences"):
            async with read_only(self._engine) as conn:
                rows = (await conn.execute(query)).all()
        return [_silence_from_row(row) for row in rows]

    async def recent(self, at: datetime, *, include_ended: bool = False) -> list[Silence]:
        """Silences active or yet to start at ``at`` (ended ones too if asked), newest first."""
        query = select(silences).order_by(silences.c.id.desc())
        if not include_ended:
            query = query.where(
                silences.c.ends_at > at,
                or_(silences.c.expired_at.is_(None), silences.c.expired_at > at),
            )
        with database_errors("cannot list the silences"):
            async with read_only(self._engine) as conn:
                rows = (await conn.execute(query)).all()
        return [_silence_from_row(row) for row in rows]

    async def expire(
        self, silence_id: int, *, actor: str, at: datetime | None = None
    ) -> ExpireResult:
        """End a silence now, audited as ``silence.expired``; already ended ones are left alone.

        Raises :class:`SilenceNotFoundError` when there is no such silence.
        """
        if not actor.strip():
            raise ValueError("ending a silence needs the name of who ends it")
        when = at if at is not None else datetime.now(UTC)
        with database_errors(f"cannot end silence #{silence_id}"):
            async with self._engine.begin() as conn:
                current = await _locked(conn, silence_id)
                if current is None:
                    raise SilenceNotFoundError(silence_id)
                if current.effective_end <= when:
                    return ExpireResult(current, expired_now=False)
                await conn.execute(
                    silences.update().where(silences.c.id == silence_id).values(expired_at=when)
                )
                await audit.append(
                    conn,
                    actor=actor.strip(),
                    action=EXPIRED_ACTION,
                    subject=subject(silence_id),
                    data={
                        "matchers": [str(m) for m in current.matchers],
                        "was_to_end_at": format_cap_datetime(current.ends_at),
                        "author": current.author,
                        "reason": current.reason,
                    },
                    at=when,
                )
        log.info("silence.expired", silence=silence_id, actor=actor.strip())
        return ExpireResult(replace(current, expired_at=when), expired_now=True)


async def _locked(conn: AsyncConnection, silence_id: int) -> Silence | None:
    """The silence, locked until the transaction ends (SQLite's BEGIN IMMEDIATE locks already)."""
    query = select(silences).where(silences.c.id == silence_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return _silence_from_row(row) if row is not None else None
