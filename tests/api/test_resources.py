"""The read-mostly resources, the progress stream, and how bad input is answered."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from alertcast import audit, lifecycle
from alertcast.dispatch.ledger import DeliveryState
from alertcast.officers.roles import Role
from tests.api.conftest import Api, compose_body
from tests.dispatch.conftest import make_alert
from tests.dispatch.test_progress import finish, plan_rows

HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)


async def _json(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def _problem(response: Any, status: int) -> str:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    body = await response.json()
    assert body["status"] == status
    return str(body["detail"])


async def _feed_alert(api: Api, identifier: str) -> int:
    stored = await lifecycle.ingest_alert(
        api.engine, make_alert(identifier), raw=None, source="t", actor="t", now=HOUR_AGO
    )
    return stored.result.alert_id


# --------------------------------------------------------------------------- status resources


async def test_channels_with_kind_and_rate_limit(api: Api) -> None:
    body = await _json(await api.client.get("/api/v1/channels", headers=api.auth("vera")), 200)
    channels = {c["name"]: c for c in body["channels"]}
    assert set(channels) == {"sala", "avisos"}
    assert channels["sala"]["kind"] == "console" and channels["sala"]["enabled"] is True
    assert channels["sala"]["rate_limit_per_s"] == api.services.channel_limits.get("sala")
    assert "options" not in channels["sala"] and "secrets" not in channels["sala"]


async def test_feeds_list_is_the_configured_feeds(api: Api) -> None:
    body = await _json(await api.client.get("/api/v1/feeds", headers=api.auth("vera")), 200)
    [feed] = body["feeds"]
    assert (feed["name"], feed["kind"], feed["status"]) == ("smn", "cap", "never polled")
    assert feed["consecutive_failures"] == 0 and feed["last_success_at"] is None


async def test_subscriber_counts_export_and_delete(api: Api) -> None:
    store = api.services.subscribers
    assert store is not None
    person = await store.subscribe(
        "sala", "@persona", consent_text="acepto", source="test", areas=["12"]
    )
    counts = await _json(
        await api.client.get("/api/v1/subscribers/count", headers=api.auth("vera")), 200
    )
    assert counts == {"configured": True, "channels": {"sala": 1}, "total": 1}

    exported = await _json(
        await api.client.post(
            "/api/v1/subscribers/export", json={"id": person.id}, headers=api.auth("ada")
        ),
        200,
    )
    assert exported["address"] == "@persona"
    deleted = await _json(
        await api.client.post(
            "/api/v1/subscribers/delete", json={"id": person.id}, headers=api.auth("ada")
        ),
        200,
    )
    assert deleted == {"id": person.id, "deleted": True}
    gone = await api.client.post(
        "/api/v1/subscribers/delete", json={"id": person.id}, headers=api.auth("ada")
    )
    await _problem(gone, 404)
    actions = [(r.action, r.actor) async for r in audit.iter_records(api.engine)]
    assert ("subscriber.exported", "user:ada") in actions
    assert ("subscriber.deleted", "user:ada") in actions


async def test_acknowledgements_of_an_alert(api: Api) -> None:
    alert_id = await _feed_alert(api, "ACK-1")
    store = api.services.subscribers
    assert store is not None
    person = await store.subscribe("sala", "@alguien", consent_text="acepto", source="test")
    await store.record_ack(person.id, alert_id, "safe")
    body = await _json(
        await api.client.get(
            f"/api/v1/alerts/{alert_id}/acknowledgements", headers=api.auth("vera")
        ),
        200,
    )
    assert body["alert_id"] == alert_id and body["counts"]["safe"] == 1 and body["total"] == 1
    missing = await api.client.get(
        "/api/v1/alerts/999999/acknowledgements", headers=api.auth("vera")
    )
    await _problem(missing, 404)


async def test_audit_pages_filters_and_verification(api: Api) -> None:
    first = await _json(
        await api.client.get("/api/v1/audit?limit=2", headers=api.auth("vera")), 200
    )
    assert len(first["records"]) == 2 and first["next"] == first["records"][-1]["seq"]
    second = await _json(
        await api.client.get(
            f"/api/v1/audit?limit=2&after={first['next']}", headers=api.auth("vera")
        ),
        200,
    )
    assert second["records"][0]["seq"] == first["next"] + 1
    some_action = first["records"][0]["action"]
    filtered = await _json(
        await api.client.get(f"/api/v1/audit?action={some_action}", headers=api.auth("vera")), 200
    )
    assert filtered["records"] and {r["action"] for r in filtered["records"]} == {some_action}
    verified = await _json(
        await api.client.get("/api/v1/audit/verify", headers=api.auth("vera")), 200
    )
    assert verified["intact"] is True and verified["records"] == await audit.count(api.engine)


async def test_dead_letters_listed_and_retried_with_the_officer_audited(api: Api) -> None:
    alert_id = await _feed_alert(api, "DEAD-1")
    await plan_rows(api.engine, alert_id, "sala", 3, when=HOUR_AGO)
    await plan_rows(api.engine, alert_id, "avisos", 2, when=HOUR_AGO)
    await finish(api.engine, alert_id, "sala", 3, DeliveryState.DEAD, when=HOUR_AGO)
    await finish(api.engine, alert_id, "avisos", 2, DeliveryState.DEAD, when=HOUR_AGO)

    listed = await _json(
        await api.client.get(
            f"/api/v1/deliveries/dead?alert_id={alert_id}&channel=sala", headers=api.auth("vera")
        ),
        200,
    )
    assert len(listed["deliveries"]) == 3 and {d["channel"] for d in listed["deliveries"]} == {
        "sala"
    }

    retried = await _json(
        await api.client.post(
            "/api/v1/deliveries/retry",
            json={"alert_id": alert_id, "channel": "sala"},
            headers=api.auth("oscar"),
        ),
        200,
    )
    assert retried["retried"] == 3
    left = await _json(
        await api.client.get(
            f"/api/v1/deliveries/dead?alert_id={alert_id}", headers=api.auth("vera")
        ),
        200,
    )
    assert {d["channel"] for d in left["deliveries"]} == {"avisos"}
    records = [r async for r in audit.iter_records(api.engine) if r.action == "delivery.retried"]
    assert [(r.actor, len(r.data["ids"])) for r in records] == [("user:oscar", 3)]
    unknown = await api.client.post(
        "/api/v1/deliveries/retry", json={"alert_id": 999999}, headers=api.auth("oscar")
    )
    await _problem(unknown, 404)


# --------------------------------------------------------------------------- progress stream


async def _events(api: Api, alert_id: int) -> list[tuple[str, dict[str, Any]]]:
    response = await api.client.get(f"/api/v1/alerts/{alert_id}/events", headers=api.auth("vera"))
    assert response.status == 200
    assert response.content_type == "text/event-stream"
    text = await asyncio.wait_for(response.text(), timeout=30)
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


async def test_the_stream_ends_when_the_fan_out_is_over(api: Api) -> None:
    alert_id = await _feed_alert(api, "SSE-1")
    await plan_rows(api.engine, alert_id, "sala", 2, when=HOUR_AGO)
    await finish(api.engine, alert_id, "sala", 2, DeliveryState.SENT, when=HOUR_AGO)
    events = await _events(api, alert_id)
    assert [name for name, _ in events] == ["progress", "end"]
    assert events[0][1]["finished"] is True and events[0][1]["totals"]["done"] == 2


async def test_the_stream_follows_the_fan_out_until_it_finishes(api: Api) -> None:
    alert_id = await _feed_alert(api, "SSE-2")
    await plan_rows(api.engine, alert_id, "sala", 2, when=HOUR_AGO)

    async def send_later() -> None:
        await asyncio.sleep(0.3)
        await finish(api.engine, alert_id, "sala", 2, DeliveryState.SENT, when=datetime.now(UTC))

    sender = asyncio.create_task(send_later())
    events = await _events(api, alert_id)
    await sender
    names = [name for name, _ in events]
    assert names[-1] == "end" and set(names[:-1]) == {"progress"} and len(names) >= 3
    assert events[0][1]["finished"] is False and events[-2][1]["finished"] is True


async def test_the_stream_of_a_missing_alert_is_a_404_problem(api: Api) -> None:
    for given in ("999999", "abc", "-1"):
        response = await api.client.get(f"/api/v1/alerts/{given}/events", headers=api.auth("vera"))
        await _problem(response, 404)


# --------------------------------------------------------------------------- bad input


async def test_bad_bodies_are_clear_problems(api: Api) -> None:
    officer = api.as_role(Role.OFFICER)
    not_json = await api.client.post(
        "/api/v1/alerts", data=b"{nope", headers={**officer, "Content-Type": "application/json"}
    )
    assert "JSON" in await _problem(not_json, 400)
    text = await api.client.post(
        "/api/v1/alerts", data=b"hola", headers={**officer, "Content-Type": "text/plain"}
    )
    await _problem(text, 415)
    array = await api.client.post("/api/v1/alerts", json=[1, 2], headers=officer)
    await _problem(array, 422)
    huge = await api.client.post(
        "/api/v1/preview",
        data=b'{"note": "' + b"x" * 300_000 + b'"}',
        headers={**officer, "Content-Type": "application/json"},
    )
    await _problem(huge, 413)
    typo = compose_body()
    typo["infos"][0]["headlne"] = "x"
    misspelt = await api.client.post("/api/v1/alerts", json=typo, headers=officer)
    assert "headlne" in await _problem(misspelt, 422)
    unknown = await api.client.post(
        "/api/v1/alerts/1/reject", json={"why": "x"}, headers=api.as_role(Role.APPROVER)
    )
    assert "why" in await _problem(unknown, 422)
    when = await api.client.post(
        "/api/v1/alerts/1/schedule", json={"scheduled_for": "mañana"}, headers=officer
    )
    assert "scheduled_for" in await _problem(when, 422)
    naive = await api.client.post(
        "/api/v1/alerts/1/schedule", json={"scheduled_for": "2030-01-01T00:00:00"}, headers=officer
    )
    assert "scheduled_for" in await _problem(naive, 422)


async def test_bad_ids_and_queries_are_problems(api: Api) -> None:
    viewer = api.as_role(Role.VIEWER)
    for given in ("abc", "-1", "1e3", "99999999999999999999", "%D9%A3"):
        await _problem(await api.client.get(f"/api/v1/alerts/{given}", headers=viewer), 404)
    assert "limit" in await _problem(
        await api.client.get("/api/v1/alerts?limit=0", headers=viewer), 422
    )
    assert "state" in await _problem(
        await api.client.get("/api/v1/alerts?state=borrador", headers=viewer), 422
    )
    await _problem(await api.client.get("/api/v1/nothing-here", headers=viewer), 404)
    await _problem(await api.client.delete("/api/v1/alerts", headers=viewer), 405)


async def test_details_follow_accept_language(api: Api) -> None:
    response = await api.client.get("/api/v1/me", headers={"Accept-Language": "es-MX,es;q=0.9"})
    assert "autenticación" in await _problem(response, 401)
    english = await api.client.get("/api/v1/me", headers={"Accept-Language": "en"})
    assert "authentication required" in await _problem(english, 401)


async def test_preview_of_a_composed_alert(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/preview", json=compose_body(), headers=api.as_role(Role.OFFICER)
    )
    body = await _json(response, 200)
    assert sorted(r["channel"] for r in body["routes"]) == ["avisos", "sala"]
    rendering = body["routes"][0]["renderings"][0]
    assert "Sismo" in rendering["text"] and rendering["length"] == len(rendering["text"])
    assert body["exercise"] is False
    bad = compose_body()
    bad["infos"][0]["urgency"] = "Ya"
    assert "urgency" in await _problem(
        await api.client.post("/api/v1/preview", json=bad, headers=api.as_role(Role.OFFICER)), 422
    )


async def test_the_stream_stops_when_the_client_leaves(api: Api) -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from alertcast.web.api.routes import add_api_routes
    from alertcast.web.auth import auth_middleware

    alert_id = await _feed_alert(api, "SSE-LEFT")
    await plan_rows(api.engine, alert_id, "sala", 1, when=HOUR_AGO)  # never finishes
    ended = asyncio.Event()

    @web.middleware
    async def watch(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)  # type: ignore[no-any-return]
        finally:
            if request.path.endswith("/events"):
                ended.set()

    app = web.Application(middlewares=[watch, auth_middleware(api.services)])
    add_api_routes(app, api.services, events_interval_s=0.05, events_lifetime_s=600)
    async with TestClient(TestServer(app)) as client:
        response = await client.get(f"/api/v1/alerts/{alert_id}/events", headers=api.auth("vera"))
        first = await response.content.readuntil(b"\n\n")
        assert first.startswith(b"event: progress\n")
        response.close()
        await asyncio.wait_for(ended.wait(), timeout=30)
