"""The bundled OASIS CAP schemas, and their verdicts in the reader's ``"<path>: <reason>"`` form.

The reader explains rule violations in its own words; these schemas are the
final word behind it. The XSD files in ``alertcast/schemas`` are byte-for-byte
copies of the OASIS originals; they import nothing, so loading them never
touches the network, and lxml never follows ``xsi:schemaLocation`` hints
when validating against a given schema.
"""

from __future__ import annotations

import re
import threading
from importlib import resources
from typing import Any

from lxml import etree

from alertcast.cap_reader import split_tag
from alertcast.cap_rules import REPEATABLE

_SCHEMA_FILES = {"1.0": "CAP-v1.0.xsd", "1.1": "CAP-v1.1.xsd", "1.2": "CAP-v1.2.xsd"}
_schemas: dict[str, etree.XMLSchema] = {}
_lock = threading.Lock()
"""lxml keeps each schema's error log on the schema object: one validation at a time."""

_NAMESPACE_IN_MESSAGE = re.compile(r"\{[^}]*\}")
_ELEMENT_PREFIX = re.compile(r"^Element '[^']*':\s*")
_PATH_STEP = re.compile(r"(?:[^:\[]*:)?([^\[]+)(?:\[(\d+)\])?")
_PLAIN_WORDS = (("is not a valid value of the atomic type 'xs:anyURI'", "is not a valid URI"),)


def _schema(version: str) -> etree.XMLSchema:
    """The bundled schema for ``version``, loaded once."""
    schema = _schemas.get(version)
    if schema is None:
        source = resources.files("alertcast").joinpath("schemas").joinpath(_SCHEMA_FILES[version])
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        schema = etree.XMLSchema(etree.fromstring(source.read_bytes(), parser))
        _schemas[version] = schema
    return schema


def schema_problems(alert: etree._Element, version: str, alert_path: str) -> list[str]:
    """Everything the CAP ``version`` schema rejects in ``alert``, as ``"<path>: <reason>"``."""
    with _lock:
        schema = _schema(version)
        if schema.validate(alert):
            return []
        entries: list[Any] = list(schema.error_log)  # type: ignore[call-overload]
    problems = []
    for entry in entries:
        path = _element_path(_resolve(alert, str(entry.path or "")), alert, alert_path)
        message = _ELEMENT_PREFIX.sub("", _NAMESPACE_IN_MESSAGE.sub("", str(entry.message)))
        for technical, plain in _PLAIN_WORDS:
            message = message.replace(technical, plain)
        problems.append(f"{path}: {message} (CAP {version} schema)")
    return problems or [f"{alert_path}: not valid for the CAP {version} schema"]


def _resolve(alert: etree._Element, xsd_path: str) -> etree._Element:
    """Follow libxml2's node path (``/*/*[7]/*[6]`` or ``/cap:alert/cap:info``) from the alert."""
    element = alert
    for step in xsd_path.strip("/").split("/")[1:]:
        match = _PATH_STEP.fullmatch(step)
        if match is None:
            break
        local, index = match.group(1), int(match.group(2) or 1)
        candidates = [
            child
            for child in element
            if isinstance(child.tag, str) and (local == "*" or split_tag(child.tag)[1] == local)
        ]
        if len(candidates) < index:
            break
        element = candidates[index - 1]
    return element


def _element_path(element: etree._Element, alert: etree._Element, alert_path: str) -> str:
    steps = []
    while element is not alert:
        parent = element.getparent()
        if parent is None:
            break
        local = split_tag(element.tag)[1]
        same = [c for c in parent if c.tag == element.tag]
        n = same.index(element) + 1
        steps.append(f"{local}[{n}]" if local in REPEATABLE or n > 1 else local)
        element = parent
    return "/".join([alert_path, *reversed(steps)])
