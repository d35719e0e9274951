"""Mounting the console: its pages under ``/console/`` and its files under ``/static/``.

The application must run :func:`alertcast.web.auth.auth_middleware` (it
finds the person behind each request and checks the CSRF token of every
form), with :data:`CSRF_EXEMPT` among its exempt paths: the login form is
posted before the page knows a session's token and carries its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

from aiohttp import web

from alertcast.areas import AreaCatalogue
from alertcast.web.console import alerts, login, overview
from alertcast.web.console.access import LOGIN_PATH
from alertcast.web.console.state import CONSOLE, ConsoleState
from alertcast.web.ingest_api import FailureThrottle

if TYPE_CHECKING:
    from alertcast.officers.services import OfficeServices

STATIC_DIR: Final = Path(__file__).resolve().parent.parent / "static"
STATIC_PREFIX: Final = "/static"
CSRF_EXEMPT: Final = (LOGIN_PATH,)
"""Paths the auth middleware must not CSRF-check: pass them as its ``csrf_exempt``."""


async def _to_console(_request: web.Request) -> web.StreamResponse:
    raise web.HTTPPermanentRedirect("/console/")


def add_console_routes(
    app: web.Application,
    services: OfficeServices,
    *,
    tile_url: str | None,
    catalogue: AreaCatalogue | None = None,
    login_throttles: tuple[FailureThrottle, FailureThrottle] | None = None,
) -> ConsoleState:
    """Register the console's pages and static files on ``app``; return the console's state.

    ``tile_url`` is a Leaflet tile template (``https://tiles.example.org/{z}/{x}/{y}.png``
    or a path on this site); None draws only the areas' outlines, for networks
    without a tile server. ``catalogue`` resolves geocodes to shapes on the
    map (default: the services' catalogue). ``login_throttles`` (by address, by
    user name) replace the default login throttles.
    """
    state = ConsoleState(
        services=services,
        tile_url=tile_url or None,
        catalogue=catalogue if catalogue is not None else services.catalogue,
    )
    if login_throttles is not None:
        state.by_address, state.by_user = login_throttles
    app[CONSOLE] = state
    router = app.router
    router.add_get("/console", _to_console)
    router.add_get("/console/", overview.dashboard)
    router.add_get(LOGIN_PATH, login.login_form)
    router.add_post(LOGIN_PATH, login.login)
    router.add_post("/console/logout", login.logout)
    router.add_get("/console/compose", alerts.compose_page)
    router.add_post("/console/compose", alerts.compose)
    router.add_get("/console/queue", alerts.queue_page)
    router.add_get("/console/alerts/{alert_id}", alerts.alert_page)
    router.add_post("/console/alerts/{alert_id}/{action}", alerts.alert_action)
    router.add_get("/console/alerts/{alert_id}/{action}", alerts.action_url)
    router.add_get("/console/audit", overview.audit_page)
    router.add_get("/console/subscribers", overview.subscribers_page)
    router.add_static(STATIC_PREFIX, STATIC_DIR, follow_symlinks=False, append_version=False)
    return state
