"""The CAP codec: bytes in, :class:`Alert` out, and back to CAP 1.2.

Reading is lenient by default because real feeds break the schema in small
ways every day (empty elements, wrong case, elements out of order, missing
optional fields) and an emergency alert should not be dropped for that.
Every deviation is reported as a warning ``"<path>: <reason>"`` so that the
feed owner can be told. ``strict=True`` turns the same warnings into a
:class:`CapValidationError` and is what ``--strict`` and validation use.

Which version's rules apply is decided by the namespace of ``<alert>``
(CAP 1.0, 1.1 or 1.2). Strict mode means: the document is valid for the
OASIS XSD of that version (bundled in ``alertcast/schemas``), its date-times
have the CAP form ``YYYY-MM-DDThh:mm:ss±hh:mm``, its polygons and circles
have the CAP syntax, and identifier and sender hold no spaces or commas.
The reader explains problems in its own words; when it finds none, the
bundled XSD is run as well and whatever it rejects becomes a warning (in
libxml2's words, with the element path), so a document strict mode
accepts always validates against its schema.

Some findings are *notices*, not warnings (``ParsedAlert.notices``): things
the schema allows but that deserve a look or were normalised, such as an
empty ``<polygon>`` (NWS sends them), a polygon that is not closed, or an
Update that names no earlier message. They never fail strict mode, which
would otherwise refuse schema-valid alerts.

What is fatal even in lenient mode (a document that is not CAP, missing
identifier/sender/sent, an unintelligible status or msgType, entity
declarations, size and depth limits, XML that is not well-formed) is
explained in ``alertcast.cap_reader`` and ``alertcast.cap_xml``.

A document may hold several alerts: an EDXL-DE 1.0 envelope carries them in
``contentObject/xmlContent/embeddedXMLContent``, and some publishers (SMHI)
wrap alerts in a non-standard ``<alerts>`` element. ``parse_cap_all``
returns all of them; ``parse_cap`` insists on exactly one. The EDXL-DE
envelope itself is not validated; only the CAP inside it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from alertcast.cap_reader import read_alert, split_tag
from alertcast.cap_rules import CAP12, EDXL_DE_NAMESPACE, RULES, VersionRules
from alertcast.cap_schema import schema_problems
from alertcast.cap_writer import to_cap_xml
from alertcast.cap_xml import DEFAULT_MAX_BYTES, DEFAULT_MAX_DEPTH, XmlDocument, load_xml
from alertcast.domain import CAP12_NAMESPACE, CAP_NAMESPACES, Alert
from alertcast.errors import CapError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DEPTH",
    "CapValidationError",
    "ParsedAlert",
    "parse_cap",
    "parse_cap_all",
    "to_cap_xml",
]


@dataclass(frozen=True, slots=True)
class ParsedAlert:
    """One alert read from a document, with everything noticed on the way."""

    alert: Alert
    warnings: tuple[str, ...]
    """Deviations from the rules of ``cap_version`` (each fatal in strict mode)."""
    cap_version: str
    """"1.0", "1.1" or "1.2": the version the document declared by its namespace."""
    signed: bool
    """An XML-DSig ``<Signature>`` was present. It is neither required nor checked here."""
    notices: tuple[str, ...] = ()
    """Schema-valid oddities and normalisations; never fatal."""


class CapValidationError(CapError):
    """Strict mode refused a document; ``problems`` lists every ``"<path>: <reason>"``."""

    def __init__(self, problems: tuple[str, ...]) -> None:
        self.problems = problems
        path, _, reason = problems[0].partition(": ")
        if len(problems) > 1:
            reason += f" (and {len(problems) - 1} more problem(s))"
        super().__init__(reason, path)


def parse_cap(
    data: bytes,
    *,
    strict: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> ParsedAlert:
    """Read the one CAP alert in ``data`` (a bare ``<alert>`` or an envelope holding one).

    Raises CapError when the document cannot be read, holds no alert or
    several (use :func:`parse_cap_all`), or, in strict mode, breaks a rule.
    """
    parsed = parse_cap_all(data, strict=strict, max_bytes=max_bytes, max_depth=max_depth)
    if len(parsed) != 1:
        raise CapError(f"the document holds {len(parsed)} alerts; read it with parse_cap_all", "/")
    return parsed[0]


def parse_cap_all(
    data: bytes,
    *,
    strict: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> list[ParsedAlert]:
    """Read every CAP alert in ``data``, in document order.

    ``max_bytes`` is checked before parsing; ``max_depth`` bounds element
    nesting (libxml2 refuses beyond 256 whatever it says). Raises CapError,
    never another exception, for anything wrong with the document.
    """
    document = load_xml(data, strict=strict, max_bytes=max_bytes, max_depth=max_depth)
    located = _locate_alerts(document)
    if strict and document.warnings:
        raise CapValidationError(tuple(document.warnings))
    parsed = []
    for element, path, rules in located:
        reading = read_alert(element, rules, path)
        problems = reading.warnings
        if not problems and etree.QName(element).namespace in CAP_NAMESPACES:
            problems = schema_problems(element, rules.version, path)
        warnings = (*document.warnings, *problems)
        if strict and warnings:
            raise CapValidationError(warnings)
        parsed.append(
            ParsedAlert(
                alert=reading.alert,
                warnings=warnings,
                cap_version=rules.version,
                signed=reading.signed,
                notices=(*document.notices, *reading.notices),
            )
        )
    return parsed


# --------------------------------------------------------------------------- containers


def _locate_alerts(document: XmlDocument) -> list[tuple[etree._Element, str, VersionRules]]:
    """Find the ``<alert>`` elements: the root itself, or inside EDXL-DE or an ``<alerts>`` list."""
    root = document.root
    namespace, local = split_tag(root.tag)
    if local == "alert":
        if namespace in CAP_NAMESPACES:
            return [(root, "/alert", RULES[CAP_NAMESPACES[namespace]])]
        if namespace is None:
            document.warnings.append(
                f'/alert: no namespace; read as CAP 1.2 (xmlns="{CAP12_NAMESPACE}")'
            )
            return [(root, "/alert", RULES[CAP12])]
        raise CapError(
            f"{namespace!r} is not a CAP namespace; CAP 1.2 is {CAP12_NAMESPACE!r}"
            " (1.1 and 1.0 have their own); refusing to guess the version",
            "/alert",
        )
    if namespace == EDXL_DE_NAMESPACE and local == "EDXLDistribution":
        return _edxl_alerts(document)
    if namespace in CAP_NAMESPACES and local == "alerts":
        document.warnings.append(
            "/alerts: several alerts in one <alerts> element is not a CAP document;"
            " each <alert> was read on its own"
        )
        found = [
            (child, f"/alerts/alert[{n}]", RULES[CAP_NAMESPACES[namespace]])
            for n, child in enumerate(_cap_children(root, "alert", namespace), start=1)
        ]
        if not found:
            raise CapError("the <alerts> list holds no <alert>", "/alerts")
        return found
    where = f" in namespace {namespace!r}" if namespace else " without a namespace"
    raise CapError(
        f"not a CAP document: the root element is <{local}>{where}; a CAP alert is <alert>"
        f" in {CAP12_NAMESPACE!r} (or the CAP 1.1 or 1.0 namespace)",
        f"/{local}",
    )


def _cap_children(
    element: etree._Element, local: str, namespace: str | None
) -> list[etree._Element]:
    return [child for child in element if child.tag == f"{{{namespace}}}{local}"]


def _edxl_alerts(document: XmlDocument) -> list[tuple[etree._Element, str, VersionRules]]:
    found = []
    base = "/EDXLDistribution"
    objects = _cap_children(document.root, "contentObject", EDXL_DE_NAMESPACE)
    for n, content in enumerate(objects, start=1):
        where = f"{base}/contentObject[{n}]"
        embedded = [
            child
            for xml in _cap_children(content, "xmlContent", EDXL_DE_NAMESPACE)
            for holder in _cap_children(xml, "embeddedXMLContent", EDXL_DE_NAMESPACE)
            for child in holder
            if isinstance(child.tag, str)
        ]
        alerts = [
            child
            for child in embedded
            if split_tag(child.tag)[1] == "alert" and split_tag(child.tag)[0] in CAP_NAMESPACES
        ]
        if len(alerts) < len(embedded) or not embedded:
            document.notices.append(f"{where}: content other than a CAP alert was not read")
        for m, alert in enumerate(alerts, start=1):
            index = f"[{m}]" if len(alerts) > 1 else ""
            version = CAP_NAMESPACES[split_tag(alert.tag)[0] or ""]
            path = f"{where}/xmlContent/embeddedXMLContent/alert{index}"
            found.append((alert, path, RULES[version]))
    if not found:
        raise CapError("the EDXL-DE envelope carries no CAP alert", base)
    return found
