"""``GET /api/v1/feeds`` and ``GET /api/v1/channels``: what comes in, and what goes out.

Feed health is :func:`alertcast.feed_health.health_of`, the same figures as
``alertcast feeds list --json``. Channels are the configured ones with their
kind, whether they are enabled and the global rate limit the worker applies;
never their secrets or options, which may hold addresses and tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.config import Config
from alertcast.feed_health import health_of
from alertcast.officers.roles import Role
from alertcast.store.feed_state import FeedStateRepository
from alertcast.web.auth import require


class FeedsApi:
    """Handlers over the configuration and the feeds' stored state."""

    def __init__(
        self,
        engine: AsyncEngine,
        config: Config,
        channel_limits: Mapping[str, float],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = engine
        self._config = config
        self._limits = dict(channel_limits)
        self._clock = clock

    async def feeds(self, request: web.Request) -> web.Response:
        require(request, Role.VIEWER)
        states = await FeedStateRepository(self._engine).all()
        now = self._clock()
        body = {
            "feeds": [
                health_of(feed, states.get(feed.name), now).to_json() for feed in self._config.feeds
            ]
        }
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    async def channels(self, request: web.Request) -> web.Response:
        require(request, Role.VIEWER)
        body = {
            "channels": [
                {
                    "name": channel.name,
                    "kind": channel.kind,
                    "enabled": channel.enabled,
                    "rate_limit_per_s": self._limits.get(channel.name),
                }
                for channel in self._config.channels
            ]
        }
        return web.json_response(body)
