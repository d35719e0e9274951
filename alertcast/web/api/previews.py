"""Previews through the API: what each routed channel would show, to whom, how fast, at what cost.

``POST /api/v1/preview`` takes an alert being composed, in the ``alertcast
parse`` JSON shape, with ``identifier``, ``sent`` and ``sender`` optional
(they are filled as the desk would fill them), so the compose form can show
its live preview before anything is stored; nothing is written. ``GET
/api/v1/alerts/{id}/preview`` previews a stored alert. Both answer
:meth:`alertcast.preview.Preview.to_json`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from alertcast.alert_json import alert_from_json
from alertcast.domain import Alert
from alertcast.officers.roles import Role
from alertcast.officers.workflow import AlertDesk
from alertcast.preview import Previewer
from alertcast.web.api.inputs import json_object, path_id
from alertcast.web.api.problems import ProblemError, language_of, message
from alertcast.web.auth import require

PREVIEW_IDENTIFIER = "preview"
DEFAULTS: Mapping[str, str] = {"msg_type": "Alert", "scope": "Public"}
"""What the desk fills in when a body leaves it out (``status`` it never guesses)."""


def draft_alert(body: Mapping[str, Any], *, sender: str, now: datetime) -> Alert:
    """The alert a compose body describes, with what the desk would fill filled in.

    Unlike :func:`alertcast.officers.compose.compose` it accepts what is not
    yet complete (no area, no headline), so the compose form can preview while
    the officer types. Raises ValueError whose message starts with the
    offending key.
    """
    data: dict[str, Any] = dict(body)
    given = data.get("sender")
    if given is not None and given != sender:
        raise ValueError(f"sender: alerts composed here are sent as {sender!r}, not {given!r}")
    data["sender"] = sender
    for key, value in DEFAULTS.items():
        if data.get(key) is None:
            data[key] = value
    return alert_from_json(data, default_identifier=PREVIEW_IDENTIFIER, default_sent=now)


class PreviewsApi:
    """Handlers over the previewer."""

    def __init__(
        self,
        previewer: Previewer,
        desk: AlertDesk,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._previewer = previewer
        self._desk = desk
        self._clock = clock

    async def compose(self, request: web.Request) -> web.Response:
        require(request, Role.OFFICER)
        body = await json_object(request)
        try:
            alert = draft_alert(body, sender=self._desk.sender, now=self._clock())
        except (ValueError, TypeError) as exc:
            raise ProblemError(422, message(request, "alert.invalid", reason=str(exc))) from exc
        preview = await self._previewer.preview(alert, language=language_of(request))
        return web.json_response(preview.to_json(), headers={"Cache-Control": "no-store"})

    async def stored(self, request: web.Request) -> web.Response:
        require(request, Role.VIEWER)
        view = await self._desk.get(path_id(request, "alert_id"))
        preview = await self._previewer.preview(view.alert, language=language_of(request))
        return web.json_response(preview.to_json(), headers={"Cache-Control": "no-store"})
