"""The citizens' conversation: subscribing, changing one's choices, answering alerts, leaving.

Each handler is one thing a person does (a command, a button, a typed area
name, a shared location). What a person has chosen but not yet confirmed is
kept per chat in memory (``chat_data["draft"]``): losing it on a restart only
means starting ``/start`` again, while everything confirmed lives in the
subscriber store, the one place that remembers people. Only the store is
asked about addresses; the bot passes the chat id as the address and never
logs it.

Every change to a subscription is written through the store, which audits
it; the texts shown at opt-in and opt-out are passed with it, word for word.
"""

from __future__ import annotations

import inspect
from datetime import time
from typing import Any

import structlog
from telegram import Message, Update
from telegram.constants import ChatType
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from alertcast.areas import AreaCatalogue
from alertcast.bot import keyboards
from alertcast.bot.ports import RecentAlerts
from alertcast.bot.texts import LANGUAGE_NAMES, consent_text, language_of, text, topic_name
from alertcast.subscribers.model import ACK_KINDS, LANGUAGES, TOPICS, QuietHours, Subscriber
from alertcast.subscribers.store import SubscriberStore

log = structlog.get_logger(__name__)

SOURCE = "telegram-bot"
"""Who the store's audit records name for changes people make here."""

ENGLISH_COMMANDS = frozenset(
    {"help", "privacy", "language", "topics", "area", "quiet", "stop", "myalerts"}
)
"""Commands that are English aliases: a person not yet subscribed is answered in English."""

Context = ContextTypes.DEFAULT_TYPE


class Conversation:
    """The handlers of one bot, bound to its store, catalogue and channel name."""

    def __init__(
        self,
        channel: str,
        store: SubscriberStore,
        catalogue: AreaCatalogue,
        *,
        recent_alerts: RecentAlerts | None = None,
    ) -> None:
        self.channel = channel
        self.store = store
        self.catalogue = catalogue
        self.recent_alerts = recent_alerts

    def install(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Register every handler; only private chats are served (a group is not a person)."""
        private = filters.ChatType.PRIVATE
        commands = [
            (["start"], self.start),
            (["misalertas", "myalerts"], self.my_alerts),
            (["zona", "area"], self.change_area),
            (["temas", "topics"], self.change_topics),
            (["idioma", "language"], self.change_language),
            (["silencio", "quiet"], self.change_quiet),
            (["baja", "stop"], self.leave),
            (["ayuda", "help"], self.help),
            (["privacidad", "privacy"], self.privacy),
        ]
        for names, callback in commands:
            app.add_handler(CommandHandler(names, callback, filters=private))
        app.add_handler(MessageHandler(private & filters.LOCATION, self.location))
        app.add_handler(MessageHandler(private & filters.TEXT & ~filters.COMMAND, self.typed))
        app.add_handler(MessageHandler(private & filters.COMMAND, self.help))
        app.add_handler(CallbackQueryHandler(self.button))
        app.add_error_handler(self.failed)

    # ------------------------------------------------------------------ helpers

    async def _subscriber(self, chat_id: int) -> Subscriber | None:
        subscriber = await self.store.get(self.channel, str(chat_id))
        if subscriber is not None:
            await self.store.touch(subscriber.id)
        return subscriber

    @staticmethod
    def _draft(context: Context) -> dict[str, Any]:
        data = context.chat_data
        if data is None:  # pragma: no cover - PTB always gives private chats chat_data
            return {}
        draft: dict[str, Any] = data.setdefault("draft", {})
        return draft

    @staticmethod
    def _command_language(message: Message) -> str | None:
        """English when the person typed an English alias; None otherwise."""
        first = (message.text or "").split(maxsplit=1)[0] if message.text else ""
        command = first.lstrip("/").split("@", 1)[0].lower()
        return "en" if command in ENGLISH_COMMANDS else None

    async def _language(
        self, context: Context, subscriber: Subscriber | None, message: Message | None = None
    ) -> str:
        if subscriber is not None:
            return language_of(subscriber.language)
        draft = self._draft(context)
        if "language" in draft:
            return language_of(str(draft["language"]))
        if message is not None:
            return self._command_language(message) or "es"
        return "es"

    async def _area_label(self, areas: tuple[str, ...] | list[str], point: Any, lang: str) -> str:
        names: list[str] = []
        for code in areas:
            area = await self.catalogue.get(code)
            names.append(area.name if area is not None else code)
        if point is not None:
            lat, lon = point
            names.append(text(lang, "point", lat=float(lat), lon=float(lon)))
        return ", ".join(names) if names else text(lang, "no_point")

    @staticmethod
    def _topics_label(topics: Any, lang: str) -> str:
        chosen = [t for t in TOPICS if t in set(topics)]
        return ", ".join(topic_name(t, lang) for t in chosen) if chosen else text(lang, "none")

    def _topics_prompt(self, topics: Any, lang: str) -> str:
        return f"{text(lang, 'choose_topics')}\n\n{self._topics_label(topics, lang)}"

    async def _settings(self, subscriber: Subscriber) -> str:
        lang = language_of(subscriber.language)
        quiet = subscriber.quiet_hours
        return text(
            lang,
            "settings",
            language=LANGUAGE_NAMES.get(lang, lang),
            topics=self._topics_label(subscriber.topics, lang),
            area=await self._area_label(subscriber.areas, subscriber.point, lang),
            quiet=(
                f"{quiet.start:%H:%M}–{quiet.end:%H:%M}"
                if quiet is not None
                else text(lang, "quiet_none")
            ),
        )

    # ------------------------------------------------------------------ commands

    async def start(self, update: Update, context: Context) -> None:
        """Welcome, consent, then the choices one after the other."""
        message = update.effective_message
        if message is None:
            return
        data = context.chat_data
        if data is not None:
            data["draft"] = {
                "mode": "onboarding",
                "step": "language",
                "language": "es",
                "consent": consent_text("es"),
                "topics": [],
                "areas": [],
                "point": None,
            }
        await message.reply_text(consent_text("es"))
        await message.reply_text(text("es", "choose_language"), reply_markup=keyboards.languages())

    async def my_alerts(self, update: Update, context: Context) -> None:
        found = await self._require(update, context)
        if found is None:
            return
        message, subscriber = found
        lang = language_of(subscriber.language)
        lines = [await self._settings(subscriber), ""]
        recent: list[str] = []
        if self.recent_alerts is not None:
            answer = self.recent_alerts(subscriber)
            recent = list(await answer) if inspect.isawaitable(answer) else list(answer)
        if recent:
            lines.append(text(lang, "recent_header"))
            lines.extend(f"• {line}" for line in recent)
        else:
            lines.append(text(lang, "recent_none"))
        await message.reply_text("\n".join(lines))

    async def _require(self, update: Update, context: Context) -> tuple[Message, Subscriber] | None:
        """The message and the subscriber, or None after telling a stranger to /start."""
        message = update.effective_message
        chat = update.effective_chat
        if message is None or chat is None:
            return None
        subscriber = await self._subscriber(chat.id)
        if subscriber is None:
            lang = await self._language(context, None, message)
            await message.reply_text(text(lang, "not_subscribed"))
            return None
        return message, subscriber

    async def change_area(self, update: Update, context: Context) -> None:
        found = await self._require(update, context)
        if found is None:
            return
        message, subscriber = found
        draft = self._draft(context)
        draft.clear()
        draft.update(mode="edit", step="area", language=subscriber.language)
        await message.reply_text(text(subscriber.language, "choose_area"))

    async def change_topics(self, update: Update, context: Context) -> None:
        found = await self._require(update, context)
        if found is None:
            return
        message, subscriber = found
        draft = self._draft(context)
        draft.clear()
        topics = sorted(subscriber.topics)
        draft.update(mode="edit", step="topics", language=subscriber.language, topics=topics)
        lang = language_of(subscriber.language)
        await message.reply_text(
            self._topics_prompt(topics, lang), reply_markup=keyboards.topics(topics, lang)
        )

    async def change_language(self, update: Update, context: Context) -> None:
        found = await self._require(update, context)
        if found is None:
            return
        message, _ = found
        self._draft(context).clear()
        await message.reply_text(text("es", "choose_language"), reply_markup=keyboards.languages())

    async def change_quiet(self, update: Update, context: Context) -> None:
        found = await self._require(update, context)
        if found is None:
            return
        message, subscriber = found
        lang = language_of(subscriber.language)
        await message.reply_text(
            text(lang, "choose_quiet"), reply_markup=keyboards.quiet_hours(lang)
        )

    async def leave(self, update: Update, context: Context) -> None:
        found = await self._require(update, context)
        if found is None:
            return
        message, subscriber = found
        lang = language_of(subscriber.language)
        await message.reply_text(text(lang, "leave_confirm"), reply_markup=keyboards.leave(lang))

    async def help(self, update: Update, context: Context) -> None:
        await self._explain(update, context, "help")

    async def privacy(self, update: Update, context: Context) -> None:
        await self._explain(update, context, "privacy")

    async def _explain(self, update: Update, context: Context, name: str) -> None:
        """Answer with the text ``name``, to anyone, in the language asked for or known."""
        message = update.effective_message
        chat = update.effective_chat
        if message is None or chat is None:
            return
        lang = self._command_language(message) or await self._language(
            context, await self._subscriber(chat.id)
        )
        await message.reply_text(text(lang, name))

    # ------------------------------------------------------------------ typed text, location

    async def typed(self, update: Update, context: Context) -> None:
        """A typed area name while choosing an area; otherwise a pointer to the help."""
        message = update.effective_message
        chat = update.effective_chat
        if message is None or chat is None or message.text is None:
            return
        draft = await self._choosing_area(context, message, chat.id)
        if draft is None:
            return
        lang = _draft_language(draft)
        query = message.text.strip()[:100]
        draft["query"] = query
        reply, markup = await self._area_page(query, 0, lang)
        await message.reply_text(reply, reply_markup=markup)

    async def _choosing_area(
        self, context: Context, message: Message, chat_id: int
    ) -> dict[str, Any] | None:
        """The draft while an area is being chosen; else None, after pointing to the help."""
        draft = self._draft(context)
        if draft.get("step") == "area":
            return draft
        lang = await self._language(context, await self._subscriber(chat_id))
        await message.reply_text(text(lang, "unknown"))
        return None

    async def _area_page(self, query: str, offset: int, lang: str) -> tuple[str, Any]:
        found, total = await self.catalogue.search(query, offset=offset, limit=keyboards.AREA_PAGE)
        if not found:
            return text(lang, "area_none", query=query), None
        reply = text(
            lang,
            "area_results",
            query=query,
            first=offset + 1,
            last=offset + len(found),
            total=total,
        )
        return reply, keyboards.areas(found, offset, total)

    async def location(self, update: Update, context: Context) -> None:
        message = update.effective_message
        chat = update.effective_chat
        if message is None or chat is None or message.location is None:
            return
        draft = await self._choosing_area(context, message, chat.id)
        if draft is None:
            return
        point = (float(message.location.latitude), float(message.location.longitude))
        lang = _draft_language(draft)
        await message.reply_text(text(lang, "point_received"))
        await self._place_chosen(message, chat.id, context, areas=[], point=point)

    async def _place_chosen(
        self,
        message: Message,
        chat_id: int,
        context: Context,
        *,
        areas: list[str],
        point: tuple[float, float] | None,
    ) -> None:
        """An area or a point was chosen: on to the summary, or saved at once when editing."""
        draft = self._draft(context)
        lang = _draft_language(draft)
        if draft.get("mode") == "onboarding":
            draft.update(step="confirm", areas=areas, point=point)
            summary = text(
                lang,
                "summary",
                language=LANGUAGE_NAMES[lang],
                topics=self._topics_label(draft.get("topics", []), lang),
                area=await self._area_label(areas, point, lang),
            )
            await message.reply_text(summary, reply_markup=keyboards.confirm(lang))
            return
        subscriber = await self._subscriber(chat_id)
        draft.clear()
        if subscriber is None:
            await message.reply_text(text(lang, "not_subscribed"))
            return
        updated = await self.store.update(
            subscriber.id,
            areas=areas,
            point=point,
            clear_point=point is None,
            actor=SOURCE,
        )
        await message.reply_text(f"{text(lang, 'updated')}\n\n{await self._settings(updated)}")

    # ------------------------------------------------------------------ buttons

    async def button(self, update: Update, context: Context) -> None:
        """Every inline button: the callback data's verb picks the action."""
        query = update.callback_query
        chat = update.effective_chat
        if query is None or query.data is None:
            return
        chat_id = chat.id if chat is not None else query.from_user.id
        if chat is not None and chat.type != ChatType.PRIVATE:
            await query.answer()
            return
        verb, _, argument = query.data.partition(":")
        handler = {
            "lang": self._on_language,
            "topic": self._on_topic,
            "topics": self._on_topics_done,
            "areas": self._on_area_page,
            "area": self._on_area,
            "confirm": self._on_confirm,
            "quiet": self._on_quiet,
            "leave": self._on_leave,
            "ack": self._on_ack,
        }.get(verb)
        if handler is None:
            await query.answer()
            return
        await handler(update, context, chat_id, argument)

    async def _edit(self, update: Update, reply: str, markup: Any = None) -> None:
        """Replace the pressed message's text (and buttons); a message gone is no error."""
        query = update.callback_query
        if query is None or query.message is None:
            return
        try:
            await query.edit_message_text(reply, reply_markup=markup)
        except BadRequest as exc:
            if "not modified" not in exc.message.lower():  # a double press changes nothing
                raise

    async def _on_language(self, update: Update, context: Context, chat_id: int, arg: str) -> None:
        query = update.callback_query
        assert query is not None
        lang = arg if arg in LANGUAGES else "es"
        draft = self._draft(context)
        await query.answer()
        if draft.get("mode") == "onboarding" and draft.get("step") == "language":
            draft.update(language=lang, step="topics")
            await self._edit(update, f"{text(lang, 'choose_language')}\n{LANGUAGE_NAMES[lang]}")
            if lang != "es":  # the consent the person reads in their language is the one kept
                draft["consent"] = consent_text(lang)
                await context.bot.send_message(chat_id, consent_text(lang))
            topics = list(draft.get("topics", []))
            await context.bot.send_message(
                chat_id,
                self._topics_prompt(topics, lang),
                reply_markup=keyboards.topics(topics, lang),
            )
            return
        subscriber = await self._subscriber(chat_id)
        if subscriber is None:
            await self._edit(update, text(lang, "not_subscribed"))
            return
        await self.store.update(subscriber.id, language=lang, actor=SOURCE)
        await self._edit(update, text(lang, "language_set"))

    async def _on_topic(self, update: Update, context: Context, chat_id: int, arg: str) -> None:
        query = update.callback_query
        assert query is not None
        draft = self._draft(context)
        if draft.get("step") != "topics" or arg not in TOPICS:
            await query.answer()
            return
        chosen = set(draft.get("topics", []))
        chosen.symmetric_difference_update({arg})
        topics = [t for t in TOPICS if t in chosen]
        draft["topics"] = topics
        lang = _draft_language(draft)
        await query.answer()
        await self._edit(update, self._topics_prompt(topics, lang), keyboards.topics(topics, lang))

    async def _on_topics_done(
        self, update: Update, context: Context, chat_id: int, arg: str
    ) -> None:
        query = update.callback_query
        assert query is not None
        draft = self._draft(context)
        lang = _draft_language(draft)
        if draft.get("step") != "topics":
            await query.answer()
            return
        topics = list(draft.get("topics", []))
        if not topics:
            await query.answer(text(lang, "topics_none"), show_alert=True)
            return
        await query.answer()
        await self._edit(
            update, text(lang, "topics_chosen", topics=self._topics_label(topics, lang))
        )
        if draft.get("mode") == "onboarding":
            draft["step"] = "area"
            await context.bot.send_message(chat_id, text(lang, "choose_area"))
            return
        subscriber = await self._subscriber(chat_id)
        draft.clear()
        if subscriber is None:
            await context.bot.send_message(chat_id, text(lang, "not_subscribed"))
            return
        updated = await self.store.update(subscriber.id, topics=topics, actor=SOURCE)
        await context.bot.send_message(
            chat_id, f"{text(lang, 'updated')}\n\n{await self._settings(updated)}"
        )

    async def _on_area_page(self, update: Update, context: Context, chat_id: int, arg: str) -> None:
        query = update.callback_query
        assert query is not None
        draft = self._draft(context)
        lang = _draft_language(draft)
        search = draft.get("query")
        if draft.get("step") != "area" or not isinstance(search, str) or not arg.isdigit():
            await query.answer(text(lang, "area_expired"))
            return
        await query.answer()
        reply, markup = await self._area_page(search, int(arg), lang)
        await self._edit(update, reply, markup)

    async def _on_area(self, update: Update, context: Context, chat_id: int, arg: str) -> None:
        query = update.callback_query
        assert query is not None
        draft = self._draft(context)
        lang = _draft_language(draft)
        area = await self.catalogue.get(arg) if draft.get("step") == "area" else None
        if area is None or query.message is None or not isinstance(query.message, Message):
            await query.answer(text(lang, "area_expired"))
            return
        await query.answer()
        await self._edit(update, area.name)
        await self._place_chosen(query.message, chat_id, context, areas=[area.code], point=None)

    async def _on_confirm(self, update: Update, context: Context, chat_id: int, arg: str) -> None:
        query = update.callback_query
        assert query is not None
        draft = self._draft(context)
        lang = _draft_language(draft)
        if draft.get("mode") != "onboarding" or draft.get("step") != "confirm":
            await query.answer(text(lang, "area_expired"))
            return
        await query.answer()
        if arg != "yes":
            await self._edit(update, text(lang, "restart"))
            draft.clear()
            if query.message is not None and isinstance(query.message, Message):
                await self.start(update, context)
            return
        point = draft.get("point")
        await self.store.subscribe(
            self.channel,
            str(chat_id),
            language=lang,
            topics=list(draft.get("topics", [])),
            areas=list(draft.get("areas", [])),
            point=(float(point[0]), float(point[1])) if point is not None else None,
            consent_text=str(draft["consent"]),
            source=SOURCE,
        )
        draft.clear()
        log.info("bot.subscribed", channel=self.channel, language=lang)
        await self._edit(update, text(lang, "subscribed"))

    async def _on_quiet(self, update: Update, context: Context, chat_id: int, arg: str) -> None:
        query = update.callback_query
        assert query is not None
        subscriber = await self._subscriber(chat_id)
        lang = await self._language(context, subscriber)
        await query.answer()
        if subscriber is None:
            await self._edit(update, text(lang, "not_subscribed"))
            return
        if arg == "off":
            await self.store.update(subscriber.id, clear_quiet_hours=True, actor=SOURCE)
            await self._edit(update, text(lang, "quiet_cleared"))
            return
        hours = _parse_range(arg)
        if hours is None:
            return
        start, end = hours
        await self.store.update(
            subscriber.id, quiet_hours=QuietHours(start=start, end=end), actor=SOURCE
        )
        await self._edit(
            update, text(lang, "quiet_set", start=f"{start:%H:%M}", end=f"{end:%H:%M}")
        )

    async def _on_leave(self, update: Update, context: Context, chat_id: int, arg: str) -> None:
        query = update.callback_query
        assert query is not None
        subscriber = await self._subscriber(chat_id)
        lang = await self._language(context, subscriber)
        await query.answer()
        if subscriber is None:
            await self._edit(update, text(lang, "not_subscribed"))
            return
        if arg != "yes":
            await self._edit(update, text(lang, "stayed"))
            return
        await self.store.unsubscribe(
            self.channel,
            str(chat_id),
            consent_text=text(lang, "leave_confirm"),
            source=SOURCE,
        )
        self._draft(context).clear()
        log.info("bot.unsubscribed", channel=self.channel)
        await self._edit(update, text(lang, "left"))

    async def _on_ack(self, update: Update, context: Context, chat_id: int, arg: str) -> None:
        """ "Estoy a salvo" / "Necesito ayuda" under an alert: recorded, thanked, ticked."""
        query = update.callback_query
        assert query is not None
        alert, _, kind = arg.partition(":")
        subscriber = await self._subscriber(chat_id)
        lang = await self._language(context, subscriber)
        if subscriber is None or not alert.isdigit() or kind not in ACK_KINDS:
            await query.answer(text(lang, "ack_unknown"), show_alert=True)
            return
        alert_id = int(alert)
        try:
            await self.store.record_ack(subscriber.id, alert_id, kind)
        except LookupError:  # an alert (or a subscription) that is not there any more
            await query.answer(text(lang, "ack_unknown"), show_alert=True)
            return
        log.info("bot.ack", channel=self.channel, alert_id=alert_id, kind=kind)
        await query.answer(text(lang, "ack_thanks"))
        message = query.message
        if not isinstance(message, Message) or message.text is None:
            return  # too old to edit: the answer is recorded all the same
        answer = text(lang, "ack_answer", answer=text(lang, f"ack_{kind}"))
        original = message.text_html.split("\n\n✅ ", 1)[0]
        await query.edit_message_text(
            f"{original}\n\n✅ {answer}",
            parse_mode="HTML",
            reply_markup=keyboards.acknowledged(alert_id, kind, lang),
        )

    # ------------------------------------------------------------------ errors

    async def failed(self, update: object, context: Context) -> None:
        """Log a handler's failure without its text, which may hold what a person typed."""
        error = context.error
        log.warning(
            "bot.handler_failed",
            channel=self.channel,
            error=type(error).__name__ if error is not None else None,
            # Telegram's own description (never a token, never what a person typed).
            description=error.message if isinstance(error, TelegramError) else None,
        )


def _parse_range(arg: str) -> tuple[time, time] | None:
    """``2300-0700`` → (23:00, 07:00); None when it is not one of the offered ranges."""
    for start, end in keyboards.QUIET_CHOICES:
        if arg == f"{start:%H%M}-{end:%H%M}":
            return start, end
    return None


def _draft_language(draft: dict[str, Any]) -> str:
    """The language chosen so far in a conversation not yet confirmed (Spanish until then)."""
    return language_of(str(draft.get("language", "es")))
