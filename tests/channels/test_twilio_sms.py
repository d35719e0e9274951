"""The Twilio SMS channel: the real SDK against the fake Twilio, every error class it maps to."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from alertcast.channels.registry import ChannelContext
from alertcast.channels.twilio_common import CARRIER_FILTERED_EVENT
from alertcast.channels.twilio_sms import TwilioSmsChannel, from_config
from alertcast.errors import (
    ChannelError,
    ConfigError,
    Permanent,
    RateLimited,
    RecipientGone,
    SentButUnknown,
    Transient,
)
from alertcast.ports import Channel, OutboundMessage
from tests.fakes.twilio_api import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    SID_ENV,
    TOKEN_ENV,
    FakeTwilio,
    channel_config,
)

SENDER = "+15005550006"
SERVICE = "MG" + "ab" * 16
TO = "+525512345678"
SITE = "https://alertas.example.mx"
MESSAGE = OutboundMessage(
    parts=("ALERTA SISMICA: aléjese de muros y ventanas.",),
    language="es",
    severity="Extreme",
    extra={"alert_id": 1},
)
SID = re.compile(r"^SM[0-9a-f]{32}$")


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SID_ENV, ACCOUNT_SID)
    monkeypatch.setenv(TOKEN_ENV, AUTH_TOKEN)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, hold_callbacks=True) as api:
        yield api


def build(fake: FakeTwilio | None, *, site_url: str | None = SITE, **options: Any) -> Any:
    options.setdefault("from", SENDER)
    config = channel_config("sms", "sms", fake, **options)
    return from_config(config, ChannelContext(data_dir=Path("."), site_url=site_url))


@pytest.fixture
async def sms(fake: FakeTwilio) -> AsyncIterator[TwilioSmsChannel]:
    channel = build(fake, timeout_s=2.0)
    try:
        yield channel
    finally:
        await channel.aclose()


# --------------------------------------------------------------------------- sending


async def test_a_send_creates_one_message_with_a_status_callback(
    fake: FakeTwilio, sms: TwilioSmsChannel
) -> None:
    assert isinstance(sms, Channel)
    receipt = await sms.send(MESSAGE, TO)

    assert receipt.provider_message_id is not None and SID.match(receipt.provider_message_id)
    assert receipt.delivered is False
    [request] = fake.requests
    assert request == {
        "To": TO,
        "From": SENDER,
        "Body": MESSAGE.parts[0],
        "StatusCallback": f"{SITE}/webhooks/twilio/status?channel=sms",
    }
    stored = fake.messages[receipt.provider_message_id]
    assert stored["status"] == "queued" and stored["to"] == TO


async def test_a_messaging_service_replaces_the_from_number(fake: FakeTwilio) -> None:
    channel = build(fake, site_url=None, **{"from": None, "messaging_service_sid": SERVICE})
    try:
        receipt = await channel.send(MESSAGE, TO)
    finally:
        await channel.aclose()

    [request] = fake.requests
    assert request == {"To": TO, "MessagingServiceSid": SERVICE, "Body": MESSAGE.parts[0]}
    assert fake.messages[str(receipt.provider_message_id)]["status"] == "accepted"


async def test_an_explicit_callback_url_is_used_with_the_channel_named(
    fake: FakeTwilio,
) -> None:
    channel = build(fake, status_callback_url="https://proxy.example/tw/status?x=1")
    try:
        await channel.send(MESSAGE, TO)
    finally:
        await channel.aclose()
    assert fake.requests[0]["StatusCallback"] == "https://proxy.example/tw/status?x=1&channel=sms"


async def test_several_parts_become_several_messages_the_first_one_tracked(
    fake: FakeTwilio, sms: TwilioSmsChannel
) -> None:
    message = OutboundMessage(parts=("Parte 1", "Parte 2", "Parte 3"))

    receipt = await sms.send(message, TO)

    assert [r["Body"] for r in fake.requests] == ["Parte 1", "Parte 2", "Parte 3"]
    assert "StatusCallback" in fake.requests[0]
    assert all("StatusCallback" not in r for r in fake.requests[1:])
    first_sid = next(iter(fake.messages))
    assert receipt.provider_message_id == first_sid


async def test_a_later_part_failing_is_sent_but_unknown(
    fake: FakeTwilio, sms: TwilioSmsChannel
) -> None:
    message = OutboundMessage(parts=("Parte 1", "Parte 2"))
    await sms.send(OutboundMessage(parts=("warm-up",)), TO)
    fake.requests.clear()

    original = fake.errors

    class _SecondFails(dict[str, int]):
        def __contains__(self, key: object) -> bool:
            return len(fake.requests) >= 2

        def __getitem__(self, key: str) -> int:
            return 20500

    fake.errors = _SecondFails()
    try:
        with pytest.raises(SentButUnknown, match=r"part 2 of 2 failed after SM"):
            await sms.send(message, TO)
    finally:
        fake.errors = original
    assert len(fake.requests) == 2


async def test_a_malformed_target_is_refused_before_any_request(
    fake: FakeTwilio, sms: TwilioSmsChannel
) -> None:
    for target in ("5512345678", "+0123456789", "+52 55 1234 5678", "whatsapp:+525512345678"):
        with pytest.raises(Permanent, match=r"E\.164"):
            await sms.send(MESSAGE, target)
    assert fake.requests == []


async def test_the_auth_token_never_appears_in_a_repr(sms: TwilioSmsChannel) -> None:
    assert AUTH_TOKEN not in repr(sms)
    assert AUTH_TOKEN not in repr(sms.settings)


# --------------------------------------------------------------------------- errors

ERROR_CASES: list[tuple[int, type[ChannelError], str]] = [
    (21610, RecipientGone, "21610"),
    (21211, Permanent, "21211"),
    (21614, Permanent, "21614"),
    (20500, Transient, "HTTP 500"),
    (20503, Transient, "HTTP 503"),
    (20404, Permanent, "HTTP 404"),
]


@pytest.mark.parametrize(("code", "error_class", "text"), ERROR_CASES)
async def test_twilio_errors_map_to_classes(
    fake: FakeTwilio,
    sms: TwilioSmsChannel,
    code: int,
    error_class: type[ChannelError],
    text: str,
) -> None:
    fake.errors[TO] = code

    with pytest.raises(ChannelError) as caught:
        await sms.send(MESSAGE, TO)

    assert type(caught.value) is error_class
    assert text in str(caught.value)


async def test_429_waits_as_long_as_retry_after_says(
    fake: FakeTwilio, sms: TwilioSmsChannel
) -> None:
    fake.errors[TO] = 20429
    fake.retry_after = "7"

    with pytest.raises(RateLimited) as caught:
        await sms.send(MESSAGE, TO)

    assert caught.value.retry_after == 7.0


async def test_429_without_retry_after_waits_one_second(
    fake: FakeTwilio, sms: TwilioSmsChannel
) -> None:
    fake.errors[TO] = 20429

    with pytest.raises(RateLimited) as caught:
        await sms.send(MESSAGE, TO)

    assert caught.value.retry_after == 1.0


async def test_carrier_filtering_is_permanent_and_flagged_to_operators(
    fake: FakeTwilio, sms: TwilioSmsChannel
) -> None:
    fake.errors[TO] = 30007

    with capture_logs() as logs, pytest.raises(Permanent) as caught:
        await sms.send(MESSAGE, TO)

    assert str(caught.value).startswith(CARRIER_FILTERED_EVENT)
    [event] = [e for e in logs if e["event"] == CARRIER_FILTERED_EVENT]
    assert event["log_level"] == "error" and event["channel"] == "sms"
    assert TO not in str(event)  # the number is masked


async def test_a_wrong_auth_token_is_permanent(
    fake: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "not-the-token")
    channel = build(fake)
    try:
        with pytest.raises(Permanent, match="20003"):
            await channel.send(MESSAGE, TO)
    finally:
        await channel.aclose()


async def test_a_timeout_after_the_post_is_sent_but_unknown(fake: FakeTwilio) -> None:
    fake.slow[TO] = 5.0
    channel = build(fake, timeout_s=0.3)
    try:
        with pytest.raises(SentButUnknown):
            await channel.send(MESSAGE, TO)
    finally:
        await channel.aclose()
    assert len(fake.messages) == 1  # Twilio did accept it


async def test_no_connection_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    channel = build(None, api_url=f"http://127.0.0.1:{port}", timeout_s=2.0)
    try:
        with pytest.raises(Transient, match="cannot connect"):
            await channel.send(MESSAGE, TO)
    finally:
        await channel.aclose()


# --------------------------------------------------------------------------- configuration


def test_building_opens_nothing_and_defaults_to_twilio() -> None:
    channel = build(None, api_url="https://api.twilio.com")
    assert channel.settings.api_url == "https://api.twilio.com"
    assert channel.settings.status_callback == f"{SITE}/webhooks/twilio/status?channel=sms"


def test_every_configuration_problem_is_reported_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SID_ENV, "not-a-sid")
    monkeypatch.delenv(TOKEN_ENV)
    config = channel_config(
        "sms",
        "sms",
        None,
        api_url="ftp://x",
        timeout_s=0,
        messaging_service_sid="MGnope",
        status_callback_url="nope",
    )

    with pytest.raises(ConfigError) as caught:
        from_config(config, ChannelContext(data_dir=Path(".")))

    keys = {p.key for p in caught.value.problems}
    assert keys == {
        "secrets.account_sid",
        "secrets.auth_token",
        "options.api_url",
        "options.timeout_s",
        "options.messaging_service_sid",
        "options.status_callback_url",
    }


def test_a_sender_is_required() -> None:
    with pytest.raises(ConfigError, match=r"options\.from"):
        build(None, **{"from": None})


def test_the_example_file_builds() -> None:
    import tomllib

    from alertcast.config import ChannelConfig

    path = Path(__file__).resolve().parents[2] / "channels" / "sms.toml"
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
    assert channel.kind == "sms" and channel.settings.sender == data["options"]["from"]
