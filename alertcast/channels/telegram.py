"""The ``telegram`` channel: alerts as Telegram messages from one bot, via python-telegram-bot.

A target is a chat id (``"123456789"`` for a person, ``"-100..."`` for a
supergroup or channel, another negative number for a basic group) or a public
channel's ``@username``: one post to a channel reaches every follower, which
is how a large audience is best served within the bot's limits.

What is sent, and why:

* **HTML parse mode.** The renderer produces Telegram HTML (escaped text and
  the tags Telegram accepts), so each part goes out with
  ``parse_mode="HTML"``.
* **Several parts → several messages**, in order; every part after the first
  is a reply to the first, so the parts stay together in a busy group. The
  receipt's id is the list of Telegram message ids, comma-separated, first
  message first: ``"123"`` for one message, ``"123,124"`` for two. Message
  ids are only unique inside a chat; the target completes them. Follow-ups
  read the same list back (:func:`message_ids`).
* **Follow-ups** (:class:`alertcast.ports.FollowUpChannel`): an Update
  *edits* the earlier messages in place (``editMessageText``), so nobody gets
  a second notification for a correction; a Cancel is sent as a *reply* to
  the first earlier message, so whoever scrolls back to the warning sees it
  was called off; ``delete`` removes earlier messages (``deleteMessage``).
  An Update with more parts than the earlier message had edits what exists
  and sends the rest as replies to the first (logged as
  ``telegram.edit_extended``); one with fewer edits what it needs and deletes
  the leftovers, which would otherwise still show the old text.
* **Paid broadcast** (``options.paid_broadcast = true``) sends with
  ``allow_paid_broadcast`` (Bot API 7.11): up to 1,000 messages per second for
  0.1 Telegram Stars each, from the bot's balance. Raise ``rate_per_s`` with
  it, or the rate limiter still paces at the free 30 per second.
* **Link previews** can be turned off (``options.disable_link_preview``).
* **Acknowledgement buttons.** A message whose ``extra`` has ``ack`` true and
  an ``alert_id``, sent to a person's private chat (a positive id), carries
  two inline buttons under its last part, "Estoy a salvo" / "Necesito ayuda"
  (in English when the message is), whose callback data
  ``ack:<alert_id>:safe|need_help`` the citizens' bot records: authorities
  learn who is safe and who needs help. Groups and channels get no buttons
  (one person's answer would speak for everyone). An edit keeps them.

Failures are classified in one function, :func:`classify`. Two cases need care:

* **A group upgraded to a supergroup** (``ChatMigrated``): Telegram names the
  new chat id and the message must go there. The channel re-sends at once to
  the new id (the only case where a channel sends twice by itself: the first
  request was refused, so nothing is duplicated), remembers the new id for
  the rest of the process and calls :attr:`TelegramChannel.on_chat_migrated`
  with ``(old_target, new_target)`` so a subscriber store can update its row.
* **A request that may have arrived.** python-telegram-bot cannot always say
  whether a failed request left: it raises ``TimedOut`` for a slow answer
  and ``NetworkError`` for a broken connection alike. The cause it chains
  tells them apart where it can: a failure to connect, or a wait for a free
  connection of the pool, means nothing was sent (``Transient``). Anything
  else that happened after the connection was open may hide a delivered
  message and is ``SentButUnknown``, so it is not silently sent twice. An
  HTTP error answer (5xx) means Telegram answered and did not take it:
  ``Transient``.

A multi-part message interrupted after some parts were sent does not send
those parts again when retried by the same process: the ids already sent are
kept (for a bounded number of messages) and the retry continues with the next
part. After a restart the whole message is sent again.

The bot token comes from the environment variable named in ``[secrets]
token``; it is part of every request URL, so this module keeps the HTTP
client's request log (which prints URLs) at WARNING and strips the token
from every error text.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import warnings
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import structlog
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    ReplyParameters,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from alertcast.errors import (
    ChannelError,
    ConfigError,
    ConfigProblem,
    Permanent,
    RateLimited,
    RecipientGone,
    SentButUnknown,
    Transient,
)
from alertcast.ports import OutboundMessage, Receipt

if TYPE_CHECKING:
    from alertcast.channels.registry import ChannelContext
    from alertcast.config import ChannelConfig

log = structlog.get_logger(__name__)

# python-telegram-bot warns, on every flood-control error it builds, that ``retry_after``
# will become a timedelta; this module reads either form, so that warning says nothing here.
warnings.filterwarnings("ignore", message=r".*`retry_after`.*", category=PTBDeprecationWarning)

T = TypeVar("T")

DEFAULT_API_URL = "https://api.telegram.org"
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_POOL_SIZE = 64
"""Connections kept to the Bot API: more than the worker's default concurrency (32)."""

PARTIAL_MEMORY = 10_000
"""Multi-part messages whose already-sent parts are remembered for a retry."""

ChatMigratedHook = Callable[[str, str], Awaitable[None]]
"""Called with (old target, new target) when a group turned out to be a supergroup now."""

_CHAT_ID = re.compile(r"-?[1-9][0-9]{0,18}")
_USERNAME = re.compile(r"@[A-Za-z][A-Za-z0-9_]{3,31}")
_TOKEN = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{20,}")

# BadRequest descriptions (lower case) that mean the rendered text itself is wrong.
_RENDERING = (
    "can't parse entities",
    "message is too long",
    "message text is empty",
    "text must be non-empty",
    "entities_too_long",
)
# BadRequest descriptions that mean the chat cannot be written to any more.
_GONE = (
    "chat not found",
    "user not found",
    "peer_id_invalid",
    "chat_write_forbidden",
    "not enough rights to send",
    "have no rights to send",
    "need administrator rights",
    "group chat was deactivated",
)
# Failures of the HTTP client that happen before any byte of the request is written.
_NEVER_LEFT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.ProxyError,
)


# --------------------------------------------------------------------------- targets and ids


def chat_ref(target: str) -> int | str:
    """The Bot API ``chat_id`` of a target: an integer id, or ``@username`` as given.

    A target that is neither cannot reach anyone, whatever is retried:
    :class:`~alertcast.errors.Permanent`.
    """
    text = target.strip()
    if _CHAT_ID.fullmatch(text):
        return int(text)
    if _USERNAME.fullmatch(text):
        return text
    raise Permanent(f"{target!r} is not a Telegram chat id or @channelusername")


def group_key(target: str) -> str | None:
    """The target's group for the per-group rate limit: every group or supergroup chat.

    Group and supergroup ids are negative; a channel (``@name``) and a person
    are not groups. Pass it as ``group_of`` when planning Telegram deliveries.
    """
    text = target.strip()
    return text if text.startswith("-") and _CHAT_ID.fullmatch(text) else None


def encode_ids(ids: Sequence[int]) -> str:
    """A receipt id for the messages ``ids`` (first message first): ``"123,124"``."""
    return ",".join(str(i) for i in ids)


def message_ids(provider_message_id: str) -> list[int]:
    """The message ids in a receipt id written by :func:`encode_ids`."""
    try:
        ids = [int(part) for part in provider_message_id.split(",")]
    except ValueError:
        raise Permanent(f"{provider_message_id!r} is not a Telegram message id list") from None
    if not ids or any(i <= 0 for i in ids):
        raise Permanent(f"{provider_message_id!r} is not a Telegram message id list")
    return ids


# --------------------------------------------------------------------------- failures


def _retry_after_s(error: RetryAfter) -> float:
    # An int or a timedelta, depending on PTB_TIMEDELTA: both are read.
    value: Any = error.retry_after
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    return max(0.0, seconds)


def _never_left(error: BaseException) -> bool:
    return isinstance(error.__cause__, _NEVER_LEFT)


def classify(error: BaseException, *, secret: str | None = None) -> ChannelError:
    """The one place Telegram failures become error classes.

    ``secret`` (the bot token) is removed from every text, as some client
    errors quote the request URL. ``ChatMigrated`` reaches here only when
    the re-send to the new chat migrated again: ``Transient``.
    """
    error_class = _classify(error)
    if secret and secret in str(error_class):
        cleaned = str(error_class).replace(secret, "<token>")
        if isinstance(error_class, RateLimited):
            return RateLimited(cleaned, error_class.retry_after)
        return type(error_class)(cleaned)
    return error_class


def _classify(error: BaseException) -> ChannelError:
    if isinstance(error, ChannelError):
        return error
    if isinstance(error, RetryAfter):
        wait = _retry_after_s(error)
        return RateLimited(f"Telegram flood control: retry after {wait:g} s", wait)
    if isinstance(error, Forbidden):
        return RecipientGone(f"Telegram refuses this chat: {error.message}")
    if isinstance(error, InvalidToken):
        return Permanent(
            "Telegram refused the bot token (unauthorized): check the variable named by "
            "[secrets] token"
        )
    if isinstance(error, ChatMigrated):
        return Transient(f"the chat moved twice, now to {error.new_chat_id}")
    if isinstance(error, BadRequest):
        text = error.message.lower()
        if any(marker in text for marker in _RENDERING):
            return Permanent(
                f"rendering error: Telegram cannot take the rendered text ({error.message}); "
                "check the channel's template and limits"
            )
        if any(marker in text for marker in _GONE):
            return RecipientGone(f"Telegram cannot write to this chat: {error.message}")
        return Permanent(f"Telegram refused the request: {error.message}")
    if isinstance(error, TimedOut):
        if _never_left(error):
            return Transient(f"Telegram request not sent: {error.message}")
        return SentButUnknown(f"no answer from Telegram after sending: {error.message}")
    if isinstance(error, NetworkError):
        cause = error.__cause__
        if cause is None or isinstance(cause, TelegramError):
            # Telegram (or a proxy in front of it) answered with an HTTP error status.
            return Transient(f"Telegram answered with an error: {error.message}")
        if _never_left(error):
            return Transient(f"cannot reach Telegram: {error.message}")
        return SentButUnknown(f"the connection to Telegram failed after sending: {error.message}")
    if isinstance(error, Conflict):
        return Transient(f"Telegram reports a conflict: {error.message}")
    if isinstance(error, TelegramError):
        return SentButUnknown(f"unexpected answer from Telegram: {error.message}")
    return SentButUnknown(f"unexpected failure while sending to Telegram: {type(error).__name__}")


def _is_not_modified(error: BadRequest) -> bool:
    return "message is not modified" in error.message.lower()


def _after_parts(error: ChannelError, ids: Sequence[int], total: int) -> ChannelError:
    """``error`` with a note of the parts of a multi-part message already sent."""
    note = (
        f"{error} (parts 1-{len(ids)} of {total} were sent as messages {encode_ids(ids)}; "
        "a retry by this process sends only the rest)"
    )
    if isinstance(error, RateLimited):
        return RateLimited(note, error.retry_after)
    return type(error)(note)


# --------------------------------------------------------------------------- channel


class TelegramChannel:
    """One bot. ``on_chat_migrated`` is an optional async hook ``(old, new)`` (see module doc)."""

    kind = "telegram"
    follow_ups = frozenset({"edit", "reply", "delete"})

    def __init__(
        self,
        name: str,
        token: str,
        *,
        api_url: str = DEFAULT_API_URL,
        paid_broadcast: bool = False,
        disable_link_preview: bool = False,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        pool_size: int = DEFAULT_POOL_SIZE,
        on_chat_migrated: ChatMigratedHook | None = None,
    ) -> None:
        if not token:
            raise ValueError("a bot token is required")
        if timeout_s <= 0 or pool_size < 1:
            raise ValueError("timeout_s must be positive and pool_size at least 1")
        self._name = name
        self._token = token
        self.api_url = api_url.rstrip("/")
        self.paid_broadcast = paid_broadcast
        self.disable_link_preview = disable_link_preview
        self.timeout_s = timeout_s
        self.pool_size = pool_size
        self.on_chat_migrated = on_chat_migrated
        self._bot: Bot | None = None
        self._requests: tuple[HTTPXRequest, ...] = ()
        self._migrated: dict[str, int] = {}
        self._partial: OrderedDict[tuple[str, ...], list[int]] = OrderedDict()

    @property
    def name(self) -> str:
        return self._name

    def group_of(self, target: str) -> str | None:
        """The per-group rate-limit key of a target (the planner stores it on the row)."""
        return group_key(target)

    def __repr__(self) -> str:  # the token never appears in a repr or a log
        return f"TelegramChannel(name={self._name!r}, api_url={self.api_url!r})"

    def follow_up_for(self, msg_type: str) -> str | None:
        if msg_type == "Update":
            return "edit"
        if msg_type == "Cancel":
            return "reply"
        return None

    # ------------------------------------------------------------------ client

    def _client(self) -> Bot:
        """The bot, built on first use: building it opens no connection."""
        if self._bot is None:
            # httpx logs every request URL at INFO, and the URL carries the token.
            logging.getLogger("httpx").setLevel(logging.WARNING)
            timeout = self.timeout_s
            send_request = HTTPXRequest(
                connection_pool_size=self.pool_size,
                read_timeout=timeout,
                write_timeout=timeout,
                connect_timeout=timeout,
                pool_timeout=timeout,
            )
            updates_request = HTTPXRequest(connection_pool_size=1, read_timeout=timeout)
            self._requests = (send_request, updates_request)
            self._bot = Bot(
                self._token,
                base_url=f"{self.api_url}/bot",
                base_file_url=f"{self.api_url}/file/bot",
                request=send_request,
                get_updates_request=updates_request,
            )
        return self._bot

    async def aclose(self) -> None:
        requests, self._requests, self._bot = self._requests, (), None
        if requests:
            await asyncio.gather(*(request.shutdown() for request in requests))

    # ------------------------------------------------------------------ calls

    def _chat(self, target: str) -> int | str:
        migrated = self._migrated.get(target)
        return migrated if migrated is not None else chat_ref(target)

    async def _call(self, target: str, action: Callable[[int | str], Awaitable[T]]) -> T:
        """Run one Bot API call for ``target``; follow a group's move to a supergroup once."""
        chat = self._chat(target)
        try:
            return await action(chat)
        except ChatMigrated as exc:
            new_chat = int(exc.new_chat_id)
            self._migrated[target] = new_chat
            log.info("telegram.chat_migrated", channel=self._name, old=target, new=new_chat)
            await self._notify_migrated(target, str(new_chat))
            try:
                return await action(new_chat)
            except Exception as again:
                raise classify(again, secret=self._token) from again
        except Exception as exc:
            raise classify(exc, secret=self._token) from exc

    async def _notify_migrated(self, old: str, new: str) -> None:
        if self.on_chat_migrated is None:
            return
        try:
            await self.on_chat_migrated(old, new)
        except Exception as exc:  # the message still goes out; the store can catch up later
            log.warning(
                "telegram.chat_migrated_hook_failed",
                channel=self._name,
                old=old,
                new=new,
                error=f"{type(exc).__name__}: {exc}",
            )

    def _preview(self) -> LinkPreviewOptions | None:
        return LinkPreviewOptions(is_disabled=True) if self.disable_link_preview else None

    async def _send_one(
        self,
        target: str,
        text: str,
        reply_to: int | None,
        markup: InlineKeyboardMarkup | None = None,
    ) -> Message:
        bot = self._client()
        reply = (
            ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
            if reply_to is not None
            else None
        )

        async def action(chat: int | str) -> Message:
            return await bot.send_message(
                chat,
                text,
                parse_mode=ParseMode.HTML,
                link_preview_options=self._preview(),
                reply_parameters=reply,
                allow_paid_broadcast=True if self.paid_broadcast else None,
                reply_markup=markup,
            )

        return await self._call(target, action)

    async def _send_parts(
        self,
        parts: Sequence[str],
        target: str,
        *,
        reply_to: int | None,
        key: tuple[str, ...],
        already: Sequence[int] = (),
        markup: InlineKeyboardMarkup | None = None,
    ) -> list[int]:
        """Send ``parts`` in order, each after the first replying to the first; their ids.

        ``already`` are ids that precede these parts (an edited message whose
        extra parts are being added); the parts then reply to ``already[0]``.
        ``markup`` (inline buttons) goes under the last part.
        """
        ids = self._partial.pop(key, [])
        for index in range(len(ids), len(parts)):
            anchor = reply_to if index == 0 and not already else [*already, *ids][0]
            try:
                last = index == len(parts) - 1
                message = await self._send_one(
                    target, parts[index], anchor, markup if last else None
                )
            except ChannelError as exc:
                if ids:
                    self._remember(key, ids)
                    raise _after_parts(exc, ids, len(parts)) from exc
                raise
            ids.append(message.message_id)
        return ids

    def _remember(self, key: tuple[str, ...], ids: list[int]) -> None:
        self._partial[key] = ids
        self._partial.move_to_end(key)
        while len(self._partial) > PARTIAL_MEMORY:
            self._partial.popitem(last=False)

    # ------------------------------------------------------------------ Channel

    async def send(self, message: OutboundMessage, target: str) -> Receipt:
        parts = _parts(message)
        ids = await self._send_parts(
            parts,
            target,
            reply_to=None,
            key=("send", target, _digest(parts)),
            markup=ack_markup(message, target),
        )
        return Receipt(provider_message_id=encode_ids(ids))

    async def edit(
        self, provider_message_id: str, message: OutboundMessage, target: str
    ) -> Receipt:
        """Edit the earlier messages in place with the new parts (see the module doc)."""
        earlier = message_ids(provider_message_id)
        parts = _parts(message)
        bot = self._client()
        markup = ack_markup(message, target)
        kept: list[int] = []
        for index, (message_id, text) in enumerate(zip(earlier, parts, strict=False)):
            buttons_here = markup if index == len(parts) - 1 else None

            async def action(
                chat: int | str,
                message_id: int = message_id,
                text: str = text,
                buttons: InlineKeyboardMarkup | None = buttons_here,
            ) -> None:
                try:
                    await bot.edit_message_text(
                        text,
                        chat_id=chat,
                        message_id=message_id,
                        parse_mode=ParseMode.HTML,
                        link_preview_options=self._preview(),
                        reply_markup=buttons,
                    )
                except BadRequest as exc:
                    if not _is_not_modified(exc):  # already reads so: an earlier try did it
                        raise

            try:
                await self._call(target, action)
            except Permanent:
                if index == 0:
                    raise  # the dispatcher sends the whole message plainly instead
                break  # later parts gone or not editable: they are sent as replies below
            kept.append(message_id)
        rest = parts[len(kept) :]
        if rest:
            added = await self._send_parts(
                rest,
                target,
                reply_to=None,
                key=("edit", target, provider_message_id, _digest(parts)),
                already=kept,
                markup=markup,
            )
            log.info(
                "telegram.edit_extended",
                channel=self._name,
                edited=len(kept),
                added=len(added),
            )
            kept.extend(added)
        leftovers = earlier[len(parts) :]
        if leftovers:
            await self._delete_quietly(leftovers, target)
        return Receipt(provider_message_id=encode_ids(kept))

    async def reply(
        self, provider_message_id: str, message: OutboundMessage, target: str
    ) -> Receipt:
        """Send ``message`` as a reply to the first earlier message (its later parts follow)."""
        first = message_ids(provider_message_id)[0]
        parts = _parts(message)
        ids = await self._send_parts(
            parts,
            target,
            reply_to=first,
            key=("reply", target, provider_message_id, _digest(parts)),
        )
        return Receipt(provider_message_id=encode_ids(ids))

    async def delete(self, provider_message_id: str, target: str) -> None:
        """Delete every earlier message; the first failure is raised after trying them all."""
        failure: ChannelError | None = None
        for message_id in message_ids(provider_message_id):
            try:
                await self._delete_one(message_id, target)
            except ChannelError as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    async def _delete_one(self, message_id: int, target: str) -> None:
        bot = self._client()

        async def action(chat: int | str) -> bool:
            return await bot.delete_message(chat, message_id)

        await self._call(target, action)

    async def _delete_quietly(self, message_ids_: Sequence[int], target: str) -> None:
        for message_id in message_ids_:
            try:
                await self._delete_one(message_id, target)
            except ChannelError as exc:
                log.warning(
                    "telegram.leftover_not_deleted",
                    channel=self._name,
                    message_id=message_id,
                    error=f"{type(exc).__name__}: {exc}",
                )


ACK_LABELS: dict[str, tuple[str, str]] = {
    "es": ("Estoy a salvo", "Necesito ayuda"),
    "en": ("I am safe", "I need help"),
}
"""The two acknowledgement buttons, by language (Spanish unless the message is English)."""


def ack_markup(message: OutboundMessage, target: str) -> InlineKeyboardMarkup | None:
    """The "safe / need help" buttons for ``message`` to ``target``, or None.

    Only for a message that asks for them (``extra["ack"]``) and names its
    alert (``extra["alert_id"]``), sent to a private chat: the answer is one
    person's, so a group or channel never gets them.
    """
    extra = message.extra
    alert_id = extra.get("alert_id")
    if not extra.get("ack") or alert_id is None or not _CHAT_ID.fullmatch(target):
        return None
    if int(target) <= 0:
        return None
    language = "en" if (message.language or "").lower().startswith("en") else "es"
    safe, need_help = ACK_LABELS[language]
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(safe, callback_data=f"ack:{alert_id}:safe"),
                InlineKeyboardButton(need_help, callback_data=f"ack:{alert_id}:need_help"),
            ]
        ]
    )


def _parts(message: OutboundMessage) -> tuple[str, ...]:
    parts = tuple(part for part in message.parts if part.strip())
    if not parts:
        raise Permanent("rendering error: the message has no text to send")
    return parts


def _digest(parts: Sequence[str]) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- configuration


def from_config(channel: ChannelConfig, context: ChannelContext) -> TelegramChannel:
    """The bot of ``channels/NAME.toml``.

    ``[secrets] token`` names the variable holding the bot token. Options:
    ``api_url`` (default the public Bot API; a local Bot API server or a test
    fake), ``paid_broadcast``, ``disable_link_preview`` (booleans), ``timeout_s``
    and ``pool_size``. ``target`` and ``language`` are read by routing and
    rendering, rate options by the rate limiter.
    """
    file = str(channel.file)
    problems: list[ConfigProblem] = []
    options = channel.options
    api_url = options.get("api_url", DEFAULT_API_URL)
    if not isinstance(api_url, str) or not api_url.startswith(("https://", "http://")):
        problems.append(ConfigProblem(file, "options.api_url", "must be an http(s) URL"))
    flags: dict[str, bool] = {}
    for key in ("paid_broadcast", "disable_link_preview"):
        value = options.get(key, False)
        if not isinstance(value, bool):
            problems.append(ConfigProblem(file, f"options.{key}", "must be true or false"))
        flags[key] = value is True
    timeout = options.get("timeout_s", DEFAULT_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        problems.append(ConfigProblem(file, "options.timeout_s", "must be a number > 0"))
        timeout = DEFAULT_TIMEOUT_S
    pool = options.get("pool_size", DEFAULT_POOL_SIZE)
    if isinstance(pool, bool) or not isinstance(pool, int) or pool < 1:
        problems.append(ConfigProblem(file, "options.pool_size", "must be a whole number ≥ 1"))
        pool = DEFAULT_POOL_SIZE
    target = options.get("target")
    if target is not None:
        try:
            chat_ref(str(target))
        except Permanent:
            problems.append(
                ConfigProblem(file, "options.target", "must be a chat id or a @channelusername")
            )
    env_name = channel.secrets.get("token")
    token = channel.secret("token")
    if env_name is None:
        problems.append(
            ConfigProblem(file, "secrets.token", 'is required (e.g. token = "TELEGRAM_BOT_TOKEN")')
        )
    elif not token:
        problems.append(
            ConfigProblem(file, "secrets.token", f"environment variable {env_name} is not set")
        )
    elif not _TOKEN.fullmatch(token.strip()):
        # Never echo the value.
        problems.append(
            ConfigProblem(
                file,
                "secrets.token",
                f"{env_name} does not hold a bot token (digits, a colon, then letters)",
            )
        )
    if problems:
        raise ConfigError(problems)
    assert token is not None
    return TelegramChannel(
        channel.name,
        token.strip(),
        api_url=str(api_url),
        paid_broadcast=flags["paid_broadcast"],
        disable_link_preview=flags["disable_link_preview"],
        timeout_s=float(timeout),
        pool_size=int(pool),
    )
