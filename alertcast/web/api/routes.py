"""Mount the API: :func:`add_api_routes` registers every ``/api/v1`` handler on an application.

The application must also run :func:`alertcast.web.auth.auth_middleware`
(which finds the caller); this function adds the API's own middleware, which
turns every error under ``/api/`` into a problem, so it must be called before
the application starts (aiohttp freezes the middleware list then).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from alertcast.web.api.account import me
from alertcast.web.api.alerts import AlertsApi
from alertcast.web.api.audit import AuditApi
from alertcast.web.api.deliveries import DeliveriesApi
from alertcast.web.api.events import EventsApi
from alertcast.web.api.feeds import FeedsApi
from alertcast.web.api.openapi import OPENAPI_PATH, document
from alertcast.web.api.previews import PreviewsApi
from alertcast.web.api.problems import problem_middleware
from alertcast.web.api.subscribers import SubscribersApi
from alertcast.web.ingest_api import PUSH_PATH

if TYPE_CHECKING:
    from alertcast.officers.services import OfficeServices

ALERT = "/api/v1/alerts/{alert_id}"


def _routed_paths(app: web.Application) -> set[str]:
    return {
        info.get("formatter") or info.get("path") or ""
        for info in (resource.get_info() for resource in app.router.resources())
    }


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI document, with the push endpoint when this application has it."""
    body: dict[str, Any] = document(with_push=PUSH_PATH in _routed_paths(request.app))
    return web.json_response(body, headers={"Cache-Control": "no-cache"})


def add_api_routes(
    app: web.Application,
    services: OfficeServices,
    *,
    events_interval_s: float = 1.0,
    events_lifetime_s: float = 600.0,
) -> None:
    """Register every ``/api/v1`` route of the officers' API on ``app``.

    ``events_interval_s`` and ``events_lifetime_s`` set the server-sent
    progress stream's pace and longest life (1 s and 10 minutes).
    """
    engine = services.engine
    limits = dict(services.channel_limits)
    alerts = AlertsApi(services.desk)
    previews = PreviewsApi(services.previewer, services.desk)
    deliveries = DeliveriesApi(engine, limits)
    events = EventsApi(engine, limits, interval_s=events_interval_s, lifetime_s=events_lifetime_s)
    feeds = FeedsApi(engine, services.config, limits)
    subscribers = SubscribersApi(engine, services.subscribers)
    trail = AuditApi(engine)

    if problem_middleware not in app.middlewares:
        app.middlewares.append(problem_middleware)
    app.router.add_routes(
        [
            web.get("/api/v1/alerts", alerts.list, allow_head=False),
            web.post("/api/v1/alerts", alerts.create),
            web.get(ALERT, alerts.get, allow_head=False),
            web.put(ALERT, alerts.edit),
            web.post(f"{ALERT}/submit", alerts.submit),
            web.post(f"{ALERT}/approve", alerts.approve),
            web.post(f"{ALERT}/reject", alerts.reject),
            web.post(f"{ALERT}/schedule", alerts.schedule),
            web.post(f"{ALERT}/cancel", alerts.cancel),
            web.post(f"{ALERT}/update", alerts.update),
            web.post(f"{ALERT}/all-clear", alerts.all_clear),
            web.get(f"{ALERT}/preview", previews.stored, allow_head=False),
            web.get(f"{ALERT}/progress", deliveries.progress, allow_head=False),
            web.get(f"{ALERT}/events", events.stream, allow_head=False),
            web.get(f"{ALERT}/acknowledgements", subscribers.acknowledgements, allow_head=False),
            web.post("/api/v1/preview", previews.compose),
            web.get("/api/v1/approvals", alerts.queue, allow_head=False),
            web.get("/api/v1/deliveries/dead", deliveries.dead, allow_head=False),
            web.post("/api/v1/deliveries/retry", deliveries.retry),
            web.get("/api/v1/feeds", feeds.feeds, allow_head=False),
            web.get("/api/v1/channels", feeds.channels, allow_head=False),
            web.get("/api/v1/subscribers/count", subscribers.count, allow_head=False),
            web.post("/api/v1/subscribers/export", subscribers.export),
            web.post("/api/v1/subscribers/delete", subscribers.delete),
            web.get("/api/v1/audit", trail.query, allow_head=False),
            web.get("/api/v1/audit/verify", trail.verify, allow_head=False),
            web.get("/api/v1/me", me, allow_head=False),
            web.get(OPENAPI_PATH, openapi, allow_head=False),
        ]
    )
