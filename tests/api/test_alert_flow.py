"""An alert's life through the API: compose, submit, approve (two people), deliver, correct."""

from __future__ import annotations

from typing import Any

from alertcast import audit
from tests.api.conftest import Api, compose_body


async def _json(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def _create(api: Api, user: str, **options: str) -> int:
    response = await api.client.post(
        "/api/v1/alerts", json=compose_body(**options), headers=api.auth(user)
    )
    body = await _json(response, 201)
    assert response.headers["Location"] == f"/api/v1/alerts/{body['id']}"
    return int(body["id"])


async def _submit(api: Api, user: str, alert_id: int) -> dict[str, Any]:
    response = await api.client.post(f"/api/v1/alerts/{alert_id}/submit", headers=api.auth(user))
    return await _json(response, 200)


async def _actions(api: Api) -> list[tuple[str, str]]:
    return [(r.action, r.actor) async for r in audit.iter_records(api.engine)]


async def test_create_submit_approve_and_watch_progress(api_any_db: Api) -> None:
    api = api_any_db
    alert_id = await _create(api, "oscar")
    draft = await _json(
        await api.client.get(f"/api/v1/alerts/{alert_id}", headers=api.auth("vera")), 200
    )
    assert draft["state"] == "draft" and draft["created_by"] == "oscar"
    assert draft["alert"]["infos"][0]["headline"] == "Sismo fuerte en la costa"
    assert draft["alert"]["identifier"] and draft["alert"]["sender"]

    submitted = await _submit(api, "oscar", alert_id)
    assert submitted["state"] == "submitted" and submitted["approvals_required"] == 1
    queue = await _json(await api.client.get("/api/v1/approvals", headers=api.auth("vera")), 200)
    assert [a["id"] for a in queue["alerts"]] == [alert_id]

    # An officer may not approve at all; an approver who did not write it may.
    refused = await api.client.post(f"/api/v1/alerts/{alert_id}/approve", headers=api.auth("oscar"))
    assert refused.status == 403
    approved = await _json(
        await api.client.post(f"/api/v1/alerts/{alert_id}/approve", headers=api.auth("ana")), 200
    )
    assert approved["state"] == "active"
    assert [(a["user"], a["decision"]) for a in approved["approvals"]] == [("ana", "approve")]

    progress = await _json(
        await api.client.get(f"/api/v1/alerts/{alert_id}/progress", headers=api.auth("vera")), 200
    )
    assert progress["alert_id"] == alert_id
    assert sorted(c["channel"] for c in progress["channels"]) == ["avisos", "sala"]
    assert progress["totals"]["total"] == 2 and progress["totals"]["counts"]["pending"] == 2

    actions = await _actions(api)
    assert ("alert.drafted", "user:oscar") in actions
    assert ("alert.submitted", "user:oscar") in actions
    assert ("alert.approved", "user:ana") in actions
    listed = await _json(
        await api.client.get("/api/v1/alerts?state=active", headers=api.auth("vera")), 200
    )
    assert [a["id"] for a in listed["alerts"]] == [alert_id] and listed["next"] is None


async def test_the_creator_cannot_approve_their_own_actual_alert(api: Api) -> None:
    alert_id = await _create(api, "ana")
    await _submit(api, "ana", alert_id)
    own = await api.client.post(f"/api/v1/alerts/{alert_id}/approve", headers=api.auth("ana"))
    assert own.status == 403
    assert own.content_type == "application/problem+json"
    problem = await own.json()
    assert problem["status"] == 403 and problem["rule"] == "two-person"
    still = await _json(
        await api.client.get(f"/api/v1/alerts/{alert_id}", headers=api.auth("vera")), 200
    )
    assert still["state"] == "submitted" and still["approvals"] == []

    other = await api.client.post(f"/api/v1/alerts/{alert_id}/approve", headers=api.auth("beto"))
    assert (await _json(other, 200))["state"] == "active"
    actions = await _actions(api)
    assert ("alert.approval_refused", "user:ana") in actions
    assert ("alert.approved", "user:beto") in actions


async def test_the_creator_may_approve_their_own_exercise(api: Api) -> None:
    alert_id = await _create(api, "ana", status="Exercise")
    await _submit(api, "ana", alert_id)
    own = await api.client.post(f"/api/v1/alerts/{alert_id}/approve", headers=api.auth("ana"))
    body = await _json(own, 200)
    assert body["state"] == "active" and body["exercise"] is True


async def test_a_rejection_needs_a_reason_and_is_final(api: Api) -> None:
    alert_id = await _create(api, "oscar")
    await _submit(api, "oscar", alert_id)
    blank = await api.client.post(
        f"/api/v1/alerts/{alert_id}/reject", json={"reason": "  "}, headers=api.auth("ana")
    )
    assert blank.status == 422 and "reason" in (await blank.json())["detail"]
    rejected = await _json(
        await api.client.post(
            f"/api/v1/alerts/{alert_id}/reject",
            json={"reason": "El área es incorrecta"},
            headers=api.auth("ana"),
        ),
        200,
    )
    assert rejected["state"] == "rejected" and rejected["review_reason"] == "El área es incorrecta"
    again = await api.client.post(f"/api/v1/alerts/{alert_id}/approve", headers=api.auth("beto"))
    assert again.status == 409 and again.content_type == "application/problem+json"


async def test_editing_only_while_a_draft(api: Api) -> None:
    alert_id = await _create(api, "oscar")
    edited = await _json(
        await api.client.put(
            f"/api/v1/alerts/{alert_id}",
            json=compose_body(headline="Sismo moderado"),
            headers=api.auth("oscar"),
        ),
        200,
    )
    assert edited["alert"]["infos"][0]["headline"] == "Sismo moderado"
    await _submit(api, "oscar", alert_id)
    late = await api.client.put(
        f"/api/v1/alerts/{alert_id}", json=compose_body(), headers=api.auth("oscar")
    )
    assert late.status == 409


async def test_cancelling_an_active_alert_creates_a_submitted_cancel(api: Api) -> None:
    alert_id = await _create(api, "oscar")
    await _submit(api, "oscar", alert_id)
    await _json(
        await api.client.post(f"/api/v1/alerts/{alert_id}/approve", headers=api.auth("ana")), 200
    )
    response = await api.client.post(
        f"/api/v1/alerts/{alert_id}/cancel",
        json={"note": "falsa alarma"},
        headers=api.auth("oscar"),
    )
    cancel = await _json(response, 201)
    assert cancel["id"] != alert_id and response.headers["Location"].endswith(f"/{cancel['id']}")
    assert cancel["alert"]["msg_type"] == "Cancel" and cancel["state"] == "submitted"


async def test_cancelling_a_draft_withdraws_it(api: Api) -> None:
    alert_id = await _create(api, "oscar")
    response = await api.client.post(f"/api/v1/alerts/{alert_id}/cancel", headers=api.auth("oscar"))
    body = await _json(response, 200)
    assert body["id"] == alert_id and body["state"] == "discarded"


async def test_a_submitted_alert_can_be_scheduled(api: Api) -> None:
    alert_id = await _create(api, "oscar")
    response = await api.client.post(
        f"/api/v1/alerts/{alert_id}/submit",
        json={"scheduled_for": "2099-01-01T06:00:00+00:00"},
        headers=api.auth("oscar"),
    )
    body = await _json(response, 200)
    assert body["state"] == "submitted" and body["scheduled_for"].startswith("2099-01-01T06:00")
    approved = await _json(
        await api.client.post(f"/api/v1/alerts/{alert_id}/approve", headers=api.auth("ana")), 200
    )
    assert approved["state"] == "scheduled"


async def test_pages_of_alerts_follow_next(api: Api) -> None:
    ids = [await _create(api, "oscar", headline=f"Aviso {n}") for n in range(5)]
    seen: list[int] = []
    url = "/api/v1/alerts?limit=2"
    while True:
        page = await _json(await api.client.get(url, headers=api.auth("vera")), 200)
        seen.extend(a["id"] for a in page["alerts"])
        if page["next"] is None:
            break
        url = f"/api/v1/alerts?limit=2&before={page['next']}"
    assert seen == sorted(ids, reverse=True)


async def _active(api: Api) -> int:
    alert_id = await _create(api, "oscar")
    await _submit(api, "oscar", alert_id)
    approved = await api.client.post(f"/api/v1/alerts/{alert_id}/approve", headers=api.auth("ana"))
    assert (await _json(approved, 200))["state"] == "active"
    return alert_id


async def test_a_single_alert_shows_its_routes_and_its_preview(api: Api) -> None:
    alert_id = await _active(api)
    body = await _json(
        await api.client.get(f"/api/v1/alerts/{alert_id}", headers=api.auth("vera")), 200
    )
    assert sorted((r["channel"], r["state"]) for r in body["routes"]) == [
        ("avisos", "planned"),
        ("sala", "planned"),
    ]
    listed = await _json(await api.client.get("/api/v1/alerts", headers=api.auth("vera")), 200)
    assert "routes" not in listed["alerts"][0]
    preview = await _json(
        await api.client.get(f"/api/v1/alerts/{alert_id}/preview", headers=api.auth("vera")), 200
    )
    assert sorted(r["channel"] for r in preview["routes"]) == ["avisos", "sala"]
    assert "Sismo fuerte" in preview["routes"][0]["renderings"][0]["text"]


async def test_update_and_all_clear_create_submitted_follow_ups(api: Api) -> None:
    alert_id = await _active(api)
    response = await api.client.post(
        f"/api/v1/alerts/{alert_id}/update",
        json={"headline": "Sismo: réplicas esperadas", "severity": "Moderate"},
        headers=api.auth("oscar"),
    )
    update = await _json(response, 201)
    assert update["id"] != alert_id and update["state"] == "submitted"
    assert update["alert"]["msg_type"] == "Update"
    assert update["alert"]["infos"][0]["headline"] == "Sismo: réplicas esperadas"
    assert update["alert"]["infos"][0]["severity"] == "Moderate"
    unknown = await api.client.post(
        f"/api/v1/alerts/{alert_id}/update", json={"colour": "red"}, headers=api.auth("oscar")
    )
    assert unknown.status == 422 and "colour" in (await unknown.json())["detail"]

    other = await _active(api)
    cleared = await _json(
        await api.client.post(f"/api/v1/alerts/{other}/all-clear", headers=api.auth("oscar")),
        201,
    )
    assert cleared["alert"]["msg_type"] == "Update" and cleared["state"] == "submitted"
    assert cleared["alert"]["infos"][0]["response_type"] == ["AllClear"]


async def test_schedule_sets_the_release_time_of_a_submitted_alert(api: Api) -> None:
    alert_id = await _create(api, "oscar")
    await _submit(api, "oscar", alert_id)
    response = await api.client.post(
        f"/api/v1/alerts/{alert_id}/schedule",
        json={"scheduled_for": "2099-03-01T12:00:00-06:00"},
        headers=api.auth("oscar"),
    )
    body = await _json(response, 200)
    assert body["state"] == "submitted" and body["scheduled_for"].startswith("2099-03-01T18:00")
    past = await api.client.post(
        f"/api/v1/alerts/{alert_id}/schedule",
        json={"scheduled_for": "2001-01-01T00:00:00Z"},
        headers=api.auth("oscar"),
    )
    assert past.status == 422 and "scheduled_for" in (await past.json())["detail"]
