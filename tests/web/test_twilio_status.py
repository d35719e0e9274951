"""``POST /webhooks/twilio/status``: signed callbacks move ledger rows; forged ones are refused.

End to end: the worker sends planned rows through the real SDK to the fake
Twilio, which then posts signed status callbacks to the route served here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from alertcast import audit, lifecycle
from alertcast.channels.registry import ChannelContext
from alertcast.channels.twilio_common import CARRIER_FILTERED_EVENT
from alertcast.channels.twilio_sms import from_config as sms_from_config
from alertcast.channels.twilio_whatsapp import from_config as whatsapp_from_config
from alertcast.dispatch import ledger
from alertcast.dispatch.ledger import DeliveryState, Outcome
from alertcast.dispatch.worker import Worker
from alertcast.ports import OutboundMessage
from alertcast.store.tables import deliveries
from alertcast.testing import UnlimitedLimiter
from alertcast.web.twilio_status import EMPTY_TWIML, REJECTED_ACTION, add_twilio_routes
from tests.dispatch.conftest import make_alert
from tests.fakes.twilio_api import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    SID_ENV,
    TOKEN_ENV,
    FakeTwilio,
    channel_config,
    twilio_signature,
)

PATH = "/webhooks/twilio/status"
PUBLIC = "https://alertas.example.mx"
TO_OK = "+525500000001"
TO_FILTERED = "+525500000002"
TO_WHATSAPP = "+525500000003"
CONTENT = "HX" + "1a" * 16


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SID_ENV, ACCOUNT_SID)
    monkeypatch.setenv(TOKEN_ENV, AUTH_TOKEN)


async def serve(engine: AsyncEngine, public_url: str | None = None) -> TestClient[Any, Any]:
    app = web.Application()
    add_twilio_routes(app, engine, {"sms": AUTH_TOKEN, "whatsapp": AUTH_TOKEN}, public_url)
    client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client


@pytest.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[TestClient[Any, Any]]:
    test_client = await serve(engine)
    try:
        yield test_client
    finally:
        await test_client.close()


async def store_alert(engine: AsyncEngine, identifier: str) -> int:
    stored = await lifecycle.ingest_alert(
        engine, make_alert(identifier), raw=None, source="test", actor="test", now=datetime.now(UTC)
    )
    return stored.result.alert_id


async def plan(engine: AsyncEngine, alert_id: int, channel: str, targets: list[str]) -> None:
    await ledger.plan(
        engine,
        alert_id=alert_id,
        channel=channel,
        targets=targets,
        message=OutboundMessage(
            parts=("ALERTA SISMICA: alejese de muros",),
            severity="Extreme",
            extra={
                "alert_id": alert_id,
                "whatsapp_template": {"name": "alerta", "language": "es", "variables": ["a"]},
            },
        ),
        priority=10,
        deadline=None,
    )


async def rows(engine: AsyncEngine) -> dict[str, tuple[str, str | None, str | None]]:
    """target → (state, provider message id, last error)."""
    async with engine.connect() as conn:
        result = await conn.execute(
            select(
                deliveries.c.target,
                deliveries.c.state,
                deliveries.c.provider_message_id,
                deliveries.c.last_error,
            )
        )
        return {r.target: (r.state, r.provider_message_id, r.last_error) for r in result}


async def mark_sent(engine: AsyncEngine, alert_id: int, target: str, sid: str) -> None:
    await plan(engine, alert_id, "sms", [target])
    [claimed] = await ledger.claim(engine, worker="w", channels=["sms"], limit=10, lease_s=60)
    assert await ledger.start_attempt(engine, claimed.id, worker="w")
    await ledger.record_outcome(
        engine,
        Outcome(claimed.id, alert_id, DeliveryState.SENT, provider_message_id=sid),
        worker="w",
    )


def signed_form(url: str, **params: str) -> tuple[dict[str, str], dict[str, str]]:
    return params, {"X-Twilio-Signature": twilio_signature(AUTH_TOKEN, url, params)}


def callback_params(sid: str, status: str) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "From": "+15005550006",
        "MessageSid": sid,
        "MessageStatus": status,
        "SmsSid": sid,
        "SmsStatus": status,
        "To": TO_OK,
    }


async def rejections(engine: AsyncEngine) -> list[audit.AuditRecord]:
    return [r async for r in audit.iter_records(engine) if r.action == REJECTED_ACTION]


# --------------------------------------------------------------------------- end to end


async def test_callbacks_from_twilio_move_the_rows_the_worker_sent(
    engine: AsyncEngine, client: TestClient[Any, Any]
) -> None:
    alert_id = await store_alert(engine, "TW-1")
    await plan(engine, alert_id, "sms", [TO_OK, TO_FILTERED])
    await plan(engine, alert_id, "whatsapp", [TO_WHATSAPP])
    site = str(client.make_url("")).rstrip("/")
    context = ChannelContext(data_dir=Path("."), site_url=site)
    outcomes = {TO_FILTERED: ("undelivered", 30007)}
    async with FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, outcomes=outcomes, hold_callbacks=True) as fake:
        sms = sms_from_config(
            channel_config("sms", "sms", fake, **{"from": "+15005550006"}), context
        )
        whatsapp = whatsapp_from_config(
            channel_config(
                "whatsapp",
                "whatsapp",
                fake,
                **{"from": "+14155238886", "templates": {"alerta": CONTENT}},
            ),
            context,
        )
        worker = Worker(
            engine,
            {"sms": sms, "whatsapp": whatsapp},
            UnlimitedLimiter(),
            "w1",  # type: ignore[arg-type]
        )
        try:
            assert await worker.run_once() == 3
            sent = await rows(engine)
            assert {state for state, _, _ in sent.values()} == {"sent"}
            [template] = [r for r in fake.requests if "ContentSid" in r]
            assert template["ContentSid"] == CONTENT and template["To"] == f"whatsapp:{TO_WHATSAPP}"

            with capture_logs() as logs:
                fake.release_callbacks()
                callbacks = await fake.callbacks_done(6)
        finally:
            await sms.aclose()
            await whatsapp.aclose()

    assert [c.answer for c in callbacks] == [200] * 6
    assert {c.url.rsplit("=", 1)[1] for c in callbacks} == {"sms", "whatsapp"}
    after = await rows(engine)
    assert after[TO_OK][0] == "delivered"
    assert after[TO_WHATSAPP][0] == "delivered"
    state, sid, error = after[TO_FILTERED]
    assert state == "failed" and error is not None and "30007" in error
    assert sid == sent[TO_FILTERED][1]
    assert any(e["event"] == CARRIER_FILTERED_EVENT for e in logs)
    receipts = [r async for r in audit.iter_records(engine) if r.action == "delivery.receipt"]
    assert sorted(r.data["state"] for r in receipts) == ["delivered", "delivered", "failed"]
    assert await rejections(engine) == []
    await audit.verify_chain(engine)


# --------------------------------------------------------------------------- refused


async def test_a_forged_callback_is_refused_audited_and_changes_nothing(
    engine: AsyncEngine, client: TestClient[Any, Any]
) -> None:
    alert_id = await store_alert(engine, "TW-2")
    await mark_sent(engine, alert_id, TO_OK, "SM" + "0" * 32)
    url = str(client.make_url(f"{PATH}?channel=sms"))
    params = callback_params("SM" + "0" * 32, "failed")
    forged = twilio_signature("someone-elses-token", url, params)

    with capture_logs() as logs:
        answer = await client.post(
            f"{PATH}?channel=sms", data=params, headers={"X-Twilio-Signature": forged}
        )

    assert answer.status == 403
    assert (await rows(engine))[TO_OK][0] == "sent"
    [record] = await rejections(engine)
    assert record.actor == "provider:twilio"
    assert record.data["reason"] == "signature does not match"
    assert record.data["message_sid"] == "SM" + "0" * 32
    assert any(e["event"] == "twilio.webhook_rejected" and e["log_level"] == "error" for e in logs)
    await audit.verify_chain(engine)


async def test_unsigned_tampered_and_unknown_channel_callbacks_are_refused(
    engine: AsyncEngine, client: TestClient[Any, Any]
) -> None:
    url = str(client.make_url(f"{PATH}?channel=sms"))
    params, headers = signed_form(url, **callback_params("SM" + "1" * 32, "delivered"))

    unsigned = await client.post(f"{PATH}?channel=sms", data=params)
    tampered = await client.post(
        f"{PATH}?channel=sms", data={**params, "MessageStatus": "failed"}, headers=headers
    )
    other_channel = await client.post(f"{PATH}?channel=whatsapp", data=params, headers=headers)
    unknown = await client.post(f"{PATH}?channel=telegram", data=params, headers=headers)
    genuine = await client.post(f"{PATH}?channel=sms", data=params, headers=headers)

    assert [a.status for a in (unsigned, tampered, other_channel, unknown)] == [403] * 4
    assert genuine.status == 200 and await genuine.text() == EMPTY_TWIML
    reasons = [r.data["reason"] for r in await rejections(engine)]
    assert reasons == [
        "no signature",
        "signature does not match",
        "signature does not match",
        "unknown channel",
    ]


async def test_behind_a_proxy_the_public_url_is_what_is_checked(engine: AsyncEngine) -> None:
    alert_id = await store_alert(engine, "TW-3")
    sid = "SM" + "2" * 32
    await mark_sent(engine, alert_id, TO_OK, sid)
    params, headers = signed_form(
        f"{PUBLIC}{PATH}?channel=sms", **callback_params(sid, "delivered")
    )

    direct = await serve(engine)
    try:
        refused = await direct.post(f"{PATH}?channel=sms", data=params, headers=headers)
    finally:
        await direct.close()
    proxied = await serve(engine, public_url=PUBLIC + "/")
    try:
        accepted = await proxied.post(f"{PATH}?channel=sms", data=params, headers=headers)
    finally:
        await proxied.close()

    assert refused.status == 403
    assert accepted.status == 200
    assert (await rows(engine))[TO_OK][0] == "delivered"
