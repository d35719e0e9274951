"""The fake Bot API's page for people: what a bot posts is shown, never run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from alertcast.demo.fake_telegram import TOKEN, FakeTelegramAPI, entities_to_html, parse_html


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegramAPI]:
    async with FakeTelegramAPI(limits=False) as api:
        api.add_channel("avisos", title="Avisos <b>oficiales</b>")
        yield api


async def call(
    session: aiohttp.ClientSession, api: FakeTelegramAPI, method: str, **params: object
) -> Any:
    async with session.post(f"{api.base_url}{TOKEN}/{method}", json=params) as response:
        body = await response.json()
    assert body["ok"], body
    return body["result"]


async def test_the_page_escapes_what_the_bot_sent(fake: FakeTelegramAPI) -> None:
    async with aiohttp.ClientSession() as session:
        await call(
            session, fake, "sendMessage", chat_id="@avisos", text="<script>alert(1)</script>"
        )
        await call(
            session,
            fake,
            "sendMessage",
            chat_id="@avisos",
            parse_mode="HTML",
            text=(
                "<b>SIMULACRO</b> &lt;img src=x onerror=alert(2)&gt; "
                '<a href="javascript:alert(3)">aquí</a>'
            ),
        )
        async with session.get(f"{fake.api_url}/") as response:
            assert response.status == 200
            assert response.content_type == "text/html"
            page = await response.text()
        async with session.get(f"{fake.api_url}/messages.json") as response:
            view = await response.json()
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img" not in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "javascript:" not in page
    assert "<b>SIMULACRO</b>" in page
    assert "Avisos &lt;b&gt;oficiales&lt;/b&gt;" in page  # the chat title is escaped too
    assert '<meta http-equiv="refresh" content="2">' in page
    assert "Mensajes / Messages" in page
    # Newest first, in the JSON view as on the page.
    texts = [m["text"] for m in view["chats"][0]["messages"]]
    assert texts[1] == "<script>alert(1)</script>"
    assert texts[0].startswith("SIMULACRO <img")
    assert page.index("SIMULACRO") < page.index("&lt;script&gt;")


async def test_edits_and_deletions_are_listed(fake: FakeTelegramAPI) -> None:
    async with aiohttp.ClientSession() as session:
        sent = await call(session, fake, "sendMessage", chat_id="@avisos", text="primero")
        message_id = sent["message_id"]
        await call(
            session,
            fake,
            "editMessageText",
            chat_id="@avisos",
            message_id=message_id,
            text="corregido",
        )
        await call(session, fake, "deleteMessage", chat_id="@avisos", message_id=message_id)
        async with session.get(f"{fake.api_url}/messages.json") as response:
            view = await response.json()
    events = [(m["action"], m["message_id"], m["text"]) for m in view["chats"][0]["messages"]]
    assert events == [
        ("deleted", message_id, "corregido"),
        ("edited", message_id, "corregido"),
        ("sent", message_id, "primero"),
    ]


def test_only_well_nested_safe_entities_become_tags() -> None:
    text, entities = parse_html(
        '<b>a<i>b</i></b> <code>x&lt;y</code> <a href="https://e.mx/?a=1&amp;b=2">e</a>'
    )
    html = entities_to_html(text, entities)
    assert html == (
        "<b>a<i>b</i></b> <code>x&lt;y</code> "
        '<a href="https://e.mx/?a=1&amp;b=2" rel="nofollow noopener noreferrer">e</a>'
    )
    crossing = [
        {"type": "bold", "offset": 0, "length": 3},
        {"type": "italic", "offset": 2, "length": 3},  # crosses the bold: left out
        {"type": "spoiler", "offset": 0, "length": 1},  # not in the safe subset
        {"type": "bold", "offset": 4, "length": 99},  # past the end
    ]
    assert entities_to_html("abcde", crossing) == "<b>abc</b>de"


def test_offsets_count_utf16_units_as_telegram_does() -> None:
    text, entities = parse_html("🚨 <b>Sismo</b> ya")
    assert entities_to_html(text, entities) == "🚨 <b>Sismo</b> ya"
