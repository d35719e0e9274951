"""The OpenAPI 3.1 document of ``/api/v1``, served at ``GET /api/v1/openapi.json``.

Written by hand, next to the handlers, and checked against the router by the
tests (every routed ``/api/v1`` path and method is documented, every
documented one is routed), so the document cannot drift from what runs. It
lists, per operation, its parameters, request body, every status it can
answer with (problems included) and its security: a bearer token or the
console's session cookie, which also needs the CSRF header on unsafe methods.

The push endpoint (``POST /api/v1/ingest/cap``) exists only where push feeds
are configured; :func:`document` includes it only when the application routes it.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from alertcast import __version__
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


_STR_OR_NULL: Final[Json] = {"type": ["string", "null"]}
_INT_OR_NULL: Final[Json] = {"type": ["integer", "null"]}
_NUM_OR_NULL: Final[Json] = {"type": ["number", "null"]}
_DATETIME_OR_NULL: Final[Json] = {"type": ["string", "null"], "format": "date-time"}
_COUNTS: Final[Json] = {"type": "object", "additionalProperties": {"type": "integer"}}


# --------------------------------------------------------------------------- schemas

_AREA: Final[Json] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["area_desc"],
    "properties": {
        "area_desc": {"type": "string", "minLength": 1},
        "polygons": {
            "type": "array",
            "description": "Each polygon a closed ring of [lat, lon] points.",
            "items": {
                "type": "array",
                "items": {
                    "type": "array",
                    "items": {"type": "number"},
                    "minItems": 2,
                    "maxItems": 2,
                },
            },
        },
        "circles": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["lat", "lon", "radius_km"],
                "properties": {
                    "lat": {"type": "number"},
                    "lon": {"type": "number"},
                    "radius_km": {"type": "number"},
                },
            },
        },
        "geocodes": {"type": "array", "items": _ref("NamedValue")},
        "altitude": _NUM_OR_NULL,
        "ceiling": _NUM_OR_NULL,
    },
}

_INFO: Final[Json] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["event", "urgency", "severity", "certainty"],
    "properties": {
        "language": {"type": "string", "examples": ["es-MX"]},
        "category": {
            "type": "array",
            "items": {
                "enum": [
                    "Geo",
                    "Met",
                    "Safety",
                    "Security",
                    "Rescue",
                    "Fire",
                    "Health",
                    "Env",
                    "Transport",
                    "Infra",
                    "CBRNE",
                    "Other",
                ]
            },
        },
        "event": {"type": "string", "minLength": 1},
        "response_type": {
            "type": "array",
            "items": {
                "enum": [
                    "Shelter",
                    "Evacuate",
                    "Prepare",
                    "Execute",
                    "Avoid",
                    "Monitor",
                    "Assess",
                    "AllClear",
                    "None",
                ]
            },
        },
        "urgency": {"enum": ["Immediate", "Expected", "Future", "Past", "Unknown"]},
        "severity": {"enum": ["Extreme", "Severe", "Moderate", "Minor", "Unknown"]},
        "certainty": {"enum": ["Observed", "Likely", "Possible", "Unlikely", "Unknown"]},
        "audience": _STR_OR_NULL,
        "event_codes": {"type": "array", "items": _ref("NamedValue")},
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
        "parameter_list": {"type": "array", "items": _ref("NamedValue")},
        "resources": {"type": "array", "items": {"type": "object"}},
        "areas": {"type": "array", "items": _AREA},
    },
}

_ALERT_JSON: Final[Json] = {
    "type": "object",
    "description": (
        "An alert in the JSON shape `alertcast parse` prints. When composing, "
        "`identifier`, `sent` and `sender` may be left out: alertcast fills them."
    ),
    "additionalProperties": False,
    "required": ["status", "msg_type", "scope", "infos"],
    "properties": {
        "identifier": _STR_OR_NULL,
        "sender": {"type": "string"},
        "sent": _DATETIME_OR_NULL,
        "status": {"enum": ["Actual", "Exercise", "System", "Test", "Draft"]},
        "msg_type": {"enum": ["Alert", "Update", "Cancel", "Ack", "Error"]},
        "scope": {"enum": ["Public", "Restricted", "Private"]},
        "source": _STR_OR_NULL,
        "restriction": _STR_OR_NULL,
        "addresses": {"type": "array", "items": {"type": "string"}},
        "codes": {"type": "array", "items": {"type": "string"}},
        "note": _STR_OR_NULL,
        "references": {"type": "array", "items": {"type": "string"}},
        "incidents": {"type": "array", "items": {"type": "string"}},
        "infos": {"type": "array", "items": _INFO, "minItems": 1},
    },
}

_APPROVAL: Final[Json] = {
    "type": "object",
    "required": ["user", "decision"],
    "properties": {
        "user": {"type": "string"},
        "decision": {"enum": ["approve", "reject"]},
        "reason": _STR_OR_NULL,
        "at": {"type": "string", "format": "date-time"},
    },
}

_ALERT_VIEW: Final[Json] = {
    "type": "object",
    "required": ["id", "state", "alert"],
    "properties": {
        "id": {"type": "integer"},
        "state": {"type": "string", "description": "One of: " + ", ".join(ALERT_STATES)},
        "created_by": _STR_OR_NULL,
        "approvals_required": _INT_OR_NULL,
        "approvals": {"type": "array", "items": _APPROVAL},
        "scheduled_for": _DATETIME_OR_NULL,
        "submitted_at": _DATETIME_OR_NULL,
        "review_reason": _STR_OR_NULL,
        "source": {"type": "string"},
        "received_at": _DATETIME_OR_NULL,
        "exercise": {"type": "boolean"},
        "alert": {"type": "object", "description": "The alert, as `alertcast parse` prints it."},
        "routes": {
            "type": "array",
            "description": "Only on a single alert: its routed deliveries and their state.",
            "items": {"type": "object"},
        },
    },
}

_RENDERING: Final[Json] = {
    "type": "object",
    "properties": {
        "language": {"type": "string"},
        "text": {"type": "string"},
        "length": {"type": "integer"},
        "parts": {"type": "integer"},
        "sms": _nullable(
            {
                "type": "object",
                "properties": {
                    "segments": {"type": "integer"},
                    "encoding": {"enum": ["GSM-7", "UCS-2"]},
                },
            }
        ),
        "problems": {"type": "array", "items": {"type": "string"}},
    },
}

_PREVIEW: Final[Json] = {
    "type": "object",
    "required": ["routes", "approvals_required", "exercise", "warnings"],
    "properties": {
        "routes": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "route": {"type": "string"},
                    "channel": {"type": "string"},
                    "kind": {"type": "string"},
                    "approval": {"enum": ["auto", "one", "two"]},
                    "held": _STR_OR_NULL,
                    "audience": _INT_OR_NULL,
                    "eta_s": _NUM_OR_NULL,
                    "cost": _nullable(
                        {
                            "type": "object",
                            "properties": {
                                "segments": {"type": "integer"},
                                "per_segment": {"type": "number"},
                                "currency": {"type": "string"},
                                "total": {"type": "number"},
                            },
                        }
                    ),
                    "renderings": {"type": "array", "items": _RENDERING},
                },
            },
        },
        "approvals_required": {"type": "integer"},
        "exercise": {"type": "boolean"},
        "warnings": {"type": "array", "items": {"type": "string"}},
    },
}

_PROGRESS_FIGURES: Final[Json] = {
    "counts": _COUNTS,
    "total": {"type": "integer"},
    "done": {"type": "integer"},
    "remaining": {"type": "integer"},
    "rate_per_s": {"type": "number"},
    "eta_s": _NUM_OR_NULL,
    "oldest_pending_age_s": _NUM_OR_NULL,
}

_PROGRESS: Final[Json] = {
    "type": "object",
    "required": ["alert_id", "at", "finished", "totals", "channels"],
    "properties": {
        "alert_id": {"type": "integer"},
        "at": {"type": "string", "format": "date-time"},
        "window_s": {"type": "number"},
        "finished": {"type": "boolean"},
        "totals": {"type": "object", "properties": _PROGRESS_FIGURES},
        "channels": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "channel": {"type": "string"},
                    "finished": {"type": "boolean"},
                    "rate_limit_per_s": _NUM_OR_NULL,
                    **_PROGRESS_FIGURES,
                },
            },
        },
    },
}

_DELIVERY: Final[Json] = {
    "type": "object",
    "required": ["id", "alert_id", "channel", "state"],
    "properties": {
        "id": {"type": "integer"},
        "alert_id": {"type": "integer"},
        "channel": {"type": "string"},
        "target": {"type": "string"},
        "state": {"type": "string"},
        "priority": {"type": "integer"},
        "attempts": {"type": "integer"},
        "next_attempt_at": {"type": "string", "format": "date-time"},
        "last_error_class": _STR_OR_NULL,
        "last_error": _STR_OR_NULL,
        "provider_message_id": _STR_OR_NULL,
        "updated_at": {"type": "string", "format": "date-time"},
    },
}

_AUDIT_RECORD: Final[Json] = {
    "type": "object",
    "required": ["seq", "at", "actor", "action", "subject", "data", "prev_hash", "hash"],
    "properties": {
        "seq": {"type": "integer"},
        "at": {"type": "string"},
        "actor": {"type": "string"},
        "action": {"type": "string"},
        "subject": {"type": "string"},
        "data": {"type": "object"},
        "prev_hash": {"type": "string"},
        "hash": {"type": "string"},
    },
}

SCHEMAS: Final[Json] = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details.",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "rule": {"type": "string", "description": "`two-person` when that rule refused"},
        },
    },
    "NamedValue": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "value"],
        "properties": {"name": {"type": "string"}, "value": {"type": "string"}},
    },
    "AlertJson": _ALERT_JSON,
    "AlertView": _ALERT_VIEW,
    "AlertList": {
        "type": "object",
        "required": ["alerts", "next"],
        "properties": {
            "alerts": {"type": "array", "items": _ref("AlertView")},
            "next": {
                "type": ["integer", "null"],
                "description": "Pass as `before` for the next page; null on the last one.",
            },
        },
    },
    "Queue": {
        "type": "object",
        "required": ["alerts"],
        "properties": {"alerts": {"type": "array", "items": _ref("AlertView")}},
    },
    "Preview": _PREVIEW,
    "Progress": _PROGRESS,
    "DeadDeliveries": {
        "type": "object",
        "required": ["deliveries", "next"],
        "properties": {
            "deliveries": {"type": "array", "items": _DELIVERY},
            "next": _INT_OR_NULL,
        },
    },
    "RetryResult": {
        "type": "object",
        "required": ["alert_id", "retried"],
        "properties": {
            "alert_id": {"type": "integer"},
            "channel": _STR_OR_NULL,
            "state": {"type": "string"},
            "retried": {"type": "integer"},
        },
    },
    "Feeds": {
        "type": "object",
        "required": ["feeds"],
        "properties": {
            "feeds": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "kind", "enabled", "status"],
                    "properties": {
                        "name": {"type": "string"},
                        "kind": {"type": "string"},
                        "enabled": {"type": "boolean"},
                        "status": {
                            "enum": [
                                "ok",
                                "stale",
                                "failing",
                                "unhealthy",
                                "never polled",
                                "disabled",
                                "push",
                            ]
                        },
                        "stale": {"type": "boolean"},
                        "unhealthy": {"type": "boolean"},
                        "last_attempt_at": _DATETIME_OR_NULL,
                        "last_success_at": _DATETIME_OR_NULL,
                        "last_change_at": _DATETIME_OR_NULL,
                        "consecutive_failures": {"type": "integer"},
                        "last_error": _STR_OR_NULL,
                        "items_seen": {"type": "integer"},
                        "next_poll_at": _DATETIME_OR_NULL,
                        "lease_owner": _STR_OR_NULL,
                    },
                },
            }
        },
    },
    "Channels": {
        "type": "object",
        "required": ["channels"],
        "properties": {
            "channels": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "kind", "enabled", "rate_limit_per_s"],
                    "properties": {
                        "name": {"type": "string"},
                        "kind": {"type": "string"},
                        "enabled": {"type": "boolean"},
                        "rate_limit_per_s": _NUM_OR_NULL,
                    },
                },
            }
        },
    },
    "SubscriberCount": {
        "type": "object",
        "required": ["configured", "channels", "total"],
        "properties": {
            "configured": {"type": "boolean"},
            "channels": _COUNTS,
            "total": {"type": "integer"},
        },
    },
    "SubscriberId": {
        "type": "object",
        "additionalProperties": False,
        "required": ["id"],
        "properties": {"id": {"type": "integer", "minimum": 1}},
    },
    "SubscriberExport": {
        "type": "object",
        "description": "Everything held about one subscriber, address decrypted.",
        "required": ["id"],
        "properties": {"id": {"type": "integer"}, "address": {"type": "string"}},
    },
    "SubscriberDeleted": {
        "type": "object",
        "required": ["id", "deleted"],
        "properties": {"id": {"type": "integer"}, "deleted": {"type": "boolean"}},
    },
    "Acknowledgements": {
        "type": "object",
        "required": ["alert_id", "counts", "total"],
        "properties": {
            "alert_id": {"type": "integer"},
            "counts": _COUNTS,
            "total": {"type": "integer"},
        },
    },
    "AuditPage": {
        "type": "object",
        "required": ["records", "next"],
        "properties": {
            "records": {"type": "array", "items": _AUDIT_RECORD},
            "next": {
                "type": ["integer", "null"],
                "description": "Pass as `after` for the next page; null on the last one.",
            },
        },
    },
    "AuditVerification": {
        "type": "object",
        "required": ["intact", "records", "broken_at", "reason"],
        "properties": {
            "intact": {"type": "boolean"},
            "records": _INT_OR_NULL,
            "broken_at": _INT_OR_NULL,
            "reason": _STR_OR_NULL,
        },
    },
    "Me": {
        "type": "object",
        "required": ["name", "role", "via"],
        "properties": {
            "name": {"type": "string"},
            "role": {"enum": ["viewer", "officer", "approver", "admin"]},
            "via": {"enum": ["token", "session", "cli"]},
        },
    },
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


_SSE_EVENT: Final[Json] = {
    "type": "object",
    "description": "One server-sent event; `data` is JSON (the Progress on `progress`).",
    "required": ["event", "data"],
    "properties": {
        "event": {"enum": ["progress", "end", "timeout", "gone", "unavailable"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
}
_NOTE_BODY: Final[Json] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"note": {"type": ["string", "null"], "maxLength": 2000}},
}
_NO_BODY: Final[Json] = {"type": "object", "additionalProperties": False, "properties": {}}
_SCHEDULED: Final[Json] = {"type": "string", "format": "date-time"}
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
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
                        "Page size.",
                    ),
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
                _empty_or(
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "scheduled_for": {"type": ["string", "null"], "format": "date-time"}
                        },
                    }
                ),
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
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["reason"],
                        "properties": {
                            "reason": {"type": "string", "minLength": 1, "maxLength": 2000}
                        },
                    }
                ),
            )
        },
        "/api/v1/alerts/{alert_id}/schedule": {
            "post": _alert_action(
                "scheduleAlert",
                "Set the release time of a draft or submitted alert",
                "officer",
                _body(
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["scheduled_for"],
                        "properties": {"scheduled_for": _SCHEDULED},
                    }
                ),
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
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "headline": {"type": "string"},
                            "description": {"type": "string"},
                            "instruction": {"type": "string"},
                            "severity": _INFO["properties"]["severity"],
                            "urgency": _INFO["properties"]["urgency"],
                            "certainty": _INFO["properties"]["certainty"],
                            "expires": {"type": "string", "format": "date-time"},
                            "infos": {"type": "array", "items": _INFO},
                            "note": {"type": "string"},
                        },
                    }
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
            "get": _op(
                "previewStoredAlert",
                "What each routed channel would show for a stored alert",
                "viewer",
                {"200": _json_ok("Preview", "The preview.")},
                errors=("404",),
                parameters=[_ALERT_ID],
                tag="preview",
            )
        },
        "/api/v1/alerts/{alert_id}/progress": {
            "get": _op(
                "alertProgress",
                "Delivery progress per channel: counts, rate, ETA",
                "viewer",
                {"200": _json_ok("Progress", "The progress now.")},
                errors=("404",),
                parameters=[_ALERT_ID],
                tag="deliveries",
            )
        },
        "/api/v1/alerts/{alert_id}/events": {
            "get": _op(
                "alertEvents",
                "Delivery progress as server-sent events",
                "viewer",
                {
                    "200": {
                        "description": (
                            "`event: progress` with the Progress JSON every second, until the "
                            "fan-out is over (`event: end`) or after 10 minutes (`event: timeout`)."
                        ),
                        "content": {"text/event-stream": {"schema": _SSE_EVENT}},
                    }
                },
                errors=("404",),
                parameters=[_ALERT_ID],
                tag="deliveries",
            )
        },
        "/api/v1/alerts/{alert_id}/acknowledgements": {
            "get": _op(
                "alertAcknowledgements",
                "How many people answered the alert, each way",
                "viewer",
                {"200": _json_ok("Acknowledgements", "Counts by answer.")},
                errors=("404",),
                parameters=[_ALERT_ID],
                tag="subscribers",
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
            "get": _op(
                "approvalQueue",
                "Alerts waiting for an approval",
                "viewer",
                {"200": _json_ok("Queue", "The queue.")},
                tag="alerts",
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
                    _query("channel", {"type": "string", "maxLength": 200}, "Only this channel's."),
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                        "Page size.",
                    ),
                    _query(
                        "after",
                        {"type": "integer", "minimum": 0},
                        "Only rows with a larger id (the `next` of the previous page).",
                    ),
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
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["alert_id"],
                        "properties": {
                            "alert_id": {"type": "integer", "minimum": 1},
                            "channel": {"type": ["string", "null"], "maxLength": 200},
                            "state": {"enum": [*RETRY_STATES, None]},
                        },
                    }
                ),
                tag="deliveries",
            )
        },
        "/api/v1/feeds": {
            "get": _op(
                "listFeeds",
                "Feed health",
                "viewer",
                {"200": _json_ok("Feeds", "Every configured feed.")},
                tag="status",
            )
        },
        "/api/v1/channels": {
            "get": _op(
                "listChannels",
                "Configured channels, their kind and rate limit",
                "viewer",
                {"200": _json_ok("Channels", "Every configured channel.")},
                tag="status",
            )
        },
        "/api/v1/subscribers/count": {
            "get": _op(
                "countSubscribers",
                "Active subscribers per channel",
                "viewer",
                {"200": _json_ok("SubscriberCount", "The counts.")},
                tag="subscribers",
            )
        },
        "/api/v1/subscribers/export": {
            "post": _op(
                "exportSubscriber",
                "Everything held about one subscriber (access request; audited)",
                "admin",
                {"200": _json_ok("SubscriberExport", "The subscriber's data.")},
                errors=("404", *_BODY),
                body=_body("SubscriberId"),
                tag="subscribers",
            )
        },
        "/api/v1/subscribers/delete": {
            "post": _op(
                "deleteSubscriber",
                "Erase one subscriber and their answers (erasure request; audited)",
                "admin",
                {"200": _json_ok("SubscriberDeleted", "Erased.")},
                errors=("404", *_BODY),
                body=_body("SubscriberId"),
                tag="subscribers",
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
                    _query("after", {"type": "integer", "minimum": 0}, "Records after this seq."),
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                        "Page size.",
                    ),
                    _query("action", {"type": "string", "maxLength": 200}, "Only this action."),
                    _query("subject", {"type": "string", "maxLength": 200}, "Only this subject."),
                ],
                tag="audit",
            )
        },
        "/api/v1/audit/verify": {
            "get": _op(
                "verifyAudit",
                "Check the whole hash chain",
                "viewer",
                {"200": _json_ok("AuditVerification", "Whether the chain is intact.")},
                tag="audit",
            )
        },
        "/api/v1/me": {
            "get": _op(
                "me",
                "Who the API takes the caller to be",
                "viewer",
                {"200": _json_ok("Me", "The caller.")},
                tag="account",
            )
        },
        OPENAPI_PATH: {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "tags": ["account"],
                "security": [],
                "responses": {
                    "200": {
                        "description": "The OpenAPI 3.1 document.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
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
                "201": {
                    "description": "Stored (at least one alert was new).",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "200": {
                    "description": "Every alert was already known.",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
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
        "paths": paths,
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
