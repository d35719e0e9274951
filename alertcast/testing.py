"""Fakes for tests: a channel that records what it was asked to send and fails on request.

Shipped in the package (not only under ``tests/``) so that people writing an
adapter or a route can test against the same fakes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from alertcast.ports import OutboundMessage, Receipt


@dataclass(frozen=True, slots=True)
class SentMessage:
    """One send the fake channel accepted."""

    target: str
    message: OutboundMessage
    provider_message_id: str


@dataclass
class RecordingChannel:
    """A :class:`alertcast.ports.Channel` that keeps every send in ``sent``.

    ``fail(target, error, times)`` makes the next ``times`` sends to ``target``
    raise ``error`` (any :class:`alertcast.errors.ChannelError`); a failing
    send is recorded in ``attempts`` but not in ``sent``. ``fail_all`` raises
    for every target. ``before_send`` is awaited before each send, so a test
    can act mid-fan-out; ``delay_s`` makes each send take that long.
    """

    name: str = "fake"
    kind: str = "fake"
    delivered: bool = False
    delay_s: float = 0.0
    before_send: Callable[[str], Awaitable[None]] | None = None
    sent: list[SentMessage] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)
    closed: bool = False
    _failures: dict[str, list[BaseException]] = field(default_factory=dict)
    _fail_all: BaseException | None = None

    def fail(self, target: str, error: BaseException, times: int = 1) -> None:
        self._failures.setdefault(target, []).extend([error] * times)

    def fail_all(self, error: BaseException | None) -> None:
        self._fail_all = error

    @property
    def targets(self) -> list[str]:
        """The targets sent to, in order (a target twice means it was sent twice)."""
        return [item.target for item in self.sent]

    async def send(self, message: OutboundMessage, target: str) -> Receipt:
        if self.before_send is not None:
            await self.before_send(target)
        self.attempts.append(target)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        queued = self._failures.get(target)
        if queued:
            raise queued.pop(0)
        if self._fail_all is not None:
            raise self._fail_all
        message_id = f"{self.name}-{len(self.sent) + 1}"
        self.sent.append(SentMessage(target, message, message_id))
        return Receipt(provider_message_id=message_id, delivered=self.delivered)

    async def aclose(self) -> None:
        self.closed = True


class UnlimitedLimiter:
    """A rate limiter that never waits; records pauses asked for in ``pauses``."""

    def __init__(self) -> None:
        self.pauses: list[tuple[str, float]] = []
        self.acquired = 0

    async def acquire(
        self,
        channel: str,
        *,
        recipient: str | None = None,
        group: str | None = None,
        cost: float = 1.0,
    ) -> None:
        self.acquired += 1

    def pause(self, channel: str, seconds: float) -> None:
        self.pauses.append((channel, seconds))


@dataclass(frozen=True, slots=True)
class FollowUp:
    """One follow-up the fake channel accepted: ``kind`` of earlier message ``of``."""

    kind: str
    target: str
    of: str
    message: OutboundMessage | None
    provider_message_id: str | None


@dataclass
class FollowUpRecordingChannel(RecordingChannel):
    """A :class:`RecordingChannel` that also edits, replies and deletes (a ``FollowUpChannel``).

    ``preferences`` maps a CAP msgType to the follow-up used for it (by
    default Update → edit, Cancel → reply); accepted follow-ups are kept in
    ``follow_ups_done``. ``fail_follow_up(kind, error, times)`` makes the next
    ``times`` follow-ups of that kind raise ``error``. An edit keeps the
    earlier message's id, as Telegram and Mastodon do.
    """

    preferences: dict[str, str] = field(
        default_factory=lambda: {"Update": "edit", "Cancel": "reply"}
    )
    follow_ups_done: list[FollowUp] = field(default_factory=list)
    _follow_up_failures: dict[str, list[BaseException]] = field(default_factory=dict)

    @property
    def follow_ups(self) -> frozenset[str]:
        return frozenset(self.preferences.values())

    def follow_up_for(self, msg_type: str) -> str | None:
        return self.preferences.get(msg_type)

    def fail_follow_up(self, kind: str, error: BaseException, times: int = 1) -> None:
        self._follow_up_failures.setdefault(kind, []).extend([error] * times)

    def _maybe_fail(self, kind: str) -> None:
        queued = self._follow_up_failures.get(kind)
        if queued:
            raise queued.pop(0)

    async def edit(
        self, provider_message_id: str, message: OutboundMessage, target: str
    ) -> Receipt:
        self._maybe_fail("edit")
        self.follow_ups_done.append(
            FollowUp("edit", target, provider_message_id, message, provider_message_id)
        )
        return Receipt(provider_message_id=provider_message_id, delivered=self.delivered)

    async def reply(
        self, provider_message_id: str, message: OutboundMessage, target: str
    ) -> Receipt:
        self._maybe_fail("reply")
        message_id = f"{self.name}-reply-{len(self.follow_ups_done) + 1}"
        self.follow_ups_done.append(
            FollowUp("reply", target, provider_message_id, message, message_id)
        )
        return Receipt(provider_message_id=message_id, delivered=self.delivered)

    async def delete(self, provider_message_id: str, target: str) -> None:
        self._maybe_fail("delete")
        self.follow_ups_done.append(FollowUp("delete", target, provider_message_id, None, None))
