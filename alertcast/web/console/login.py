"""``/console/login`` and ``/console/logout``: passwords in, a session cookie out.

Logging in is throttled twice (:class:`~alertcast.web.ingest_api.FailureThrottle`):
per remote address and per user name, so neither many names from one place
nor one name from many places can be guessed quickly. Only failures count,
so an officer who types the password right is never slowed down. A throttled
attempt is refused before the password is even checked.

Each login starts a new session (an older cookie in the browser is ended
first), so a session identifier planted before login is worth nothing after
it. The cookie is ``HttpOnly`` and ``SameSite=Strict``, and ``Secure`` when
the request came over HTTPS or the site's public URL is HTTPS.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from alertcast.errors import StoreError
from alertcast.web import auth
from alertcast.web.console.access import (
    LOGIN_CSRF_COOKIE,
    LOGIN_PATH,
    is_secure,
    login_token_matches,
    new_login_token,
    safe_next,
    viewer_of,
)
from alertcast.web.console.state import console_state
from alertcast.web.console.views import show, tr, unavailable

log = structlog.get_logger(__name__)

MAX_NAME = 64
MAX_PASSWORD_FIELD = 1024


def _login_page(
    request: web.Request,
    *,
    status: int = 200,
    error: str | None = None,
    username: str = "",
    next_path: str = "/console/",
) -> web.Response:
    token = new_login_token()
    response = show(
        request,
        None,
        "login.j2",
        status=status,
        title=tr(request, "Sign in"),
        login_error=error,
        username=username,
        next_path=next_path,
        login_token=token,
    )
    services = console_state(request).services
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        path=LOGIN_PATH,
        httponly=True,
        samesite="Strict",
        secure=is_secure(request, services.config.service.public_url),
        max_age=3600,
    )
    return response


async def login_form(request: web.Request) -> web.StreamResponse:
    """The sign-in form (also for someone signed in: signing in again starts a new session)."""
    return _login_page(request, next_path=safe_next(request.query.get("next")))


def _retry_after(request: web.Request, address: str, name: str) -> float | None:
    state = console_state(request)
    waits = [
        w for w in (state.by_address.retry_after(address), state.by_user.retry_after(name)) if w
    ]
    return max(waits) if waits else None


async def login(request: web.Request) -> web.StreamResponse:
    """Check the password; on success a new session and a redirect to where the person was going."""
    state = console_state(request)
    form = await request.post()
    name = str(form.get("username", "") or "").strip().lower()[:MAX_NAME]
    password = str(form.get("password", "") or "")
    next_path = safe_next(str(form.get("next", "") or ""))
    address = request.remote or "unknown"

    def refused(status: int, error: str) -> web.Response:
        return _login_page(request, status=status, error=error, username=name, next_path=next_path)

    if not login_token_matches(request, str(form.get(auth.CSRF_FIELD, "") or "")):
        log.warning("console.login_csrf_refused", remote=address)
        return refused(403, tr(request, "The form expired. Please sign in again."))
    wait = _retry_after(request, address, name)
    if wait is not None:
        log.warning("console.login_throttled", remote=address, user=name, retry_after_s=round(wait))
        seconds = max(1, int(wait + 0.999))
        response = refused(
            429,
            tr(
                request,
                "Too many failed sign-ins. Try again in %(seconds)s seconds.",
                seconds=seconds,
            ),
        )
        response.headers["Retry-After"] = str(seconds)
        return response
    try:
        user = None
        if name and password and len(password) <= MAX_PASSWORD_FIELD:
            user = await state.services.users.check_password(name, password)
        if user is None:
            state.by_address.failed(address)
            state.by_user.failed(name)
            log.warning("console.login_failed", remote=address, user=name)
            return refused(401, tr(request, "Wrong user name or password."))
        old = request.cookies.get(auth.SESSION_COOKIE)
        if old:
            await state.services.sessions.end(old)
        cookie, _session = await state.services.sessions.create(user)
    except StoreError as exc:
        log.error("console.login_store_failed", reason=str(exc))
        return unavailable(request, None)
    log.info("console.login", user=user.name, remote=address)
    response = web.HTTPSeeOther(next_path)
    response.set_cookie(
        auth.SESSION_COOKIE,
        cookie,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=is_secure(request, state.services.config.service.public_url),
    )
    response.del_cookie(LOGIN_CSRF_COOKIE, path=LOGIN_PATH)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    """End the session (the middleware already checked its CSRF token) and go to the login page."""
    cookie = request.cookies.get(auth.SESSION_COOKIE)
    if cookie and viewer_of(request) is not None:
        try:
            await console_state(request).services.sessions.end(cookie)
        except StoreError as exc:
            log.error("console.logout_store_failed", reason=str(exc))
            return unavailable(request, None)
    response = web.HTTPSeeOther(LOGIN_PATH)
    response.del_cookie(auth.SESSION_COOKIE, path="/")
    raise response
