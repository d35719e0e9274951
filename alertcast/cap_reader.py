"""An ``<alert>`` element to an :class:`Alert`, leniently, saying what was wrong and where.

The reader walks the element once. For each level it checks the children
against the version's sequence (``cap_rules``), reads every value it can,
and records two kinds of remarks, each ``"<path>: <reason>"``:

* **warnings**: the document breaks the rules of its CAP version: what the
  OASIS schema rejects, plus what the specification prescribes where the
  schema only says "string" (the date-time form, polygon, circle and
  references syntax, identifier and sender without spaces or commas).
  Strict mode refuses on any warning.
* **notices**: the document is schema-valid but something deserves a look,
  or was normalised: an empty ``<polygon>`` (dropped), a polygon that is not
  closed or has fewer than four points, an Update that references nothing,
  CAP 1.0's "Very Likely". Real feeds that pass the schema do these things
  (NWS sends empty polygons), so treating them as warnings would make strict
  mode refuse schema-valid alerts.

What stays fatal even in lenient mode, and why: without ``identifier``,
``sender`` and ``sent`` a message cannot be told apart from others, updated
or cancelled; ``status`` decides whether the public sees it at all (an
Exercise broadcast as Actual is an incident) and ``msgType`` whether it
replaces or cancels earlier alerts. None of these may be guessed, so a
missing or unintelligible value raises :class:`CapError`. A different case
("actual") is understood, with a warning.

Everything else is repaired and reported: a missing or unknown urgency,
severity or certainty reads as Unknown (the least grave value, never
inflated); an unknown category or response type is dropped; an info without
any category gets Other; a missing ``<scope>`` reads as Public unless the
alert names a restriction or addresses, in which case the narrower
Restricted or Private is assumed, so that a repair never widens an
audience.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from lxml import etree

from alertcast.cap_rules import (
    ALERT_NAMES,
    AREA_NAMES,
    CAP10,
    CERTAINTY_ALIASES,
    DSIG_NAMESPACE,
    INFO_NAMES,
    PAIR,
    PAIR_NAMES,
    REPEATABLE,
    RESOURCE_NAMES,
    VOCABULARIES,
    XSI_NAMESPACE,
    Grammar,
    VersionRules,
)
from alertcast.cap_values import (
    collapse,
    is_language,
    polygon_shape_problems,
    read_circle,
    read_datetime,
    read_integer,
    read_number,
    read_polygon,
    read_quoted_list,
    split_on_space,
    trim,
)
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
)
from alertcast.errors import CapError

_E = TypeVar("_E", bound=StrEnum)
_T = TypeVar("_T")

_IGNORED_XSI_ATTRIBUTES = frozenset(
    {f"{{{XSI_NAMESPACE}}}schemaLocation", f"{{{XSI_NAMESPACE}}}noNamespaceSchemaLocation"}
)

_Children = dict[str, list[tuple[etree._Element, str]]]


@dataclass
class AlertReading:
    """The outcome of reading one ``<alert>``."""

    alert: Alert
    warnings: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    signed: bool = False


def read_alert(element: etree._Element, rules: VersionRules, path: str) -> AlertReading:
    """Read ``element`` (an ``<alert>`` of version ``rules.version``) found at ``path``.

    Raises CapError for the problems listed as fatal in the module docstring.
    """
    return _Reader(rules, etree.QName(element).namespace).alert(element, path)


def split_tag(tag: str) -> tuple[str | None, str]:
    """``{namespace}local`` → (namespace, local); (None, local) without a namespace."""
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return None, tag


class _Reader:
    def __init__(self, rules: VersionRules, namespace: str | None) -> None:
        self.rules = rules
        self.version = rules.version
        self.namespace = namespace
        self.prefix = f"{{{namespace}}}" if namespace else ""
        self.warnings: list[str] = []
        self.notices: list[str] = []
        self.signed = False

    # ------------------------------------------------------------------ reporting

    def warn(self, path: str, reason: str) -> None:
        self.warnings.append(f"{path}: {reason}")

    def note(self, path: str, reason: str) -> None:
        self.notices.append(f"{path}: {reason}")

    # ------------------------------------------------------------------ structure

    def children(
        self,
        element: etree._Element,
        grammar: Grammar,
        known: frozenset[str],
        path: str,
        *,
        if_missing: dict[str, str],
        signature_level: bool = False,
    ) -> _Children:
        """Group the CAP children of ``element`` by name, reporting what the sequence forbids.

        A document is valid for an XSD sequence of distinct names exactly when
        every child is one of them, they come in order, each within its
        bounds; each way of failing gets its own readable message. Elements
        holding other elements carry no attributes and no text of their own.
        """
        if element.attrib:
            self.check_attributes(element, path)
        text = element.text
        stray = bool(text and trim(text))
        prefix, prefix_length = self.prefix, len(self.prefix)
        position = grammar.position
        groups: _Children = {}
        furthest = 0
        after_signature = False
        for child in element:
            tail = child.tail
            if tail and not stray and trim(tail):
                stray = True
            tag: object = child.tag
            if not isinstance(tag, str):
                continue
            if prefix_length and tag.startswith(prefix):
                local, ours = tag[prefix_length:], True
            else:
                namespace, local = split_tag(tag)
                ours = namespace == self.namespace
                if signature_level and namespace == DSIG_NAMESPACE:
                    after_signature = True
                    self.signature(local, path)
                    continue
            if not ours or local not in known:
                self.warn(
                    f"{path}/{local}",
                    f"<{local}> is not a CAP {self.version} element here; ignored",
                )
                continue
            siblings = groups.get(local)
            if siblings is None:
                siblings = groups[local] = []
            n = len(siblings) + 1
            child_path = (
                f"{path}/{local}[{n}]" if n > 1 or local in REPEATABLE else f"{path}/{local}"
            )
            siblings.append((child, child_path))
            index = position.get(local)
            if index is None:
                self.warn(child_path, f"<{local}> is not part of CAP {self.version}; read anyway")
                continue
            if after_signature:
                self.warn(child_path, "CAP elements must come before the signature")
            if index < furthest:
                self.warn(
                    child_path,
                    f"out of order: CAP {self.version} puts <{local}> before"
                    f" <{grammar[furthest].name}>",
                )
            elif index > furthest:
                furthest = index
        if stray:
            self.warn(path, "text directly inside this element is not CAP; ignored")
        for name in grammar.required:
            if name not in groups:
                consequence = if_missing.get(name, "left empty")
                self.warn(f"{path}/{name}", f"required but missing; {consequence}")
        for name, found in groups.items():
            limit = grammar.max_occurs.get(name)
            if limit is not None and len(found) > limit:
                for _, extra_path in found[limit:]:
                    self.warn(extra_path, f"<{name}> may appear only once; ignored")
        return groups

    def signature(self, local: str, path: str) -> None:
        """An XML-DSig element among the alert's children: allowed (at the end) in CAP 1.2 only."""
        self.signed = self.signed or local == "Signature"
        if not self.rules.signature_allowed:
            self.warn(
                f"{path}/{local}",
                f"CAP {self.version} has no place for an XML signature; it was not"
                " checked (only CAP 1.2 allows one)",
            )

    def check_attributes(self, element: etree._Element, path: str) -> None:
        for name in element.attrib:
            if name not in _IGNORED_XSI_ATTRIBUTES:
                local = split_tag(str(name))[1]
                self.warn(f"{path}/@{local}", "CAP elements have no attributes; ignored")

    def text(self, element: etree._Element, path: str) -> str:
        """The text of a simple element, as the schema sees it (comments do not count)."""
        if element.keys():
            self.check_attributes(element, path)
        if len(element) == 0:
            return element.text or ""
        if any(isinstance(child.tag, str) for child in element):
            self.warn(path, "must hold text only; the text of the elements inside was kept")
        return "".join(str(text) for text in element.itertext())

    @staticmethod
    def first(groups: _Children, name: str) -> tuple[etree._Element, str] | None:
        found = groups.get(name)
        return found[0] if found else None

    def first_text(self, groups: _Children, name: str) -> tuple[str, str] | None:
        found = self.first(groups, name)
        return None if found is None else (self.text(*found), found[1])

    def optional_text(self, groups: _Children, name: str) -> str | None:
        """Free text kept exactly as written; absent or blank is None."""
        found = self.first_text(groups, name)
        if found is None or not trim(found[0]):
            return None
        return found[0]

    def optional_token(self, groups: _Children, name: str) -> str | None:
        """A token-like value (URI, MIME type, digest): trimmed; absent or blank is None."""
        found = self.first_text(groups, name)
        if found is None:
            return None
        return collapse(found[0]) or None

    def each(
        self, groups: _Children, name: str, read: Callable[[etree._Element, str], _T | None]
    ) -> tuple[_T, ...]:
        values = (read(element, path) for element, path in groups.get(name, []))
        return tuple(v for v in values if v is not None)

    # ------------------------------------------------------------------ vocabularies

    def vocabulary(
        self, element: etree._Element, path: str, enum: type[_E], name: str
    ) -> tuple[_E | None, str]:
        """The member ``element`` names, warning when the text is not exactly a valid value."""
        raw = self.text(element, path)
        folded = collapse(raw).casefold()
        member = next((m for m in enum if m.value.casefold() == folded), None)
        if member is None and enum is Certainty and folded in CERTAINTY_ALIASES:
            member = enum(CERTAINTY_ALIASES[folded].value)
        if member is None:
            return None, raw
        allowed = VOCABULARIES[name][self.version]
        if raw in allowed:
            if raw != member.value:
                self.note(path, f"CAP {self.version} {raw!r} read as {member.value}")
        elif raw == member.value:
            self.warn(path, f"{raw!r} is not part of CAP {self.version}; read anyway")
        else:
            self.warn(
                path,
                f"{raw!r} is not spelt as CAP {self.version} requires; read as {member.value}",
            )
        return member, raw

    def required_vocabulary(self, groups: _Children, name: str, enum: type[_E], default: _E) -> _E:
        found = self.first(groups, name)
        if found is None:
            return default
        member, raw = self.vocabulary(*found, enum, name)
        if member is None:
            allowed = ", ".join(VOCABULARIES[name][self.version])
            self.warn(found[1], f"{raw!r} is not one of {allowed}; read as {default.value}")
            return default
        return member

    def fatal_vocabulary(self, groups: _Children, name: str, enum: type[_E], path: str) -> _E:
        found = self.first(groups, name)
        allowed = ", ".join(VOCABULARIES[name][self.version])
        if found is None:
            raise CapError(
                f"required but missing (one of {allowed}); it decides who may see the alert"
                " and what it does, so it is never guessed",
                f"{path}/{name}",
            )
        member, raw = self.vocabulary(*found, enum, name)
        if member is None:
            raise CapError(
                f"{raw!r} is not one of {allowed}; it decides who may see the alert and"
                " what it does, so it is never guessed",
                found[1],
            )
        return member

    def vocabulary_list(self, groups: _Children, name: str, enum: type[_E]) -> tuple[_E, ...]:
        members = []
        for element, path in groups.get(name, []):
            member, raw = self.vocabulary(element, path, enum, name)
            if member is None:
                allowed = ", ".join(VOCABULARIES[name][self.version]) or "nothing"
                self.warn(path, f"{raw!r} is not one of {allowed}; ignored")
            else:
                members.append(member)
        return tuple(members)

    # ------------------------------------------------------------------ values

    def date(self, groups: _Children, name: str) -> datetime | None:
        found = self.first_text(groups, name)
        if found is None:
            return None
        value, problem = read_datetime(found[0])
        if problem is not None:
            self.warn(found[1], problem if value is not None else f"{problem}; ignored")
        return value

    def identity(self, groups: _Children, name: str, path: str) -> str:
        """identifier and sender: required, trimmed, and without spaces or commas."""
        found = self.first_text(groups, name)
        value = "" if found is None else trim(found[0])
        if not value:
            raise CapError(
                "required but missing or empty; without it the alert cannot be told apart"
                " from others, updated or cancelled",
                f"{path}/{name}",
            )
        if any(c.isspace() or c in ",<&" for c in value):
            self.warn(
                f"{path}/{name}",
                f"{value!r} contains spaces, commas, '<' or '&', which CAP forbids;"
                " references to it will be ambiguous",
            )
        return value

    # ------------------------------------------------------------------ alert

    def alert(self, element: etree._Element, path: str) -> AlertReading:
        groups = self.children(
            element,
            self.rules.alert,
            ALERT_NAMES,
            path,
            if_missing={"scope": "assumed from restriction/addresses, else Public"},
            signature_level=True,
        )
        identifier = self.identity(groups, "identifier", path)
        sender = self.identity(groups, "sender", path)
        sent_found = self.first_text(groups, "sent")
        if sent_found is None:
            raise CapError(
                "required but missing; the time an alert was sent orders updates", f"{path}/sent"
            )
        sent, sent_problem = read_datetime(sent_found[0])
        if sent is None:
            raise CapError(
                f"{sent_problem}; the time an alert was sent is never guessed", sent_found[1]
            )
        if sent_problem is not None:
            self.warn(sent_found[1], sent_problem)
        status = self.fatal_vocabulary(groups, "status", Status, path)
        msg_type = self.fatal_vocabulary(groups, "msgType", MsgType, path)
        if "password" in groups:
            self.note(groups["password"][0][1], "CAP 1.0 <password> is not kept")
        restriction = self.optional_text(groups, "restriction")
        addresses_text = self.first_text(groups, "addresses")
        addresses = read_quoted_list(addresses_text[0]) if addresses_text else ()
        scope = self.scope(groups, path, restriction=restriction, addresses=addresses)
        references = self.references(groups, msg_type, path)
        return AlertReading(
            Alert(
                identifier=identifier,
                sender=sender,
                sent=sent,
                status=status,
                msg_type=msg_type,
                scope=scope,
                source=self.optional_text(groups, "source"),
                restriction=restriction,
                addresses=addresses,
                codes=self.each(groups, "code", self.code),
                note=self.optional_text(groups, "note"),
                references=references,
                incidents=self.incidents(groups),
                infos=self.each(groups, "info", self.info),
            ),
            self.warnings,
            self.notices,
            self.signed,
        )

    def scope(
        self, groups: _Children, path: str, *, restriction: str | None, addresses: tuple[str, ...]
    ) -> Scope:
        found = self.first(groups, "scope")
        raw = None
        if found is not None:
            member, raw = self.vocabulary(*found, Scope, "scope")
            if member is not None:
                return member
        if addresses:
            assumed = Scope.PRIVATE
        elif restriction:
            assumed = Scope.RESTRICTED
        else:
            assumed = Scope.PUBLIC
        if found is not None:
            self.warn(
                found[1],
                f"{raw!r} is not one of Public, Restricted, Private; read as {assumed.value}",
            )
        elif self.version == CAP10:
            self.note(f"{path}/scope", f"absent (optional in CAP 1.0); read as {assumed.value}")
        return assumed

    def code(self, element: etree._Element, path: str) -> str | None:
        return collapse(self.text(element, path)) or None

    def incidents(self, groups: _Children) -> tuple[str, ...]:
        found = self.first_text(groups, "incidents")
        return read_quoted_list(found[0]) if found else ()

    def references(self, groups: _Children, msg_type: MsgType, path: str) -> tuple[AlertKey, ...]:
        """``sender,identifier,sent`` entries, split as ``domain.parse_references`` does."""
        found = self.first_text(groups, "references")
        keys: list[AlertKey] = []
        if found is not None:
            text, where = found
            for entry in split_on_space(text):
                parts = entry.split(",")
                identifier = ",".join(parts[1:-1])
                if len(parts) < 3 or not parts[0] or not identifier:
                    self.warn(
                        where, f"reference {entry!r} is not 'sender,identifier,sent'; ignored"
                    )
                    continue
                sent, problem = read_datetime(parts[-1])
                if sent is None:
                    self.warn(where, f"reference {entry!r}: {problem}; ignored")
                    continue
                if problem is not None:
                    self.warn(where, f"reference {entry!r}: {problem}")
                keys.append(AlertKey(parts[0], identifier, sent))
            if not trim(text):
                self.note(where, "empty; it references nothing")
        if not keys and msg_type in (MsgType.UPDATE, MsgType.CANCEL):
            self.note(
                f"{path}/references",
                f"{'an' if msg_type is MsgType.UPDATE else 'a'} {msg_type.value} should name"
                " the messages it replaces; it names none",
            )
        return tuple(keys)

    # ------------------------------------------------------------------ info

    def info(self, element: etree._Element, path: str) -> Info:
        groups = self.children(
            element,
            self.rules.info,
            INFO_NAMES,
            path,
            if_missing={
                "category": "read as Other",
                "event": "left empty",
                "urgency": "read as Unknown",
                "severity": "read as Unknown",
                "certainty": "read as Unknown",
            },
        )
        categories = self.vocabulary_list(groups, "category", Category)
        if not categories:
            categories = (Category.OTHER,)
            if "category" not in groups and self.version == CAP10:
                self.note(f"{path}/category", "absent (optional in CAP 1.0); read as Other")
        event = self.first_text(groups, "event")
        info = Info(
            language=self.language(groups),
            categories=categories,
            event="" if event is None else event[0],
            response_types=self.vocabulary_list(groups, "responseType", ResponseType),
            urgency=self.required_vocabulary(groups, "urgency", Urgency, Urgency.UNKNOWN),
            severity=self.required_vocabulary(groups, "severity", Severity, Severity.UNKNOWN),
            certainty=self.required_vocabulary(groups, "certainty", Certainty, Certainty.UNKNOWN),
            audience=self.optional_text(groups, "audience"),
            event_codes=self.each(groups, "eventCode", self.pair),
            effective=self.date(groups, "effective"),
            onset=self.date(groups, "onset"),
            expires=self.date(groups, "expires"),
            sender_name=self.optional_text(groups, "senderName"),
            headline=self.optional_text(groups, "headline"),
            description=self.optional_text(groups, "description"),
            instruction=self.optional_text(groups, "instruction"),
            web=self.optional_token(groups, "web"),
            contact=self.optional_text(groups, "contact"),
            parameters=self.each(groups, "parameter", self.pair),
            resources=self.each(groups, "resource", self.resource),
            areas=self.each(groups, "area", self.area),
        )
        starts = info.effective or info.onset
        if info.expires is not None and starts is not None and info.expires < starts:
            self.note(f"{path}/expires", "earlier than the time the info takes effect")
        return info

    def language(self, groups: _Children) -> str:
        found = self.first_text(groups, "language")
        if found is None:
            return "en-US"
        value = collapse(found[0])
        if is_language(value):
            return value
        if not value:
            self.note(found[1], "empty; the schema's default en-US applies")
            return "en-US"
        self.warn(found[1], f"{value!r} is not a language tag like en-US; kept as written")
        return value

    def pair(self, element: etree._Element, path: str) -> NamedValue | None:
        """eventCode, parameter, geocode: valueName/value (1.1, 1.2) or ``name=value`` (1.0)."""
        has_elements = any(isinstance(child.tag, str) for child in element)
        if self.rules.structured_pairs or has_elements:
            if not has_elements:
                text = self.text(element, path)
                self.warn(
                    path,
                    f"a flat {trim(text)!r} is CAP 1.0 style; expected <valueName> and <value>",
                )
                return self.flat_pair(text, path)
            if not self.rules.structured_pairs:
                self.warn(path, "CAP 1.0 writes this as 'name=value' text; read anyway")
            groups = self.children(element, PAIR, PAIR_NAMES, path, if_missing={})
            name = self.first_text(groups, "valueName")
            value = self.first_text(groups, "value")
            return NamedValue(
                "" if name is None else trim(name[0]), "" if value is None else trim(value[0])
            )
        return self.flat_pair(self.text(element, path), path)

    def flat_pair(self, text: str, path: str) -> NamedValue:
        name, equals, value = trim(text).partition("=")
        if not equals:
            self.note(path, f"{trim(text)!r} has no 'name=value' form; kept as a value")
            return NamedValue("", name)
        return NamedValue(trim(name), trim(value))

    # ------------------------------------------------------------------ resource

    def resource(self, element: etree._Element, path: str) -> Resource:
        groups = self.children(element, self.rules.resource, RESOURCE_NAMES, path, if_missing={})
        description = self.first_text(groups, "resourceDesc")
        mime_type = self.optional_token(groups, "mimeType")
        return Resource(
            resource_desc="" if description is None else description[0],
            mime_type=mime_type or "",
            size=self.size(groups),
            uri=self.optional_token(groups, "uri"),
            deref_uri=self.optional_text(groups, "derefUri"),
            digest=self.optional_token(groups, "digest"),
        )

    def size(self, groups: _Children) -> int | None:
        found = self.first_text(groups, "size")
        if found is None or not trim(found[0]):
            if found is not None:
                self.warn(found[1], "empty; an integer number of bytes was expected")
            return None
        value = read_integer(found[0])
        if value is None:
            self.warn(found[1], f"{trim(found[0])!r} is not an integer number of bytes; ignored")
        return value

    # ------------------------------------------------------------------ area

    def area(self, element: etree._Element, path: str) -> Area:
        groups = self.children(element, self.rules.area, AREA_NAMES, path, if_missing={})
        description = self.first_text(groups, "areaDesc")
        return Area(
            area_desc="" if description is None else description[0],
            polygons=self.each(groups, "polygon", self.polygon),
            circles=self.each(groups, "circle", self.circle),
            geocodes=self.each(groups, "geocode", self.pair),
            altitude=self.height(groups, "altitude"),
            ceiling=self.height(groups, "ceiling"),
        )

    def polygon(self, element: etree._Element, path: str) -> Polygon | None:
        points, problem = read_polygon(self.text(element, path))
        if points is None:
            if problem == "empty polygon":
                self.note(path, "empty; ignored")
            else:
                self.warn(path, f"{problem}; ignored")
            return None
        if problem is not None:
            self.warn(path, f"{problem}; read anyway")
        for shape_problem in polygon_shape_problems(points):
            self.note(path, shape_problem)
        return Polygon(points)

    def circle(self, element: etree._Element, path: str) -> Circle | None:
        text = self.text(element, path)
        if not trim(text):
            self.note(path, "empty; ignored")
            return None
        circle, problem = read_circle(text)
        if problem is not None:
            self.warn(path, f"{problem}; ignored" if circle is None else f"{problem}; read anyway")
        return circle

    def height(self, groups: _Children, name: str) -> float | None:
        """altitude and ceiling: xs:decimal in CAP 1.2, free text before."""
        found = self.first_text(groups, name)
        if found is None:
            return None
        value = read_number(found[0], decimal_only=self.rules.decimal_altitude)
        if value is None:
            problem = f"{trim(found[0])!r} is not a number of feet; ignored"
            strict_number = self.rules.decimal_altitude
            (self.warn if strict_number else self.note)(found[1], problem)
        return value
