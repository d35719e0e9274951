"""From a stored alert to ledger rows: route it, hold what needs a person, render and plan the rest.

This is the one place where routing, approval, rendering and the ledger
meet. For each new alert in force:

1. **Route once.** The routing rules (``rules.toml``) decide the deliveries.
   The decision is stored (``dispatch_decisions``, keyed by the alert) in the
   same transaction as one ``dispatch_routes`` row per (route, channel) and
   the new group states, with an audit record. Whichever instance commits
   first routes the alert; a second attempt finds the row and does nothing,
   so an alert is never routed twice.
2. **Nothing goes out that nobody approved.** A route whose ``approval`` is
   ``one`` or ``two`` stays ``awaiting_approval``; only ``auto`` routes are
   planned at once, and routes needing no more people than already approved
   the alert (a composed alert is approved before it is released). Approval
   (by people, through the console, API or CLI) moves a route to
   ``planning``. A route deferred by quiet hours waits as ``deferred`` until
   its time.
3. **Render, then plan.** Each route in ``planning`` is rendered per language
   and its targets are streamed into the ledger (:func:`ledger.plan`,
   idempotent), after which the route is ``planned``. A template that fails
   marks the route ``failed`` with the reason, logged and audited, and never
   stops the other routes.

**Nothing lost.** The ingest calls :meth:`Planner.on_new_alert` right after
storing an alert; should the process die before or during planning,
:meth:`Planner.catch_up` (run at start and then periodically) routes active
alerts that have no decision and re-plans routes left in ``planning``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog
from sqlalchemy import and_, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alertcast import audit
from alertcast.config import ChannelConfig, Config
from alertcast.dispatch import ledger
from alertcast.domain import Alert, Status, format_cap_datetime, parse_datetime
from alertcast.errors import AlertcastError, StoreError
from alertcast.lifecycle import active_alerts
from alertcast.ports import OutboundMessage
from alertcast.render import Rendering, render
from alertcast.rules_eval import derived_priority
from alertcast.rules_model import (
    CHANNEL_POST,
    ActiveAlert,
    Approval,
    Audience,
    Delivery,
    GroupState,
    RoutingContext,
    RoutingDecision,
)
from alertcast.store.alerts import AlertRepository, AlertState, StoredAlert, lock_alert_writes
from alertcast.store.engine import database_errors, read_only
from alertcast.store.silences import SilenceRepository
from alertcast.store.tables import (
    alert_approvals,
    alert_references,
    alerts,
    deliveries,
    dispatch_decisions,
    dispatch_routes,
    route_groups,
)
from alertcast.templates import TemplateSet, template_set

log = structlog.get_logger(__name__)

MAX_ACTIVE_FOR_ROUTING = 500
"""Active alerts read as inhibition sources when routing one alert."""

CATCH_UP_WINDOW = timedelta(days=1)
"""How far back :meth:`Planner.catch_up` looks for alerts that were never routed."""

DEFAULT_POST_TARGET = "post"
"""The target of a channel post when the channel names none (``options.target``)."""

PLAN_BATCH = 1000

FALLBACK_BATCH = 5000
"""Failed rows turned into fallback rows per sweep (the next sweep takes the rest)."""

REACHED_STATES = ("sent", "delivered", "unknown", "claimed")
"""Delivery states whose target may have read the message (claimed: a send may be under way)."""


def ledger_priority(route_priority: int) -> int:
    """The ledger's priority (lower goes first) from routing's (higher goes first).

    Routing gives 100 for an Extreme Immediate real alert down to about -100
    for a drill; operators may set any number on a route. Negating keeps the
    order exactly and needs no bounds.
    """
    return -route_priority


class AudienceSource(Protocol):
    """Who a routed delivery reaches on a channel: the subscribers, by language, streamed."""

    async def languages(self, delivery: Delivery, alert: StoredAlert) -> Sequence[str]:
        """The languages of the audience, so each language is rendered once."""
        ...

    def targets(self, delivery: Delivery, alert: StoredAlert, language: str) -> AsyncIterator[str]:
        """The targets that read ``language``, streamed (never all in memory)."""
        ...


class NoSubscribers:
    """The audience source until subscribers exist: subscriber audiences reach nobody yet."""

    async def languages(self, delivery: Delivery, alert: StoredAlert) -> Sequence[str]:
        return ()

    async def targets(
        self, delivery: Delivery, alert: StoredAlert, language: str
    ) -> AsyncIterator[str]:
        nobody: tuple[str, ...] = ()
        for target in nobody:
            yield target


@dataclass(frozen=True, slots=True)
class RouteRow:
    """One ``dispatch_routes`` row."""

    id: int
    alert_id: int
    route: str
    channel: str
    state: str
    approval: str
    decision: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class DispatchResult:
    """What :meth:`Planner.dispatch` did for one alert."""

    alert_id: int
    routed: bool
    """False when the alert had been routed already (by this or another instance)."""
    planned: int = 0
    awaiting_approval: int = 0
    deferred: int = 0
    failed: int = 0
    deliveries: int = 0


def _route_state(delivery: Delivery, now: datetime, approvals: int = 0) -> str:
    """Where a routed delivery starts: held for people, deferred, or planned now.

    ``approvals`` is how many distinct people approved the alert already (a
    composed alert is approved before it is released): a route needing no
    more than that is not held a second time.
    """
    if delivery.approval.people > approvals:
        return "awaiting_approval"
    if delivery.deferred_until is not None and delivery.deferred_until > now:
        return "deferred"
    return "planning"


def _upsert_groups(conn: AsyncConnection, groups: Sequence[GroupState]) -> Any:
    rows = [{"key": g.key, "first": g.first, "last_at": g.last_at} for g in groups]
    if conn.dialect.name == "postgresql":
        pg = postgresql.insert(route_groups).values(rows)
        return pg.on_conflict_do_update(
            index_elements=["key"],
            set_={"first": pg.excluded.first, "last_at": pg.excluded.last_at},
        )
    lite = sqlite.insert(route_groups).values(rows)
    return lite.on_conflict_do_update(
        index_elements=["key"],
        set_={"first": lite.excluded.first, "last_at": lite.excluded.last_at},
    )


def _insert_decision(conn: AsyncConnection, row: dict[str, Any]) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return (
        dialect.insert(dispatch_decisions)
        .values(row)
        .on_conflict_do_nothing(index_elements=["alert_id"])
        .returning(dispatch_decisions.c.alert_id)
    )


class Planner:
    """Routes and plans alerts for one configuration; safe to run in several instances."""

    def __init__(
        self,
        engine: AsyncEngine,
        config: Config,
        *,
        audience: AudienceSource | None = None,
        templates: TemplateSet | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        site_url: str | None = None,
        group_of: Mapping[str, Callable[[str], str | None]] | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        self.audience = audience or NoSubscribers()
        self.templates = templates or template_set(
            config.templates_dir if config.templates_dir.is_dir() else None
        )
        self.clock = clock
        self.site_url = site_url
        self.repository = AlertRepository(engine)
        self._channels = {c.name: c for c in config.channels if c.enabled}
        self._group_of = dict(group_of or {})

    # ------------------------------------------------------------------ entry points

    async def on_new_alert(self, alert: Alert, source: str) -> None:
        """The ingest's listener: dispatch the alert just stored (errors are logged, not raised)."""
        stored = await self.repository.get(alert.key)
        if stored is None:
            log.error("dispatch.alert_missing", alert=str(alert.key), source=source)
            return
        await self.dispatch(stored.id)

    async def dispatch(self, alert_id: int) -> DispatchResult:
        """Route the alert (once) and plan its automatic routes."""
        stored = await self.repository.get_by_id(alert_id)
        if stored is None:
            raise StoreError(f"alert {alert_id} does not exist")
        routed = await self._route(stored)
        result = await self.plan_ready(alert_id)
        return DispatchResult(
            alert_id=alert_id,
            routed=routed,
            planned=result.planned,
            awaiting_approval=result.awaiting_approval,
            deferred=result.deferred,
            failed=result.failed,
            deliveries=result.deliveries,
        )

    async def catch_up(self) -> int:
        """Route active alerts never routed, release due deferrals, finish interrupted plans.

        Returns how many alerts were dispatched. Run at start and periodically:
        it is what makes a crash between storing and planning lose nothing.
        """
        now = self.clock()
        query = (
            select(alerts.c.id)
            .outerjoin(dispatch_decisions, dispatch_decisions.c.alert_id == alerts.c.id)
            .where(dispatch_decisions.c.alert_id.is_(None))
            .where(alerts.c.state == AlertState.ACTIVE.value)
            .where(alerts.c.received_at >= now - CATCH_UP_WINDOW)
            .where((alerts.c.expires_at.is_(None)) | (alerts.c.expires_at > now))
            .order_by(alerts.c.id)
        )
        with database_errors("cannot list alerts waiting to be routed"):
            async with read_only(self.engine) as conn:
                unrouted = list((await conn.execute(query)).scalars())
                pending = list(
                    (
                        await conn.execute(
                            select(dispatch_routes.c.alert_id)
                            .where(dispatch_routes.c.state.in_(("planning", "deferred")))
                            .distinct()
                        )
                    ).scalars()
                )
        for alert_id in unrouted:
            try:
                await self.dispatch(alert_id)
            except (AlertcastError, StoreError) as exc:
                log.error("dispatch.catch_up_failed", alert_id=alert_id, error=str(exc))
        for alert_id in pending:
            if alert_id not in unrouted:
                await self.plan_ready(alert_id)
        if unrouted:
            log.info("dispatch.caught_up", alerts=len(unrouted))
        return len(unrouted)

    async def fall_back(self) -> int:
        """Re-plan on a channel's ``options.sms_fallback`` what it could not deliver.

        A WhatsApp message outside the 24-hour window without an approved
        template fails with ``whatsapp.outside_session`` (Twilio 63016, at
        send time or in a status callback); the person still has a phone, so
        the same alert goes to them by SMS. Idempotent: the ledger holds one
        row per (alert, channel, target). Returns the rows added.
        """
        added = 0
        for name, channel in self._channels.items():
            fallback_name = channel.options.get("sms_fallback")
            if not isinstance(fallback_name, str) or fallback_name not in self._channels:
                continue
            failed = await self._outside_session_failures(name, fallback_name)
            by_alert: dict[int, list[str]] = {}
            for alert_id, target in failed:
                by_alert.setdefault(alert_id, []).append(_phone_number(target))
            for alert_id, targets in by_alert.items():
                added += await self._plan_fallback(alert_id, fallback_name, targets, name)
        return added

    async def _outside_session_failures(self, channel: str, fallback: str) -> list[tuple[int, str]]:
        done = deliveries.alias("fallback")
        query = (
            select(deliveries.c.alert_id, deliveries.c.target)
            .outerjoin(
                done,
                and_(
                    done.c.alert_id == deliveries.c.alert_id,
                    done.c.channel == fallback,
                    done.c.target == func.replace(deliveries.c.target, "whatsapp:", ""),
                ),
            )
            .where(deliveries.c.channel == channel)
            .where(deliveries.c.state == "failed")
            .where(
                deliveries.c.last_error.like("whatsapp.outside_session%")
                | deliveries.c.last_error.like("%error 63016%")
            )
            .where(done.c.id.is_(None))
            .limit(FALLBACK_BATCH)
        )
        with database_errors(f"cannot read the failed deliveries of {channel}"):
            async with read_only(self.engine) as conn:
                return [(int(r.alert_id), str(r.target)) for r in await conn.execute(query)]

    async def _plan_fallback(
        self, alert_id: int, fallback: str, targets: list[str], failed_on: str
    ) -> int:
        stored = await self.repository.get_by_id(alert_id)
        if stored is None:
            return 0
        if stored.state is not AlertState.ACTIVE:
            log.info("dispatch.fallback_skipped", alert_id=alert_id, state=str(stored.state))
            return 0
        channel = self._channels[fallback]
        actual = stored.alert.status is Status.ACTUAL
        delivery = Delivery(
            route=f"fallback:{failed_on}",
            channel=fallback,
            audience=Audience(),
            template=None,
            approval=Approval.AUTO,  # the alert was approved for these people already
            priority=derived_priority(stored.alert.infos, actual=actual)[0],
            exercise=not actual,
        )
        try:
            rendering = render(stored.alert, channel, templates=self.templates)
        except AlertcastError as exc:
            log.error("dispatch.fallback_render_failed", alert_id=alert_id, error=str(exc))
            return 0
        replaces = await self._replaced_ids(alert_id)
        result = await ledger.plan(
            self.engine,
            alert_id=alert_id,
            channel=fallback,
            targets=targets,
            message=_message(stored, rendering, delivery, replaces),
            priority=ledger_priority(delivery.priority),
            deadline=stored.expires_at,
            actor=f"dispatch:fallback-from:{failed_on}",
        )
        log.info(
            "dispatch.fell_back",
            alert_id=alert_id,
            channel=failed_on,
            fallback=fallback,
            rows=result.inserted,
        )
        return result.inserted

    async def plan_ready(self, alert_id: int) -> DispatchResult:
        """Plan the alert's routes in ``planning`` (and ``deferred`` ones now due)."""
        now = self.clock()
        rows = await self.routes(alert_id)
        counts = {"planned": 0, "awaiting_approval": 0, "deferred": 0, "failed": 0}
        deliveries = 0
        stored: StoredAlert | None = None
        published = self.site_url is not None and any(
            self._channels[r.channel].kind == "cap"
            for r in rows
            if r.channel in self._channels and r.state in ("planning", "planned")
        )
        for row in rows:
            state = row.state
            if state == "deferred" and _deferred_until(row) <= now:
                state = "planning"
            if state == "planning":
                stored = stored or await self.repository.get_by_id(alert_id)
                if stored is None:
                    break
                state, added = await self._plan_route(stored, row, published=published)
                deliveries += added
            if state in counts:
                counts[state] += 1
        return DispatchResult(alert_id=alert_id, routed=False, deliveries=deliveries, **counts)

    async def routes(self, alert_id: int) -> list[RouteRow]:
        """The routed deliveries of an alert, in the order routing gave them."""
        query = (
            select(dispatch_routes)
            .where(dispatch_routes.c.alert_id == alert_id)
            .order_by(dispatch_routes.c.id)
        )
        with database_errors(f"cannot read the routes of alert {alert_id}"):
            async with read_only(self.engine) as conn:
                result = (await conn.execute(query)).all()
        return [
            RouteRow(
                id=r.id,
                alert_id=r.alert_id,
                route=r.route,
                channel=r.channel,
                state=r.state,
                approval=r.approval,
                decision=json.loads(r.decision),
            )
            for r in result
        ]

    # ------------------------------------------------------------------ routing

    async def _context(self, stored: StoredAlert, now: datetime) -> RoutingContext:
        return await routing_context(
            self.engine,
            now=now,
            feed=stored.feed,
            thread=stored.thread,
            leave_out=lambda a: a.id == stored.id,
        )

    async def _route(self, stored: StoredAlert) -> bool:
        """Decide and record the routes of ``stored``; False when it was routed already."""
        now = self.clock()
        with database_errors(f"cannot check whether alert {stored.id} was routed"):
            async with read_only(self.engine) as conn:
                done = await conn.scalar(
                    select(dispatch_decisions.c.alert_id).where(
                        dispatch_decisions.c.alert_id == stored.id
                    )
                )
        if done is not None:
            return False
        decision = self.config.routes.route(stored.alert, context=await self._context(stored, now))
        inherited = await self._inherited(stored, decision)
        return await self._record_decision(stored, decision, now, inherited)

    async def _inherited(
        self, stored: StoredAlert, decision: RoutingDecision
    ) -> list[dict[str, Any]]:
        """Routes of the alerts this one updates or cancels that its own routing missed.

        A Cancel usually carries no info, so category or event matchers miss
        it; yet everyone who was told about the alert must be told it is
        cancelled. Each such route is followed again, under its own approval,
        to the targets that were sent the earlier alert (and to nobody else).
        """
        replaces = await self._replaced_ids(stored.id)
        if not replaces:
            return []
        own = {(d.route, d.channel) for d in decision.deliveries}
        query = (
            select(dispatch_routes)
            .where(dispatch_routes.c.alert_id.in_(replaces))
            .where(dispatch_routes.c.state == "planned")
            .order_by(dispatch_routes.c.id)
        )
        with database_errors(f"cannot read the routes replaced by alert {stored.id}"):
            async with read_only(self.engine) as conn:
                rows = (await conn.execute(query)).all()
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for row in rows:
            if (row.route, row.channel) in own or (row.route, row.channel) in found:
                continue
            data = json.loads(row.decision)
            data["inherited_from"] = row.alert_id
            data.pop("deferred_until", None)
            found[(row.route, row.channel)] = data
        return list(found.values())

    async def _record_decision(
        self,
        stored: StoredAlert,
        decision: RoutingDecision,
        now: datetime,
        inherited: Sequence[Mapping[str, Any]] = (),
    ) -> bool:
        approvals = await self._approvals(stored.id)
        routes = [
            {
                "alert_id": stored.id,
                "route": d.route,
                "channel": d.channel,
                "state": _route_state(d, now, approvals),
                "approval": d.approval.value,
                "decision": audit.canonical_json(d.to_json()),
                "detail": None,
                "created_at": now,
                "updated_at": now,
            }
            for d in unique_deliveries(decision.deliveries)
        ]
        for data in inherited:
            routes.append(
                {
                    "alert_id": stored.id,
                    "route": data["route"],
                    "channel": data["channel"],
                    "state": _route_state(delivery_from_json(data), now, approvals),
                    "approval": data["approval"],
                    "decision": audit.canonical_json(data),
                    "detail": None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        with database_errors(f"cannot record the routing of alert {stored.id}"):
            async with self.engine.begin() as conn:
                await lock_alert_writes(conn)
                inserted = (
                    await conn.execute(
                        _insert_decision(
                            conn,
                            {
                                "alert_id": stored.id,
                                "decided_at": now,
                                "decision": audit.canonical_json(decision.to_json()),
                            },
                        )
                    )
                ).first()
                if inserted is None:
                    return False  # another instance routed it first
                if routes:
                    await conn.execute(dispatch_routes.insert(), routes)
                if decision.groups:
                    await conn.execute(_upsert_groups(conn, decision.groups))
                await audit.append(
                    conn,
                    actor="dispatch",
                    action="dispatch.routed",
                    subject=str(stored.alert.key),
                    data={
                        "alert_id": stored.id,
                        "handled_by": list(decision.handled_by),
                        "routes": [
                            {"route": r["route"], "channel": r["channel"], "state": r["state"]}
                            for r in routes
                        ],
                        "suppressed": [s.to_json() for s in decision.suppressed],
                    },
                    at=now,
                )
        log.info(
            "dispatch.routed",
            alert=str(stored.alert.key),
            alert_id=stored.id,
            routes=len(routes),
            awaiting_approval=sum(r["state"] == "awaiting_approval" for r in routes),
            suppressed=len(decision.suppressed),
        )
        return True

    async def _approvals(self, alert_id: int) -> int:
        """How many distinct people approved the alert (``alert_approvals``)."""
        query = select(func.count(func.distinct(alert_approvals.c.user_name))).where(
            alert_approvals.c.alert_id == alert_id, alert_approvals.c.decision == "approve"
        )
        with database_errors(f"cannot read the approvals of alert {alert_id}"):
            async with read_only(self.engine) as conn:
                return int((await conn.execute(query)).scalar_one())

    # ------------------------------------------------------------------ planning

    async def _plan_route(
        self, stored: StoredAlert, row: RouteRow, *, published: bool = False
    ) -> tuple[str, int]:
        """Render and plan one route; returns its new state and the rows added.

        When the alert is published on our own CAP feed (a ``cap`` channel
        among its routes), messages link to its public page ``/alerts/{id}``
        unless the channel sets its own ``alert_url``.
        """
        channel = self._channels.get(row.channel)
        if channel is None:
            await self._set_state(row, "failed", f"channel {row.channel!r} is not enabled")
            return "failed", 0
        delivery = delivery_from_json(row.decision)
        link: dict[str, Any] | None = None
        if published and "alert_url" not in channel.options and channel.kind != "cap":
            link = {"alert_url": f"{self.site_url}/alerts/{stored.id}"}
        try:
            replaces = await self._replaced_ids(stored.id)
            added = 0
            inherited = "inherited_from" in row.decision
            audiences = [] if inherited else await self._audiences(delivery, stored, channel)
            if replaces:
                # Everyone told about what this replaces hears of the update or cancel,
                # in the channel's language; the ledger skips who is already planned.
                audiences.append((None, self._earlier_recipients(replaces, row.channel)))
            for language, targets in audiences:
                rendering = render(
                    stored.alert,
                    channel,
                    language=language,
                    template=delivery.template,
                    templates=self.templates,
                    options=link,
                )
                result = await ledger.plan(
                    self.engine,
                    alert_id=stored.id,
                    channel=row.channel,
                    targets=targets,
                    message=_message(stored, rendering, delivery, replaces),
                    priority=ledger_priority(delivery.priority),
                    deadline=stored.expires_at,
                    batch=PLAN_BATCH,
                    group_of=self._group_of.get(row.channel),
                )
                added += result.inserted
        except AlertcastError as exc:
            # A template or channel option that does not work: this route fails, loudly,
            # and the others go on.
            log.error(
                "dispatch.render_failed",
                alert=str(stored.alert.key),
                route=row.route,
                channel=row.channel,
                error=str(exc),
            )
            await self._set_state(row, "failed", str(exc))
            return "failed", 0
        await self._set_state(row, "planned", None)
        return "planned", added

    async def _audiences(
        self, delivery: Delivery, stored: StoredAlert, channel: ChannelConfig
    ) -> list[tuple[str | None, AsyncIterator[str] | list[str]]]:  # (language, targets)
        """(language, targets) pairs: one post for a channel post, else per subscriber language."""
        if delivery.audience.kind == CHANNEL_POST:
            target = str(channel.options.get("target", DEFAULT_POST_TARGET))
            language = delivery.languages[0] if delivery.languages else None
            return [(language, [target])]
        languages = await self.audience.languages(delivery, stored)
        if not languages:
            log.info(
                "dispatch.no_audience",
                alert=str(stored.alert.key),
                channel=channel.name,
                audience=delivery.audience.describe(),
            )
        return [
            (language, self.audience.targets(delivery, stored, language)) for language in languages
        ]

    async def _earlier_recipients(
        self, replaces: Sequence[int], channel: str
    ) -> AsyncIterator[str]:
        """Targets that were sent (or may have been sent) a replaced alert on ``channel``."""
        query = (
            select(deliveries.c.target)
            .where(deliveries.c.alert_id.in_(replaces))
            .where(deliveries.c.channel == channel)
            .where(deliveries.c.state.in_(REACHED_STATES))
            .distinct()
            .order_by(deliveries.c.target)
            .execution_options(yield_per=PLAN_BATCH)
        )
        with database_errors(f"cannot read the earlier recipients on {channel}"):
            async with read_only(self.engine) as conn:
                result = await conn.stream(query)
                async for target in result.scalars():
                    yield str(target)

    async def _replaced_ids(self, alert_id: int) -> list[int]:
        """The stored alerts this one references: what its messages update or cancel."""
        query = select(alert_references.c.ref_alert_id).where(
            and_(
                alert_references.c.alert_id == alert_id,
                alert_references.c.ref_alert_id.is_not(None),
            )
        )
        with database_errors(f"cannot read the references of alert {alert_id}"):
            async with read_only(self.engine) as conn:
                return sorted({int(v) for v in (await conn.execute(query)).scalars()})

    async def _set_state(self, row: RouteRow, state: str, detail: str | None) -> None:
        now = self.clock()
        with database_errors(f"cannot update route {row.route} of alert {row.alert_id}"):
            async with self.engine.begin() as conn:
                await lock_alert_writes(conn)
                await conn.execute(
                    update(dispatch_routes)
                    .where(dispatch_routes.c.id == row.id)
                    .values(state=state, detail=detail, updated_at=now)
                )
                await audit.append(
                    conn,
                    actor="dispatch",
                    action=f"dispatch.route_{state}",
                    subject=f"deliveries:alert:{row.alert_id}",
                    data={
                        "alert_id": row.alert_id,
                        "route": row.route,
                        "channel": row.channel,
                        "detail": detail,
                    },
                    at=now,
                )


def _phone_number(target: str) -> str:
    """A WhatsApp address as an SMS one: ``whatsapp:+52...`` becomes ``+52...``."""
    return target.removeprefix("whatsapp:")


async def routing_context(
    engine: AsyncEngine,
    *,
    now: datetime,
    feed: str | None,
    thread: str | None,
    leave_out: Callable[[StoredAlert], bool],
) -> RoutingContext:
    """What routing reads besides the alert: silences, alerts in force, routing groups (read only).

    ``leave_out`` drops the alert being routed from the alerts in force, so it
    never inhibits or groups with itself. The preview routes with this same
    context, so what it shows is what planning will do.
    """
    silences = await SilenceRepository(engine).active(now)
    active = await active_alerts(engine, now=now, limit=MAX_ACTIVE_FOR_ROUTING)
    with database_errors("cannot read the routing groups"):
        async with read_only(engine) as conn:
            group_rows = (await conn.execute(select(route_groups))).all()
    return RoutingContext(
        now=now,
        feed=feed,
        thread=thread,
        active_alerts=tuple(
            ActiveAlert(a.alert, a.feed, a.thread) for a in active if not leave_out(a)
        ),
        groups={r.key: GroupState(r.key, r.first, r.last_at) for r in group_rows},
        silences=tuple(silences),
    )


def unique_deliveries(deliveries: Sequence[Delivery]) -> list[Delivery]:
    """One delivery per (route, channel), the first routing gave."""
    seen: dict[tuple[str, str], Delivery] = {}
    for d in deliveries:
        seen.setdefault((d.route, d.channel), d)
    return list(seen.values())


def _deferred_until(row: RouteRow) -> datetime:
    value = row.decision.get("deferred_until")
    return parse_datetime(value) if isinstance(value, str) else datetime.min.replace(tzinfo=UTC)


def delivery_from_json(data: Mapping[str, Any]) -> Delivery:
    """The routed delivery back from its stored JSON (only what planning reads)."""
    audience = data.get("audience") or {}
    deferred = data.get("deferred_until")
    return Delivery(
        route=str(data["route"]),
        channel=str(data["channel"]),
        audience=Audience(
            kind=audience.get("kind", CHANNEL_POST),
            topics=tuple(audience.get("topics", ())),
            areas=tuple(audience.get("areas", ())),
            test=bool(audience.get("test", False)),
        ),
        template=data.get("template"),
        approval=Approval(data.get("approval", "two")),
        priority=int(data.get("priority", 0)),
        exercise=bool(data.get("exercise", False)),
        languages=tuple(data.get("languages", ())),
        group_key=data.get("group_key"),
        group_update_of=data.get("group_update_of"),
        deferred_until=parse_datetime(deferred) if isinstance(deferred, str) else None,
    )


def _message(
    stored: StoredAlert, rendering: Rendering, delivery: Delivery, replaces: list[int]
) -> OutboundMessage:
    """The ledger's message: the rendered parts, and what follow-ups and the audit need."""
    info = stored.alert.info_for(rendering.language)
    extra: dict[str, Any] = {
        "alert_id": stored.id,
        "alert": str(stored.alert.key),
        "msg_type": stored.alert.msg_type.value,
        "status": stored.alert.status.value,
        "route": delivery.route,
        "replaces": replaces,
    }
    if delivery.group_update_of:
        extra["group_update_of"] = delivery.group_update_of
    if delivery.audience.kind != CHANNEL_POST and stored.alert.msg_type.value != "Cancel":
        # a person reached directly can answer "I am safe" / "I need help" (Telegram buttons)
        extra["ack"] = True
    if rendering.html is not None:
        extra["html"] = rendering.html
    # what the rate limiter takes for one send: every message (SMS: every segment) counts
    extra["cost"] = sum(part.segments or 1 for part in rendering.parts) or 1
    if any(part.facets for part in rendering.parts):
        # link facets by byte range (Bluesky): the shortened link text cannot be re-read
        extra["facets"] = [[f.to_json() for f in part.facets] for part in rendering.parts]
    if rendering.whatsapp_template is not None:
        extra["whatsapp_template"] = rendering.whatsapp_template.to_json()
    if stored.alert.expires is not None:
        extra["expires"] = format_cap_datetime(stored.alert.expires)
    return OutboundMessage(
        parts=tuple(part.text for part in rendering.parts),
        subject=rendering.subject,
        language=rendering.language,
        severity=info.severity.value if info is not None else None,
        extra=extra,
    )
