"""Alerts through the API: list, read, compose, and move them through approval.

Each handler checks the caller's role, reads and checks its input, and hands
the action to :class:`~alertcast.officers.workflow.AlertDesk`, which holds
every rule (the two-person rule included) and writes the audit record with
the caller as actor. So the API can refuse early, but never allow anything
the desk would not: a refusal by the desk (wrong state, own Actual alert...)
comes back as the matching problem (:func:`~alertcast.web.api.problems.officer_problem`).

Answers: the alert as :meth:`AlertView.to_json`; 201 with ``Location`` for
what creates an alert (a draft, or the Cancel, Update or All-clear that
corrects one); 200 for the rest.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from alertcast.officers.compose import UPDATE_KEYS as CHANGE_KEYS
from alertcast.officers.roles import Role
from alertcast.officers.views import AlertView
from alertcast.officers.workflow import AlertDesk
from alertcast.store.alerts import AlertState
from alertcast.web.api.inputs import (
    json_object,
    optional_datetime,
    optional_text,
    path_id,
    query_choices,
    query_int,
    required_datetime,
    required_text,
)
from alertcast.web.auth import require

ALERTS_PATH: Final = "/api/v1/alerts"

ALERT_STATES: Final = tuple(state.value for state in AlertState)

MAX_PAGE: Final = 200
DEFAULT_PAGE: Final = 50
NOTE_LENGTH: Final = 2000
UPDATE_KEYS: Final = CHANGE_KEYS | {"infos", "note"}
"""What a correction may change: the texts and levels of every info, whole ``infos``, ``note``."""


def location(alert_id: int) -> str:
    """The URL path of an alert."""
    return f"{ALERTS_PATH}/{alert_id}"


def _view(view: AlertView, *, status: int = 200) -> web.Response:
    response = web.json_response(view.to_json(), status=status)
    if status == 201:
        response.headers["Location"] = location(view.id)
    response.headers["Cache-Control"] = "no-store"
    return response


def _created_or_same(view: AlertView, alert_id: int) -> web.Response:
    """201 with the new alert's place, or 200 when the action changed the alert itself."""
    return _view(view, status=200 if view.id == alert_id else 201)


class AlertsApi:
    """Handlers over the alert desk."""

    def __init__(self, desk: AlertDesk) -> None:
        self._desk = desk

    async def list(self, request: web.Request) -> web.Response:
        require(request, Role.VIEWER)
        states = query_choices(request, "state", ALERT_STATES)
        limit = (
            query_int(request, "limit", default=DEFAULT_PAGE, low=1, high=MAX_PAGE) or DEFAULT_PAGE
        )
        before = query_int(request, "before", default=None, low=1, high=10**18 - 1)
        views = await self._desk.list(states=states, limit=limit + 1, before_id=before)
        page = views[:limit]
        body: dict[str, Any] = {
            "alerts": [view.to_json() for view in page],
            "next": page[-1].id if len(views) > limit else None,
        }
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    async def queue(self, request: web.Request) -> web.Response:
        require(request, Role.VIEWER)
        views = await self._desk.queue()
        return web.json_response(
            {"alerts": [view.to_json() for view in views]}, headers={"Cache-Control": "no-store"}
        )

    async def get(self, request: web.Request) -> web.Response:
        require(request, Role.VIEWER)
        return _view(await self._desk.get(path_id(request, "alert_id"), routes=True))

    async def create(self, request: web.Request) -> web.Response:
        who = require(request, Role.OFFICER)
        body = await json_object(request)
        return _view(await self._desk.create_draft(who, body), status=201)

    async def edit(self, request: web.Request) -> web.Response:
        who = require(request, Role.OFFICER)
        alert_id = path_id(request, "alert_id")
        body = await json_object(request)
        return _view(await self._desk.edit_draft(who, alert_id, body))

    async def submit(self, request: web.Request) -> web.Response:
        who = require(request, Role.OFFICER)
        alert_id = path_id(request, "alert_id")
        body = await json_object(request, allowed={"scheduled_for"}, empty_ok=True)
        when = optional_datetime(request, body, "scheduled_for")
        return _view(await self._desk.submit(who, alert_id, scheduled_for=when))

    async def schedule(self, request: web.Request) -> web.Response:
        who = require(request, Role.OFFICER)
        alert_id = path_id(request, "alert_id")
        body = await json_object(request, allowed={"scheduled_for"})
        when = required_datetime(request, body, "scheduled_for")
        return _view(await self._desk.schedule(who, alert_id, when))

    async def approve(self, request: web.Request) -> web.Response:
        who = require(request, Role.APPROVER)
        alert_id = path_id(request, "alert_id")
        await json_object(request, allowed=(), empty_ok=True)
        return _view(await self._desk.approve(who, alert_id))

    async def reject(self, request: web.Request) -> web.Response:
        who = require(request, Role.APPROVER)
        alert_id = path_id(request, "alert_id")
        body = await json_object(request, allowed={"reason"})
        reason = required_text(request, body, "reason", max_length=NOTE_LENGTH)
        return _view(await self._desk.reject(who, alert_id, reason))

    async def cancel(self, request: web.Request) -> web.Response:
        who = require(request, Role.OFFICER)
        alert_id = path_id(request, "alert_id")
        body = await json_object(request, allowed={"note"}, empty_ok=True)
        note = optional_text(request, body, "note", max_length=NOTE_LENGTH)
        return _created_or_same(await self._desk.cancel(who, alert_id, note=note), alert_id)

    async def update(self, request: web.Request) -> web.Response:
        who = require(request, Role.OFFICER)
        alert_id = path_id(request, "alert_id")
        changes = await json_object(request, allowed=UPDATE_KEYS)
        return _created_or_same(await self._desk.update(who, alert_id, changes), alert_id)

    async def all_clear(self, request: web.Request) -> web.Response:
        who = require(request, Role.OFFICER)
        alert_id = path_id(request, "alert_id")
        body = await json_object(request, allowed={"note"}, empty_ok=True)
        note = optional_text(request, body, "note", max_length=NOTE_LENGTH)
        return _created_or_same(await self._desk.all_clear(who, alert_id, note=note), alert_id)
