"""What every feed kind produces, so that the poller treats all kinds alike.

A feed kind is a pure function from bytes to a ``FeedBatch``: no I/O, no
clock, no database. Fetching, conditional GET, linked documents, lifecycle
and health belong to the poller and the ingest stage; a parser only reads.
Parsers are synchronous on purpose: the poller runs them in a thread, so a
big document never blocks the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from alertcast.config import FeedConfig
from alertcast.domain import Alert


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One alert found in a feed document.

    ``thread`` names the real-world thing the alert is about when the source
    has no CAP references of its own (a road segment, an Open511 event id, an
    RSS guid). The lifecycle stage links an Update or Cancel without
    references to the latest alert of the same thread from the same feed.
    """

    alert: Alert
    raw: bytes
    warnings: tuple[str, ...] = ()
    cap_version: str | None = None
    thread: str | None = None


@dataclass(frozen=True, slots=True)
class LinkedDocument:
    """An index entry that points at a CAP document the poller must fetch."""

    url: str
    entry_id: str
    updated: datetime | None = None


@dataclass(frozen=True, slots=True)
class FeedBatch:
    """Everything one fetched document yielded.

    ``errors`` holds one readable reason per entry that could not be used; a
    bad entry never hides the good ones beside it. ``listed`` holds the entry
    ids (or alert keys as text) the index lists now: when ``complete`` is true
    the index is the issuer's full list of active alerts, so an alert that
    vanishes from it before expiry, without a Cancel, was withdrawn.
    """

    items: tuple[FeedItem, ...] = ()
    links: tuple[LinkedDocument, ...] = ()
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    listed: tuple[str, ...] = ()
    complete: bool = False


class FeedParser(Protocol):
    """A feed kind: turns one fetched document into a batch."""

    kind: str

    def parse(self, data: bytes, feed: FeedConfig) -> FeedBatch:
        """Read ``data`` (never a URL); raise nothing but ``alertcast.errors.FeedError``."""
        ...
