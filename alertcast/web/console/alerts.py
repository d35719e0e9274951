"""Composing, approving and correcting alerts: the pages that change something.

Every change goes through the officers' desk (:class:`~alertcast.officers.workflow.AlertDesk`),
which enforces roles, the two-person rule and the alert states; the console
only collects the input and shows the outcome. A refusal from the desk is
shown in ``#flash-error`` on the same page with the status the API would
give (403 two-person rule or role, 409 wrong state, 422 bad input), never as
an error page, so the officer sees why nothing happened and what to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import structlog
from aiohttp import web

from alertcast.alert_json import alert_from_json
from alertcast.dispatch.progress import AlertNotFound, AlertProgress, alert_progress
from alertcast.domain import Certainty, Severity, Urgency
from alertcast.errors import AlertcastError, StoreError
from alertcast.officers.errors import NotFound, OfficerError
from alertcast.officers.roles import Principal, Role
from alertcast.web.console import compose_form
from alertcast.web.console.access import Viewer, signed_in
from alertcast.web.console.overview import alert_rows, headline_of
from alertcast.web.console.state import console_state
from alertcast.web.console.views import (
    N_,
    error_page,
    language,
    section_page,
    tr,
    unavailable,
)

if TYPE_CHECKING:
    from alertcast.officers.workflow import AlertView

log = structlog.get_logger(__name__)

UNRELEASED: Final = frozenset({"draft", "submitted", "scheduled", "rejected", "discarded"})
"""States in which nothing has gone out, so there is no delivery progress to show."""
ACTIONS: Final = ("approve", "reject", "cancel", "correct", "all-clear")
MAX_NOTE: Final = 1000
ROLE_TOO_LOW: Final = N_("Your role (%(role)s) cannot do this; it needs %(needed)s.")


def _alert_id(request: web.Request) -> int | None:
    raw = request.match_info.get("alert_id", "")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        return None
    return int(raw)


def _sender(request: web.Request) -> str:
    return console_state(request).services.config.service.sender


def _role_refusal(request: web.Request, who: Principal, needed: Role) -> str | None:
    if who.role.allows(needed):
        return None
    return tr(request, ROLE_TOO_LOW, role=who.role.value, needed=needed.value)


# --------------------------------------------------------------------------- compose


def _compose_page(
    request: web.Request,
    viewer: Viewer,
    values: Mapping[str, str],
    *,
    errors: Mapping[str, str] | None = None,
    flash_error: str | None = None,
    status: int = 200,
    preview: Mapping[str, Any] | None = None,
) -> web.Response:
    lang = language(request)
    presets = [
        {"name": p.name, "category": p.category, "event": p.event.get(values["language"], "")}
        for p in compose_form.PRESETS
    ]
    return section_page(
        request,
        viewer,
        "compose",
        tr(request, "Compose an alert"),
        status=status,
        exercise=values.get("status") == "Exercise",
        flash_error=flash_error,
        values=values,
        errors=errors or {},
        presets=presets,
        statuses=compose_form.STATUSES,
        categories=compose_form.CATEGORIES,
        urgencies=compose_form.URGENCIES,
        severities=compose_form.SEVERITIES,
        certainties=compose_form.CERTAINTIES,
        alert_languages=compose_form.LANGUAGES,
        sender=_sender(request),
        page_lang=lang,
        preview=preview,
    )


async def compose_page(request: web.Request) -> web.StreamResponse:
    viewer = signed_in(request)
    values = compose_form.initial_values(request.query)
    refusal = _role_refusal(request, viewer.principal, Role.OFFICER)
    return _compose_page(request, viewer, values, flash_error=refusal)


async def _server_preview(
    request: web.Request, viewer: Viewer, values: Mapping[str, str], alert_json: dict[str, Any]
) -> web.Response:
    """The preview without scripts: the same figures, rendered with the form."""
    lang = language(request)
    try:
        alert = alert_from_json(
            alert_json, default_identifier="preview", default_sent=datetime.now(UTC)
        )
        preview = await console_state(request).services.previewer.preview(alert, language=lang)
    except ValueError as exc:
        return _compose_page(request, viewer, values, flash_error=str(exc), status=422)
    except StoreError as exc:
        log.error("console.preview_failed", reason=str(exc))
        return unavailable(request, viewer)
    except AlertcastError as exc:
        return _compose_page(request, viewer, values, flash_error=str(exc), status=422)
    return _compose_page(request, viewer, values, preview=preview.to_json())


async def compose(request: web.Request) -> web.StreamResponse:
    """Create the draft and submit it for approval in one step."""
    viewer = signed_in(request)
    lang = language(request)
    form = await request.post()
    parsed = compose_form.read_form(
        form, lambda m: tr(request, m), sender=_sender(request), now=datetime.now(UTC)
    )
    if parsed.alert_json is None:
        return _compose_page(
            request,
            viewer,
            parsed.values,
            errors=parsed.errors,
            flash_error=tr(request, "Some fields need attention."),
            status=422,
        )
    if form.get("action") == "preview":
        return await _server_preview(request, viewer, parsed.values, parsed.alert_json)
    desk = console_state(request).services.desk
    try:
        draft = await desk.create_draft(viewer.principal, parsed.alert_json)
    except OfficerError as exc:
        return _compose_page(
            request, viewer, parsed.values, flash_error=exc.localized(lang), status=exc.status
        )
    except StoreError as exc:
        log.error("console.compose_failed", reason=str(exc))
        return unavailable(request, viewer)
    try:
        await desk.submit(viewer.principal, draft.id)
    except OfficerError as exc:
        return await _alert_page(
            request, viewer, draft.id, flash_error=exc.localized(lang), status=exc.status
        )
    except StoreError as exc:
        log.error("console.submit_failed", alert_id=draft.id, reason=str(exc))
        return unavailable(request, viewer)
    log.info("console.composed", alert_id=draft.id, user=viewer.principal.name)
    raise web.HTTPSeeOther(f"/console/alerts/{draft.id}?done=submitted")


# --------------------------------------------------------------------------- queue


async def queue_page(request: web.Request) -> web.StreamResponse:
    viewer = signed_in(request)
    try:
        waiting = await console_state(request).services.desk.queue()
    except StoreError as exc:
        log.error("console.queue_failed", reason=str(exc))
        return unavailable(request, viewer)
    return section_page(
        request,
        viewer,
        "queue",
        tr(request, "Approval queue"),
        alerts=alert_rows(waiting, language(request)),
    )


# --------------------------------------------------------------------------- alert page


def _progress_context(progress: AlertProgress | None) -> dict[str, Any]:
    if progress is None:
        return {"progress": None, "percent": None}
    percent = int(progress.done * 100 // progress.total) if progress.total else 100
    return {"progress": progress, "percent": percent}


async def _alert_page(
    request: web.Request,
    viewer: Viewer,
    alert_id: int,
    *,
    flash_error: str | None = None,
    status: int = 200,
) -> web.Response:
    state = console_state(request)
    services = state.services
    lang = language(request)
    try:
        view = await services.desk.get(alert_id, routes=True)
        awaiting = view.state == "active" and any(
            route.get("state") == "awaiting_approval" for route in view.routes or ()
        )
        progress = None
        if view.state not in UNRELEASED:
            try:
                progress = await alert_progress(
                    services.engine, alert_id, limits=services.channel_limits
                )
            except AlertNotFound:
                progress = None
        acks = None
        if services.subscribers is not None and view.state not in UNRELEASED:
            acks = await services.subscribers.ack_counts(alert_id)
    except NotFound as exc:
        return error_page(request, viewer, 404, exc.localized(lang))
    except StoreError as exc:
        log.error("console.alert_failed", alert_id=alert_id, reason=str(exc))
        return unavailable(request, viewer)
    info = view.alert.info_for(lang)
    return section_page(
        request,
        viewer,
        "alert",
        f"#{view.id} · {headline_of(view, lang)}",
        status=status,
        exercise=view.is_exercise,
        flash_error=flash_error,
        view=view,
        info=info,
        headline=headline_of(view, lang),
        can_review=view.state == "submitted" or awaiting,
        can_withdraw=view.state in ("draft", "submitted", "scheduled"),
        can_follow_up=view.state == "active",
        acks=acks,
        # Live while deliveries remain, and while an alert in force may still get some
        # (planned by another instance); the script stops at the first finished event.
        events_url=(
            f"/api/v1/alerts/{alert_id}/events"
            if progress is not None and (not progress.finished or view.state == "active")
            else ""
        ),
        urgencies=[u.value for u in Urgency],
        severities=[s.value for s in Severity],
        certainties=[c.value for c in Certainty],
        **_progress_context(progress),
    )


async def alert_page(request: web.Request) -> web.StreamResponse:
    viewer = signed_in(request)
    alert_id = _alert_id(request)
    if alert_id is None:
        return error_page(request, viewer, 404, tr(request, "There is no such alert."))
    return await _alert_page(request, viewer, alert_id)


# --------------------------------------------------------------------------- actions


async def action_url(request: web.Request) -> web.StreamResponse:
    """A refused action's page has the action's URL; opened or reloaded, it leads to the alert."""
    alert_id = _alert_id(request)
    raise web.HTTPSeeOther(f"/console/alerts/{alert_id}" if alert_id is not None else "/console/")


def _text(form: Mapping[str, Any], name: str, limit: int = compose_form.MAX_TEXT) -> str | None:
    value = str(form.get(name, "") or "").strip()
    if len(value) > limit:
        raise ValueError(name)
    return value or None


def _changes(form: Mapping[str, Any], original: AlertView, lang: str) -> dict[str, Any]:
    """What the correction form changes: only fields given and different from the alert."""
    info = original.alert.info_for(lang)
    changes: dict[str, Any] = {}
    for name in ("headline", "description", "instruction"):
        value = _text(form, name)
        if value is not None and (info is None or value != getattr(info, name)):
            changes[name] = value
    for name in ("severity", "urgency", "certainty"):
        value = _text(form, name, 40)
        if value is not None and (info is None or value != getattr(info, name).value):
            changes[name] = value
    hours_text = _text(form, "expires_hours", 20)
    if hours_text is not None:
        hours = float(hours_text.replace(",", "."))
        if not 0 < hours <= compose_form.MAX_EXPIRES_HOURS:
            raise ValueError("expires_hours")
        changes["expires"] = (datetime.now(UTC) + timedelta(hours=hours)).isoformat()
    return changes


async def alert_action(request: web.Request) -> web.StreamResponse:
    """``POST /console/alerts/{id}/{action}``: approve, reject, cancel, correct, all clear."""
    viewer = signed_in(request)
    alert_id = _alert_id(request)
    action = request.match_info.get("action", "")
    if alert_id is None or action not in ACTIONS:
        return error_page(request, viewer, 404, tr(request, "There is no such alert."))
    lang = language(request)
    who = viewer.principal  # the desk checks the role, so a refusal is audited there

    async def refused(error: str, status: int = 422) -> web.StreamResponse:
        """The alert's page again, saying why the action was not done."""
        return await _alert_page(request, viewer, alert_id, flash_error=error, status=status)

    desk = console_state(request).services.desk
    form = await request.post()
    try:
        note = _text(form, "note", MAX_NOTE)
        if action == "approve":
            result = await desk.approve(who, alert_id)
        elif action == "reject":
            reason = _text(form, "reason", MAX_NOTE)
            if reason is None:
                return await refused(tr(request, "Say why the alert is rejected."))
            result = await desk.reject(who, alert_id, reason)
        elif action == "cancel":
            result = await desk.cancel(who, alert_id, note=note)
        elif action == "correct":
            original = await desk.get(alert_id)
            changes = _changes(form, original, lang)
            if not changes:
                return await refused(tr(request, "Change at least one field to correct the alert."))
            result = await desk.update(who, alert_id, changes)
        else:
            result = await desk.all_clear(who, alert_id, note=note)
    except ValueError:
        return await refused(tr(request, "A field is too long or not a valid number."))
    except NotFound as exc:
        return error_page(request, viewer, 404, exc.localized(lang))
    except OfficerError as exc:
        log.info(
            "console.action_refused",
            action=action,
            alert_id=alert_id,
            user=who.name,
            reason=exc.message,
        )
        return await refused(exc.localized(lang), exc.status)
    except StoreError as exc:
        log.error("console.action_failed", action=action, alert_id=alert_id, reason=str(exc))
        return unavailable(request, viewer)
    except AlertcastError as exc:
        return await refused(str(exc))
    done = action
    if action == "cancel" and result.id == alert_id:
        done = "discarded"
    elif action == "approve":
        done = "approved"
    elif action == "reject":
        done = "rejected"
    log.info("console.action", action=action, alert_id=alert_id, result=result.id, user=who.name)
    raise web.HTTPSeeOther(f"/console/alerts/{result.id}?done={done}")
