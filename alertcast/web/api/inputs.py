"""Reading what a client sends: path ids, query parameters and JSON bodies, checked.

Everything here either returns a value of the promised type or raises a
:class:`~alertcast.web.api.problems.ProblemError` naming the key that is
wrong, so a handler never sees a half-checked input and a client never gets a
500 for a typo. Bodies are read with a size limit before they are parsed; a
body that is not JSON is 400, JSON of the wrong shape is 422.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from aiohttp import web

from alertcast.web.api.problems import ProblemError, message
from alertcast.web.ingest_api import read_limited

MAX_BODY: Final = 256 * 1024
"""Largest JSON body the API reads: a long multi-language alert is a few kilobytes."""

MAX_ID_DIGITS: Final = 18
"""Ids are BIGINTs: more digits than this name nothing."""


def path_id(request: web.Request, name: str, *, what: str = "alert.not_found") -> int:
    """The digits-only id in the path, or 404 ("1e3", "-1" and "٣" name nothing)."""
    raw = request.match_info[name]
    if not raw.isascii() or not raw.isdigit() or len(raw) > MAX_ID_DIGITS:
        raise ProblemError(404, message(request, what, id=raw))
    return int(raw)


def query_int(
    request: web.Request, key: str, *, default: int | None, low: int, high: int
) -> int | None:
    """An integer query parameter within ``[low, high]``; ``default`` when absent."""
    raw = request.query.get(key)
    if raw is None or raw == "":
        return default
    if (
        not raw.isascii()
        or not raw.isdigit()
        or len(raw) > MAX_ID_DIGITS
        or not (low <= int(raw) <= high)
    ):
        raise ProblemError(422, message(request, "query.integer", key=key, low=low, high=high))
    return int(raw)


def query_choices(request: web.Request, key: str, allowed: Collection[str]) -> list[str] | None:
    """A comma-separated (or repeated) query parameter whose values are all in ``allowed``."""
    raw = request.query.getall(key, [])
    values = [v.strip() for item in raw for v in item.split(",") if v.strip()]
    if not values:
        return None
    for value in values:
        if value not in allowed:
            raise ProblemError(
                422,
                message(request, "query.choice", key=key, value=value, allowed=", ".join(allowed)),
            )
    return values


def query_text(request: web.Request, key: str, *, max_length: int = 200) -> str | None:
    """A free-text query parameter (None when absent or blank), bounded in length."""
    raw = request.query.get(key, "").strip()
    if not raw:
        return None
    if len(raw) > max_length:
        raise ProblemError(
            422, message(request, "body.type", key=key, expected=f"at most {max_length} characters")
        )
    return raw


def after_and_limit(request: web.Request, *, default: int, most: int) -> tuple[int, int]:
    """``after`` and ``limit`` of a list paged by an increasing key (0 and ``default`` if absent).

    Paging by key, not by offset, reads a list that grows while it is read
    without missing or repeating an entry.
    """
    after = query_int(request, "after", default=0, low=0, high=10**MAX_ID_DIGITS - 1) or 0
    limit = query_int(request, "limit", default=default, low=1, high=most) or default
    return after, limit


def next_after(keys: Sequence[int], limit: int) -> int | None:
    """The ``after`` of the next page: the last key of a full page, None on the last page."""
    return keys[-1] if len(keys) == limit else None


async def _read_limited(request: web.Request, limit: int) -> bytes:
    data = await read_limited(request, limit)
    if data is None:
        raise ProblemError(413, message(request, "body.too_large", limit=limit))
    return data


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def json_object(
    request: web.Request,
    *,
    allowed: Collection[str] | None = None,
    empty_ok: bool = False,
    limit: int = MAX_BODY,
) -> dict[str, Any]:
    """The body as a JSON object; ``allowed`` (when given) refuses any other key.

    ``empty_ok`` lets a client send no body at all for actions whose body is
    optional (``POST .../approve``), read as ``{}``.
    """
    given = request.content_type  # application/octet-stream when the client sent none
    if given not in ("application/json", "application/octet-stream") and not given.endswith(
        "+json"
    ):
        raise ProblemError(415, message(request, "body.content_type", given=given))
    data = await _read_limited(request, limit)
    if not data.strip():
        if empty_ok:
            return {}
        raise ProblemError(400, message(request, "body.not_json", reason="the body is empty"))
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProblemError(400, message(request, "body.not_json", reason=str(exc))) from exc
    if not isinstance(value, dict):
        raise ProblemError(422, message(request, "body.not_object"))
    if allowed is not None:
        for key in value:
            if key not in allowed:
                raise ProblemError(
                    422,
                    message(
                        request, "body.unknown_key", key=key, allowed=", ".join(sorted(allowed))
                    ),
                )
    return value


def optional_text(
    request: web.Request, body: Mapping[str, Any], key: str, *, max_length: int = 2000
) -> str | None:
    """A string member (None when absent or null), at most ``max_length`` characters."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise ProblemError(
            422,
            message(request, "body.type", key=key, expected=f"text of at most {max_length} chars"),
        )
    return value


def required_text(
    request: web.Request, body: Mapping[str, Any], key: str, *, max_length: int = 2000
) -> str:
    """A non-blank string member."""
    value = optional_text(request, body, key, max_length=max_length)
    if value is None:
        raise ProblemError(422, message(request, "body.missing", key=key))
    if not value.strip():
        raise ProblemError(422, message(request, "body.blank", key=key))
    return value


def optional_datetime(request: web.Request, body: Mapping[str, Any], key: str) -> datetime | None:
    """An ISO 8601 date-time member with a UTC offset (None when absent or null)."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise ProblemError(422, message(request, "body.datetime", key=key))
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ProblemError(422, message(request, "body.datetime", key=key)) from exc
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ProblemError(422, message(request, "body.datetime", key=key))
    return parsed


def required_datetime(request: web.Request, body: Mapping[str, Any], key: str) -> datetime:
    """An ISO 8601 date-time member with a UTC offset that must be there."""
    value = optional_datetime(request, body, key)
    if value is None:
        raise ProblemError(422, message(request, "body.missing", key=key))
    return value


def required_id(request: web.Request, body: Mapping[str, Any], key: str) -> int:
    """A positive integer member (JSON number without fraction, or digits as text)."""
    value = body.get(key)
    if value is None:
        raise ProblemError(422, message(request, "body.missing", key=key))
    if isinstance(value, bool) or not isinstance(value, int | str | float):
        raise ProblemError(422, message(request, "body.type", key=key, expected="a positive id"))
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise ProblemError(
                422, message(request, "body.type", key=key, expected="a positive id")
            )
        value = int(value)
    if isinstance(value, str):
        if not value.isascii() or not value.isdigit() or len(value) > MAX_ID_DIGITS:
            raise ProblemError(
                422, message(request, "body.type", key=key, expected="a positive id")
            )
        value = int(value)
    if not 1 <= value < 10**MAX_ID_DIGITS:
        raise ProblemError(422, message(request, "body.type", key=key, expected="a positive id"))
    return value
