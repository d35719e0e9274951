"""The Twilio WhatsApp channel: free text inside the session, approved templates outside it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from alertcast.channels.registry import ChannelContext
from alertcast.channels.twilio_common import OUTSIDE_SESSION_TEXT
from alertcast.channels.twilio_whatsapp import TwilioWhatsAppChannel, from_config
from alertcast.errors import ConfigError, Permanent, RateLimited, RecipientGone
from alertcast.ports import Channel, OutboundMessage
from tests.fakes.twilio_api import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    SID_ENV,
    TOKEN_ENV,
    FakeTwilio,
    channel_config,
)

SENDER = "+14155238886"
TO = "+525512345678"
SITE = "https://alertas.example.mx"
CONTENT = "HX" + "1a" * 16
CONTENT_EN = "HX" + "2b" * 16
TEMPLATE = {
    "name": "alerta_emergencia",
    "language": "es_MX",
    "variables": ["ALERTA: Sismo M6.1", "Ciudad de México", "Aléjese de muros", "https://x.mx/1"],
}
IN_SESSION = OutboundMessage(
    parts=("Sismo M6.1: aléjese de muros.", "Más información: https://x.mx/1"),
    extra={"session_open": True, "whatsapp_template": TEMPLATE},
)
OUT_OF_SESSION = OutboundMessage(
    parts=("\n".join(TEMPLATE["variables"]),), extra={"whatsapp_template": TEMPLATE}
)


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SID_ENV, ACCOUNT_SID)
    monkeypatch.setenv(TOKEN_ENV, AUTH_TOKEN)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, hold_callbacks=True) as api:
        yield api


def build(fake: FakeTwilio | None, **options: Any) -> Any:
    options.setdefault("from", f"whatsapp:{SENDER}")
    options.setdefault("templates", {"alerta_emergencia": CONTENT})
    config = channel_config("whatsapp", "whatsapp", fake, **options)
    return from_config(config, ChannelContext(data_dir=Path("."), site_url=SITE))


@pytest.fixture
async def whatsapp(fake: FakeTwilio) -> AsyncIterator[TwilioWhatsAppChannel]:
    channel = build(fake, timeout_s=2.0)
    try:
        yield channel
    finally:
        await channel.aclose()


async def test_inside_the_session_the_parts_go_as_free_text(
    fake: FakeTwilio, whatsapp: TwilioWhatsAppChannel
) -> None:
    assert isinstance(whatsapp, Channel)
    receipt = await whatsapp.send(IN_SESSION, TO)

    first, second = fake.requests
    assert first == {
        "To": f"whatsapp:{TO}",
        "From": f"whatsapp:{SENDER}",
        "Body": IN_SESSION.parts[0],
        "StatusCallback": f"{SITE}/webhooks/twilio/status?channel=whatsapp",
    }
    assert second == {
        "To": f"whatsapp:{TO}",
        "From": f"whatsapp:{SENDER}",
        "Body": IN_SESSION.parts[1],
    }
    assert receipt.provider_message_id == next(iter(fake.messages))


async def test_outside_the_session_the_approved_template_is_sent(
    fake: FakeTwilio, whatsapp: TwilioWhatsAppChannel
) -> None:
    await whatsapp.send(OUT_OF_SESSION, TO)

    [request] = fake.requests
    assert "Body" not in request
    assert request["ContentSid"] == CONTENT
    assert json.loads(request["ContentVariables"]) == {
        "1": "ALERTA: Sismo M6.1",
        "2": "Ciudad de México",
        "3": "Aléjese de muros",
        "4": "https://x.mx/1",
    }
    assert request["To"] == f"whatsapp:{TO}"


async def test_a_template_approved_per_language_is_picked_by_language(fake: FakeTwilio) -> None:
    channel = build(fake, templates={"alerta_emergencia": {"es": CONTENT, "en": CONTENT_EN}})
    english = OutboundMessage(
        parts=("x",), extra={"whatsapp_template": {**TEMPLATE, "language": "en"}}
    )
    try:
        await channel.send(OUT_OF_SESSION, TO)  # es_MX: its primary subtag
        await channel.send(english, TO)
    finally:
        await channel.aclose()
    assert [r["ContentSid"] for r in fake.requests] == [CONTENT, CONTENT_EN]


async def test_outside_the_session_without_a_template_nothing_is_sent(
    fake: FakeTwilio, whatsapp: TwilioWhatsAppChannel
) -> None:
    unknown = OutboundMessage(
        parts=("x",), extra={"whatsapp_template": {**TEMPLATE, "name": "otra"}}
    )
    with pytest.raises(Permanent, match=OUTSIDE_SESSION_TEXT):
        await whatsapp.send(OutboundMessage(parts=("texto libre",)), TO)
    with pytest.raises(Permanent, match="no Content SID for template 'otra'"):
        await whatsapp.send(unknown, TO)
    assert fake.requests == []


async def test_63016_outside_the_window_is_permanent_and_marked(
    fake: FakeTwilio, whatsapp: TwilioWhatsAppChannel
) -> None:
    fake.errors[f"whatsapp:{TO}"] = 63016

    with pytest.raises(Permanent) as caught:
        await whatsapp.send(IN_SESSION, TO)

    assert str(caught.value).startswith(OUTSIDE_SESSION_TEXT)
    assert "63016" in str(caught.value)


async def test_errors_share_the_sms_mapping(
    fake: FakeTwilio, whatsapp: TwilioWhatsAppChannel
) -> None:
    fake.errors[f"whatsapp:{TO}"] = 21610
    with pytest.raises(RecipientGone):
        await whatsapp.send(OUT_OF_SESSION, TO)
    fake.errors[f"whatsapp:{TO}"] = 20429
    with pytest.raises(RateLimited):
        await whatsapp.send(OUT_OF_SESSION, TO)


async def test_the_target_is_a_plain_e164_number(
    fake: FakeTwilio, whatsapp: TwilioWhatsAppChannel
) -> None:
    with pytest.raises(Permanent, match=r"E\.164"):
        await whatsapp.send(OUT_OF_SESSION, f"whatsapp:{TO}")
    assert fake.requests == []


def test_configuration_problems_are_reported() -> None:
    with pytest.raises(ConfigError) as caught:
        build(None, **{"from": "Alertas CDMX"}, templates={"a": "HXnope", "b": {"es": 3}, "c": 4})
    keys = {p.key for p in caught.value.problems}
    assert keys == {
        "options.from",
        "options.templates.a",
        "options.templates.b.es",
        "options.templates.c",
    }


def test_the_sender_may_be_written_with_or_without_its_prefix() -> None:
    assert build(None, **{"from": SENDER}).settings.sender == SENDER
    assert build(None).settings.sender == SENDER


def test_the_example_file_builds() -> None:
    import tomllib

    from alertcast.config import ChannelConfig

    path = Path(__file__).resolve().parents[2] / "channels" / "whatsapp.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert data["enabled"] is False
    config = ChannelConfig(
        name=data["name"],
        kind=data["kind"],
        file=path,
        secrets={"account_sid": SID_ENV, "auth_token": TOKEN_ENV},
        options=data["options"],
    )
    channel = from_config(config, ChannelContext(data_dir=Path("."), site_url=SITE))
    assert (
        channel.kind == "whatsapp"
        and channel.content_sid(data["options"]["template_name"], "es")
        == data["options"]["templates"]["alerta_emergencia"]
    )
