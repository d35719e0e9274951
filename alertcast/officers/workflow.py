"""The alert desk: officers compose, a second person approves, the alert goes out.

An alert an officer composes is stored in ``alerts`` like a received one (same
ids, same views) but in a state of its own that nothing else reads:

* ``draft``: being written; only its author edits it.
* ``submitted``: waiting for approvals. How many is fixed at submission from
  the routing policy: a dry run of the rules gives the strictest ``approval``
  of the routes it would take (``one``: 1, ``two``: 2), and a person's alert
  always needs at least one other look, even under an ``auto`` route.
* ``scheduled``: approved, and released at ``scheduled_for``
  (:meth:`AlertDesk.release_due`, run periodically by the service).
* ``rejected`` (with the reason) and ``discarded`` are final.

**The two-person rule lives here**, not in a front end: the author of an
Actual alert can never approve it, and nobody's approval counts twice. A drill
(status Exercise) may be approved by its author, so one person can practise.
Every decision, and every refused approval, is in the audit trail with the
person as actor (``user:NAME``).

**Release** is one transaction: the final approval, the alert's CAP ``sent``
set to the release time, the state ``active`` and the CAP lifecycle
(:func:`alertcast.lifecycle.activate_in`: a Cancel cancels, an Update
supersedes). Then, as for a received alert, the effect listeners stop the
pending deliveries of what it ended and the planner routes it; routes needing
no more approvals than were given are planned at once.

Feed alerts held by a route's ``approval`` (``awaiting_approval``) are
approved here too: each approval releases the routes that need no more
people than have approved so far.

**Correcting fast**: :meth:`AlertDesk.cancel`, :meth:`AlertDesk.update` and
:meth:`AlertDesk.all_clear` turn an alert in force into a pre-filled Cancel or
Update, submitted at once under the same approval policy.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import and_, func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alertcast import audit
from alertcast.alert_json import alert_from_json
from alertcast.config import Config
from alertcast.domain import Alert, MsgType, Status, parse_datetime
from alertcast.errors import AlertcastError
from alertcast.ingest import ItemOutcome
from alertcast.lifecycle import LifecyclePolicy, StoredMessage, activate_in
from alertcast.officers._common import Clock, utc_now
from alertcast.officers.compose import all_clear_of, cancel_of, compose, update_of
from alertcast.officers.errors import Conflict, Forbidden, Invalid, NotFound, TwoPersonRule
from alertcast.officers.roles import Principal, Role
from alertcast.officers.views import AlertView, Approval, load_approvals, load_routes, view_of
from alertcast.rules_model import Approval as RouteApproval
from alertcast.rules_model import RoutingContext
from alertcast.store.alerts import (
    AlertState,
    alert_columns,
    insert_composed,
    key_matches,
    lock_alert_writes,
)
from alertcast.store.engine import database_errors, read_only
from alertcast.store.tables import alert_approvals, alerts, dispatch_routes

if TYPE_CHECKING:
    from alertcast.dispatch.planner import Planner

__all__ = ["AlertDesk", "AlertView", "Approval", "EffectListener"]

log = structlog.get_logger(__name__)

EffectListener = Callable[[ItemOutcome], Awaitable[None]]

SCHEDULER_ACTOR = "scheduler"
"""Audit actor of the release of a scheduled alert (the approvers are recorded before)."""

MAX_LIST = 500
PENDING = (AlertState.DRAFT, AlertState.SUBMITTED, AlertState.SCHEDULED)
"""Composed alerts not yet issued: discarding them stops everything."""
_IN_FORCE_TYPES = (MsgType.ALERT.value, MsgType.UPDATE.value)


def _subject(alert_id: int) -> str:
    return f"alert:{alert_id}"


def _require(who: Principal, role: Role, doing_en: str, doing_es: str) -> None:
    if not who.role.allows(role):
        raise Forbidden(
            f"{who.name} ({who.role.value}) may not {doing_en}: it needs the {role.value} role",
            es=f"{who.name} ({who.role.value}) no puede {doing_es}: requiere el rol {role.value}",
        )


def _not_found(alert_id: int) -> NotFound:
    return NotFound(f"there is no alert {alert_id}", es=f"no existe la alerta {alert_id}")


def _wrong_state(alert_id: int, state: str, doing_en: str, doing_es: str) -> Conflict:
    return Conflict(
        f"alert {alert_id} is {state}: it cannot be {doing_en}",
        es=f"la alerta {alert_id} está en estado {state}: no se puede {doing_es}",
    )


class AlertDesk:
    """Composing, approving and releasing alerts; see the module docstring."""

    def __init__(
        self,
        engine: AsyncEngine,
        config: Config,
        *,
        planner: Planner | None,
        effect_listeners: Sequence[EffectListener] = (),
        clock: Clock = utc_now,
    ) -> None:
        self._engine = engine
        self._config = config
        self._planner = planner
        self._listeners = tuple(effect_listeners)
        self._clock = clock
        self._policy = LifecyclePolicy.from_feeds(config.feeds)

    @property
    def sender(self) -> str:
        """The CAP sender of the alerts composed here."""
        return self._config.service.sender

    # ------------------------------------------------------------------ reading

    async def get(self, alert_id: int, *, routes: bool = False) -> AlertView:
        """The alert with this id (composed or received); NotFound otherwise."""
        with database_errors(f"cannot read alert {alert_id}"):
            async with read_only(self._engine) as conn:
                row = (await conn.execute(select(alerts).where(alerts.c.id == alert_id))).first()
                if row is None:
                    raise _not_found(alert_id)
                approvals = (await load_approvals(conn, [alert_id]))[alert_id]
                route_rows = await load_routes(conn, alert_id) if routes else None
        return view_of(row, approvals, route_rows)

    async def list(
        self,
        *,
        states: Sequence[str] | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[AlertView]:
        """Alerts newest first, optionally only in ``states``; ``before_id`` pages back."""
        if not 1 <= limit <= MAX_LIST:
            raise Invalid(
                f"limit: must be between 1 and {MAX_LIST}",
                es=f"limit: debe estar entre 1 y {MAX_LIST}",
            )
        known = {s.value for s in AlertState}
        query = select(alerts).order_by(alerts.c.id.desc()).limit(limit)
        if states:
            wrong = [s for s in states if s not in known]
            if wrong:
                choices = ", ".join(sorted(known))
                raise Invalid(
                    f"state: {wrong[0]!r} is not one of {choices}",
                    es=f"state: {wrong[0]!r} no es uno de {choices}",
                )
            query = query.where(alerts.c.state.in_(list(states)))
        if before_id is not None:
            query = query.where(alerts.c.id < before_id)
        return await self._views(query)

    async def queue(self) -> builtins.list[AlertView]:
        """What waits for a person: submitted alerts, and alerts in force with held routes."""
        held = (
            select(dispatch_routes.c.alert_id)
            .where(dispatch_routes.c.state == "awaiting_approval")
            .distinct()
        )
        query = (
            select(alerts)
            .where(
                (alerts.c.state == AlertState.SUBMITTED.value)
                | (
                    (alerts.c.state == AlertState.ACTIVE.value)
                    & alerts.c.id.in_(held.scalar_subquery())
                )
            )
            .order_by(alerts.c.id)
            .limit(MAX_LIST)
        )
        return await self._views(query)

    async def _views(self, query: Any) -> builtins.list[AlertView]:
        with database_errors("cannot list alerts"):
            async with read_only(self._engine) as conn:
                rows = (await conn.execute(query)).all()
                approvals = await load_approvals(conn, [int(r.id) for r in rows])
        return [view_of(row, approvals[int(row.id)]) for row in rows]

    # ------------------------------------------------------------------ composing

    async def create_draft(self, who: Principal, alert_json: Mapping[str, Any]) -> AlertView:
        """Store a new draft from the ``parse`` JSON shape; see :func:`compose` for the rules."""
        _require(who, Role.OFFICER, "compose alerts", "redactar alertas")
        now = self._clock()
        alert = compose(alert_json, sender=self.sender, now=now)
        return await self._store_new(who, alert, now, action="alert.drafted", submit=False)

    async def edit_draft(
        self, who: Principal, alert_id: int, alert_json: Mapping[str, Any]
    ) -> AlertView:
        """Replace a draft's content; only its author, only while it is a draft."""
        _require(who, Role.OFFICER, "edit alerts", "editar alertas")
        now = self._clock()
        async with self._writing(f"cannot edit alert {alert_id}") as conn:
            row = await self._row(conn, alert_id)
            self._check_state(row, (AlertState.DRAFT,), "edited", "editar")
            self._check_author(who, row, "edit", "editar")
            draft_sent = parse_datetime(row.sent)
            alert = compose(
                alert_json, sender=self.sender, now=draft_sent, identifier=row.identifier
            )
            alert = _with_sent(alert, draft_sent)
            await conn.execute(
                update(alerts).where(alerts.c.id == alert_id).values(**alert_columns(alert))
            )
            await self._audit(
                conn, who, "alert.edited", alert_id, {"status": alert.status.value}, now
            )
        return await self.get(alert_id)

    async def submit(
        self, who: Principal, alert_id: int, *, scheduled_for: datetime | None = None
    ) -> AlertView:
        """Send a draft for approval, optionally to be released at ``scheduled_for``."""
        _require(who, Role.OFFICER, "submit alerts", "enviar alertas a aprobación")
        now = self._clock()
        when = self._check_schedule(scheduled_for, now)
        async with self._writing(f"cannot submit alert {alert_id}") as conn:
            row = await self._row(conn, alert_id)
            self._check_state(row, (AlertState.DRAFT,), "submitted", "enviar a aprobación")
            self._check_author(who, row, "submit", "enviar a aprobación")
            alert = alert_from_json(json.loads(row.normalized))
            await self._submit_in(conn, who, alert_id, alert, now, when)
        return await self.get(alert_id)

    async def schedule(self, who: Principal, alert_id: int, scheduled_for: datetime) -> AlertView:
        """Set the release time of a draft (submitting it) or of a submitted alert."""
        _require(who, Role.OFFICER, "schedule alerts", "programar alertas")
        now = self._clock()
        when = self._check_schedule(scheduled_for, now)
        if when is None:
            raise Invalid("scheduled_for: missing", es="scheduled_for: falta")
        current = await self.get(alert_id)
        if current.state == AlertState.DRAFT.value:
            return await self.submit(who, alert_id, scheduled_for=when)
        async with self._writing(f"cannot schedule alert {alert_id}") as conn:
            row = await self._row(conn, alert_id)
            self._check_state(row, (AlertState.SUBMITTED,), "scheduled", "programar")
            self._check_author_or(who, row, Role.APPROVER, "schedule", "programar")
            await conn.execute(
                update(alerts).where(alerts.c.id == alert_id).values(scheduled_for=when)
            )
            await self._audit(
                conn, who, "alert.schedule_set", alert_id, {"scheduled_for": when.isoformat()}, now
            )
        return await self.get(alert_id)

    # ------------------------------------------------------------------ deciding

    async def approve(self, who: Principal, alert_id: int) -> AlertView:
        """Approve a submitted alert, or the held routes of an alert in force.

        Releases the alert (or schedules it) once enough distinct people
        approved; see the module docstring. Forbidden for a role below
        approver, TwoPersonRule for the author of an Actual alert or a second
        vote, Conflict when there is nothing to approve. Refusals are audited.
        """
        now = self._clock()
        released: StoredMessage | None = None
        plan = False
        try:
            _require(who, Role.APPROVER, "approve alerts", "aprobar alertas")
            async with self._writing(f"cannot approve alert {alert_id}") as conn:
                row = await self._row(conn, alert_id)
                state = AlertState(row.state)
                if state is AlertState.SUBMITTED:
                    released = await self._approve_composed(conn, who, row, now)
                elif state is AlertState.ACTIVE and await self._held(conn, alert_id):
                    await self._approve_routes(conn, who, row, now)
                    plan = True
                else:
                    raise _wrong_state(alert_id, state.value, "approved", "aprobar")
        except Forbidden as exc:
            await self._refused(who, alert_id, exc, now)
            raise
        if released is not None:
            await self._after_release(released)
        if plan:
            await self._plan(alert_id)
        return await self.get(alert_id, routes=True)

    async def reject(self, who: Principal, alert_id: int, reason: str) -> AlertView:
        """Reject a submitted (or scheduled) alert, or the held routes of an alert in force."""
        _require(who, Role.APPROVER, "reject alerts", "rechazar alertas")
        text = (reason or "").strip() if isinstance(reason, str) else ""
        if not text:
            raise Invalid(
                "reason: say why the alert is rejected", es="reason: indique por qué se rechaza"
            )
        now = self._clock()
        async with self._writing(f"cannot reject alert {alert_id}") as conn:
            row = await self._row(conn, alert_id)
            state = AlertState(row.state)
            if state in (AlertState.SUBMITTED, AlertState.SCHEDULED):
                await self._decide(conn, who, alert_id, "reject", text, now)
                await self._set_state(conn, alert_id, AlertState.REJECTED, now, review_reason=text)
                await self._audit(
                    conn,
                    who,
                    "alert.rejected",
                    alert_id,
                    {"reason": text, "previous_state": state.value},
                    now,
                )
            elif state is AlertState.ACTIVE and await self._held(conn, alert_id):
                await self._decide(conn, who, alert_id, "reject", text, now)
                routes = await self._held(conn, alert_id)
                await conn.execute(
                    update(dispatch_routes)
                    .where(dispatch_routes.c.id.in_([r.id for r in routes]))
                    .values(
                        state="rejected", detail=f"rejected by {who.name}: {text}", updated_at=now
                    )
                )
                await self._audit(
                    conn,
                    who,
                    "routes.rejected",
                    alert_id,
                    {"reason": text, "routes": [_route_name(r) for r in routes]},
                    now,
                )
            else:
                raise _wrong_state(alert_id, state.value, "rejected", "rechazar")
        log.info("alert.rejected", alert_id=alert_id, user=who.name)
        return await self.get(alert_id, routes=True)

    async def discard(self, who: Principal, alert_id: int) -> AlertView:
        """Withdraw a draft, submitted or scheduled alert: nothing of it ever goes out."""
        _require(who, Role.OFFICER, "discard alerts", "descartar alertas")
        now = self._clock()
        async with self._writing(f"cannot discard alert {alert_id}") as conn:
            row = await self._row(conn, alert_id)
            self._check_state(row, PENDING, "discarded", "descartar")
            self._check_author_or(who, row, Role.APPROVER, "discard", "descartar")
            await self._set_state(conn, alert_id, AlertState.DISCARDED, now)
            await self._audit(
                conn, who, "alert.discarded", alert_id, {"previous_state": row.state}, now
            )
        log.info("alert.discarded", alert_id=alert_id, user=who.name)
        return await self.get(alert_id)

    # ------------------------------------------------------------------ correcting

    async def cancel(self, who: Principal, alert_id: int, *, note: str | None = None) -> AlertView:
        """Cancel: a pre-filled Cancel of an alert in force (submitted, returned), or discard.

        An alert not issued yet (draft, submitted, scheduled) is discarded and
        returned. An active alert gets a new Cancel referencing it, in the same
        status, submitted for approval at once; the Cancel is returned.
        """
        current = await self.get(alert_id)
        if current.state in {s.value for s in PENDING}:
            return await self.discard(who, alert_id)
        _require(who, Role.OFFICER, "cancel alerts", "cancelar alertas")
        original = self._correctable(current, ("cancel", "cancelled"), "cancelar")
        now = self._clock()
        message = cancel_of(original, now=now, note=note, user=who.name)
        return await self._store_new(
            who, message, now, action="alert.drafted", submit=True, follows=alert_id
        )

    async def update(self, who: Principal, alert_id: int, changes: Mapping[str, Any]) -> AlertView:
        """A pre-filled Update of an alert in force with ``changes`` applied, submitted at once."""
        _require(who, Role.OFFICER, "correct alerts", "corregir alertas")
        original = self._correctable(await self.get(alert_id), ("update", "updated"), "actualizar")
        now = self._clock()
        message = update_of(original, changes, now=now)
        return await self._store_new(
            who, message, now, action="alert.drafted", submit=True, follows=alert_id
        )

    async def all_clear(
        self, who: Principal, alert_id: int, *, note: str | None = None
    ) -> AlertView:
        """An all-clear Update of an alert in force (AllClear, Past, Minor), submitted at once."""
        _require(who, Role.OFFICER, "end alerts", "finalizar alertas")
        original = self._correctable(await self.get(alert_id), ("end", "ended"), "finalizar")
        now = self._clock()
        message = all_clear_of(original, now=now, note=note)
        return await self._store_new(
            who, message, now, action="alert.drafted", submit=True, follows=alert_id
        )

    def _correctable(self, view: AlertView, doing_en: tuple[str, str], doing_es: str) -> Alert:
        """The alert in force behind ``view``; Conflict when it cannot be followed up here."""
        alert = view.alert
        verb, participle = doing_en
        if view.state != AlertState.ACTIVE.value or alert.msg_type.value not in _IN_FORCE_TYPES:
            raise _wrong_state(view.id, view.state, participle, doing_es)
        if alert.sender != self.sender:
            raise Conflict(
                f"alert {view.id} was issued by {alert.sender}; only its issuer can {verb} it",
                es=f"la alerta {view.id} es de {alert.sender}; solo su emisor puede {doing_es}la",
            )
        return alert

    # ------------------------------------------------------------------ scheduled release

    async def release_due(self) -> int:
        """Release the scheduled alerts whose time came; how many were released."""
        now = self._clock()
        query = (
            select(alerts.c.id)
            .where(alerts.c.state == AlertState.SCHEDULED.value)
            .where(alerts.c.scheduled_for <= now)
            .order_by(alerts.c.scheduled_for, alerts.c.id)
        )
        with database_errors("cannot list scheduled alerts"):
            async with read_only(self._engine) as conn:
                due = [int(v) for v in (await conn.execute(query)).scalars()]
        released = 0
        for alert_id in due:
            message: StoredMessage | None = None
            async with self._writing(f"cannot release alert {alert_id}") as conn:
                row = await self._row(conn, alert_id)
                if row.state == AlertState.SCHEDULED.value:  # not discarded meanwhile
                    message = await activate_in(
                        conn, alert_id, actor=SCHEDULER_ACTOR, now=now, policy=self._policy
                    )
            if message is not None:
                released += 1
                await self._after_release(message)
        return released

    # ------------------------------------------------------------------ internals: steps

    async def _store_new(
        self,
        who: Principal,
        alert: Alert,
        now: datetime,
        *,
        action: str,
        submit: bool,
        follows: int | None = None,
    ) -> AlertView:
        async with self._writing("cannot store the alert") as conn:
            if follows is not None:
                await self._check_no_pending_follow_up(conn, alert, follows)
            taken = (
                await conn.execute(
                    select(alerts.c.id).where(
                        alerts.c.sender == alert.sender, alerts.c.identifier == alert.identifier
                    )
                )
            ).first()
            if taken is not None:
                raise Conflict(
                    f"identifier: {alert.identifier!r} is already used by alert {taken.id}",
                    es=f"identifier: {alert.identifier!r} ya lo usa la alerta {taken.id}",
                )
            alert_id = await insert_composed(
                conn, alert, source=who.actor, created_by=who.name, now=now
            )
            data: dict[str, Any] = {
                "identifier": alert.identifier,
                "status": alert.status.value,
                "msg_type": alert.msg_type.value,
            }
            if follows is not None:
                data["follows"] = follows
            await self._audit(conn, who, action, alert_id, data, now)
            if submit:
                await self._submit_in(conn, who, alert_id, alert, now, None)
        log.info(action, alert_id=alert_id, user=who.name, msg_type=alert.msg_type.value)
        return await self.get(alert_id)

    async def _submit_in(
        self,
        conn: AsyncConnection,
        who: Principal,
        alert_id: int,
        alert: Alert,
        now: datetime,
        when: datetime | None,
    ) -> None:
        required = await self._approvals_required(conn, alert, now)
        await conn.execute(
            update(alerts)
            .where(alerts.c.id == alert_id)
            .values(
                state=AlertState.SUBMITTED.value,
                state_changed_at=now,
                submitted_at=now,
                approvals_required=required,
                scheduled_for=when,
            )
        )
        await self._audit(
            conn,
            who,
            "alert.submitted",
            alert_id,
            {
                "approvals_required": required,
                "scheduled_for": when.isoformat() if when else None,
                "status": alert.status.value,
            },
            now,
        )
        log.info("alert.submitted", alert_id=alert_id, user=who.name, approvals=required)

    async def _approvals_required(self, conn: AsyncConnection, alert: Alert, now: datetime) -> int:
        """The strictest approval of the routes the alert would take; at least one person.

        A dry run of the rules (routes held back by a silence or an inhibition
        count too: they may apply by release time). A Cancel or Update also
        follows the routes of what it replaces, under their approval.
        """
        decision = self._config.routes.route(alert, context=RoutingContext(now=now))
        people = [d.approval.people for d in decision.deliveries]
        people += [
            s.delivery.approval.people
            for s in decision.suppressed
            if s.cause != "exercise-boundary"
        ]
        for key in alert.references:
            rows = await conn.execute(
                select(dispatch_routes.c.approval)
                .join(alerts, alerts.c.id == dispatch_routes.c.alert_id)
                .where(key_matches(key))
            )
            people += [RouteApproval(value).people for value in rows.scalars()]
        return max([1, *people])

    async def _approve_composed(
        self, conn: AsyncConnection, who: Principal, row: Row[Any], now: datetime
    ) -> StoredMessage | None:
        alert_id = int(row.id)
        self._check_two_person(who, row)
        await self._decide(conn, who, alert_id, "approve", None, now)
        count = await self._approval_count(conn, alert_id)
        required = int(row.approvals_required or 1)
        await self._audit(
            conn, who, "alert.approved", alert_id, {"approvals": count, "required": required}, now
        )
        log.info(
            "alert.approved", alert_id=alert_id, user=who.name, approvals=count, required=required
        )
        if count < required:
            return None
        if row.scheduled_for is not None and row.scheduled_for > now:
            await self._set_state(conn, alert_id, AlertState.SCHEDULED, now)
            await self._audit(
                conn,
                who,
                "alert.scheduled",
                alert_id,
                {"scheduled_for": row.scheduled_for.isoformat()},
                now,
            )
            return None
        return await activate_in(conn, alert_id, actor=who.actor, now=now, policy=self._policy)

    async def _approve_routes(
        self, conn: AsyncConnection, who: Principal, row: Row[Any], now: datetime
    ) -> None:
        alert_id = int(row.id)
        self._check_two_person(who, row)
        await self._decide(conn, who, alert_id, "approve", None, now)
        count = await self._approval_count(conn, alert_id)
        released: list[str] = []
        for route in await self._held(conn, alert_id):
            if RouteApproval(route.approval).people > count:
                continue
            deferred = json.loads(route.decision).get("deferred_until")
            state = (
                "deferred"
                if isinstance(deferred, str) and parse_datetime(deferred) > now
                else "planning"
            )
            await conn.execute(
                update(dispatch_routes)
                .where(dispatch_routes.c.id == route.id)
                .values(state=state, updated_at=now)
            )
            released.append(_route_name(route))
        await self._audit(
            conn, who, "routes.approved", alert_id, {"approvals": count, "released": released}, now
        )
        log.info("routes.approved", alert_id=alert_id, user=who.name, released=released)

    async def _after_release(self, message: StoredMessage) -> None:
        """As after an ingest: effect listeners, then routing and planning. Failures are logged."""
        result = message.result
        outcome = ItemOutcome(
            key=result.key,
            created=True,
            alert_id=result.alert_id,
            effects=result.effects,
            state=result.state,
        )
        if outcome.effects:
            for listener in self._listeners:
                try:
                    await listener(outcome)
                except Exception:
                    log.exception("alert.effect_listener_failed", alert=str(result.key))
        if result.state is AlertState.ACTIVE and self._planner is not None:
            try:
                await self._planner.dispatch(result.alert_id)
            except AlertcastError as exc:
                # The alert is released; the planner's catch-up routes it later.
                log.error("dispatch.after_release_failed", alert_id=result.alert_id, error=str(exc))

    async def _plan(self, alert_id: int) -> None:
        if self._planner is None:
            return  # the service's planner catches routes left in planning
        try:
            await self._planner.plan_ready(alert_id)
        except AlertcastError as exc:
            log.error("dispatch.after_approval_failed", alert_id=alert_id, error=str(exc))

    # ------------------------------------------------------------------ internals: checks

    def _check_two_person(self, who: Principal, row: Row[Any]) -> None:
        if row.created_by == who.name and row.status == Status.ACTUAL.value:
            raise TwoPersonRule(
                f"{who.name} wrote alert {row.id} and cannot approve it: an Actual alert "
                "needs another person's approval",
                es=f"{who.name} redactó la alerta {row.id} y no puede aprobarla: una alerta "
                "real necesita la aprobación de otra persona",
            )

    @staticmethod
    def _check_state(
        row: Row[Any], states: Sequence[AlertState], doing_en: str, doing_es: str
    ) -> None:
        if row.state not in {s.value for s in states}:
            raise _wrong_state(int(row.id), str(row.state), doing_en, doing_es)

    @staticmethod
    def _check_author(who: Principal, row: Row[Any], doing_en: str, doing_es: str) -> None:
        if row.created_by != who.name:
            raise Forbidden(
                f"only {row.created_by} may {doing_en} alert {row.id}, which they wrote",
                es=f"solo {row.created_by}, quien la redactó, puede {doing_es} la alerta {row.id}",
            )

    @classmethod
    def _check_author_or(
        cls, who: Principal, row: Row[Any], role: Role, doing_en: str, doing_es: str
    ) -> None:
        if not who.role.allows(role):
            cls._check_author(who, row, doing_en, doing_es)

    @staticmethod
    def _check_schedule(when: datetime | None, now: datetime) -> datetime | None:
        if when is None:
            return None
        if not isinstance(when, datetime) or when.tzinfo is None:
            raise Invalid(
                "scheduled_for: needs a date and time with its UTC offset",
                es="scheduled_for: necesita fecha y hora con su diferencia respecto a UTC",
            )
        if when <= now:
            raise Invalid(
                f"scheduled_for: {when.isoformat()} is in the past",
                es=f"scheduled_for: {when.isoformat()} ya pasó",
            )
        return when

    async def _check_no_pending_follow_up(
        self, conn: AsyncConnection, message: Alert, follows: int
    ) -> None:
        """Refuse a second Cancel (or Update) of the same alert while one waits for approval."""
        rows = await conn.execute(
            select(alerts.c.id, alerts.c.normalized)
            .where(alerts.c.state.in_([s.value for s in PENDING]))
            .where(alerts.c.msg_type == message.msg_type.value)
            .where(alerts.c.sender == message.sender)
        )
        wanted = set(message.references)
        for row in rows:
            pending = alert_from_json(json.loads(row.normalized))
            if wanted & set(pending.references):
                raise Conflict(
                    f"a {message.msg_type.value} of alert {follows} is already waiting: "
                    f"alert {row.id}; approve or discard it",
                    es=f"ya hay un {message.msg_type.value} de la alerta {follows} en espera: "
                    f"alerta {row.id}; apruébelo o descártelo",
                )

    # ------------------------------------------------------------------ internals: storage

    def _writing(self, doing: str) -> _Writing:
        return _Writing(self._engine, doing)

    @staticmethod
    async def _row(conn: AsyncConnection, alert_id: int) -> Row[Any]:
        row = (await conn.execute(select(alerts).where(alerts.c.id == alert_id))).first()
        if row is None:
            raise _not_found(alert_id)
        return row

    @staticmethod
    async def _held(conn: AsyncConnection, alert_id: int) -> builtins.list[Row[Any]]:
        rows = await conn.execute(
            select(dispatch_routes)
            .where(dispatch_routes.c.alert_id == alert_id)
            .where(dispatch_routes.c.state == "awaiting_approval")
            .order_by(dispatch_routes.c.id)
        )
        return list(rows)

    @staticmethod
    async def _approval_count(conn: AsyncConnection, alert_id: int) -> int:
        query = select(func.count(func.distinct(alert_approvals.c.user_name))).where(
            and_(alert_approvals.c.alert_id == alert_id, alert_approvals.c.decision == "approve")
        )
        return int((await conn.execute(query)).scalar_one())

    @staticmethod
    async def _decide(
        conn: AsyncConnection,
        who: Principal,
        alert_id: int,
        decision: str,
        reason: str | None,
        now: datetime,
    ) -> None:
        """Record ``who``'s decision: an approval once per person; a rejection may follow one."""
        earlier = (
            await conn.execute(
                select(alert_approvals.c.id, alert_approvals.c.decision).where(
                    alert_approvals.c.alert_id == alert_id, alert_approvals.c.user_name == who.name
                )
            )
        ).first()
        if earlier is None:
            await conn.execute(
                alert_approvals.insert().values(
                    alert_id=alert_id, user_name=who.name, decision=decision, reason=reason, at=now
                )
            )
            return
        if decision == "approve":
            raise TwoPersonRule(
                f"{who.name} already decided on alert {alert_id} ({earlier.decision}); "
                "another person must approve",
                es=f"{who.name} ya decidió sobre la alerta {alert_id} ({earlier.decision}); "
                "debe aprobar otra persona",
            )
        await conn.execute(
            update(alert_approvals)
            .where(alert_approvals.c.id == earlier.id)
            .values(decision=decision, reason=reason, at=now)
        )

    @staticmethod
    async def _set_state(
        conn: AsyncConnection,
        alert_id: int,
        state: AlertState,
        now: datetime,
        *,
        review_reason: str | None = None,
    ) -> None:
        values: dict[str, Any] = {"state": state.value, "state_changed_at": now}
        if review_reason is not None:
            values["review_reason"] = review_reason
        await conn.execute(update(alerts).where(alerts.c.id == alert_id).values(**values))

    @staticmethod
    async def _audit(
        conn: AsyncConnection,
        who: Principal,
        action: str,
        alert_id: int,
        data: Mapping[str, Any],
        now: datetime,
    ) -> None:
        await audit.append(
            conn,
            actor=who.actor,
            action=action,
            subject=_subject(alert_id),
            data={"alert_id": alert_id, "via": who.via, **data},
            at=now,
        )

    async def _refused(self, who: Principal, alert_id: int, exc: Forbidden, now: datetime) -> None:
        """Audit a refused approval: who tried, on what, and which rule said no."""
        rule = "two-person" if isinstance(exc, TwoPersonRule) else "role"
        log.warning("alert.approval_refused", alert_id=alert_id, user=who.name, rule=rule)
        with database_errors("cannot audit a refused approval"):
            async with self._engine.begin() as conn:
                await self._audit(
                    conn,
                    who,
                    "alert.approval_refused",
                    alert_id,
                    {"rule": rule, "role": who.role.value, "reason": exc.message},
                    now,
                )


class _Writing:
    """A write transaction holding the alert writers' lock, with driver errors as StoreError."""

    def __init__(self, engine: AsyncEngine, doing: str) -> None:
        self._engine = engine
        self._doing = doing
        self._context: Any = None

    async def __aenter__(self) -> AsyncConnection:
        with database_errors(self._doing):
            self._context = self._engine.begin()
            conn: AsyncConnection = await self._context.__aenter__()
            await lock_alert_writes(conn)
        return conn

    async def __aexit__(self, *exc_info: Any) -> None:
        with database_errors(self._doing):
            await self._context.__aexit__(*exc_info)


def _route_name(route: Row[Any]) -> str:
    return f"{route.route}/{route.channel}"


def _with_sent(alert: Alert, sent: datetime) -> Alert:
    return replace(alert, sent=sent)
