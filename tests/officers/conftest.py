"""Fixtures for the officers' tests: stores and a clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.officers.sessions import SessionStore
from alertcast.officers.tokens import TokenStore
from alertcast.officers.users import UserStore

ADMIN = "user:admin"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 9, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def fast_hasher() -> PasswordHasher:
    """argon2id with small costs: the same algorithm, fast enough for many tests."""
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def user_store(engine: AsyncEngine, clock: Clock) -> UserStore:
    return UserStore(engine, hasher=fast_hasher(), clock=clock)


@pytest.fixture
def token_store(engine: AsyncEngine, clock: Clock) -> TokenStore:
    return TokenStore(engine, clock=clock)


@pytest.fixture
def session_store(engine: AsyncEngine, clock: Clock) -> SessionStore:
    return SessionStore(engine, clock=clock)
