"""Who is asking: API tokens and console sessions, roles and CSRF, for every web handler.

:func:`auth_middleware` finds the person behind each request to the API and
the console and leaves them in ``request[PRINCIPAL]`` (None for nobody; read
it with :func:`current_principal`); handlers then say what role they need
with :func:`require`. Finding and requiring are kept apart so that pages that
need nobody (``/api/v1/openapi.json``, the console's login form) never fail
because of a stale cookie or a wrong token they did not ask for. Paths outside
the API and the console (the public status page and feed, provider webhooks,
the push endpoint with its own feed tokens) are not looked at at all.

Credentials, in this order:

1. ``Authorization: Bearer TOKEN`` (:class:`~alertcast.officers.tokens.TokenStore`).
   A token that does not authenticate is counted against the client's address
   (:class:`~alertcast.web.ingest_api.FailureThrottle`): past the allowance
   every wrong token from there is answered 429, so guessing is slow. A valid
   token always passes, so a broken script behind the same address as a duty
   officer cannot lock the officer out during an emergency. Bearer requests
   need no CSRF token: a browser never adds that header by itself.
2. The console's session cookie ``alertcast_session``
   (:class:`~alertcast.officers.sessions.SessionStore`). A browser sends
   cookies with requests other sites make it send, so every unsafe request
   (POST, PUT, PATCH, DELETE) with a session must also carry the session's
   CSRF token, in the ``X-CSRF-Token`` header or a ``csrf_token`` form field;
   without it the answer is 403 and nothing runs. The comparison is
   constant-time (:func:`hmac.compare_digest`).

Tokens and cookies are never logged; refusals are logged with the address.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Collection
from typing import TYPE_CHECKING, Final

import structlog
from aiohttp import web

from alertcast.errors import StoreError
from alertcast.officers.roles import Principal, Role
from alertcast.officers.sessions import Session
from alertcast.web.api.problems import ProblemError, message, problem_response
from alertcast.web.ingest_api import PUSH_PATH, FailureThrottle, bearer_token

if TYPE_CHECKING:
    from alertcast.officers.services import OfficeServices

log = structlog.get_logger(__name__)

SESSION_COOKIE: Final = "alertcast_session"
CSRF_HEADER: Final = "X-CSRF-Token"
CSRF_FIELD: Final = "csrf_token"
PRINCIPAL: Final[web.RequestKey[Principal | None]] = web.RequestKey("principal")
"""``request[PRINCIPAL]``: the :class:`Principal` acting, or None."""
SESSION: Final[web.RequestKey[Session | None]] = web.RequestKey("session")
"""``request[SESSION]``: the console :class:`Session` when the cookie authenticated."""
AUTH_ERROR: Final[web.RequestKey[str | None]] = web.RequestKey("auth_error")
"""``request[AUTH_ERROR]``: why credentials that were sent did not authenticate."""

UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PROTECTED_PREFIXES: Final = ("/api/v1/", "/console")
"""Paths whose requests are authenticated (the push endpoint excepted: it has feed tokens)."""
CSRF_EXEMPT: Final = ("/console/login",)
"""Unsafe requests that need no CSRF token even with a session: signing in."""
_MAX_TOKEN_LENGTH = 512
_MAX_COOKIE_LENGTH = 512
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
_CHALLENGE = 'Bearer realm="alertcast"'

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


def current_principal(request: web.Request) -> Principal | None:
    """The person behind ``request`` as the middleware found them (None for nobody)."""
    return request.get(PRINCIPAL)


def current_session(request: web.Request) -> Session | None:
    """The console session that authenticated ``request``, if a cookie did."""
    return request.get(SESSION)


def require(request: web.Request, role: Role) -> Principal:
    """The person behind ``request`` if their role allows ``role``.

    Raises a :class:`~alertcast.web.api.problems.ProblemError`: 401 with a
    ``WWW-Authenticate: Bearer`` challenge when nobody authenticated, 403 when
    the role is too low.
    """
    principal = current_principal(request)
    if principal is None:
        error = request.get(AUTH_ERROR)
        challenge = _CHALLENGE + (', error="invalid_token"' if error == "invalid_token" else "")
        key = "auth.invalid" if error == "invalid_token" else "auth.missing"
        raise ProblemError(401, message(request, key), headers={"WWW-Authenticate": challenge})
    if not principal.role.allows(role):
        log.info(
            "auth.forbidden",
            user=principal.name,
            role=principal.role.value,
            needed=role.value,
            path=request.path,
        )
        raise ProblemError(
            403, message(request, "auth.role", needed=role.value, role=principal.role.value)
        )
    return principal


async def _csrf_given(request: web.Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if request.content_type in _FORM_TYPES:
        form = await request.post()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


def csrf_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a sent CSRF token with the session's."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def auth_middleware(
    services: OfficeServices,
    *,
    prefixes: Collection[str] = PROTECTED_PREFIXES,
    csrf_exempt: Collection[str] = CSRF_EXEMPT,
    throttle: FailureThrottle | None = None,
) -> Middleware:
    """The middleware that finds who is behind each request of the officers' paths.

    Only paths under ``prefixes`` (the API and the console) are looked at;
    elsewhere (public pages, provider webhooks, the push endpoint with its own
    feed tokens) the principal is always None and nothing is refused, so a
    feed's bearer token is never mistaken for a failed login. ``csrf_exempt``
    lists paths whose unsafe requests skip the CSRF check even with a session
    cookie (the login form, posted before the page knows a session's token).
    ``throttle`` counts failed token authentications per address (a fresh one
    by default).
    """
    failures = throttle or FailureThrottle()
    exempt = frozenset(csrf_exempt)
    governed = tuple(prefixes)

    def is_governed(path: str) -> bool:
        return path.startswith(governed) and path != PUSH_PATH

    async def by_token(request: web.Request, token: str) -> web.StreamResponse | None:
        principal = None
        if len(token) <= _MAX_TOKEN_LENGTH:
            principal = await services.tokens.authenticate(token)
        if principal is not None:
            request[PRINCIPAL] = principal
            return None
        remote = request.remote or "unknown"
        wait = failures.retry_after(remote)
        if wait is not None:
            log.warning("auth.throttled", remote=remote, retry_after_s=round(wait, 1))
            return problem_response(
                429,
                message(request, "auth.throttled"),
                headers={"Retry-After": str(max(1, int(wait + 0.999)))},
            )
        failures.failed(remote)
        request[AUTH_ERROR] = "invalid_token"
        log.warning("auth.invalid_token", remote=remote, path=request.path)
        return None

    async def by_cookie(request: web.Request, cookie: str) -> web.StreamResponse | None:
        if len(cookie) > _MAX_COOKIE_LENGTH:
            return None
        session = await services.sessions.get(cookie)
        if session is None:
            request[AUTH_ERROR] = "session_expired"
            return None
        needs_csrf = request.method in UNSAFE_METHODS and request.path not in exempt
        if needs_csrf and not csrf_matches(await _csrf_given(request), session.csrf_token):
            log.warning(
                "auth.csrf_refused",
                user=session.principal.name,
                remote=request.remote,
                path=request.path,
            )
            return problem_response(403, message(request, "auth.csrf"))
        request[PRINCIPAL] = session.principal
        request[SESSION] = session
        return None

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[PRINCIPAL] = None
        request[SESSION] = None
        request[AUTH_ERROR] = None
        if not is_governed(request.path):
            return await handler(request)
        try:
            token = bearer_token(request)
            refused: web.StreamResponse | None = None
            if token is not None:
                refused = await by_token(request, token)
            else:
                cookie = request.cookies.get(SESSION_COOKIE)
                if cookie:
                    refused = await by_cookie(request, cookie)
        except StoreError as exc:
            log.error("auth.store_failed", path=request.path, reason=str(exc))
            return problem_response(
                503, message(request, "store.unavailable"), headers={"Retry-After": "5"}
            )
        if refused is not None:
            return refused
        return await handler(request)

    return middleware
