"""The alert model: immutable, CAP 1.2 shaped, free of I/O.

Every alert alertcast knows, whether it came from a feed or from a duty
officer, is one of these records. The types mirror the CAP 1.2 structure
(alert → info → resource / area) so that nothing an issuer said is lost, and
the closed vocabularies are enums so that a typo cannot route a tsunami
warning as a road report.

Names are the snake_case of the CAP element names; repeated elements are
tuples (``categories`` for ``<category>``, ``polygons`` for ``<polygon>``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import NamedTuple

CAP_NAMESPACES: dict[str, str] = {
    "urn:oasis:names:tc:emergency:cap:1.2": "1.2",
    "urn:oasis:names:tc:emergency:cap:1.1": "1.1",
    "http://www.incident.com/cap/1.0": "1.0",
}
"""Namespace URI → CAP version."""

CAP12_NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.2"


class Status(StrEnum):
    """``<status>``: who the alert is meant for. Only Actual reaches the public."""

    ACTUAL = "Actual"
    EXERCISE = "Exercise"
    SYSTEM = "System"
    TEST = "Test"
    DRAFT = "Draft"


class MsgType(StrEnum):
    """``<msgType>``: what the message does to earlier ones."""

    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"
    ACK = "Ack"
    ERROR = "Error"


class Scope(StrEnum):
    """``<scope>``: who may see the alert."""

    PUBLIC = "Public"
    RESTRICTED = "Restricted"
    PRIVATE = "Private"


class Category(StrEnum):
    """``<category>``."""

    GEO = "Geo"
    MET = "Met"
    SAFETY = "Safety"
    SECURITY = "Security"
    RESCUE = "Rescue"
    FIRE = "Fire"
    HEALTH = "Health"
    ENV = "Env"
    TRANSPORT = "Transport"
    INFRA = "Infra"
    CBRNE = "CBRNE"
    OTHER = "Other"


class ResponseType(StrEnum):
    """``<responseType>``."""

    SHELTER = "Shelter"
    EVACUATE = "Evacuate"
    PREPARE = "Prepare"
    EXECUTE = "Execute"
    AVOID = "Avoid"
    MONITOR = "Monitor"
    ASSESS = "Assess"
    ALL_CLEAR = "AllClear"
    NONE = "None"


class _Ranked(StrEnum):
    """A vocabulary with an order of gravity; ``rank`` 0 is the gravest, Unknown the last."""

    @property
    def rank(self) -> int:
        return list(type(self)).index(self)


class Urgency(_Ranked):
    """``<urgency>``, gravest first."""

    IMMEDIATE = "Immediate"
    EXPECTED = "Expected"
    FUTURE = "Future"
    PAST = "Past"
    UNKNOWN = "Unknown"


class Severity(_Ranked):
    """``<severity>``, gravest first."""

    EXTREME = "Extreme"
    SEVERE = "Severe"
    MODERATE = "Moderate"
    MINOR = "Minor"
    UNKNOWN = "Unknown"


class Certainty(_Ranked):
    """``<certainty>``, surest first."""

    OBSERVED = "Observed"
    LIKELY = "Likely"
    POSSIBLE = "Possible"
    UNLIKELY = "Unlikely"
    UNKNOWN = "Unknown"


class AlertKey(NamedTuple):
    """What identifies a CAP message: ``(sender, identifier, sent)``.

    ``sent`` is an aware datetime, so two spellings of the same instant
    (``-00:00`` and ``+00:00``) are the same key.
    """

    sender: str
    identifier: str
    sent: datetime

    def __str__(self) -> str:
        """The CAP ``<references>`` form: ``sender,identifier,sent``."""
        return f"{self.sender},{self.identifier},{format_cap_datetime(self.sent)}"


@dataclass(frozen=True, slots=True)
class NamedValue:
    """A ``valueName``/``value`` pair: eventCode, parameter and geocode share this shape."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class Circle:
    """``<circle>``: a centre in WGS 84 and a radius in kilometres."""

    lat: float
    lon: float
    radius_km: float


Point = tuple[float, float]
"""``(lat, lon)`` in WGS 84, the order CAP writes them in."""


@dataclass(frozen=True, slots=True)
class Polygon:
    """``<polygon>``: a closed ring of ``(lat, lon)`` points."""

    points: tuple[Point, ...]


@dataclass(frozen=True, slots=True)
class Area:
    """``<area>``: where the info applies."""

    area_desc: str
    polygons: tuple[Polygon, ...] = ()
    circles: tuple[Circle, ...] = ()
    geocodes: tuple[NamedValue, ...] = ()
    altitude: float | None = None
    ceiling: float | None = None


@dataclass(frozen=True, slots=True)
class Resource:
    """``<resource>``: a file that goes with the info (audio, image, map)."""

    resource_desc: str
    mime_type: str
    size: int | None = None
    uri: str | None = None
    deref_uri: str | None = None
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class Info:
    """``<info>``: the event in one language."""

    categories: tuple[Category, ...]
    event: str
    urgency: Urgency
    severity: Severity
    certainty: Certainty
    language: str = "en-US"
    response_types: tuple[ResponseType, ...] = ()
    audience: str | None = None
    event_codes: tuple[NamedValue, ...] = ()
    effective: datetime | None = None
    onset: datetime | None = None
    expires: datetime | None = None
    sender_name: str | None = None
    headline: str | None = None
    description: str | None = None
    instruction: str | None = None
    web: str | None = None
    contact: str | None = None
    parameters: tuple[NamedValue, ...] = ()
    resources: tuple[Resource, ...] = ()
    areas: tuple[Area, ...] = ()

    def parameter(self, name: str) -> str | None:
        """The first parameter called ``name``, or None."""
        return next((p.value for p in self.parameters if p.name == name), None)


@dataclass(frozen=True, slots=True)
class Alert:
    """``<alert>``: one CAP message."""

    identifier: str
    sender: str
    sent: datetime
    status: Status
    msg_type: MsgType
    scope: Scope
    source: str | None = None
    restriction: str | None = None
    addresses: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    note: str | None = None
    references: tuple[AlertKey, ...] = ()
    incidents: tuple[str, ...] = ()
    infos: tuple[Info, ...] = field(default=())

    @property
    def key(self) -> AlertKey:
        """The identity of this message."""
        return AlertKey(self.sender, self.identifier, self.sent)

    @property
    def expires(self) -> datetime | None:
        """When the whole alert stops being in force.

        The latest ``expires`` of its infos; None when any info has no expiry
        (or there is no info, as in a Cancel): such an alert never lapses by
        itself and must be cancelled.
        """
        ends = [info.expires for info in self.infos]
        if not ends or any(end is None for end in ends):
            return None
        return max(end for end in ends if end is not None)

    def is_expired(self, at: datetime) -> bool:
        """True when every info has expired at ``at`` (an aware datetime)."""
        ends = self.expires
        return ends is not None and at >= ends

    def languages(self) -> tuple[str, ...]:
        """The languages of the infos, in document order, without repeats."""
        return tuple(dict.fromkeys(info.language for info in self.infos))

    def info_for(self, language: str) -> Info | None:
        """The info in ``language`` (exact tag, then primary subtag), else the first."""
        if not self.infos:
            return None
        wanted = language.lower()
        for info in self.infos:
            if info.language.lower() == wanted:
                return info
        primary = wanted.split("-")[0]
        for info in self.infos:
            if info.language.lower().split("-")[0] == primary:
                return info
        return self.infos[0]


def format_cap_datetime(value: datetime) -> str:
    """Format an aware datetime the way CAP 1.2 wants it: seconds and a ``±hh:mm`` offset."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    text = value.replace(microsecond=0).isoformat()
    return text[:-6] + "+00:00" if text.endswith("Z") else text


def parse_references(text: str) -> tuple[tuple[AlertKey, ...], list[str]]:
    """Parse a ``<references>`` value into keys, with a problem per malformed entry.

    Entries are whitespace-separated ``sender,identifier,sent``. CAP forbids
    commas in sender and identifier; real issuers sometimes put them in the
    identifier anyway, so the first field is the sender, the last the time,
    and whatever lies between is the identifier.
    """
    keys: list[AlertKey] = []
    problems: list[str] = []
    for entry in text.split():
        parts = entry.split(",")
        if len(parts) < 3:
            problems.append(f"reference {entry!r} is not 'sender,identifier,sent'")
            continue
        sender, identifier, sent_text = parts[0], ",".join(parts[1:-1]), parts[-1]
        try:
            sent = parse_datetime(sent_text)
        except ValueError as exc:
            problems.append(f"reference {entry!r}: {exc}")
            continue
        keys.append(AlertKey(sender, identifier, sent))
    return tuple(keys), problems


def parse_datetime(text: str) -> datetime:
    """Parse a CAP date-time. Naive times are refused: an alert must say its offset.

    ``-00:00`` (RFC 3339's "offset unknown") is read as UTC. ``Z`` is accepted.
    """
    value = text.strip()
    if not value:
        raise ValueError("empty date-time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset")
    return parsed
