"""Deliveries through the API: progress, dead letters and sending them again.

* ``GET /api/v1/alerts/{id}/progress`` is :class:`~alertcast.web.deliveries_api.ProgressEndpoint`
  (the figures of ``alertcast status``), here behind a viewer's credentials.
* ``GET /api/v1/deliveries/dead?alert_id=&channel=&limit=&after=`` lists dead
  rows oldest first, as ``alertcast deliveries list --state dead --json`` does,
  paged by row id.
* ``POST /api/v1/deliveries/retry`` with ``{"alert_id", "channel"?, "state"?}``
  puts an alert's dead (or failed, or unknown) rows back to pending, through
  :func:`alertcast.dispatch.ledger.redrive`, which never touches a row that
  was sent and audits ``delivery.retried`` with the officer as actor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.dispatch.ledger import REDRIVABLE_STATES, DeliveryRow, redrive
from alertcast.officers.roles import Role
from alertcast.store.engine import database_errors, read_only
from alertcast.store.tables import deliveries
from alertcast.web.api.inputs import (
    after_and_limit,
    json_object,
    next_after,
    optional_text,
    query_int,
    query_text,
    required_id,
)
from alertcast.web.api.problems import ProblemError, message
from alertcast.web.api.stored import require_alert
from alertcast.web.auth import require
from alertcast.web.deliveries_api import ProgressEndpoint

MAX_PAGE: Final = 1000
DEFAULT_PAGE: Final = 100
RETRY_STATES: Final = tuple(s.value for s in REDRIVABLE_STATES)
_ID_BATCH = 1000  # ids per statement: well under every driver's parameter limit


class DeliveriesApi:
    """Handlers over the delivery ledger."""

    def __init__(self, engine: AsyncEngine, limits: Mapping[str, float]) -> None:
        self._engine = engine
        self._progress = ProgressEndpoint(engine, limits)

    async def progress(self, request: web.Request) -> web.Response:
        require(request, Role.VIEWER)
        return await self._progress.handle(request)

    async def dead(self, request: web.Request) -> web.Response:
        require(request, Role.VIEWER)
        alert_id = query_int(request, "alert_id", default=None, low=1, high=10**18 - 1)
        after, limit = after_and_limit(request, default=DEFAULT_PAGE, most=MAX_PAGE)
        channel = query_text(request, "channel")
        c = deliveries.c
        statement = (
            select(deliveries).where(c.state == "dead", c.id > after).order_by(c.id).limit(limit)
        )
        if alert_id is not None:
            statement = statement.where(c.alert_id == alert_id)
        if channel is not None:
            statement = statement.where(c.channel == channel)
        with database_errors("cannot list dead deliveries"):
            async with read_only(self._engine) as conn:
                rows = [DeliveryRow.from_row(r) for r in await conn.execute(statement)]
        body = {
            "deliveries": [row.to_json() for row in rows],
            "next": next_after([row.id for row in rows], limit),
        }
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    async def retry(self, request: web.Request) -> web.Response:
        who = require(request, Role.OFFICER)
        body = await json_object(request, allowed={"alert_id", "channel", "state"})
        alert_id = required_id(request, body, "alert_id")
        channel = optional_text(request, body, "channel", max_length=200)
        state = optional_text(request, body, "state", max_length=16) or "dead"
        if state not in RETRY_STATES:
            raise ProblemError(
                422,
                message(
                    request,
                    "query.choice",
                    key="state",
                    value=state,
                    allowed=", ".join(RETRY_STATES),
                ),
            )
        await require_alert(request, self._engine, alert_id)
        if channel is None:
            count = await redrive(self._engine, actor=who.actor, state=state, alert_id=alert_id)
        else:
            count = 0
            for ids in await self._ids(alert_id, channel, state):
                count += await redrive(
                    self._engine, actor=who.actor, ids=ids, state=state, alert_id=alert_id
                )
        return web.json_response(
            {"alert_id": alert_id, "channel": channel, "state": state, "retried": count}
        )

    async def _ids(self, alert_id: int, channel: str, state: str) -> list[list[int]]:
        c = deliveries.c
        statement = (
            select(c.id)
            .where(c.alert_id == alert_id, c.channel == channel, c.state == state)
            .order_by(c.id)
        )
        with database_errors("cannot list deliveries to retry"):
            async with read_only(self._engine) as conn:
                ids = [int(i) for i in (await conn.execute(statement)).scalars()]
        return [ids[i : i + _ID_BATCH] for i in range(0, len(ids), _ID_BATCH)]
