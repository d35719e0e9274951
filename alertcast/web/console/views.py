"""What every console page shares: rendering for a viewer, flash messages, error pages.

Success after a form is a redirect (POST, then GET) whose ``?done=`` names
one message of a fixed list, so nothing a link carries is ever shown as text.
Refusals are not redirected: the page is rendered again with the reason in
``#flash-error`` and the status the API would answer (403, 409, 422...), so
the officer sees at once why nothing happened.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from aiohttp import web

from alertcast.web.console.access import Viewer
from alertcast.web.console.i18n import negotiate
from alertcast.web.console.rendering import gettext, page_context, render
from alertcast.web.console.state import console_state


def N_(message: str) -> str:
    """Mark ``message`` for the catalogues; it is translated where it is shown."""
    return message


DONE: Final[Mapping[str, str]] = {
    "submitted": N_("The alert was submitted and waits for approval."),
    "approved": N_("Your approval was recorded."),
    "rejected": N_("The alert was rejected."),
    "discarded": N_("The alert was withdrawn; nothing was sent."),
    "cancel": N_("A cancellation was created and submitted for approval."),
    "correct": N_("A correction was created and submitted for approval."),
    "all-clear": N_("An all clear was created and submitted for approval."),
    "logged-in": N_("Welcome."),
}


def language(request: web.Request) -> str:
    """The language of this request's page."""
    return negotiate(request)


def tr(request: web.Request, message: str, **params: Any) -> str:
    """``message`` in the request's language."""
    return gettext(negotiate(request), message, **params)


def done_message(request: web.Request) -> str | None:
    """The success message named by ``?done=``, translated; None for anything else."""
    message = DONE.get(request.query.get("done", ""))
    return tr(request, message) if message else None


def show(
    request: web.Request,
    viewer: Viewer | None,
    template: str,
    *,
    status: int = 200,
    exercise: bool = False,
    flash: str | None = None,
    flash_error: str | None = None,
    section: str = "",
    title: str = "",
    **context: Any,
) -> web.Response:
    """Render a page for ``viewer`` with the layout's context and the page's own."""
    base = page_context(
        request,
        principal=viewer.principal if viewer else None,
        csrf_token=viewer.csrf_token if viewer else "",
        exercise=exercise,
        flash=flash if flash is not None else done_message(request),
        flash_error=flash_error,
        section=section,
        title=title,
    )
    base.update(context)
    return render(request, template, base, tile_url=console_state(request).tile_url, status=status)


def section_page(
    request: web.Request, viewer: Viewer, section: str, title: str, **context: Any
) -> web.Response:
    """A page of the navigation: template ``{section}.j2``, with its section marked current."""
    return show(request, viewer, f"{section}.j2", section=section, title=title, **context)


def error_page(
    request: web.Request, viewer: Viewer | None, status: int, message: str
) -> web.Response:
    """A page that only says what went wrong (unknown alert, database unavailable...)."""
    response = show(
        request,
        viewer,
        "error.j2",
        status=status,
        flash_error=message,
        title=tr(request, "Error"),
        status_code=status,
    )
    if status == 503:
        response.headers["Retry-After"] = "5"
    return response


def unavailable(request: web.Request, viewer: Viewer | None) -> web.Response:
    """The database could not be read or written: say so and ask to retry."""
    return error_page(
        request,
        viewer,
        503,
        tr(request, "The database is not available right now. Nothing was changed; try again."),
    )
