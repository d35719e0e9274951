"""Subscribers through the API: counts for everyone, a person's data for admins only.

``GET /api/v1/subscribers/count`` gives active subscribers per channel, and
``GET /api/v1/alerts/{id}/acknowledgements`` how many people answered an alert
each way: figures, never a person. Export and delete answer a person's access
and erasure requests, so they need the admin role, take the subscriber's id in
the body (ids stay out of URLs and access logs) and are audited by the store
with the admin as actor (``subscriber.exported``, ``subscriber.deleted``).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.officers.roles import Role
from alertcast.subscribers.store import SubscriberNotFound, SubscriberStore
from alertcast.web.api.inputs import json_object, path_id, required_id
from alertcast.web.api.problems import ProblemError, message
from alertcast.web.api.stored import require_alert
from alertcast.web.auth import require


class SubscribersApi:
    """Handlers over the subscriber store (None when subscriptions are not configured)."""

    def __init__(self, engine: AsyncEngine, store: SubscriberStore | None) -> None:
        self._engine = engine
        self._store = store

    def _configured(self, request: web.Request) -> SubscriberStore:
        if self._store is None:
            raise ProblemError(404, message(request, "subscribers.unavailable"))
        return self._store

    async def count(self, request: web.Request) -> web.Response:
        require(request, Role.VIEWER)
        counts = await self._store.counts() if self._store is not None else {}
        body: dict[str, Any] = {
            "configured": self._store is not None,
            "channels": counts,
            "total": sum(counts.values()),
        }
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    async def export(self, request: web.Request) -> web.Response:
        who = require(request, Role.ADMIN)
        store = self._configured(request)
        subscriber_id = required_id(request, await json_object(request, allowed={"id"}), "id")
        try:
            data = await store.export(subscriber_id, actor=who.actor)
        except SubscriberNotFound as exc:
            raise ProblemError(
                404, message(request, "subscriber.not_found", id=subscriber_id)
            ) from exc
        return web.json_response(data, headers={"Cache-Control": "no-store"})

    async def delete(self, request: web.Request) -> web.Response:
        who = require(request, Role.ADMIN)
        store = self._configured(request)
        subscriber_id = required_id(request, await json_object(request, allowed={"id"}), "id")
        if not await store.delete(subscriber_id, actor=who.actor):
            raise ProblemError(404, message(request, "subscriber.not_found", id=subscriber_id))
        return web.json_response({"id": subscriber_id, "deleted": True})

    async def acknowledgements(self, request: web.Request) -> web.Response:
        require(request, Role.VIEWER)
        alert_id = path_id(request, "alert_id")
        await require_alert(request, self._engine, alert_id)
        counts = await self._store.ack_counts(alert_id) if self._store is not None else {}
        body = {"alert_id": alert_id, "counts": counts, "total": sum(counts.values())}
        return web.json_response(body, headers={"Cache-Control": "no-store"})
