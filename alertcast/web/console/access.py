"""Who is looking at a console page, and the login form's own CSRF token.

The person comes from :mod:`alertcast.web.auth` (its middleware checks the
session cookie and, for every unsafe request, the session's CSRF token); this
module only turns that into what a page needs: the principal and the token
its forms must carry. The console is for people with a session: a request
authenticated with an API token gets the login page instead, since it has no
CSRF token to put in forms.

The login form is posted before any session exists, so it has its own
double-submit token: a random value in a cookie restricted to the login path
(``SameSite=Strict``, ``HttpOnly``) and the same value in the form. Another
site can make a browser post the form but can neither read nor set the
cookie, so it cannot log a person in under someone else's name.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, urlsplit

from aiohttp import web

from alertcast.officers.roles import Principal
from alertcast.web import auth

CONSOLE_ROOT: Final = "/console/"
LOGIN_PATH: Final = "/console/login"
LOGIN_CSRF_COOKIE: Final = "alertcast_login_csrf"


@dataclass(frozen=True, slots=True)
class Viewer:
    """A signed-in person and the CSRF token their forms carry."""

    principal: Principal
    csrf_token: str


def viewer_of(request: web.Request) -> Viewer | None:
    """The signed-in person behind ``request``, or None (nobody, or not a console session)."""
    principal = auth.current_principal(request)
    session = auth.current_session(request)
    if principal is None or session is None or principal.via != "session":
        return None
    return Viewer(principal, session.csrf_token)


def signed_in(request: web.Request) -> Viewer:
    """The signed-in person behind ``request``; a redirect to the login page for nobody."""
    viewer = viewer_of(request)
    if viewer is None:
        raise to_login(request)
    return viewer


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a console path of this site, never another site."""
    if not target or not target.startswith(CONSOLE_ROOT) or target.startswith("//"):
        return CONSOLE_ROOT
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target:
        return CONSOLE_ROOT
    return target


def to_login(request: web.Request) -> web.HTTPSeeOther:
    """A redirect to the login page that comes back to this page afterwards."""
    here = request.path_qs if request.method == "GET" else CONSOLE_ROOT
    return web.HTTPSeeOther(f"{LOGIN_PATH}?next={quote(safe_next(here), safe='/')}")


def is_secure(request: web.Request, public_url: str | None) -> bool:
    """True when cookies must be ``Secure``: the request came over HTTPS or the site is HTTPS."""
    return request.secure or bool(public_url and public_url.lower().startswith("https://"))


def new_login_token() -> str:
    """A fresh double-submit token for the login form."""
    return secrets.token_urlsafe(32)


def login_token_matches(request: web.Request, given: str | None) -> bool:
    """True when the login form's token equals the one in its cookie (constant time)."""
    return auth.csrf_matches(given, request.cookies.get(LOGIN_CSRF_COOKIE, ""))
