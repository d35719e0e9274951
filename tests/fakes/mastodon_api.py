"""A fake Mastodon instance: the statuses API as the OpenAPI description and docs define it.

Speaks ``POST /api/v1/statuses`` (JSON or form), ``PUT`` and ``DELETE
/api/v1/statuses/{id}`` with a Bearer token, honours ``Idempotency-Key``
(the same key returns the status already created, as Mastodon does for an
hour), counts the status and the content warning against the character
limit (422 beyond it), answers every request with ``X-RateLimit-Limit``,
``-Remaining`` and ``-Reset`` (ISO 8601) and a 429 when none is left.
Errors are Mastodon's ``{"error": "..."}``.

Knobs: ``faults`` is a queue consumed one per request (``None`` passes):
``unauthorized`` (401), ``forbidden`` (403), ``not_found`` (404),
``unprocessable`` (422), ``rate_limited`` (429), ``server_error`` (503),
``timeout`` (the status is created, then no answer comes). ``remaining``
sets the quota left. Recorded: ``statuses`` (by id), ``posted`` (ids in
order), ``edits`` and ``deleted``.
"""

from __future__ import annotations

import html
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from tests.fakes.server import FakeServer

ACCOUNT = {
    "id": "109000000000000001",
    "username": "alertas",
    "acct": "alertas",
    "display_name": "Alertas",
    "locked": False,
    "bot": True,
    "discoverable": True,
    "indexable": True,
    "group": False,
    "created_at": "2023-01-01T00:00:00.000Z",
    "note": "",
    "url": "https://social.example/@alertas",
    "uri": "https://social.example/users/alertas",
    "avatar": "https://social.example/avatars/original/missing.png",
    "avatar_static": "https://social.example/avatars/original/missing.png",
    "header": "https://social.example/headers/original/missing.png",
    "header_static": "https://social.example/headers/original/missing.png",
    "followers_count": 0,
    "following_count": 0,
    "statuses_count": 0,
    "last_status_at": None,
    "emojis": [],
    "fields": [],
}
VISIBILITIES = ("public", "unlisted", "private", "direct")
FAULT_ANSWERS = {
    "unauthorized": (401, "The access token is invalid"),
    "forbidden": (403, "This action is not allowed"),
    "not_found": (404, "Record not found"),
    "unprocessable": (422, "Validation failed: Text character limit of 500 exceeded"),
    "server_error": (503, "Service Unavailable"),
}


@dataclass
class FakeMastodon(FakeServer):
    """An aiohttp server on 127.0.0.1 (any free port) acting as one account's instance."""

    token: str = "mastodon-token"
    max_chars: int = 500
    limit: int = 300
    remaining: int = 300
    reset_in_s: float = 300.0
    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    posted: list[str] = field(default_factory=list)
    edits: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    _keys: dict[str, str] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(110000000000000001))

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/api/v1/statuses", self._create)
        router.add_put("/api/v1/statuses/{id}", self._edit)
        router.add_delete("/api/v1/statuses/{id}", self._delete)

    # ---- plumbing

    def reset_at(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.reset_in_s)

    def _rate_headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.remaining)),
            "X-RateLimit-Reset": self.reset_at()
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
        }

    def _error(self, status: int, text: str) -> web.Response:
        return web.json_response({"error": text}, status=status, headers=self._rate_headers())

    def _ok(self, data: dict[str, Any]) -> web.Response:
        return web.json_response(data, headers=self._rate_headers())

    async def _gate(self, request: web.Request) -> tuple[web.Response | None, str | None]:
        """Auth, quota and injected faults: an answer to return now, or the fault to apply."""
        self.requests.append((request.method, request.path, dict(request.headers)))
        fault = self.next_fault()
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._error(401, "The access token is invalid"), None
        if fault == "rate_limited" or self.remaining <= 0:
            self.remaining = 0
            return self._error(429, "Too many requests"), None
        self.remaining -= 1
        if fault in FAULT_ANSWERS:
            status, text = FAULT_ANSWERS[fault]
            return self._error(status, text), None
        return None, fault

    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            data = await request.json()
            return data if isinstance(data, dict) else {}
        return dict(await request.post())

    def _validate(self, params: dict[str, Any]) -> str | None:
        text = params.get("status")
        if not isinstance(text, str) or not text.strip():
            return "Validation failed: Text can't be blank"
        spoiler = params.get("spoiler_text") or ""
        if len(text) + len(spoiler) > self.max_chars:
            return f"Validation failed: Text character limit of {self.max_chars} exceeded"
        language = params.get("language")
        if language is not None and not (isinstance(language, str) and language.isalpha()):
            return "Validation failed: Language is not a valid ISO 639 code"
        return None

    def status_json(self, status_id: str) -> dict[str, Any]:
        return self.statuses[status_id]

    # ---- handlers

    async def _create(self, request: web.Request) -> web.Response:
        early, fault = await self._gate(request)
        if early is not None:
            return early
        key = request.headers.get("Idempotency-Key")
        if key and key in self._keys:
            return self._ok(self.statuses[self._keys[key]])
        params = await self._params(request)
        problem = self._validate(params)
        visibility = params.get("visibility", "public")
        if problem is None and visibility not in VISIBILITIES:
            problem = "Validation failed: Visibility is not included in the list"
        if problem is not None:
            return self._error(422, problem)
        reply_to = params.get("in_reply_to_id")
        if reply_to is not None and reply_to not in self.statuses:
            return self._error(404, "Record not found")
        status_id = str(next(self._ids))
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        text = str(params["status"])
        self.statuses[status_id] = {
            "id": status_id,
            "uri": f"https://social.example/users/alertas/statuses/{status_id}",
            "url": f"https://social.example/@alertas/{status_id}",
            "created_at": now,
            "edited_at": None,
            "account": ACCOUNT,
            "content": "<p>" + html.escape(text).replace("\n", "<br />") + "</p>",
            "text": None,
            "visibility": visibility,
            "sensitive": bool(params.get("spoiler_text")),
            "spoiler_text": params.get("spoiler_text") or "",
            "in_reply_to_id": reply_to,
            "in_reply_to_account_id": ACCOUNT["id"] if reply_to else None,
            "language": params.get("language"),
            "media_attachments": [],
            "mentions": [],
            "tags": [],
            "emojis": [],
            "reblogs_count": 0,
            "favourites_count": 0,
            "replies_count": 0,
            "reblog": None,
            "application": {"name": "alertcast", "website": None},
            "card": None,
            "poll": None,
        }
        if reply_to is not None:
            self.statuses[reply_to]["replies_count"] += 1
        if key:
            self._keys[key] = status_id
        self.posted.append(status_id)
        if fault == "timeout":
            await self.hang()
        return self._ok(self.statuses[status_id])

    async def _edit(self, request: web.Request) -> web.Response:
        early, fault = await self._gate(request)
        if early is not None:
            return early
        status_id = request.match_info["id"]
        if status_id not in self.statuses:
            return self._error(404, "Record not found")
        params = await self._params(request)
        problem = self._validate(params)
        if problem is not None:
            return self._error(422, problem)
        status = self.statuses[status_id]
        text = str(params["status"])
        status["content"] = "<p>" + html.escape(text).replace("\n", "<br />") + "</p>"
        status["spoiler_text"] = params.get("spoiler_text") or ""
        status["sensitive"] = bool(status["spoiler_text"])
        if "language" in params:
            status["language"] = params["language"]
        status["edited_at"] = (
            datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        )
        self.edits.append((status_id, params))
        if fault == "timeout":
            await self.hang()
        return self._ok(status)

    async def _delete(self, request: web.Request) -> web.Response:
        early, fault = await self._gate(request)
        if early is not None:
            return early
        status_id = request.match_info["id"]
        status = self.statuses.pop(status_id, None)
        if status is None:
            return self._error(404, "Record not found")
        self.deleted.append(status_id)
        if fault == "timeout":
            await self.hang()
        return self._ok({**status, "text": html.unescape(status["content"][3:-4])})
