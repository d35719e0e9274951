"""Citizens who subscribed, as the rest of alertcast sees them: no address in clear text.

A subscriber is one person on one channel (a Telegram chat, a phone number
for SMS or WhatsApp). The store keeps only what sending and targeting need:
the address (encrypted at rest, found by a keyed hash), the language, the
topics, the places (chosen catalogue areas and/or a shared point) and quiet
hours. Every opt-in and opt-out is an audit record with the text the person
was shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

TOPICS: tuple[str, ...] = ("clima", "sismos", "salud", "carreteras", "avisos")
"""The topics people choose from (Clima, Sismos, Salud, Carreteras, Avisos generales)."""

TOPIC_NAMES: dict[str, dict[str, str]] = {
    "clima": {"es": "Clima", "en": "Weather"},
    "sismos": {"es": "Sismos", "en": "Earthquakes"},
    "salud": {"es": "Salud", "en": "Health"},
    "carreteras": {"es": "Carreteras", "en": "Roads"},
    "avisos": {"es": "Avisos generales", "en": "General notices"},
}

LANGUAGES: tuple[str, ...] = ("es", "en")
"""Languages a person can choose; Spanish first."""


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Local hours when only Extreme alerts come through (the person is told so)."""

    start: time
    end: time
    timezone: str = "America/Mexico_City"

    def to_json(self) -> dict[str, str]:
        return {
            "start": self.start.strftime("%H:%M"),
            "end": self.end.strftime("%H:%M"),
            "timezone": self.timezone,
        }


@dataclass(frozen=True, slots=True)
class Subscriber:
    """One person on one channel. ``areas`` are catalogue codes (``INEGI_CVEGEO:09015``)."""

    id: int
    channel: str
    language: str = "es"
    topics: frozenset[str] = field(default_factory=frozenset)
    areas: tuple[str, ...] = ()
    point: tuple[float, float] | None = None
    """(latitude, longitude) of a shared location, when the person shared one."""
    quiet_hours: QuietHours | None = None
    active: bool = True
    created_at: datetime | None = None
    last_seen_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "channel": self.channel,
            "language": self.language,
            "topics": sorted(self.topics),
            "areas": list(self.areas),
            "point": list(self.point) if self.point is not None else None,
            "quiet_hours": self.quiet_hours.to_json() if self.quiet_hours else None,
            "active": self.active,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "last_seen_at": self.last_seen_at.isoformat() if self.last_seen_at else None,
        }


ACK_SAFE = "safe"
ACK_NEED_HELP = "need_help"
ACK_KINDS = (ACK_SAFE, ACK_NEED_HELP)
"""Answers a person gives from an alert: "Estoy a salvo" / "Necesito ayuda"."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """What targeting reads of a subscriber: no address, nothing it does not need.

    The store streams these in batches for one channel; targeting decides from
    them alone who is in an alert's audience, and only the chosen ids are ever
    turned back into addresses.
    """

    id: int
    language: str = "es"
    topics: frozenset[str] = field(default_factory=frozenset)
    areas: tuple[str, ...] = ()
    """Catalogue codes (``INEGI_CVEGEO:09015``)."""
    point: tuple[float, float] | None = None
    """(latitude, longitude) of a shared location."""
    quiet_hours: QuietHours | None = None


SUBSCRIBER_TARGET_PREFIX = "sub:"
"""How the ledger names a subscriber: by id, never by address."""


def subscriber_target(subscriber_id: int) -> str:
    """The ledger target of a subscriber (``sub:42``)."""
    return f"{SUBSCRIBER_TARGET_PREFIX}{subscriber_id}"


def subscriber_id_of(target: str) -> int | None:
    """The subscriber id of a ``sub:ID`` target; None for any other target."""
    if not target.startswith(SUBSCRIBER_TARGET_PREFIX):
        return None
    rest = target[len(SUBSCRIBER_TARGET_PREFIX) :]
    return int(rest) if rest.isdigit() else None
