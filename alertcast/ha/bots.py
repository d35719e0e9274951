"""The citizens' bots under their leases: each consumes only where ``bot:{channel}`` is held.

Telegram allows one ``getUpdates`` consumer per bot token. Every instance
running the ``bot`` role builds the bots and holds out for each bot's lease;
the holder polls (or, in webhook mode, registers the webhook), the others
stand by and take over within the lease's time to live when the holder dies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.ha.leases import DEFAULT_RENEW_EVERY_S, DEFAULT_TTL_S, RoleLease, utc_now

log = structlog.get_logger(__name__)


class Consumer(Protocol):
    """What a lease starts and stops: :class:`alertcast.bot.runner.CitizenBot` is one."""

    name: str

    async def start_consuming(self) -> None: ...

    async def stop_consuming(self) -> None: ...


def bot_lease_name(channel: str) -> str:
    """The lease that lets one instance consume the updates of the bot of ``channel``."""
    return f"bot:{channel}"


class LeasedBots:
    """Bots that consume only while this instance holds their leases."""

    def __init__(
        self,
        bots: Sequence[Consumer],
        engine: AsyncEngine,
        owner: str,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        renew_every_s: float = DEFAULT_RENEW_EVERY_S,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.bots = list(bots)
        self.leases = [
            RoleLease(
                engine,
                bot_lease_name(bot.name),
                owner,
                ttl_s=ttl_s,
                renew_every_s=renew_every_s,
                clock=clock,
            )
            for bot in self.bots
        ]

    async def run(self, stop: asyncio.Event) -> None:
        """Hold every bot's lease until ``stop``; each bot's consumer runs while its lease is held.

        On the way out each consumer is stopped before its lease is released,
        so a standby never polls while this instance still does.
        """
        if not self.bots:
            return
        async with asyncio.TaskGroup() as group:
            for bot, lease in zip(self.bots, self.leases, strict=True):
                group.create_task(
                    lease.hold(stop, bot.start_consuming, bot.stop_consuming),
                    name=f"lease:{lease.name}",
                )
