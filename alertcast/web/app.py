"""aiohttp application: ``/healthz``, ``/readyz``, a read-only status page at ``/``,
the public CAP feed, provider webhooks, when push feeds are configured
``POST /api/v1/ingest/cap`` (see ``ingest_api``), and, with the officers'
services, the duty officers' API under ``/api/v1`` (see ``web.api``) and
console under ``/console`` (see ``web.console``), both behind
:func:`alertcast.web.auth.auth_middleware`.

``/healthz`` answers while the process lives (for restarts); ``/readyz``
answers 200 only when the database is reachable and its schema is current
(for load balancers: an instance that cannot persist must not take work).
Under ``checks.roles`` it also shows the process's roles and, for each role
lease, whether this instance holds it or stands by; that never makes it
unready, since a standby is waiting by design. ``/metrics`` is served when
the service passes its :class:`~alertcast.metrics.Metrics`.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import __version__, audit
from alertcast.areas import AreaCatalogue
from alertcast.config import FeedConfig
from alertcast.domain import Status
from alertcast.ha.status import RoleStatus
from alertcast.ingest import Ingestor
from alertcast.officers.services import OfficeServices
from alertcast.store.alerts import AlertRepository
from alertcast.store.engine import read_only
from alertcast.store.migrate import is_current
from alertcast.subscribers.store import SubscriberStore
from alertcast.web.api.routes import add_api_routes
from alertcast.web.auth import auth_middleware
from alertcast.web.console import CSRF_EXEMPT
from alertcast.web.console.routes import add_console_routes
from alertcast.web.deliveries_api import add_deliveries_routes
from alertcast.web.ingest_api import add_push_route
from alertcast.web.metrics_api import add_metrics_route
from alertcast.web.public import add_public_routes
from alertcast.web.twilio_inbound import add_twilio_inbound_routes
from alertcast.web.twilio_status import add_twilio_routes

if TYPE_CHECKING:
    from alertcast.metrics import Metrics

ENGINE: web.AppKey[AsyncEngine] = web.AppKey("engine", AsyncEngine)
ROLE_STATUS: web.AppKey[RoleStatus] = web.AppKey("role_status", RoleStatus)
REPOSITORY: web.AppKey[AlertRepository] = web.AppKey("repository", AlertRepository)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "alive", "version": __version__})


async def readyz(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    checks: dict[str, Any] = {}
    try:
        async with read_only(engine) as conn:  # never queues behind writers on SQLite
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
        checks["migrations"] = "current" if await is_current(engine) else "behind"
    except Exception as exc:  # any database failure means "not ready", reported, never raised
        checks["database"] = f"unreachable: {type(exc).__name__}"
    status = request.app.get(ROLE_STATUS)
    if status is not None:
        checks["roles"] = status.snapshot()
    ready = checks.get("database") == "ok" and checks.get("migrations") == "current"
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status=200 if ready else 503,
    )


_STATUS_CLASS = {
    Status.ACTUAL: "actual",
    Status.EXERCISE: "drill",
    Status.TEST: "drill",
    Status.SYSTEM: "drill",
    Status.DRAFT: "drill",
}

_PAGE = """<!doctype html>
<html lang="es"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="5">
<title>alertcast</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}}
table{{border-collapse:collapse;width:100%}}
td,th{{border-bottom:1px solid #ccc;padding:.4rem;text-align:left}}
.drill{{background:#fff3cd}} .actual{{background:#f8d7da}} small{{color:#555}}
</style></head><body>
<h1>alertcast <small>{version}</small></h1>
<p><a href="/console/">Consola de oficiales / Officers' console</a></p>
<p>Alertas recibidas / Alerts received: <b>{count}</b> ·
Registros de auditoría / Audit records: <b>{audit_count}</b></p>
<table><thead><tr><th>Estado / Status</th><th>Tipo / Type</th><th>Evento / Event</th>
<th>Emisor / Sender</th><th>Enviada / Sent</th><th>Fuente / Source</th></tr></thead>
<tbody>{rows}</tbody></table>
</body></html>"""


async def index(request: web.Request) -> web.Response:
    repository = request.app[REPOSITORY]
    stored = await repository.list_recent(50)
    rows = []
    for item in stored:
        alert = item.alert
        info = alert.info_for("es")
        event = (info.headline or info.event) if info else ""
        status_text = (
            alert.status.value
            if alert.status is Status.ACTUAL
            else (f"{alert.status.value.upper()} — no es real / not real")
        )
        cells = (
            status_text,
            alert.msg_type.value,
            event,
            alert.sender,
            alert.sent.isoformat(),
            item.source,
        )
        rows.append(
            f'<tr class="{_STATUS_CLASS[alert.status]}">'
            + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells)
            + "</tr>"
        )
    body = _PAGE.format(
        version=__version__,
        count=await repository.count(),
        audit_count=await audit.count(request.app[ENGINE]),
        rows="\n".join(rows),
    )
    return web.Response(text=body, content_type="text/html")


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Headers every answer carries; the console sets its own, stricter policy."""
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault(
        "Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'"
    )
    return response


def make_operations_app(
    engine: AsyncEngine,
    *,
    role_status: RoleStatus | None = None,
    metrics: Metrics | None = None,
) -> web.Application:
    """What an instance without the ``web`` role serves: ``/healthz``, ``/readyz``, ``/metrics``.

    A worker, poller or bot process still needs its probes (a supervisor
    restarts what stopped answering) and its own figures scraped: send
    latencies, 429s and rate-limiter waits are observed only in the process
    that sends. Nothing else is routed, so no officer or provider reaches it.
    """
    app = web.Application(middlewares=[security_headers])
    app[ENGINE] = engine
    if role_status is not None:
        app[ROLE_STATUS] = role_status
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if metrics is not None:
        add_metrics_route(app, engine, metrics)
    return app


def make_web_app(
    engine: AsyncEngine,
    repository: AlertRepository,
    *,
    ingestor: Ingestor | None = None,
    push_feeds: Sequence[FeedConfig] = (),
    channel_limits: Mapping[str, float] | None = None,
    site_url: str | None = None,
    twilio_auth_tokens: Mapping[str, str] | None = None,
    subscriber_store: SubscriberStore | None = None,
    area_catalogue: AreaCatalogue | None = None,
    channel_kinds: Mapping[str, str] | None = None,
    extra_routes: Sequence[web.RouteDef] = (),
    officers: OfficeServices | None = None,
    tile_url: str | None = None,
    role_status: RoleStatus | None = None,
    metrics: Metrics | None = None,
) -> web.Application:
    """The web application; the push route exists only when there are push feeds.

    ``site_url`` is how the public reaches the service (links in the CAP feed;
    the URL Twilio signs its callbacks over). ``twilio_auth_tokens`` maps each
    Twilio channel to its auth token, for validating status callbacks.
    ``officers`` adds the duty officers' API and console; without it the
    progress endpoint is served alone, unauthenticated (counts only).
    ``tile_url`` is the console map's tile template (None: outlines only).
    ``role_status`` adds the process's roles and leases to ``/readyz``;
    ``metrics`` adds ``GET /metrics``.
    """
    middlewares: list[Any] = [security_headers]
    if officers is not None:
        middlewares.append(auth_middleware(officers, csrf_exempt=CSRF_EXEMPT))
    app = web.Application(middlewares=middlewares, client_max_size=6 * 1024 * 1024)
    app[ENGINE] = engine
    app[REPOSITORY] = repository
    if role_status is not None:
        app[ROLE_STATUS] = role_status
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/", index)
    if metrics is not None:
        add_metrics_route(app, engine, metrics)
    if officers is None:
        add_deliveries_routes(app, engine, limits=channel_limits)
    else:
        add_api_routes(app, officers)
        add_console_routes(app, officers, tile_url=tile_url)
    add_public_routes(app, engine, site_url or "")
    if twilio_auth_tokens:
        add_twilio_routes(app, engine, twilio_auth_tokens, site_url)
        if subscriber_store is not None and area_catalogue is not None:
            # SMS and WhatsApp keywords (ALTA, BAJA, STOP, AYUDA...)
            add_twilio_inbound_routes(
                app,
                engine=engine,
                store=subscriber_store,
                catalogue=area_catalogue,
                auth_tokens=twilio_auth_tokens,
                public_url=site_url,
                channel_kinds=channel_kinds or {},
            )
    if push_feeds:
        if ingestor is None:
            raise ValueError("push feeds need an ingestor to store what is pushed")
        add_push_route(app, ingestor, push_feeds)
    app.router.add_routes(extra_routes)  # e.g. the citizens' bot webhooks
    return app
