"""The citizens' bot end to end: the real python-telegram-bot Application against the fake Bot API.

A person subscribes, changes area and language, receives an alert with the
acknowledgement buttons, answers it and leaves, once by long polling in
Spanish and once through the webhook in English; the texts the fake
recorded and the store's state are checked at every step.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from alertcast.areas import AreaCatalogue
from alertcast.bot.runner import SECRET_HEADER, CitizenBot, webhook_path
from alertcast.bot.texts import consent_text, text
from alertcast.channels.telegram import TelegramChannel, ack_markup
from alertcast.config import ChannelConfig
from alertcast.demo.fake_telegram import FakeTelegramAPI
from alertcast.errors import ConfigError
from alertcast.ports import OutboundMessage
from tests.bot.conftest import StoreAlert

CHANNEL = "ciudadanos"
TOKEN_ENV = "ALERTCAST_TEST_CITIZEN_BOT_TOKEN"
SECRET_ENV = "ALERTCAST_TEST_CITIZEN_BOT_SECRET"
SECRET = "s3cret-webhook_token"
STEP_TIMEOUT_S = 10.0


def channel_config(fake: FakeTelegramAPI, mode: str, **options: Any) -> ChannelConfig:
    return ChannelConfig(
        name=CHANNEL,
        kind="telegram",
        file=Path(f"channels/{CHANNEL}.toml"),
        secrets={"token": TOKEN_ENV, "webhook_secret": SECRET_ENV},
        options={"api_url": fake.api_url, "bot_mode": mode, **options},
    )


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch, fake: FakeTelegramAPI) -> None:
    monkeypatch.setenv(TOKEN_ENV, fake.token)
    monkeypatch.setenv(SECRET_ENV, SECRET)


class Person:
    """One person in a private chat with the bot; each act waits until the bot has answered.

    With polling the update goes through the fake's getUpdates queue and the
    person waits for the number of things the bot is expected to do (send,
    edit, answer a button); through the webhook the POST returns once the
    update is handled, and that number is checked all the same.
    """

    def __init__(
        self, fake: FakeTelegramAPI, chat_id: int, post: Callable[[dict[str, Any]], Any] | None
    ) -> None:
        self.fake = fake
        self.chat_id = chat_id
        self.post = post
        self.language_code = "es"

    def actions(self) -> int:
        done = sum(1 for a in self.fake.activity if a["chat_id"] == self.chat_id)
        answered = sum(1 for q in self.fake.answered_callbacks if q.startswith(str(self.chat_id)))
        return done + answered

    async def _deliver(
        self, update_id: int, kind: str, payload: dict[str, Any], expect: int
    ) -> None:
        before = self.actions()
        if self.post is not None:
            await self.post({"update_id": update_id, kind: payload})
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while self.actions() < before + expect:
            if self.post is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"the bot did {self.actions() - before} things after {kind} "
                    f"{payload.get('text') or payload.get('data')!r}, expected {expect}: "
                    f"{self.texts()[-3:]}"
                )
            await asyncio.sleep(0.01)
        await asyncio.sleep(0)

    def _latest_own_message(self) -> dict[str, Any]:
        chat = self.fake.chats[self.chat_id]
        return chat.messages[max(chat.messages)]

    async def says(self, words: str, *, expect: int = 1) -> None:
        update_id = self.fake.push_message(self.chat_id, words, language_code=self.language_code)
        await self._deliver(update_id, "message", self._latest_own_message(), expect)

    async def shares_location(self, lat: float, lon: float, *, expect: int) -> None:
        chat = self.fake.chats[self.chat_id]
        message_id = max(chat.messages) + 1
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": self.fake.user(self.chat_id),
            "date": int(time.time()),
            "chat": chat.to_json(),
            "location": {"latitude": lat, "longitude": lon},
        }
        chat.messages[message_id] = message
        chat.next_message_id = message_id + 1
        update_id = self.fake.push_update("message", message)
        await self._deliver(update_id, "message", message, expect)

    def last_bot_message_id(self) -> int:
        chat = self.fake.chats[self.chat_id]
        return max(k for k, m in chat.messages.items() if m.get("from", {}).get("is_bot"))

    async def presses(self, data: str, *, expect: int, message_id: int | None = None) -> str:
        message_id = message_id or self.last_bot_message_id()
        assert data in [b[1] for b in self.buttons(message_id)], (data, self.buttons(message_id))
        query_id = self.fake.push_callback_query(self.chat_id, data, message_id=message_id)
        payload = {
            "id": query_id,
            "from": self.fake.user(self.chat_id),
            "chat_instance": f"ci-{self.chat_id}",
            "data": data,
            "message": self.fake.chats[self.chat_id].messages[message_id],
        }
        await self._deliver(0, "callback_query", payload, expect)
        return query_id

    def texts(self) -> list[str]:
        """Everything the bot sent to the chat, oldest first (each edit as a new entry)."""
        return [a["text"] for a in self.fake.activity if a["chat_id"] == self.chat_id]

    def last(self) -> str:
        return self.texts()[-1]

    def text_of(self, message_id: int) -> str:
        return str(self.fake.chats[self.chat_id].messages[message_id]["text"])

    def buttons(self, message_id: int) -> list[tuple[str, str]]:
        """The buttons the bot last put on ``message_id`` (from what it sent or edited)."""
        markup: str | None = None
        sent_ids = iter(m["message_id"] for m in self.fake.sent if m["chat"]["id"] == self.chat_id)
        for call in self.fake.calls:
            if call.status != 200 or call.params.get("chat_id") != self.chat_id:
                continue
            if call.method == "sendMessage":
                if next(sent_ids) == message_id:
                    markup = call.raw.get("reply_markup")
            elif call.method == "editMessageText" and call.params.get("message_id") == message_id:
                markup = call.raw.get("reply_markup")
        if not markup:
            return []
        rows = json.loads(markup)["inline_keyboard"]
        return [(b["text"], b["callback_data"]) for row in rows for b in row]


@pytest.fixture
async def polling_bot(
    fake: FakeTelegramAPI, store: Any, catalogue: AreaCatalogue
) -> AsyncIterator[CitizenBot]:
    bot = CitizenBot(channel_config(fake, "polling"), store, catalogue, poll_timeout_s=1)
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()


@pytest.fixture
async def webhook_client(
    fake: FakeTelegramAPI, store: Any, catalogue: AreaCatalogue
) -> AsyncIterator[tuple[CitizenBot, TestClient[web.Request, web.Application]]]:
    async def recent(subscriber: Any) -> list[str]:
        return [f"Sismo M5.8 · Oaxaca ({subscriber.language})"]

    bot = CitizenBot(
        channel_config(fake, "webhook"),
        store,
        catalogue,
        recent_alerts=recent,
        public_url="https://alertas.example.org",
    )
    app = web.Application()
    app.add_routes(bot.aiohttp_routes())
    client = TestClient(TestServer(app))
    await client.start_server()
    await bot.start()
    try:
        yield bot, client
    finally:
        await bot.stop()
        await client.close()


async def send_alert(fake: FakeTelegramAPI, chat_id: int, language: str, alert_id: int) -> int:
    """The dispatcher's side: the alert goes to the person with the acknowledgement buttons."""
    channel = TelegramChannel("telegram", fake.token, api_url=fake.api_url, timeout_s=5)
    try:
        receipt = await channel.send(
            OutboundMessage(
                parts=("<b>Alerta sísmica</b> · Sismo fuerte en Oaxaca",),
                language=language,
                severity="Extreme",
                extra={"ack": True, "alert_id": alert_id},
            ),
            str(chat_id),
        )
    finally:
        await channel.aclose()
    assert receipt.provider_message_id is not None
    return int(receipt.provider_message_id)


async def test_a_whole_conversation_in_spanish_by_long_polling(
    fake: FakeTelegramAPI, store: Any, polling_bot: CitizenBot, store_alert: StoreAlert
) -> None:
    ana = Person(fake, 1001, None)

    await ana.says("/start", expect=2)
    assert ana.texts() == [consent_text("es"), text("es", "choose_language")]
    assert "/baja" in consent_text("es") and "cifrado" in consent_text("es")
    assert ana.buttons(ana.last_bot_message_id()) == [
        ("Español", "lang:es"),
        ("English", "lang:en"),
    ]

    await ana.presses("lang:es", expect=3)
    assert ana.last().startswith(text("es", "choose_topics"))
    await ana.presses("topics:done", expect=1)  # nothing chosen yet: only a warning
    assert any(a.get("text") == text("es", "topics_none") for a in fake.answered_callbacks.values())
    await ana.presses("topic:sismos", expect=2)
    await ana.presses("topic:clima", expect=2)
    await ana.presses("topic:salud", expect=2)
    await ana.presses("topic:salud", expect=2)  # a second press unticks
    topics_message = ana.last_bot_message_id()
    assert ana.text_of(topics_message).endswith("Clima, Sismos")
    assert ("✅ Sismos", "topic:sismos") in ana.buttons(topics_message)
    assert ("▫️ Salud", "topic:salud") in ana.buttons(topics_message)
    await ana.presses("topics:done", expect=3)
    assert ana.last() == text("es", "choose_area")

    await ana.says("san juan", expect=1)
    first_page = ana.buttons(ana.last_bot_message_id())
    assert ana.last() == "Resultados para «san juan» (1–8 de 11). Elige uno:"
    assert [b[0] for b in first_page[:8]] == [f"San Juan {n:02d}" for n in range(1, 9)]
    assert first_page[8:] == [("»", "areas:8")]
    await ana.presses("areas:8", expect=2)
    second_page = ana.buttons(ana.last_bot_message_id())
    assert ana.last() == "Resultados para «san juan» (9–11 de 11). Elige uno:"
    assert second_page[-1] == ("«", "areas:0")
    await ana.says("nowhere at all", expect=1)
    assert ana.last() == text("es", "area_none", query="nowhere at all")
    await ana.says("IZTAPALAPA", expect=1)
    assert ana.buttons(ana.last_bot_message_id()) == [("Iztapalapa", "area:INEGI_CVEGEO:09007")]
    await ana.presses("area:INEGI_CVEGEO:09007", expect=3)
    assert ana.last() == text(
        "es", "summary", language="Español", topics="Clima, Sismos", area="Iztapalapa"
    )
    assert await store.get(CHANNEL, "1001") is None  # nothing is kept before the confirmation

    await ana.presses("confirm:yes", expect=2)
    assert ana.last() == text("es", "subscribed")
    subscriber = await store.get(CHANNEL, "1001")
    assert subscriber is not None
    assert (subscriber.language, subscriber.topics, subscriber.areas, subscriber.point) == (
        "es",
        frozenset({"clima", "sismos"}),
        ("INEGI_CVEGEO:09007",),
        None,
    )
    assert [(o["consent_text"], o["source"]) for o in store.opt_ins] == [
        (consent_text("es"), "telegram-bot")
    ]

    # Another area: a shared location replaces the chosen one.
    await ana.says("/zona", expect=1)
    assert ana.last() == text("es", "choose_area")
    await ana.shares_location(19.3574, -99.0671, expect=2)
    subscriber = await store.get(CHANNEL, "1001")
    assert subscriber is not None
    assert subscriber.areas == ()
    assert subscriber.point == pytest.approx((19.3574, -99.0671))
    assert "tu ubicación (19.3574, -99.0671)" in ana.last()

    # Quiet hours: Extreme alerts still come through, and the person is told so.
    await ana.says("/silencio", expect=1)
    assert "extremas" in ana.last()
    await ana.presses("quiet:2300-0700", expect=2)
    assert ana.last() == text("es", "quiet_set", start="23:00", end="07:00")
    subscriber = await store.get(CHANNEL, "1001")
    assert subscriber is not None and subscriber.quiet_hours is not None
    assert (subscriber.quiet_hours.start.hour, subscriber.quiet_hours.end.hour) == (23, 7)

    # An alert in Spanish with its buttons; the person answers, then changes the answer.
    alert_id = await store_alert()
    alert_message = await send_alert(fake, 1001, "es", alert_id=alert_id)
    assert ana.buttons(alert_message) == [
        ("Estoy a salvo", f"ack:{alert_id}:safe"),
        ("Necesito ayuda", f"ack:{alert_id}:need_help"),
    ]
    query = await ana.presses(f"ack:{alert_id}:need_help", expect=2, message_id=alert_message)
    assert fake.answered_callbacks[query]["text"] == "Gracias, registrado"
    assert ana.text_of(alert_message) == (
        "Alerta sísmica · Sismo fuerte en Oaxaca\n\n✅ Tu respuesta: Necesito ayuda"
    )
    assert ana.buttons(alert_message) == [
        ("Estoy a salvo", f"ack:{alert_id}:safe"),
        ("✅ Necesito ayuda", f"ack:{alert_id}:need_help"),
    ]
    await ana.presses(f"ack:{alert_id}:safe", expect=2, message_id=alert_message)
    assert ana.text_of(alert_message).endswith("\n\n✅ Tu respuesta: Estoy a salvo")
    assert await store.ack_counts(alert_id) == {"safe": 1, "need_help": 0}  # the last answer wins

    # Leaving: asked first, then everything is erased.
    await ana.says("/baja", expect=1)
    await ana.presses("leave:no", expect=2)
    assert ana.last() == text("es", "stayed")
    assert await store.get(CHANNEL, "1001") is not None
    await ana.says("/baja", expect=1)
    await ana.presses("leave:yes", expect=2)
    assert ana.last() == text("es", "left")
    assert await store.get(CHANNEL, "1001") is None
    assert [(o["consent_text"], o["source"]) for o in store.opt_outs] == [
        (text("es", "leave_confirm"), "telegram-bot")
    ]
    await ana.says("/misalertas", expect=1)
    assert ana.last() == text("es", "not_subscribed")


async def test_a_whole_conversation_in_english_through_the_webhook(
    fake: FakeTelegramAPI,
    store: Any,
    webhook_client: tuple[CitizenBot, TestClient[web.Request, web.Application]],
    store_alert: StoreAlert,
) -> None:
    _, client = webhook_client
    assert fake.webhook is not None
    assert fake.webhook["url"] == f"https://alertas.example.org{webhook_path(CHANNEL)}"
    assert fake.webhook["secret_token"] == SECRET

    async def post(update: dict[str, Any]) -> None:
        response = await client.post(
            webhook_path(CHANNEL), json=update, headers={SECRET_HEADER: SECRET}
        )
        assert response.status == 200

    john = Person(fake, 2002, post)
    john.language_code = "en"

    await john.says("/help", expect=1)
    assert john.last() == text("en", "help")
    await john.says("/start", expect=2)
    await john.presses("lang:en", expect=4)  # answer, edit, the consent in English, topics
    assert john.texts()[-2:-1] == [consent_text("en")]
    assert john.last().startswith(text("en", "choose_topics"))
    assert ("▫️ Earthquakes", "topic:sismos") in john.buttons(john.last_bot_message_id())
    await john.presses("topic:sismos", expect=2)
    await john.presses("topics:done", expect=3)
    assert john.last() == text("en", "choose_area")
    await john.says("coyoacan", expect=1)  # accents need not be typed
    await john.presses("area:INEGI_CVEGEO:09003", expect=3)
    assert john.last() == text(
        "en", "summary", language="English", topics="Earthquakes", area="Coyoacán"
    )
    await john.presses("confirm:yes", expect=2)
    assert john.last() == text("en", "subscribed")
    assert [o["consent_text"] for o in store.opt_ins] == [consent_text("en")]

    await john.says("/area", expect=1)
    await john.says("cuauhtemoc", expect=1)
    await john.presses("area:INEGI_CVEGEO:09015", expect=3)
    subscriber = await store.get(CHANNEL, "2002")
    assert subscriber is not None
    assert (subscriber.language, subscriber.areas) == ("en", ("INEGI_CVEGEO:09015",))

    await john.says("/myalerts", expect=1)
    assert john.last() == "\n".join(
        [
            text(
                "en",
                "settings",
                language="English",
                topics="Earthquakes",
                area="Cuauhtémoc",
                quiet="none",
            ),
            "",
            text("en", "recent_header"),
            "• Sismo M5.8 · Oaxaca (en)",
        ]
    )

    alert_id = await store_alert()
    alert_message = await send_alert(fake, 2002, "en-US", alert_id=alert_id)
    assert john.buttons(alert_message) == [
        ("I am safe", f"ack:{alert_id}:safe"),
        ("I need help", f"ack:{alert_id}:need_help"),
    ]
    query = await john.presses(f"ack:{alert_id}:safe", expect=2, message_id=alert_message)
    assert fake.answered_callbacks[query]["text"] == "Thanks, recorded"
    assert john.text_of(alert_message).endswith("\n\n✅ Your answer: I am safe")
    assert await store.ack_counts(alert_id) == {"safe": 1, "need_help": 0}

    # Switching to Spanish: the bot answers in Spanish from then on.
    await john.says("/language", expect=1)
    await john.presses("lang:es", expect=2)
    assert john.last() == text("es", "language_set")
    subscriber = await store.get(CHANNEL, "2002")
    assert subscriber is not None and subscriber.language == "es"
    await john.says("/quiet", expect=1)
    await john.presses("quiet:off", expect=2)
    assert john.last() == text("es", "quiet_cleared")
    await john.says("/language", expect=1)
    await john.presses("lang:en", expect=2)

    await john.says("/stop", expect=1)
    assert john.last() == text("en", "leave_confirm")
    await john.presses("leave:yes", expect=2)
    assert john.last() == text("en", "left")
    assert await store.get(CHANNEL, "2002") is None


async def test_the_webhook_refuses_a_request_without_the_secret(
    fake: FakeTelegramAPI,
    store: Any,
    webhook_client: tuple[CitizenBot, TestClient[web.Request, web.Application]],
) -> None:
    _, client = webhook_client
    update = {
        "update_id": 1,
        "message": {
            "message_id": 1,
            "date": int(time.time()),
            "chat": {"id": 3003, "type": "private"},
            "from": fake.user(3003),
            "text": "/start",
        },
    }
    for headers in ({}, {SECRET_HEADER: "wrong"}):
        response = await client.post(webhook_path(CHANNEL), json=update, headers=headers)
        assert response.status == 403
    assert fake.sent_to(3003) == []
    response = await client.post(
        webhook_path(CHANNEL), data=b"not json", headers={SECRET_HEADER: SECRET}
    )
    assert response.status == 400


async def test_buttons_outside_a_subscription_are_refused_kindly(
    fake: FakeTelegramAPI, store: Any, polling_bot: CitizenBot, store_alert: StoreAlert
) -> None:
    stranger = Person(fake, 4004, None)
    await stranger.says("/temas", expect=1)
    assert stranger.last() == text("es", "not_subscribed")
    await stranger.says("/topics", expect=1)
    assert stranger.last() == text("en", "not_subscribed")
    alert_id = await store_alert()
    alert_message = await send_alert(fake, 4004, "es", alert_id=alert_id)
    query = await stranger.presses(f"ack:{alert_id}:safe", expect=1, message_id=alert_message)
    assert fake.answered_callbacks[query]["text"] == text("es", "ack_unknown")
    assert await store.ack_counts(alert_id) == {"safe": 0, "need_help": 0}
    await stranger.says("hola", expect=1)
    assert stranger.last() == text("es", "unknown")
    await stranger.says("/privacidad", expect=1)
    assert stranger.last() == text("es", "privacy")
    await stranger.says("/privacy", expect=1)
    assert stranger.last() == text("en", "privacy")


def test_ack_buttons_only_for_a_private_chat_and_a_named_alert() -> None:
    def message(**extra: Any) -> OutboundMessage:
        return OutboundMessage(parts=("x",), language="es", extra=extra)

    assert ack_markup(message(ack=True, alert_id=5), "-1001234567890") is None
    assert ack_markup(message(ack=True, alert_id=5), "-4321") is None
    assert ack_markup(message(ack=True, alert_id=5), "@alertas_mx") is None
    assert ack_markup(message(ack=True), "1001") is None
    assert ack_markup(message(alert_id=5), "1001") is None
    markup = ack_markup(message(ack=True, alert_id=5), "1001")
    assert markup is not None
    assert [b.callback_data for row in markup.inline_keyboard for b in row] == [
        "ack:5:safe",
        "ack:5:need_help",
    ]


async def test_a_group_gets_the_alert_without_buttons(fake: FakeTelegramAPI) -> None:
    channel = TelegramChannel("telegram", fake.token, api_url=fake.api_url, timeout_s=5)
    try:
        await channel.send(
            OutboundMessage(parts=("Alerta",), language="es", extra={"ack": True, "alert_id": 1}),
            "-1001234567890",
        )
    finally:
        await channel.aclose()
    (call,) = fake.calls_to("sendMessage")
    assert "reply_markup" not in call.raw


def test_webhook_mode_needs_its_secret_and_an_https_url(
    fake: FakeTelegramAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalogue: Any = object()
    monkeypatch.delenv(SECRET_ENV)
    with pytest.raises(ConfigError) as caught:
        CitizenBot(channel_config(fake, "webhook"), object(), catalogue)  # type: ignore[arg-type]
    keys = {problem.key for problem in caught.value.problems}
    assert keys == {"secrets.webhook_secret", "options.webhook_url"}
    with pytest.raises(ConfigError) as caught:
        CitizenBot(channel_config(fake, "push"), object(), catalogue)  # type: ignore[arg-type]
    assert {problem.key for problem in caught.value.problems} == {"options.bot_mode"}


async def test_an_updated_alert_keeps_its_buttons_when_edited(fake: FakeTelegramAPI) -> None:
    channel = TelegramChannel("telegram", fake.token, api_url=fake.api_url, timeout_s=5)
    extra = {"ack": True, "alert_id": 3}
    try:
        receipt = await channel.send(
            OutboundMessage(parts=("Alerta",), language="es", extra=extra), "1001"
        )
        assert receipt.provider_message_id is not None
        await channel.edit(
            receipt.provider_message_id,
            OutboundMessage(parts=("Alerta (actualizada)",), language="es", extra=extra),
            "1001",
        )
    finally:
        await channel.aclose()
    (edit,) = fake.calls_to("editMessageText")
    rows = json.loads(edit.raw["reply_markup"])["inline_keyboard"]
    assert [b["callback_data"] for row in rows for b in row] == ["ack:3:safe", "ack:3:need_help"]
