"""Fixtures for the dispatch tests: stored alerts (the engine is the root one)."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import lifecycle
from alertcast.domain import (
    Alert,
    MsgType,
    Severity,
)
from tests.builders import quake_alert

SENDER = "proteccion.civil@example.mx"
_numbers = itertools.count(1)

StoreAlert = Callable[..., Awaitable[int]]


def make_alert(
    identifier: str,
    *,
    severity: Severity = Severity.MINOR,
    msg_type: MsgType = MsgType.ALERT,
    references: tuple[Alert, ...] = (),
    sent: datetime | None = None,
) -> Alert:
    return quake_alert(
        identifier,
        sender=SENDER,
        sent=sent or datetime.now(UTC).replace(microsecond=0),
        severity=severity,
        msg_type=msg_type,
        references=references,
    )


@pytest.fixture
def store_alert(engine: AsyncEngine) -> StoreAlert:
    """Store a fresh alert (or the one given) and return its id."""

    async def store(alert: Alert | None = None, **kwargs: object) -> int:
        if alert is None:
            alert = make_alert(f"ALERT-{next(_numbers)}", **kwargs)  # type: ignore[arg-type]
        stored = await lifecycle.ingest_alert(
            engine, alert, raw=None, source="test", actor="test", now=datetime.now(UTC)
        )
        return stored.result.alert_id

    return store
