"""What the desk shows of an alert: its state, who decided what, and the document.

One shape for the API, the console and the CLI, read from the ``alerts`` row,
its ``alert_approvals`` rows and (on request) its ``dispatch_routes`` rows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from alertcast.alert_json import alert_from_json, alert_to_json
from alertcast.domain import Alert, Status
from alertcast.store.tables import alert_approvals, dispatch_routes

__all__ = ["AlertView", "Approval", "load_approvals", "load_routes", "view_of"]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True, slots=True)
class Approval:
    """One person's decision on an alert."""

    user: str
    decision: str
    """``approve`` or ``reject``."""
    reason: str | None
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "decision": self.decision,
            "reason": self.reason,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class AlertView:
    """An alert as the desk shows it, composed here or received from a feed."""

    id: int
    alert: Alert
    state: str
    created_by: str | None
    approvals_required: int | None
    approvals: tuple[Approval, ...]
    scheduled_for: datetime | None
    submitted_at: datetime | None
    review_reason: str | None
    source: str
    received_at: datetime
    is_exercise: bool
    routes: tuple[Mapping[str, Any], ...] | None = None
    """The routed deliveries (route, channel, state, approval, detail), when asked for."""

    @property
    def approved_by(self) -> tuple[str, ...]:
        """Who approved it, in order."""
        return tuple(a.user for a in self.approvals if a.decision == "approve")

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "state": self.state,
            "created_by": self.created_by,
            "approvals_required": self.approvals_required,
            "approvals": [a.to_json() for a in self.approvals],
            "scheduled_for": _iso(self.scheduled_for),
            "submitted_at": _iso(self.submitted_at),
            "review_reason": self.review_reason,
            "source": self.source,
            "received_at": self.received_at.isoformat(),
            "exercise": self.is_exercise,
            "alert": alert_to_json(self.alert),
        }
        if self.routes is not None:
            data["routes"] = [dict(r) for r in self.routes]
        return data


def view_of(
    row: Row[Any],
    approvals: Sequence[Approval],
    routes: Sequence[Mapping[str, Any]] | None = None,
) -> AlertView:
    """The view of a full ``alerts`` row."""
    alert = alert_from_json(json.loads(row.normalized))
    return AlertView(
        id=int(row.id),
        alert=alert,
        state=str(row.state),
        created_by=row.created_by,
        approvals_required=row.approvals_required,
        approvals=tuple(approvals),
        scheduled_for=row.scheduled_for,
        submitted_at=row.submitted_at,
        review_reason=row.review_reason,
        source=row.source,
        received_at=row.received_at,
        is_exercise=alert.status is Status.EXERCISE,
        routes=tuple(routes) if routes is not None else None,
    )


async def load_approvals(
    conn: AsyncConnection, alert_ids: Sequence[int]
) -> dict[int, list[Approval]]:
    """The decisions on each of ``alert_ids``, oldest first."""
    found: dict[int, list[Approval]] = {alert_id: [] for alert_id in alert_ids}
    if not alert_ids:
        return found
    rows = await conn.execute(
        select(alert_approvals)
        .where(alert_approvals.c.alert_id.in_(list(alert_ids)))
        .order_by(alert_approvals.c.at, alert_approvals.c.id)
    )
    for row in rows:
        found[int(row.alert_id)].append(Approval(row.user_name, row.decision, row.reason, row.at))
    return found


async def load_routes(conn: AsyncConnection, alert_id: int) -> list[dict[str, Any]]:
    """The routed deliveries of an alert, in routing order."""
    rows = await conn.execute(
        select(dispatch_routes)
        .where(dispatch_routes.c.alert_id == alert_id)
        .order_by(dispatch_routes.c.id)
    )
    return [
        {
            "route": r.route,
            "channel": r.channel,
            "state": r.state,
            "approval": r.approval,
            "detail": r.detail,
        }
        for r in rows
    ]
