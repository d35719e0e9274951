"""api.weather.gov alerts as GeoJSON(-LD): a ``cap-index`` variant without XML.

The NWS API answers ``/alerts/active`` (and ``/alerts/active/zone/{zone}``,
``/alerts/active/area/{area}``...) with a FeatureCollection whose features
carry the CAP fields as properties: ``id`` (the CAP identifier), ``sender``,
``sent``, ``status``, ``messageType``, ``category``, ``severity``,
``certainty``, ``urgency``, ``event``, ``headline``, ``description``,
``instruction``, ``response``, ``areaDesc``, ``geocode.UGC`` and
``geocode.SAME``, ``references`` (objects with identifier, sender, sent),
``parameters`` (name → list of values), ``eventCode`` and the times. Each
feature becomes one alert with one English info and one area, so no second
request per alert is needed. The API publishes only public alerts and says
nothing of scope, so scope is Public. ``ends`` has no CAP element; it is
kept as the ``eventEndingTime`` parameter NWS itself uses in CAP, unless
that parameter is already there. A Polygon or MultiPolygon geometry becomes
CAP polygons (GeoJSON's ``[lon, lat]`` turned into CAP's ``lat,lon``); the
API's ``null`` geometry means the zones in the geocodes describe the area.

A collection is the issuer's complete list when it is an active-alert
response (its title starts with "current watches, warnings, and advisories"
or the feed URL asks for ``/alerts/active``), unless ``mapping.complete``
says otherwise. A feature that cannot be read is an error line; the others
still count. The JSON-LD form (``@graph`` instead of ``features``) is read
the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import urlsplit

from alertcast.cap_values import collapse, read_datetime
from alertcast.config import FeedConfig
from alertcast.domain import (
    Alert,
    AlertKey,
    Area,
    Category,
    Certainty,
    Info,
    MsgType,
    NamedValue,
    Point,
    Polygon,
    ResponseType,
    Scope,
    Severity,
    Status,
    Urgency,
)
from alertcast.errors import FeedError
from alertcast.feeds.base import FeedBatch, FeedItem

_E = TypeVar("_E", bound=StrEnum)
_ACTIVE_TITLE = "current watches, warnings, and advisories"
_UTF8_BOM = b"\xef\xbb\xbf"


def looks_like_json(data: bytes) -> bool:
    """The document starts like JSON (an object or an array), after any BOM and whitespace."""
    head = data[:64].removeprefix(_UTF8_BOM).lstrip()
    return head[:1] in (b"{", b"[")


def is_nws_alert_collection(document: object) -> bool:
    """``document`` (parsed JSON) is an api.weather.gov alert collection or single alert."""
    if not isinstance(document, dict):
        return False
    features = _features(document)
    if features is None:
        return False
    if not features:
        return document.get("type") == "FeatureCollection" and "@context" in document
    first = features[0]
    return isinstance(first, dict) and _looks_like_alert(first)


def _looks_like_alert(properties: Mapping[str, Any]) -> bool:
    return properties.get("@type") == "wx:Alert" or {"messageType", "sent", "sender"} <= set(
        properties
    )


def _features(document: Mapping[str, Any]) -> list[Any] | None:
    """The alert property objects of a FeatureCollection, a single Feature or a JSON-LD graph."""
    if isinstance(document.get("features"), list):
        return [
            f.get("properties") if isinstance(f, dict) and "properties" in f else f
            for f in document["features"]
        ]
    if document.get("type") == "Feature" and isinstance(document.get("properties"), dict):
        return [document["properties"]]
    if isinstance(document.get("@graph"), list):
        return list(document["@graph"])
    return None


def parse(data: bytes, feed: FeedConfig, *, complete: bool | None) -> FeedBatch:
    """The batch for an api.weather.gov alert response; FeedError when it is not one."""
    size = len(data)
    if size > feed.max_bytes:
        raise FeedError(
            feed.name, f"the document is {size:,} bytes, more than the limit of {feed.max_bytes:,}"
        )
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise FeedError(feed.name, f"the document is not valid JSON: {exc}") from None
    if not is_nws_alert_collection(document):
        raise FeedError(
            feed.name,
            "this JSON is not an api.weather.gov alert collection (a GeoJSON FeatureCollection"
            " of CAP alerts); no other JSON index is understood as a cap-index",
        )
    features = _features(document) or []
    geometries = _geometries(document)
    items: list[FeedItem] = []
    errors: list[str] = []
    for number, properties in enumerate(features, start=1):
        try:
            if not isinstance(properties, dict):
                raise ValueError("the feature has no properties object")
            alert, warnings = _alert(properties, geometries.get(number - 1))
        except ValueError as exc:
            errors.append(f"entry {number}: {exc}")
            continue
        raw = json.dumps(properties, ensure_ascii=False, sort_keys=True).encode("utf-8")
        items.append(
            FeedItem(alert=alert, raw=raw, warnings=tuple(f"entry {number}: {w}" for w in warnings))
        )
    if complete is None:
        title = str(document.get("title", "")).lower()
        path = urlsplit(feed.url or "").path
        active = title.startswith(_ACTIVE_TITLE) or path.startswith("/alerts/active")
        complete = active and "features" in document  # a single Feature is not a list
    batch_warnings: list[str] = []
    if complete and errors:
        batch_warnings.append(
            f"{len(errors)} features could not be read, so this collection is not taken"
            " as the complete list of active alerts this time"
        )
        complete = False
    return FeedBatch(
        items=tuple(items),
        errors=tuple(errors),
        warnings=tuple(batch_warnings),
        listed=tuple(dict.fromkeys(str(item.alert.key) for item in items)),
        complete=complete,
    )


def _geometries(document: Mapping[str, Any]) -> dict[int, Any]:
    features = document.get("features")
    if not isinstance(features, list):
        return {}
    return {
        n: f.get("geometry")
        for n, f in enumerate(features)
        if isinstance(f, dict) and f.get("geometry")
    }


def _alert(p: Mapping[str, Any], geometry: Any) -> tuple[Alert, list[str]]:
    warnings: list[str] = []
    identifier = _required_text(p, "id")
    sender = _required_text(p, "sender")
    sent = _required_time(p, "sent", warnings)
    status = _enum(Status, _required_text(p, "status"), "status")
    msg_type = _enum(MsgType, _required_text(p, "messageType"), "messageType")
    references = tuple(_references(p.get("references"), warnings))
    info = _info(p, geometry, warnings) if p.get("event") else None
    if info is None and msg_type not in (MsgType.CANCEL, MsgType.ACK, MsgType.ERROR):
        raise ValueError("no event: the alert has nothing to tell")
    alert = Alert(
        identifier=identifier,
        sender=sender,
        sent=sent,
        status=status,
        msg_type=msg_type,
        scope=Scope.PUBLIC,
        references=references,
        infos=(info,) if info is not None else (),
    )
    return alert, warnings


def _info(p: Mapping[str, Any], geometry: Any, warnings: list[str]) -> Info:
    category = _optional_enum(Category, p.get("category"), "category", warnings)
    response = _optional_enum(ResponseType, p.get("response"), "response", warnings)
    parameters = list(_pairs(p.get("parameters"), "parameters", warnings))
    ends = _time(p, "ends", warnings)
    if ends is not None and not any(n.name == "eventEndingTime" for n in parameters):
        parameters.append(NamedValue("eventEndingTime", str(p["ends"]).strip()))
    geocodes = tuple(_pairs(p.get("geocode"), "geocode", warnings))
    polygons = tuple(_polygons(geometry, warnings))
    area_desc = _text(p.get("areaDesc"))
    areas: tuple[Area, ...] = ()
    if area_desc or geocodes or polygons:
        if not area_desc:
            warnings.append("areaDesc: missing; the area is described by its codes only")
        areas = (Area(area_desc=area_desc or "", polygons=polygons, geocodes=geocodes),)
    return Info(
        categories=(category,) if category else (Category.OTHER,),
        event=_text(p.get("event")) or "",
        urgency=_optional_enum(Urgency, p.get("urgency"), "urgency", warnings) or Urgency.UNKNOWN,
        severity=_optional_enum(Severity, p.get("severity"), "severity", warnings)
        or Severity.UNKNOWN,
        certainty=_optional_enum(Certainty, p.get("certainty"), "certainty", warnings)
        or Certainty.UNKNOWN,
        language="en-US",
        response_types=(response,) if response else (),
        event_codes=tuple(_pairs(p.get("eventCode"), "eventCode", warnings)),
        effective=_time(p, "effective", warnings),
        onset=_time(p, "onset", warnings),
        expires=_time(p, "expires", warnings),
        sender_name=_text(p.get("senderName")),
        headline=_text(p.get("headline")),
        description=_block(p.get("description")),
        instruction=_block(p.get("instruction")),
        parameters=tuple(parameters),
        areas=areas,
    )


def _text(value: Any) -> str | None:
    """A one-line value: whitespace collapsed, None when empty or not a string."""
    if not isinstance(value, str):
        return None
    return collapse(value) or None


def _block(value: Any) -> str | None:
    """Running text (description, instruction): kept as written, None when empty."""
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()


def _required_text(p: Mapping[str, Any], key: str) -> str:
    value = _text(p.get(key))
    if value is None:
        raise ValueError(f"{key}: required but missing")
    return value


def _time(
    p: Mapping[str, Any], key: str, warnings: list[str], *, required: bool = False
) -> datetime | None:
    value = p.get(key)
    if value is None or value == "":
        if required:
            raise ValueError(f"{key}: required but missing")
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key}: {value!r} is not a date-time")
    parsed, problem = read_datetime(value)
    if parsed is None:
        if required:
            raise ValueError(f"{key}: {problem}")
        warnings.append(f"{key}: {problem}; ignored")
        return None
    if problem:
        warnings.append(f"{key}: {problem}")
    return parsed


def _required_time(p: Mapping[str, Any], key: str, warnings: list[str]) -> datetime:
    value = _time(p, key, warnings, required=True)
    if value is None:  # _time raises instead; this keeps the type exact
        raise ValueError(f"{key}: required but missing")
    return value


def _enum(kind: type[_E], text: str, key: str) -> _E:
    for member in kind:
        if member.value.lower() == text.lower():
            return member
    raise ValueError(f"{key}: {text!r} is not one of {', '.join(m.value for m in kind)}")


def _optional_enum(kind: type[_E], value: Any, key: str, warnings: list[str]) -> _E | None:
    text = _text(value)
    if text is None:
        return None
    try:
        return _enum(kind, text, key)
    except ValueError as exc:
        warnings.append(f"{exc}; ignored")
        return None


def _pairs(value: Any, key: str, warnings: list[str]) -> list[NamedValue]:
    """``{"UGC": ["ORZ001", ...]}`` → one NamedValue per value, in order."""
    if value is None:
        return []
    if not isinstance(value, dict):
        warnings.append(f"{key}: not an object; ignored")
        return []
    pairs: list[NamedValue] = []
    for name, values in value.items():
        for item in values if isinstance(values, list) else [values]:
            if isinstance(item, str | int | float) and not isinstance(item, bool):
                pairs.append(NamedValue(str(name), str(item)))
    return pairs


def _references(value: Any, warnings: list[str]) -> list[AlertKey]:
    if not value:
        return []
    if not isinstance(value, list):
        warnings.append("references: not a list; ignored")
        return []
    keys: list[AlertKey] = []
    for n, ref in enumerate(value, start=1):
        try:
            if not isinstance(ref, dict):
                raise ValueError("not an object")
            sent = _required_time(ref, "sent", warnings)
            sender, identifier = _required_text(ref, "sender"), _required_text(ref, "identifier")
            keys.append(AlertKey(sender, identifier, sent))
        except ValueError as exc:
            warnings.append(f"references[{n}]: {exc}; ignored")
    return keys


def _polygons(geometry: Any, warnings: list[str]) -> list[Polygon]:
    if not isinstance(geometry, dict):
        return []
    kind = geometry.get("type")
    coordinates = geometry.get("coordinates")
    rings: list[Any]
    if kind == "Polygon" and isinstance(coordinates, list):
        rings = coordinates[:1]
    elif kind == "MultiPolygon" and isinstance(coordinates, list):
        rings = [polygon[0] for polygon in coordinates if isinstance(polygon, list) and polygon]
    else:
        warnings.append(f"geometry: a {kind} cannot be a CAP area; ignored")
        return []
    polygons: list[Polygon] = []
    for ring in rings:
        try:
            points: tuple[Point, ...] = tuple((float(lat), float(lon)) for lon, lat, *_ in ring)
        except (TypeError, ValueError):
            warnings.append("geometry: a ring is not a list of [lon, lat] positions; ignored")
            continue
        if len(points) >= 4 and points[0] == points[-1]:
            polygons.append(Polygon(points))
        else:
            warnings.append("geometry: a ring is not closed or has fewer than 4 points; ignored")
    return polygons
