"""A fake Facebook Graph API for one Page: publish, edit and delete Page posts.

``POST /{version}/{page-id}/feed`` answers ``{"id": "{page-id}_{post-id}"}``;
``POST /{version}/{post-id}`` (an edit) and ``DELETE /{version}/{post-id}``
answer ``{"success": true}``. The Page token is taken from ``Authorization:
Bearer`` or an ``access_token`` parameter (query, form or JSON), as Graph
accepts. Errors are Graph's ``{"error": {"message", "type", "code",
"error_subcode", "fbtrace_id"}}`` with the HTTP statuses Graph uses (400 for
most, 500 for code 1/2), and an invalid token also gets the
``WWW-Authenticate: OAuth "Facebook Platform" "invalid_token"`` header.
Throttling errors carry ``X-Business-Use-Case-Usage`` with
``estimated_time_to_regain_access`` in minutes (``regain_minutes``; 0
leaves the field out, as Graph does before the limit is near).

Knobs: ``faults`` (one per request, ``None`` passes): ``token_expired``
(190/463), ``app_rate_limited`` (4), ``page_rate_limited`` (32, with the
BUC header), ``user_rate_limited`` (17), ``policy_rate_limited`` (613),
``unknown_error`` (1), ``service_error`` (2), ``invalid_parameter`` (100),
``blocked`` (368), ``timeout`` (published, then no answer). Recorded:
``posts`` (by id), ``published`` (ids in order), ``edits``, ``deleted``.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.server import FakeServer

VERSION = re.compile(r"^v\d+\.\d+$")

FAULTS: dict[str, tuple[int, int, str, str, int | None]] = {
    # fault: (HTTP status, code, type, message, error_subcode)
    "token_expired": (
        400,
        190,
        "OAuthException",
        "Error validating access token: Session has expired on Tuesday, 01-Jul-25.",
        463,
    ),
    "app_rate_limited": (400, 4, "OAuthException", "(#4) Application request limit reached", None),
    "user_rate_limited": (400, 17, "OAuthException", "(#17) User request limit reached", None),
    "page_rate_limited": (400, 32, "OAuthException", "(#32) Page request limit reached", None),
    "policy_rate_limited": (
        400,
        613,
        "OAuthException",
        "(#613) Calls to this api have exceeded the rate limit.",
        None,
    ),
    "unknown_error": (500, 1, "OAuthException", "An unknown error occurred", None),
    "service_error": (500, 2, "OAuthException", "An unexpected error has occurred.", None),
    "invalid_parameter": (400, 100, "OAuthException", "(#100) Invalid parameter", None),
    "blocked": (
        400,
        368,
        "OAuthException",
        "It looks like you were misusing this feature by going too fast.",
        1390008,
    ),
}
THROTTLING = frozenset({4, 17, 32, 613})


@dataclass
class FakeGraph(FakeServer):
    """An aiohttp server on 127.0.0.1 acting as the Graph API for one Page."""

    page_id: str = "104857600000001"
    token: str = "page-token"
    regain_minutes: int = 5
    posts: dict[str, dict[str, Any]] = field(default_factory=dict)
    published: list[str] = field(default_factory=list)
    edits: list[tuple[str, str]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(122100000000000001))

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/{version}/{page}/feed", self._publish)
        router.add_post("/{version}/{node}", self._edit)
        router.add_delete("/{version}/{node}", self._delete)

    def error(
        self,
        status: int,
        code: int,
        kind: str,
        message: str,
        subcode: int | None = None,
    ) -> web.Response:
        body: dict[str, Any] = {
            "message": message,
            "type": kind,
            "code": code,
            "fbtrace_id": "A" + secrets.token_urlsafe(15),
        }
        if subcode is not None:
            body["error_subcode"] = subcode
        headers: dict[str, str] = {}
        if code == 190:
            headers["WWW-Authenticate"] = (
                'OAuth "Facebook Platform" "invalid_token" "' + message.replace('"', "'") + '"'
            )
        if code in THROTTLING:
            usage: dict[str, Any] = {
                "type": "pages",
                "call_count": 100,
                "total_cputime": 25,
                "total_time": 25,
            }
            if self.regain_minutes:
                usage["estimated_time_to_regain_access"] = self.regain_minutes
            headers["X-Business-Use-Case-Usage"] = json.dumps({self.page_id: [usage]})
        return web.json_response({"error": body}, status=status, headers=headers)

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                data = await request.json()
                if isinstance(data, dict):
                    params.update(data)
            else:
                params.update(await request.post())
        return params

    async def _gate(
        self, request: web.Request
    ) -> tuple[web.Response | None, str | None, dict[str, Any]]:
        fault = self.next_fault()
        version = request.match_info["version"]
        if not VERSION.match(version):
            return self.error(400, 2500, "OAuthException", "Unknown path components"), None, {}
        self.versions.append(version)
        params = await self._params(request)
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
        token = token or params.pop("access_token", None)
        if not token:
            return (
                self.error(400, 2500, "OAuthException", "An active access token must be used"),
                None,
                {},
            )
        if token != self.token:
            return (
                self.error(400, 190, "OAuthException", "Invalid OAuth access token - Cannot parse"),
                None,
                {},
            )
        if fault in FAULTS:
            return self.error(*FAULTS[fault]), None, {}
        return None, fault, params

    def _unknown(self, node: str) -> web.Response:
        return self.error(
            400,
            100,
            "GraphMethodException",
            f"Unsupported post request. Object with ID '{node}' does not exist, cannot be "
            "loaded due to missing permissions, or does not support this operation.",
            33,
        )

    async def _publish(self, request: web.Request) -> web.Response:
        early, fault, params = await self._gate(request)
        if early is not None:
            return early
        if request.match_info["page"] != self.page_id:
            return self._unknown(request.match_info["page"])
        message = params.get("message")
        if not isinstance(message, str) or not message.strip():
            return self.error(
                400, 100, "OAuthException", "(#100) The parameter message is required"
            )
        post_id = f"{self.page_id}_{next(self._ids)}"
        self.posts[post_id] = {"message": message, "link": params.get("link")}
        self.published.append(post_id)
        if fault == "timeout":
            await self.hang()
        return web.json_response({"id": post_id})

    async def _edit(self, request: web.Request) -> web.Response:
        early, fault, params = await self._gate(request)
        if early is not None:
            return early
        node = request.match_info["node"]
        if node not in self.posts:
            return self._unknown(node)
        message = params.get("message")
        if not isinstance(message, str) or not message.strip():
            return self.error(
                400, 100, "OAuthException", "(#100) The parameter message is required"
            )
        self.posts[node]["message"] = message
        self.edits.append((node, message))
        if fault == "timeout":
            await self.hang()
        return web.json_response({"success": True})

    async def _delete(self, request: web.Request) -> web.Response:
        early, fault, _params = await self._gate(request)
        if early is not None:
            return early
        node = request.match_info["node"]
        if self.posts.pop(node, None) is None:
            return self._unknown(node)
        self.deleted.append(node)
        if fault == "timeout":
            await self.hang()
        return web.json_response({"success": True})
