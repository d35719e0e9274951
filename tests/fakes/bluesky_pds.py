"""A fake Bluesky PDS: sessions and post records over XRPC, as the lexicons define them.

Procedures: ``com.atproto.server.createSession`` (``identifier``,
``password`` → ``did``, ``handle``, ``accessJwt``, ``refreshJwt``),
``com.atproto.server.refreshSession`` (the *refresh* token as Bearer; it
rotates: the old refresh token is revoked), ``com.atproto.repo.createRecord``
(→ ``uri``, ``cid``, ``commit``, ``validationStatus``) and
``com.atproto.repo.deleteRecord``. Errors are XRPC's ``{"error", "message"}``
with the statuses a PDS uses: 400 ``ExpiredToken`` for an expired access or
refresh token (a PDS says 400, not 401), 401 ``AuthenticationRequired`` for
a wrong password, 400 ``InvalidRequest`` for a record that breaks the
``app.bsky.feed.post`` lexicon, 429 ``RateLimitExceeded``. Every answer
has ``ratelimit-limit``, ``-remaining``, ``-reset`` (epoch seconds) and
``-policy``.

The record is checked as the lexicon says: ``$type``, ``text`` (at most 300
graphemes, approximated here by code points, and 3,000 UTF-8 bytes),
``createdAt`` (a datetime), ``langs`` (at most 3), facets whose
``byteStart``/``byteEnd`` fall inside the text's UTF-8 bytes and on
character boundaries, and reply ``root``/``parent`` strong references
naming existing posts with their current cid.

Knobs: ``faults`` (one per authenticated request, ``None`` passes):
``rate_limited``, ``invalid_request``, ``server_error`` (500),
``auth_required`` (401), ``timeout`` (created, then no answer);
:meth:`expire_access` and :meth:`expire_refresh`. Recorded: ``records``
(by rkey), ``posted`` (uris in order), ``deleted`` (rkeys),
``sessions_created``, ``refreshes``.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

from tests.fakes.server import FakeServer

COLLECTION = "app.bsky.feed.post"
LINK_FEATURE = "app.bsky.richtext.facet#link"


@dataclass
class FakePDS(FakeServer):
    """An aiohttp server on 127.0.0.1 hosting one account's repository."""

    identifier: str = "alertas.example.org"
    password: str = "abcd-efgh-ijkl-mnop"
    did: str = "did:plc:alertasfake0000000000000"
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    posted: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    sessions_created: int = 0
    refreshes: int = 0
    _access: set[str] = field(default_factory=set)
    _refresh: set[str] = field(default_factory=set)
    _cids: dict[str, str] = field(default_factory=dict)
    _rkeys: Any = field(default_factory=lambda: itertools.count(1))

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/xrpc/com.atproto.server.createSession", self._create_session)
        router.add_post("/xrpc/com.atproto.server.refreshSession", self._refresh_session)
        router.add_post("/xrpc/com.atproto.repo.createRecord", self._create_record)
        router.add_post("/xrpc/com.atproto.repo.deleteRecord", self._delete_record)

    # ---- knobs

    def expire_access(self) -> None:
        """Every access token issued so far now answers ExpiredToken."""
        self._access.clear()

    def expire_refresh(self) -> None:
        self._refresh.clear()

    # ---- plumbing

    @staticmethod
    def _headers() -> dict[str, str]:
        return {
            "ratelimit-limit": "5000",
            "ratelimit-remaining": "4999",
            "ratelimit-reset": str(int(time.time()) + 3600),
            "ratelimit-policy": "5000;w=3600",
        }

    def error(
        self, status: int, name: str, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        return web.json_response(
            {"error": name, "message": message},
            status=status,
            headers={**self._headers(), **(headers or {})},
        )

    def ok(self, body: dict[str, Any]) -> web.Response:
        return web.json_response(body, headers=self._headers())

    def _bearer(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        return header.removeprefix("Bearer ") if header.startswith("Bearer ") else None

    def _session(self) -> dict[str, Any]:
        access = "acc-" + secrets.token_urlsafe(12)
        refresh = "ref-" + secrets.token_urlsafe(12)
        self._access.add(access)
        self._refresh.add(refresh)
        return {
            "did": self.did,
            "handle": self.identifier,
            "accessJwt": access,
            "refreshJwt": refresh,
            "active": True,
        }

    async def _gate(
        self, request: web.Request
    ) -> tuple[web.Response | None, str | None, dict[str, Any]]:
        token = self._bearer(request)
        if token is None:
            return self.error(401, "AuthenticationRequired", "Authentication Required"), None, {}
        if token not in self._access:
            return self.error(400, "ExpiredToken", "Token has expired"), None, {}
        fault = self.next_fault()
        if fault == "rate_limited":
            reset = str(int(time.time()) + 120)
            return (
                self.error(
                    429,
                    "RateLimitExceeded",
                    "Rate Limit Exceeded",
                    {"ratelimit-remaining": "0", "ratelimit-reset": reset},
                ),
                None,
                {},
            )
        if fault == "invalid_request":
            return self.error(400, "InvalidRequest", "Invalid request"), None, {}
        if fault == "server_error":
            return self.error(500, "InternalServerError", "Internal Server Error"), None, {}
        if fault == "auth_required":
            return (
                self.error(401, "AuthenticationRequired", "Token could not be verified"),
                None,
                {},
            )
        try:
            body = await request.json()
        except ValueError:
            return self.error(400, "InvalidRequest", "Request body is not JSON"), None, {}
        if not isinstance(body, dict):
            return self.error(400, "InvalidRequest", "Input must be an object"), None, {}
        if body.get("repo") not in (self.did, self.identifier):
            return (
                self.error(400, "InvalidRequest", "Input/repo must be the session's account"),
                None,
                {},
            )
        if body.get("collection") != COLLECTION:
            return (
                self.error(400, "InvalidRequest", "Input/collection is not supported here"),
                None,
                {},
            )
        return None, fault, body

    # ---- lexicon checks

    def _record_problem(self, record: Any) -> str | None:
        if not isinstance(record, dict) or record.get("$type") != COLLECTION:
            return "Invalid app.bsky.feed.post record: $type must be app.bsky.feed.post"
        text = record.get("text")
        if not isinstance(text, str):
            return "Record/text must be a string"
        raw = text.encode("utf-8")
        if len(text) > 300 or len(raw) > 3000:
            return "Record/text must not be longer than 300 graphemes"
        created = record.get("createdAt")
        try:
            datetime.fromisoformat(str(created).replace("Z", "+00:00"))
        except ValueError:
            return "Record/createdAt must be an valid atproto datetime"
        langs = record.get("langs", [])
        if not isinstance(langs, list) or len(langs) > 3:
            return "Record/langs must not have more than 3 elements"
        for facet in record.get("facets", []):
            index = facet.get("index", {}) if isinstance(facet, dict) else {}
            start, end = index.get("byteStart"), index.get("byteEnd")
            if not (
                isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(raw)
            ):
                return "Record/facets/index must fall inside the text"
            try:
                raw[start:end].decode("utf-8")
            except UnicodeDecodeError:
                return "Record/facets/index must fall on character boundaries"
            features = facet.get("features")
            if not features or any(
                f.get("$type") == LINK_FEATURE
                and not str(f.get("uri", "")).startswith(("https://", "http://"))
                for f in features
            ):
                return "Record/facets/features must be valid link features"
        reply = record.get("reply")
        if reply is not None:
            for role in ("root", "parent"):
                ref = reply.get(role) if isinstance(reply, dict) else None
                if not isinstance(ref, dict) or self._cids.get(str(ref.get("uri"))) != ref.get(
                    "cid"
                ):
                    return f"Record/reply/{role} must reference an existing post by uri and cid"
        return None

    # ---- handlers

    async def _create_session(self, request: web.Request) -> web.Response:
        body = await request.json()
        if (
            body.get("identifier") not in (self.identifier, self.did)
            or body.get("password") != self.password
        ):
            return self.error(401, "AuthenticationRequired", "Invalid identifier or password")
        self.sessions_created += 1
        return self.ok(self._session())

    async def _refresh_session(self, request: web.Request) -> web.Response:
        token = self._bearer(request)
        if token is None or token not in self._refresh:
            return self.error(400, "ExpiredToken", "Token has been revoked")
        self._refresh.discard(token)
        self.refreshes += 1
        return self.ok(self._session())

    async def _create_record(self, request: web.Request) -> web.Response:
        early, fault, body = await self._gate(request)
        if early is not None:
            return early
        record = body.get("record")
        problem = self._record_problem(record)
        if problem is not None:
            return self.error(400, "InvalidRequest", problem)
        rkey = f"3l{next(self._rkeys):011d}"
        uri = f"at://{self.did}/{COLLECTION}/{rkey}"
        cid = "bafyrei" + hashlib.sha256(f"{uri}{record}".encode()).hexdigest()[:52]
        self.records[rkey] = record
        self._cids[uri] = cid
        self.posted.append(uri)
        if fault == "timeout":
            await self.hang()
        return self.ok(
            {
                "uri": uri,
                "cid": cid,
                "commit": {"cid": "bafyreicommit" + rkey, "rev": rkey},
                "validationStatus": "valid",
            }
        )

    async def _delete_record(self, request: web.Request) -> web.Response:
        early, fault, body = await self._gate(request)
        if early is not None:
            return early
        rkey = body.get("rkey")
        if not isinstance(rkey, str) or not rkey:
            return self.error(400, "InvalidRequest", 'Input must have the property "rkey"')
        # Deleting a record that is not there is not an error on a PDS: the result is the same.
        if self.records.pop(rkey, None) is not None:
            self._cids.pop(f"at://{self.did}/{COLLECTION}/{rkey}", None)
            self.deleted.append(rkey)
        if fault == "timeout":
            await self.hang()
        return self.ok({"commit": {"cid": "bafyreicommitdel" + rkey, "rev": rkey}})
