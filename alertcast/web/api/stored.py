"""Does the alert a path names exist? One short read, so a client gets 404, not an empty 200."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.store.engine import database_errors, read_only
from alertcast.store.tables import alerts
from alertcast.web.api.problems import ProblemError, message


async def alert_state(engine: AsyncEngine, alert_id: int) -> str | None:
    """The alert's state (``draft``, ``active``...), or None when there is no such alert."""
    with database_errors(f"cannot read alert {alert_id}"):
        async with read_only(engine) as conn:
            row = (
                await conn.execute(select(alerts.c.state).where(alerts.c.id == alert_id))
            ).first()
    return None if row is None else str(row.state)


async def require_alert(request: web.Request, engine: AsyncEngine, alert_id: int) -> str:
    """The alert's state; a 404 problem when it does not exist."""
    state = await alert_state(engine, alert_id)
    if state is None:
        raise ProblemError(404, message(request, "alert.not_found", id=alert_id))
    return state
