"""What the bot needs from the subscriber store and the area catalogue, and no more.

The bot never touches SQL: it talks to these two shapes, which
:class:`alertcast.subscribers.store.SubscriberStore` and
:class:`alertcast.areas.AreaCatalogue` satisfy, and which small in-memory
stand-ins can satisfy in tests of the conversation alone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol

from alertcast.subscribers.model import QuietHours, Subscriber


class AreaLike(Protocol):
    """One catalogue area as the bot shows it: its code and its name."""

    @property
    def code(self) -> str: ...

    @property
    def name(self) -> str: ...


class AreaSearch(Protocol):
    """The part of the area catalogue the bot uses."""

    async def search(
        self, text: str, *, offset: int = 0, limit: int = 8
    ) -> tuple[Sequence[AreaLike], int]: ...

    async def get(self, code: str) -> AreaLike | None: ...


class Subscribers(Protocol):
    """The part of the subscriber store the bot uses."""

    async def subscribe(
        self,
        channel: str,
        address: str,
        *,
        language: str = "es",
        topics: Iterable[str] = (),
        areas: Iterable[str] = (),
        point: tuple[float, float] | None = None,
        consent_text: str,
        source: str,
    ) -> Subscriber: ...

    async def get(self, channel: str, address: str) -> Subscriber | None: ...

    async def update(
        self,
        subscriber_id: int,
        *,
        language: str | None = None,
        topics: Iterable[str] | None = None,
        areas: Iterable[str] | None = None,
        point: tuple[float, float] | None = None,
        clear_point: bool = False,
        quiet_hours: QuietHours | None = None,
        clear_quiet_hours: bool = False,
        actor: str,
    ) -> Subscriber: ...

    async def unsubscribe(
        self, channel: str, address: str, *, consent_text: str, source: str
    ) -> bool: ...

    async def touch(self, subscriber_id: int) -> None: ...

    async def record_ack(self, subscriber_id: int, alert_id: int, kind: str) -> None: ...


RecentAlerts = Callable[[Subscriber], "list[str] | Awaitable[list[str]]"]
"""Short lines about the recent alerts that reached a subscriber (``/misalertas``)."""
