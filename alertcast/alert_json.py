"""The JSON form of an alert: printed by ``alertcast parse``, kept by the store, taken by the API.

One shape serves all three so that an alert can travel from a feed to the
database to an operator's screen and back without a lossy translation in
between. Keys are the snake_case of the CAP element names; repeated CAP
elements are JSON lists. ``alert_from_json(alert_to_json(a)) == a`` for every
alert whose datetimes carry an offset.

Parameters appear twice, on purpose:

* ``parameters`` is the convenient view, an object ``name → value``; when a
  name occurs more than once its value is the list of its values, in
  document order. Templates and people read this one.
* ``parameter_list`` is the exact view, ``[{"name": ..., "value": ...}]`` in
  document order. Order across different names and repeats are only
  recoverable from it, so ``alert_from_json`` reads it when present (and
  refuses input where the two views disagree, since one of them was edited
  by mistake). A client that only sends ``parameters`` gets them in key order.

``references`` are ``"sender,identifier,sent"`` strings, the CAP form, with
``sent`` written in full ISO 8601 so that nothing is rounded away.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from alertcast.domain import (
    Alert,
    AlertKey,
    Area,
    Category,
    Certainty,
    Circle,
    Info,
    MsgType,
    NamedValue,
    Polygon,
    Resource,
    ResponseType,
    Scope,
    Severity,
    Status,
    Urgency,
    parse_datetime,
)

__all__ = ["alert_from_json", "alert_to_json"]

_E = TypeVar("_E", bound=StrEnum)
_T = TypeVar("_T")

_ALERT_KEYS = frozenset(
    {
        "source_file",
        "identifier",
        "sender",
        "sent",
        "status",
        "msg_type",
        "scope",
        "source",
        "restriction",
        "addresses",
        "codes",
        "note",
        "references",
        "incidents",
        "warnings",
        "notices",
        "infos",
    }
)
_INFO_KEYS = frozenset(
    {
        "language",
        "category",
        "event",
        "response_type",
        "urgency",
        "severity",
        "certainty",
        "audience",
        "event_codes",
        "effective",
        "onset",
        "expires",
        "sender_name",
        "headline",
        "description",
        "instruction",
        "web",
        "contact",
        "parameters",
        "parameter_list",
        "resources",
        "areas",
    }
)
_AREA_KEYS = frozenset({"area_desc", "polygons", "circles", "geocodes", "altitude", "ceiling"})
_RESOURCE_KEYS = frozenset({"resource_desc", "mime_type", "size", "uri", "deref_uri", "digest"})
_CIRCLE_KEYS = frozenset({"lat", "lon", "radius_km"})
_PAIR_KEYS = frozenset({"name", "value"})


# --------------------------------------------------------------------------- to JSON


def alert_to_json(
    alert: Alert,
    *,
    source_file: str | None = None,
    warnings: Sequence[str] = (),
    notices: Sequence[str] = (),
) -> dict[str, Any]:
    """The complete JSON object for ``alert``; ``json.dumps`` accepts it as is.

    ``source_file``, ``warnings`` and ``notices`` describe where the alert came
    from and what was repaired while reading it; they are not part of the
    alert and ``alert_from_json`` ignores them.

    Raises ValueError for an alert that this shape cannot carry exactly: a
    naive datetime (CAP times always have an offset) or a reference whose
    sender or identifier would make the ``sender,identifier,sent`` form
    ambiguous.
    """
    return {
        "source_file": source_file,
        "identifier": alert.identifier,
        "sender": alert.sender,
        "sent": _datetime_out(alert.sent, "sent"),
        "status": alert.status.value,
        "msg_type": alert.msg_type.value,
        "scope": alert.scope.value,
        "source": alert.source,
        "restriction": alert.restriction,
        "addresses": list(alert.addresses),
        "codes": list(alert.codes),
        "note": alert.note,
        "references": [
            _reference_out(ref, f"references[{n}]") for n, ref in enumerate(alert.references)
        ],
        "incidents": list(alert.incidents),
        "warnings": list(warnings),
        "notices": list(notices),
        "infos": [_info_out(info, f"infos[{n}]") for n, info in enumerate(alert.infos)],
    }


def _info_out(info: Info, where: str) -> dict[str, Any]:
    return {
        "language": info.language,
        "category": [c.value for c in info.categories],
        "event": info.event,
        "response_type": [r.value for r in info.response_types],
        "urgency": info.urgency.value,
        "severity": info.severity.value,
        "certainty": info.certainty.value,
        "audience": info.audience,
        "event_codes": [_pair_out(p) for p in info.event_codes],
        "effective": _optional_datetime_out(info.effective, f"{where}.effective"),
        "onset": _optional_datetime_out(info.onset, f"{where}.onset"),
        "expires": _optional_datetime_out(info.expires, f"{where}.expires"),
        "sender_name": info.sender_name,
        "headline": info.headline,
        "description": info.description,
        "instruction": info.instruction,
        "web": info.web,
        "contact": info.contact,
        "parameters": _parameter_map(info.parameters),
        "parameter_list": [_pair_out(p) for p in info.parameters],
        "resources": [_resource_out(r) for r in info.resources],
        "areas": [_area_out(a) for a in info.areas],
    }


def _parameter_map(parameters: Sequence[NamedValue]) -> dict[str, str | list[str]]:
    values: dict[str, list[str]] = {}
    for p in parameters:
        values.setdefault(p.name, []).append(p.value)
    return {name: vals[0] if len(vals) == 1 else vals for name, vals in values.items()}


def _pair_out(pair: NamedValue) -> dict[str, str]:
    return {"name": pair.name, "value": pair.value}


def _resource_out(resource: Resource) -> dict[str, Any]:
    return {
        "resource_desc": resource.resource_desc,
        "mime_type": resource.mime_type,
        "size": resource.size,
        "uri": resource.uri,
        "deref_uri": resource.deref_uri,
        "digest": resource.digest,
    }


def _area_out(area: Area) -> dict[str, Any]:
    return {
        "area_desc": area.area_desc,
        "polygons": [[[lat, lon] for lat, lon in polygon.points] for polygon in area.polygons],
        "circles": [{"lat": c.lat, "lon": c.lon, "radius_km": c.radius_km} for c in area.circles],
        "geocodes": [_pair_out(g) for g in area.geocodes],
        "altitude": area.altitude,
        "ceiling": area.ceiling,
    }


def _datetime_out(value: datetime, where: str) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{where}: {value.isoformat()} has no UTC offset")
    return value.isoformat()


def _optional_datetime_out(value: datetime | None, where: str) -> str | None:
    return None if value is None else _datetime_out(value, where)


def _reference_out(ref: AlertKey, where: str) -> str:
    if not ref.sender or any(c.isspace() or c == "," for c in ref.sender):
        raise ValueError(f"{where}: sender {ref.sender!r} cannot be written as 'sender,id,sent'")
    if not ref.identifier or any(c.isspace() for c in ref.identifier):
        raise ValueError(
            f"{where}: identifier {ref.identifier!r} cannot be written as 'sender,id,sent'"
        )
    return f"{ref.sender},{ref.identifier},{_datetime_out(ref.sent, where)}"


# --------------------------------------------------------------------------- from JSON


def alert_from_json(
    data: Mapping[str, Any],
    *,
    default_identifier: str | None = None,
    default_sent: datetime | None = None,
) -> Alert:
    """Build an Alert from its JSON form, checking every key.

    ``identifier`` and ``sent`` may be missing (or null) only when the caller
    supplies ``default_identifier`` / ``default_sent`` (an operator composing
    an alert by hand gets them from the system). Optional keys may be left
    out. Unknown keys are refused, because a misspelt key (``"headlne"``)
    would otherwise silently drop what the operator wrote.

    Raises ValueError whose message starts with the offending key, e.g.
    ``infos[0].areas[1].polygons[0][2]: expected [lat, lon]``.
    """
    reader = _Reader(data, "", _ALERT_KEYS)
    identifier = reader.optional_str("identifier")
    if identifier is None:
        if default_identifier is None:
            raise ValueError("identifier: missing")
        identifier = default_identifier
    sent = reader.optional_datetime("sent")
    if sent is None:
        if default_sent is None:
            raise ValueError("sent: missing")
        if default_sent.tzinfo is None or default_sent.utcoffset() is None:
            raise ValueError("sent: the default has no UTC offset")
        sent = default_sent
    return Alert(
        identifier=identifier,
        sender=reader.required_str("sender"),
        sent=sent,
        status=reader.required_enum("status", Status),
        msg_type=reader.required_enum("msg_type", MsgType),
        scope=reader.required_enum("scope", Scope),
        source=reader.optional_str("source"),
        restriction=reader.optional_str("restriction"),
        addresses=reader.str_list("addresses"),
        codes=reader.str_list("codes"),
        note=reader.optional_str("note"),
        references=reader.list_of("references", _reference_in),
        incidents=reader.str_list("incidents"),
        infos=reader.list_of("infos", _info_in),
    )


def _info_in(value: Any, where: str) -> Info:
    reader = _Reader(value, where, _INFO_KEYS)
    language = reader.optional_str("language")
    return Info(
        language="en-US" if language is None else language,
        categories=reader.list_of("category", _enum_in(Category)),
        event=reader.required_str("event"),
        response_types=reader.list_of("response_type", _enum_in(ResponseType)),
        urgency=reader.required_enum("urgency", Urgency),
        severity=reader.required_enum("severity", Severity),
        certainty=reader.required_enum("certainty", Certainty),
        audience=reader.optional_str("audience"),
        event_codes=reader.list_of("event_codes", _pair_in),
        effective=reader.optional_datetime("effective"),
        onset=reader.optional_datetime("onset"),
        expires=reader.optional_datetime("expires"),
        sender_name=reader.optional_str("sender_name"),
        headline=reader.optional_str("headline"),
        description=reader.optional_str("description"),
        instruction=reader.optional_str("instruction"),
        web=reader.optional_str("web"),
        contact=reader.optional_str("contact"),
        parameters=_parameters_in(reader, where),
        resources=reader.list_of("resources", _resource_in),
        areas=reader.list_of("areas", _area_in),
    )


def _parameters_in(reader: _Reader, where: str) -> tuple[NamedValue, ...]:
    exact = (
        reader.list_of("parameter_list", _pair_in)
        if reader.data.get("parameter_list") is not None
        else None
    )
    raw_map = reader.data.get("parameters")
    if raw_map is None:
        return exact or ()
    if not isinstance(raw_map, Mapping):
        raise ValueError(f"{_join(where, 'parameters')}: expected an object name → value")
    from_map: list[NamedValue] = []
    for name, value in raw_map.items():
        key = f"{_join(where, 'parameters')}.{name}"
        if not isinstance(name, str):
            raise ValueError(f"{key}: parameter names must be strings")
        if isinstance(value, str):
            from_map.append(NamedValue(name, value))
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            from_map.extend(NamedValue(name, v) for v in value)
        else:
            raise ValueError(f"{key}: expected a string or a non-empty list of strings")
    if exact is None:
        return tuple(from_map)
    if _parameter_map(exact) != _parameter_map(from_map):
        raise ValueError(
            f"{_join(where, 'parameters')}: disagrees with {_join(where, 'parameter_list')};"
            " send one of them, or both saying the same"
        )
    return exact


def _area_in(value: Any, where: str) -> Area:
    reader = _Reader(value, where, _AREA_KEYS)
    return Area(
        area_desc=reader.required_str("area_desc"),
        polygons=reader.list_of("polygons", _polygon_in),
        circles=reader.list_of("circles", _circle_in),
        geocodes=reader.list_of("geocodes", _pair_in),
        altitude=reader.optional_number("altitude"),
        ceiling=reader.optional_number("ceiling"),
    )


def _polygon_in(value: Any, where: str) -> Polygon:
    if not isinstance(value, list):
        raise ValueError(f"{where}: expected a list of [lat, lon] points")
    points = []
    for n, point in enumerate(value):
        if (
            not isinstance(point, list | tuple)
            or len(point) != 2
            or not all(_is_number(c) for c in point)
        ):
            raise ValueError(f"{where}[{n}]: expected [lat, lon]")
        points.append((float(point[0]), float(point[1])))
    return Polygon(tuple(points))


def _circle_in(value: Any, where: str) -> Circle:
    reader = _Reader(value, where, _CIRCLE_KEYS)
    return Circle(
        lat=reader.required_number("lat"),
        lon=reader.required_number("lon"),
        radius_km=reader.required_number("radius_km"),
    )


def _resource_in(value: Any, where: str) -> Resource:
    reader = _Reader(value, where, _RESOURCE_KEYS)
    size = reader.data.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool)):
        raise ValueError(f"{_join(where, 'size')}: expected an integer number of bytes")
    return Resource(
        resource_desc=reader.required_str("resource_desc"),
        mime_type=reader.required_str("mime_type"),
        size=size,
        uri=reader.optional_str("uri"),
        deref_uri=reader.optional_str("deref_uri"),
        digest=reader.optional_str("digest"),
    )


def _pair_in(value: Any, where: str) -> NamedValue:
    reader = _Reader(value, where, _PAIR_KEYS)
    return NamedValue(reader.required_str("name"), reader.required_str("value"))


def _reference_in(value: Any, where: str) -> AlertKey:
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected a 'sender,identifier,sent' string")
    parts = value.split(",")
    identifier = ",".join(parts[1:-1])
    if len(parts) < 3 or not parts[0] or not identifier or any(c.isspace() for c in value):
        raise ValueError(f"{where}: {value!r} is not 'sender,identifier,sent'")
    try:
        sent = parse_datetime(parts[-1])
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return AlertKey(parts[0], identifier, sent)


def _enum_in(enum: type[_E]) -> Callable[[Any, str], _E]:
    def read(value: Any, where: str) -> _E:
        return _enum_value(enum, value, where)

    return read


def _enum_value(enum: type[_E], value: Any, where: str) -> _E:
    if isinstance(value, str):
        for member in enum:
            if member.value == value:
                return member
    allowed = ", ".join(m.value for m in enum)
    raise ValueError(f"{where}: {value!r} is not one of {allowed}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


class _Reader:
    """Typed access to one JSON object, every error naming its full key."""

    def __init__(self, data: Any, where: str, known: frozenset[str]) -> None:
        if not isinstance(data, Mapping):
            raise ValueError(f"{where or 'alert'}: expected an object")
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise ValueError(f"{_join(where, unknown[0])}: unknown key")
        self.data: Mapping[str, Any] = data
        self.where = where

    def key(self, name: str) -> str:
        return _join(self.where, name)

    def required_str(self, name: str) -> str:
        value = self.data.get(name)
        if value is None:
            raise ValueError(f"{self.key(name)}: missing")
        if not isinstance(value, str):
            raise ValueError(f"{self.key(name)}: expected a string")
        return value

    def optional_str(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{self.key(name)}: expected a string or null")
        return value

    def required_enum(self, name: str, enum: type[_E]) -> _E:
        if self.data.get(name) is None:
            raise ValueError(f"{self.key(name)}: missing")
        return _enum_value(enum, self.data[name], self.key(name))

    def optional_datetime(self, name: str) -> datetime | None:
        text = self.optional_str(name)
        if text is None:
            return None
        try:
            return parse_datetime(text)
        except ValueError as exc:
            raise ValueError(f"{self.key(name)}: {exc}") from None

    def required_number(self, name: str) -> float:
        value: Any = self.data.get(name)
        if not _is_number(value):
            raise ValueError(f"{self.key(name)}: expected a number")
        return float(value)

    def optional_number(self, name: str) -> float | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not _is_number(value):
            raise ValueError(f"{self.key(name)}: expected a number or null")
        return float(value)

    def str_list(self, name: str) -> tuple[str, ...]:
        def read(value: Any, where: str) -> str:
            if not isinstance(value, str):
                raise ValueError(f"{where}: expected a string")
            return value

        return self.list_of(name, read)

    def list_of(self, name: str, read: Callable[[Any, str], _T]) -> tuple[_T, ...]:
        value = self.data.get(name)
        if value is None:
            return ()
        if not isinstance(value, list | tuple):
            raise ValueError(f"{self.key(name)}: expected a list")
        return tuple(read(item, f"{self.key(name)}[{n}]") for n, item in enumerate(value))
