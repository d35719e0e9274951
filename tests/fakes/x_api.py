"""A fake X API v2 (``POST /2/tweets``, ``DELETE /2/tweets/{id}``) that checks OAuth 1.0a.

Every request must carry an ``Authorization: OAuth ...`` header whose
HMAC-SHA1 signature this fake recomputes on its own from RFC 5849 §3.4 (the
method, the base string URI, the ``oauth_*`` and query parameters, never a
JSON body) with the consumer and token secrets it was given; a wrong
signature, an unknown key or token, a timestamp more than 5 minutes off or
a nonce seen before is a 401 with X's problem body. Answers are X's shapes:
``201 {"data": {"id", "text", "edit_history_tweet_ids"}}``,
``200 {"data": {"deleted": true}}``, and errors as
``{"title", "detail", "type", "status"}``; every answer has
``x-rate-limit-limit``, ``-remaining`` and ``-reset`` (epoch seconds).

X refuses a text identical to one already posted with 403 "You are not
allowed to create a Tweet with duplicate content.", and a reply to an
unknown post with 400.

Knobs: ``faults`` (one per request, ``None`` passes): ``unauthorized``,
``forbidden``, ``rate_limited``, ``daily_limit`` (429 with the
``x-user-limit-24hour-*`` headers), ``server_error`` (503), ``timeout``
(posted, then no answer). Recorded: ``tweets`` (by id), ``posted`` (ids in
order), ``deleted``, ``rejected_signatures``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.server import FakeServer

UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


def _pct(value: str) -> str:
    """RFC 5849 §3.6, written out byte by byte (independent of the channel's helper)."""
    out = []
    for byte in value.encode("utf-8"):
        char = chr(byte)
        out.append(char if char in UNRESERVED else f"%{byte:02X}")
    return "".join(out)


def parse_oauth_header(header: str) -> dict[str, str] | None:
    """The parameters of ``OAuth k="v", ...`` (RFC 5849 §3.5.1), or None when malformed."""
    if not header.startswith("OAuth "):
        return None
    params: dict[str, str] = {}
    for item in header[len("OAuth ") :].split(","):
        name, sep, value = item.strip().partition("=")
        if not sep or len(value) < 2 or value[0] != '"' or value[-1] != '"':
            return None
        params[urllib.parse.unquote(name)] = urllib.parse.unquote(value[1:-1])
    return params


def expected_signature(
    method: str, url: str, params: list[tuple[str, str]], consumer_secret: str, token_secret: str
) -> str:
    parts = urllib.parse.urlsplit(url)
    base_uri = f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path}"
    pairs = sorted((_pct(k), _pct(v)) for k, v in params)
    normalized = "&".join(f"{k}={v}" for k, v in pairs)
    base = f"{method.upper()}&{_pct(base_uri)}&{_pct(normalized)}"
    key = f"{_pct(consumer_secret)}&{_pct(token_secret)}"
    return base64.b64encode(hmac.new(key.encode(), base.encode(), hashlib.sha1).digest()).decode()


@dataclass
class FakeX(FakeServer):
    """An aiohttp server on 127.0.0.1 acting as X API v2 for one user-context app."""

    consumer_key: str = "ck-123"
    consumer_secret: str = "cs-456"
    access_token: str = "123-at"
    access_token_secret: str = "ats-789"
    limit: int = 200
    remaining: int = 200
    reset_in_s: int = 900
    tweets: dict[str, dict[str, Any]] = field(default_factory=dict)
    posted: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    rejected_signatures: int = 0
    _nonces: set[str] = field(default_factory=set)
    _ids: Any = field(default_factory=lambda: itertools.count(1800000000000000001))

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/2/tweets", self._create)
        router.add_delete("/2/tweets/{id}", self._delete)

    def reset_epoch(self) -> int:
        return int(time.time()) + self.reset_in_s

    def _rate_headers(self) -> dict[str, str]:
        return {
            "x-rate-limit-limit": str(self.limit),
            "x-rate-limit-remaining": str(max(0, self.remaining)),
            "x-rate-limit-reset": str(self.reset_epoch()),
        }

    def _problem(
        self, status: int, title: str, detail: str, extra: dict[str, str] | None = None
    ) -> web.Response:
        body = {"title": title, "detail": detail, "type": "about:blank", "status": status}
        return web.json_response(
            body, status=status, headers={**self._rate_headers(), **(extra or {})}
        )

    def _authorized(self, request: web.Request) -> bool:
        params = parse_oauth_header(request.headers.get("Authorization", ""))
        if params is None:
            return False
        required = (
            "oauth_consumer_key",
            "oauth_nonce",
            "oauth_signature",
            "oauth_signature_method",
            "oauth_timestamp",
            "oauth_token",
        )
        if any(name not in params for name in required):
            return False
        if (
            params["oauth_signature_method"] != "HMAC-SHA1"
            or params.get("oauth_version", "1.0") != "1.0"
        ):
            return False
        if (
            params["oauth_consumer_key"] != self.consumer_key
            or params["oauth_token"] != self.access_token
        ):
            return False
        if (
            not params["oauth_timestamp"].isdigit()
            or abs(int(params["oauth_timestamp"]) - time.time()) > 300
        ):
            return False
        if params["oauth_nonce"] in self._nonces:
            return False
        signed = [(k, v) for k, v in params.items() if k != "oauth_signature"]
        signed += list(request.url.query.items())  # a JSON body is never signed
        url = f"{request.scheme}://{request.host}{request.path}"
        expected = expected_signature(
            request.method, url, signed, self.consumer_secret, self.access_token_secret
        )
        if not hmac.compare_digest(expected, params["oauth_signature"]):
            return False
        self._nonces.add(params["oauth_nonce"])
        return True

    async def _gate(self, request: web.Request) -> tuple[web.Response | None, str | None]:
        fault = self.next_fault()
        if fault == "unauthorized" or not self._authorized(request):
            if fault != "unauthorized":
                self.rejected_signatures += 1
            return self._problem(401, "Unauthorized", "Unauthorized"), None
        if fault == "daily_limit":
            reset = str(int(time.time()) + 86_000)
            return self._problem(
                429,
                "Too Many Requests",
                "Too Many Requests",
                {
                    "x-user-limit-24hour-limit": "17",
                    "x-user-limit-24hour-remaining": "0",
                    "x-user-limit-24hour-reset": reset,
                },
            ), None
        if fault == "rate_limited" or self.remaining <= 0:
            self.remaining = 0
            return self._problem(429, "Too Many Requests", "Too Many Requests"), None
        self.remaining -= 1
        if fault == "forbidden":
            return self._problem(
                403, "Forbidden", "You are not permitted to perform this action."
            ), None
        if fault == "server_error":
            return self._problem(503, "Service Unavailable", "Service Unavailable"), None
        return None, fault

    async def _create(self, request: web.Request) -> web.Response:
        early, fault = await self._gate(request)
        if early is not None:
            return early
        try:
            body = await request.json()
        except ValueError:
            return self._problem(400, "Invalid Request", "Request body is not valid JSON.")
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text:
            return self._problem(
                400, "Invalid Request", "One or more parameters to your request was invalid."
            )
        reply = body.get("reply")
        reply_to = None
        if reply is not None:
            reply_to = reply.get("in_reply_to_tweet_id") if isinstance(reply, dict) else None
            if reply_to not in self.tweets:
                return self._problem(
                    400, "Invalid Request", "One or more parameters to your request was invalid."
                )
        if any(t["text"] == text for t in self.tweets.values()):
            return self._problem(
                403, "Forbidden", "You are not allowed to create a Tweet with duplicate content."
            )
        tweet_id = str(next(self._ids))
        self.tweets[tweet_id] = {"id": tweet_id, "text": text, "in_reply_to": reply_to}
        self.posted.append(tweet_id)
        if fault == "timeout":
            await self.hang()
        data = {"id": tweet_id, "text": text, "edit_history_tweet_ids": [tweet_id]}
        return web.json_response({"data": data}, status=201, headers=self._rate_headers())

    async def _delete(self, request: web.Request) -> web.Response:
        early, fault = await self._gate(request)
        if early is not None:
            return early
        tweet_id = request.match_info["id"]
        if self.tweets.pop(tweet_id, None) is None:
            return self._problem(
                404, "Not Found Error", f"Could not find tweet with id: [{tweet_id}]."
            )
        self.deleted.append(tweet_id)
        if fault == "timeout":
            await self.hang()
        return web.json_response({"data": {"deleted": True}}, headers=self._rate_headers())
