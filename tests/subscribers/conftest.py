"""Fixtures for the subscriber tests: a fixed key in the environment and a store."""

from __future__ import annotations

import base64
import itertools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import lifecycle
from alertcast.subscribers.crypto import KEY_ENV, SubscriberKeys
from alertcast.subscribers.store import SubscriberStore
from tests.builders import quake_alert

TEST_SECRET = bytes(range(32))
TEST_KEY = base64.b64encode(TEST_SECRET).decode("ascii")
"""The fixed key every subscriber test runs with (never a real one)."""

CHANNEL_KINDS = {"telegram": "telegram", "sms": "sms", "whatsapp": "whatsapp", "sms-mx": "sms"}

_numbers = itertools.count(1)


@pytest.fixture(autouse=True)
def subscriber_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """``ALERTCAST_SUBSCRIBER_KEY`` set to the fixed test key."""
    monkeypatch.setenv(KEY_ENV, TEST_KEY)
    return TEST_KEY


@pytest.fixture
def keys() -> SubscriberKeys:
    return SubscriberKeys(TEST_SECRET)


@pytest.fixture
def store(engine: AsyncEngine, keys: SubscriberKeys) -> SubscriberStore:
    return SubscriberStore(engine, keys, kinds=CHANNEL_KINDS)


@pytest.fixture
def store_alert(engine: AsyncEngine) -> Callable[[], Awaitable[int]]:
    """Store a fresh alert and return its id."""

    async def store() -> int:
        alert = quake_alert(
            f"SUBS-{next(_numbers)}",
            sender="proteccion.civil@example.mx",
            sent=datetime.now(UTC).replace(microsecond=0),
        )
        stored = await lifecycle.ingest_alert(
            engine, alert, raw=None, source="test", actor="test", now=datetime.now(UTC)
        )
        return stored.result.alert_id

    return store
