"""``POST /api/v1/ingest/cap``: issuers who push CAP instead of publishing a feed.

Each ``push`` feed has a bearer token (``[secrets] token`` names the
environment variable holding it). A request is taken in this order, so that
an unauthenticated client learns nothing and costs little:

1. **Throttle.** Failed authentications are counted per remote address in a
   token bucket (:class:`FailureThrottle`); an address that used up its
   allowance gets 429 with ``Retry-After`` before its token is even looked at,
   and is logged but not audited (an attacker must not be able to flood the
   audit trail).
2. **Authenticate.** The token is compared in constant time with every push
   feed's token; no match is 401, logged and audited as ``push.refused`` with
   the remote address and the reason, never the token.
3. **Check the request** against the feed it authenticated as: content type
   (415), size (413, checked on ``Content-Length`` and again while reading).
4. **Parse** off the event loop: a document that is not CAP is 422 with the
   parser's reason (audited ``cap.rejected`` by the ingest stage).
5. **Check the senders.** When the feed lists ``mapping.senders``, every alert
   of the document must come from one of them, else nothing is stored (403).
6. **Store** through the ingest stage (lifecycle included): 201 with each
   alert's key, whether it was new, and its state; 200 when every alert was
   already known, so an issuer retrying after a timeout sees it is safe.

Errors are ``application/problem+json`` (RFC 9457). The remote address is
aiohttp's ``request.remote``: behind a reverse proxy that is the proxy, and the
throttle then counts all clients together (configure the proxy to pass the
client address through aiohttp's forwarded-header support before relying on
per-client limits).
"""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit
from alertcast.config import FeedConfig
from alertcast.errors import CapError, StoreError
from alertcast.ingest import Ingestor

log = structlog.get_logger(__name__)

PUSH_PATH = "/api/v1/ingest/cap"
CAP_CONTENT_TYPES = frozenset({"application/xml", "text/xml", "application/cap+xml"})
PROBLEM_JSON = "application/problem+json"
_READ_CHUNK = 64 * 1024


# --------------------------------------------------------------------------- throttle


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class FailureThrottle:
    """Token buckets of failed authentications, one per remote address, in memory.

    Each address may fail ``burst`` times in a row; the allowance refills at
    ``per_minute`` failures a minute. Only failures spend tokens, so a correct
    issuer is never slowed down by its own traffic. Memory is bounded: past
    ``max_addresses`` the least recently seen address is forgotten (which can
    only ever give an attacker a fresh allowance, never lock out a client).
    Kept in memory per process on purpose: it limits guessing, it is not an
    account lockout, and a restart forgetting it is harmless.
    """

    def __init__(
        self,
        *,
        burst: int = 10,
        per_minute: float = 6.0,
        max_addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._burst = float(burst)
        self._rate = per_minute / 60.0
        self._max = max_addresses
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _bucket(self, address: str) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get(address)
        if bucket is None:
            bucket = _Bucket(self._burst, now)
            self._buckets[address] = bucket
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        else:
            bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
            bucket.updated = now
            self._buckets.move_to_end(address)
        return bucket

    def retry_after(self, address: str) -> float | None:
        """Seconds until ``address`` may try again, or None when it may try now."""
        bucket = self._bucket(address)
        if bucket.tokens >= 1.0:
            return None
        return (1.0 - bucket.tokens) / self._rate if self._rate > 0 else float("inf")

    def failed(self, address: str) -> None:
        """Spend one token of ``address``'s allowance."""
        bucket = self._bucket(address)
        bucket.tokens = max(0.0, bucket.tokens - 1.0)


# --------------------------------------------------------------------------- handler


def problem(status: int, title: str, detail: str, **headers: str) -> web.Response:
    """An RFC 9457 problem response."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    body["detail"] = detail
    response = web.json_response(body, status=status, content_type=PROBLEM_JSON)
    response.headers.update(headers)
    return response


def _token_of(feed: FeedConfig) -> str | None:
    # Read at each request, so a rotated token takes effect without a restart.
    secret = getattr(feed, "secret", None)
    return secret("token") if callable(secret) else None


def bearer_token(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None when there is none."""
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()


async def read_limited(request: web.Request, limit: int) -> bytes | None:
    """The body, or None as soon as it proves longer than ``limit`` (never read in full)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(_READ_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)


class PushEndpoint:
    """The handler, with the feeds it accepts and the throttle it keeps."""

    def __init__(
        self,
        ingestor: Ingestor,
        feeds: Sequence[FeedConfig],
        *,
        throttle: FailureThrottle | None = None,
    ) -> None:
        self._ingestor = ingestor
        self._feeds = tuple(feeds)
        self._throttle = throttle or FailureThrottle()
        for feed in self._feeds:
            if not _token_of(feed):
                log.warning("push.no_token", feed=feed.name, file=str(feed.file))

    @property
    def _engine(self) -> AsyncEngine:
        return self._ingestor.repository.engine

    def _authenticate(self, given: str) -> FeedConfig | None:
        given_bytes = given.encode("utf-8")
        matched: FeedConfig | None = None
        for feed in self._feeds:  # every feed is compared, so timing says nothing about which
            token = _token_of(feed)
            if token and hmac.compare_digest(given_bytes, token.encode("utf-8")) and not matched:
                matched = feed
        return matched

    async def _refuse(
        self,
        request: web.Request,
        *,
        status: int,
        reason: str,
        subject: str,
        feed: FeedConfig | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        remote = request.remote or "unknown"
        data: dict[str, Any] = {
            "remote": remote,
            "reason": reason,
            "status": status,
            "feed": feed.name if feed else None,
        }
        data.update(extra or {})
        log.warning("push.refused", **data)
        await audit.record(
            self._engine,
            actor=f"push:{feed.name}" if feed else "push",
            action="push.refused",
            subject=subject,
            data=data,
        )

    async def handle(self, request: web.Request) -> web.Response:
        remote = request.remote or "unknown"
        wait = self._throttle.retry_after(remote)
        if wait is not None:
            log.warning("push.throttled", remote=remote, retry_after_s=round(wait, 1))
            return problem(
                429,
                "Too Many Requests",
                "too many failed authentications from this address; try again later",
                **{"Retry-After": str(max(1, int(wait + 0.999)))},
            )
        given = bearer_token(request)
        feed = self._authenticate(given) if given is not None else None
        if feed is None:
            self._throttle.failed(remote)
            reason = "missing bearer token" if given is None else "invalid token"
            await self._refuse(request, status=401, reason=reason, subject="push")
            challenge = 'Bearer realm="alertcast"'
            if given is not None:
                challenge += ', error="invalid_token"'
            return problem(
                401,
                "Unauthorized",
                f"{reason}: send 'Authorization: Bearer <token>' with the token of a push feed",
                **{"WWW-Authenticate": challenge},
            )
        return await self._accept(request, feed)

    async def _accept(self, request: web.Request, feed: FeedConfig) -> web.Response:
        source = f"push:{feed.name}"
        if request.content_type not in CAP_CONTENT_TYPES:
            shown = request.content_type or "none"
            await self._refuse(
                request,
                status=415,
                reason=f"content type {shown} is not CAP",
                subject=source,
                feed=feed,
            )
            return problem(
                415,
                "Unsupported Media Type",
                f"content type {shown!r} is not accepted; send one of "
                + ", ".join(sorted(CAP_CONTENT_TYPES)),
            )
        data = await read_limited(request, feed.max_bytes)
        if data is None:
            await self._refuse(
                request,
                status=413,
                reason=f"document larger than {feed.max_bytes} bytes",
                subject=source,
                feed=feed,
            )
            return problem(
                413,
                "Content Too Large",
                f"the document is larger than this feed's limit of {feed.max_bytes} bytes",
            )
        actor = f"push:{feed.name}"
        try:
            parsed = await self._ingestor.parse(data, source=source, actor=actor, feed=feed.name)
        except CapError as exc:
            return problem(422, "Unprocessable Content", f"not a usable CAP document: {exc}")
        allowed = feed.mapping.get("senders")
        if isinstance(allowed, list | tuple):
            strangers = sorted({p.alert.sender for p in parsed} - set(allowed))
            if strangers:
                await self._refuse(
                    request,
                    status=403,
                    reason="sender not allowed for this feed",
                    subject=str(parsed[0].alert.key),
                    feed=feed,
                    extra={"senders": strangers},
                )
                return problem(
                    403,
                    "Forbidden",
                    f"sender {', '.join(strangers)} may not push through feed {feed.name}",
                )
        try:
            outcome = await self._ingestor.store_parsed(
                parsed, data, source=source, actor=actor, feed=feed.name
            )
        except StoreError as exc:
            log.error("push.store_failed", feed=feed.name, reason=str(exc))
            return problem(
                503,
                "Service Unavailable",
                "the alert could not be stored; it was not accepted, send it again",
                **{"Retry-After": "5"},
            )
        body = {
            "alerts": [
                {
                    "key": str(item.key),
                    "created": item.created,
                    "state": item.state.value if item.state is not None else None,
                }
                for item in outcome.items
            ]
        }
        created = any(item.created for item in outcome.items)
        log.info(
            "push.accepted",
            feed=feed.name,
            remote=request.remote,
            alerts=len(outcome.items),
            created=sum(item.created for item in outcome.items),
        )
        return web.json_response(body, status=201 if created else 200)


def add_push_route(
    app: web.Application,
    ingestor: Ingestor,
    feeds: Sequence[FeedConfig],
    *,
    throttle: FailureThrottle | None = None,
) -> PushEndpoint:
    """Register ``POST /api/v1/ingest/cap`` for ``feeds``; return the endpoint."""
    endpoint = PushEndpoint(ingestor, feeds, throttle=throttle)
    app.router.add_post(PUSH_PATH, endpoint.handle)
    return endpoint
