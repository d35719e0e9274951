"""A fake Telegram Bot API: the wire protocol of ``https://api.telegram.org/bot<token>/<method>``.

It answers the way the real Bot API does (https://core.telegram.org/bots/api),
so the real python-telegram-bot client can be pointed at it:

* **Envelopes.** ``{"ok": true, "result": ...}`` on success;
  ``{"ok": false, "error_code": N, "description": "...", "parameters": {...}}``
  on failure, with the HTTP status equal to ``error_code``. ``parameters`` is a
  ResponseParameters object: ``retry_after`` on a 429, ``migrate_to_chat_id``
  when a group became a supergroup.
* **Requests** in any of the four forms the Bot API accepts: a query string,
  ``application/x-www-form-urlencoded``, ``application/json`` or
  ``multipart/form-data``. Form values of non-string parameters are JSON (an
  object such as ``reply_parameters``) or plain text (``123``, ``true``), as
  clients send them. Method names are case-insensitive, as on the real server.
* **HTML parse mode** is parsed into plain text and MessageEntity objects
  (offsets in UTF-16 code units) with the tags Telegram documents; an
  unknown tag, an unbalanced or misnested one, or a ``span`` without
  ``class="tg-spoiler"`` is refused with "Bad Request: can't parse entities:
  ..." in Telegram's wording. The 4,096-character limit is applied to the
  text *after* that parsing, as the documentation of ``sendMessage`` says.
* **Flood limits** from the bots FAQ: about one message per second in a chat
  (a small burst tolerated), 20 per minute in a group, about 30 per second
  overall; over them, 429 "Too Many Requests: retry after N". A message
  sent with ``allow_paid_broadcast`` skips the overall limit (up to 1,000/s).
* **Chats**: a positive id is a private chat, ``-100...`` a supergroup or
  channel, another negative id a basic group; ``@username`` names a channel
  registered with :meth:`FakeTelegramAPI.add_channel`. Message ids count up
  per chat.

Knobs for failures: :meth:`~FakeTelegramAPI.block` (403, e.g. the user blocked
the bot), :meth:`~FakeTelegramAPI.migrate` (the group was upgraded),
:meth:`~FakeTelegramAPI.forget` (400 chat not found), :meth:`~FakeTelegramAPI.delay`
(the request is carried out, the answer comes late: the ambiguous case),
:meth:`~FakeTelegramAPI.fail` (a 5xx), :meth:`~FakeTelegramAPI.flood` (a 429
regardless of the limits). For the citizens' bot: getUpdates with long
polling over a queue that :meth:`~FakeTelegramAPI.push_message` and
:meth:`~FakeTelegramAPI.push_callback_query` fill, setWebhook, deleteWebhook,
getWebhookInfo and answerCallbackQuery.

Everything received is recorded (:attr:`FakeTelegramAPI.calls`), and what it
did to chats too (:attr:`~FakeTelegramAPI.sent`, :attr:`~FakeTelegramAPI.edited`,
:attr:`~FakeTelegramAPI.deleted`), for assertions.

**A view for people.** ``GET /`` is a small page (Spanish first, then
English; it reloads itself every two seconds) with what the bot posted, edited
and deleted in each chat, newest first; ``GET /messages.json`` is the same as
JSON. The demo runs this fake so that a newcomer sees real Bot API traffic
without a bot of their own. Message text is shown from the plain text and the
entities Telegram would display, escaped, with only ``b i u s a code pre``
rebuilt as tags and links only to ``http(s)`` addresses: what a bot sends
cannot script the page.

Usage::

    async with FakeTelegramAPI(token="123:ABC") as fake:
        bot = telegram.Bot("123:ABC", base_url=f"{fake.api_url}/bot")
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from typing import Any

from aiohttp import web

# Not a secret: the fake's own default token, which no real bot has.
TOKEN = "123456789:AAFakeTokenForTestsOnly-0123456789ab"  # noqa: S105
BOT_ID = 123456789
MAX_TEXT_UTF16 = 4096

# Parameters each implemented method takes, with their Bot API types (as the
# documentation writes them). The contract test checks these against the spec.
METHOD_PARAMS: dict[str, dict[str, tuple[str, ...]]] = {
    "getMe": {},
    "sendMessage": {
        "chat_id": ("Integer", "String"),
        "message_thread_id": ("Integer",),
        "text": ("String",),
        "parse_mode": ("String",),
        "entities": ("Array of MessageEntity",),
        "link_preview_options": ("LinkPreviewOptions",),
        "disable_notification": ("Boolean",),
        "protect_content": ("Boolean",),
        "allow_paid_broadcast": ("Boolean",),
        "reply_parameters": ("ReplyParameters",),
    },
    "editMessageText": {
        "chat_id": ("Integer", "String"),
        "message_id": ("Integer",),
        "inline_message_id": ("String",),
        "text": ("String",),
        "parse_mode": ("String",),
        "entities": ("Array of MessageEntity",),
        "link_preview_options": ("LinkPreviewOptions",),
    },
    "deleteMessage": {"chat_id": ("Integer", "String"), "message_id": ("Integer",)},
    "getUpdates": {
        "offset": ("Integer",),
        "limit": ("Integer",),
        "timeout": ("Integer",),
        "allowed_updates": ("Array of String",),
    },
    "setWebhook": {
        "url": ("String",),
        "ip_address": ("String",),
        "max_connections": ("Integer",),
        "allowed_updates": ("Array of String",),
        "drop_pending_updates": ("Boolean",),
        "secret_token": ("String",),
    },
    "deleteWebhook": {"drop_pending_updates": ("Boolean",)},
    "getWebhookInfo": {},
    "answerCallbackQuery": {
        "callback_query_id": ("String",),
        "text": ("String",),
        "show_alert": ("Boolean",),
        "url": ("String",),
        "cache_time": ("Integer",),
    },
}
"""Method name → parameter name → accepted types."""

REQUIRED_PARAMS: dict[str, frozenset[str]] = {
    "sendMessage": frozenset({"chat_id", "text"}),
    "deleteMessage": frozenset({"chat_id", "message_id"}),
    "setWebhook": frozenset({"url"}),
    "answerCallbackQuery": frozenset({"callback_query_id"}),
}
"""Parameters without which the method is refused (editMessageText: see its handler)."""

_METHODS_BY_LOWER = {name.lower(): name for name in METHOD_PARAMS}

# Telegram's HTML parse mode: tag → MessageEntity type.
_ENTITY_OF_TAG = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_CHAR_ENTITY = re.compile(r"&(lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});")
_TAG_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9-]*")
_ATTRIBUTE = re.compile(
    r"\s+([a-zA-Z][a-zA-Z0-9-]*)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>\"']+)))?"
)


class EntityParseError(ValueError):
    """Telegram's reason for refusing an HTML text (after "can't parse entities: ")."""


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _decode_entities(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("#x"):
            return chr(int(name[2:], 16))
        if name.startswith("#"):
            return chr(int(name[1:]))
        return _NAMED_ENTITIES[name]

    return _CHAR_ENTITY.sub(one, text)


@dataclass
class _Open:
    tag: str
    start: int
    byte_offset: int
    attributes: dict[str, str]


def parse_html(html: str) -> tuple[str, list[dict[str, Any]]]:
    """Telegram's HTML parse mode: (plain text, MessageEntity dicts) or EntityParseError.

    Follows the rules of https://core.telegram.org/bots/api#html-style: the
    supported tags only, properly nested; ``&lt; &gt; &amp; &quot;`` and
    numeric entities are decoded, any other ``&`` is kept as it is. Offsets
    in errors are byte offsets of the UTF-8 text, as Telegram reports them.
    """
    out: list[str] = []
    length16 = 0
    stack: list[_Open] = []
    entities: list[dict[str, Any]] = []
    i = 0
    n = len(html)

    def byte_offset(index: int) -> int:
        return len(html[:index].encode("utf-8"))

    def emit(text: str) -> None:
        nonlocal length16
        out.append(text)
        length16 += utf16_len(text)

    while i < n:
        ch = html[i]
        if ch == "&":
            match = _CHAR_ENTITY.match(html, i)
            if match is not None:
                code = match.group(1)
                if code.startswith("#"):
                    value = int(code[2:], 16) if code.startswith("#x") else int(code[1:])
                    if not 0 < value <= 0x10FFFF or 0xD800 <= value <= 0xDFFF:
                        emit(match.group(0))
                        i = match.end()
                        continue
                emit(_decode_entities(match.group(0)))
                i = match.end()
                continue
            emit(ch)
            i += 1
            continue
        if ch != "<":
            emit(ch)
            i += 1
            continue
        begin = i
        if html.startswith("</", i):
            name_match = _TAG_NAME.match(html, i + 2)
            name = name_match.group(0).lower() if name_match else ""
            j = name_match.end() if name_match else i + 2
            while j < n and html[j].isspace():
                j += 1
            if j >= n or html[j] != ">":
                raise EntityParseError(f"Unclosed end tag at byte offset {byte_offset(begin)}")
            if not stack:
                raise EntityParseError(f"Unexpected end tag at byte offset {byte_offset(begin)}")
            if name and name != stack[-1].tag:
                raise EntityParseError(
                    f"Unmatched end tag at byte offset {byte_offset(begin)}, "
                    f'expected "</{stack[-1].tag}>", found "</{name}>"'
                )
            opened = stack.pop()
            _close_entity(opened, length16, entities, stack)
            i = j + 1
            continue
        name_match = _TAG_NAME.match(html, i + 1)
        name = name_match.group(0).lower() if name_match else ""
        if name not in _ENTITY_OF_TAG:
            raise EntityParseError(
                f'Unsupported start tag "{name}" at byte offset {byte_offset(begin)}'
            )
        assert name_match is not None
        j = name_match.end()
        attributes: dict[str, str] = {}
        while True:
            attribute = _ATTRIBUTE.match(html, j)
            if attribute is None:
                break
            given = next((v for v in attribute.group(2, 3, 4) if v is not None), "")
            attributes[attribute.group(1).lower()] = _decode_entities(given)
            j = attribute.end()
        while j < n and html[j].isspace():
            j += 1
        if j >= n or html[j] != ">":
            raise EntityParseError(f"Unclosed start tag at byte offset {byte_offset(begin)}")
        if name == "span" and attributes.get("class") != "tg-spoiler":
            raise EntityParseError(
                f'Tag "span" must have class "tg-spoiler" at byte offset {byte_offset(begin)}'
            )
        if name == "tg-emoji" and "emoji-id" not in attributes:
            raise EntityParseError(
                f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset {byte_offset(begin)}'
            )
        stack.append(_Open(name, length16, byte_offset(begin), attributes))
        i = j + 1
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _close_entity(
    opened: _Open, end: int, entities: list[dict[str, Any]], stack: list[_Open]
) -> None:
    length = end - opened.start
    if length <= 0:
        return  # Telegram drops empty entities
    kind = _ENTITY_OF_TAG[opened.tag]
    entity: dict[str, Any] = {"type": kind, "offset": opened.start, "length": length}
    if opened.tag == "a":
        href = opened.attributes.get("href", "")
        if not href:
            return  # an <a> without a link is plain text
        entity["url"] = href
    elif opened.tag == "blockquote" and "expandable" in opened.attributes:
        entity["type"] = "expandable_blockquote"
    elif opened.tag == "tg-emoji":
        entity["custom_emoji_id"] = opened.attributes["emoji-id"]
    elif opened.tag == "code":
        language = opened.attributes.get("class", "")
        if stack and stack[-1].tag == "pre" and language.startswith("language-"):
            stack[-1].attributes["language"] = language.removeprefix("language-")
    elif opened.tag == "pre" and opened.attributes.get("language"):
        entity["language"] = opened.attributes["language"]
    entities.append(entity)


# --------------------------------------------------------------------------- state


class ApiError(Exception):
    """An error answer: HTTP status = error_code, Telegram's description and parameters."""

    def __init__(
        self, code: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


@dataclass
class Chat:
    id: int
    type: str
    title: str | None = None
    username: str | None = None
    first_name: str | None = None
    blocked: str | None = None
    """A 403 description when the bot may no longer write here."""
    migrated_to: int | None = None
    next_message_id: int = 1
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        for name in ("title", "username", "first_name"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        return data


@dataclass
class Call:
    """One request as received: method, decoded parameters and the raw form values."""

    method: str
    params: dict[str, Any]
    raw: dict[str, str]
    status: int = 200


@dataclass
class _Bucket:
    rate: float
    capacity: float
    tokens: float
    stamp: float

    def wait(self, now: float) -> float:
        """Seconds until one token is available (0 when there is one now)."""
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return 0.0 if self.tokens >= 1.0 - 1e-9 else (1.0 - self.tokens) / self.rate

    def take(self) -> None:
        self.tokens -= 1.0


@dataclass
class _Fault:
    method: str | None
    times: int
    status: int = 500
    description: str = "Internal Server Error"
    delay_s: float = 0.0
    retry_after: int | None = None
    chat_id: int | str | None = None


class FakeTelegramAPI:
    """The fake server; ``api_url`` is its base (pass ``f"{api_url}/bot"`` to PTB's Bot)."""

    def __init__(
        self,
        *,
        token: str = TOKEN,
        bot_username: str = "alertcast_test_bot",
        limits: bool = True,
        per_chat_per_s: float = 1.0,
        per_chat_burst: int = 3,
        per_group_per_minute: float = 20.0,
        per_group_burst: int = 3,
        global_per_s: float = 30.0,
        global_burst: int = 30,
        paid_per_s: float = 1000.0,
        long_poll_cap_s: float = 2.0,
    ) -> None:
        self.token = token
        self.bot_username = bot_username
        self.limits = limits
        self.per_chat_per_s = per_chat_per_s
        self.per_chat_burst = per_chat_burst
        self.per_group_per_minute = per_group_per_minute
        self.per_group_burst = per_group_burst
        self.global_per_s = global_per_s
        self.global_burst = global_burst
        self.paid_per_s = paid_per_s
        self.long_poll_cap_s = long_poll_cap_s
        self.api_url = ""
        self.chats: dict[int, Chat] = {}
        self.usernames: dict[str, int] = {}
        self.calls: list[Call] = []
        self.sent: list[dict[str, Any]] = []
        self.edited: list[dict[str, Any]] = []
        self.deleted: list[tuple[int, int]] = []
        self.activity: list[dict[str, Any]] = []
        """What the bot did to chats, oldest first: the human view's source."""
        self.rate_limited: list[Call] = []
        self.webhook: dict[str, Any] | None = None
        self.answered_callbacks: dict[str, dict[str, Any]] = {}
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 100_000
        self._update_arrived = asyncio.Event()
        self._callbacks: set[str] = set()
        self._faults: list[_Fault] = []
        self._buckets: dict[tuple[str, int], _Bucket] = {}
        self._global = _Bucket(global_per_s, global_burst, global_burst, time.monotonic())
        self._paid = _Bucket(paid_per_s, paid_per_s, paid_per_s, time.monotonic())
        self._next_supergroup = -1_001_000_000_001
        self._forgotten: set[int] = set()
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> FakeTelegramAPI:
        app = web.Application()
        app.router.add_get("/", self._view_page)
        app.router.add_get("/messages.json", self._view_json)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.api_url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegramAPI:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """What PTB's ``Bot(base_url=...)`` wants: the API URL up to ``/bot``."""
        return f"{self.api_url}/bot"

    # ------------------------------------------------------------------ chats and knobs

    def add_chat(
        self,
        chat_id: int,
        *,
        kind: str | None = None,
        title: str | None = None,
        username: str | None = None,
    ) -> Chat:
        """Register a chat; by default its type follows from the id, as Telegram's ids do."""
        kind = kind or _type_of(chat_id)
        chat = self.chats.get(chat_id)
        if chat is None:
            chat = Chat(chat_id, kind)
            if kind == "private":
                chat.first_name = f"User {chat_id}"
            else:
                chat.title = title or f"Chat {chat_id}"
            self.chats[chat_id] = chat
        if username:
            chat.username = username.lstrip("@")
            self.usernames[chat.username.lower()] = chat_id
        return chat

    def add_channel(self, username: str, *, title: str = "Alertas") -> Chat:
        """A public channel reachable as ``@username``; the bot is one of its admins."""
        chat_id = self._next_supergroup
        self._next_supergroup -= 1
        return self.add_chat(chat_id, kind="channel", title=title, username=username)

    def block(
        self, chat_id: int, description: str = "Forbidden: bot was blocked by the user"
    ) -> None:
        """Every later call to the chat gets a 403 with ``description``."""
        self._chat_or_new(chat_id).blocked = description

    def forget(self, chat_id: int) -> None:
        """The chat no longer exists for the bot: 400 "Bad Request: chat not found"."""
        self.chats.pop(chat_id, None)
        self._forgotten.add(chat_id)

    def migrate(self, chat_id: int) -> int:
        """Upgrade a basic group to a supergroup; returns the supergroup's new id."""
        group = self._chat_or_new(chat_id)
        new_id = self._next_supergroup
        self._next_supergroup -= 1
        group.migrated_to = new_id
        self.add_chat(new_id, kind="supergroup", title=group.title)
        return new_id

    def delay(self, seconds: float, *, method: str | None = "sendMessage", times: int = 1) -> None:
        """Carry out the next call(s), then answer only after ``seconds``: the ambiguous case."""
        self._faults.append(_Fault(method, times, status=200, delay_s=seconds))

    def fail(
        self,
        status: int = 500,
        description: str = "Internal Server Error",
        *,
        method: str | None = "sendMessage",
        times: int = 1,
    ) -> None:
        """Refuse the next call(s) with ``status`` before doing anything."""
        self._faults.append(_Fault(method, times, status=status, description=description))

    def flood(
        self,
        retry_after: int,
        *,
        method: str | None = "sendMessage",
        times: int = 1,
        chat_id: int | str | None = None,
    ) -> None:
        """Answer the next call(s) with 429 and ``retry_after``, whatever the limits say."""
        self._faults.append(
            _Fault(method, times, status=429, retry_after=retry_after, chat_id=chat_id)
        )

    def messages_in(self, chat_id: int) -> list[dict[str, Any]]:
        """The messages currently in a chat (edited text, deletions applied), oldest first."""
        chat = self.chats.get(chat_id)
        return [] if chat is None else [chat.messages[k] for k in sorted(chat.messages)]

    def bot_user(self) -> dict[str, Any]:
        return {
            "id": int(self.token.split(":", 1)[0]) if self.token[:1].isdigit() else BOT_ID,
            "is_bot": True,
            "first_name": "Alertcast Test",
            "username": self.bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    # ------------------------------------------------------------------ updates (citizens' bot)

    def push_update(self, kind: str, payload: dict[str, Any]) -> int:
        """Queue an Update carrying ``payload`` under ``kind`` (``message``, ``callback_query``)."""
        update_id = self._next_update_id
        self._next_update_id += 1
        self._updates.append({"update_id": update_id, kind: payload})
        self._update_arrived.set()
        return update_id

    def user(
        self, user_id: int, *, first_name: str = "Ana", language_code: str = "es"
    ) -> dict[str, Any]:
        return {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name,
            "language_code": language_code,
        }

    def push_message(self, user_id: int, text: str, **user: Any) -> int:
        """A person writes ``text`` to the bot in their private chat; returns the update id."""
        chat = self._chat_or_new(user_id)
        message: dict[str, Any] = {
            "message_id": self._next_id(chat),
            "from": self.user(user_id, **user),
            "date": int(time.time()),
            "chat": chat.to_json(),
            "text": text,
        }
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [
                {"type": "bot_command", "offset": 0, "length": utf16_len(command)}
            ]
        chat.messages[message["message_id"]] = message
        return self.push_update("message", message)

    def push_callback_query(self, user_id: int, data: str, *, message_id: int | None = None) -> str:
        """A person presses an inline button of a bot message; returns the query id."""
        chat = self._chat_or_new(user_id)
        query_id = f"{user_id}{self._next_update_id}"
        query: dict[str, Any] = {
            "id": query_id,
            "from": self.user(user_id),
            "chat_instance": f"ci-{user_id}",
            "data": data,
        }
        if message_id is not None and message_id in chat.messages:
            query["message"] = chat.messages[message_id]
        self._callbacks.add(query_id)
        self.push_update("callback_query", query)
        return query_id

    # ------------------------------------------------------------------ HTTP

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        match = re.fullmatch(r"/bot([^/]*)/([A-Za-z]+)", request.path)
        if match is None:
            return _error_response(ApiError(404, "Not Found"))
        token, requested = match.groups()
        try:
            raw = await _read_params(request)
        except ApiError as exc:
            return _error_response(exc)
        method = _METHODS_BY_LOWER.get(requested.lower(), requested)
        call = Call(method, {}, raw)
        self.calls.append(call)
        if token != self.token:
            call.status = 401 if ":" in token else 404
            return _error_response(
                ApiError(call.status, "Unauthorized" if call.status == 401 else "Not Found")
            )
        if method not in METHOD_PARAMS:
            call.status = 404
            return _error_response(ApiError(404, "Not Found"))
        try:
            call.params = _decode(method, raw)
            fault = self._take_fault(method, call.params)
            if fault is not None and fault.delay_s == 0:
                raise _fault_error(fault)
            result = await self._handle(method, call.params)
        except ApiError as exc:
            call.status = exc.code
            if exc.code == 429:
                self.rate_limited.append(call)
            return _error_response(exc)
        if fault is not None and fault.delay_s > 0:
            await asyncio.sleep(fault.delay_s)  # done already; the answer comes too late
        return web.json_response({"ok": True, "result": result})

    def _take_fault(self, method: str, params: dict[str, Any]) -> _Fault | None:
        for fault in self._faults:
            if fault.method not in (None, method) or fault.times <= 0:
                continue
            if fault.chat_id is not None and params.get("chat_id") != fault.chat_id:
                continue
            fault.times -= 1
            return fault
        return None

    async def _handle(self, method: str, params: dict[str, Any]) -> Any:
        for name in REQUIRED_PARAMS.get(method, ()):
            if name not in params or params[name] in ("", None):
                if name == "text":
                    raise ApiError(400, "Bad Request: message text is empty")
                raise ApiError(400, f'Bad Request: parameter "{name}" is required')
        if method == "getMe":
            return self.bot_user()
        if method == "sendMessage":
            return self._send_message(params)
        if method == "editMessageText":
            return self._edit_message_text(params)
        if method == "deleteMessage":
            return self._delete_message(params)
        if method == "getUpdates":
            return await self._get_updates(params)
        if method == "setWebhook":
            return self._set_webhook(params)
        if method == "deleteWebhook":
            self.webhook = None
            if params.get("drop_pending_updates"):
                self._updates.clear()
            return True
        if method == "getWebhookInfo":
            return {
                "url": self.webhook["url"] if self.webhook else "",
                "has_custom_certificate": False,
                "pending_update_count": len(self._updates),
            }
        if method == "answerCallbackQuery":
            query_id = str(params["callback_query_id"])
            if query_id not in self._callbacks:
                raise ApiError(
                    400,
                    "Bad Request: query is too old and response timeout expired "
                    "or query ID is invalid",
                )
            self._callbacks.discard(query_id)
            self.answered_callbacks[query_id] = params
            return True
        raise ApiError(404, "Not Found")

    # ------------------------------------------------------------------ methods

    def _chat_or_new(self, chat_id: int) -> Chat:
        return self.chats.get(chat_id) or self.add_chat(chat_id)

    def _target_chat(self, chat_ref: Any) -> Chat:
        """The chat a ``chat_id`` names, with the errors Telegram gives for the others."""
        if isinstance(chat_ref, str):
            if chat_ref.startswith("@"):
                chat_id = self.usernames.get(chat_ref[1:].lower())
                if chat_id is None:
                    raise ApiError(400, "Bad Request: chat not found")
                chat_ref = chat_id
            else:
                try:
                    chat_ref = int(chat_ref)
                except ValueError:
                    raise ApiError(400, "Bad Request: chat not found") from None
        if not isinstance(chat_ref, int) or chat_ref == 0 or chat_ref in self._forgotten:
            raise ApiError(400, "Bad Request: chat not found")
        chat = self._chat_or_new(chat_ref)
        if chat.migrated_to is not None:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": chat.migrated_to},
            )
        if chat.blocked is not None:
            raise ApiError(403, chat.blocked)
        return chat

    def _next_id(self, chat: Chat) -> int:
        message_id = chat.next_message_id
        chat.next_message_id += 1
        return message_id

    def _text_and_entities(self, params: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        mode = params.get("parse_mode")
        if mode is None or mode == "":
            entities = params.get("entities") or []
            plain = text
        elif str(mode).lower() == "html":
            try:
                plain, entities = parse_html(text)
            except EntityParseError as exc:
                raise ApiError(400, f"Bad Request: can't parse entities: {exc}") from None
        else:
            raise ApiError(400, f"Bad Request: unsupported parse_mode {mode!r}")
        if not plain.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(plain) > MAX_TEXT_UTF16:
            raise ApiError(400, "Bad Request: message is too long")
        return plain, entities

    def _check_flood(self, chat: Chat, paid: bool) -> None:
        if not self.limits:
            return
        now = time.monotonic()
        buckets = [self._bucket("chat", chat.id, self.per_chat_per_s, self.per_chat_burst, now)]
        if chat.type in ("group", "supergroup"):
            buckets.append(
                self._bucket(
                    "group", chat.id, self.per_group_per_minute / 60, self.per_group_burst, now
                )
            )
        buckets.append(self._paid if paid else self._global)
        wait = max(bucket.wait(now) for bucket in buckets)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise ApiError(
                429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds}
            )
        for bucket in buckets:
            bucket.take()

    def _bucket(self, kind: str, chat_id: int, rate: float, burst: int, now: float) -> _Bucket:
        key = (kind, chat_id)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(rate, burst, burst, now)
        return bucket

    def _message(
        self, chat: Chat, text: str, entities: list[dict[str, Any]], params: dict[str, Any]
    ) -> dict[str, Any]:
        message: dict[str, Any] = {"message_id": self._next_id(chat)}
        if chat.type == "channel":
            message["sender_chat"] = chat.to_json()
        else:
            message["from"] = self.bot_user()
        message["date"] = int(time.time())
        message["chat"] = chat.to_json()
        message["text"] = text
        if entities:
            message["entities"] = entities
        preview = params.get("link_preview_options")
        if isinstance(preview, dict) and preview:
            message["link_preview_options"] = preview
        return message

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._target_chat(params["chat_id"])
        text, entities = self._text_and_entities(params)
        reply = params.get("reply_parameters")
        replied: dict[str, Any] | None = None
        if isinstance(reply, dict):
            replied = chat.messages.get(int(reply.get("message_id", 0)))
            if replied is None and not reply.get("allow_sending_without_reply"):
                raise ApiError(400, "Bad Request: message to be replied not found")
        self._check_flood(chat, bool(params.get("allow_paid_broadcast")))
        message = self._message(chat, text, entities, params)
        if replied is not None:
            message["reply_to_message"] = {
                k: v for k, v in replied.items() if k != "reply_to_message"
            }
        chat.messages[message["message_id"]] = message
        self.sent.append(message)
        self._record("sent", chat, message)
        return message

    def _edit_message_text(self, params: dict[str, Any]) -> dict[str, Any] | bool:
        if "inline_message_id" in params:
            raise ApiError(400, "Bad Request: MESSAGE_ID_INVALID")
        if "chat_id" not in params or "message_id" not in params:
            raise ApiError(400, "Bad Request: message identifier is not specified")
        chat = self._target_chat(params["chat_id"])
        text, entities = self._text_and_entities(params)
        message = chat.messages.get(int(params["message_id"]))
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if "from" in message and message["from"].get("id") != self.bot_user()["id"]:
            raise ApiError(400, "Bad Request: message can't be edited")
        if message["text"] == text and message.get("entities", []) == entities:
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and "
                "reply markup are exactly the same as a current content and reply markup "
                "of the message",
            )
        message["text"] = text
        if entities:
            message["entities"] = entities
        else:
            message.pop("entities", None)
        message["edit_date"] = int(time.time())
        self.edited.append(dict(message))
        self._record("edited", chat, message)
        return message

    def _delete_message(self, params: dict[str, Any]) -> bool:
        chat = self._target_chat(params["chat_id"])
        message_id = int(params["message_id"])
        if message_id not in chat.messages:
            raise ApiError(400, "Bad Request: message to delete not found")
        gone = chat.messages.pop(message_id)
        self.deleted.append((chat.id, message_id))
        self._record("deleted", chat, gone)
        return True

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset", 0) or 0)
        if offset:
            # Confirmed: updates below the offset are gone for good.
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        limit = max(1, min(100, int(params.get("limit", 100) or 100)))
        timeout = max(0.0, float(params.get("timeout", 0) or 0))
        if not self._updates and timeout > 0:
            self._update_arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._update_arrived.wait(), min(timeout, self.long_poll_cap_s)
                )
        return list(self._updates[:limit])

    def _set_webhook(self, params: dict[str, Any]) -> bool:
        url = str(params.get("url", ""))
        if not url:
            self.webhook = None
            return True
        if not url.startswith("https://"):
            raise ApiError(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        self.webhook = dict(params)
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    # ------------------------------------------------------------------ the human view

    def _record(self, action: str, chat: Chat, message: Mapping[str, Any]) -> None:
        self.activity.append(
            {
                "action": action,
                "chat_id": chat.id,
                "message_id": message["message_id"],
                "date": int(time.time()),
                "text": message.get("text", ""),
                "entities": [dict(e) for e in message.get("entities", [])],
            }
        )

    def view(self) -> dict[str, Any]:
        """What ``/messages.json`` shows: per chat, the bot's actions, newest first.

        Chats come in the order of their latest action, the busiest first to the eye.
        """
        by_chat: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for event in reversed(self.activity):
            by_chat[event["chat_id"]].append(event)
        chats = []
        for chat_id, events in by_chat.items():
            chat = self.chats.get(chat_id)
            info = chat.to_json() if chat is not None else {"id": chat_id, "type": "unknown"}
            chats.append({"chat": info, "messages": events})
        return {"bot": self.bot_user()["username"], "count": len(self.activity), "chats": chats}

    async def _view_json(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.view(), dumps=lambda d: json.dumps(d, ensure_ascii=False))

    async def _view_page(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text=render_page(self.view()), content_type="text/html")

    # ------------------------------------------------------------------ assertions

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def sent_to(self, chat_id: int) -> list[dict[str, Any]]:
        return [m for m in self.sent if m["chat"]["id"] == chat_id]

    def count_by_chat(self) -> dict[int, int]:
        counts: dict[int, int] = defaultdict(int)
        for message in self.sent:
            counts[message["chat"]["id"]] += 1
        return dict(counts)


# --------------------------------------------------------------------------- the human view

_SAFE_TAG_OF_ENTITY = {
    "bold": "b",
    "italic": "i",
    "underline": "u",
    "strikethrough": "s",
    "code": "code",
    "pre": "pre",
    "text_link": "a",
}
_ACTION_LABEL = {
    "sent": "enviado / sent",
    "edited": "editado / edited",
    "deleted": "borrado / deleted",
}
_CHAT_LABEL = {
    "channel": "Canal / Channel",
    "supergroup": "Grupo / Group",
    "group": "Grupo / Group",
    "private": "Chat privado / Private chat",
}
_PAGE_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 46rem; color: #1b1b1b; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
ol { list-style: none; padding: 0; }
li { border: 1px solid #d0d7de; border-radius: 8px; padding: .6rem .8rem; margin: .6rem 0; }
li.edited { border-color: #9a6700; } li.deleted { opacity: .6; }
li.deleted .text { text-decoration: line-through; }
.meta { color: #57606a; font-size: .85rem; margin-bottom: .3rem; }
.text { white-space: pre-wrap; overflow-wrap: anywhere; }
"""


def entities_to_html(text: str, entities: Sequence[Mapping[str, Any]]) -> str:
    """Telegram's plain text and entities as safe HTML for a page.

    Every character of ``text`` is escaped. Bold, italic, underline,
    strikethrough, code, pre and links become tags, and only when they nest
    properly (Telegram's own HTML mode guarantees it; entities given as a list
    need not); links only to ``http://`` or ``https://`` addresses, with the
    address escaped. Anything else is shown as its text alone.
    """
    units = text.encode("utf-16-le")
    size = len(units) // 2
    candidates = []
    for entity in entities:
        offset, length = entity.get("offset"), entity.get("length")
        tag = _SAFE_TAG_OF_ENTITY.get(str(entity.get("type")))
        if tag is None or not isinstance(offset, int) or not isinstance(length, int):
            continue
        if offset < 0 or length <= 0 or offset + length > size:
            continue
        opening = f"<{tag}>"
        if tag == "a":
            url = str(entity.get("url", ""))
            if not url.lower().startswith(("http://", "https://")):
                continue
            opening = f'<a href="{escape(url, quote=True)}" rel="nofollow noopener noreferrer">'
        candidates.append((offset, offset + length, opening, f"</{tag}>"))
    candidates.sort(key=lambda c: (c[0], -c[1]))
    accepted: list[tuple[int, int, str, str]] = []
    ends: list[int] = []
    for candidate in candidates:
        while ends and ends[-1] <= candidate[0]:
            ends.pop()
        if ends and candidate[1] > ends[-1]:
            continue  # crosses an enclosing entity: shown as plain text
        accepted.append(candidate)
        ends.append(candidate[1])

    def segment(start: int, end: int) -> str:
        return escape(units[2 * start : 2 * end].decode("utf-16-le", errors="replace"))

    out: list[str] = []
    stack: list[tuple[int, int, str, str]] = []
    points = sorted({0, size, *(c[0] for c in accepted), *(c[1] for c in accepted)})
    pending = iter(accepted)
    upcoming = next(pending, None)
    for index, point in enumerate(points):
        while stack and stack[-1][1] == point:
            out.append(stack.pop()[3])
        while upcoming is not None and upcoming[0] == point:
            out.append(upcoming[2])
            stack.append(upcoming)
            upcoming = next(pending, None)
        if index + 1 < len(points):
            out.append(segment(point, points[index + 1]))
    out.extend(opened[3] for opened in reversed(stack))
    return "".join(out)


def render_page(view: Mapping[str, Any]) -> str:
    """The page of ``GET /``: ``view`` (see :meth:`FakeTelegramAPI.view`) for people."""
    title = "Telegram simulado / Fake Telegram"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="es"><head><meta charset="utf-8">',
        '<meta http-equiv="refresh" content="2">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{title}</title><style>{_PAGE_STYLE}</style></head><body>",
        f"<h1>{title}</h1>",
        f"<p>Bot: @{escape(str(view.get('bot', '')))} · Mensajes / Messages: "
        f"{int(view.get('count', 0))}</p>",
        "<p>Nada de esto sale de este equipo. / Nothing here leaves this computer.</p>",
    ]
    chats = view.get("chats", [])
    if not chats:
        parts.append("<p>Todavía no hay mensajes. / No messages yet.</p>")
    for entry in chats:
        chat = entry["chat"]
        label = _CHAT_LABEL.get(str(chat.get("type")), "Chat")
        name = chat.get("title") or chat.get("first_name") or str(chat.get("id"))
        if chat.get("username"):
            name = f"{name} (@{chat['username']})"
        parts.append(f"<section><h2>{label}: {escape(str(name))}</h2><ol>")
        for event in entry["messages"]:
            action = str(event.get("action"))
            when = datetime.fromtimestamp(int(event.get("date", 0)), UTC).strftime("%H:%M:%S")
            parts.append(
                f'<li class="{escape(action, quote=True)}"><div class="meta">'
                f"{escape(_ACTION_LABEL.get(action, action))} · "
                f"#{int(event.get('message_id', 0))} · {when} UTC</div>"
                f'<div class="text">'
                f"{entities_to_html(str(event.get('text', '')), event.get('entities', []))}"
                "</div></li>"
            )
        parts.append("</ol></section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _type_of(chat_id: int) -> str:
    if chat_id > 0:
        return "private"
    if str(chat_id).startswith("-100"):
        return "supergroup"
    return "group"


def _fault_error(fault: _Fault) -> ApiError:
    if fault.status == 429:
        seconds = fault.retry_after or 1
        return ApiError(429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds})
    return ApiError(fault.status, fault.description)


def _error_response(error: ApiError) -> web.Response:
    body: dict[str, Any] = {
        "ok": False,
        "error_code": error.code,
        "description": error.description,
    }
    if error.parameters:
        body["parameters"] = error.parameters
    return web.json_response(body, status=error.code)


async def _read_params(request: web.Request) -> dict[str, str]:
    """Every parameter as the text it arrived as (JSON bodies re-encoded per value)."""
    params: dict[str, str] = {key: value for key, value in request.query.items()}
    if request.method not in ("POST", "PUT"):
        return params
    content_type = request.content_type
    if content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "Bad Request: can't parse JSON body") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Bad Request: JSON body must be an object")
        for key, value in body.items():
            params[key] = value if isinstance(value, str) else json.dumps(value)
    elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, str):
                params[key] = value
    return params


def _decode(method: str, raw: dict[str, str]) -> dict[str, Any]:
    """Form values as the Bot API reads them, by each parameter's documented type."""
    types = METHOD_PARAMS[method]
    decoded: dict[str, Any] = {}
    for name, text in raw.items():
        accepted = types.get(name)
        if accepted is None:
            continue  # the Bot API ignores parameters it does not know
        decoded[name] = _decode_value(name, text, accepted)
    return decoded


def _decode_value(name: str, text: str, accepted: tuple[str, ...]) -> Any:
    if "Integer" in accepted:
        try:
            return int(text)
        except ValueError:
            if "String" in accepted:
                return text
            raise ApiError(400, f'Bad Request: invalid value for parameter "{name}"') from None
    if accepted == ("String",):
        return text
    if accepted == ("Boolean",):
        lowered = text.strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0", ""):
            return False
        raise ApiError(400, f'Bad Request: invalid value for parameter "{name}"')
    try:
        return json.loads(text)
    except ValueError:
        raise ApiError(
            400, f"Bad Request: can't parse {name.replace('_', ' ')} JSON object"
        ) from None
