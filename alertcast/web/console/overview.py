"""The read-only pages: the dashboard, the audit trail and the subscriber figures.

The dashboard is the page left open in an operations room: the alerts in
force with a map of their areas, whether each feed is working, and the
channels the office speaks on. The audit page shows the latest records and
whether the hash chain still verifies from the first record, so tampering is
visible to the people who rely on the trail, not only to whoever runs the CLI.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web

from alertcast import audit
from alertcast.errors import AuditError, StoreError
from alertcast.feed_health import health_of
from alertcast.store.feed_state import FeedStateRepository
from alertcast.web.console.access import signed_in
from alertcast.web.console.map_data import MapAlert, map_data
from alertcast.web.console.state import console_state
from alertcast.web.console.views import language, section_page, tr, unavailable

if TYPE_CHECKING:
    from alertcast.officers.workflow import AlertView

log = structlog.get_logger(__name__)

ACTIVE_LIMIT = 200
AUDIT_LIMIT = 100


def headline_of(view: AlertView, lang: str) -> str:
    """What to call an alert in a list: its headline, else its event, in the page's language."""
    info = view.alert.info_for(lang)
    if info is None:
        return view.alert.msg_type.value
    return info.headline or info.event


def alert_rows(views: list[AlertView], lang: str) -> list[dict[str, Any]]:
    """Rows of an alert table."""
    rows = []
    for view in views:
        info = view.alert.info_for(lang)
        rows.append(
            {
                "id": view.id,
                "state": view.state,
                "exercise": view.is_exercise,
                "status": view.alert.status.value,
                "msg_type": view.alert.msg_type.value,
                "title": headline_of(view, lang),
                "severity": info.severity.value if info else "",
                "areas": ", ".join(a.area_desc for a in info.areas) if info else "",
                "expires": view.alert.expires,
                "created_by": view.created_by,
                "source": view.source,
                "approvals": sum(1 for a in view.approvals if a.decision == "approve"),
                "approvals_required": view.approvals_required,
            }
        )
    return rows


async def dashboard(request: web.Request) -> web.StreamResponse:
    viewer = signed_in(request)
    state = console_state(request)
    services = state.services
    lang = language(request)
    try:
        active = await services.desk.list(states=["active"], limit=ACTIVE_LIMIT)
        shapes = await map_data(
            [MapAlert(v.id, v.alert, headline_of(v, lang)) for v in active], state.catalogue
        )
        feed_states = await FeedStateRepository(services.engine).all()
    except StoreError as exc:
        log.error("console.dashboard_failed", reason=str(exc))
        return unavailable(request, viewer)
    now = datetime.now(UTC)
    feeds = [health_of(feed, feed_states.get(feed.name), now) for feed in services.config.feeds]
    channels = [
        {
            "name": channel.name,
            "kind": channel.kind,
            "enabled": channel.enabled,
            "rate": services.channel_limits.get(channel.name),
        }
        for channel in services.config.channels
    ]
    return section_page(
        request,
        viewer,
        "dashboard",
        tr(request, "Dashboard"),
        alerts=alert_rows(active, lang),
        map_json=shapes.to_json(),
        unresolved=shapes.unresolved,
        tile_url=state.tile_url or "",
        feeds=feeds,
        channels=channels,
    )


async def audit_page(request: web.Request) -> web.StreamResponse:
    viewer = signed_in(request)
    engine = console_state(request).services.engine
    broken: AuditError | None = None
    checked = 0
    try:
        records = list(reversed(await audit.tail(engine, AUDIT_LIMIT)))
        try:
            checked = await audit.verify_chain(engine)
        except AuditError as exc:
            broken = exc
            log.error("console.audit_broken", seq=exc.sequence, reason=exc.reason)
    except StoreError as exc:
        log.error("console.audit_failed", reason=str(exc))
        return unavailable(request, viewer)
    return section_page(
        request,
        viewer,
        "audit",
        tr(request, "Audit trail"),
        records=records,
        checked=checked,
        broken=broken,
    )


async def subscribers_page(request: web.Request) -> web.StreamResponse:
    viewer = signed_in(request)
    store = console_state(request).services.subscribers
    counts: dict[str, int] | None = None
    if store is not None:
        try:
            counts = await store.counts()
        except StoreError as exc:
            log.error("console.subscribers_failed", reason=str(exc))
            return unavailable(request, viewer)
    return section_page(
        request,
        viewer,
        "subscribers",
        tr(request, "Subscribers"),
        counts=counts,
        total=sum(counts.values()) if counts else 0,
    )
