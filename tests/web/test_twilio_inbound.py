"""``POST /webhooks/twilio/inbound``: keywords texted to the service subscribe and unsubscribe.

Requests are signed as Twilio signs them (the fake Twilio's signer, written
from Twilio's description, not with the SDK the route validates with), and
acted on by the real subscriber store and area catalogue on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from alertcast import audit
from alertcast.areas import AreaCatalogue
from alertcast.errors import StoreError
from alertcast.sms import transliterate_to_gsm7
from alertcast.subscribers.crypto import SubscriberKeys
from alertcast.subscribers.keyword_texts import keyword_text
from alertcast.subscribers.model import Subscriber
from alertcast.subscribers.store import SubscriberStore
from alertcast.web.twilio_inbound import (
    INBOUND_PATH,
    INVALID_SENDER_ACTION,
    TwilioInboundRoute,
    add_twilio_inbound_routes,
    twiml,
)
from alertcast.web.twilio_status import REJECTED_ACTION
from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, twilio_signature

KINDS = {"sms": "sms", "whatsapp": "whatsapp"}
PHONE = "+525512345678"
"""A valid Mexico City mobile number (E.164)."""
OTHER_TOKEN = "f" * 32
IZTAPALAPA = "INEGI_CVEGEO:09007"
COYOACAN = "INEGI_CVEGEO:09003"


def square(lon: float, lat: float) -> dict[str, Any]:
    ring = [[lon, lat], [lon + 0.05, lat], [lon + 0.05, lat + 0.05], [lon, lat + 0.05], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


AREAS = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"CVEGEO": "09007", "NOMGEO": "Iztapalapa"},
            "geometry": square(-99.08, 19.33),
        },
        {
            "type": "Feature",
            "properties": {"CVEGEO": "09003", "NOMGEO": "Coyoacán"},
            "geometry": square(-99.18, 19.32),
        },
        {
            "type": "Feature",
            "properties": {"CVEGEO": "15104", "NOMGEO": "Tlalnepantla de Baz"},
            "geometry": square(-99.22, 19.52),
        },
        {
            "type": "Feature",
            "properties": {"CVEGEO": "21192", "NOMGEO": "Tlalnepantla"},
            "geometry": square(-98.92, 18.99),
        },
    ],
}


@pytest.fixture
def store(engine: AsyncEngine) -> SubscriberStore:
    return SubscriberStore(engine, SubscriberKeys(bytes(range(32))), kinds=KINDS)


@pytest.fixture
async def catalogue(engine: AsyncEngine, tmp_path: Path) -> AreaCatalogue:
    path = tmp_path / "municipios.geojson"
    path.write_text(json.dumps(AREAS), encoding="utf-8")
    catalogue = AreaCatalogue(engine)
    imported = await catalogue.import_geojson(
        path, scheme="INEGI_CVEGEO", code_field="CVEGEO", name_field="NOMGEO", actor="test"
    )
    assert imported == 4
    return catalogue


async def serve(
    engine: AsyncEngine, store: Any, catalogue: Any, public_url: str | None = None
) -> TestClient[Any, Any]:
    app = web.Application()
    add_twilio_inbound_routes(
        app,
        engine=engine,
        store=store,
        catalogue=catalogue,
        auth_tokens={"sms": AUTH_TOKEN, "whatsapp": AUTH_TOKEN},
        public_url=public_url,
        channel_kinds=KINDS,
    )
    client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client


@pytest.fixture
async def client(
    engine: AsyncEngine, store: SubscriberStore, catalogue: AreaCatalogue
) -> AsyncIterator[TestClient[Any, Any]]:
    test_client = await serve(engine, store, catalogue)
    try:
        yield test_client
    finally:
        await test_client.close()


def inbound_params(body: str, sender: str = PHONE, *, whatsapp: bool = False) -> dict[str, str]:
    """The form Twilio posts for an incoming message, with the field names Twilio uses."""
    to = "+15005550006"
    params = {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "Body": body,
        "From": sender,
        "MessageSid": "SM" + "0" * 32,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsMessageSid": "SM" + "0" * 32,
        "SmsSid": "SM" + "0" * 32,
        "SmsStatus": "received",
        "To": f"whatsapp:{to}" if whatsapp else to,
    }
    if whatsapp:
        params["ProfileName"] = "Ana"
        params["WaId"] = sender.removeprefix("whatsapp:+")
    return params


async def post(
    client: TestClient[Any, Any],
    params: dict[str, str],
    *,
    channel: str = "sms",
    token: str = AUTH_TOKEN,
    signed_url: str | None = None,
    signature: str | None = "sign",
) -> tuple[int, str | None]:
    """POST ``params`` signed as Twilio would; (HTTP status, the TwiML message or None)."""
    path = f"{INBOUND_PATH}?channel={channel}"
    url = signed_url or str(client.make_url(path))
    headers = {}
    if signature == "sign":
        headers["X-Twilio-Signature"] = twilio_signature(token, url, params)
    elif signature is not None:
        headers["X-Twilio-Signature"] = signature
    response = await client.post(path, data=params, headers=headers)
    text = await response.text()
    if response.status != 200:
        return response.status, None
    assert response.content_type == "text/xml"
    root = ET.fromstring(text)
    assert root.tag == "Response"
    messages = root.findall("Message")
    assert len(messages) <= 1
    return 200, messages[0].text if messages else None


async def records(engine: AsyncEngine, action: str) -> list[audit.AuditRecord]:
    return [r async for r in audit.iter_records(engine) if r.action == action]


# --------------------------------------------------------------------------- subscribe


async def test_alta_with_a_municipality_subscribes_to_it(
    engine: AsyncEngine, store: SubscriberStore, client: TestClient[Any, Any]
) -> None:
    status, answer = await post(client, inbound_params("ALTA Iztapalapa"))
    assert status == 200 and answer is not None
    assert "Iztapalapa" in answer and "BAJA" in answer
    subscriber = await store.get("sms", PHONE)
    assert subscriber is not None
    assert subscriber.areas == (IZTAPALAPA,) and subscriber.language == "es"
    [opt_in] = await records(engine, "subscriber.opt_in")
    assert opt_in.data["consent_text"] == answer  # the text the person received, exactly
    assert opt_in.data["source"] == "sms-keyword" and opt_in.data["channel"] == "sms"
    assert PHONE not in json.dumps(opt_in.data)


async def test_sms_answers_drop_accents_gsm7_lacks_to_stay_one_segment(
    client: TestClient[Any, Any],
) -> None:
    _, answer = await post(client, inbound_params("alta coyoacan"))
    assert answer is not None
    assert "Coyoacan" in answer and "recibiras" in answer  # á dropped: GSM-7 has no á
    assert answer == transliterate_to_gsm7(keyword_text("subscribed_area", "es", area="Coyoacán"))


async def test_whatsapp_start_subscribes_in_english_and_keeps_accents(
    engine: AsyncEngine, store: SubscriberStore, client: TestClient[Any, Any]
) -> None:
    params = inbound_params("Start Coyoacán, CDMX", f"whatsapp:{PHONE}", whatsapp=True)
    status, answer = await post(client, params, channel="whatsapp")
    assert status == 200
    assert answer == keyword_text("subscribed_area", "en", area="Coyoacán")
    subscriber = await store.get("whatsapp", PHONE)  # stored under the plain E.164 number
    assert subscriber is not None
    assert subscriber.areas == (COYOACAN,) and subscriber.language == "en"
    assert await store.get("sms", PHONE) is None  # one channel's subscription only
    [opt_in] = await records(engine, "subscriber.opt_in")
    assert opt_in.data["source"] == "whatsapp-keyword"


async def test_a_number_written_without_country_code_is_the_same_person(
    store: SubscriberStore, client: TestClient[Any, Any]
) -> None:
    await post(client, inbound_params("ALTA Iztapalapa", "5512345678"))
    subscriber = await store.get("sms", PHONE)
    assert subscriber is not None and subscriber.areas == (IZTAPALAPA,)


async def test_alta_without_area_subscribes_and_says_how_to_choose_one(
    store: SubscriberStore, client: TestClient[Any, Any]
) -> None:
    _, answer = await post(client, inbound_params("alta"))
    assert answer is not None and "ALTA Iztapalapa" in answer
    subscriber = await store.get("sms", PHONE)
    assert subscriber is not None and subscriber.areas == ()


async def test_an_area_not_in_the_catalogue_subscribes_without_one(
    store: SubscriberStore, client: TestClient[Any, Any]
) -> None:
    _, answer = await post(client, inbound_params("ALTA Atlantida"))
    assert answer is not None and "no encontramos" in answer
    subscriber = await store.get("sms", PHONE)
    assert subscriber is not None and subscriber.areas == ()


async def test_shortening_the_text_must_find_one_area_not_the_first_of_many(
    store: SubscriberStore, client: TestClient[Any, Any]
) -> None:
    # "Tlalnepantla" names two municipalities: once "Norte" is dropped, it is ambiguous.
    _, answer = await post(client, inbound_params("ALTA Tlalnepantla Norte"))
    assert answer is not None and "no encontramos" in answer
    subscriber = await store.get("sms", PHONE)
    assert subscriber is not None and subscriber.areas == ()
    # The whole text naming several: the best match, as the catalogue orders them.
    await post(client, inbound_params("ALTA Tlalnepantla"))
    subscriber = await store.get("sms", PHONE)
    assert subscriber is not None and subscriber.areas == ("INEGI_CVEGEO:21192",)


async def test_subscribing_again_changes_the_area_and_keeps_the_other_choices(
    store: SubscriberStore, client: TestClient[Any, Any]
) -> None:
    await post(client, inbound_params("ALTA Iztapalapa"))
    first = await store.get("sms", PHONE)
    assert first is not None
    await store.update(first.id, topics=["sismos"], actor="test")
    await post(client, inbound_params("ALTA"))
    kept = await store.get("sms", PHONE)
    assert kept is not None and kept.areas == (IZTAPALAPA,) and kept.topics == {"sismos"}
    await post(client, inbound_params("ALTA Coyoacan"))
    moved = await store.get("sms", PHONE)
    assert moved is not None and moved.id == first.id
    assert moved.areas == (COYOACAN,) and moved.topics == {"sismos"}


# --------------------------------------------------------------------------- unsubscribe


@pytest.mark.parametrize("word", ["STOP", "baja", "Cancelar", "UNSUBSCRIBE"])
async def test_opt_out_words_erase_the_subscriber(
    engine: AsyncEngine, store: SubscriberStore, client: TestClient[Any, Any], word: str
) -> None:
    await post(client, inbound_params("ALTA Iztapalapa"))
    assert await store.get("sms", PHONE) is not None
    status, answer = await post(client, inbound_params(word))
    assert status == 200 and answer is not None
    assert await store.get("sms", PHONE) is None
    [opt_out] = await records(engine, "subscriber.opt_out")
    assert opt_out.data["consent_text"] == answer and opt_out.data["source"] == "sms-keyword"


async def test_stop_answers_in_the_language_the_person_chose(
    store: SubscriberStore, client: TestClient[Any, Any]
) -> None:
    await post(client, inbound_params("START Iztapalapa"))
    _, answer = await post(client, inbound_params("stop"))
    assert answer == keyword_text("unsubscribed", "en")
    _, answer = await post(client, inbound_params("STOP"))  # no longer known: Spanish
    assert answer is not None and answer.startswith("Baja confirmada")


async def test_stop_from_someone_never_subscribed_is_still_confirmed(
    engine: AsyncEngine, client: TestClient[Any, Any]
) -> None:
    status, answer = await post(client, inbound_params("BAJA"))
    assert status == 200 and answer is not None and answer.startswith("Baja confirmada")
    assert await records(engine, "subscriber.opt_out") == []


# --------------------------------------------------------------------------- help, unknown


@pytest.mark.parametrize(("word", "language"), [("AYUDA", "es"), ("help", "en")])
async def test_help_words_answer_with_help(
    engine: AsyncEngine,
    store: SubscriberStore,
    client: TestClient[Any, Any],
    word: str,
    language: str,
) -> None:
    _, answer = await post(client, inbound_params(word))
    assert answer == keyword_text("help", language)
    assert await store.get("sms", PHONE) is None
    assert await records(engine, "subscriber.opt_in") == []


@pytest.mark.parametrize("body", ["hola, qué es esto", "", "👍"])
async def test_unknown_text_gets_a_short_help_never_silence(
    store: SubscriberStore, client: TestClient[Any, Any], body: str
) -> None:
    status, answer = await post(client, inbound_params(body))
    assert status == 200
    assert answer == transliterate_to_gsm7(keyword_text("unknown", "es"))
    assert await store.get("sms", PHONE) is None


# --------------------------------------------------------------------------- refused requests


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("forged", "signature does not match"),
        ("unsigned", "no signature"),
        ("other channel's url", "signature does not match"),
        ("unknown channel", "unknown channel"),
    ],
)
async def test_requests_not_from_twilio_are_refused_and_audited(
    engine: AsyncEngine,
    store: SubscriberStore,
    client: TestClient[Any, Any],
    how: str,
    reason: str,
) -> None:
    await post(client, inbound_params("ALTA Iztapalapa"))
    params = inbound_params("STOP")
    kwargs: dict[str, Any] = {}
    if how == "forged":
        kwargs["token"] = OTHER_TOKEN
    elif how == "unsigned":
        kwargs["signature"] = None
    elif how == "other channel's url":
        kwargs["signed_url"] = str(client.make_url(f"{INBOUND_PATH}?channel=whatsapp"))
    else:
        kwargs["channel"] = "nope"
    with capture_logs() as logs:
        status, answer = await post(client, params, **kwargs)
    assert status == 403 and answer is None
    assert await store.get("sms", PHONE) is not None  # the forged STOP erased nobody
    [rejected] = await records(engine, REJECTED_ACTION)
    assert rejected.actor == "provider:twilio"
    assert rejected.subject == f"webhook:{INBOUND_PATH}"
    assert rejected.data["reason"] == reason and rejected.data["path"] == INBOUND_PATH
    assert any(e["event"] == "twilio.webhook_rejected" for e in logs)
    assert AUTH_TOKEN not in json.dumps(rejected.data)


async def test_the_signature_covers_the_public_url_behind_a_proxy(
    engine: AsyncEngine, store: SubscriberStore, catalogue: AreaCatalogue
) -> None:
    public = "https://alertas.example.mx"
    client = await serve(engine, store, catalogue, public_url=public)
    try:
        signed_url = f"{public}{INBOUND_PATH}?channel=sms"
        status, _ = await post(client, inbound_params("ALTA"), signed_url=signed_url)
        assert status == 200 and await store.get("sms", PHONE) is not None
        status, _ = await post(client, inbound_params("BAJA"))  # signed over the local URL
        assert status == 403 and await store.get("sms", PHONE) is not None
    finally:
        await client.close()


@pytest.mark.parametrize("sender", ["", "whatsapp:", "+52 55", "anonymous", "+1234567890123456"])
async def test_an_unreadable_sender_is_logged_audited_and_answered_with_nothing(
    engine: AsyncEngine, store: SubscriberStore, client: TestClient[Any, Any], sender: str
) -> None:
    with capture_logs() as logs:
        status, answer = await post(client, inbound_params("ALTA Iztapalapa", sender))
    assert status == 200 and answer is None
    [event] = [e for e in logs if e["event"] == "twilio.inbound_invalid_sender"]
    assert event["log_level"] == "error"
    [record] = await records(engine, INVALID_SENDER_ACTION)
    assert record.actor == "provider:twilio" and record.data["channel"] == "sms"
    assert await records(engine, "subscriber.opt_in") == []
    if len(sender) > 7:  # long enough to be masked: the digits never reach the trail
        assert sender not in json.dumps(record.data) and sender not in json.dumps(event)


# --------------------------------------------------------------------------- failures, TwiML


class BrokenStore:
    """A store whose database is down."""

    async def get(self, channel: str, address: str) -> Subscriber | None:
        raise StoreError("cannot read the subscription: connection refused")

    async def subscribe(
        self,
        channel: str,
        address: str,
        *,
        language: str = "es",
        topics: Iterable[str] = (),
        areas: Iterable[str] = (),
        point: tuple[float, float] | None = None,
        consent_text: str,
        source: str,
    ) -> Subscriber:
        raise AssertionError("not reached")

    async def unsubscribe(
        self, channel: str, address: str, *, consent_text: str, source: str
    ) -> bool:
        raise AssertionError("not reached")

    async def touch(self, subscriber_id: int) -> None:
        raise AssertionError("not reached")


async def test_a_store_failure_asks_the_person_to_send_again(
    engine: AsyncEngine, catalogue: AreaCatalogue
) -> None:
    client = await serve(engine, BrokenStore(), catalogue)
    try:
        with capture_logs() as logs:
            status, answer = await post(client, inbound_params("STOP"))
        assert status == 200 and answer is not None and answer.startswith("No pudimos")
        [event] = [e for e in logs if e["event"] == "twilio.inbound_not_recorded"]
        assert PHONE not in json.dumps(event, default=str)
    finally:
        await client.close()


def test_twiml_escapes_the_message() -> None:
    body = twiml('Alerta <b> & "más"').text
    assert body is not None
    root = ET.fromstring(body)
    assert [m.text for m in root.findall("Message")] == ['Alerta <b> & "más"']
    empty = twiml(None).text
    assert empty is not None and ET.fromstring(empty).findall("Message") == []


def test_the_route_never_shows_its_tokens(engine: AsyncEngine) -> None:
    route = TwilioInboundRoute(
        engine=engine,
        store=BrokenStore(),
        catalogue=AreaCatalogue(engine),
        auth_tokens={"sms": AUTH_TOKEN},
        public_url=None,
        channel_kinds=KINDS,
    )
    assert AUTH_TOKEN not in repr(route)
