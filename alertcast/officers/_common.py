"""Small pieces the officers' stores share: the clock, hashing of secrets, name rules."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime

from alertcast.officers.errors import Invalid

Clock = Callable[[], datetime]

NAME_PATTERN = re.compile(r"^[a-z0-9._-]{1,64}$")
"""User names: 1-64 characters of lowercase letters, digits, dot, underscore and hyphen."""


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
