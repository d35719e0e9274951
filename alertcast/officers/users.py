"""People who use alertcast, with a role and (for the console) a password.

Passwords are hashed with argon2id, a memory-hard function, through
argon2-cffi's :class:`~argon2.PasswordHasher`; the hash carries its own
parameters, so stronger settings later rehash at the next login. Hashing is
deliberately slow and runs in a worker thread, never on the event loop.

Checking the password of a user that does not exist still hashes once against
a dummy hash, so the time taken does not tell an attacker which names exist.
Disabling a user revokes their API tokens and ends their console sessions in
the same transaction: a person who left is locked out everywhere at once.
Every change is audited with the actor who made it; passwords and hashes are
never logged or audited.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit
from alertcast.officers._common import Clock, check_name, insert_id, utc_now
from alertcast.officers.errors import Conflict, Invalid, NotFound
from alertcast.officers.roles import Role
from alertcast.store.engine import database_errors, read_only
from alertcast.store.tables import api_tokens, users, web_sessions

__all__ = ["MAX_PASSWORD", "MIN_PASSWORD", "User", "UserStore"]

log = structlog.get_logger(__name__)

MIN_PASSWORD = 8
"""Shortest password accepted: long enough to resist guessing with the login throttle."""

MAX_PASSWORD = 1024
"""Longest password accepted, so that nobody makes the server hash megabytes."""


@dataclass(frozen=True, slots=True)
class User:
    """A user as the console, the API and the CLI show it (never the password hash)."""

    id: int
    name: str
    display_name: str
    role: Role
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None
    has_password: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "display_name": self.display_name,
            "role": self.role.value,
            "disabled": self.disabled,
            "created_at": self.created_at.isoformat(),
            "last_login_at": self.last_login_at.isoformat() if self.last_login_at else None,
            "has_password": self.has_password,
        }


def _user(row: Row[Any]) -> User:
    return User(
        id=int(row.id),
        name=row.name,
        display_name=row.display_name,
        role=Role(row.role),
        disabled=bool(row.disabled),
        created_at=row.created_at,
        last_login_at=row.last_login_at,
        has_password=row.password_hash is not None,
    )


def check_password_text(password: object) -> str:
    """``password`` when acceptable; Invalid saying what is wrong otherwise."""
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise Invalid(
            f"password: must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long",
            es=f"password: debe tener de {MIN_PASSWORD} a {MAX_PASSWORD} caracteres",
        )
    return password


class UserStore:
    """Users, stored in ``users``; see the module docstring."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        hasher: PasswordHasher | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._engine = engine
        self._hasher = hasher or PasswordHasher()
        self._clock = clock
        self._dummy_hash: str | None = None

    # ------------------------------------------------------------------ reading

    async def get(self, name: str) -> User | None:
        """The user called ``name``, or None."""
        with database_errors(f"cannot read user {name}"):
            async with read_only(self._engine) as conn:
                row = (await conn.execute(select(users).where(users.c.name == name))).first()
        return _user(row) if row is not None else None

    async def require(self, name: str) -> User:
        """The user called ``name``; NotFound otherwise."""
        user = await self.get(name)
        if user is None:
            raise NotFound(f"there is no user {name!r}", es=f"no existe el usuario {name!r}")
        return user

    async def list(self) -> list[User]:
        """Every user, by name."""
        with database_errors("cannot list users"):
            async with read_only(self._engine) as conn:
                rows = (await conn.execute(select(users).order_by(users.c.name))).all()
        return [_user(row) for row in rows]

    async def count(self) -> int:
        """How many users exist (disabled ones included)."""
        with database_errors("cannot count users"):
            async with read_only(self._engine) as conn:
                return int(
                    (await conn.execute(select(func.count()).select_from(users))).scalar_one()
                )

    # ------------------------------------------------------------------ changing

    async def add(
        self,
        name: str,
        role: Role,
        *,
        password: str | None = None,
        display_name: str | None = None,
        actor: str,
    ) -> User:
        """Create a user; Conflict when the name is taken, Invalid for a bad name or password."""
        check_name(name)
        role = Role(role)
        password_hash = (
            await self._hash(check_password_text(password)) if password is not None else None
        )
        display = (display_name or "").strip() or name
        now = self._clock()
        with database_errors(f"cannot add user {name}"):
            try:
                async with self._engine.begin() as conn:
                    new_id = await insert_id(
                        conn,
                        users,
                        name=name,
                        display_name=display,
                        role=role.value,
                        password_hash=password_hash,
                        disabled=False,
                        created_at=now,
                        updated_at=now,
                    )
                    await audit.append(
                        conn,
                        actor=actor,
                        action="user.added",
                        subject=f"user:{name}",
                        data={"role": role.value, "has_password": password_hash is not None},
                        at=now,
                    )
            except IntegrityError:
                raise Conflict(
                    f"a user called {name!r} already exists", es=f"ya existe un usuario {name!r}"
                ) from None
        log.info("user.added", user=name, role=role.value, actor=actor)
        return User(
            id=new_id,
            name=name,
            display_name=display,
            role=role,
            disabled=False,
            created_at=now,
            last_login_at=None,
            has_password=password_hash is not None,
        )

    async def disable(self, name: str, *, actor: str) -> User:
        """Disable a user, revoke their tokens and end their sessions, in one transaction."""
        now = self._clock()
        with database_errors(f"cannot disable user {name}"):
            async with self._engine.begin() as conn:
                row = (await conn.execute(select(users).where(users.c.name == name))).first()
                if row is None:
                    raise NotFound(
                        f"there is no user {name!r}", es=f"no existe el usuario {name!r}"
                    )
                await conn.execute(
                    update(users).where(users.c.id == row.id).values(disabled=True, updated_at=now)
                )
                revoked = (
                    await conn.execute(
                        update(api_tokens)
                        .where(api_tokens.c.user_id == row.id, api_tokens.c.revoked_at.is_(None))
                        .values(revoked_at=now)
                    )
                ).rowcount
                ended = (
                    await conn.execute(delete(web_sessions).where(web_sessions.c.user_id == row.id))
                ).rowcount
                await audit.append(
                    conn,
                    actor=actor,
                    action="user.disabled",
                    subject=f"user:{name}",
                    data={"tokens_revoked": revoked, "sessions_ended": ended},
                    at=now,
                )
        log.info("user.disabled", user=name, actor=actor, tokens=revoked, sessions=ended)
        return await self.require(name)

    async def set_password(self, name: str, password: str, *, actor: str) -> None:
        """Set (or replace) a user's password; their other console sessions end."""
        password_hash = await self._hash(check_password_text(password))
        now = self._clock()
        with database_errors(f"cannot set the password of {name}"):
            async with self._engine.begin() as conn:
                row = (await conn.execute(select(users.c.id).where(users.c.name == name))).first()
                if row is None:
                    raise NotFound(
                        f"there is no user {name!r}", es=f"no existe el usuario {name!r}"
                    )
                await conn.execute(
                    update(users)
                    .where(users.c.id == row.id)
                    .values(password_hash=password_hash, updated_at=now)
                )
                await conn.execute(delete(web_sessions).where(web_sessions.c.user_id == row.id))
                await audit.append(
                    conn,
                    actor=actor,
                    action="user.password_set",
                    subject=f"user:{name}",
                    data={},
                    at=now,
                )
        log.info("user.password_set", user=name, actor=actor)

    async def check_password(self, name: str, password: str) -> User | None:
        """The user when ``password`` is theirs and they are enabled; None otherwise.

        Takes about as long for an unknown name as for a known one. A correct
        password whose hash used weaker parameters is rehashed; the login time
        is recorded.
        """
        if not isinstance(password, str) or len(password) > MAX_PASSWORD:
            return None
        with database_errors("cannot check a password"):
            async with read_only(self._engine) as conn:
                row = (await conn.execute(select(users).where(users.c.name == name))).first()
        stored = row.password_hash if row is not None else None
        if stored is None:
            await self._verify(await self._dummy(), password)
            return None
        if not await self._verify(stored, password) or row is None or row.disabled:
            return None
        now = self._clock()
        values: dict[str, Any] = {"last_login_at": now}
        if self._hasher.check_needs_rehash(stored):
            values["password_hash"] = await self._hash(password)
        with database_errors(f"cannot record the login of {name}"):
            async with self._engine.begin() as conn:
                await conn.execute(update(users).where(users.c.id == row.id).values(**values))
        return dataclasses.replace(_user(row), last_login_at=now)

    # ------------------------------------------------------------------ hashing

    async def _hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def _verify(self, stored: str, password: str) -> bool:
        try:
            return await asyncio.to_thread(self._hasher.verify, stored, password)
        except VerifyMismatchError:
            return False
        except (VerificationError, InvalidHashError):
            log.error("user.password_hash_unreadable")
            return False

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await self._hash("not a password of anyone")
        return self._dummy_hash
