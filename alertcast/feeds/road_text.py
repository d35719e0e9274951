"""The ``road-text`` feed kind: CAPUFE-style Spanish road posts become Transport alerts.

A post arrives as a JSON line (one object per line, the fields of the public
corpus: ``header``, ``text``, ``date``, ``account``, ``source_url``; also
``id``, ``published``, ``updated``), or as an RSS or Atom item whose title
and description are the post. :mod:`alertcast.feeds.road_text_rules` reads
the words; this module turns the reading into CAP:

* event, severity and response from the condition (closed → Severe and
  Avoid; partially closed or contraflow → Moderate; heavy traffic → Minor;
  reopened → Minor, urgency Past, AllClear, and a ``Cancel``); urgency
  Immediate and certainty Observed for what is happening now, Future and
  Likely for works announced ahead;
* an "ACTUALIZACIÓN" post is an ``Update``; a reopening a ``Cancel``. Neither
  carries ``<references>``: a parser cannot know earlier posts. Instead
  ``FeedItem.thread`` names the road segment
  (:func:`~alertcast.feeds.road_text_rules.segment_key`) and the lifecycle
  stage links the message to the latest alert of that thread from the feed;
* parameters ``road``, ``km``, ``place``, ``direction``, ``condition``,
  ``cause``, ``queue_km`` (the longest queue) and, when queues name their
  directions, ``queue`` (``"Veracruz: 4 km; Córdoba: 7 km"``).

Identity. ``identifier`` is ``road-<post id>-<time>-<content hash>`` when the
post has an id, else ``road-<content hash>-<time>`` (time in UTC,
``YYYYMMDDThhmmssZ``; content = header and text as published). Reading the
same post again gives the same identifier, so it is stored once; a post that
changes gives a new one. ``sent`` is the post's own time (``updated``, else
``published``, else ``date``...), never the time of reading: a post without
any time is refused with an error line. A time without a zone (CAPUFE gives
local times, the corpus only dates) is read in ``mapping.timezone``
(default ``America/Mexico_City``); a date alone means 00:00 of that day there,
with a warning.

``mapping`` keys: ``timezone``, ``sender`` (default: the feed's name),
``sender_name``, ``language`` (default ``es-MX``).
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from zoneinfo import ZoneInfo

import feedparser
import structlog

from alertcast.cap_values import is_language
from alertcast.cap_writer import to_cap_xml
from alertcast.config import FeedConfig
from alertcast.domain import (
    Alert,
    Area,
    Category,
    Certainty,
    Info,
    MsgType,
    NamedValue,
    ResponseType,
    Scope,
    Severity,
    Status,
    Urgency,
)
from alertcast.errors import FeedError
from alertcast.feeds.base import FeedBatch, FeedItem
from alertcast.feeds.road_text_rules import (
    BOTH_DIRECTIONS,
    Condition,
    RoadReport,
    extract,
    segment_key,
)
from alertcast.timezones import UnknownTimeZone
from alertcast.timezones import zone as named_zone

log = structlog.get_logger(__name__)

KIND = "road-text"
DEFAULT_TIMEZONE = "America/Mexico_City"
DEFAULT_LANGUAGE = "es-MX"
HEADLINE_LIMIT = 160
"""CAP advises a headline short enough for a text message."""

EVENT_NAMES: dict[Condition, str] = {
    Condition.CLOSED: "Cierre de circulación",
    Condition.PARTIALLY_CLOSED: "Cierre parcial de circulación",
    Condition.CONTRAFLOW: "Carril de contraflujo",
    Condition.HEAVY_TRAFFIC: "Tránsito lento",
    Condition.REOPENED: "Circulación restablecida",
    Condition.OTHER: "Aviso carretero",
}
SEVERITIES: dict[Condition, Severity] = {
    Condition.CLOSED: Severity.SEVERE,
    Condition.PARTIALLY_CLOSED: Severity.MODERATE,
    Condition.CONTRAFLOW: Severity.MODERATE,
    Condition.HEAVY_TRAFFIC: Severity.MINOR,
    Condition.REOPENED: Severity.MINOR,
    Condition.OTHER: Severity.MINOR,
}
RESPONSES: dict[Condition, tuple[ResponseType, ...]] = {
    Condition.CLOSED: (ResponseType.AVOID,),
    Condition.PARTIALLY_CLOSED: (ResponseType.MONITOR,),
    Condition.CONTRAFLOW: (ResponseType.MONITOR,),
    Condition.HEAVY_TRAFFIC: (ResponseType.MONITOR,),
    Condition.REOPENED: (ResponseType.ALL_CLEAR,),
    Condition.OTHER: (),
}

_TIME_FIELDS = ("updated", "published", "created_at", "created", "time", "datetime", "date")
_ID_FIELDS = ("id", "id_str", "guid", "post_id")
_TEXT_FIELDS = ("text", "full_text", "content")
_HEADER_FIELDS = ("header", "title")
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_CAP_SENDER = re.compile(r"[^\s,<&]+")
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_EMBED_DATE = re.compile(
    r"\(@\w+\)\s+(?P<month>[A-Z][a-z]+)\.?\s+(?P<day>\d{1,2}),\s+(?P<year>\d{4})"
)
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.IGNORECASE)
_BREAKS = re.compile(r"(?i)<br\s*/?>|</p\s*>|</div\s*>")
_TAGS = re.compile(r"<[^>]*>")


def looks_like(data: bytes) -> bool:
    """A cheap sniff: CAPUFE-style JSON lines, or an RSS/Atom feed of Mexican road posts."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith((b"{", b"[")):
        return b'"text"' in head and (
            re.search(rb'"(?:header|raw_embed)"|CAPUFE|[Aa]utopista|\bkm\b', head) is not None
        )
    if head.startswith(b"<"):
        if re.search(rb"<(?:\w+:)?(?:rss|feed|RDF)\b", head) is None:
            return False
        # A news feed may mention a motorway; a road-post feed names CAPUFE or gives km.
        return b"CAPUFE" in head or (
            re.search(rb"[Aa]utopista|\bAut\.", head) is not None
            and re.search(rb"\b(?:km|kil\xc3\xb3metro)\s*\d", head) is not None
        )
    return False


@dataclass(frozen=True, slots=True)
class _Settings:
    sender: str
    sender_name: str | None
    language: str
    timezone: ZoneInfo


@dataclass(frozen=True, slots=True)
class _Post:
    """One post as found in the document, before its words are read."""

    where: str
    raw: bytes
    text: str
    header: str | None = None
    post_id: str | None = None
    time_text: str | None = None
    fallback_time: datetime | None = None
    link: str | None = None
    author: str | None = None


class _EntryError(ValueError):
    """One entry cannot be used; the message says why, for the feed's owner."""


class RoadTextParser:
    """The ``road-text`` feed kind (see the module docstring)."""

    kind = KIND

    def parse(self, data: bytes, feed: FeedConfig) -> FeedBatch:
        settings = _settings(feed)
        if len(data) > feed.max_bytes:
            raise FeedError(
                feed.name,
                f"the document is {len(data):,} bytes, more than the limit of {feed.max_bytes:,}",
            )
        body = data.lstrip(b"\xef\xbb\xbf \t\r\n")
        if not body:
            raise FeedError(feed.name, "the document is empty")
        batch_warnings: list[str] = []
        if body.startswith((b"{", b"[")):
            posts, errors = _read_json(body, feed)
        elif body.startswith(b"<"):
            posts, errors = _read_feed(body, feed, batch_warnings)
        else:
            raise FeedError(
                feed.name,
                "not a road-text document: expected JSON lines (one post object per line),"
                " RSS or Atom",
            )
        items: list[FeedItem] = []
        for post in posts:
            try:
                items.append(_item(post, settings))
            except _EntryError as exc:
                errors.append(f"{post.where}: {exc}")
            except Exception as exc:  # a reader's bug must not hide the other posts
                log.warning("feed.entry_failed", feed=feed.name, entry=post.where, exc_info=True)
                errors.append(f"{post.where}: could not be read ({type(exc).__name__}: {exc})")
        return FeedBatch(items=tuple(items), errors=tuple(errors), warnings=tuple(batch_warnings))


# --------------------------------------------------------------------------- settings


def _settings(feed: FeedConfig) -> _Settings:
    mapping = feed.mapping
    zone_name = mapping.get("timezone", DEFAULT_TIMEZONE)
    try:
        zone = named_zone(str(zone_name))
    except UnknownTimeZone:
        raise FeedError(
            feed.name,
            f"mapping.timezone {zone_name!r} is not a time zone name such as {DEFAULT_TIMEZONE}",
        ) from None
    sender = str(mapping.get("sender", feed.name))
    if not _CAP_SENDER.fullmatch(sender):
        raise FeedError(
            feed.name, f"mapping.sender {sender!r} must not be empty or hold spaces, ',', '<', '&'"
        )
    language = str(mapping.get("language", DEFAULT_LANGUAGE))
    if not is_language(language):
        raise FeedError(feed.name, f"mapping.language {language!r} is not a tag such as es-MX")
    sender_name = mapping.get("sender_name")
    return _Settings(
        sender=sender,
        sender_name=str(sender_name) if sender_name else None,
        language=language,
        timezone=zone,
    )


# --------------------------------------------------------------------------- JSON lines


def _read_json(body: bytes, feed: FeedConfig) -> tuple[list[_Post], list[str]]:
    """A JSON array of posts, one JSON object, or JSON lines (each line on its own)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FeedError(feed.name, f"the document is not UTF-8 (byte {exc.start})") from None
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    except RecursionError:
        raise FeedError(feed.name, "the JSON is nested too deeply to be a post") from None
    entries: list[tuple[str, object, str | None]]
    if isinstance(whole, list):
        entries = [(f"entry {n}", item, None) for n, item in enumerate(whole, 1)]
    elif isinstance(whole, dict):
        one_line = text.strip()
        entries = [
            ("line 1", whole, one_line) if "\n" not in one_line else ("entry 1", whole, None)
        ]
    else:
        entries = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                entries.append((f"line {number}", json.loads(line), line))
            except json.JSONDecodeError as exc:
                entries.append((f"line {number}", _BadJson(exc.msg, exc.colno), line))
            except RecursionError:
                entries.append((f"line {number}", _BadJson("nested too deeply", 1), line))
    posts: list[_Post] = []
    errors: list[str] = []
    for where, entry, source_line in entries:
        raw = (
            source_line.encode("utf-8")
            if source_line is not None
            else json.dumps(entry, ensure_ascii=False).encode("utf-8")
        )
        try:
            posts.append(_json_post(where, entry, raw))
        except _EntryError as exc:
            errors.append(f"{where}: {exc}")
    if not posts and not errors:
        raise FeedError(feed.name, "the document holds no posts")
    return posts, errors


@dataclass(frozen=True, slots=True)
class _BadJson:
    message: str
    column: int


def _json_post(where: str, entry: object, raw: bytes) -> _Post:
    if isinstance(entry, _BadJson):
        raise _EntryError(f"not valid JSON ({entry.message} at column {entry.column})")
    if not isinstance(entry, dict):
        raise _EntryError(f"a post must be a JSON object, not {type(entry).__name__}")
    text = _first_text(entry, _TEXT_FIELDS) or _first_text(entry, ("raw_embed",))
    if not text:
        raise _EntryError("the post has no text (field 'text')")
    header = _first_text(entry, _HEADER_FIELDS)
    post_id = _first_text(entry, _ID_FIELDS)
    time_text = _first_text(entry, _TIME_FIELDS)
    if time_text is None:
        embed = _first_text(entry, ("raw_embed",)) or ""
        time_text = _embed_date(embed)
    link = _first_text(entry, ("url", "link", "source_url"))
    author = _first_text(entry, ("account", "author"))
    return _Post(where, raw, text, header, post_id, time_text, None, link, author)


def _first_text(entry: dict[str, Any], fields: tuple[str, ...]) -> str | None:
    for name in fields:
        value = entry.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and name in _ID_FIELDS:
            return str(value)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _embed_date(embed: str) -> str | None:
    """``— CAPUFE (@CAPUFE) March 12, 2026`` → ``2026-03-12``: the post's own date."""
    match = _EMBED_DATE.search(embed)
    if match is None:
        return None
    month = _MONTHS.get(match.group("month").lower())
    if month is None:
        return None
    try:
        return date(int(match.group("year")), month, int(match.group("day"))).isoformat()
    except ValueError:
        return None


# --------------------------------------------------------------------------- RSS / Atom


def _read_feed(body: bytes, feed: FeedConfig, warnings: list[str]) -> tuple[list[_Post], list[str]]:
    if _ENTITY_DECLARATION.search(body):
        raise FeedError(
            feed.name,
            "the document declares XML entities (<!ENTITY>); they are refused because they"
            " can read local files, reach other servers or expand to exhaust memory",
        )
    # A stream, never bytes: feedparser tries bytes as a file name before reading them.
    try:
        parsed = feedparser.parse(io.BytesIO(body))
    except Exception as exc:  # feedparser reports problems as "bozo"; anything else is a bug
        raise FeedError(feed.name, f"not a readable RSS or Atom feed: {exc}") from None
    if not parsed.entries:
        if parsed.get("bozo"):
            problem = parsed.get("bozo_exception")
            raise FeedError(feed.name, f"not a readable RSS or Atom feed: {problem}")
        if not parsed.get("version"):
            raise FeedError(feed.name, "not an RSS or Atom feed")
        return [], []
    if parsed.get("bozo"):
        warnings.append(
            f"the feed is not well-formed ({parsed.get('bozo_exception')}); it was read leniently"
        )
    posts: list[_Post] = []
    errors: list[str] = []
    for number, entry in enumerate(parsed.entries, 1):
        where = f"item {number}"
        title = _html_text(str(entry.get("title") or ""))
        contents = entry.get("content") or []
        markup = contents[0].get("value", "") if contents else entry.get("summary", "")
        description = _html_text(str(markup or ""))
        header: str | None
        if not description:
            header, text = None, title
        elif not title or _starts_alike(description, title):
            header, text = None, description
        else:
            header, text = title, description
        if not text:
            errors.append(f"{where}: the item has neither title nor description")
            continue
        # Plain dict access: FeedParserDict maps a missing "updated" to "published" with a
        # deprecation warning, and the order of preference is decided here.
        fields = dict(entry)
        time_text = fields.get("updated") or fields.get("published")
        struct = fields.get("updated_parsed") or fields.get("published_parsed")
        fallback = datetime(*struct[:6]).replace(tzinfo=UTC) if struct else None
        post_id = entry.get("id") or entry.get("link")
        raw = json.dumps(
            {
                "id": post_id,
                "title": title,
                "description": description,
                "time": time_text,
                "link": entry.get("link"),
            },
            ensure_ascii=False,
        ).encode("utf-8")
        posts.append(
            _Post(
                where,
                raw,
                text,
                header,
                str(post_id) if post_id else None,
                str(time_text) if time_text else None,
                fallback,
                entry.get("link"),
                entry.get("author"),
            )
        )
    return posts, errors


def _html_text(markup: str) -> str:
    text = _TAGS.sub("", _BREAKS.sub("\n", markup))
    return html.unescape(text).strip()


def _starts_alike(text: str, title: str) -> bool:
    """Feeds of posts repeat the (possibly cut) text as the title."""

    def squeeze(value: str) -> str:
        return re.sub(r"\W+", "", value).lower()

    head = squeeze(title.rstrip("…").removesuffix("..."))
    return bool(head) and squeeze(text).startswith(head)


# --------------------------------------------------------------------------- time


def _post_time(post: _Post, zone: ZoneInfo) -> tuple[datetime, list[str]]:
    """The post's own time, aware; see the module docstring for zoneless times."""
    if post.time_text is None:
        if post.fallback_time is not None:
            return post.fallback_time, []
        raise _EntryError(
            "the post has no date or time (updated, published, date...); it was not used,"
            " because stamping it with the time of reading would make every poll a new alert"
        )
    text = post.time_text.strip()
    notes: list[str] = []
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            parsed = None
    if parsed is None:
        if post.fallback_time is not None:
            return post.fallback_time, [
                f"{post.where}: its time {text!r} was read by the feed library as UTC"
            ]
        raise _EntryError(f"its time {text!r} is not a date or date-time this feed kind reads")
    if _DATE_ONLY.fullmatch(text):
        notes.append(
            f"{post.where}: the post gives only a date ({text}); sent is 00:00 {zone.key} that day"
        )
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    try:
        parsed.astimezone(UTC)
    except OverflowError:
        raise _EntryError(f"its time {text!r} is out of range") from None
    return parsed, notes


# --------------------------------------------------------------------------- alert


def _item(post: _Post, settings: _Settings) -> FeedItem:
    report = extract(post.text, post.header)
    if not report.description and not report.header:
        raise _EntryError("nothing is left of the post once links, hashtags and emoji are removed")
    sent, notes = _post_time(post, settings.timezone)
    thread = segment_key(report)
    if thread is None:
        notes.append(
            f"{post.where}: the post names no road; it cannot be linked to later posts"
            " about the same segment"
        )
    alert = Alert(
        identifier=_identifier(post, sent),
        sender=settings.sender,
        sent=sent,
        status=Status.ACTUAL,
        msg_type=_msg_type(report),
        scope=Scope.PUBLIC,
        infos=(_info(report, post, settings),),
    )
    try:
        to_cap_xml(alert)
    except ValueError as exc:
        raise _EntryError(f"the post cannot be written as CAP: {exc}") from None
    return FeedItem(alert=alert, raw=post.raw, warnings=tuple(notes), thread=thread)


def _msg_type(report: RoadReport) -> MsgType:
    if report.condition is Condition.REOPENED:
        return MsgType.CANCEL
    return MsgType.UPDATE if report.is_update else MsgType.ALERT


def _identifier(post: _Post, sent: datetime) -> str:
    stamp = sent.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    content = hashlib.sha256(f"{post.header or ''}\n{post.text}".encode()).hexdigest()
    if post.post_id is None:
        return f"road-{content[:16]}-{stamp}"
    token = post.post_id
    if not _SAFE_ID.fullmatch(token):
        token = "h" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]
    return f"road-{token}-{stamp}-{content[:8]}"


def _info(report: RoadReport, post: _Post, settings: _Settings) -> Info:
    condition = report.condition
    if condition is Condition.REOPENED:
        urgency, certainty = Urgency.PAST, Certainty.OBSERVED
    elif report.planned:
        urgency, certainty = Urgency.FUTURE, Certainty.LIKELY
    else:
        urgency, certainty = Urgency.IMMEDIATE, Certainty.OBSERVED
    area = _area_description(report)
    return Info(
        categories=(Category.TRANSPORT,),
        event=EVENT_NAMES[condition],
        urgency=urgency,
        severity=SEVERITIES[condition],
        certainty=certainty,
        language=settings.language,
        response_types=RESPONSES[condition],
        sender_name=settings.sender_name or (post.author.lstrip("@") if post.author else None),
        headline=_headline(report),
        description=report.description,
        instruction=report.instruction,
        web=post.link if post.link and re.match(r"https?://\S+$", post.link) else None,
        parameters=_parameters(report),
        areas=(Area(area_desc=area),) if area else (),
    )


def _headline(report: RoadReport) -> str:
    """The header line (or the event's name) and the post's first sentence, within 160."""
    prefix = report.header or EVENT_NAMES[report.condition]
    sentence = report.first_sentence
    if not sentence:
        text = prefix
    elif sentence.upper().startswith(prefix.upper()):
        text = sentence  # "AVISO a las personas usuarias...": the header is its first word
    else:
        text = f"{prefix}: {sentence}"
    if len(text) <= HEADLINE_LIMIT:
        return text
    cut = text[: HEADLINE_LIMIT - 1].rsplit(" ", 1)[0].rstrip(" ,;:")
    return f"{cut}…"


def _parameters(report: RoadReport) -> tuple[NamedValue, ...]:
    values: list[tuple[str, str | None]] = [
        ("road", report.road),
        ("km", report.km),
        ("place", report.place),
        ("direction", report.direction),
        ("condition", report.condition.value),
        ("cause", report.cause),
        ("queue_km", report.queue_km),
    ]
    if any(queue.direction for queue in report.queues):
        values.append(
            (
                "queue",
                "; ".join(
                    f"{queue.direction or 'sin dirección'}: {queue.km} km"
                    for queue in report.queues
                ),
            )
        )
    return tuple(NamedValue(name, value) for name, value in values if value)


def _area_description(report: RoadReport) -> str | None:
    parts: list[str] = []
    if report.road:
        parts.append(f"{report.road_type or 'Autopista'} {report.road}")
    if report.km:
        parts.append(f"km {report.km}")
    if report.place:
        parts.append(report.place)
    if report.direction == BOTH_DIRECTIONS:
        parts.append(BOTH_DIRECTIONS)
    elif report.direction:
        parts.append(f"dirección {report.direction}")
    return ", ".join(parts) or None
