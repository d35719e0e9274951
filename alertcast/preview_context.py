"""What a preview reads from the database: the routing context and the routes a message inherits.

A preview must route an alert exactly as the planner will, so it gives routing
the same context (:func:`alertcast.dispatch.planner.routing_context`: the
silences in force, the alerts in force and the routing groups), read once per
preview and only read: the console calls the preview on every pause in typing,
and a preview never writes anything.

An Update or a Cancel follows, besides its own routes, the routes already
planned for the alerts it references (a Cancel carries no info, so category
or event matchers miss it, yet everyone told about the alert must be told it
is cancelled). :func:`inherited_routes` finds those routes and how many
targets were reached on each, which is the audience the planner will give
them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.dispatch.planner import REACHED_STATES, delivery_from_json
from alertcast.dispatch.planner import routing_context as planner_context
from alertcast.domain import Alert
from alertcast.rules_model import Delivery, RoutingContext
from alertcast.store.alerts import key_matches
from alertcast.store.engine import database_errors, read_only
from alertcast.store.tables import alerts, deliveries, dispatch_routes

__all__ = ["InheritedRoute", "inherited_routes", "routing_context"]


async def routing_context(
    engine: AsyncEngine,
    alert: Alert,
    *,
    now: datetime,
    feed: str | None = None,
    thread: str | None = None,
) -> RoutingContext:
    """The context the planner would route ``alert`` with at ``now`` (read only).

    The alert itself is left out of the alerts in force (by key), so a stored
    alert previewed again does not inhibit or group with itself.
    """
    return await planner_context(
        engine, now=now, feed=feed, thread=thread, leave_out=lambda a: a.alert.key == alert.key
    )


@dataclass(frozen=True, slots=True)
class InheritedRoute:
    """A route of a referenced alert that this message follows, and whom it reached there."""

    delivery: Delivery
    inherited_from: int
    """The stored id of the referenced alert the route was planned for."""
    reached: int
    """Targets on the channel that were (or may have been) sent the referenced alerts."""


async def inherited_routes(
    engine: AsyncEngine, alert: Alert, own: Sequence[Delivery]
) -> list[InheritedRoute]:
    """The planned routes of the alerts ``alert`` references that its own routing missed.

    Mirrors the planner: only ``planned`` routes count, the first one per
    (route, channel) wins, and a (route, channel) the alert routes to itself is
    not inherited. An alert that references nothing stored inherits nothing.
    """
    if not alert.references:
        return []
    taken = {(d.route, d.channel) for d in own}
    with database_errors(f"cannot read the routes of the alerts {alert.key} references"):
        async with read_only(engine) as conn:
            ids = sorted(
                int(i)
                for i in (
                    await conn.execute(
                        select(alerts.c.id).where(
                            or_(*(key_matches(key) for key in alert.references))
                        )
                    )
                ).scalars()
            )
            if not ids:
                return []
            rows = (
                await conn.execute(
                    select(dispatch_routes)
                    .where(dispatch_routes.c.alert_id.in_(ids))
                    .where(dispatch_routes.c.state == "planned")
                    .order_by(dispatch_routes.c.id)
                )
            ).all()
            reached = {
                str(r.channel): int(r.n)
                for r in await conn.execute(
                    select(
                        deliveries.c.channel,
                        func.count(func.distinct(deliveries.c.target)).label("n"),
                    )
                    .where(deliveries.c.alert_id.in_(ids))
                    .where(deliveries.c.state.in_(REACHED_STATES))
                    .group_by(deliveries.c.channel)
                )
            }
    found: dict[tuple[str, str], InheritedRoute] = {}
    for row in rows:
        pair = (str(row.route), str(row.channel))
        if pair in taken or pair in found:
            continue
        data = json.loads(row.decision)
        data.pop("deferred_until", None)
        found[pair] = InheritedRoute(
            delivery=delivery_from_json(data),
            inherited_from=int(row.alert_id),
            reached=reached.get(pair[1], 0),
        )
    return list(found.values())
