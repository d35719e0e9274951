"""``GET /metrics``: the process's and the database's figures for Prometheus.

No credentials, as Prometheus scrapers expect; nothing secret can leak since
no label carries a target, a payload, an error text or a token
(:mod:`alertcast.metrics`). The database figures are refreshed before
rendering, at most every couple of seconds (:data:`alertcast.metrics.CACHE_S`),
so a scraper per instance costs the database a few aggregate queries each
interval, not one per scrape. An unreadable database never fails the scrape:
the process's own figures are served with ``alertcast_database_up 0``.
"""

from __future__ import annotations

import structlog
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.metrics import CONTENT_TYPE, Metrics
from alertcast.metrics import metrics as process_metrics

__all__ = ["METRICS_PATH", "MetricsEndpoint", "add_metrics_route"]

log = structlog.get_logger(__name__)

METRICS_PATH = "/metrics"


class MetricsEndpoint:
    """The handler, with the engine the database figures come from."""

    def __init__(self, engine: AsyncEngine, metrics: Metrics) -> None:
        self._engine = engine
        self._metrics = metrics

    async def handle(self, request: web.Request) -> web.Response:
        await self._metrics.refresh_from_database(self._engine)
        return web.Response(
            body=self._metrics.render(),
            headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"},
        )


def add_metrics_route(
    app: web.Application, engine: AsyncEngine, metrics: Metrics | None = None
) -> MetricsEndpoint:
    """Serve ``GET /metrics`` on ``app`` from ``metrics`` (the process's by default)."""
    endpoint = MetricsEndpoint(engine, metrics if metrics is not None else process_metrics())
    app.router.add_get(METRICS_PATH, endpoint.handle)
    return endpoint
