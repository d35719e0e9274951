"""What each CAP version allows, written out as data: element order, cardinality, vocabularies.

These tables transcribe the OASIS schemas (CAP 1.0, 1.1 and 1.2, bundled in
``alertcast/schemas``) so that the reader can say *which* rule a document
breaks in words an operator understands, instead of relaying libxml2's
schema messages. The bundled XSDs stay the final word: the reader validates
against them too (see ``alertcast.cap``), and the corpus tests check that the
tables and the XSDs agree.

Differences between versions that matter here:

* 1.0: ``<password>``; ``<scope>`` and ``<category>`` optional; no
  ``<responseType>``; certainty "Very Likely" instead of "Observed"; no
  "Draft" status, no "CBRNE" category; eventCode, parameter and geocode are
  flat ``name=value`` strings; no ``<derefUri>``; no place for a signature.
* 1.1: structured valueName/value pairs; no "Avoid"/"AllClear" response
  types; no place for a signature either (only 1.2 admits XML-DSig).
* 1.2: ``<mimeType>`` required; altitude and ceiling are decimals.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from alertcast.domain import (
    Category,
    Certainty,
    MsgType,
    ResponseType,
    Scope,
    Severity,
    Status,
    Urgency,
)

CAP10 = "1.0"
CAP11 = "1.1"
CAP12 = "1.2"
VERSIONS = (CAP10, CAP11, CAP12)

DSIG_NAMESPACE = "http://www.w3.org/2000/09/xmldsig#"
XSI_NAMESPACE = "http://www.w3.org/2001/XMLSchema-instance"
EDXL_DE_NAMESPACE = "urn:oasis:names:tc:emergency:EDXL:DE:1.0"


@dataclass(frozen=True, slots=True)
class Particle:
    """One element of an XSD sequence: its name and how many times it may occur."""

    name: str
    min_occurs: int = 0
    max_occurs: int | None = 1
    """None: unbounded."""


class Grammar:
    """An XSD sequence of distinct element names, with lookups precomputed for the reader."""

    __slots__ = ("max_occurs", "particles", "position", "required")

    def __init__(self, *particles: Particle) -> None:
        self.particles = particles
        self.position = {p.name: n for n, p in enumerate(particles)}
        self.required = tuple(p.name for p in particles if p.min_occurs > 0)
        self.max_occurs = {p.name: p.max_occurs for p in particles}

    def __iter__(self) -> Iterator[Particle]:
        return iter(self.particles)

    def __getitem__(self, index: int) -> Particle:
        return self.particles[index]


def _one(name: str) -> Particle:
    return Particle(name, 1, 1)


def _opt(name: str) -> Particle:
    return Particle(name, 0, 1)


def _many(name: str, min_occurs: int = 0) -> Particle:
    return Particle(name, min_occurs, None)


_ALERT_12 = Grammar(
    _one("identifier"),
    _one("sender"),
    _one("sent"),
    _one("status"),
    _one("msgType"),
    _opt("source"),
    _one("scope"),
    _opt("restriction"),
    _opt("addresses"),
    _many("code"),
    _opt("note"),
    _opt("references"),
    _opt("incidents"),
    _many("info"),
)
_ALERT_10 = Grammar(
    *_ALERT_12.particles[:5],
    _opt("password"),
    _opt("source"),
    _opt("scope"),
    *_ALERT_12.particles[7:],
)

_INFO_12 = Grammar(
    _opt("language"),
    _many("category", 1),
    _one("event"),
    _many("responseType"),
    _one("urgency"),
    _one("severity"),
    _one("certainty"),
    _opt("audience"),
    _many("eventCode"),
    _opt("effective"),
    _opt("onset"),
    _opt("expires"),
    _opt("senderName"),
    _opt("headline"),
    _opt("description"),
    _opt("instruction"),
    _opt("web"),
    _opt("contact"),
    _many("parameter"),
    _many("resource"),
    _many("area"),
)
_INFO_10 = Grammar(
    _opt("language"),
    _many("category"),
    _one("event"),
    *_INFO_12.particles[4:],
)

_RESOURCE_12 = Grammar(
    _one("resourceDesc"),
    _one("mimeType"),
    _opt("size"),
    _opt("uri"),
    _opt("derefUri"),
    _opt("digest"),
)
_RESOURCE_11 = Grammar(_RESOURCE_12[0], _opt("mimeType"), *_RESOURCE_12.particles[2:])
_RESOURCE_10 = Grammar(
    _RESOURCE_12[0],
    _opt("mimeType"),
    _opt("size"),
    _opt("uri"),
    _opt("digest"),
)

_AREA = Grammar(
    _one("areaDesc"),
    _many("polygon"),
    _many("circle"),
    _many("geocode"),
    _opt("altitude"),
    _opt("ceiling"),
)
PAIR = Grammar(_one("valueName"), _one("value"))


@dataclass(frozen=True, slots=True)
class VersionRules:
    """The grammar of one CAP version."""

    version: str
    alert: Grammar
    info: Grammar
    resource: Grammar
    area: Grammar
    structured_pairs: bool
    """valueName/value elements (1.1, 1.2) rather than flat ``name=value`` text (1.0)."""
    signature_allowed: bool
    decimal_altitude: bool


RULES: dict[str, VersionRules] = {
    CAP10: VersionRules(CAP10, _ALERT_10, _INFO_10, _RESOURCE_10, _AREA, False, False, False),
    CAP11: VersionRules(CAP11, _ALERT_12, _INFO_12, _RESOURCE_11, _AREA, True, False, False),
    CAP12: VersionRules(CAP12, _ALERT_12, _INFO_12, _RESOURCE_12, _AREA, True, True, True),
}

REPEATABLE = frozenset(
    p.name
    for rules in RULES.values()
    for grammar in (rules.alert, rules.info, rules.resource, rules.area)
    for p in grammar
    if p.max_occurs is None
)
"""Elements whose paths always carry an index (``info[1]``), so paths are stable."""


def names(*grammars: Grammar) -> frozenset[str]:
    """Every element name the grammars mention."""
    return frozenset(p.name for grammar in grammars for p in grammar)


ALERT_NAMES = names(*(r.alert for r in RULES.values()))
INFO_NAMES = names(*(r.info for r in RULES.values()))
RESOURCE_NAMES = names(*(r.resource for r in RULES.values()))
AREA_NAMES = names(_AREA)
PAIR_NAMES = names(PAIR)


def _values(enum: type[StrEnum], *, without: tuple[str, ...] = ()) -> tuple[str, ...]:
    return tuple(m.value for m in enum if m.value not in without)


VOCABULARIES: dict[str, dict[str, tuple[str, ...]]] = {
    "status": {
        CAP10: _values(Status, without=("Draft",)),
        CAP11: _values(Status),
        CAP12: _values(Status),
    },
    "msgType": {v: _values(MsgType) for v in VERSIONS},
    "scope": {v: _values(Scope) for v in VERSIONS},
    "category": {
        CAP10: _values(Category, without=("CBRNE",)),
        CAP11: _values(Category),
        CAP12: _values(Category),
    },
    "responseType": {
        CAP10: (),
        CAP11: _values(ResponseType, without=("Avoid", "AllClear")),
        CAP12: _values(ResponseType),
    },
    "urgency": {v: _values(Urgency) for v in VERSIONS},
    "severity": {v: _values(Severity) for v in VERSIONS},
    "certainty": {
        CAP10: ("Very Likely", *_values(Certainty, without=("Observed",))),
        CAP11: _values(Certainty),
        CAP12: _values(Certainty),
    },
}
"""Element name → version → the exact strings its schema accepts (case and spaces included)."""

CERTAINTY_ALIASES = {"very likely": Certainty.LIKELY}
"""CAP 1.0's "Very Likely" was retired in 1.1, which tells readers to treat it as "Likely"."""
