"""The ports between the core and its adapters: what a channel must offer the dispatcher.

Pure declarations, no SDK: an adapter (Telegram, SMS, a webhook) implements
:class:`Channel`; the dispatcher only ever sees this shape, so it can be driven
by a fake in tests and by any provider in production.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One rendered message for one channel, as the ledger stores it and the channel sends it.

    ``parts`` are the texts sent one after the other (a long alert split for
    the channel's limit); ``severity`` is the CAP severity of the alert, which
    the retry policy reads (an ambiguous Extreme warning is retried once).
    """

    parts: tuple[str, ...]
    subject: str | None = None
    language: str | None = None
    severity: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def to_json(self) -> dict[str, Any]:
        """The JSON shape stored in the ledger row."""
        return {
            "parts": list(self.parts),
            "subject": self.subject,
            "language": self.language,
            "severity": self.severity,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OutboundMessage:
        return cls(
            parts=tuple(str(part) for part in data.get("parts", ())),
            subject=data.get("subject"),
            language=data.get("language"),
            severity=data.get("severity"),
            extra=dict(data.get("extra") or {}),
        )


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the provider answered: its id for the message, for follow-ups and status callbacks."""

    provider_message_id: str | None = None
    delivered: bool = False
    """True when the provider confirms delivery to the recipient, not only acceptance."""


@runtime_checkable
class Channel(Protocol):
    """An outbound channel instance (one bot, one sender number, one account).

    ``send`` raises one of the :class:`alertcast.errors.ChannelError`
    subclasses on failure and never retries or sleeps by itself.
    """

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    async def send(self, message: OutboundMessage, target: str) -> Receipt: ...

    async def aclose(self) -> None: ...
