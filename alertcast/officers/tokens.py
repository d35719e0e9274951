"""API tokens: what a program sends as ``Authorization: Bearer TOKEN``.

A token is ``act_`` followed by 32 random bytes (URL-safe base64). Only its
SHA-256 is stored, so a copy of the database lets nobody call the API; the
token itself is shown once, when it is created. The first characters
(``prefix``) are kept in clear so that a person can tell their tokens apart.

A token carries a role no higher than its user's; it acts with the lower of
the two, so lowering a person's role lowers their tokens at once. Revoked
tokens and tokens of disabled users authenticate nobody.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit
from alertcast.officers._common import (
    MAX_SECRET_LENGTH,
    TOUCH_RESOLUTION,
    Clock,
    insert_id,
    sha256_hex,
    utc_now,
)
from alertcast.officers.errors import Conflict, Invalid, NotFound
from alertcast.officers.roles import Principal, Role
from alertcast.store.engine import database_errors, read_only
from alertcast.store.tables import api_tokens, users

__all__ = ["TOKEN_PREFIX", "TokenInfo", "TokenStore"]

log = structlog.get_logger(__name__)

TOKEN_PREFIX = "act_"  # noqa: S105 - the public marker of our tokens, not a secret
PREFIX_LENGTH = 8
"""Characters of the token kept in clear (``prefix``)."""
MAX_LABEL = 200


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as lists show it: never the token, only its prefix."""

    id: int
    user: str
    label: str
    role: Role
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user,
            "label": self.label,
            "role": self.role.value,
            "prefix": self.prefix,
            "created_at": self.created_at.isoformat(),
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def _info(row: Row[Any]) -> TokenInfo:
    return TokenInfo(
        id=int(row.id),
        user=row.name,
        label=row.label,
        role=Role(row.role),
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def _with_user() -> Any:
    return select(api_tokens, users.c.name, users.c.disabled, users.c.role.label("user_role")).join(
        users, users.c.id == api_tokens.c.user_id
    )


class TokenStore:
    """API tokens, stored hashed in ``api_tokens``."""

    def __init__(self, engine: AsyncEngine, *, clock: Clock = utc_now) -> None:
        self._engine = engine
        self._clock = clock

    async def create(
        self, user: str, *, role: Role | None = None, label: str = "", actor: str
    ) -> tuple[str, TokenInfo]:
        """A new token for ``user`` (plaintext, shown once) and what is stored of it.

        ``role`` defaults to the user's; a higher role than the user's is
        Invalid. A disabled user gets no token (Conflict).
        """
        label = (label or "").strip()
        if len(label) > MAX_LABEL:
            raise Invalid(
                f"label: at most {MAX_LABEL} characters",
                es=f"label: {MAX_LABEL} caracteres como máximo",
            )
        now = self._clock()
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with database_errors(f"cannot create a token for {user}"):
            async with self._engine.begin() as conn:
                row = (await conn.execute(select(users).where(users.c.name == user))).first()
                if row is None:
                    raise NotFound(
                        f"there is no user {user!r}", es=f"no existe el usuario {user!r}"
                    )
                if row.disabled:
                    raise Conflict(
                        f"user {user!r} is disabled", es=f"el usuario {user!r} está deshabilitado"
                    )
                own = Role(row.role)
                scoped = Role(role) if role is not None else own
                if not own.allows(scoped):
                    raise Invalid(
                        f"role: {scoped.value} is above {user}'s role {own.value}",
                        es=f"role: {scoped.value} es superior al rol {own.value} de {user}",
                    )
                prefix = token[:PREFIX_LENGTH]
                token_id = await insert_id(
                    conn,
                    api_tokens,
                    user_id=row.id,
                    label=label,
                    role=scoped.value,
                    token_hash=sha256_hex(token),
                    prefix=prefix,
                    created_at=now,
                )
                await audit.append(
                    conn,
                    actor=actor,
                    action="token.created",
                    subject=f"user:{user}",
                    data={
                        "token_id": token_id,
                        "role": scoped.value,
                        "label": label,
                        "prefix": prefix,
                    },
                    at=now,
                )
        log.info("token.created", user=user, token_id=token_id, role=scoped.value, actor=actor)
        info = TokenInfo(token_id, user, label, scoped, prefix, now, None, None)
        return token, info

    async def authenticate(self, token: str) -> Principal | None:
        """Who ``token`` belongs to, acting with the lower of its role and the user's.

        None for an unknown or revoked token or a disabled user. Notes the use
        (``last_used_at``) at most once a minute.
        """
        if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX):
            return None
        if len(token) > MAX_SECRET_LENGTH:
            return None
        digest = sha256_hex(token)
        with database_errors("cannot check an API token"):
            async with read_only(self._engine) as conn:
                row = (
                    await conn.execute(_with_user().where(api_tokens.c.token_hash == digest))
                ).first()
        if row is None or row.revoked_at is not None or row.disabled:
            return None
        now = self._clock()
        if row.last_used_at is None or now - row.last_used_at >= TOUCH_RESOLUTION:
            with database_errors("cannot note the use of an API token"):
                async with self._engine.begin() as conn:
                    await conn.execute(
                        update(api_tokens).where(api_tokens.c.id == row.id).values(last_used_at=now)
                    )
        scoped, own = Role(row.role), Role(row.user_role)
        return Principal(name=row.name, role=scoped if own.allows(scoped) else own, via="token")

    async def revoke(self, token_id: int, *, actor: str) -> TokenInfo:
        """Revoke a token for good; revoking it again changes nothing. NotFound if unknown."""
        now = self._clock()
        with database_errors(f"cannot revoke token {token_id}"):
            async with self._engine.begin() as conn:
                row = (await conn.execute(_with_user().where(api_tokens.c.id == token_id))).first()
                if row is None:
                    raise NotFound(
                        f"there is no token {token_id}", es=f"no existe el token {token_id}"
                    )
                if row.revoked_at is not None:
                    return _info(row)
                await conn.execute(
                    update(api_tokens).where(api_tokens.c.id == token_id).values(revoked_at=now)
                )
                await audit.append(
                    conn,
                    actor=actor,
                    action="token.revoked",
                    subject=f"user:{row.name}",
                    data={"token_id": token_id, "prefix": row.prefix},
                    at=now,
                )
        log.info("token.revoked", token_id=token_id, user=row.name, actor=actor)
        info = _info(row)
        return TokenInfo(
            info.id,
            info.user,
            info.label,
            info.role,
            info.prefix,
            info.created_at,
            info.last_used_at,
            now,
        )

    async def list(self, user: str | None = None) -> list[TokenInfo]:
        """Tokens, newest first; only ``user``'s when given."""
        query = _with_user().order_by(api_tokens.c.id.desc())
        if user is not None:
            query = query.where(users.c.name == user)
        with database_errors("cannot list API tokens"):
            async with read_only(self._engine) as conn:
                rows = (await conn.execute(query)).all()
        return [_info(row) for row in rows]
