"""An :class:`Alert` to CAP 1.2 XML.

Whatever version an alert arrived in, alertcast forwards and archives it as
CAP 1.2: one format for every downstream consumer. The output is UTF-8 with
an XML declaration, uses the CAP 1.2 namespace as the default namespace,
follows the schema's element order, and reads back (``parse_cap``) as an
equal :class:`Alert`.

Where the model is looser than CAP 1.2 the writer fills the gap the way the
reader would have: an info without categories gets ``Other``, a resource
without a MIME type an empty ``<mimeType>``. A UTC offset that CAP cannot
express (seconds, beyond ±14:00) is written as the same instant in UTC. A
value CAP 1.2 cannot carry at all (a non-finite coordinate, characters XML
forbids, a language that is not a language tag, a ``web`` that is not a
URI) raises ValueError rather than producing a document other systems
would reject: every document is checked against the bundled CAP 1.2 schema
before it is returned. The writer does not sign: a signature covers the
issuer's bytes, which the store keeps.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lxml import etree

from alertcast.cap_rules import CAP12
from alertcast.cap_schema import schema_problems
from alertcast.cap_values import (
    format_circle,
    format_number,
    format_polygon,
    format_quoted_list,
    is_language,
    trim,
)
from alertcast.domain import (
    CAP12_NAMESPACE,
    Alert,
    AlertKey,
    Area,
    Category,
    Info,
    NamedValue,
    Resource,
    format_cap_datetime,
)

_NS = f"{{{CAP12_NAMESPACE}}}"
_MAX_OFFSET = timedelta(hours=14)


def to_cap_xml(alert: Alert) -> bytes:
    """Serialize ``alert`` as a CAP 1.2 document (UTF-8 bytes, with XML declaration)."""
    root = etree.Element(f"{_NS}alert", nsmap={None: CAP12_NAMESPACE})  # type: ignore[dict-item]
    _add(root, "identifier", alert.identifier)
    _add(root, "sender", alert.sender)
    _add(root, "sent", _cap_time(alert.sent))
    _add(root, "status", alert.status.value)
    _add(root, "msgType", alert.msg_type.value)
    _add_optional(root, "source", alert.source)
    _add(root, "scope", alert.scope.value)
    _add_optional(root, "restriction", alert.restriction)
    if alert.addresses:
        _add(root, "addresses", format_quoted_list(alert.addresses, "addresses"))
    for code in alert.codes:
        _add(root, "code", code)
    _add_optional(root, "note", alert.note)
    if alert.references:
        _add(root, "references", " ".join(_reference(ref) for ref in alert.references))
    if alert.incidents:
        _add(root, "incidents", format_quoted_list(alert.incidents, "incidents"))
    for info in alert.infos:
        _add_info(root, info)
    problems = schema_problems(root, CAP12, "/alert")
    if problems:
        raise ValueError(f"the alert cannot be written as valid CAP 1.2: {problems[0]}")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _add_info(parent: etree._Element, info: Info) -> None:
    element = etree.SubElement(parent, f"{_NS}info")
    if not is_language(info.language):
        raise ValueError(f"info language {info.language!r} is not a language tag like en-US")
    _add(element, "language", info.language)
    for category in info.categories or (Category.OTHER,):
        _add(element, "category", category.value)
    _add(element, "event", info.event)
    for response_type in info.response_types:
        _add(element, "responseType", response_type.value)
    _add(element, "urgency", info.urgency.value)
    _add(element, "severity", info.severity.value)
    _add(element, "certainty", info.certainty.value)
    _add_optional(element, "audience", info.audience)
    for code in info.event_codes:
        _add_pair(element, "eventCode", code)
    for name, value in (
        ("effective", info.effective),
        ("onset", info.onset),
        ("expires", info.expires),
    ):
        if value is not None:
            _add(element, name, _cap_time(value))
    _add_optional(element, "senderName", info.sender_name)
    _add_optional(element, "headline", info.headline)
    _add_optional(element, "description", info.description)
    _add_optional(element, "instruction", info.instruction)
    _add_optional(element, "web", info.web)
    _add_optional(element, "contact", info.contact)
    for parameter in info.parameters:
        _add_pair(element, "parameter", parameter)
    for resource in info.resources:
        _add_resource(element, resource)
    for area in info.areas:
        _add_area(element, area)


def _add_resource(parent: etree._Element, resource: Resource) -> None:
    element = etree.SubElement(parent, f"{_NS}resource")
    _add(element, "resourceDesc", resource.resource_desc)
    _add(element, "mimeType", resource.mime_type)
    if resource.size is not None:
        _add(element, "size", str(resource.size))
    _add_optional(element, "uri", resource.uri)
    _add_optional(element, "derefUri", resource.deref_uri)
    _add_optional(element, "digest", resource.digest)


def _add_area(parent: etree._Element, area: Area) -> None:
    element = etree.SubElement(parent, f"{_NS}area")
    _add(element, "areaDesc", area.area_desc)
    for polygon in area.polygons:
        if polygon.points:
            _add(element, "polygon", format_polygon(polygon.points))
    for circle in area.circles:
        _add(element, "circle", format_circle(circle))
    for geocode in area.geocodes:
        _add_pair(element, "geocode", geocode)
    if area.altitude is not None:
        _add(element, "altitude", format_number(area.altitude))
    if area.ceiling is not None:
        _add(element, "ceiling", format_number(area.ceiling))


def _add_pair(parent: etree._Element, name: str, pair: NamedValue) -> None:
    element = etree.SubElement(parent, f"{_NS}{name}")
    _add(element, "valueName", pair.name)
    _add(element, "value", pair.value)


def _add_optional(parent: etree._Element, name: str, value: str | None) -> None:
    if value is not None and trim(value):
        _add(parent, name, value)


def _add(parent: etree._Element, name: str, text: str) -> None:
    element = etree.SubElement(parent, f"{_NS}{name}")
    try:
        element.text = text
    except ValueError:
        raise ValueError(f"<{name}> {text[:40]!r}... holds characters XML cannot carry") from None


def _cap_time(value: datetime) -> str:
    offset = value.utcoffset()
    if offset is not None and (offset % timedelta(minutes=1) or abs(offset) > _MAX_OFFSET):
        value = value.astimezone(UTC)
    return format_cap_datetime(value)


def _reference(ref: AlertKey) -> str:
    for what, value in (("sender", ref.sender), ("identifier", ref.identifier)):
        if not value or any(c.isspace() for c in value):
            raise ValueError(f"reference {what} {value!r} cannot be written in <references>")
    if "," in ref.sender:
        raise ValueError(f"reference sender {ref.sender!r} contains a comma")
    return f"{ref.sender},{ref.identifier},{_cap_time(ref.sent)}"
