"""The fake Twilio and the Twilio channels against Twilio's own OpenAPI document (Api v2010).

A fake that only returns what the channels expect proves nothing; these
tests hold it, and what the channels send through the real SDK, to
``spec/twilio_api_v2010.json`` of the public corpus: the paths and methods,
the Message resource's properties and their types, the request-body
parameters, the response codes and the Basic authentication.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator, Mapping
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from alertcast.channels.registry import ChannelContext
from alertcast.channels.twilio_common import DEFAULT_API_URL
from alertcast.channels.twilio_sms import from_config as sms_from_config
from alertcast.channels.twilio_whatsapp import from_config as whatsapp_from_config
from alertcast.ports import OutboundMessage
from tests.fakes.twilio_api import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CREATE_PATH,
    FETCH_PATH,
    ROUTES,
    SID_ENV,
    TOKEN_ENV,
    FakeTwilio,
    channel_config,
)

pytestmark = pytest.mark.corpus

TO = "+525512345678"
SERVICE = "MG" + "ab" * 16
CONTENT = "HX" + "1a" * 16
TEMPLATE = {"name": "alerta", "language": "es", "variables": ["Sismo", "CDMX", "Aléjese", "x"]}
JSON_TYPES: Mapping[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


@pytest.fixture(scope="module")
def spec(corpus_dir: Path) -> dict[str, Any]:
    path = corpus_dir / "spec" / "twilio_api_v2010.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def resolve(spec: Mapping[str, Any], schema: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    node: Any = spec
    for key in ref.removeprefix("#/").split("/"):
        node = node[key]
    return resolve(spec, node)


def basic_auth(login: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{login}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


def message_schema(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    return spec["components"]["schemas"]["api.v2010.account.message"]


def create_params(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    body = spec["paths"][CREATE_PATH]["post"]["requestBody"]
    return body["content"]["application/x-www-form-urlencoded"]["schema"]


def check_value(spec: Mapping[str, Any], name: str, schema: Mapping[str, Any], value: Any) -> None:
    """``value`` is allowed by ``schema`` (type, nullability, enum, pattern, length, format)."""
    nullable = bool(schema.get("nullable"))
    schema = resolve(spec, schema)
    if value is None:
        assert nullable, f"{name} is null but the spec does not allow it"
        return
    kind = schema.get("type", "string")
    assert isinstance(value, JSON_TYPES[kind]), f"{name}: {value!r} is not a JSON {kind}"
    if kind == "integer":
        assert not isinstance(value, bool), name
    if "enum" in schema:
        assert value in schema["enum"], f"{name}: {value!r} not in {schema['enum']}"
    if "pattern" in schema:
        assert re.match(schema["pattern"], value), f"{name}: {value!r} !~ {schema['pattern']}"
    if "minLength" in schema:
        assert schema["minLength"] <= len(value) <= schema["maxLength"], name
    if schema.get("format") == "date-time-rfc-2822":
        assert parsedate_to_datetime(value).tzinfo is not None, name
    if schema.get("format") == "uri":
        parts = urlsplit(value)
        assert parts.scheme in ("http", "https") and parts.netloc, f"{name}: {value!r}"
    if schema.get("format") == "phone-number":
        assert re.match(r"^(whatsapp:)?\+[1-9][0-9]{6,14}$", value), f"{name}: {value!r}"


def test_the_fake_serves_the_spec_paths_and_methods(spec: Mapping[str, Any]) -> None:
    for method, path in ROUTES:
        assert path in spec["paths"], path
        assert method in spec["paths"][path], (method, path)
    assert {s["url"] for s in spec["paths"][CREATE_PATH]["servers"]} == {DEFAULT_API_URL}
    assert "201" in spec["paths"][CREATE_PATH]["post"]["responses"]
    assert "200" in spec["paths"][FETCH_PATH]["get"]["responses"]
    schemes = spec["components"]["securitySchemes"]
    assert [s["scheme"] for s in schemes.values()] == ["basic"]


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeTwilio]:
    monkeypatch.setenv(SID_ENV, ACCOUNT_SID)
    monkeypatch.setenv(TOKEN_ENV, AUTH_TOKEN)
    async with FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, hold_callbacks=True) as api:
        yield api


async def drive_every_adapter_form(fake: FakeTwilio) -> None:
    """One send of each request form the channels make, through the real SDK."""
    context = ChannelContext(data_dir=Path("."), site_url="https://alertas.example.mx")
    channels = [
        sms_from_config(channel_config("sms", "sms", fake, **{"from": "+15005550006"}), context),
        sms_from_config(
            channel_config("sms", "sms2", fake, messaging_service_sid=SERVICE), context
        ),
        whatsapp_from_config(
            channel_config(
                "whatsapp",
                "whatsapp",
                fake,
                **{"from": "+14155238886", "templates": {"alerta": CONTENT}},
            ),
            context,
        ),
    ]
    template = OutboundMessage(parts=("x",), extra={"whatsapp_template": TEMPLATE})
    free = OutboundMessage(parts=("Sismo: aléjese de muros",), extra={"session_open": True})
    try:
        await channels[0].send(free, TO)
        await channels[1].send(free, TO)
        await channels[2].send(free, TO)
        await channels[2].send(template, TO)
    finally:
        for channel in channels:
            await channel.aclose()


async def test_the_channels_send_only_spec_parameters(
    spec: Mapping[str, Any], fake: FakeTwilio
) -> None:
    await drive_every_adapter_form(fake)
    schema = create_params(spec)
    properties = schema["properties"]

    assert len(fake.requests) == 4
    seen: set[str] = set()
    for request in fake.requests:
        assert set(schema["required"]) <= set(request), request
        for name, value in request.items():
            assert name in properties, f"{name} is not a create parameter of the spec"
            check_value(spec, name, properties[name], value)
        seen.update(request)
        if "ContentVariables" in request:
            assert isinstance(json.loads(request["ContentVariables"]), dict)
    assert {"From", "MessagingServiceSid", "Body", "ContentSid", "ContentVariables"} <= seen


async def test_the_message_resource_has_the_spec_shape(
    spec: Mapping[str, Any], fake: FakeTwilio
) -> None:
    schema = message_schema(spec)
    properties = schema["properties"]
    auth = basic_auth(ACCOUNT_SID, AUTH_TOKEN)
    create_url = fake.url + CREATE_PATH.format(AccountSid=ACCOUNT_SID)
    async with aiohttp.ClientSession() as session:
        for form in (
            {"To": TO, "From": "+15005550006", "Body": "Aviso"},
            {"To": TO, "MessagingServiceSid": SERVICE, "Body": "Aviso " * 60},
            {"To": f"whatsapp:{TO}", "From": "whatsapp:+14155238886", "ContentSid": CONTENT},
        ):
            async with session.post(create_url, data=form, headers=auth) as answer:
                assert answer.status == 201
                created = await answer.json()
            fetch_url = fake.url + FETCH_PATH.format(AccountSid=ACCOUNT_SID, Sid=created["sid"])
            async with session.get(fetch_url, headers=auth) as answer:
                assert answer.status == 200
                fetched = await answer.json()
            for message in (created, fetched):
                assert set(message) == set(properties)
                for name, value in message.items():
                    check_value(spec, name, properties[name], value)
            assert created["status"] in ("queued", "accepted")


async def test_callback_statuses_are_the_spec_statuses(
    spec: Mapping[str, Any], fake: FakeTwilio
) -> None:
    statuses = resolve(spec, message_schema(spec)["properties"]["status"])["enum"]
    fake.outcomes[TO] = ("undelivered", 30007)
    await drive_every_adapter_form(fake)
    fake.release_callbacks()
    callbacks = await fake.callbacks_done(8)

    for callback in callbacks:
        assert callback.params["MessageStatus"] in statuses
        assert re.match(r"^(SM|MM)[0-9a-fA-F]{32}$", callback.params["MessageSid"])
        assert callback.params["AccountSid"] == ACCOUNT_SID


async def test_requests_without_valid_basic_auth_get_twilios_401(fake: FakeTwilio) -> None:
    url = fake.url + CREATE_PATH.format(AccountSid=ACCOUNT_SID)
    async with aiohttp.ClientSession() as session:
        for auth in ({}, basic_auth(ACCOUNT_SID, "wrong"), basic_auth("AC" + "f" * 32, AUTH_TOKEN)):
            async with session.post(url, data={"To": TO, "Body": "x"}, headers=auth) as answer:
                assert answer.status == 401
                body = await answer.json()
            assert body == {
                "code": 20003,
                "message": "Authenticate",
                "more_info": "https://www.twilio.com/docs/errors/20003",
                "status": 401,
            }
    assert fake.requests == []
