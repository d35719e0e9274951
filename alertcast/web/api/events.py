"""``GET /api/v1/alerts/{id}/events``: delivery progress pushed as server-sent events.

The console's alert page shows the fan-out live without polling: every
``interval_s`` (1 s) the stream carries ``event: progress`` with the same JSON
as ``GET .../progress``. It ends by itself:

* when the fan-out is over (nothing pending or claimed) and there was one, or
  the alert can no longer have one (rejected, discarded, cancelled...);
* when the client goes away (checked before every write);
* after ``lifetime_s`` (10 minutes), with a final ``event: timeout``, so an
  abandoned tab cannot hold a connection for ever; ``EventSource`` then
  reconnects by itself if the page is still open.

An alert that does not exist is a 404 problem before the stream starts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any, Final

import structlog
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.dispatch.progress import AlertNotFound, AlertProgress, alert_progress
from alertcast.errors import StoreError
from alertcast.officers.roles import Role
from alertcast.web.api.inputs import path_id
from alertcast.web.api.stored import alert_state, require_alert
from alertcast.web.auth import require

log = structlog.get_logger(__name__)

WAITING_STATES: Final = frozenset({"draft", "submitted", "scheduled", "active"})
"""States in which an alert without deliveries may still get some."""

_WINDOW_S = 60.0


def sse(event: str, data: Mapping[str, Any]) -> bytes:
    """One server-sent event: its name and a one-line JSON ``data`` field."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


class EventsApi:
    """The progress stream of one alert per request."""

    def __init__(
        self,
        engine: AsyncEngine,
        limits: Mapping[str, float],
        *,
        interval_s: float = 1.0,
        lifetime_s: float = 600.0,
    ) -> None:
        self._engine = engine
        self._limits = dict(limits)
        self._interval = interval_s
        self._lifetime = lifetime_s

    async def _snapshot(self, alert_id: int) -> AlertProgress:
        return await alert_progress(self._engine, alert_id, window_s=_WINDOW_S, limits=self._limits)

    async def _over(self, alert_id: int, progress: AlertProgress) -> bool:
        if not progress.finished:
            return False
        if progress.total > 0:
            return True
        state = await alert_state(self._engine, alert_id)
        return state is None or state not in WAITING_STATES

    async def stream(self, request: web.Request) -> web.StreamResponse:
        require(request, Role.VIEWER)
        alert_id = path_id(request, "alert_id")
        await require_alert(request, self._engine, alert_id)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",  # a buffering proxy would hold the events back
            }
        )
        await response.prepare(request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._lifetime
        try:
            while True:
                if request.transport is None or request.transport.is_closing():
                    return response
                try:
                    progress = await self._snapshot(alert_id)
                    over = await self._over(alert_id, progress)
                except AlertNotFound:
                    await response.write(sse("gone", {"alert_id": alert_id}))
                    return response
                except StoreError as exc:
                    log.warning("events.read_failed", alert_id=alert_id, reason=str(exc))
                    await response.write(sse("unavailable", {"alert_id": alert_id}))
                else:
                    await response.write(sse("progress", progress.to_json()))
                    if over:
                        await response.write(sse("end", {"alert_id": alert_id}))
                        return response
                if loop.time() + self._interval > deadline:
                    await response.write(sse("timeout", {"alert_id": alert_id}))
                    return response
                await asyncio.sleep(self._interval)
        except ConnectionError:  # the client left while an event was being written
            log.debug("events.client_left", alert_id=alert_id)
        return response
