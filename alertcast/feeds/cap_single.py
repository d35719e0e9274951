"""The ``cap`` feed kind: a URL that answers with one CAP document.

The document is read by the same codec as everything else
(:func:`alertcast.cap.parse_cap_all`), so an EDXL-DE envelope or an
``<alerts>`` list yields every alert it carries. Reading is lenient unless the
feed's ``mapping.strict`` is true; the codec's warnings and notices travel
with each item, because the store keeps both as the alert's remarks.

Such a URL shows the issuer's latest message, not a list of active alerts:
when it moves on to another alert the previous one is not withdrawn, so the
batch is never ``complete``.
"""

from __future__ import annotations

from alertcast.cap import parse_cap_all
from alertcast.config import FeedConfig
from alertcast.errors import CapError, FeedError
from alertcast.feeds.base import FeedBatch, FeedItem


class CapParser:
    """Kind ``cap``: one CAP document (or an envelope of them) per fetch."""

    kind = "cap"

    def parse(self, data: bytes, feed: FeedConfig) -> FeedBatch:
        """Every alert in ``data``; a document that cannot be read is a FeedError."""
        strict = mapping_flag(feed, "strict", default=False)
        try:
            items = cap_items(data, strict=strict, max_bytes=feed.max_bytes)
        except CapError as exc:
            raise FeedError(feed.name, str(exc)) from None
        return FeedBatch(items=items, listed=tuple(str(item.alert.key) for item in items))


def cap_items(data: bytes, *, strict: bool, max_bytes: int) -> tuple[FeedItem, ...]:
    """The alerts of one CAP document as feed items; raises CapError like the codec.

    Notices join the warnings: a feed item has one list of remarks, and the
    store records warnings and notices together anyway.
    """
    parsed = parse_cap_all(data, strict=strict, max_bytes=max_bytes)
    return tuple(
        FeedItem(
            alert=item.alert,
            raw=data,
            warnings=(*item.warnings, *item.notices),
            cap_version=item.cap_version,
        )
        for item in parsed
    )


def mapping_flag(feed: FeedConfig, key: str, *, default: bool) -> bool:
    """A true/false setting from the feed's ``[mapping]``, refused when it is anything else."""
    value = feed.mapping.get(key, default)
    if not isinstance(value, bool):
        raise FeedError(feed.name, f"mapping.{key} must be true or false, not {value!r}")
    return value
