"""``GET /api/v1/alerts/{id}/progress``: an alert's delivery progress, as ``alertcast status``.

The body is :meth:`alertcast.dispatch.progress.AlertProgress.to_json`, the
same figures the CLI prints with ``--json``: per channel, counts by state, the
current rate and the ETA, and the totals. 404 (``application/problem+json``)
when there is no such alert; an alert that exists with no deliveries yet is a
200 with no channels, so a dashboard can poll from the moment it is stored.

It answers with counts and rates only, never a target, a payload or an error
text. The officers' API (:func:`alertcast.web.api.routes.add_api_routes`)
mounts :meth:`ProgressEndpoint.handle` behind a viewer's credentials;
:func:`add_deliveries_routes` mounts it without any, for an application that
has no officers' API, and must not be used together with it (the path would
be routed twice).
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.dispatch.progress import AlertNotFound, alert_progress
from alertcast.errors import StoreError
from alertcast.web.ingest_api import problem

log = structlog.get_logger(__name__)

PROGRESS_PATH = "/api/v1/alerts/{alert_id}/progress"
_WINDOW_S = 60.0


class ProgressEndpoint:
    """The handler, with the engine it reads and the channels' known rate limits."""

    def __init__(self, engine: AsyncEngine, limits: Mapping[str, float] | None = None) -> None:
        self._engine = engine
        self._limits = dict(limits or {})

    async def handle(self, request: web.Request) -> web.Response:
        raw = request.match_info["alert_id"]
        # Digits only, and bounded: the id is a BIGINT, and "1e3" or "-1" name no alert.
        if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
            return problem(404, "Not Found", f"there is no alert {raw!r}")
        alert_id = int(raw)
        try:
            progress = await alert_progress(
                self._engine, alert_id, window_s=_WINDOW_S, limits=self._limits
            )
        except AlertNotFound:
            return problem(404, "Not Found", f"there is no alert {alert_id}")
        except StoreError as exc:
            log.error("progress.read_failed", alert_id=alert_id, reason=str(exc))
            return problem(
                503,
                "Service Unavailable",
                "the progress could not be read; try again",
                **{"Retry-After": "5"},
            )
        response = web.json_response(progress.to_json())
        response.headers["Cache-Control"] = "no-store"
        return response


def add_deliveries_routes(
    app: web.Application, engine: AsyncEngine, *, limits: Mapping[str, float] | None = None
) -> ProgressEndpoint:
    """Register ``GET /api/v1/alerts/{id}/progress``; return the endpoint."""
    endpoint = ProgressEndpoint(engine, limits)
    app.router.add_get(PROGRESS_PATH, endpoint.handle)
    return endpoint
