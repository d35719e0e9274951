"""The ``open511`` feed kind: Open511 road events (JSON or XML) become Transport alerts.

Open511 (open511.org, v1) is the open format road authorities such as DriveBC
publish their incidents, works and closures in. One event becomes one alert:

* ``status`` ACTIVE → ``Alert``, or ``Update`` when ``updated`` is later than
  ``created``; ARCHIVED → ``Cancel`` (urgency Past, AllClear). No
  ``<references>``: ``FeedItem.thread`` is ``open511:<event id>`` (an Open511
  id already reads ``<jurisdiction>/<local id>``; an id without the
  jurisdiction part gets one from ``mapping.jurisdiction`` or the host of
  ``jurisdiction_url``) and the lifecycle stage links the message to the
  latest alert of the same thread;
* ``identifier`` is ``open511-<event id>-<updated, UTC, YYYYMMDDThhmmssZ>``
  (a hash stands in for an id with characters CAP forbids); ``sent`` is
  ``updated``, else ``created``. The same event version read twice is one
  alert; a new version is a new one;
* ``severity`` MINOR/MODERATE/MAJOR → Minor/Moderate/Severe; ``event_type`` →
  the CAP event (and an ``open511_event_type`` event code, one
  ``open511_event_subtype`` per subtype);
* ``geography``: a Point becomes a 0.1 km circle, a LineString a corridor of
  thin rectangles, a Polygon itself (see :mod:`alertcast.feeds.geometry`);
  ``areas`` become geocodes ``open511_area`` and name the CAP area;
* ``schedule``: ``effective`` is the earliest start of its intervals and
  recurring schedules, ``expires`` the latest end when every part has one.
  An open-ended part (``2021-04-26T15:19/``) means no ``expires``; the
  alert's ``note`` says so, because such an alert stays in force until the
  event is archived. Exceptions only remove time and change neither bound;
* ``roads`` become parameter groups (``road``, ``from``, ``to``, ``direction``,
  ``state``, ``lanes_open``...), ``+extension`` fields (``+ivr_message``,
  ``+linear_reference_km``...) and foreign-namespace XML elements become
  parameters under their own names, a ``detour`` the ``<instruction>``,
  ``attachments`` CAP resources;
* XML headlines and descriptions in several ``xml:lang`` give one CAP info
  per language.

Times without a zone (schedules nearly always; some ``created``) are read
in ``mapping.timezone``, the jurisdiction's time zone; when the feed does not
say it, in UTC with a warning, because a guess from the offsets of other
fields would be wrong for a feed (DriveBC) that writes its intervals in UTC.

What is not an events document is refused with a FeedError that says what it
is: jurisdiction, area, road and discovery documents, schedule fragments,
open511-server database fixtures, DATEX II publications. One malformed event
is an error line; the others are read.

``mapping`` keys: ``timezone``, ``sender`` (default: the jurisdiction id),
``jurisdiction``, ``language`` (default ``en`` for JSON; XML says its own).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

import structlog
from lxml import etree

from alertcast.cap_values import is_language
from alertcast.cap_writer import to_cap_xml
from alertcast.cap_xml import load_xml
from alertcast.config import FeedConfig
from alertcast.domain import (
    Alert,
    Area,
    Category,
    Certainty,
    Circle,
    Info,
    MsgType,
    NamedValue,
    Point,
    Polygon,
    Resource,
    ResponseType,
    Scope,
    Severity,
    Status,
    Urgency,
)
from alertcast.errors import CapError, FeedError
from alertcast.feeds import geometry
from alertcast.feeds.base import FeedBatch, FeedItem
from alertcast.timezones import UnknownTimeZone
from alertcast.timezones import zone as named_zone

log = structlog.get_logger(__name__)

KIND = "open511"
DEFAULT_LANGUAGE = "en"
HEADLINE_LIMIT = 160
XML_MAX_DEPTH = 64
GML_NAMESPACE = "http://www.opengis.net/gml"
DATEX2_NAMESPACE_PREFIX = "http://datex2.eu/schema/"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"

SEVERITIES: dict[str, Severity] = {
    "MINOR": Severity.MINOR,
    "MODERATE": Severity.MODERATE,
    "MAJOR": Severity.SEVERE,
    "UNKNOWN": Severity.UNKNOWN,
}
EVENT_TYPES: dict[str, dict[str, str]] = {
    "CONSTRUCTION": {"en": "Construction", "fr": "Travaux", "es": "Obras"},
    "SPECIAL_EVENT": {"en": "Special event", "fr": "Événement spécial", "es": "Evento especial"},
    "INCIDENT": {"en": "Incident", "fr": "Incident", "es": "Incidente"},
    "WEATHER_CONDITION": {
        "en": "Weather condition",
        "fr": "Conditions météorologiques",
        "es": "Condición meteorológica",
    },
    "ROAD_CONDITION": {"en": "Road condition", "fr": "État de la route", "es": "Estado del camino"},
}
_UNKNOWN_EVENT = {"en": "Road event", "fr": "Événement routier", "es": "Evento vial"}
_OPEN_ENDED_NOTE = "The Open511 schedule has no end: the event stays in force until it is archived."

_JSON_EVENT_KEYS = frozenset(
    {
        "url",
        "id",
        "jurisdiction_url",
        "headline",
        "description",
        "status",
        "event_type",
        "event_subtypes",
        "created",
        "updated",
        "severity",
        "detour",
        "grouped_events",
        "attachments",
        "geography",
        "schedule",
        "roads",
        "areas",
        "certainty",
    }
)
_XML_EVENT_TAGS = _JSON_EVENT_KEYS | {"link"}
_NOT_EVENTS = {
    "services": "a discovery document (services)",
    "jurisdictions": "a list of jurisdictions",
    "jurisdiction": "a jurisdiction",
    "areas": "a list of areas",
    "roads": "a list of roads",
    "geography": "a jurisdiction geography",
}
_SAFE_ID = re.compile(r"[A-Za-z0-9._:/-]{1,100}")
_CAP_SENDER = re.compile(r"[^\s,<&]+")
_JSON_FRAGMENT = re.compile(r'^\s*"(\w+)"\s*:')
_TIME_OF_DAY = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")


def looks_like(data: bytes) -> bool:
    """A cheap sniff: an ``<open511>`` root, or JSON with Open511's event fields."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return re.search(rb"<open511[\s>]", head) is not None
    if head.startswith((b"{", b"[")):
        has_events = re.search(rb'"events"\s*:', head) is not None
        has_fields = re.search(rb'"(?:event_type|jurisdiction_url|severity)"\s*:', head)
        return has_events and has_fields is not None
    return False


# --------------------------------------------------------------------------- model


@dataclass
class _Event:
    """One Open511 event as read from JSON or XML, before it becomes an alert.

    Texts are keyed by language; the key None means "the document's language".
    """

    where: str
    raw: bytes
    problem: str | None = None
    id: str | None = None
    status: str | None = None
    headlines: dict[str | None, str] = field(default_factory=dict)
    descriptions: dict[str | None, str] = field(default_factory=dict)
    detours: dict[str | None, str] = field(default_factory=dict)
    event_type: str | None = None
    event_subtypes: list[str] = field(default_factory=list)
    severity: str | None = None
    created: str | None = None
    updated: str | None = None
    url: str | None = None
    jurisdiction_url: str | None = None
    areas: list[tuple[str | None, str | None]] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    lines: list[list[Point]] = field(default_factory=list)
    rings: list[list[Point]] = field(default_factory=list)
    geometry_problem: str | None = None
    roads: list[list[tuple[str, str]]] = field(default_factory=list)
    intervals: list[str] = field(default_factory=list)
    recurring: list[dict[str, str]] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    attachments: list[Resource] = field(default_factory=list)
    extensions: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Document:
    events: list[_Event]
    language: str
    warnings: list[str]


class _EventError(ValueError):
    """One event cannot be used; the message says why, for the feed's owner."""


@dataclass
class _Clock:
    """Reads Open511 times; remembers whether a zoneless one had to be read as UTC."""

    zone: ZoneInfo | None
    guessed_utc: bool = False

    def local(self) -> tzinfo:
        if self.zone is None:
            self.guessed_utc = True
            return UTC
        return self.zone

    def read(self, text: str, what: str) -> datetime:
        try:
            value = datetime.fromisoformat(text.strip())
        except ValueError:
            raise _EventError(f"{what} {text!r} is not an ISO 8601 date-time") from None
        value = value if value.tzinfo is not None else value.replace(tzinfo=self.local())
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise _EventError(f"{what} {text!r} is out of range") from None
        return value


@dataclass(frozen=True, slots=True)
class _Settings:
    sender: str | None
    jurisdiction: str | None
    language: str | None
    zone: ZoneInfo | None


# --------------------------------------------------------------------------- parser


class Open511Parser:
    """The ``open511`` feed kind (see the module docstring)."""

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
        if body.startswith(b"<"):
            document = _read_xml(body, feed, settings)
        else:
            document = _read_json(body, feed, settings)
        items: list[FeedItem] = []
        errors: list[str] = []
        for event in document.events:
            try:
                items.append(_item(event, document.language, settings, feed))
            except _EventError as exc:
                errors.append(f"{event.where}{_label_of(event)}: {exc}")
            except Exception as exc:  # a reader's bug must not hide the other events
                log.warning("feed.entry_failed", feed=feed.name, entry=event.where, exc_info=True)
                errors.append(
                    f"{event.where}{_label_of(event)}: could not be read"
                    f" ({type(exc).__name__}: {exc})"
                )
        return FeedBatch(
            items=tuple(items), errors=tuple(errors), warnings=tuple(document.warnings)
        )


def _label_of(event: _Event) -> str:
    """How an error line names an event: its id, else its headline, so it can be found."""
    if event.id:
        return f" ({event.id})"
    headline = event.headlines.get(None) or next(iter(event.headlines.values()), None)
    return f" (no id; headline {headline[:60]!r})" if headline else ""


def _settings(feed: FeedConfig) -> _Settings:
    mapping = feed.mapping
    zone: ZoneInfo | None = None
    if "timezone" in mapping:
        try:
            zone = named_zone(str(mapping["timezone"]))
        except UnknownTimeZone:
            raise FeedError(
                feed.name,
                f"mapping.timezone {mapping['timezone']!r} is not a time zone name"
                " such as America/Vancouver",
            ) from None
    sender = mapping.get("sender")
    if sender is not None and not _CAP_SENDER.fullmatch(str(sender)):
        raise FeedError(
            feed.name, f"mapping.sender {sender!r} must not be empty or hold spaces, ',', '<', '&'"
        )
    language = mapping.get("language")
    if language is not None and not is_language(str(language)):
        raise FeedError(feed.name, f"mapping.language {language!r} is not a tag such as en")
    jurisdiction = mapping.get("jurisdiction")
    return _Settings(
        sender=str(sender) if sender is not None else None,
        jurisdiction=str(jurisdiction) if jurisdiction else None,
        language=str(language) if language is not None else None,
        zone=zone,
    )


def _not_events(feed: FeedConfig, what: str) -> FeedError:
    return FeedError(feed.name, f"not an Open511 events document: {what}")


# --------------------------------------------------------------------------- JSON


def _read_json(body: bytes, feed: FeedConfig, settings: _Settings) -> _Document:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FeedError(feed.name, f"the document is not UTF-8 (byte {exc.start})") from None
    try:
        document = json.loads(text)
    except RecursionError:
        raise FeedError(feed.name, "the JSON is nested too deeply to be Open511") from None
    except json.JSONDecodeError as exc:
        fragment = _JSON_FRAGMENT.match(text)
        if fragment:
            raise _not_events(
                feed,
                f'it is a JSON fragment ("{fragment.group(1)}": ...), not a complete JSON'
                ' document; an Open511 feed is an object with an "events" list',
            ) from None
        raise FeedError(
            feed.name, f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    language = settings.language or DEFAULT_LANGUAGE
    if isinstance(document, list):
        if any(
            isinstance(e, dict) and str(e.get("model", "")).startswith("open511.") for e in document
        ):
            raise _not_events(feed, _FIXTURE_REASON.format(count=len(document)))
        raise _not_events(feed, 'a JSON list; an Open511 feed is an object with an "events" list')
    if not isinstance(document, dict):
        raise _not_events(feed, f"a JSON {type(document).__name__}")
    warnings = _pagination_warning(document.get("pagination"))
    if "events" in document:
        listed = document["events"]
        if not isinstance(listed, list):
            raise _not_events(feed, '"events" is not a list')
        raw_events = listed
    elif "id" in document and ({"status", "event_type", "headline"} & document.keys()):
        raw_events = [document]
    else:
        for key, what in _NOT_EVENTS.items():
            if key in document:
                raise _not_events(feed, f"it is {what}")
        raise _not_events(feed, 'a JSON object without an "events" list')
    events = [_json_event(f"event {n}", raw) for n, raw in enumerate(raw_events, 1)]
    return _Document(events, language, warnings)


_FIXTURE_REASON = (
    "it is an open511-server database fixture ({count} records holding prototype, pre-v1"
    " <RoadEvent> XML with no status and no created or updated time); publish it through"
    " the server's /events API, which writes Open511 v1"
)


def _pagination_warning(pagination: object) -> list[str]:
    if isinstance(pagination, dict) and pagination.get("next_url"):
        return [
            f"the document is one page of a longer list (next page: {pagination['next_url']});"
            " only this page was read"
        ]
    return []


def _json_event(where: str, raw: object) -> _Event:
    encoded = json.dumps(raw, ensure_ascii=False).encode("utf-8")
    event = _Event(where=where, raw=encoded)
    if not isinstance(raw, dict):
        event.problem = f"an event must be a JSON object, not {type(raw).__name__}"
        return event
    event.id = _text(raw.get("id"))
    event.status = _text(raw.get("status"))
    for target, key in (
        (event.headlines, "headline"),
        (event.descriptions, "description"),
        (event.detours, "detour"),
    ):
        value = _text(raw.get(key))
        if value:
            target[None] = value
    event.event_type = _text(raw.get("event_type"))
    event.event_subtypes = [s for s in map(_text, _list(raw.get("event_subtypes"))) if s]
    event.severity = _text(raw.get("severity"))
    event.created = _text(raw.get("created"))
    event.updated = _text(raw.get("updated"))
    event.url = _text(raw.get("url"))
    event.jurisdiction_url = _text(raw.get("jurisdiction_url"))
    for area in _list(raw.get("areas")):
        if isinstance(area, dict):
            event.areas.append((_text(area.get("name")), _text(area.get("id"))))
    _json_geography(event, raw.get("geography"))
    for road in _list(raw.get("roads")):
        if isinstance(road, dict):
            event.roads.append(_road_parameters(road))
    schedule = raw.get("schedule")
    if isinstance(schedule, dict):
        event.intervals = [s for s in map(_text, _list(schedule.get("intervals"))) if s]
        event.recurring = [
            {k: _scalar(v) for k, v in r.items()}
            for r in _list(schedule.get("recurring_schedules"))
            if isinstance(r, dict)
        ]
        event.exceptions = [s for s in map(_text, _list(schedule.get("exceptions"))) if s]
    for attachment in _list(raw.get("attachments")):
        if isinstance(attachment, dict):
            resource = _resource(
                _text(attachment.get("url")),
                _text(attachment.get("title")),
                _text(attachment.get("type")),
                _scalar(attachment.get("length")),
            )
            if resource is not None:
                event.attachments.append(resource)
    for key, value in raw.items():
        if key.startswith("+"):
            event.extensions.append((key, _scalar(value)))
    return event


def _json_geography(event: _Event, geography: object) -> None:
    """GeoJSON (``[lon, lat]`` order) to (lat, lon) points, lines and rings."""
    if geography is None:
        return
    try:
        if not isinstance(geography, dict):
            raise ValueError("geography is not a GeoJSON object")
        kind = geography.get("type")
        coordinates = geography.get("coordinates")
        if kind == "GeometryCollection":
            for part in _list(geography.get("geometries")):
                _json_geography(event, part)
            return
        if kind == "Point":
            event.points.append(_lon_lat(coordinates))
        elif kind == "MultiPoint":
            event.points.extend(_lon_lat(c) for c in _list(coordinates))
        elif kind == "LineString":
            event.lines.append([_lon_lat(c) for c in _list(coordinates)])
        elif kind == "MultiLineString":
            event.lines.extend([_lon_lat(c) for c in _list(line)] for line in _list(coordinates))
        elif kind == "Polygon":
            event.rings.append([_lon_lat(c) for c in _list(_list(coordinates)[0])])
        elif kind == "MultiPolygon":
            event.rings.extend([_lon_lat(c) for c in _list(p[0])] for p in _list(coordinates))
        else:
            raise ValueError(f"geography type {kind!r} is not one this kind reads")
    except (ValueError, TypeError, IndexError) as exc:
        event.geometry_problem = str(exc)


def _lon_lat(pair: object) -> Point:
    if not isinstance(pair, list | tuple) or len(pair) < 2:
        raise ValueError(f"{pair!r} is not a [longitude, latitude] position")
    lon, lat = float(pair[0]), float(pair[1])
    return geometry.check_point(lat, lon)


def _road_parameters(road: dict[str, Any]) -> list[tuple[str, str]]:
    names = (
        ("name", "road"),
        ("from", "from"),
        ("to", "to"),
        ("direction", "direction"),
        ("state", "state"),
        ("lanes_open", "lanes_open"),
        ("lanes_closed", "lanes_closed"),
    )
    values = [(name, _scalar(road.get(key))) for key, name in names if road.get(key) is not None]
    for restriction in _list(road.get("restrictions")):
        if isinstance(restriction, dict):
            kind = _scalar(restriction.get("restriction_type"))
            value = _scalar(restriction.get("value"))
            values.append(("restriction", f"{kind} {value}".strip()))
    return [(name, value) for name, value in values if value]


# --------------------------------------------------------------------------- XML


def _read_xml(body: bytes, feed: FeedConfig, settings: _Settings) -> _Document:
    try:
        loaded = load_xml(body, strict=False, max_bytes=feed.max_bytes, max_depth=XML_MAX_DEPTH)
    except CapError as exc:
        raise FeedError(feed.name, exc.reason) from None
    root = loaded.root
    namespace, name = _split(root.tag)
    if (namespace or "").startswith(DATEX2_NAMESPACE_PREFIX) or name == "d2LogicalModel":
        publication = root.find(".//{*}payloadPublication")
        kind = (
            publication.get("{http://www.w3.org/2001/XMLSchema-instance}type")
            if publication is not None
            else None
        )
        raise FeedError(
            feed.name,
            f"unsupported format (DATEX II{' ' + kind if kind else ''}): this is a European"
            " DATEX II publication, not Open511; no feed kind reads DATEX II yet",
        )
    if name == "schedule":
        raise _not_events(
            feed, "it is an Open511 <schedule> fragment, not a whole <open511> document"
        )
    if name == "RoadEvent":
        raise _not_events(feed, "it is a prototype (pre-v1) <RoadEvent>, not Open511 v1")
    language = settings.language or root.get(_XML_LANG) or DEFAULT_LANGUAGE
    base = root.get(_XML_BASE)
    warnings = [f"{w}" for w in loaded.warnings]
    if name == "open511":
        events_element = _child(root, "events")
        if events_element is None:
            present = {_split(child.tag)[1] for child in root}
            for key, what in _NOT_EVENTS.items():
                if key in present:
                    raise _not_events(feed, f"it is {what}")
            raise _not_events(feed, "the <open511> document has no <events>")
        elements = [e for e in events_element if _is(e, "event")]
        pagination = _child(root, "pagination")
        if pagination is not None:
            for link in pagination:
                if _is(link, "link") and link.get("rel") == "next":
                    warnings.extend(_pagination_warning({"next_url": link.get("href")}))
    elif name == "events":
        elements = [e for e in root if _is(e, "event")]
    elif name == "event":
        elements = [root]
    else:
        raise FeedError(feed.name, f"not an Open511 document: its root element is <{name}>")
    events = [_xml_event(f"event {n}", e, base) for n, e in enumerate(elements, 1)]
    return _Document(events, language, warnings)


def _split(tag: object) -> tuple[str | None, str]:
    if not isinstance(tag, str):
        return None, ""
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return None, tag


def _is(element: etree._Element, local: str) -> bool:
    namespace, name = _split(element.tag)
    return namespace is None and name == local


def _child(element: etree._Element, local: str) -> etree._Element | None:
    return next((c for c in element if _is(c, local)), None)


def _children(element: etree._Element | None, local: str) -> Iterator[etree._Element]:
    if element is None:
        return iter(())
    return (c for c in element if _is(c, local))


def _element_text(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    words = etree.tostring(element, method="text", encoding="unicode", with_tail=False)
    text = " ".join(words.split())
    return text or None


def _language_of(element: etree._Element) -> str | None:
    for node in (element, *element.iterancestors()):
        lang = node.get(_XML_LANG)
        if lang:
            return lang
    return None


def _xml_event(where: str, element: etree._Element, base: str | None) -> _Event:
    event = _Event(where=where, raw=etree.tostring(element, encoding="utf-8"))
    parent = element.getparent()
    document_language = _language_of(parent) if parent is not None else None
    for child in element:
        tag: object = child.tag
        if not isinstance(tag, str):
            continue  # comments, processing instructions
        namespace, name = _split(tag)
        if namespace is not None or name not in _XML_EVENT_TAGS:
            value = _element_text(child)
            if value:
                event.extensions.append((name, value))
            continue
        text = _element_text(child)
        if name in ("headline", "description", "detour") and text:
            lang = _language_of(child)
            key = None if lang in (None, document_language) else lang
            {"headline": event.headlines, "description": event.descriptions}.get(
                name, event.detours
            ).setdefault(key, text)
        elif name == "link":
            href = child.get("href")
            if child.get("rel") == "self" and href:
                event.url = urljoin(base, href) if base else href
            elif child.get("rel") == "jurisdiction" and href:
                event.jurisdiction_url = urljoin(base, href) if base else href
        elif name in ("id", "status", "event_type", "severity", "created", "updated"):
            setattr(event, name, text)
        elif name == "event_subtypes":
            event.event_subtypes = [t for t in map(_element_text, child) if t]
        elif name == "areas":
            for area in _children(child, "area"):
                event.areas.append(
                    (_element_text(_child(area, "name")), _element_text(_child(area, "id")))
                )
        elif name == "geography":
            _xml_geography(event, child)
        elif name == "roads":
            for road in _children(child, "road"):
                event.roads.append(_xml_road(road))
        elif name == "schedule":
            _xml_schedule(event, child)
        elif name == "attachments":
            for link in _children(child, "link"):
                href = link.get("href")
                resource = _resource(
                    urljoin(base, href) if base and href else href,
                    link.get("title"),
                    link.get("type"),
                    link.get("length"),
                )
                if resource is not None:
                    event.attachments.append(resource)
    return event


def _xml_road(road: etree._Element) -> list[tuple[str, str]]:
    values: dict[str, Any] = {}
    for child in road:
        tag: object = child.tag
        if not isinstance(tag, str):
            continue
        _, name = _split(tag)
        if name == "restrictions":
            values["restrictions"] = [
                {
                    "restriction_type": _element_text(_child(r, "restriction_type")),
                    "value": _element_text(_child(r, "value")),
                }
                for r in _children(child, "restriction")
            ]
        elif name != "impacted_systems":
            values.setdefault(name, _element_text(child))
    return _road_parameters(values)


def _xml_schedule(event: _Event, schedule: etree._Element) -> None:
    event.intervals = [
        t for t in map(_element_text, _children(_child(schedule, "intervals"), "interval")) if t
    ]
    for recurring in _children(_child(schedule, "recurring_schedules"), "recurring_schedule"):
        event.recurring.append(
            {
                _split(c.tag)[1]: _element_text(c) or ""
                for c in recurring
                if isinstance(c.tag, str) and _split(c.tag)[1] != "days"
            }
        )
    event.exceptions = [
        t for t in map(_element_text, _children(_child(schedule, "exceptions"), "exception")) if t
    ]


def _xml_geography(event: _Event, geography: etree._Element) -> None:
    """GML: ``pos``/``posList`` in EPSG:4326 order, latitude first (as Open511's examples)."""
    try:
        found = False
        for element in geography.iter(f"{{{GML_NAMESPACE}}}*"):
            _, name = _split(element.tag)
            if name == "Point":
                event.points.extend(_gml_positions(element))
                found = True
            elif name in ("LineString", "LineStringSegment"):
                event.lines.append(_gml_positions(element))
                found = True
            elif name == "exterior":
                event.rings.append(_gml_positions(element))
                found = True
        if not found:
            raise ValueError("geography holds no gml:Point, gml:LineString or gml:Polygon")
    except ValueError as exc:
        event.geometry_problem = str(exc)


def _gml_positions(element: etree._Element) -> list[Point]:
    numbers: list[float] = []
    for node in element.iter(f"{{{GML_NAMESPACE}}}pos", f"{{{GML_NAMESPACE}}}posList"):
        numbers.extend(float(token) for token in (node.text or "").split())
    if not numbers or len(numbers) % 2:
        raise ValueError("a GML position list does not hold latitude-longitude pairs")
    return [geometry.check_point(numbers[i], numbers[i + 1]) for i in range(0, len(numbers), 2)]


# --------------------------------------------------------------------------- helpers


def _text(value: object) -> str | None:
    if isinstance(value, str):
        stripped = value.strip()
        return stripped or None
    return None


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _scalar(value: object) -> str:
    """A JSON value as parameter text: numbers as written, structures as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    if isinstance(value, str):
        return value.strip()
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _resource(
    url: str | None, title: str | None, mime: str | None, length: str | None
) -> Resource | None:
    if not url or not re.match(r"https?://\S+$", url):
        return None
    size = int(length) if length and length.isdigit() else None
    return Resource(
        resource_desc=title or "attachment",
        mime_type=mime or "application/octet-stream",
        size=size,
        uri=url,
    )


# --------------------------------------------------------------------------- alert


def _item(event: _Event, language: str, settings: _Settings, feed: FeedConfig) -> FeedItem:
    if event.problem:
        raise _EventError(event.problem)
    if not event.id:
        raise _EventError("the event has no id; an Open511 event must have one")
    status = (event.status or "").upper()
    if status not in ("ACTIVE", "ARCHIVED"):
        raise _EventError(f"status {event.status!r} is neither ACTIVE nor ARCHIVED")
    clock = _Clock(settings.zone)
    warnings: list[str] = []
    created = clock.read(event.created, "created") if event.created else None
    updated = clock.read(event.updated, "updated") if event.updated else None
    sent = updated or created
    if sent is None:
        raise _EventError(
            "the event has neither updated nor created time; it was not used, because"
            " stamping it with the time of reading would make every poll a new alert"
        )
    if status == "ARCHIVED":
        msg_type = MsgType.CANCEL
    elif created is not None and updated is not None and updated > created:
        msg_type = MsgType.UPDATE
    else:
        msg_type = MsgType.ALERT
    effective, expires, open_ended, schedule_text = _schedule(event, clock)
    if expires is not None and expires < sent:
        warnings.append(
            f"{event.where} ({event.id}): its schedule ended ({expires.isoformat()}) before"
            f" it was sent ({sent.isoformat()})"
        )
    jurisdiction = _jurisdiction(event, settings)
    sender = settings.sender or (jurisdiction if _CAP_SENDER.fullmatch(jurisdiction) else feed.name)
    severity = SEVERITIES.get((event.severity or "").upper())
    if severity is None:
        warnings.append(
            f"{event.where} ({event.id}): severity {event.severity!r} is not MINOR, MODERATE"
            " or MAJOR; it is Unknown"
        )
        severity = Severity.UNKNOWN
    if event.event_type and event.event_type.upper() not in EVENT_TYPES:
        warnings.append(
            f"{event.where} ({event.id}): event_type {event.event_type[:60]!r} is not an"
            " Open511 type"
        )
    area = _area(event)  # before the warning below: it may find the geography unusable
    if event.geometry_problem:
        warnings.append(f"{event.where} ({event.id}): geography ignored: {event.geometry_problem}")
    if status == "ARCHIVED":
        urgency, certainty = Urgency.PAST, Certainty.OBSERVED
    elif effective is not None and effective > sent:
        urgency, certainty = Urgency.FUTURE, Certainty.LIKELY
    else:
        urgency, certainty = Urgency.IMMEDIATE, Certainty.OBSERVED
    parameters = _parameters(event, schedule_text)
    infos = tuple(
        _info(
            event,
            lang_key,
            lang,
            urgency=urgency,
            severity=severity,
            certainty=certainty,
            status=status,
            effective=effective,
            expires=expires,
            area=area,
            parameters=parameters,
        )
        for lang_key, lang in _languages(event, language)
    )
    if clock.guessed_utc:
        warnings.append(
            f"{event.where} ({event.id}): times without a zone were read as UTC; set"
            " mapping.timezone to the jurisdiction's time zone"
        )
    alert = Alert(
        identifier=_identifier(event.id, sent),
        sender=sender,
        sent=sent,
        status=Status.ACTUAL,
        msg_type=msg_type,
        scope=Scope.PUBLIC,
        note=_OPEN_ENDED_NOTE if open_ended and status == "ACTIVE" else None,
        infos=infos,
    )
    try:
        to_cap_xml(alert)
    except ValueError as exc:
        raise _EventError(f"the event cannot be written as CAP: {exc}") from None
    return FeedItem(
        alert=alert,
        raw=event.raw,
        warnings=tuple(warnings),
        thread=f"open511:{_thread_id(event.id, jurisdiction)}",
    )


def _jurisdiction(event: _Event, settings: _Settings) -> str:
    if event.id and "/" in event.id:
        return event.id.split("/", 1)[0]
    if settings.jurisdiction:
        return settings.jurisdiction
    host = urlsplit(event.jurisdiction_url or "").hostname
    return host or "unknown"


def _thread_id(event_id: str, jurisdiction: str) -> str:
    return event_id if "/" in event_id else f"{jurisdiction}/{event_id}"


def _identifier(event_id: str, sent: datetime) -> str:
    stamp = sent.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    token = event_id
    if not _SAFE_ID.fullmatch(token):
        token = "h" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]
    return f"open511-{token}-{stamp}"


def _languages(event: _Event, default: str) -> list[tuple[str | None, str]]:
    """(key in the texts, CAP language) pairs: the document's language first."""
    others = [
        key
        for key in dict.fromkeys([*event.headlines, *event.descriptions])
        if key is not None and is_language(key)
    ]
    return [(None, default), *((key, key) for key in others)]


def _label(event_type: str | None, language: str) -> str:
    names = EVENT_TYPES.get((event_type or "").upper(), _UNKNOWN_EVENT)
    return names.get(language.split("-")[0].lower(), names["en"])


def _info(
    event: _Event,
    key: str | None,
    language: str,
    *,
    urgency: Urgency,
    severity: Severity,
    certainty: Certainty,
    status: str,
    effective: datetime | None,
    expires: datetime | None,
    area: Area | None,
    parameters: tuple[NamedValue, ...],
) -> Info:
    label = _label(event.event_type, language)
    headline = event.headlines.get(key) or event.headlines.get(None)
    description = event.descriptions.get(key) or event.descriptions.get(None)
    if not headline or headline.upper() == (event.event_type or "").upper():
        # DriveBC's headline is the bare event type; the description's first sentence says more.
        first = description.split(". ", 1)[0].rstrip(".") if description else None
        headline = f"{label}: {first}" if first else label
    if len(headline) > HEADLINE_LIMIT:
        headline = headline[: HEADLINE_LIMIT - 1].rsplit(" ", 1)[0] + "…"
    event_type = (event.event_type or "").upper()
    codes = [NamedValue("open511_event_type", event_type)] if event_type in EVENT_TYPES else []
    codes += [NamedValue("open511_event_subtype", s) for s in event.event_subtypes]
    closed = any(("state", "CLOSED") in road for road in event.roads)
    if status == "ARCHIVED":
        responses: tuple[ResponseType, ...] = (ResponseType.ALL_CLEAR,)
    elif closed or severity is Severity.SEVERE:
        responses = (ResponseType.AVOID,)
    else:
        responses = (ResponseType.MONITOR,)
    web = event.url if event.url and re.match(r"https?://\S+$", event.url) else None
    return Info(
        categories=(Category.TRANSPORT,),
        event=label,
        urgency=urgency,
        severity=severity,
        certainty=certainty,
        language=language,
        response_types=responses,
        event_codes=tuple(codes),
        effective=effective,
        expires=expires,
        headline=headline,
        description=description,
        instruction=event.detours.get(key) or event.detours.get(None),
        web=web,
        parameters=parameters,
        resources=tuple(event.attachments),
        areas=(area,) if area is not None else (),
    )


def _parameters(event: _Event, schedule_text: str | None) -> tuple[NamedValue, ...]:
    values = [pair for road in event.roads for pair in road]
    if schedule_text:
        values.append(("schedule", schedule_text))
    values.extend(event.extensions)
    return tuple(NamedValue(name, value) for name, value in values if value)


def _area(event: _Event) -> Area | None:
    polygons: list[Polygon] = []
    circles: list[Circle] = []
    try:
        circles.extend(geometry.point_circle(point) for point in event.points)
        for line in event.lines:
            corridor, ends = geometry.line_corridor(line)
            polygons.extend(corridor)
            circles.extend(ends)
        polygons.extend(geometry.ring(points) for points in event.rings)
    except ValueError as exc:
        event.geometry_problem = str(exc)
        polygons, circles = [], []
    names: list[str] = []
    for road in event.roads:
        values = dict(road)
        name = values.get("road")
        if not name:
            continue
        stretch = " – ".join(v for v in (values.get("from"), values.get("to")) if v)
        names.append(f"{name} ({stretch})" if stretch else name)
    names.extend(name for name, _ in event.areas if name)
    names = list(dict.fromkeys(names))
    geocodes = tuple(NamedValue("open511_area", area_id) for _, area_id in event.areas if area_id)
    if not (polygons or circles or names or geocodes):
        return None
    return Area(
        area_desc="; ".join(names) or f"Open511 event {event.id}",
        polygons=tuple(polygons),
        circles=tuple(circles),
        geocodes=geocodes,
    )


def _schedule(
    event: _Event, clock: _Clock
) -> tuple[datetime | None, datetime | None, bool, str | None]:
    """(effective, expires, open-ended?, summary) from intervals and recurring schedules."""
    starts: list[datetime] = []
    ends: list[datetime] = []
    open_ended = False
    summary: list[str] = []
    for interval in event.intervals:
        start_text, slash, end_text = interval.partition("/")
        if not slash or not start_text.strip():
            raise _EventError(f"schedule interval {interval!r} is not 'start/end' or 'start/'")
        starts.append(clock.read(start_text, "schedule interval start"))
        if end_text.strip():
            ends.append(clock.read(end_text, "schedule interval end"))
        else:
            open_ended = True
        summary.append(interval)
    for recurring in event.recurring:
        start, end = _recurring_bounds(recurring, clock)
        starts.append(start)
        if end is None:
            open_ended = True
        else:
            ends.append(end)
        days = recurring.get("days")
        summary.append(
            f"{recurring.get('start_date', '')}..{recurring.get('end_date', '')}"
            f" {recurring.get('daily_start_time', '')}-{recurring.get('daily_end_time', '')}"
            + (f" days {days}" if days else "")
        )
    summary.extend(f"except {exception}" for exception in event.exceptions)
    effective = min(starts) if starts else None
    expires = max(ends) if ends and not open_ended else None
    if not starts:
        open_ended = False
    return effective, expires, open_ended, "; ".join(summary) or None


def _recurring_bounds(recurring: dict[str, str], clock: _Clock) -> tuple[datetime, datetime | None]:
    """The first start and last end of a recurring schedule, local times made aware."""
    start_day = _day(recurring.get("start_date"), "recurring schedule start_date")
    if start_day is None:
        raise _EventError("a recurring schedule has no start_date")
    start_at = _clock_time(recurring.get("daily_start_time"), "daily_start_time") or time(0)
    start = datetime.combine(start_day, start_at).replace(tzinfo=clock.local())
    end_day = _day(recurring.get("end_date"), "recurring schedule end_date")
    if end_day is None:
        return start, None
    end_at = _clock_time(recurring.get("daily_end_time"), "daily_end_time")
    if end_at is None:
        end = datetime.combine(end_day + timedelta(days=1), time(0))
    elif end_at <= start_at:
        end = datetime.combine(end_day + timedelta(days=1), end_at)  # an overnight window
    else:
        end = datetime.combine(end_day, end_at)
    return start, end.replace(tzinfo=clock.local())


def _day(text: str | None, what: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise _EventError(f"{what} {text!r} is not a YYYY-MM-DD date") from None


def _clock_time(text: str | None, what: str) -> time | None:
    if not text:
        return None
    match = _TIME_OF_DAY.fullmatch(text.strip())
    if match is None:
        raise _EventError(f"{what} {text!r} is not a HH:MM time")
    hour, minute, second = int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)
    if hour == 24 and minute == 0 and second == 0:
        return time(23, 59, 59)
    try:
        return time(hour, minute, second)
    except ValueError:
        raise _EventError(f"{what} {text!r} is not a time of day") from None
