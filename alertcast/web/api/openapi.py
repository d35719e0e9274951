"""The OpenAPI 3.1 document of ``/api/v1``, served at ``GET /api/v1/openapi.json``.

Written by hand, next to the handlers, and checked against the router by the
tests (every routed ``/api/v1`` path and method is documented, every
documented one is routed), so the document cannot drift from what runs. It
lists, per operation, its parameters, request body, every status it can
answer with (problems included) and its security: a bearer token or the
console's session cookie, which also needs the CSRF header on unsafe methods.
The vocabularies it lists (CAP's enumerations, roles, feed states) are taken
from the code that checks them, so a value added there is documented too.

The push endpoint (``POST /api/v1/ingest/cap``) exists only where push feeds
are configured; :func:`document` includes it only when the application routes it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from enum import StrEnum
from typing import Any, Final, get_args

from alertcast import __version__, domain
from alertcast.feed_health import Status as FeedStatus
from alertcast.officers.roles import Role, Via
from alertcast.preview_model import SMS_ENCODINGS
from alertcast.rules_model import Approval
from alertcast.web.api.alerts import ALERT_STATES
from alertcast.web.api.deliveries import RETRY_STATES
from alertcast.web.auth import CSRF_HEADER, SESSION_COOKIE
from alertcast.web.ingest_api import CAP_CONTENT_TYPES, PUSH_PATH

OPENAPI_PATH: Final = "/api/v1/openapi.json"

Json = dict[str, Any]


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Json) -> Json:
    return {"oneOf": [schema, {"type": "null"}]}


def _enum(values: Iterable[str | None]) -> Json:
    return {"enum": list(values)}


def _enum_of(vocabulary: type[StrEnum]) -> Json:
    return _enum(member.value for member in vocabulary)


def _array(items: Json, **extra: Any) -> Json:
    return {"type": "array", "items": items, **extra}


def _object(
    properties: Json,
    *required: str,
    closed: bool = False,
    description: str | None = None,
) -> Json:
    """An object schema; ``closed`` refuses keys not in ``properties``."""
    schema: Json = {"type": "object"}
    if description is not None:
        schema["description"] = description
    if closed:
        schema["additionalProperties"] = False
    if required:
        schema["required"] = list(required)
    schema["properties"] = properties
    return schema


def _list_of(key: str, items: Json) -> Json:
    """``{key: [items]}``, the shape of every unpaged list the API answers with."""
    return _object({key: _array(items)}, key)


def _page_of(key: str, items: Json, cursor: str) -> Json:
    """``{key: [items], next}``: one page, and the ``cursor`` parameter of the next."""
    return _object(
        {
            key: _array(items),
            "next": {
                "type": ["integer", "null"],
                "description": f"Pass as `{cursor}` for the next page; null on the last one.",
            },
        },
        key,
        "next",
    )


_STR: Final[Json] = {"type": "string"}
_INT: Final[Json] = {"type": "integer"}
_NUM: Final[Json] = {"type": "number"}
_BOOL: Final[Json] = {"type": "boolean"}
_DATETIME: Final[Json] = {"type": "string", "format": "date-time"}
_STR_OR_NULL: Final[Json] = {"type": ["string", "null"]}
_INT_OR_NULL: Final[Json] = {"type": ["integer", "null"]}
_NUM_OR_NULL: Final[Json] = {"type": ["number", "null"]}
_DATETIME_OR_NULL: Final[Json] = {"type": ["string", "null"], "format": "date-time"}
_STRINGS: Final[Json] = _array(_STR)
_COUNTS: Final[Json] = {"type": "object", "additionalProperties": _INT}


# --------------------------------------------------------------------------- schemas

_AREA: Final[Json] = _object(
    {
        "area_desc": {"type": "string", "minLength": 1},
        "polygons": _array(
            _array(_array(_NUM, minItems=2, maxItems=2)),
            description="Each polygon a closed ring of [lat, lon] points.",
        ),
        "circles": _array(
            _object(
                {"lat": _NUM, "lon": _NUM, "radius_km": _NUM},
                "lat",
                "lon",
                "radius_km",
                closed=True,
            )
        ),
        "geocodes": _array(_ref("NamedValue")),
        "altitude": _NUM_OR_NULL,
        "ceiling": _NUM_OR_NULL,
    },
    "area_desc",
    closed=True,
)

_INFO: Final[Json] = _object(
    {
        "language": {"type": "string", "examples": ["es-MX"]},
        "category": _array(_enum_of(domain.Category)),
        "event": {"type": "string", "minLength": 1},
        "response_type": _array(_enum_of(domain.ResponseType)),
        "urgency": _enum_of(domain.Urgency),
        "severity": _enum_of(domain.Severity),
        "certainty": _enum_of(domain.Certainty),
        "audience": _STR_OR_NULL,
        "event_codes": _array(_ref("NamedValue")),
        "effective": _DATETIME_OR_NULL,
        "onset": _DATETIME_OR_NULL,
        "expires": _DATETIME_OR_NULL,
        "sender_name": _STR_OR_NULL,
        "headline": _STR_OR_NULL,
        "description": _STR_OR_NULL,
        "instruction": _STR_OR_NULL,
        "web": _STR_OR_NULL,
        "contact": _STR_OR_NULL,
        "parameters": {"type": "object"},
        "parameter_list": _array(_ref("NamedValue")),
        "resources": _array({"type": "object"}),
        "areas": _array(_AREA),
    },
    "event",
    "urgency",
    "severity",
    "certainty",
    closed=True,
)

_ALERT_JSON: Final[Json] = _object(
    {
        "identifier": _STR_OR_NULL,
        "sender": _STR,
        "sent": _DATETIME_OR_NULL,
        "status": _enum_of(domain.Status),
        "msg_type": _enum_of(domain.MsgType),
        "scope": _enum_of(domain.Scope),
        "source": _STR_OR_NULL,
        "restriction": _STR_OR_NULL,
        "addresses": _STRINGS,
        "codes": _STRINGS,
        "note": _STR_OR_NULL,
        "references": _STRINGS,
        "incidents": _STRINGS,
        "infos": _array(_INFO, minItems=1),
    },
    "status",
    "msg_type",
    "scope",
    "infos",
    closed=True,
    description=(
        "An alert in the JSON shape `alertcast parse` prints. When composing, "
        "`identifier`, `sent` and `sender` may be left out: alertcast fills them."
    ),
)

_APPROVAL: Final[Json] = _object(
    {
        "user": _STR,
        "decision": _enum(["approve", "reject"]),
        "reason": _STR_OR_NULL,
        "at": _DATETIME,
    },
    "user",
    "decision",
)

_ALERT_VIEW: Final[Json] = _object(
    {
        "id": _INT,
        "state": {"type": "string", "description": "One of: " + ", ".join(ALERT_STATES)},
        "created_by": _STR_OR_NULL,
        "approvals_required": _INT_OR_NULL,
        "approvals": _array(_APPROVAL),
        "scheduled_for": _DATETIME_OR_NULL,
        "submitted_at": _DATETIME_OR_NULL,
        "review_reason": _STR_OR_NULL,
        "source": _STR,
        "received_at": _DATETIME_OR_NULL,
        "exercise": _BOOL,
        "alert": {"type": "object", "description": "The alert, as `alertcast parse` prints it."},
        "routes": _array(
            {"type": "object"},
            description="Only on a single alert: its routed deliveries and their state.",
        ),
    },
    "id",
    "state",
    "alert",
)

_RENDERING: Final[Json] = _object(
    {
        "language": _STR,
        "text": _STR,
        "length": _INT,
        "parts": _INT,
        "sms": _nullable(_object({"segments": _INT, "encoding": _enum(SMS_ENCODINGS.values())})),
        "problems": _STRINGS,
    }
)

_COST: Final[Json] = _object(
    {"segments": _INT, "per_segment": _NUM, "currency": _STR, "total": _NUM}
)

_PREVIEW: Final[Json] = _object(
    {
        "routes": _array(
            _object(
                {
                    "route": _STR,
                    "channel": _STR,
                    "kind": _STR,
                    "approval": _enum_of(Approval),
                    "held": _STR_OR_NULL,
                    "audience": _INT_OR_NULL,
                    "eta_s": _NUM_OR_NULL,
                    "cost": _nullable(_COST),
                    "renderings": _array(_RENDERING),
                }
            )
        ),
        "approvals_required": _INT,
        "exercise": _BOOL,
        "warnings": _STRINGS,
    },
    "routes",
    "approvals_required",
    "exercise",
    "warnings",
)

_PROGRESS_FIGURES: Final[Json] = {
    "counts": _COUNTS,
    "total": _INT,
    "done": _INT,
    "remaining": _INT,
    "rate_per_s": _NUM,
    "eta_s": _NUM_OR_NULL,
    "oldest_pending_age_s": _NUM_OR_NULL,
}

_PROGRESS: Final[Json] = _object(
    {
        "alert_id": _INT,
        "at": _DATETIME,
        "window_s": _NUM,
        "finished": _BOOL,
        "totals": _object(_PROGRESS_FIGURES),
        "channels": _array(
            _object(
                {
                    "channel": _STR,
                    "finished": _BOOL,
                    "rate_limit_per_s": _NUM_OR_NULL,
                    **_PROGRESS_FIGURES,
                }
            )
        ),
    },
    "alert_id",
    "at",
    "finished",
    "totals",
    "channels",
)

_DELIVERY: Final[Json] = _object(
    {
        "id": _INT,
        "alert_id": _INT,
        "channel": _STR,
        "target": _STR,
        "state": _STR,
        "priority": _INT,
        "attempts": _INT,
        "next_attempt_at": _DATETIME,
        "last_error_class": _STR_OR_NULL,
        "last_error": _STR_OR_NULL,
        "provider_message_id": _STR_OR_NULL,
        "updated_at": _DATETIME,
    },
    "id",
    "alert_id",
    "channel",
    "state",
)

_AUDIT_FIELDS: Final = ("seq", "at", "actor", "action", "subject", "data", "prev_hash", "hash")
_AUDIT_RECORD: Final[Json] = _object(
    {
        name: _INT if name == "seq" else {"type": "object"} if name == "data" else _STR
        for name in _AUDIT_FIELDS
    },
    *_AUDIT_FIELDS,
)

_FEED: Final[Json] = _object(
    {
        "name": _STR,
        "kind": _STR,
        "enabled": _BOOL,
        "status": _enum(get_args(FeedStatus)),
        "stale": _BOOL,
        "unhealthy": _BOOL,
        "last_attempt_at": _DATETIME_OR_NULL,
        "last_success_at": _DATETIME_OR_NULL,
        "last_change_at": _DATETIME_OR_NULL,
        "consecutive_failures": _INT,
        "last_error": _STR_OR_NULL,
        "items_seen": _INT,
        "next_poll_at": _DATETIME_OR_NULL,
        "lease_owner": _STR_OR_NULL,
    },
    "name",
    "kind",
    "enabled",
    "status",
)

_CHANNEL: Final[Json] = _object(
    {"name": _STR, "kind": _STR, "enabled": _BOOL, "rate_limit_per_s": _NUM_OR_NULL},
    "name",
    "kind",
    "enabled",
    "rate_limit_per_s",
)

SCHEMAS: Final[Json] = {
    "Problem": _object(
        {
            "type": _STR,
            "title": _STR,
            "status": _INT,
            "detail": _STR,
            "rule": {"type": "string", "description": "`two-person` when that rule refused"},
        },
        "type",
        "title",
        "status",
        "detail",
        description="RFC 9457 problem details.",
    ),
    "NamedValue": _object({"name": _STR, "value": _STR}, "name", "value", closed=True),
    "AlertJson": _ALERT_JSON,
    "AlertView": _ALERT_VIEW,
    "AlertList": _page_of("alerts", _ref("AlertView"), "before"),
    "Queue": _list_of("alerts", _ref("AlertView")),
    "Preview": _PREVIEW,
    "Progress": _PROGRESS,
    "DeadDeliveries": _object(
        {"deliveries": _array(_DELIVERY), "next": _INT_OR_NULL}, "deliveries", "next"
    ),
    "RetryResult": _object(
        {"alert_id": _INT, "channel": _STR_OR_NULL, "state": _STR, "retried": _INT},
        "alert_id",
        "retried",
    ),
    "Feeds": _list_of("feeds", _FEED),
    "Channels": _list_of("channels", _CHANNEL),
    "SubscriberCount": _object(
        {"configured": _BOOL, "channels": _COUNTS, "total": _INT},
        "configured",
        "channels",
        "total",
    ),
    "SubscriberId": _object({"id": {"type": "integer", "minimum": 1}}, "id", closed=True),
    "SubscriberExport": _object(
        {"id": _INT, "address": _STR},
        "id",
        description="Everything held about one subscriber, address decrypted.",
    ),
    "SubscriberDeleted": _object({"id": _INT, "deleted": _BOOL}, "id", "deleted"),
    "Acknowledgements": _object(
        {"alert_id": _INT, "counts": _COUNTS, "total": _INT}, "alert_id", "counts", "total"
    ),
    "AuditPage": _page_of("records", _AUDIT_RECORD, "after"),
    "AuditVerification": _object(
        {
            "intact": _BOOL,
            "records": _INT_OR_NULL,
            "broken_at": _INT_OR_NULL,
            "reason": _STR_OR_NULL,
        },
        "intact",
        "records",
        "broken_at",
        "reason",
    ),
    "Me": _object(
        {"name": _STR, "role": _enum_of(Role), "via": _enum(get_args(Via))},
        "name",
        "role",
        "via",
    ),
}


# --------------------------------------------------------------------------- responses

_PROBLEM_CONTENT: Final[Json] = {"application/problem+json": {"schema": _ref("Problem")}}

_ERRORS: Final[dict[str, str]] = {
    "400": "The body is not JSON.",
    "401": "No credentials, or credentials that do not authenticate.",
    "403": (
        "The role is too low, the CSRF token is missing (session cookie), "
        "or the two-person rule refuses the action."
    ),
    "404": "No such alert (or subscriber).",
    "409": "The alert is in the wrong state for this action.",
    "413": "The body is too large.",
    "415": "The body is not application/json.",
    "422": "The input is of the wrong shape; `detail` names the key.",
    "429": "Too many failed authentications from this address; see Retry-After.",
    "503": "The database is unreachable; nothing was changed. See Retry-After.",
}

RESPONSES: Final[Json] = {
    code: {"description": text, "content": copy.deepcopy(_PROBLEM_CONTENT)}
    for code, text in _ERRORS.items()
}


def _json_ok(schema: str, description: str) -> Json:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _any_json(description: str) -> Json:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }


def _errors(*codes: str) -> Json:
    return {code: {"$ref": f"#/components/responses/{code}"} for code in codes}


_AUTH = ("401", "403", "429", "503")
_BODY = ("400", "413", "415", "422")
_ALERT_ID: Final[Json] = {
    "name": "alert_id",
    "in": "path",
    "required": True,
    "description": "The alert's id (digits only).",
    "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
}


def _query(name: str, schema: Json, description: str) -> Json:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _limit(most: int, default: int) -> Json:
    return _query(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": most, "default": default},
        "Page size.",
    )


def _text_filter(name: str, description: str) -> Json:
    return _query(name, {"type": "string", "maxLength": 200}, description)


def _after(description: str) -> Json:
    return _query("after", {"type": "integer", "minimum": 0}, description)


def _ok(operation_id: str, summary: str, schema: str, description: str, tag: str) -> Json:
    """A viewer's read with no parameters: the common shape of the status endpoints."""
    return _op(operation_id, summary, "viewer", {"200": _json_ok(schema, description)}, tag=tag)


def _about_alert(operation_id: str, summary: str, ok: Json, tag: str) -> Json:
    """A viewer's read about one alert, 404 when there is none."""
    return _op(
        operation_id, summary, "viewer", ok, errors=("404",), parameters=[_ALERT_ID], tag=tag
    )


def _body(schema: Json | str, *, required: bool = True, description: str = "") -> Json:
    resolved = _ref(schema) if isinstance(schema, str) else schema
    body: Json = {"required": required, "content": {"application/json": {"schema": resolved}}}
    if description:
        body["description"] = description
    return body


def _op(
    operation_id: str,
    summary: str,
    role: str,
    ok: Json,
    *,
    errors: tuple[str, ...] = (),
    parameters: list[Json] | None = None,
    body: Json | None = None,
    tag: str,
) -> Json:
    op: Json = {
        "operationId": operation_id,
        "summary": summary,
        "description": f"Needs the role **{role}** or higher.",
        "tags": [tag],
        "responses": {**ok, **_errors(*sorted(set(_AUTH + errors)))},
    }
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = body
    return op


def _empty_or(schema: Json) -> Json:
    return _body(schema, required=False, description="Optional: send no body, or this object.")


_SSE_EVENT: Final[Json] = _object(
    {
        "event": _enum(["progress", "end", "timeout", "gone", "unavailable"]),
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
    "event",
    "data",
    description="One server-sent event; `data` is JSON (the Progress on `progress`).",
)
_NOTE_BODY: Final[Json] = _object(
    {"note": {"type": ["string", "null"], "maxLength": 2000}}, closed=True
)
_NO_BODY: Final[Json] = _object({}, closed=True)
_DESK = ("404", "409", *_BODY)


def _alert_action(
    operation_id: str, summary: str, role: str, body: Json, *, creates: bool = False
) -> Json:
    ok: Json = {"200": _json_ok("AlertView", "The alert, changed.")}
    if creates:
        ok = {
            "201": {
                **_json_ok("AlertView", "The new alert, submitted; its place is in Location."),
                "headers": {"Location": {"schema": {"type": "string"}}},
            },
            "200": _json_ok("AlertView", "A draft or waiting alert was withdrawn instead."),
        }
    return _op(
        operation_id,
        summary,
        role,
        ok,
        errors=_DESK,
        parameters=[_ALERT_ID],
        body=body,
        tag="alerts",
    )


def _subscriber_request(operation_id: str, summary: str, ok: Json) -> Json:
    """An admin's request about one subscriber, named by id in the body (never in the URL)."""
    return _op(
        operation_id,
        summary,
        "admin",
        {"200": ok},
        errors=("404", *_BODY),
        body=_body("SubscriberId"),
        tag="subscribers",
    )


def _paths() -> Json:
    states = {"type": "string", "description": "Comma-separated: " + ", ".join(ALERT_STATES)}
    return {
        "/api/v1/alerts": {
            "get": _op(
                "listAlerts",
                "Alerts, newest first",
                "viewer",
                {"200": _json_ok("AlertList", "A page of alerts.")},
                errors=("422",),
                parameters=[
                    _query("state", states, "Only alerts in these states."),
                    _limit(200, 50),
                    _query(
                        "before",
                        {"type": "integer", "minimum": 1},
                        "Only alerts with a smaller id (the `next` of the previous page).",
                    ),
                ],
                tag="alerts",
            ),
            "post": _op(
                "createAlert",
                "Compose a draft alert",
                "officer",
                {
                    "201": {
                        **_json_ok("AlertView", "The draft; its place is in Location."),
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    }
                },
                errors=_BODY,
                body=_body("AlertJson"),
                tag="alerts",
            ),
        },
        "/api/v1/alerts/{alert_id}": {
            "get": _op(
                "getAlert",
                "One alert, with its approvals and routes",
                "viewer",
                {"200": _json_ok("AlertView", "The alert.")},
                errors=("404",),
                parameters=[_ALERT_ID],
                tag="alerts",
            ),
            "put": _alert_action("editAlert", "Replace a draft", "officer", _body("AlertJson")),
        },
        "/api/v1/alerts/{alert_id}/submit": {
            "post": _alert_action(
                "submitAlert",
                "Submit a draft for approval (optionally for release at a later time)",
                "officer",
                _empty_or(_object({"scheduled_for": _DATETIME_OR_NULL}, closed=True)),
            )
        },
        "/api/v1/alerts/{alert_id}/approve": {
            "post": _alert_action(
                "approveAlert",
                "Approve (two-person rule: never one's own Actual alert)",
                "approver",
                _empty_or(_NO_BODY),
            )
        },
        "/api/v1/alerts/{alert_id}/reject": {
            "post": _alert_action(
                "rejectAlert",
                "Reject, with a reason",
                "approver",
                _body(
                    _object(
                        {"reason": {"type": "string", "minLength": 1, "maxLength": 2000}},
                        "reason",
                        closed=True,
                    )
                ),
            )
        },
        "/api/v1/alerts/{alert_id}/schedule": {
            "post": _alert_action(
                "scheduleAlert",
                "Set the release time of a draft or submitted alert",
                "officer",
                _body(_object({"scheduled_for": _DATETIME}, "scheduled_for", closed=True)),
            )
        },
        "/api/v1/alerts/{alert_id}/cancel": {
            "post": _alert_action(
                "cancelAlert",
                "Cancel: a Cancel for an active alert (201), or withdraw a waiting one (200)",
                "officer",
                _empty_or(_NOTE_BODY),
                creates=True,
            )
        },
        "/api/v1/alerts/{alert_id}/update": {
            "post": _alert_action(
                "updateAlert",
                "Correct an active alert: an Update with the changes, submitted",
                "officer",
                _body(
                    _object(
                        {
                            "headline": _STR,
                            "description": _STR,
                            "instruction": _STR,
                            "severity": _enum_of(domain.Severity),
                            "urgency": _enum_of(domain.Urgency),
                            "certainty": _enum_of(domain.Certainty),
                            "expires": _DATETIME,
                            "infos": _array(_INFO),
                            "note": _STR,
                        },
                        closed=True,
                    )
                ),
                creates=True,
            )
        },
        "/api/v1/alerts/{alert_id}/all-clear": {
            "post": _alert_action(
                "allClearAlert",
                "All clear: an Update ending an active alert, submitted",
                "officer",
                _empty_or(_NOTE_BODY),
                creates=True,
            )
        },
        "/api/v1/alerts/{alert_id}/preview": {
            "get": _about_alert(
                "previewStoredAlert",
                "What each routed channel would show for a stored alert",
                {"200": _json_ok("Preview", "The preview.")},
                "preview",
            )
        },
        "/api/v1/alerts/{alert_id}/progress": {
            "get": _about_alert(
                "alertProgress",
                "Delivery progress per channel: counts, rate, ETA",
                {"200": _json_ok("Progress", "The progress now.")},
                "deliveries",
            )
        },
        "/api/v1/alerts/{alert_id}/events": {
            "get": _about_alert(
                "alertEvents",
                "Delivery progress as server-sent events",
                {
                    "200": {
                        "description": (
                            "`event: progress` with the Progress JSON every second, until the "
                            "fan-out is over (`event: end`) or after 10 minutes (`event: timeout`)."
                        ),
                        "content": {"text/event-stream": {"schema": _SSE_EVENT}},
                    }
                },
                "deliveries",
            )
        },
        "/api/v1/alerts/{alert_id}/acknowledgements": {
            "get": _about_alert(
                "alertAcknowledgements",
                "How many people answered the alert, each way",
                {"200": _json_ok("Acknowledgements", "Counts by answer.")},
                "subscribers",
            )
        },
        "/api/v1/preview": {
            "post": _op(
                "previewAlert",
                "What each routed channel would show for an alert being composed",
                "officer",
                {"200": _json_ok("Preview", "The preview; nothing is stored.")},
                errors=_BODY,
                body=_body("AlertJson"),
                tag="preview",
            )
        },
        "/api/v1/approvals": {
            "get": _ok(
                "approvalQueue", "Alerts waiting for an approval", "Queue", "The queue.", "alerts"
            )
        },
        "/api/v1/deliveries/dead": {
            "get": _op(
                "deadDeliveries",
                "Dead deliveries, oldest first",
                "viewer",
                {"200": _json_ok("DeadDeliveries", "A page of dead rows.")},
                errors=("422",),
                parameters=[
                    _query("alert_id", {"type": "integer", "minimum": 1}, "Only this alert's."),
                    _text_filter("channel", "Only this channel's."),
                    _limit(1000, 100),
                    _after("Only rows with a larger id (the `next` of the previous page)."),
                ],
                tag="deliveries",
            )
        },
        "/api/v1/deliveries/retry": {
            "post": _op(
                "retryDeliveries",
                "Send an alert's dead (or failed, or unknown) deliveries again",
                "officer",
                {"200": _json_ok("RetryResult", "How many rows were queued again.")},
                errors=("404", *_BODY),
                body=_body(
                    _object(
                        {
                            "alert_id": {"type": "integer", "minimum": 1},
                            "channel": {"type": ["string", "null"], "maxLength": 200},
                            "state": _enum([*RETRY_STATES, None]),
                        },
                        "alert_id",
                        closed=True,
                    )
                ),
                tag="deliveries",
            )
        },
        "/api/v1/feeds": {
            "get": _ok("listFeeds", "Feed health", "Feeds", "Every configured feed.", "status")
        },
        "/api/v1/channels": {
            "get": _ok(
                "listChannels",
                "Configured channels, their kind and rate limit",
                "Channels",
                "Every configured channel.",
                "status",
            )
        },
        "/api/v1/subscribers/count": {
            "get": _ok(
                "countSubscribers",
                "Active subscribers per channel",
                "SubscriberCount",
                "The counts.",
                "subscribers",
            )
        },
        "/api/v1/subscribers/export": {
            "post": _subscriber_request(
                "exportSubscriber",
                "Everything held about one subscriber (access request; audited)",
                _json_ok("SubscriberExport", "The subscriber's data."),
            )
        },
        "/api/v1/subscribers/delete": {
            "post": _subscriber_request(
                "deleteSubscriber",
                "Erase one subscriber and their answers (erasure request; audited)",
                _json_ok("SubscriberDeleted", "Erased."),
            )
        },
        "/api/v1/audit": {
            "get": _op(
                "queryAudit",
                "Audit records in order",
                "viewer",
                {"200": _json_ok("AuditPage", "A page of records.")},
                errors=("422",),
                parameters=[
                    _after("Records after this seq."),
                    _limit(1000, 100),
                    _text_filter("action", "Only this action."),
                    _text_filter("subject", "Only this subject."),
                ],
                tag="audit",
            )
        },
        "/api/v1/audit/verify": {
            "get": _ok(
                "verifyAudit",
                "Check the whole hash chain",
                "AuditVerification",
                "Whether the chain is intact.",
                "audit",
            )
        },
        "/api/v1/me": {
            "get": _ok("me", "Who the API takes the caller to be", "Me", "The caller.", "account")
        },
        OPENAPI_PATH: {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "tags": ["account"],
                "security": [],
                "responses": {"200": _any_json("The OpenAPI 3.1 document.")},
            }
        },
    }


def _push_path() -> Json:
    return {
        "post": {
            "operationId": "pushCap",
            "summary": "Push a CAP document (issuers with a push feed)",
            "tags": ["ingest"],
            "security": [{"feedToken": []}],
            "requestBody": {
                "required": True,
                "content": {
                    kind: {"schema": {"type": "string"}} for kind in sorted(CAP_CONTENT_TYPES)
                },
            },
            "responses": {
                "201": _any_json("Stored (at least one alert was new)."),
                "200": _any_json("Every alert was already known."),
                **_errors("401", "403", "413", "415", "422", "429", "503"),
            },
        }
    }


def document(*, with_push: bool = False) -> Json:
    """The OpenAPI 3.1 document; ``with_push`` adds ``POST /api/v1/ingest/cap``."""
    paths = _paths()
    if with_push:
        paths[PUSH_PATH] = _push_path()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "alertcast API",
            "version": __version__,
            "description": (
                "Compose, approve, send and follow public alerts. Errors are "
                "application/problem+json (RFC 9457); `detail` is in Spanish when "
                "Accept-Language prefers it."
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}, {"cookieAuth": []}],
        "tags": [
            {"name": name}
            for name in (
                "alerts",
                "preview",
                "deliveries",
                "status",
                "subscribers",
                "audit",
                "account",
            )
        ]
        + ([{"name": "ingest"}] if with_push else []),
        "paths": copy.deepcopy(paths),
        "components": {
            "schemas": copy.deepcopy(SCHEMAS),
            "responses": copy.deepcopy(RESPONSES),
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token (`alertcast tokens create`).",
                },
                "cookieAuth": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": SESSION_COOKIE,
                    "description": (
                        f"The console's session. Unsafe methods also need the header "
                        f"`{CSRF_HEADER}` with the session's CSRF token."
                    ),
                },
                **(
                    {
                        "feedToken": {
                            "type": "http",
                            "scheme": "bearer",
                            "description": "The token of a push feed.",
                        }
                    }
                    if with_push
                    else {}
                ),
            },
        },
    }
