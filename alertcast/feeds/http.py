"""Fetching a feed over HTTP(S): conditional, bounded, and honest about what went wrong.

One ``aiohttp.ClientSession`` serves the whole process (it owns the
connection pool and DNS cache); the composition root creates it and hands it
to :class:`HttpFetcher`. Every fetch is bounded three ways, so that no server
can hold a poller hostage:

* **time**: a connect timeout, a per-read timeout, and a total deadline over
  the whole exchange (headers *and* body), so a server that trickles one
  byte a second is cut off at the deadline, not served forever;
* **size**: the body is read in chunks and refused as soon as it passes the
  feed's ``max_bytes`` (after gzip decompression, so a small compressed bomb
  is refused too); a ``Content-Length`` above the limit is refused unread;
* **redirects**: followed here, not by aiohttp, at most
  :data:`MAX_REDIRECTS` hops, only to ``http``/``https``, and only to hosts
  the caller allows (the feed's own host and its ``allowed_hosts``).

Conditional GET: the caller passes the ``ETag`` and ``Last-Modified`` it
stored; a ``304 Not Modified`` comes back as ``not_modified`` with no body.

Everything that goes wrong becomes a :class:`FetchError` (a ``FeedError``)
whose reason is written for the operator reading ``alertcast feeds list``:
"the server answered 500 Internal Server Error", "the server sent an HTML
page, not a feed", "more than 5 redirects (a redirect loop?)".
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from urllib.parse import urljoin, urlsplit

import aiohttp
import structlog
from multidict import CIMultiDict

from alertcast import __version__
from alertcast.errors import FeedError
from alertcast.feeds.hosts import host_matches

log = structlog.get_logger(__name__)

MAX_REDIRECTS = 5
"""Redirect hops followed before giving up (a loop is found within this many)."""

CONNECT_TIMEOUT_S = 10.0
"""Longest wait for a TCP/TLS connection, capped by the feed's own ``timeout_s``."""

READ_CHUNK = 64 * 1024

USER_AGENT = f"alertcast/{__version__} (+https://github.com/alertcast/alertcast)"
"""Sent unless the feed sets its own ``User-Agent`` (api.weather.gov asks for a contact)."""

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_HTML_STARTS = (b"<!doctype html", b"<html")


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one successful exchange produced.

    ``not_modified`` is true for a 304: ``body`` is then empty and the
    validators are the ones sent. ``final_url`` is the URL after redirects.
    """

    status: int
    not_modified: bool
    body: bytes
    etag: str | None
    last_modified: str | None
    final_url: str
    content_type: str | None = None

    @property
    def sha256(self) -> str:
        """The body's SHA-256, hex: a change detector for servers without validators."""
        return hashlib.sha256(self.body).hexdigest()


class FetchError(FeedError):
    """The fetch failed; ``reason`` says why for people.

    ``status`` is the HTTP status when the server answered, ``retry_after``
    the seconds it asked us to wait (429 or 503 with ``Retry-After``).
    """

    def __init__(
        self,
        feed: str,
        reason: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(feed, reason)
        self.status = status
        self.retry_after = retry_after


HostCheck = Callable[[str], bool]
"""Tells whether a URL's host may be contacted (given the lower-cased host)."""


def allowed_host_check(feed_url: str | None, allowed_hosts: tuple[str, ...]) -> HostCheck:
    """The hosts a feed may lead alertcast to: the feed URL's own host and ``allowed_hosts``."""
    own = (urlsplit(feed_url).hostname or "").lower() if feed_url else ""
    patterns = ((own,) if own else ()) + allowed_hosts

    def check(host: str) -> bool:
        return any(host_matches(host, pattern) for pattern in patterns)

    return check


def refuse_url(url: str, host_ok: HostCheck | None) -> str | None:
    """Why ``url`` may not be fetched, or None when it may."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        return f"only http and https are fetched, not '{parts.scheme or url}'"
    if parts.username is not None or parts.password is not None:
        return "URLs carrying user information are not fetched"
    host = (parts.hostname or "").lower()
    if not host:
        return "the URL names no host"
    if host_ok is not None and not host_ok(host):
        return (
            f"{host} is neither the feed's host nor listed in its allowed_hosts"
            " (add it there if it is trusted)"
        )
    return None


def looks_like_html(body: bytes) -> bool:
    """True for an HTML page: a login wall, a captive portal, an error or a moved-site page."""
    head = body[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith(_HTML_STARTS)


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds from now: a number, or an HTTP date."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _status_text(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


class HttpFetcher:
    """Fetches URLs with the shared session, within the limits above."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def fetch(
        self,
        url: str,
        *,
        feed: str,
        timeout_s: float,
        max_bytes: int,
        etag: str | None = None,
        last_modified: str | None = None,
        headers: Mapping[str, str] | None = None,
        host_ok: HostCheck | None = None,
    ) -> FetchResult:
        """GET ``url``; raise FetchError with a reason for people on any failure.

        ``host_ok`` restricts the first URL and every redirect target; None
        allows any http(s) host (the operator typed the URL in question).
        """
        try:
            async with asyncio.timeout(timeout_s):
                return await self._exchange(
                    url,
                    feed=feed,
                    timeout_s=timeout_s,
                    max_bytes=max_bytes,
                    etag=etag,
                    last_modified=last_modified,
                    headers=headers or {},
                    host_ok=host_ok,
                )
        except TimeoutError:
            raise FetchError(
                feed,
                f"no complete answer within {timeout_s:g} s (the server is down, slow or"
                " trickling its answer)",
            ) from None

    async def _exchange(
        self,
        url: str,
        *,
        feed: str,
        timeout_s: float,
        max_bytes: int,
        etag: str | None,
        last_modified: str | None,
        headers: Mapping[str, str],
        host_ok: HostCheck | None,
    ) -> FetchResult:
        request_headers: CIMultiDict[str] = CIMultiDict({"User-Agent": USER_AGENT})
        request_headers.update(headers)
        request_headers.setdefault("Accept-Encoding", "gzip, deflate")
        if etag:
            request_headers["If-None-Match"] = etag
        if last_modified:
            request_headers["If-Modified-Since"] = last_modified
        timeout = aiohttp.ClientTimeout(
            total=timeout_s,
            sock_connect=min(CONNECT_TIMEOUT_S, timeout_s),
            sock_read=timeout_s,
        )
        current = url
        for hop in range(MAX_REDIRECTS + 1):
            refusal = refuse_url(current, host_ok)
            if refusal is not None:
                where = "redirected to" if hop else "refused"
                raise FetchError(feed, f"{where} {current}: {refusal}")
            try:
                async with self._session.get(
                    current,
                    headers=request_headers,
                    allow_redirects=False,
                    timeout=timeout,
                ) as response:
                    if response.status in _REDIRECTS:
                        location = response.headers.get("Location")
                        if not location:
                            raise FetchError(
                                feed,
                                f"the server answered {_status_text(response.status)} without"
                                " saying where to",
                                status=response.status,
                            )
                        current = urljoin(current, location)
                        continue
                    return await self._read(response, current, feed, max_bytes, etag, last_modified)
            except FetchError:
                raise
            except aiohttp.ClientConnectorError as exc:
                raise FetchError(
                    feed, f"cannot connect to {exc.host}:{exc.port}: {exc.os_error}"
                ) from None
            except aiohttp.ClientPayloadError as exc:
                raise FetchError(feed, f"the answer was cut off or corrupt ({exc})") from None
            except aiohttp.ClientResponseError as exc:
                raise FetchError(
                    feed, f"the server's answer is not valid HTTP: {exc.message}"
                ) from None
            except aiohttp.ClientError as exc:
                raise FetchError(feed, f"the request failed: {type(exc).__name__}: {exc}") from None
        raise FetchError(feed, f"more than {MAX_REDIRECTS} redirects (a redirect loop?)")

    async def _read(
        self,
        response: aiohttp.ClientResponse,
        url: str,
        feed: str,
        max_bytes: int,
        sent_etag: str | None,
        sent_last_modified: str | None,
    ) -> FetchResult:
        status = response.status
        if status == 304:
            return FetchResult(
                status=304,
                not_modified=True,
                body=b"",
                etag=response.headers.get("ETag") or sent_etag,
                last_modified=response.headers.get("Last-Modified") or sent_last_modified,
                final_url=url,
            )
        if status != 200:
            retry_after = (
                _retry_after(response.headers.get("Retry-After")) if status in (429, 503) else None
            )
            raise FetchError(
                feed,
                f"the server answered {_status_text(status)}",
                status=status,
                retry_after=retry_after,
            )
        declared = response.content_length
        if (
            declared is not None
            and declared > max_bytes
            and not response.headers.get("Content-Encoding")
        ):
            raise FetchError(
                feed,
                f"the document is {declared} bytes, more than the feed's limit of"
                f" {max_bytes} bytes",
                status=status,
            )
        body = bytearray()
        async for chunk in response.content.iter_chunked(READ_CHUNK):
            body += chunk
            if len(body) > max_bytes:
                raise FetchError(
                    feed,
                    f"the document is larger than the feed's limit of {max_bytes} bytes",
                    status=status,
                )
        data = bytes(body)
        content_type = response.headers.get("Content-Type")
        if not data.strip():
            raise FetchError(feed, "the server answered 200 OK with an empty body", status=status)
        if looks_like_html(data):
            raise FetchError(
                feed,
                "the server sent an HTML page, not a feed (an error page, a login or"
                " captive portal, or a site that moved?)",
                status=status,
            )
        return FetchResult(
            status=status,
            not_modified=False,
            body=data,
            etag=response.headers.get("ETag"),
            last_modified=response.headers.get("Last-Modified"),
            final_url=url,
            content_type=content_type,
        )


def make_session(*, limit: int = 100, limit_per_host: int = 8) -> aiohttp.ClientSession:
    """The process's one client session, for the composition root (and the CLI).

    ``limit_per_host`` keeps alertcast polite to any one server however many
    feeds and linked documents point at it. aiohttp's own redirect following,
    cookie jar and environment proxies are off: redirects are checked here,
    feeds need no cookies, and a proxy is an operator's explicit choice.
    """
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit_per_host, ttl_dns_cache=300)
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
        timeout=aiohttp.ClientTimeout(total=None),
    )
