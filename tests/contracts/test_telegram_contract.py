"""The fake Bot API and the Telegram channel checked against the published Bot API spec.

``corpus/spec/telegram_bot_api.json`` is a machine-readable copy of
https://core.telegram.org/bots/api: every method with its parameters (name,
types, required) and every object type with its fields. The checks:

* every method the fake answers exists, with the parameter names, types and
  required-ness the fake decodes them by;
* every request the real channel (python-telegram-bot) sends names a spec
  method and only spec parameters, carries the required ones, and each value
  reads as one of the parameter's types;
* every object the fake answers with (Message, User, Chat, MessageEntity,
  Update, CallbackQuery, WebhookInfo, ResponseParameters) has the spec's
  required fields, no field the spec does not know, and values of the
  spec's types; enumerated strings (chat types, entity types) are ones the
  spec lists.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from alertcast.channels.telegram import TelegramChannel
from alertcast.demo.fake_telegram import METHOD_PARAMS, REQUIRED_PARAMS, TOKEN, FakeTelegramAPI
from alertcast.ports import OutboundMessage

Spec = dict[str, Any]


@pytest.fixture(scope="module")
def spec(corpus_dir: Path) -> Spec:
    data: Spec = json.loads((corpus_dir / "spec" / "telegram_bot_api.json").read_text("utf-8"))
    assert {"methods", "types"} <= data.keys()
    return data


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegramAPI]:
    async with FakeTelegramAPI() as api:
        yield api


def fields_of(entry: Spec) -> dict[str, Spec]:
    return {field["name"]: field for field in entry.get("fields", [])}


# --------------------------------------------------------------------------- a type checker


def matches(value: Any, type_name: str, spec: Spec, path: str) -> list[str]:
    """Problems of ``value`` read as the spec type ``type_name`` (empty when it is one)."""
    if type_name.startswith("Array of "):
        if not isinstance(value, list):
            return [f"{path}: expected {type_name}, got {type(value).__name__}"]
        inner = type_name.removeprefix("Array of ")
        return [p for i, v in enumerate(value) for p in matches(v, inner, spec, f"{path}[{i}]")]
    simple = {
        "Integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "Float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "String": lambda v: isinstance(v, str),
        "Boolean": lambda v: isinstance(v, bool),
        "True": lambda v: v is True,
    }
    if type_name in simple:
        ok = simple[type_name](value)
        return [] if ok else [f"{path}: expected {type_name}, got {value!r}"]
    definition = spec["types"].get(type_name)
    if definition is None:
        return [f"{path}: {type_name} is not a type of the spec"]
    if "subtypes" in definition:
        options = [matches(value, sub, spec, path) for sub in definition["subtypes"]]
        return [] if any(not o for o in options) else options[0]
    return check_object(value, type_name, spec, path)


def check_object(value: Any, type_name: str, spec: Spec, path: str = "") -> list[str]:
    """Problems of a JSON object read as the spec object ``type_name``."""
    path = path or type_name
    if not isinstance(value, dict):
        return [f"{path}: expected a {type_name} object, got {type(value).__name__}"]
    fields = fields_of(spec["types"][type_name])
    problems = [
        f"{path}: required field {name!r} missing"
        for name, field in fields.items()
        if field["required"] and name not in value
    ]
    for key, item in value.items():
        field = fields.get(key)
        if field is None:
            problems.append(f"{path}: field {key!r} is not in the spec's {type_name}")
            continue
        options = [matches(item, t, spec, f"{path}.{key}") for t in field["types"]]
        if all(options):
            problems.extend(options[0])
    problems.extend(enumerations(value, type_name, fields, path))
    return problems


def quoted_values(description: str) -> set[str]:
    return set(re.findall(r'"([a-z_]+)"', description))


def enumerations(
    value: dict[str, Any], type_name: str, fields: dict[str, Spec], path: str
) -> list[str]:
    """Strings the spec enumerates in a field's description: chat and entity types."""
    if type_name not in ("Chat", "MessageEntity") or "type" not in value:
        return []
    allowed = quoted_values(fields["type"]["description"])
    assert allowed, f"no values found in the description of {type_name}.type"
    if value["type"] not in allowed:
        return [f"{path}.type: {value['type']!r} is not one of {sorted(allowed)}"]
    return []


def read_form_value(text: str, types: list[str], spec: Spec, path: str) -> list[str]:
    """Problems of a form value as clients send it (JSON for objects, plain for the rest)."""
    options: list[list[str]] = []
    for type_name in types:
        if type_name == "String":
            options.append([])  # any text is a string; a chat id is also an Integer
            continue
        if type_name == "Integer":
            ok = re.fullmatch(r"-?[0-9]+", text) is not None
            options.append([] if ok else [f"{path}: {text!r} is not an Integer"])
            continue
        if type_name == "Boolean":
            ok = text in ("true", "false")
            options.append([] if ok else [f"{path}: {text!r} is not a Boolean"])
            continue
        try:
            decoded = json.loads(text)
        except ValueError:
            options.append([f"{path}: {text!r} is not JSON"])
            continue
        options.append(matches(decoded, type_name, spec, path))
    return [] if any(not o for o in options) else options[0]


# --------------------------------------------------------------------------- methods


def test_every_method_of_the_fake_is_in_the_spec_with_its_parameters(spec: Spec) -> None:
    for method, params in METHOD_PARAMS.items():
        assert method in spec["methods"], f"{method} is not a Bot API method"
        fields = fields_of(spec["methods"][method])
        for name, types in params.items():
            assert name in fields, f"{method}: {name} is not a parameter of the spec"
            assert tuple(fields[name]["types"]) == types, f"{method}.{name}"
        required = {name for name, field in fields.items() if field["required"]}
        assert required <= set(params), f"{method}: the fake ignores required {required}"
        assert REQUIRED_PARAMS.get(method, frozenset()) == required, method


def test_the_type_checker_refuses_what_the_spec_refuses(spec: Spec) -> None:
    good = {"message_id": 1, "date": 1_700_000_000, "chat": {"id": 5, "type": "private"}}
    assert check_object(good, "Message", spec) == []
    assert check_object({"message_id": 1, "date": 1}, "Message", spec)  # no chat
    assert check_object({**good, "message_id": "1"}, "Message", spec)  # a string id
    assert check_object({**good, "colour": "red"}, "Message", spec)  # unknown field
    assert check_object({**good, "chat": {"id": 5, "type": "room"}}, "Message", spec)
    assert check_object({"retry_after": True}, "ResponseParameters", spec)


async def test_every_request_the_channel_sends_follows_the_spec(
    spec: Spec, fake: FakeTelegramAPI
) -> None:
    fake.add_channel("alertas_mx")
    bot = TelegramChannel(
        "tg", TOKEN, api_url=fake.api_url, paid_broadcast=True, disable_link_preview=True
    )
    plain = TelegramChannel("tg2", TOKEN, api_url=fake.api_url)
    message = OutboundMessage(parts=("<b>Sismo</b> M6.1", "<i>2/2</i> aléjese de muros"))
    try:
        first = await bot.send(message, "1001")
        await plain.send(message, "@alertas_mx")
        await plain.send(OutboundMessage(parts=("uno",)), "-4001")
        await bot.edit(
            first.provider_message_id or "", OutboundMessage(parts=("corregido",)), "1001"
        )
        await plain.reply("1", OutboundMessage(parts=("<b>CANCELADO</b>",)), "1001")
        await plain.delete("1", "1001")
    finally:
        await bot.aclose()
        await plain.aclose()

    methods = {call.method for call in fake.calls}
    assert methods == {"sendMessage", "editMessageText", "deleteMessage"}
    problems: list[str] = []
    for call in fake.calls:
        assert call.status == 200, (call.method, call.raw)
        fields = fields_of(spec["methods"][call.method])
        for name, field in fields.items():
            if field["required"] and name not in call.raw:
                problems.append(f"{call.method}: required {name} not sent")
        for name, text in call.raw.items():
            if name not in fields:
                problems.append(f"{call.method}: {name} is not a parameter")
                continue
            problems.extend(
                read_form_value(text, fields[name]["types"], spec, f"{call.method}.{name}")
            )
    assert problems == []
    sent = fake.calls_to("sendMessage")
    assert {"reply_parameters", "allow_paid_broadcast", "link_preview_options"} <= set(sent[1].raw)


# --------------------------------------------------------------------------- answers


async def _post(fake: FakeTelegramAPI, method: str, **params: Any) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake.base_url}{fake.token}/{method}", json=params) as response,
    ):
        return response.status, await response.json()


def _envelope_problems(status: int, body: dict[str, Any], spec: Spec) -> list[str]:
    """The "Making requests" envelope: ok/result, or ok/error_code/description/parameters."""
    if body.get("ok") is True:
        return [] if status == 200 and set(body) == {"ok", "result"} else [f"bad success {body}"]
    problems = []
    if set(body) - {"ok", "error_code", "description", "parameters"}:
        problems.append(f"unknown envelope keys {set(body)}")
    if body.get("error_code") != status:
        problems.append(f"error_code {body.get('error_code')} differs from HTTP {status}")
    if not isinstance(body.get("description"), str) or not body["description"]:
        problems.append("no description")
    if "parameters" in body:
        problems.extend(check_object(body["parameters"], "ResponseParameters", spec))
    return problems


async def test_the_messages_the_fake_returns_are_spec_messages(
    spec: Spec, fake: FakeTelegramAPI
) -> None:
    fake.add_channel("alertas_mx")
    html = '<b>Sismo</b> <a href="https://x.example/1">más</a> <tg-spoiler>s</tg-spoiler>'
    status, sent = await _post(fake, "sendMessage", chat_id=1001, text=html, parse_mode="HTML")
    assert _envelope_problems(status, sent, spec) == []
    _, in_group = await _post(
        fake, "sendMessage", chat_id=-1001, text="<pre>x</pre>", parse_mode="HTML"
    )
    _, in_channel = await _post(
        fake, "sendMessage", chat_id="@alertas_mx", text="<u>x</u>", parse_mode="HTML"
    )
    _, reply = await _post(
        fake,
        "sendMessage",
        chat_id=1001,
        text="<i>fin</i>",
        parse_mode="HTML",
        reply_parameters={"message_id": 1},
        link_preview_options={"is_disabled": True},
    )
    _, edited = await _post(
        fake, "editMessageText", chat_id=1001, message_id=1, text="<s>otro</s>", parse_mode="HTML"
    )
    _, deleted = await _post(fake, "deleteMessage", chat_id=1001, message_id=2)
    problems = [
        p
        for answer in (sent, in_group, in_channel, reply, edited)
        for p in check_object(answer["result"], "Message", spec)
    ]
    assert problems == []
    assert reply["result"]["reply_to_message"]["message_id"] == 1
    assert in_channel["result"]["chat"]["type"] == "channel"
    assert deleted == {"ok": True, "result": True}
    assert (
        matches(deleted["result"], spec["methods"]["deleteMessage"]["returns"][0], spec, "") == []
    )


async def test_the_bot_and_update_objects_are_spec_objects(
    spec: Spec, fake: FakeTelegramAPI
) -> None:
    _, me = await _post(fake, "getMe")
    assert check_object(me["result"], "User", spec) == []
    await _post(fake, "sendMessage", chat_id=1001, text="Aviso")
    fake.push_message(1001, "/start")
    query = fake.push_callback_query(1001, "zona:cdmx", message_id=1)
    _, updates = await _post(fake, "getUpdates", timeout=0)
    assert next(u for u in updates["result"] if "message" in u)["message"]["text"] == "/start"
    assert matches(updates["result"], "Array of Update", spec, "getUpdates") == []
    status, answered = await _post(fake, "answerCallbackQuery", callback_query_id=query, text="ok")
    assert (status, answered) == (200, {"ok": True, "result": True})
    _, info = await _post(fake, "getWebhookInfo")
    assert check_object(info["result"], "WebhookInfo", spec) == []


async def test_every_error_answer_has_the_documented_envelope(
    spec: Spec, fake: FakeTelegramAPI
) -> None:
    fake.block(1002)
    fake.migrate(-4001)
    fake.flood(3, chat_id=1003)
    fake.fail(500, "Internal Server Error", method="getMe")
    answers = {
        "blocked": await _post(fake, "sendMessage", chat_id=1002, text="x"),
        "migrated": await _post(fake, "sendMessage", chat_id=-4001, text="x"),
        "flood": await _post(fake, "sendMessage", chat_id=1003, text="x"),
        "not found": await _post(fake, "sendMessage", chat_id="@nadie_aqui", text="x"),
        "entities": await _post(fake, "sendMessage", chat_id=1, text="<x>", parse_mode="HTML"),
        "too long": await _post(fake, "sendMessage", chat_id=1, text="x" * 4097),
        "server": await _post(fake, "getMe"),
        "webhook": await _post(fake, "setWebhook", url="http://insecure.example"),
        "query": await _post(fake, "answerCallbackQuery", callback_query_id="nope"),
    }
    for name, (status, body) in answers.items():
        assert body["ok"] is False, name
        assert _envelope_problems(status, body, spec) == [], name
    assert answers["blocked"][1]["description"] == "Forbidden: bot was blocked by the user"
    assert answers["migrated"][1]["parameters"]["migrate_to_chat_id"] < -1_000_000_000_000
    assert answers["flood"][1]["parameters"] == {"retry_after": 3}
    assert answers["flood"][1]["description"] == "Too Many Requests: retry after 3"
    assert answers["not found"][1]["description"] == "Bad Request: chat not found"
    assert answers["entities"][1]["description"].startswith("Bad Request: can't parse entities:")
    assert answers["too long"][1]["description"] == "Bad Request: message is too long"
    assert [status for status, _ in answers.values()] == [
        403,
        400,
        429,
        400,
        400,
        400,
        500,
        400,
        400,
    ]
