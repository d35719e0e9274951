"""Dispatch as a running part of a process: the planner, the worker and the channels together.

``alertcast serve`` runs it beside the feeds and the web; ``alertcast worker``
runs it alone (scale-out: any number of workers against one PostgreSQL).
Everything opened here is closed by :meth:`Dispatch.aclose`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.areas import AreaCatalogue
from alertcast.channels.registry import ChannelContext, build_channels
from alertcast.config import Config
from alertcast.dispatch.planner import Planner
from alertcast.dispatch.receipts import apply_early_receipts
from alertcast.dispatch.retry import RetryPolicy, policy_from_options
from alertcast.dispatch.worker import Worker
from alertcast.errors import ConfigError, ConfigProblem, StoreError
from alertcast.ports import Channel, GroupedChannel
from alertcast.ratelimit import RateLimiter
from alertcast.ratelimit_shared import SharedBudget
from alertcast.subscribers.audience import SubscriberAudience
from alertcast.subscribers.store import SubscriberStore

log = structlog.get_logger(__name__)

CATCH_UP_EVERY_S = 15.0
"""How often alerts left unrouted or half-planned (after a crash) are picked up again."""


def worker_id() -> str:
    """A name for this process in leases and the audit trail: host, pid and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def retry_policies(config: Config) -> tuple[dict[str, RetryPolicy], list[ConfigProblem]]:
    """Each enabled channel's retry policy from its ``[options]``, with every problem found."""
    policies: dict[str, RetryPolicy] = {}
    problems: list[ConfigProblem] = []
    for channel in config.channels:
        if channel.enabled:
            policies[channel.name], found = policy_from_options(channel.options, str(channel.file))
            problems.extend(found)
    return policies, problems


def dispatch_problems(config: Config) -> list[ConfigProblem]:
    """What ``alertcast check`` reports about rate limits and retries of the channels."""
    _, limit_problems = RateLimiter.from_channels(config.channels)
    _, retry_problems = retry_policies(config)
    try:
        build_channels(config.channels, ChannelContext(data_dir=config.service.data_dir))
        build_problems: list[ConfigProblem] = []
    except ConfigError as exc:
        build_problems = list(exc.problems)
    return [*limit_problems, *retry_problems, *build_problems, *_fallback_problems(config)]


def _fallback_problems(config: Config) -> list[ConfigProblem]:
    """``options.sms_fallback`` must name an enabled SMS channel."""
    sms = {c.name for c in config.channels if c.enabled and c.kind == "sms"}
    problems: list[ConfigProblem] = []
    for channel in config.channels:
        wanted = channel.options.get("sms_fallback")
        if channel.enabled and wanted is not None and wanted not in sms:
            problems.append(
                ConfigProblem(
                    str(channel.file),
                    "options.sms_fallback",
                    f"must name an enabled channel of kind sms, not {wanted!r}",
                )
            )
    return problems


@dataclass
class Dispatch:
    """The dispatch part of a process."""

    planner: Planner
    worker: Worker
    channels: dict[str, Channel]
    limiter: RateLimiter
    shared_budget: SharedBudget | None = None
    catch_up_every_s: float = CATCH_UP_EVERY_S
    _closed: bool = field(default=False, repr=False)

    async def run(self, stop: asyncio.Event, *, plan: bool = True) -> None:
        """Send until ``stop``; with ``plan``, also route what a crash left behind, periodically.

        On stop the worker claims nothing more, lets sends in flight finish
        within its drain bound and releases its leases.
        """
        async with asyncio.TaskGroup() as group:
            if plan:
                group.create_task(self._catch_up_periodically(stop), name="dispatch.catch_up")
            group.create_task(self.worker.run(stop), name="dispatch.worker")

    async def _catch_up_periodically(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.planner.catch_up()
                await apply_early_receipts(self.planner.engine)
                await self.planner.fall_back()
            except StoreError as exc:
                log.error("dispatch.catch_up_failed", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.catch_up_every_s)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.shared_budget is not None:
            await self.shared_budget.drain()
        for name, channel in self.channels.items():
            try:
                await channel.aclose()
            except Exception:  # one channel failing to close must not keep the others open
                log.exception("channel.close_failed", channel=name)


def build_dispatch(
    config: Config,
    engine: AsyncEngine,
    *,
    name: str | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    site_url: str | None = None,
    subscribers: SubscriberStore | None = None,
    catalogue: AreaCatalogue | None = None,
) -> Dispatch:
    """Build the planner, the channels, the rate limiter and the worker from ``config``.

    Raises ConfigError with every problem when a channel cannot be built. On
    PostgreSQL the channels' global budgets are shared with every other
    instance, so together they never exceed a provider's limit.
    """
    channels = build_channels(
        config.channels,
        ChannelContext(data_dir=config.service.data_dir, site_url=site_url, engine=engine),
    )
    local, limit_problems = RateLimiter.from_channels(config.channels)
    policies, retry_problems = retry_policies(config)
    for problem in [*limit_problems, *retry_problems]:
        log.warning("channel.option_problem", problem=str(problem))
    shared = SharedBudget(engine) if engine.dialect.name == "postgresql" else None
    limiter = local
    if shared is not None:
        limiter = RateLimiter(
            {c.name: local.limits(c.name) for c in config.channels if c.enabled}, shared=shared
        )
    worker = Worker(
        engine,
        channels,
        limiter,
        name or worker_id(),
        policies=policies,
        clock=clock,
        resolve_addresses=subscribers.resolve_targets if subscribers is not None else None,
        on_recipient_gone=subscribers.recipient_gone_hook() if subscribers is not None else None,
    )
    grouped = {
        name: channel.group_of
        for name, channel in channels.items()
        if isinstance(channel, GroupedChannel)
    }
    audience = (
        SubscriberAudience(subscribers, catalogue, named_areas=config.routes.areas)
        if subscribers is not None and catalogue is not None
        else None
    )
    planner = Planner(
        engine, config, audience=audience, clock=clock, site_url=site_url, group_of=grouped
    )
    return Dispatch(planner, worker, channels, limiter, shared)


__all__ = [
    "Dispatch",
    "build_dispatch",
    "dispatch_problems",
    "retry_policies",
    "worker_id",
]
