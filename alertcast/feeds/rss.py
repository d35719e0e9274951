"""The ``rss`` feed kind: plain RSS or Atom bulletins become alerts.

Health ministries and recall services publish news items, not CAP. Each
item becomes one alert with one info, so that the rest of alertcast (rules,
templates, channels, audit) treats a bulletin like any other alert:

* ``event`` and ``headline`` come from the title (``mapping.event`` fixes
  the event for every item instead), ``description`` is the summary as plain
  text (HTML tags dropped, entities decoded, paragraphs kept), ``web`` is the
  item's link when it is http(s).
* ``identifier`` is the guid (Atom id), else the link. CAP forbids spaces,
  commas, ``<`` and ``&`` in identifiers, and very long ones are awkward in
  references, so such a value is replaced by ``rss-`` and the first 32 hex
  digits of its SHA-256: the same item always gets the same identifier.
* ``sent`` is the item's publication time, else its update time. An item
  with neither is refused: inventing "now" would make a new alert of the
  same item on every poll. Using the publication time first means that an
  edited item keeps its key and is not announced twice.
* ``thread`` is the identifier, so the lifecycle can relate later versions.

``[mapping]`` keys, all optional:

``sender``
    default: the host of the feed's URL, else of the feed's own link, else
    the feed's name (CAP forbids spaces and commas in it).
``sender_name``
    default: the feed's title.
``category``
    a CAP category, default ``Health``.
``language``
    default: the feed's language, else ``es-MX``.
``event``
    the event for every item, default: the item's title.
``urgency``, ``severity``, ``certainty``
    defaults ``Unknown``, ``Minor``, ``Unknown``: a news item says nothing
    machine-readable about timing or likelihood, and as a bulletin it is
    informational (Minor) unless the feed is configured otherwise, so that
    routing rules never mistake a press release for a warning.
``status``
    default ``Actual``.
``area_desc``
    an area description for every item (CAP areas are optional).
``expires_hours``
    when set, each alert expires that many hours after ``sent``; otherwise
    bulletins never lapse by themselves (RSS says nothing about it).
``strict``
    refuse a feed that is not well-formed instead of reading it leniently.

Documents are parsed by feedparser from the bytes the poller fetched (wrapped
in a stream, so that feedparser never takes them for a file name or a URL),
in the calling thread; the poller calls parsers from a worker thread.
Entity declarations are refused before feedparser sees the document, as
everywhere else in alertcast. A document feedparser flags as not well-formed
("bozo": an undefined ``&reg;``, a wrong declared encoding) still yields its
entries, with a warning; one that yields no entry at all is an error.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from html.parser import HTMLParser
from typing import Any, TypeVar
from urllib.parse import urlsplit

import feedparser
import structlog

from alertcast.config import FeedConfig
from alertcast.domain import (
    Alert,
    Area,
    Category,
    Certainty,
    Info,
    MsgType,
    Scope,
    Severity,
    Status,
    Urgency,
)
from alertcast.errors import FeedError
from alertcast.feeds.base import FeedBatch, FeedItem
from alertcast.feeds.cap_single import mapping_flag

log = structlog.get_logger(__name__)

MAX_IDENTIFIER_LENGTH = 255
"""Longer guids are hashed: they make references and log lines unreadable."""

DEFAULT_LANGUAGE = "es-MX"

_E = TypeVar("_E", bound=StrEnum)
_FORBIDDEN_IN_IDENTIFIER = re.compile(r"[\s,<&]")
_ENTITY_DECLARATION = re.compile(rb"<!\s*ENTITY", re.IGNORECASE)
_SENDER = re.compile(r"^[^\s,]+$")
_LANGUAGE = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")
_WIDE_BOMS = {b"\xff\xfe": "utf-16", b"\xfe\xff": "utf-16"}


@dataclass(frozen=True, slots=True)
class _Settings:
    """The feed's ``[mapping]``, checked once per parse."""

    sender: str | None
    sender_name: str | None
    category: Category
    language: str | None
    event: str | None
    urgency: Urgency
    severity: Severity
    certainty: Certainty
    status: Status
    area_desc: str | None
    expires_after: timedelta | None
    strict: bool

    @classmethod
    def read(cls, feed: FeedConfig) -> _Settings:
        m = feed.mapping
        sender = _optional_str(feed, "sender")
        if sender is not None and not _SENDER.match(sender):
            raise FeedError(feed.name, "mapping.sender must not contain spaces or commas (CAP)")
        language = _optional_str(feed, "language")
        if language is not None and not _LANGUAGE.match(language):
            raise FeedError(feed.name, f"mapping.language {language!r} is not a language tag")
        hours = m.get("expires_hours")
        if hours is not None and (
            isinstance(hours, bool) or not isinstance(hours, int | float) or hours <= 0
        ):
            raise FeedError(feed.name, "mapping.expires_hours must be a number greater than 0")
        return cls(
            sender=sender,
            sender_name=_optional_str(feed, "sender_name"),
            category=_setting_enum(feed, Category, "category", Category.HEALTH),
            language=language,
            event=_optional_str(feed, "event"),
            urgency=_setting_enum(feed, Urgency, "urgency", Urgency.UNKNOWN),
            severity=_setting_enum(feed, Severity, "severity", Severity.MINOR),
            certainty=_setting_enum(feed, Certainty, "certainty", Certainty.UNKNOWN),
            status=_setting_enum(feed, Status, "status", Status.ACTUAL),
            area_desc=_optional_str(feed, "area_desc"),
            expires_after=timedelta(hours=float(hours)) if hours is not None else None,
            strict=mapping_flag(feed, "strict", default=False),
        )


def _optional_str(feed: FeedConfig, key: str) -> str | None:
    value = feed.mapping.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise FeedError(feed.name, f"mapping.{key} must be a non-empty string")
    return value.strip()


def _setting_enum(feed: FeedConfig, kind: type[_E], key: str, default: _E) -> _E:
    value = feed.mapping.get(key)
    if value is None:
        return default
    for member in kind:
        if isinstance(value, str) and member.value.lower() == value.strip().lower():
            return member
    choices = ", ".join(m.value for m in kind)
    raise FeedError(feed.name, f"mapping.{key} must be one of {choices}, not {value!r}")


# --------------------------------------------------------------------------- the parser


class RssParser:
    """Kind ``rss``: news items (health bulletins, recalls) as alerts."""

    kind = "rss"

    def parse(self, data: bytes, feed: FeedConfig) -> FeedBatch:
        """One alert per usable item; FeedError when nothing can be read at all."""
        settings = _Settings.read(feed)
        if len(data) > feed.max_bytes:
            raise FeedError(
                feed.name,
                f"the document is {len(data):,} bytes, more than the limit of {feed.max_bytes:,}",
            )
        if _declares_entities(data):
            raise FeedError(
                feed.name,
                "the document declares XML entities (<!ENTITY>); they are refused because they"
                " can read local files, reach other servers or expand to exhaust memory",
            )
        parsed: Any = feedparser.parse(
            io.BytesIO(data),
            response_headers=_location(feed),
            sanitize_html=True,
            resolve_relative_uris=True,
        )
        entries = list(parsed.get("entries") or [])
        warnings: list[str] = []
        if parsed.get("bozo"):
            reason = _bozo_reason(parsed.get("bozo_exception"))
            if not entries:
                raise FeedError(feed.name, f"not a readable RSS or Atom feed: {reason}")
            if settings.strict:
                raise FeedError(feed.name, f"the feed is not well-formed: {reason}")
            warnings.append(
                f"the feed is not well-formed ({reason}); its items were read leniently"
            )
        elif not entries and not parsed.get("version"):
            raise FeedError(feed.name, "not an RSS or Atom feed")
        channel = parsed.get("feed") or {}
        context = _Context(
            settings=settings,
            sender=settings.sender or _default_sender(feed, channel),
            sender_name=settings.sender_name or _clean(channel.get("title")),
            language=settings.language or _language(channel.get("language")),
        )
        items: list[FeedItem] = []
        errors: list[str] = []
        seen: dict[str, int] = {}
        for number, entry in enumerate(entries, start=1):
            try:
                item = _item(entry, number, context)
            except ValueError as exc:
                errors.append(f"entry {number}: {exc}")
                continue
            key = str(item.alert.key)
            if key in seen:
                warnings.append(f"entry {number} repeats entry {seen[key]}; read once")
                continue
            seen[key] = number
            items.append(item)
        log.debug("feed.rss_parsed", feed=feed.name, items=len(items), errors=len(errors))
        return FeedBatch(
            items=tuple(items),
            errors=tuple(errors),
            warnings=tuple(warnings),
            listed=tuple(dict.fromkeys(str(item.alert.key) for item in items)),
        )


@dataclass(frozen=True, slots=True)
class _Context:
    settings: _Settings
    sender: str
    sender_name: str | None
    language: str


def _declares_entities(data: bytes) -> bool:
    text = data
    for bom, codec in _WIDE_BOMS.items():
        if data.startswith(bom):
            text = data.decode(codec, "replace").encode("utf-8")
    return _ENTITY_DECLARATION.search(text) is not None


def _location(feed: FeedConfig) -> dict[str, str]:
    """The feed URL as feedparser's base for relative links (it never fetches it).

    Any header makes feedparser expect a Content-Type too; ``application/xml``
    lets the document's own XML declaration name its encoding.
    """
    if feed.url and urlsplit(feed.url).scheme in ("http", "https"):
        return {"content-location": feed.url, "content-type": "application/xml"}
    return {}


def _bozo_reason(exc: object) -> str:
    """feedparser's complaint in words (a SAX error names the line and column)."""
    if exc is None:
        return "unknown problem"
    return str(exc).replace("<unknown>:", "line ", 1) or type(exc).__name__


def _default_sender(feed: FeedConfig, channel: Mapping[str, Any]) -> str:
    for url in (feed.url, channel.get("link")):
        if isinstance(url, str) and urlsplit(url).scheme in ("http", "https"):
            host = urlsplit(url).hostname
            if host:
                return host.lower()
    return feed.name.replace(" ", "-").replace(",", "-") or "rss"


def _language(value: Any) -> str:
    """``en-us`` → ``en-US``; the default when absent or not a language tag."""
    if not isinstance(value, str) or not _LANGUAGE.match(value.strip()):
        return DEFAULT_LANGUAGE
    parts = value.strip().split("-")
    head = [parts[0].lower()]
    rest = [p.upper() if len(p) == 2 else p for p in parts[1:]]
    return "-".join(head + rest)


def stable_identifier(value: str) -> tuple[str, bool]:
    """A CAP identifier for ``value``: itself when CAP allows it, else a hash; and which."""
    if len(value) <= MAX_IDENTIFIER_LENGTH and not _FORBIDDEN_IN_IDENTIFIER.search(value):
        return value, False
    return "rss-" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:32], True


def _item(entry: Mapping[str, Any], number: int, context: _Context) -> FeedItem:
    settings = context.settings
    warnings: list[str] = []
    link = _web_link(entry.get("link"))
    # feedparser's lenient parser leaves "&amp;" in a guid that its XML parser decodes:
    # decoding here keeps the identifier the same whichever parser read the feed.
    raw_guid = _clean(entry.get("id"))
    guid = html.unescape(raw_guid) if raw_guid else None
    source = guid or link
    if not source:
        raise ValueError("no guid and no link: the item cannot be told apart from the others")
    identifier, hashed = stable_identifier(source)
    if hashed:
        what = "guid" if guid else "link"
        warnings.append(
            f"entry {number}: the {what} cannot be a CAP identifier (too long, or spaces, commas,"
            f" '<' or '&'); its hash {identifier} is used"
        )
    sent = _time(_own(entry, "published_parsed")) or _time(_own(entry, "updated_parsed"))
    if sent is None:
        raise ValueError(
            "no publication or update time: refused, since a time made up now would announce"
            " the item again on every poll"
        )
    title = _text_of(entry.get("title_detail"), entry.get("title"))
    event = settings.event or title
    if not event:
        raise ValueError("no title to name the event (set mapping.event for this feed)")
    description = _description(entry)
    info = Info(
        categories=(settings.category,),
        event=event,
        urgency=settings.urgency,
        severity=settings.severity,
        certainty=settings.certainty,
        language=context.language,
        expires=sent + settings.expires_after if settings.expires_after else None,
        sender_name=context.sender_name,
        headline=title,
        description=description,
        web=link,
        areas=(Area(area_desc=settings.area_desc),) if settings.area_desc else (),
    )
    alert = Alert(
        identifier=identifier,
        sender=context.sender,
        sent=sent,
        status=settings.status,
        msg_type=MsgType.ALERT,
        scope=Scope.PUBLIC,
        infos=(info,),
    )
    raw = {
        "id": entry.get("id"),
        "link": entry.get("link"),
        "title": entry.get("title"),
        "published": _own(entry, "published"),
        "updated": _own(entry, "updated"),
        "summary": entry.get("summary"),
    }
    return FeedItem(
        alert=alert,
        raw=json.dumps(raw, ensure_ascii=False, sort_keys=True).encode("utf-8"),
        warnings=tuple(warnings),
        thread=identifier,
    )


def _own(entry: Mapping[str, Any], key: str) -> Any:
    """``entry[key]`` as the feed wrote it: feedparser's ``get("updated")`` falls back
    to ``published`` (with a deprecation warning), which would blur the two."""
    return dict.get(entry, key) if isinstance(entry, dict) else entry.get(key)


def _web_link(value: Any) -> str | None:
    if isinstance(value, str) and urlsplit(value.strip()).scheme in ("http", "https"):
        return value.strip()
    return None


def _time(value: Any) -> datetime | None:
    """feedparser's parsed time (a UTC struct_time) as an aware datetime."""
    if value is None:
        return None
    try:
        year, month, day, hour, minute, second = (int(part) for part in value[:6])
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def _clean(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return " ".join(value.split()) or None


def _text_of(detail: Any, value: Any) -> str | None:
    """A one-line text from a feedparser value that may be HTML."""
    if not isinstance(value, str):
        return None
    kind = detail.get("type", "") if isinstance(detail, Mapping) else ""
    text = html_to_text(value) if "html" in kind else value
    return " ".join(text.split()) or None


def _description(entry: Mapping[str, Any]) -> str | None:
    detail = entry.get("summary_detail")
    value = entry.get("summary")
    contents = entry.get("content")
    if not (isinstance(value, str) and value.strip()) and isinstance(contents, list) and contents:
        detail = contents[0]
        value = contents[0].get("value") if isinstance(contents[0], Mapping) else None
    if not isinstance(value, str):
        return None
    kind = detail.get("type", "") if isinstance(detail, Mapping) else ""
    text = html_to_text(value) if "html" in kind else value
    return _tidy_paragraphs(text)


# --------------------------------------------------------------------------- HTML to text


_BLOCK_TAGS = frozenset(
    {
        "p",
        "div",
        "br",
        "li",
        "ul",
        "ol",
        "tr",
        "table",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "blockquote",
        "pre",
        "hr",
        "section",
        "article",
    }
)
_SKIPPED_TAGS = frozenset({"script", "style", "head", "title", "noscript", "template"})


class _TextExtractor(HTMLParser):
    """Keeps the words of an HTML fragment and a line break per block element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(fragment: str) -> str:
    """The plain text of an HTML fragment: tags dropped, entities decoded, blocks on new lines."""
    extractor = _TextExtractor()
    extractor.feed(fragment)
    extractor.close()
    return "".join(extractor.parts)


def _tidy_paragraphs(text: str) -> str | None:
    """Squeeze spaces inside lines and drop empty lines; None when nothing is left."""
    lines = (" ".join(line.split()) for line in text.splitlines())
    tidy = "\n".join(line for line in lines if line)
    return tidy or None
