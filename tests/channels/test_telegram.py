"""The Telegram channel (real python-telegram-bot) against the fake Bot API on 127.0.0.1."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from alertcast import lifecycle
from alertcast.channels.registry import ChannelContext
from alertcast.channels.telegram import (
    TelegramChannel,
    chat_ref,
    classify,
    encode_ids,
    from_config,
    group_key,
    message_ids,
)
from alertcast.config import ChannelConfig
from alertcast.demo.fake_telegram import TOKEN, FakeTelegramAPI, parse_html
from alertcast.dispatch import ledger
from alertcast.dispatch.worker import Worker
from alertcast.domain import MsgType
from alertcast.errors import (
    ConfigError,
    Permanent,
    RateLimited,
    RecipientGone,
    SentButUnknown,
    Transient,
)
from alertcast.ports import Channel, FollowUpChannel, OutboundMessage
from alertcast.ratelimit import RateLimiter
from alertcast.render import render
from alertcast.store.tables import deliveries
from tests.builders import quake_alert

SENDER = "proteccion.civil@example.mx"
PERSON = 1001


def html(*parts: str, **extra: Any) -> OutboundMessage:
    return OutboundMessage(parts=parts, language="es", severity="Severe", extra=extra)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegramAPI]:
    async with FakeTelegramAPI() as api:
        yield api


def make_channel(api: FakeTelegramAPI, **kwargs: Any) -> TelegramChannel:
    kwargs.setdefault("timeout_s", 2.0)
    return TelegramChannel("tg", kwargs.pop("token", TOKEN), api_url=api.api_url, **kwargs)


@pytest.fixture
async def channel(fake: FakeTelegramAPI) -> AsyncIterator[TelegramChannel]:
    bot = make_channel(fake)
    try:
        yield bot
    finally:
        await bot.aclose()


def raw_params(api: FakeTelegramAPI, method: str = "sendMessage") -> list[dict[str, str]]:
    return [call.raw for call in api.calls_to(method)]


# --------------------------------------------------------------------------- sending


async def test_one_part_goes_out_as_html_and_the_receipt_names_the_message(
    fake: FakeTelegramAPI, channel: TelegramChannel
) -> None:
    receipt = await channel.send(html("🚨 <b>Sismo</b> &amp; réplicas"), str(PERSON))

    assert receipt.provider_message_id == "1"
    [message] = fake.sent
    assert message["chat"] == {"id": PERSON, "type": "private", "first_name": f"User {PERSON}"}
    assert message["text"] == "🚨 Sismo & réplicas"
    # Offsets are UTF-16 units: the emoji counts two, the space one.
    assert message["entities"] == [{"type": "bold", "offset": 3, "length": 5}]
    [sent] = raw_params(fake)
    assert sent["parse_mode"] == "HTML"
    assert "reply_parameters" not in sent
    assert "allow_paid_broadcast" not in sent


async def test_the_parts_of_a_long_alert_follow_the_first_as_replies(
    fake: FakeTelegramAPI, channel: TelegramChannel
) -> None:
    receipt = await channel.send(html("<b>1/3</b> uno", "<b>2/3</b> dos", "3/3 tres"), "-5001")

    assert receipt.provider_message_id == "1,2,3"
    first, second, third = fake.sent_to(-5001)
    assert [m["text"] for m in (first, second, third)] == ["1/3 uno", "2/3 dos", "3/3 tres"]
    assert "reply_to_message" not in first
    assert second["reply_to_message"]["message_id"] == 1
    assert third["reply_to_message"]["message_id"] == 1
    assert message_ids(receipt.provider_message_id or "") == [1, 2, 3]


async def test_a_public_channel_is_reached_by_its_username(
    fake: FakeTelegramAPI, channel: TelegramChannel
) -> None:
    chat = fake.add_channel("alertas_cdmx")

    receipt = await channel.send(html("Aviso"), "@alertas_cdmx")

    assert receipt.provider_message_id == "1"
    [message] = fake.sent_to(chat.id)
    assert message["chat"]["type"] == "channel"
    assert message["sender_chat"]["username"] == "alertas_cdmx"
    assert raw_params(fake)[0]["chat_id"] == "@alertas_cdmx"


async def test_paid_broadcast_and_no_link_preview_are_asked_for_when_configured(
    fake: FakeTelegramAPI,
) -> None:
    bot = make_channel(fake, paid_broadcast=True, disable_link_preview=True)
    try:
        await bot.send(html('<a href="https://alertas.example.mx/a/1">Detalles</a>'), "42")
    finally:
        await bot.aclose()

    [sent] = raw_params(fake)
    assert json.loads(sent["allow_paid_broadcast"]) is True
    assert json.loads(sent["link_preview_options"]) == {"is_disabled": True}
    [message] = fake.sent
    assert message["entities"] == [
        {"type": "text_link", "offset": 0, "length": 8, "url": "https://alertas.example.mx/a/1"}
    ]


async def test_building_the_channel_opens_no_connection(fake: FakeTelegramAPI) -> None:
    bot = make_channel(fake)
    await bot.aclose()
    assert fake.calls == []
    assert isinstance(bot, Channel)
    assert isinstance(bot, FollowUpChannel)
    assert bot.kind == "telegram"
    assert TOKEN not in repr(bot)


# --------------------------------------------------------------------------- failures


async def test_flood_control_is_rate_limited_with_telegrams_wait(
    fake: FakeTelegramAPI, channel: TelegramChannel
) -> None:
    fake.flood(7)
    with pytest.raises(RateLimited) as caught:
        await channel.send(html("Aviso"), str(PERSON))
    assert caught.value.retry_after == 7
    assert fake.sent == []


async def test_the_fakes_own_per_chat_limit_answers_429() -> None:
    async with FakeTelegramAPI(per_chat_per_s=0.001, per_chat_burst=2) as api:
        bot = make_channel(api)
        try:
            await bot.send(html("uno"), "7")
            await bot.send(html("dos"), "7")
            with pytest.raises(RateLimited) as caught:
                await bot.send(html("tres"), "7")
            await bot.send(html("otro chat"), "8")  # another chat has its own budget
        finally:
            await bot.aclose()
    assert caught.value.retry_after >= 1
    assert [m["text"] for m in api.sent] == ["uno", "dos", "otro chat"]


@pytest.mark.parametrize(
    "description",
    [
        "Forbidden: bot was blocked by the user",
        "Forbidden: user is deactivated",
        "Forbidden: bot was kicked from the group chat",
    ],
)
async def test_a_403_means_the_recipient_is_gone(
    fake: FakeTelegramAPI, channel: TelegramChannel, description: str
) -> None:
    fake.block(PERSON, description)
    with pytest.raises(RecipientGone, match=description.removeprefix("Forbidden: ")):
        await channel.send(html("Aviso"), str(PERSON))


async def test_a_chat_that_does_not_exist_is_gone(
    fake: FakeTelegramAPI, channel: TelegramChannel
) -> None:
    fake.forget(-5002)
    with pytest.raises(RecipientGone, match="not found"):
        await channel.send(html("Aviso"), "-5002")
    with pytest.raises(RecipientGone, match="not found"):
        await channel.send(html("Aviso"), "@nadie_aqui")


@pytest.mark.parametrize(
    "text",
    [
        "<b>sin cerrar",
        "<blink>no</blink>",
        "<b><i>mal</b></i>",
        '<span class="rojo">x</span>',
        "a < b",
    ],
)
async def test_html_telegram_cannot_parse_is_a_rendering_error(
    fake: FakeTelegramAPI, channel: TelegramChannel, text: str
) -> None:
    with pytest.raises(Permanent, match=r"rendering error.*parse entities"):
        await channel.send(html(text), str(PERSON))
    assert fake.sent == []


async def test_too_long_after_parsing_is_a_rendering_error(
    fake: FakeTelegramAPI, channel: TelegramChannel
) -> None:
    fits = "<b>" + "x" * 4096 + "</b>"  # 4,103 characters of HTML, 4,096 of text
    await channel.send(html(fits), str(PERSON))
    with pytest.raises(Permanent, match=r"rendering error.*too long"):
        await channel.send(html("x" * 4097), str(PERSON))
    assert len(fake.sent) == 1


async def test_an_answer_that_never_comes_is_sent_but_unknown(fake: FakeTelegramAPI) -> None:
    fake.delay(3.0)
    bot = make_channel(fake, timeout_s=0.3)
    try:
        with pytest.raises(SentButUnknown):
            await bot.send(html("Aviso"), str(PERSON))
    finally:
        await bot.aclose()
    assert [m["text"] for m in fake.sent] == ["Aviso"]  # it did arrive


async def test_a_server_error_is_transient(fake: FakeTelegramAPI, channel: TelegramChannel) -> None:
    fake.fail(500, "Internal Server Error")
    with pytest.raises(Transient, match="Internal Server Error"):
        await channel.send(html("Aviso"), str(PERSON))
    fake.fail(502, "Bad Gateway")
    with pytest.raises(Transient):
        await channel.send(html("Aviso"), str(PERSON))
    assert fake.sent == []


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_no_connection_at_all_is_transient() -> None:
    bot = TelegramChannel("tg", TOKEN, api_url=f"http://127.0.0.1:{_closed_port()}", timeout_s=2)
    try:
        with pytest.raises(Transient, match="cannot reach Telegram"):
            await bot.send(html("Aviso"), str(PERSON))
    finally:
        await bot.aclose()


async def test_a_refused_token_is_permanent_and_never_shown(fake: FakeTelegramAPI) -> None:
    wrong = "987654321:AAWrongTokenWrongTokenWrongToken12"
    bot = make_channel(fake, token=wrong)
    try:
        with pytest.raises(Permanent, match="bot token") as caught:
            await bot.send(html("Aviso"), str(PERSON))
    finally:
        await bot.aclose()
    assert wrong not in str(caught.value)
    assert fake.calls[0].status == 401


async def test_a_target_that_is_no_chat_is_permanent_without_a_request(
    fake: FakeTelegramAPI, channel: TelegramChannel
) -> None:
    for target in ("", "abc", "@ab", "12.5", "+52 55 1234"):
        with pytest.raises(Permanent):
            await channel.send(html("Aviso"), target)
    assert fake.calls == []


def test_the_error_classes_of_transport_failures() -> None:
    request = httpx.Request("POST", f"https://api.telegram.org/bot{TOKEN}/sendMessage")

    def network(cause: Exception, kind: type[NetworkError] = NetworkError) -> NetworkError:
        error = kind(f"httpx.{type(cause).__name__}: {cause}")
        error.__cause__ = cause
        return error

    refused = network(httpx.ConnectError("connection refused", request=request))
    reset = network(httpx.ReadError("connection reset", request=request))
    pool = network(httpx.PoolTimeout("pool", request=request), TimedOut)
    read = network(httpx.ReadTimeout("read", request=request), TimedOut)
    assert isinstance(classify(refused), Transient)
    assert isinstance(classify(pool), Transient)
    assert isinstance(classify(reset), SentButUnknown)
    assert isinstance(classify(read), SentButUnknown)
    assert isinstance(classify(NetworkError("Bad Gateway")), Transient)  # an HTTP answer
    assert isinstance(classify(RetryAfter(3)), RateLimited)
    assert isinstance(classify(Forbidden("Forbidden: bot was blocked by the user")), RecipientGone)
    assert isinstance(classify(BadRequest("Bad Request: chat not found")), RecipientGone)
    assert isinstance(classify(BadRequest("Bad Request: message to edit not found")), Permanent)
    assert isinstance(classify(ValueError("boom")), SentButUnknown)
    leaky = classify(network(httpx.UnsupportedProtocol(f"bad URL /bot{TOKEN}/x")), secret=TOKEN)
    assert isinstance(leaky, Transient)
    assert TOKEN not in str(leaky)


# --------------------------------------------------------------------------- migration


async def test_a_migrated_group_gets_the_message_at_its_new_id_and_the_hook_is_told(
    fake: FakeTelegramAPI, channel: TelegramChannel
) -> None:
    fake.add_chat(-4001)
    new_id = fake.migrate(-4001)
    moves: list[tuple[str, str]] = []

    async def moved(old: str, new: str) -> None:
        moves.append((old, new))

    channel.on_chat_migrated = moved

    first = await channel.send(html("uno"), "-4001")
    second = await channel.send(html("dos"), "-4001")

    assert moves == [("-4001", str(new_id))]
    assert [m["text"] for m in fake.sent_to(new_id)] == ["uno", "dos"]
    assert fake.sent_to(-4001) == []
    assert (first.provider_message_id, second.provider_message_id) == ("1", "2")
    # One refused request to the old id; after that the new id is used directly.
    chat_ids = [call.params["chat_id"] for call in fake.calls_to("sendMessage")]
    assert chat_ids == [-4001, new_id, new_id]


async def test_a_failing_migration_hook_does_not_stop_the_message(
    fake: FakeTelegramAPI, channel: TelegramChannel
) -> None:
    new_id = fake.migrate(-4002)

    async def broken(old: str, new: str) -> None:
        raise RuntimeError("store down")

    channel.on_chat_migrated = broken
    await channel.send(html("uno"), "-4002")
    assert len(fake.sent_to(new_id)) == 1


# --------------------------------------------------------------------------- follow-ups


def _quake_and_cancel() -> tuple[str, str]:
    sent = datetime.now(UTC).replace(microsecond=0)
    quake = quake_alert("SISMO-1", sender=SENDER, sent=sent)
    cancel = quake_alert(
        "SISMO-1-C", sender=SENDER, sent=sent, msg_type=MsgType.CANCEL, references=(quake,)
    )
    return render(quake, "telegram").parts[0].text, render(cancel, "telegram").parts[0].text


async def test_an_update_edits_the_earlier_message_in_place(
    fake: FakeTelegramAPI, channel: TelegramChannel
) -> None:
    assert channel.follow_up_for("Update") == "edit"
    earlier = await channel.send(html("<b>Sismo</b> M5.8"), str(PERSON))

    receipt = await channel.edit(
        earlier.provider_message_id or "", html("<b>Sismo</b> M6.1"), str(PERSON)
    )
    again = await channel.edit("1", html("<b>Sismo</b> M6.1"), str(PERSON))  # already so

    assert receipt.provider_message_id == again.provider_message_id == "1"
    [message] = fake.messages_in(PERSON)
    assert message["text"] == "Sismo M6.1"
    assert "edit_date" in message
    assert len(fake.sent) == 1  # nobody was notified twice
    assert raw_params(fake, "editMessageText")[0]["parse_mode"] == "HTML"


async def test_an_update_with_more_parts_edits_the_first_and_adds_the_rest(
    fake: FakeTelegramAPI, channel: TelegramChannel
) -> None:
    await channel.send(html("uno"), str(PERSON))

    receipt = await channel.edit("1", html("uno, corregido", "dos", "tres"), str(PERSON))

    assert receipt.provider_message_id == "1,2,3"
    texts = [m["text"] for m in fake.messages_in(PERSON)]
    assert texts == ["uno, corregido", "dos", "tres"]
    assert [m["reply_to_message"]["message_id"] for m in fake.sent[1:]] == [1, 1]


async def test_an_update_with_fewer_parts_removes_the_stale_ones(
    fake: FakeTelegramAPI, channel: TelegramChannel
) -> None:
    await channel.send(html("uno", "dos"), str(PERSON))

    receipt = await channel.edit("1,2", html("todo en uno"), str(PERSON))

    assert receipt.provider_message_id == "1"
    assert [m["text"] for m in fake.messages_in(PERSON)] == ["todo en uno"]
    assert fake.deleted == [(PERSON, 2)]


async def test_editing_a_message_that_is_gone_is_permanent(
    fake: FakeTelegramAPI, channel: TelegramChannel
) -> None:
    with pytest.raises(Permanent, match="edit not found"):
        await channel.edit("77", html("nuevo"), str(PERSON))
    with pytest.raises(Permanent):
        await channel.edit("not-an-id", html("nuevo"), str(PERSON))


async def test_a_cancel_is_a_reply_to_the_warning(
    fake: FakeTelegramAPI, channel: TelegramChannel
) -> None:
    assert channel.follow_up_for("Cancel") == "reply"
    warning, cancel = _quake_and_cancel()
    earlier = await channel.send(html(warning), str(PERSON))
    await channel.send(html("otro aviso"), str(PERSON))

    receipt = await channel.reply(earlier.provider_message_id or "", html(cancel), str(PERSON))

    assert receipt.provider_message_id == "3"
    reply = fake.sent[-1]
    assert reply["reply_to_message"]["message_id"] == 1
    assert reply["reply_to_message"]["text"] == fake.sent[0]["text"]
    assert reply["text"] == parse_html(cancel)[0]  # the rendered Cancel, as readers see it
    assert json.loads(raw_params(fake)[-1]["reply_parameters"])["message_id"] == 1


async def test_delete_removes_every_earlier_message(
    fake: FakeTelegramAPI, channel: TelegramChannel
) -> None:
    earlier = await channel.send(html("uno", "dos"), "-5003")

    await channel.delete(earlier.provider_message_id or "", "-5003")

    assert fake.deleted == [(-5003, 1), (-5003, 2)]
    assert fake.messages_in(-5003) == []
    with pytest.raises(Permanent, match="delete not found"):
        await channel.delete("1", "-5003")


async def test_a_retried_multi_part_message_does_not_repeat_the_parts_already_sent() -> None:
    async with FakeTelegramAPI(per_chat_per_s=0.001, per_chat_burst=2) as api:
        bot = make_channel(api)
        try:
            message = html("uno", "dos", "tres")
            with pytest.raises(RateLimited, match=r"parts 1-2 of 3 were sent as messages 1,2"):
                await bot.send(message, str(PERSON))
            api.limits = False
            receipt = await bot.send(message, str(PERSON))
        finally:
            await bot.aclose()
    assert receipt.provider_message_id == "1,2,3"
    assert [m["text"] for m in api.sent] == ["uno", "dos", "tres"]


# --------------------------------------------------------------------------- helpers and config


def test_targets_ids_and_groups() -> None:
    assert chat_ref("123") == 123
    assert chat_ref("-1001234567890") == -1001234567890
    assert chat_ref("@alertas_mx") == "@alertas_mx"
    assert group_key("-1001234567890") == "-1001234567890"
    assert group_key("-4001") == "-4001"
    assert group_key("123") is None
    assert group_key("@alertas_mx") is None
    assert encode_ids([5, 6]) == "5,6"
    assert message_ids("5,6") == [5, 6]


def _config(tmp_path: Path, options: dict[str, Any], env: str = "TEST_TG_TOKEN") -> ChannelConfig:
    return ChannelConfig(
        name="tg",
        kind="telegram",
        file=tmp_path / "telegram.toml",
        secrets={"token": env},
        options=options,
    )


async def test_from_config_builds_a_channel_that_speaks_to_the_configured_api(
    fake: FakeTelegramAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_TG_TOKEN", TOKEN)
    config = _config(
        tmp_path, {"api_url": fake.api_url, "paid_broadcast": True, "target": "@alertas_mx"}
    )
    bot = from_config(config, ChannelContext(data_dir=tmp_path))
    try:
        assert fake.calls == []
        await bot.send(html("Aviso"), str(PERSON))
    finally:
        await bot.aclose()
    assert bot.paid_broadcast is True
    assert len(fake.sent) == 1


def test_from_config_reports_every_problem_without_showing_the_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_TG_TOKEN", "not a token at all")
    config = _config(
        tmp_path,
        {"api_url": "ftp://x", "paid_broadcast": "yes", "timeout_s": 0, "target": "nobody"},
    )
    with pytest.raises(ConfigError) as caught:
        from_config(config, ChannelContext(data_dir=tmp_path))
    keys = {problem.key for problem in caught.value.problems}
    assert keys == {
        "options.api_url",
        "options.paid_broadcast",
        "options.timeout_s",
        "options.target",
        "secrets.token",
    }
    assert "not a token at all" not in str(caught.value)
    monkeypatch.delenv("TEST_TG_TOKEN")
    with pytest.raises(ConfigError, match="TEST_TG_TOKEN is not set"):
        from_config(_config(tmp_path, {}), ChannelContext(data_dir=tmp_path))


# --------------------------------------------------------------------------- end to end


async def test_a_fan_out_through_the_worker_reaches_every_chat_within_the_limits(
    engine: AsyncEngine, fake: FakeTelegramAPI, tmp_path: Path
) -> None:
    alert = quake_alert("SISMO-E2E", sender=SENDER, sent=datetime.now(UTC).replace(microsecond=0))
    stored = await lifecycle.ingest_alert(
        engine, alert, raw=None, source="test", actor="test", now=datetime.now(UTC)
    )
    alert_id = stored.result.alert_id
    text = render(alert, "telegram").parts[0].text
    public = fake.add_channel("alertas_e2e")
    people = [str(2000 + i) for i in range(40)]
    groups = ["-3001", "-3002", "-1003000000001"]
    targets = [*people, *groups, "@alertas_e2e"]
    await ledger.plan(
        engine,
        alert_id=alert_id,
        channel="tg",
        targets=targets,
        message=html(text, alert_id=alert_id),
        priority=10,
        deadline=None,
        group_of=group_key,
    )
    config = ChannelConfig(name="tg", kind="telegram", file=tmp_path / "telegram.toml")
    limiter, problems = RateLimiter.from_channels([config])
    assert problems == []
    bot = make_channel(fake)
    try:
        worker = Worker(engine, {"tg": bot}, limiter, "w1", batch=100, concurrency=16)
        sent = await worker.run_once()
    finally:
        await bot.aclose()

    assert sent == len(targets)
    assert await ledger.progress(engine, alert_id) == {"tg": {"sent": len(targets)}}
    assert fake.rate_limited == []  # the limiter kept inside every Telegram limit
    counts = fake.count_by_chat()
    assert counts == {**{int(t): 1 for t in people + groups}, public.id: 1}
    async with engine.connect() as conn:
        ids = set((await conn.execute(select(deliveries.c.provider_message_id))).scalars().all())
    assert ids == {"1"}  # the first message in every chat
