"""Fixtures for the dispatch tests: a migrated engine on each database and stored alerts."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import lifecycle
from alertcast.domain import (
    Alert,
    Category,
    Certainty,
    Info,
    MsgType,
    Scope,
    Severity,
    Status,
    Urgency,
)
from alertcast.store.engine import make_engine
from alertcast.store.migrate import upgrade

SENDER = "proteccion.civil@example.mx"
_numbers = itertools.count(1)

StoreAlert = Callable[..., Awaitable[int]]


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a fresh database migrated to head (SQLite and PostgreSQL)."""
    await upgrade(database_url)
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


def make_alert(
    identifier: str,
    *,
    severity: Severity = Severity.MINOR,
    msg_type: MsgType = MsgType.ALERT,
    references: tuple[Alert, ...] = (),
    sent: datetime | None = None,
) -> Alert:
    sent = sent or datetime.now(UTC).replace(microsecond=0)
    infos: tuple[Info, ...] = ()
    if msg_type is not MsgType.CANCEL:
        infos = (
            Info(
                categories=(Category.GEO,),
                event="Sismo",
                urgency=Urgency.IMMEDIATE,
                severity=severity,
                certainty=Certainty.OBSERVED,
                language="es-MX",
                headline=f"{msg_type.value} {identifier}",
                expires=sent + timedelta(days=1),
            ),
        )
    return Alert(
        identifier=identifier,
        sender=SENDER,
        sent=sent,
        status=Status.ACTUAL,
        msg_type=msg_type,
        scope=Scope.PUBLIC,
        references=tuple(a.key for a in references),
        infos=infos,
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
