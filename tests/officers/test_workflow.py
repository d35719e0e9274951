"""The alert desk: drafts, the two-person rule, release into routing, scheduling, corrections."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit, lifecycle
from alertcast.cap_writer import to_cap_xml
from alertcast.config import Config
from alertcast.dispatch.cancellation import cancel_on_lifecycle
from alertcast.dispatch.planner import Planner
from alertcast.domain import Alert, MsgType, ResponseType, Severity, Urgency
from alertcast.ingest import Ingestor
from alertcast.officers.errors import Conflict, Forbidden, Invalid, NotFound, TwoPersonRule
from alertcast.officers.roles import Principal, Role
from alertcast.officers.workflow import AlertDesk
from alertcast.store.alerts import AlertRepository
from alertcast.store.tables import alert_references, deliveries
from tests.officers.conftest import Clock
from tests.officers.desk_setup import SENDER, alert_body, desk_config

ANA = Principal("ana", Role.OFFICER, "session")  # composes
BETO = Principal("beto", Role.APPROVER, "token")  # approves
CARLA = Principal("carla", Role.APPROVER, "session")  # approves too
DANI = Principal("dani", Role.APPROVER, "cli")  # an approver who also composes
VIEWER = Principal("vera", Role.VIEWER, "token")


@pytest.fixture
def live_clock() -> Clock:
    """A hand-moved clock starting now: alerts expire against it, the planner reads it too."""
    clock = Clock()
    clock.now = datetime.now(UTC).replace(microsecond=0)
    return clock


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return desk_config(tmp_path)


@pytest.fixture
def planner(engine: AsyncEngine, config: Config, live_clock: Clock) -> Planner:
    return Planner(engine, config, clock=live_clock)


@pytest.fixture
def desk(engine: AsyncEngine, config: Config, planner: Planner, live_clock: Clock) -> AlertDesk:
    return AlertDesk(
        engine,
        config,
        planner=planner,
        effect_listeners=(cancel_on_lifecycle(engine),),
        clock=live_clock,
    )


async def _actions(engine: AsyncEngine, n: int = 50) -> list[tuple[str, str]]:
    return [(r.actor, r.action) for r in await audit.tail(engine, n)]


async def _ledger(engine: AsyncEngine, alert_id: int) -> list[tuple[str, str, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(deliveries.c.channel, deliveries.c.target, deliveries.c.state)
            .where(deliveries.c.alert_id == alert_id)
            .order_by(deliveries.c.id)
        )
        return [(r.channel, r.target, r.state) for r in rows]


async def _submitted(desk: AlertDesk, now: datetime, who: Principal = ANA, **body: Any) -> int:
    draft = await desk.create_draft(who, alert_body(now, **body))
    submitted = await desk.submit(who, draft.id)
    assert submitted.state == "submitted"
    return submitted.id


# ---------------------------------------------------------------------- drafts


async def test_a_draft_gets_the_office_sender_an_identifier_and_stays_invisible(
    desk: AlertDesk, engine: AsyncEngine, live_clock: Clock
) -> None:
    draft = await desk.create_draft(ANA, alert_body(live_clock.now))

    assert draft.state == "draft" and draft.created_by == "ana" and draft.source == "user:ana"
    assert draft.alert.sender == SENDER and draft.alert.sent == live_clock.now
    assert draft.alert.identifier.startswith("pc.example.mx-")
    assert draft.approvals_required is None and draft.approvals == () and not draft.is_exercise
    assert await lifecycle.active_alerts(engine, now=live_clock.now) == []
    assert (await desk.get(draft.id)).alert == draft.alert
    assert await _actions(engine, 1) == [("user:ana", "alert.drafted")]
    data = draft.to_json()
    assert data["state"] == "draft" and data["alert"]["sender"] == SENDER
    assert data["exercise"] is False and "routes" not in data
    other = await desk.create_draft(ANA, alert_body(live_clock.now))
    assert other.alert.identifier != draft.alert.identifier


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"sender": "someone@else.example"}, "sender"),
        ({"status": None}, "status"),
        ({"status": "System"}, "status"),
        ({"msg_type": "Update"}, "msg_type"),
        ({"infos": []}, "infos"),
        ({"headlne": "typo"}, "headlne"),
        ({"references": [f"{SENDER},x,2026-01-01T00:00:00+00:00"]}, "references"),
    ],
)
async def test_a_bad_body_is_refused_naming_the_key(
    desk: AlertDesk, live_clock: Clock, change: dict[str, object], key: str
) -> None:
    body = {**alert_body(live_clock.now), **change}
    with pytest.raises(Invalid) as caught:
        await desk.create_draft(ANA, body)
    assert str(caught.value).startswith(key)


async def test_an_area_is_required_in_every_info(desk: AlertDesk, live_clock: Clock) -> None:
    body = alert_body(live_clock.now)
    body["infos"][0]["areas"] = []
    with pytest.raises(Invalid, match=r"^infos\[0\]\.areas"):
        await desk.create_draft(ANA, body)


async def test_a_viewer_cannot_compose(desk: AlertDesk, live_clock: Clock) -> None:
    with pytest.raises(Forbidden, match="officer"):
        await desk.create_draft(VIEWER, alert_body(live_clock.now))


async def test_only_the_author_edits_a_draft_and_only_while_it_is_one(
    desk: AlertDesk, live_clock: Clock, engine: AsyncEngine
) -> None:
    draft = await desk.create_draft(ANA, alert_body(live_clock.now))
    edited = await desk.edit_draft(ANA, draft.id, alert_body(live_clock.now, headline="Corregido"))
    assert edited.alert.infos[0].headline == "Corregido"
    assert edited.alert.identifier == draft.alert.identifier
    assert (await _actions(engine, 1)) == [("user:ana", "alert.edited")]
    with pytest.raises(Forbidden, match="only ana"):
        await desk.edit_draft(BETO, draft.id, alert_body(live_clock.now))
    with pytest.raises(Invalid, match=r"^identifier"):
        await desk.edit_draft(ANA, draft.id, {**alert_body(live_clock.now), "identifier": "x"})
    await desk.submit(ANA, draft.id)
    with pytest.raises(Conflict, match="submitted"):
        await desk.edit_draft(ANA, draft.id, alert_body(live_clock.now))
    with pytest.raises(NotFound):
        await desk.edit_draft(ANA, 9999, alert_body(live_clock.now))


# ---------------------------------------------------------------------- approvals required


@pytest.mark.parametrize(
    ("event", "category", "required"),
    [("Sismo", "Geo", 1), ("Inundación", "Met", 1), ("Tsunami", "Geo", 2)],
)
async def test_approvals_required_come_from_the_route_policy(
    desk: AlertDesk, live_clock: Clock, event: str, category: str, required: int
) -> None:
    """An auto route still needs one person for a person's Actual alert; two routes need two."""
    alert_id = await _submitted(desk, live_clock.now, event=event, category=category)
    view = await desk.get(alert_id)
    assert view.approvals_required == required and view.submitted_at == live_clock.now


# ---------------------------------------------------------------------- the two-person rule


async def test_the_author_of_an_actual_alert_cannot_approve_it(
    desk: AlertDesk, live_clock: Clock, engine: AsyncEngine
) -> None:
    alert_id = await _submitted(desk, live_clock.now, who=DANI)

    with pytest.raises(TwoPersonRule) as caught:
        await desk.approve(DANI, alert_id)

    assert "another person" in str(caught.value) and "otra persona" in caught.value.message_es
    assert (await desk.get(alert_id)).state == "submitted"
    record = (await audit.tail(engine, 1))[0]
    assert (record.actor, record.action) == ("user:dani", "alert.approval_refused")
    assert record.data["rule"] == "two-person"


async def test_an_officer_cannot_approve(
    desk: AlertDesk, live_clock: Clock, engine: AsyncEngine
) -> None:
    alert_id = await _submitted(desk, live_clock.now, who=DANI)
    other_officer = Principal("eli", Role.OFFICER, "token")
    with pytest.raises(Forbidden, match="approver") as caught:
        await desk.approve(other_officer, alert_id)
    assert not isinstance(caught.value, TwoPersonRule)
    record = (await audit.tail(engine, 1))[0]
    assert (record.actor, record.action) == ("user:eli", "alert.approval_refused")
    assert record.data["rule"] == "role"
    assert (await desk.get(alert_id)).state == "submitted"


async def test_two_approvals_must_come_from_two_people(
    desk: AlertDesk, live_clock: Clock, engine: AsyncEngine, planner: Planner
) -> None:
    alert_id = await _submitted(desk, live_clock.now, event="Tsunami")

    first = await desk.approve(BETO, alert_id)
    assert first.state == "submitted" and first.approved_by == ("beto",)
    with pytest.raises(TwoPersonRule, match="already decided"):
        await desk.approve(BETO, alert_id)
    assert (await desk.get(alert_id)).state == "submitted"

    second = await desk.approve(CARLA, alert_id)

    assert second.state == "active" and second.approved_by == ("beto", "carla")
    # approved by two people before release: the "two" route is not held a second time
    states = {r.channel: r.state for r in await planner.routes(alert_id)}
    assert states == {"feed-post": "planned", "reviewed": "planned"}
    assert sorted(await _ledger(engine, alert_id)) == [
        ("feed-post", "@alertas", "pending"),
        ("reviewed", "@revisadas", "pending"),
    ]
    actions = await _actions(engine)
    assert ("user:beto", "alert.approved") in actions
    assert ("user:beto", "alert.approval_refused") in actions
    assert ("user:carla", "alert.released") in actions


async def test_the_author_of_an_exercise_may_approve_it(
    desk: AlertDesk, live_clock: Clock, engine: AsyncEngine, planner: Planner
) -> None:
    alert_id = await _submitted(desk, live_clock.now, who=DANI, status="Exercise")
    view = await desk.approve(DANI, alert_id)
    assert view.state == "active" and view.is_exercise and view.to_json()["exercise"] is True
    assert [r.channel for r in await planner.routes(alert_id)] == ["drills"]
    assert await _ledger(engine, alert_id) == [("drills", "@simulacros", "pending")]


# ---------------------------------------------------------------------- release


async def test_release_issues_the_alert_and_plans_its_routes(
    desk: AlertDesk, live_clock: Clock, engine: AsyncEngine
) -> None:
    alert_id = await _submitted(desk, live_clock.now)
    drafted = (await desk.get(alert_id)).alert
    live_clock.advance(minutes=5)

    view = await desk.approve(BETO, alert_id)

    assert view.state == "active"
    assert view.alert.sent == live_clock.now and view.alert.identifier == drafted.identifier
    assert view.routes is not None and [(r["channel"], r["state"]) for r in view.routes] == [
        ("feed-post", "planned")
    ]
    assert await _ledger(engine, alert_id) == [("feed-post", "@alertas", "pending")]
    active = await lifecycle.active_alerts(engine, now=live_clock.now)
    assert [a.id for a in active] == [alert_id]
    assert active[0].raw is not None and b"<sent>" in active[0].raw
    assert b"pc.example.mx-" in active[0].raw
    trail = await _actions(engine)
    for actor, action in (
        ("user:ana", "alert.drafted"),
        ("user:ana", "alert.submitted"),
        ("user:beto", "alert.approved"),
        ("user:beto", "alert.released"),
    ):
        assert (actor, action) in trail
    actions = [a for _, a in trail]
    assert actions.index("alert.released") < actions.index("dispatch.routed")
    assert set(view.to_json()) == {
        "id", "state", "created_by", "approvals_required", "approvals", "scheduled_for",
        "submitted_at", "review_reason", "source", "received_at", "exercise", "alert", "routes",
    }  # fmt: skip


async def test_a_scheduled_alert_waits_for_its_time(
    desk: AlertDesk, live_clock: Clock, engine: AsyncEngine
) -> None:
    draft = await desk.create_draft(ANA, alert_body(live_clock.now))
    when = live_clock.now + timedelta(minutes=30)
    with pytest.raises(Invalid, match=r"^scheduled_for"):
        await desk.submit(ANA, draft.id, scheduled_for=live_clock.now - timedelta(minutes=1))
    await desk.submit(ANA, draft.id, scheduled_for=when)

    view = await desk.approve(BETO, draft.id)

    assert view.state == "scheduled" and view.scheduled_for == when
    assert await desk.release_due() == 0
    assert await _ledger(engine, draft.id) == []
    live_clock.advance(minutes=31)
    assert await desk.release_due() == 1
    released = await desk.get(draft.id)
    assert released.state == "active" and released.alert.sent == live_clock.now
    assert await _ledger(engine, draft.id) == [("feed-post", "@alertas", "pending")]
    assert await desk.release_due() == 0
    assert ("user:beto", "alert.scheduled") in await _actions(engine)
    assert ("scheduler", "alert.released") in await _actions(engine)


async def test_schedule_submits_a_draft_and_moves_a_submitted_one(
    desk: AlertDesk, live_clock: Clock
) -> None:
    draft = await desk.create_draft(ANA, alert_body(live_clock.now))
    first = await desk.schedule(ANA, draft.id, live_clock.now + timedelta(hours=1))
    assert first.state == "submitted" and first.approvals_required == 1
    later = live_clock.now + timedelta(hours=2)
    moved = await desk.schedule(ANA, draft.id, later)
    assert moved.state == "submitted" and moved.scheduled_for == later


# ---------------------------------------------------------------------- reject, discard


async def test_reject_needs_a_reason_and_is_final(
    desk: AlertDesk, live_clock: Clock, engine: AsyncEngine
) -> None:
    alert_id = await _submitted(desk, live_clock.now)
    with pytest.raises(Invalid, match=r"^reason"):
        await desk.reject(BETO, alert_id, "  ")
    with pytest.raises(Forbidden):
        await desk.reject(ANA, alert_id, "no")

    view = await desk.reject(BETO, alert_id, "Wrong area")

    assert view.state == "rejected" and view.review_reason == "Wrong area"
    assert [(a.user, a.decision, a.reason) for a in view.approvals] == [
        ("beto", "reject", "Wrong area")
    ]
    with pytest.raises(Conflict, match="rejected"):
        await desk.approve(CARLA, alert_id)
    assert await _ledger(engine, alert_id) == []
    assert ("user:beto", "alert.rejected") in await _actions(engine)


async def test_discard_withdraws_what_has_not_gone_out(
    desk: AlertDesk, live_clock: Clock, engine: AsyncEngine
) -> None:
    draft = await desk.create_draft(ANA, alert_body(live_clock.now))
    with pytest.raises(Forbidden):
        await desk.discard(Principal("eli", Role.OFFICER, "cli"), draft.id)
    assert (await desk.discard(ANA, draft.id)).state == "discarded"
    submitted = await _submitted(desk, live_clock.now)
    assert (await desk.cancel(BETO, submitted)).state == "discarded"  # cancel before release
    with pytest.raises(Conflict):
        await desk.approve(CARLA, submitted)
    assert [a for a in await _actions(engine, 3) if a[1] == "alert.discarded"] == [
        ("user:beto", "alert.discarded")
    ]


# ---------------------------------------------------------------------- corrections


async def test_cancel_of_an_active_alert_goes_through_approval_and_ends_it(
    desk: AlertDesk, live_clock: Clock, engine: AsyncEngine
) -> None:
    alert_id = await _submitted(desk, live_clock.now)
    original = await desk.approve(BETO, alert_id)
    live_clock.advance(minutes=2)

    cancel = await desk.cancel(ANA, alert_id, note=None)

    assert cancel.id != alert_id and cancel.state == "submitted"
    assert cancel.alert.msg_type is MsgType.CANCEL and cancel.alert.status is original.alert.status
    assert cancel.alert.references == (original.alert.key,)
    assert cancel.alert.infos[0].headline == f"CANCELADA: {original.alert.infos[0].headline}"
    assert cancel.approvals_required == 1 and cancel.created_by == "ana"
    with pytest.raises(Conflict, match="already waiting"):
        await desk.cancel(ANA, alert_id)
    async with engine.connect() as conn:  # not linked before it is issued
        links = (await conn.execute(select(alert_references))).all()
    assert links == []
    assert (await desk.get(alert_id)).state == "active"

    released = await desk.approve(CARLA, cancel.id)

    assert released.state == "active"
    assert (await desk.get(alert_id)).state == "cancelled"
    assert await _ledger(engine, alert_id) == [("feed-post", "@alertas", "cancelled")]
    assert ("feed-post", "@alertas", "pending") in await _ledger(engine, cancel.id)
    with pytest.raises(Conflict):
        await desk.cancel(ANA, alert_id)


async def test_update_and_all_clear_supersede_after_approval(
    desk: AlertDesk, live_clock: Clock, engine: AsyncEngine
) -> None:
    alert_id = await _submitted(desk, live_clock.now)
    original = await desk.approve(BETO, alert_id)
    live_clock.advance(minutes=1)

    correction = await desk.update(
        ANA, alert_id, {"headline": "Sismo moderado", "severity": "Moderate"}
    )

    assert correction.state == "submitted" and correction.alert.msg_type is MsgType.UPDATE
    assert correction.alert.references == (original.alert.key,)
    info = correction.alert.infos[0]
    assert info.headline == "Sismo moderado" and info.severity is Severity.MODERATE
    assert info.areas == original.alert.infos[0].areas
    with pytest.raises(Invalid, match=r"^infos\[0\]\.severity"):
        await desk.update(ANA, alert_id, {"severity": "Huge"})
    with pytest.raises(Invalid, match=r"^colour"):
        await desk.update(ANA, alert_id, {"colour": "red"})

    await desk.approve(CARLA, correction.id)
    assert (await desk.get(alert_id)).state == "superseded"
    live_clock.advance(minutes=1)

    ended = await desk.all_clear(ANA, correction.id)

    clear = ended.alert.infos[0]
    assert clear.headline == "FIN DE LA ALERTA: Sismo moderado"
    assert clear.response_types == (ResponseType.ALL_CLEAR,)
    assert clear.urgency is Urgency.PAST and clear.severity is Severity.MINOR
    await desk.approve(BETO, ended.id)
    assert (await desk.get(correction.id)).state == "superseded"
    assert (await desk.get(ended.id)).state == "active"


async def test_a_feed_alert_of_another_sender_is_not_cancelled_here(
    desk: AlertDesk, engine: AsyncEngine, live_clock: Clock
) -> None:
    from tests.dispatch.conftest import make_alert

    stored = await lifecycle.ingest_alert(
        engine, make_alert("FEED-1"), raw=None, source="t", actor="t", now=live_clock.now
    )
    with pytest.raises(Conflict, match="only its issuer"):
        await desk.cancel(ANA, stored.result.alert_id)


# ---------------------------------------------------------------------- feed alerts held by routes


async def test_approving_a_feed_alert_releases_its_held_routes(
    desk: AlertDesk, engine: AsyncEngine, planner: Planner, live_clock: Clock
) -> None:
    from tests.dispatch.conftest import make_alert

    alert = _with_event(make_alert("FLOOD-1", sent=live_clock.now), "Inundación")
    outcome = await Ingestor(AlertRepository(engine)).ingest_bytes(
        to_cap_xml(alert), source="feed", actor="feed:x"
    )
    alert_id = outcome.items[0].alert_id
    assert alert_id is not None
    await planner.dispatch(alert_id)
    states = {r.channel: r.state for r in await planner.routes(alert_id)}
    assert states == {"feed-post": "planned", "reviewed": "awaiting_approval"}
    assert [v.id for v in await desk.queue()] == [alert_id]
    with pytest.raises(Forbidden):
        await desk.approve(ANA, alert_id)

    view = await desk.approve(BETO, alert_id)

    assert view.state == "active" and view.created_by is None
    states = {r.channel: r.state for r in await planner.routes(alert_id)}
    assert states == {"feed-post": "planned", "reviewed": "planned"}
    assert ("reviewed", "@revisadas", "pending") in await _ledger(engine, alert_id)
    assert await desk.queue() == []
    assert ("user:beto", "routes.approved") in await _actions(engine)
    with pytest.raises(Conflict):
        await desk.approve(CARLA, alert_id)


async def test_rejecting_a_feed_alert_rejects_its_held_routes(
    desk: AlertDesk, engine: AsyncEngine, planner: Planner, live_clock: Clock
) -> None:
    from tests.dispatch.conftest import make_alert

    alert = _with_event(make_alert("TSU-1", sent=live_clock.now), "Tsunami")
    stored = await lifecycle.ingest_alert(
        engine, alert, raw=None, source="feed", actor="feed:x", now=live_clock.now
    )
    alert_id = stored.result.alert_id
    await planner.dispatch(alert_id)
    view = await desk.reject(BETO, alert_id, "Not our coast")
    assert view.routes is not None
    assert {r["channel"]: r["state"] for r in view.routes} == {
        "feed-post": "planned",
        "reviewed": "rejected",
    }
    assert ("user:beto", "routes.rejected") in await _actions(engine)


# ---------------------------------------------------------------------- listing


async def test_list_and_queue(desk: AlertDesk, live_clock: Clock) -> None:
    draft = await desk.create_draft(ANA, alert_body(live_clock.now))
    waiting = await _submitted(desk, live_clock.now)
    done = await _submitted(desk, live_clock.now)
    await desk.approve(BETO, done)
    assert [v.id for v in await desk.list()] == [done, waiting, draft.id]
    assert [v.id for v in await desk.list(states=["draft"])] == [draft.id]
    assert [v.id for v in await desk.list(limit=1, before_id=done)] == [waiting]
    assert [v.id for v in await desk.queue()] == [waiting]
    with pytest.raises(Invalid, match=r"^state"):
        await desk.list(states=["bogus"])
    with pytest.raises(Invalid, match=r"^limit"):
        await desk.list(limit=0)
    approvals = (await desk.get(done)).to_json()["approvals"]
    assert [a["user"] for a in approvals] == ["beto"] and approvals[0]["decision"] == "approve"
    json.dumps((await desk.get(done, routes=True)).to_json())
    with pytest.raises(NotFound):
        await desk.get(12345)


def _with_event(alert: Alert, event: str) -> Alert:
    return replace(alert, infos=tuple(replace(info, event=event) for info in alert.infos))
