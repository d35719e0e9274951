"""Console sessions: the ``alertcast_session`` cookie and the CSRF token that goes with it.

The cookie value is 32 random bytes; only its SHA-256 is stored, so a copy of
the table lets nobody log in. A session lasts 12 hours at most and ends after
30 minutes without a request: a console left open in an emergency room does
not stay signed in overnight. Each session has its own random CSRF token,
which forms and scripts send back with every change (see
:mod:`alertcast.web.auth`). The principal is read fresh on each request, so a
lowered role or a disabled user takes effect at once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit
from alertcast.officers._common import (
    MAX_SECRET_LENGTH,
    TOUCH_RESOLUTION,
    Clock,
    sha256_hex,
    utc_now,
)
from alertcast.officers.errors import Conflict
from alertcast.officers.roles import Principal, Role
from alertcast.officers.users import User
from alertcast.store.engine import database_errors, read_only
from alertcast.store.tables import users, web_sessions

__all__ = ["ABSOLUTE_LIFETIME", "IDLE_TIMEOUT", "Session", "SessionStore"]

log = structlog.get_logger(__name__)

ABSOLUTE_LIFETIME = timedelta(hours=12)
IDLE_TIMEOUT = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class Session:
    """A live console session: who, the CSRF token forms must carry, when it ends at the latest."""

    principal: Principal
    csrf_token: str
    expires_at: datetime


class SessionStore:
    """Console sessions, stored hashed in ``web_sessions``."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Clock = utc_now,
        lifetime: timedelta = ABSOLUTE_LIFETIME,
        idle: timedelta = IDLE_TIMEOUT,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._lifetime = lifetime
        self._idle = idle

    async def create(self, user: User) -> tuple[str, Session]:
        """Start a session for ``user`` (who just proved their password): cookie value and session.

        Expired sessions of anyone are cleared at the same time. A disabled
        user gets no session (Conflict).
        """
        if user.disabled:
            raise Conflict(
                f"user {user.name!r} is disabled", es=f"el usuario {user.name!r} está deshabilitado"
            )
        now = self._clock()
        cookie = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        expires = now + self._lifetime
        with database_errors(f"cannot start a session for {user.name}"):
            async with self._engine.begin() as conn:
                await conn.execute(
                    delete(web_sessions).where(
                        or_(
                            web_sessions.c.expires_at <= now,
                            web_sessions.c.last_seen_at <= now - self._idle,
                        )
                    )
                )
                await conn.execute(
                    web_sessions.insert().values(
                        id_hash=sha256_hex(cookie),
                        user_id=user.id,
                        csrf_token=csrf,
                        created_at=now,
                        last_seen_at=now,
                        expires_at=expires,
                    )
                )
                await audit.append(
                    conn,
                    actor=f"user:{user.name}",
                    action="session.started",
                    subject=f"user:{user.name}",
                    data={"expires_at": expires.isoformat()},
                    at=now,
                )
        log.info("session.started", user=user.name)
        return cookie, Session(Principal(user.name, user.role, "session"), csrf, expires)

    async def get(self, cookie_value: str) -> Session | None:
        """The live session of this cookie, or None (unknown, expired, idle, user disabled)."""
        if not cookie_value or len(cookie_value) > MAX_SECRET_LENGTH:
            return None
        digest = sha256_hex(cookie_value)
        with database_errors("cannot read a console session"):
            async with read_only(self._engine) as conn:
                row = (
                    await conn.execute(
                        select(web_sessions, users.c.name, users.c.role, users.c.disabled)
                        .join(users, users.c.id == web_sessions.c.user_id)
                        .where(web_sessions.c.id_hash == digest)
                    )
                ).first()
        if row is None:
            return None
        now = self._clock()
        if row.disabled or row.expires_at <= now or row.last_seen_at + self._idle <= now:
            await self._delete(digest)
            return None
        if now - row.last_seen_at >= TOUCH_RESOLUTION:
            with database_errors("cannot refresh a console session"):
                async with self._engine.begin() as conn:
                    await conn.execute(
                        update(web_sessions)
                        .where(web_sessions.c.id_hash == digest)
                        .values(last_seen_at=now)
                    )
        return Session(
            Principal(row.name, Role(row.role), "session"), row.csrf_token, row.expires_at
        )

    async def end(self, cookie_value: str) -> None:
        """Log out: the session ends now (nothing happens for an unknown cookie)."""
        if not cookie_value or len(cookie_value) > MAX_SECRET_LENGTH:
            return
        digest = sha256_hex(cookie_value)
        now = self._clock()
        with database_errors("cannot end a console session"):
            async with self._engine.begin() as conn:
                name = (
                    await conn.execute(
                        select(users.c.name)
                        .join(web_sessions, web_sessions.c.user_id == users.c.id)
                        .where(web_sessions.c.id_hash == digest)
                    )
                ).scalar_one_or_none()
                if name is None:
                    return
                await conn.execute(delete(web_sessions).where(web_sessions.c.id_hash == digest))
                await audit.append(
                    conn,
                    actor=f"user:{name}",
                    action="session.ended",
                    subject=f"user:{name}",
                    data={},
                    at=now,
                )
        log.info("session.ended", user=name)

    async def _delete(self, digest: str) -> None:
        with database_errors("cannot end a console session"):
            async with self._engine.begin() as conn:
                await conn.execute(delete(web_sessions).where(web_sessions.c.id_hash == digest))
