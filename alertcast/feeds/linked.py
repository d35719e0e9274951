"""Linked CAP documents: fetched once each, a few at a time, only from trusted hosts.

An index (SMN, NWS, MeteoAlarm) lists its alerts as links to CAP documents.
Fetching every link on every poll would hammer the issuer (SMN's index lists
over 300), so each link is fetched **once**: ``feed_entries`` remembers, per
link, the document's ETag and SHA-256 and the alert it held. A link already
fetched is skipped without any request, unless the index says the entry was
updated since the previous poll that listed it; it is then asked for again
with ``If-None-Match``, and a 304 or an identical body changes nothing. CAP
gives a changed message a new identifier, and issuers a new link, so in
practice each document is downloaded once in its life.

Links whose index entry already says they expired (MeteoAlarm and NWS repeat
``cap:expires`` in the entry) are not fetched at all: an expired alert is not
broadcast.

At most :data:`LINK_CONCURRENCY` documents of one feed are fetched at once,
and the poller may share one more limit across all feeds, so a big index
neither floods its issuer nor starves the other feeds.

**Which hosts.** A document must never make alertcast read a local file or
call a server the operator did not choose. A link is fetched only when it is
``http`` or ``https``, carries no user information, and its host is the
feed URL's own host or matches one of the feed's ``allowed_hosts``
(``"alerts.example.org"``, or ``"*.example.org"`` for a domain and its
subdomains); every redirect hop is held to the same rule. Anything else is an
error line for that entry, never a request. The same-host rule is on purpose
strict: a CDN or a sister host must be named by the operator.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import structlog

from alertcast.config import FeedConfig
from alertcast.errors import FeedError
from alertcast.feeds.base import FeedItem, FeedParser, LinkedDocument
from alertcast.feeds.http import HttpFetcher, allowed_host_check, refuse_url
from alertcast.store.feed_state import FeedEntry

log = structlog.get_logger(__name__)

LINK_CONCURRENCY = 4
"""Linked documents of one feed fetched at the same time."""

LINK_ACCEPT = "application/cap+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
"""``Accept`` for linked documents: they are CAP whatever the index was (api.weather.gov
answers the same URL with GeoJSON unless asked for CAP)."""

LinkStatus = Literal["fetched", "unchanged", "known", "expired", "refused", "failed"]


@dataclass(frozen=True, slots=True)
class LinkResult:
    """What became of one link.

    ``fetched``: read now, ``items`` hold its alerts; ``unchanged``: asked
    again, same document (304 or same hash); ``known``: fetched before, not
    asked again; ``expired``: the index says it expired, not fetched;
    ``refused``: its URL may not be fetched; ``failed``: the fetch or the
    document failed, ``error`` says why (it is tried again next poll).
    """

    link: LinkedDocument
    status: LinkStatus
    items: tuple[FeedItem, ...] = ()
    etag: str | None = None
    content_sha256: str | None = None
    error: str | None = None
    warnings: tuple[str, ...] = ()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _index_expiry(link: LinkedDocument) -> datetime | None:
    """``expires`` as the index entry states it, for index kinds that carry hints."""
    hints = getattr(link, "hints", None)
    expires = getattr(hints, "expires", None)
    return _aware(expires) if isinstance(expires, datetime) else None


def plan(link: LinkedDocument, entry: FeedEntry | None, now: datetime) -> LinkStatus | None:
    """Why ``link`` needs no request (``known`` or ``expired``), or None to fetch it."""
    fetched_before = (
        entry is not None and entry.content_sha256 is not None and entry.link == link.url
    )
    if fetched_before:
        assert entry is not None
        updated = _aware(link.updated) if link.updated is not None else None
        if updated is None or updated <= entry.last_seen_at:
            return "known"
        return None
    expires = _index_expiry(link)
    if expires is not None and expires <= now:
        return "expired"
    return None


class LinkedFetcher:
    """Fetches the linked documents of one index document."""

    def __init__(
        self,
        fetcher: HttpFetcher,
        parser: FeedParser,
        *,
        concurrency: int = LINK_CONCURRENCY,
        shared_limit: asyncio.Semaphore | None = None,
    ) -> None:
        self._fetcher = fetcher
        self._parser = parser
        self._concurrency = concurrency
        self._shared = shared_limit

    async def fetch_all(
        self,
        feed: FeedConfig,
        links: Sequence[LinkedDocument],
        known: Mapping[str, FeedEntry],
        *,
        now: datetime,
        conditional: bool = True,
    ) -> list[LinkResult]:
        """One result per distinct link URL, in the index's order.

        ``conditional`` False fetches every link afresh and ignores what is
        stored (``alertcast feeds check``, which stores nothing).
        """
        distinct = list({link.url: link for link in links}.values())
        limit = asyncio.Semaphore(self._concurrency)

        async def one(link: LinkedDocument) -> LinkResult:
            entry = known.get(link.url) if conditional else None
            skip = plan(link, entry, now)
            if skip is not None:
                return LinkResult(
                    link,
                    skip,
                    etag=entry.etag if entry else None,
                    content_sha256=entry.content_sha256 if entry else None,
                )
            async with limit:
                if self._shared is None:
                    return await self._fetch(feed, link, entry)
                async with self._shared:
                    return await self._fetch(feed, link, entry)

        return list(await asyncio.gather(*(one(link) for link in distinct)))

    async def _fetch(
        self, feed: FeedConfig, link: LinkedDocument, entry: FeedEntry | None
    ) -> LinkResult:
        host_ok = allowed_host_check(feed.url, feed.allowed_hosts)
        refusal = refuse_url(link.url, host_ok)
        if refusal is not None:
            log.warning("feed.link_refused", feed=feed.name, url=link.url, reason=refusal)
            return LinkResult(link, "refused", error=f"link {link.url} not fetched: {refusal}")
        headers = {k: v for k, v in feed.headers.items() if k.lower() != "accept"}
        headers["Accept"] = LINK_ACCEPT
        try:
            result = await self._fetcher.fetch(
                link.url,
                feed=feed.name,
                timeout_s=feed.timeout_s,
                max_bytes=feed.max_bytes,
                etag=entry.etag if entry else None,
                headers=headers,
                host_ok=host_ok,
            )
        except FeedError as exc:
            log.warning("feed.link_failed", feed=feed.name, url=link.url, reason=exc.reason)
            return LinkResult(link, "failed", error=f"link {link.url}: {exc.reason}")
        if result.not_modified:
            return LinkResult(
                link,
                "unchanged",
                etag=result.etag,
                content_sha256=entry.content_sha256 if entry else None,
            )
        digest = result.sha256
        if entry is not None and entry.content_sha256 == digest:
            return LinkResult(link, "unchanged", etag=result.etag, content_sha256=digest)
        try:
            batch = await asyncio.to_thread(self._parser.parse, result.body, feed)
        except FeedError as exc:
            log.warning("feed.link_unreadable", feed=feed.name, url=link.url, reason=exc.reason)
            return LinkResult(link, "failed", error=f"link {link.url}: {exc.reason}")
        if not batch.items:
            reason = "; ".join(batch.errors) or "the document holds no alert"
            return LinkResult(link, "failed", error=f"link {link.url}: {reason}")
        return LinkResult(
            link,
            "fetched",
            items=batch.items,
            etag=result.etag,
            content_sha256=digest,
            warnings=batch.warnings,
        )
