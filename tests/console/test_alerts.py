"""Composing, the two-person rule, approving, correcting and progress, through the forms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alertcast import audit, lifecycle
from alertcast.dispatch.ledger import DeliveryState
from tests.console.conftest import (
    Console,
    by_id,
    compose,
    compose_data,
    has_id,
    login,
    page,
    submitted_for_review,
)
from tests.dispatch.conftest import make_alert
from tests.dispatch.test_progress import finish, plan_rows


async def test_compose_creates_a_submitted_alert(console: Console) -> None:
    csrf = await login(console.client, "olga")
    alert_id = await compose(console.client, csrf)

    view = await console.services.desk.get(alert_id)
    assert view.state == "submitted"
    assert view.created_by == "olga"
    assert view.approvals_required == 1
    info = view.alert.infos[0]
    assert info.headline == "Sismo fuerte en la Ciudad de México"
    assert info.language == "es"
    assert [g.value for g in info.areas[0].geocodes] == ["09"]
    assert len(info.areas[0].polygons[0].points) == 5  # closed ring
    assert info.expires is not None
    assert timedelta(hours=5) < info.expires - datetime.now(UTC) <= timedelta(hours=6)

    response = await console.client.get(f"/console/alerts/{alert_id}?done=submitted")
    text = await response.text()
    assert by_id(text, "alert-state").text_content() == "submitted"
    assert "espera aprobación" in by_id(text, "flash").text_content()
    for element_id in ("approve", "reject", "reject-reason", "cancel-alert", "progress"):
        assert has_id(text, element_id)
    assert by_id(text, "progress-percent").text_content() == "0%"
    queue = await console.client.get("/console/queue")
    assert f"/console/alerts/{alert_id}" in await queue.text()


async def test_bad_input_is_shown_by_field_and_nothing_is_created(console: Console) -> None:
    csrf = await login(console.client, "olga")
    response = await console.client.post(
        "/console/compose",
        data=compose_data(csrf, headline="", area_polygon="19.5 -99.1", area_geocode="09"),
    )
    assert response.status == 422
    text = await response.text()
    assert has_id(text, "flash-error")
    for field in ("error-headline", "error-area-polygon", "error-area-geocode"):
        assert has_id(text, field)
    assert by_id(text, "description").text_content() == "Se registró un sismo de magnitud 7.1."
    assert await console.services.desk.list() == []


async def test_a_form_post_without_the_csrf_token_is_refused(console: Console) -> None:
    await login(console.client, "olga")
    data = compose_data("")
    del data["csrf_token"]
    response = await console.client.post("/console/compose", data=data, allow_redirects=False)
    assert response.status == 403
    forged = await console.client.post(
        "/console/compose", data=compose_data("forged"), allow_redirects=False
    )
    assert forged.status == 403
    assert await console.services.desk.list() == []


async def test_the_creator_sees_the_two_person_refusal(console: Console) -> None:
    csrf = await login(console.client, "ana")  # an approver, but the author
    alert_id = await compose(console.client, csrf)
    response = await console.client.post(
        f"/console/alerts/{alert_id}/approve", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert response.status == 403
    text = await response.text()
    assert by_id(text, "flash-error").text_content().strip()
    assert by_id(text, "alert-state").text_content() == "submitted"
    assert (await console.services.desk.get(alert_id)).state == "submitted"
    records = await audit.tail(console.services.engine, 5)
    assert "alert.approval_refused" in [r.action for r in records]
    # The refusal's page has the action's address; opening it again shows the alert.
    again = await console.client.get(f"/console/alerts/{alert_id}/approve", allow_redirects=False)
    assert again.status == 303 and again.headers["Location"] == f"/console/alerts/{alert_id}"


async def test_an_officer_cannot_approve_and_is_told_why(console: Console) -> None:
    csrf = await login(console.client, "olga")
    alert_id = await compose(console.client, csrf)
    response = await console.client.post(
        f"/console/alerts/{alert_id}/approve?lang=en", data={"csrf_token": csrf}
    )
    assert response.status == 403
    message = by_id(await response.text(), "flash-error").text_content()
    assert "officer" in message and "approver" in message
    assert (await console.services.desk.get(alert_id)).state == "submitted"


async def test_another_approver_approves_and_the_alert_is_released(console: Console) -> None:
    alert_id, csrf = await submitted_for_review(console.client, "ana")
    response = await console.client.post(
        f"/console/alerts/{alert_id}/approve", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert response.status == 303
    assert response.headers["Location"] == f"/console/alerts/{alert_id}?done=approved"
    view = await console.services.desk.get(alert_id)
    assert view.state == "active"
    assert [(a.user, a.decision) for a in view.approvals] == [("ana", "approve")]

    text = await (await console.client.get(response.headers["Location"])).text()
    assert by_id(text, "alert-state").text_content() == "active"
    for element_id in ("cancel-alert", "correct", "all-clear", "progress-percent"):
        assert has_id(text, element_id)
    assert not has_id(text, "approve")
    dashboard = await (await console.client.get("/console/")).text()
    assert f"/console/alerts/{alert_id}" in dashboard


async def test_a_rejection_needs_a_reason(console: Console) -> None:
    alert_id, csrf = await submitted_for_review(console.client, "beto")
    blank = await console.client.post(
        f"/console/alerts/{alert_id}/reject", data={"csrf_token": csrf, "reason": "  "}
    )
    assert blank.status == 422 and has_id(await blank.text(), "flash-error")
    response = await console.client.post(
        f"/console/alerts/{alert_id}/reject",
        data={"csrf_token": csrf, "reason": "La magnitud no está confirmada"},
    )
    assert response.status == 200
    text = await response.text()
    assert by_id(text, "alert-state").text_content() == "rejected"
    assert by_id(text, "review-reason").text_content() == "La magnitud no está confirmada"


async def test_cancelling_an_active_alert_submits_a_cancel(console: Console) -> None:
    alert_id, csrf = await submitted_for_review(console.client, "ana")
    await console.client.post(f"/console/alerts/{alert_id}/approve", data={"csrf_token": csrf})

    response = await console.client.post(
        f"/console/alerts/{alert_id}/cancel",
        data={"csrf_token": csrf, "note": "Falsa alarma"},
        allow_redirects=False,
    )
    assert response.status == 303
    location = response.headers["Location"]
    assert location.endswith("?done=cancel")
    cancel_id = int(location.split("/")[-1].split("?")[0])
    assert cancel_id != alert_id
    cancel = await console.services.desk.get(cancel_id)
    assert cancel.alert.msg_type.value == "Cancel" and cancel.state == "submitted"


async def test_a_correction_sends_only_what_changed(console: Console) -> None:
    alert_id, csrf = await submitted_for_review(console.client, "ana")
    await console.client.post(f"/console/alerts/{alert_id}/approve", data={"csrf_token": csrf})
    original = (await console.services.desk.get(alert_id)).alert.infos[0]

    unchanged = await console.client.post(
        f"/console/alerts/{alert_id}/correct",
        data={
            "csrf_token": csrf,
            "headline": original.headline or "",
            "severity": original.severity.value,
        },
    )
    assert unchanged.status == 422

    response = await console.client.post(
        f"/console/alerts/{alert_id}/correct",
        data={"csrf_token": csrf, "headline": "Sismo moderado en la Ciudad de México"},
        allow_redirects=False,
    )
    assert response.status == 303 and response.headers["Location"].endswith("?done=correct")
    update_id = int(response.headers["Location"].split("/")[-1].split("?")[0])
    update = await console.services.desk.get(update_id)
    assert update.alert.msg_type.value == "Update"
    assert update.alert.infos[0].headline == "Sismo moderado en la Ciudad de México"


async def test_withdrawing_a_submitted_alert(console: Console) -> None:
    csrf = await login(console.client, "olga")
    alert_id = await compose(console.client, csrf)
    response = await console.client.post(
        f"/console/alerts/{alert_id}/cancel", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert response.headers["Location"] == f"/console/alerts/{alert_id}?done=discarded"
    assert (await console.services.desk.get(alert_id)).state == "discarded"
    again = await console.client.post(
        f"/console/alerts/{alert_id}/approve", data={"csrf_token": csrf}
    )
    assert again.status in (403, 409)
    assert has_id(await again.text(), "flash-error")


async def test_the_exercise_banner_marks_exercise_alerts(console: Console) -> None:
    csrf = await login(console.client, "olga")
    actual = await compose(console.client, csrf)
    drill = await compose(console.client, csrf, status="Exercise")

    drill_page = await (await console.client.get(f"/console/alerts/{drill}")).text()
    banner = by_id(drill_page, "exercise-banner").text_content()
    assert "SIMULACRO" in banner and "EXERCISE" in banner and "NOT REAL" in banner
    assert "exercise" in page(drill_page).xpath("//body/@class")[0].split()

    actual_page = await (await console.client.get(f"/console/alerts/{actual}")).text()
    assert not has_id(actual_page, "exercise-banner")
    assert "exercise" not in page(actual_page).xpath("//body/@class")[0].split()

    form = await (await console.client.get("/console/compose?status=Exercise")).text()
    assert has_id(form, "exercise-banner")
    assert by_id(form, "status").xpath("./option[@selected]/@value") == ["Exercise"]
    plain = await (await console.client.get("/console/compose")).text()
    assert not has_id(plain, "exercise-banner")


async def test_the_exercise_author_may_approve_their_own_drill(console: Console) -> None:
    csrf = await login(console.client, "ana")
    drill = await compose(console.client, csrf, status="Exercise")
    response = await console.client.post(
        f"/console/alerts/{drill}/approve", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert response.status == 303
    assert (await console.services.desk.get(drill)).state in ("active", "scheduled")


async def test_the_alert_page_shows_delivery_numbers_without_scripts(console: Console) -> None:
    engine = console.services.engine
    stored = await lifecycle.ingest_alert(
        engine,
        make_alert("CONSOLE-PROGRESS"),
        raw=None,
        source="t",
        actor="t",
        now=datetime.now(UTC),
    )
    alert_id = stored.result.alert_id
    when = datetime.now(UTC) - timedelta(minutes=5)
    await plan_rows(engine, alert_id, "console", 4, when=when)
    await finish(engine, alert_id, "console", 3, DeliveryState.SENT, when=when)

    await login(console.client, "vera")
    text = await (await console.client.get(f"/console/alerts/{alert_id}")).text()
    assert by_id(text, "alert-state").text_content() == "active"
    assert by_id(text, "progress-percent").text_content() == "75%"
    rows = page(text).xpath('//*[contains(@class, "progress-channel")][@data-channel="console"]')
    assert len(rows) == 1
    assert rows[0].xpath('./td[@class="count-sent"]')[0].text_content() == "3"
    assert rows[0].xpath('./td[@class="count-pending"]')[0].text_content() == "1"
    assert by_id(text, "progress").get("data-events-url") == f"/api/v1/alerts/{alert_id}/events"
    assert has_id(text, "acknowledgements")


async def test_an_unknown_alert_is_a_404_page(console: Console) -> None:
    await login(console.client, "vera")
    for path in ("/console/alerts/999999", "/console/alerts/abc"):
        response = await console.client.get(path)
        assert response.status == 404
        assert has_id(await response.text(), "flash-error")


async def test_a_viewer_cannot_compose(console: Console) -> None:
    csrf = await login(console.client, "vera")
    response = await console.client.post("/console/compose", data=compose_data(csrf))
    assert response.status == 403
    assert has_id(await response.text(), "flash-error")
    assert await console.services.desk.list() == []
