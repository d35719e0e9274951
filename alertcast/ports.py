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


FOLLOW_UP_KINDS = frozenset({"edit", "reply", "delete"})
"""The follow-ups a channel may offer for a message it already sent."""


@runtime_checkable
class FollowUpChannel(Channel, Protocol):
    """A channel that can act on a message it sent earlier: edit it, reply to it, delete it.

    Optional: a channel that is not one simply gets a plain :meth:`send` for
    an Update or a Cancel. When a row of an Update or Cancel goes to a target
    that already received a message of the alert it replaces,
    :mod:`alertcast.dispatch.followup` asks :meth:`follow_up_for` what to do
    with that earlier message, so each channel picks what its readers expect
    (an edited Telegram post; a "CANCELADO / CANCELLED" reply; a deleted
    post on X). Failures raise :class:`alertcast.errors.ChannelError`
    subclasses exactly as :meth:`send` does; an edit or reply that can no
    longer be done (message too old, gone, not editable, more parts than one
    message holds) raises :class:`alertcast.errors.Permanent`, and the
    dispatcher then sends the message plainly, so the people are still told.
    """

    @property
    def follow_ups(self) -> frozenset[str]:
        """The follow-ups this channel supports: a subset of :data:`FOLLOW_UP_KINDS`."""
        ...

    def follow_up_for(self, msg_type: str) -> str | None:
        """The follow-up to use for a CAP ``msg_type`` ("Update" or "Cancel"), or None.

        None means a plain send; any other answer must be in :attr:`follow_ups`.
        """
        ...

    async def edit(
        self, provider_message_id: str, message: OutboundMessage, target: str
    ) -> Receipt:
        """Replace the text of the earlier message with ``message``.

        The receipt's ``provider_message_id`` is the message now carrying
        ``message`` (usually the same id; None is read as the same id).
        """
        ...

    async def reply(
        self, provider_message_id: str, message: OutboundMessage, target: str
    ) -> Receipt:
        """Send ``message`` as a reply to the earlier message (threaded under it)."""
        ...

    async def delete(self, provider_message_id: str, target: str) -> None:
        """Remove the earlier message; a message already gone may raise Permanent."""
        ...


@runtime_checkable
class GroupedChannel(Protocol):
    """A channel whose provider limits sends per group of targets (Telegram: 20 a minute).

    The planner stores each target's group on its ledger row, and the rate
    limiter keeps one budget per group.
    """

    def group_of(self, target: str) -> str | None: ...
