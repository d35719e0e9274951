"""Small pieces the officers' stores share: the clock, hashing of secrets, name rules."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection

from alertcast.officers.errors import Invalid

Clock = Callable[[], datetime]

NAME_PATTERN = re.compile(r"^[a-z0-9._-]{1,64}$")
"""User names: 1-64 characters of lowercase letters, digits, dot, underscore and hyphen."""

MAX_SECRET_LENGTH = 200
"""Longer tokens or session cookies are none of ours: refused without a query."""

TOUCH_RESOLUTION = timedelta(minutes=1)
"""When a token or a session was last used is written at most this often, so busy
clients do not queue writes (the idle timeout and the listings are coarse anyway)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def sha256_hex(secret: str) -> str:
    """The stored form of a token or a session cookie: a copy of the table reveals neither."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def check_name(name: object) -> str:
    """``name`` when it is a valid user name; Invalid naming the rule otherwise."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise Invalid(
            f"name: {name!r} must be 1 to 64 characters of a-z, 0-9, '.', '_' or '-'",
            es=f"name: {name!r} debe tener de 1 a 64 caracteres entre a-z, 0-9, '.', '_' o '-'",
        )
    return name


async def insert_id(conn: AsyncConnection, table: Table, **values: Any) -> int:
    """Insert one row into ``table`` and return the ``id`` the database gave it."""
    return int(
        (await conn.execute(table.insert().values(**values).returning(table.c.id))).scalar_one()
    )
