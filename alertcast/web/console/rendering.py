"""Server-side pages: Jinja2 with autoescape, one environment per language, strict headers.

Every page is rendered on the server, so the console works with scripts off
(the scripts only add the map, the live preview and live progress). Each
language has its own environment with its gettext catalogue installed, so a
template says ``{{ _("Approve") }}`` and never knows which language it is in.

Headers: a Content-Security-Policy that allows scripts and styles from this
origin only (no inline script, no ``eval``) and images from this origin plus
the configured map tiles' host; ``Cache-Control: no-store`` because the pages
carry a CSRF token and alert details that a shared cache must not keep.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import jinja2
from aiohttp import web

from alertcast import __version__
from alertcast.web.console.i18n import (
    LANG_COOKIE,
    LANGUAGES,
    negotiate,
    requested_language,
    translations,
)

TEMPLATES_DIR: Final = Path(__file__).resolve().parent / "templates"
_YEAR_S = 365 * 24 * 3600


@lru_cache(maxsize=len(LANGUAGES))
def environment(language: str) -> jinja2.Environment:
    """The template environment of ``language``, its catalogue installed."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    return env


def gettext(language: str, message: str, **params: Any) -> str:
    """``message`` translated to ``language``, ``%(name)s`` placeholders filled from ``params``."""
    text = translations(language).gettext(message)
    return text % params if params else text


def tile_source(tile_url: str | None) -> str | None:
    """The CSP source that admits the map tiles at ``tile_url`` (None when same-origin or none).

    ``{s}`` subdomain placeholders become a ``*.`` wildcard, as CSP writes it.
    """
    if not tile_url:
        return None
    parts = urlsplit(tile_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    host = parts.netloc.replace("{s}.", "*.")
    return f"{parts.scheme}://{host}"


def content_security_policy(tile_url: str | None) -> str:
    """The console's policy: everything from this origin, images also from the tile host."""
    images = "'self' data:"
    source = tile_source(tile_url)
    if source is not None:
        images += f" {source}"
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {images}",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any],
    *,
    tile_url: str | None,
    status: int = 200,
) -> web.Response:
    """Render ``template`` in the request's language with the console's headers.

    ``context`` must hold what the layout reads (see :func:`page_context`).
    A ``?lang=`` switch is remembered in the language cookie.
    """
    language = str(context["lang"])
    body = environment(language).get_template(template).render(context)
    response = web.Response(text=body, content_type="text/html", status=status)
    response.headers["Content-Security-Policy"] = content_security_policy(tile_url)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    asked = requested_language(request)
    if asked is not None:
        response.set_cookie(
            LANG_COOKIE, asked, max_age=_YEAR_S, path="/", samesite="Lax", httponly=True
        )
    return response


def page_context(
    request: web.Request,
    *,
    principal: Any = None,
    csrf_token: str = "",
    exercise: bool = False,
    flash: str | None = None,
    flash_error: str | None = None,
    section: str = "",
    title: str = "",
) -> dict[str, Any]:
    """What the layout needs on every page, to which a page adds its own keys."""
    language = negotiate(request)
    return {
        "lang": language,
        "languages": LANGUAGES,
        "path": request.path,
        "principal": principal,
        "csrf_token": csrf_token,
        "exercise": exercise,
        "flash": flash,
        "flash_error": flash_error,
        "section": section,
        "title": title,
        "version": __version__,
    }
