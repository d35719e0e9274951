"""Errors of the API as RFC 9457 problems, in the client's language.

Every refusal the API makes is an ``application/problem+json`` body
``{"type", "title", "status", "detail"}``, whatever raised it: a handler's
:class:`ProblemError`, an officers' error (:func:`officer_problem`: not found
404, forbidden 403, wrong state 409, bad input 422), the router's own 404/405,
aiohttp's 413, or a failure nobody foresaw (500, logged with the traceback but
never shown). A client therefore parses one shape, and a person reads one
sentence saying what to change.

The ``detail`` of the API's own messages follows ``Accept-Language``: Spanish
when the client prefers it, English otherwise. ``title`` is the HTTP reason
phrase, which is what a problem type's title is meant to be.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any, Final

import structlog
from aiohttp import web

from alertcast.errors import StoreError
from alertcast.officers import errors

log = structlog.get_logger(__name__)

PROBLEM_JSON: Final = "application/problem+json"
API_PREFIX: Final = "/api/"

MESSAGES: Final[dict[str, dict[str, str]]] = {
    "auth.missing": {
        "en": "authentication required: send 'Authorization: Bearer <token>' or sign in",
        "es": "se requiere autenticación: envíe 'Authorization: Bearer <token>' o inicie sesión",
    },
    "auth.invalid": {
        "en": "the token is not valid (unknown, revoked, or its user is disabled)",
        "es": "el token no es válido (desconocido, revocado o su usuario está deshabilitado)",
    },
    "auth.role": {
        "en": "this needs the role {needed}; you act as {role}",
        "es": "esto requiere el rol {needed}; usted actúa como {role}",
    },
    "auth.throttled": {
        "en": "too many failed authentications from this address; try again later",
        "es": "demasiadas autenticaciones fallidas desde esta dirección; inténtelo más tarde",
    },
    "auth.csrf": {
        "en": "missing or wrong CSRF token: send the session's token in the X-CSRF-Token header",
        "es": "falta el token CSRF o es incorrecto: envíe el de la sesión en la cabecera "
        "X-CSRF-Token",
    },
    "store.unavailable": {
        "en": "the database could not be reached; nothing was changed, try again",
        "es": "no se pudo acceder a la base de datos; no se cambió nada, inténtelo de nuevo",
    },
    "server.error": {
        "en": "an unexpected error occurred; it was logged",
        "es": "se produjo un error inesperado; quedó registrado",
    },
    "route.not_found": {
        "en": "there is no such resource: {path}",
        "es": "no existe ese recurso: {path}",
    },
    "route.method": {
        "en": "method {method} is not allowed here; allowed: {allowed}",
        "es": "el método {method} no se admite aquí; se admiten: {allowed}",
    },
    "body.too_large": {
        "en": "the body is larger than {limit} bytes",
        "es": "el cuerpo supera los {limit} bytes",
    },
    "body.not_json": {
        "en": "the body is not valid JSON: {reason}",
        "es": "el cuerpo no es JSON válido: {reason}",
    },
    "body.content_type": {
        "en": "send the body as application/json, not {given}",
        "es": "envíe el cuerpo como application/json, no como {given}",
    },
    "body.not_object": {
        "en": "the body must be a JSON object",
        "es": "el cuerpo debe ser un objeto JSON",
    },
    "body.unknown_key": {
        "en": "{key}: unknown key (allowed: {allowed})",
        "es": "{key}: clave desconocida (se admiten: {allowed})",
    },
    "body.missing": {
        "en": "{key}: missing",
        "es": "{key}: falta",
    },
    "body.type": {
        "en": "{key}: expected {expected}",
        "es": "{key}: se esperaba {expected}",
    },
    "body.datetime": {
        "en": "{key}: expected an ISO 8601 date and time with a UTC offset",
        "es": "{key}: se esperaba una fecha y hora ISO 8601 con desfase UTC",
    },
    "body.blank": {
        "en": "{key}: must not be blank",
        "es": "{key}: no puede estar vacío",
    },
    "query.integer": {
        "en": "{key}: expected a whole number from {low} to {high}",
        "es": "{key}: se esperaba un número entero de {low} a {high}",
    },
    "query.choice": {
        "en": "{key}: {value!r} is not one of {allowed}",
        "es": "{key}: {value!r} no es uno de {allowed}",
    },
    "alert.not_found": {
        "en": "there is no alert {id}",
        "es": "no existe la alerta {id}",
    },
    "alert.invalid": {
        "en": "the alert is not valid: {reason}",
        "es": "la alerta no es válida: {reason}",
    },
    "subscriber.not_found": {
        "en": "there is no subscriber #{id}",
        "es": "no existe el suscriptor #{id}",
    },
    "subscribers.unavailable": {
        "en": "subscribers are not configured on this service",
        "es": "los suscriptores no están configurados en este servicio",
    },
    "retry.nothing": {
        "en": "no dead, failed or unknown deliveries match",
        "es": "ninguna entrega muerta, fallida o desconocida coincide",
    },
}


def language_of(request: web.Request | None) -> str:
    """``es`` when the client's first preference is Spanish, ``en`` otherwise."""
    if request is None:
        return "en"
    header = request.headers.get("Accept-Language", "")
    first = header.split(",", 1)[0].strip().lower()
    return "es" if first.startswith("es") else "en"


def message(request: web.Request | None, key: str, /, **values: object) -> str:
    """The API message ``key`` in the client's language, formatted with ``values``."""
    entry = MESSAGES[key]
    return entry.get(language_of(request), entry["en"]).format(**values)


def problem_body(status: int, detail: str, **extra: Any) -> dict[str, Any]:
    """The JSON of a problem: ``type`` is ``about:blank``, so ``title`` is the reason phrase."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    body.update(extra)
    return body


def problem_response(
    status: int, detail: str, *, headers: Mapping[str, str] | None = None, **extra: Any
) -> web.Response:
    """A problem response, for handlers that return rather than raise."""
    response = web.json_response(
        problem_body(status, detail, **extra), status=status, content_type=PROBLEM_JSON
    )
    response.headers.update(headers or {})
    return response


class ProblemError(web.HTTPException):
    """Raised anywhere in a handler to answer with a problem.

    It is an aiohttp HTTP exception, so it answers correctly even where no
    middleware of the API is installed (the console's pages call
    :func:`alertcast.web.auth.require` too, and may catch it to redirect).
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        self.status_code = status
        self.detail = detail
        super().__init__(
            headers=dict(headers or {}),
            text=json.dumps(problem_body(status, detail, **extra), ensure_ascii=False),
            content_type=PROBLEM_JSON,
        )


def officer_problem(exc: Exception, language: str = "en") -> ProblemError | None:
    """The problem an officers' error stands for (in ``language``), or None for another error."""
    if not isinstance(exc, errors.OfficerError):
        return None
    status = exc.status
    if isinstance(exc, errors.NotFound):
        status = 404
    elif isinstance(exc, errors.Forbidden):  # TwoPersonRule included
        status = 403
    elif isinstance(exc, errors.Conflict):
        status = 409
    elif isinstance(exc, errors.Invalid):
        status = 422
    extra: dict[str, Any] = {}
    if isinstance(exc, errors.TwoPersonRule):
        extra["rule"] = "two-person"
    return ProblemError(status, exc.localized(language), **extra)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _is_problem(response: web.StreamResponse) -> bool:
    return response.content_type == PROBLEM_JSON


def _returned(exc: web.HTTPException) -> web.Response:
    """A raised problem as a returned response, so outer middlewares still see it."""
    response = web.Response(status=exc.status, text=exc.text, content_type=PROBLEM_JSON)
    for name, value in exc.headers.items():
        if name.lower() not in {"content-type", "content-length"}:
            response.headers[name] = value
    return response


def _from_http_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    status = exc.status
    headers = {k: v for k, v in exc.headers.items() if k.lower() in {"allow", "retry-after"}}
    if status == 404:
        detail = message(request, "route.not_found", path=request.path)
    elif status == 405:
        detail = message(
            request,
            "route.method",
            method=request.method,
            allowed=exc.headers.get("Allow", "") or "-",
        )
    else:
        detail = exc.text or HTTPStatus(status).phrase
    return problem_response(status, detail, headers=headers)


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Under ``/api/``, turn every error into a problem; elsewhere, stay out of the way."""
    if not request.path.startswith(API_PREFIX):
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects are not errors
        if _is_problem(exc):
            return _returned(exc)
        return _from_http_error(request, exc)
    except StoreError as exc:
        log.error("api.store_failed", path=request.path, reason=str(exc))
        return problem_response(
            503, message(request, "store.unavailable"), headers={"Retry-After": "5"}
        )
    except Exception as exc:
        found = officer_problem(exc, language_of(request))
        if found is not None:
            return _returned(found)
        log.exception("api.failed", path=request.path, method=request.method)
        return problem_response(500, message(request, "server.error"))
    return response
