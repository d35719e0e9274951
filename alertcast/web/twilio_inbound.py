"""``POST /webhooks/twilio/inbound``: people subscribe and leave by texting a keyword.

Twilio posts every SMS or WhatsApp message sent to the service's number to
the number's inbound webhook (``...?channel=NAME``, the channel that owns
the number). This route:

1. **Checks the signature** exactly as the status callbacks do
   (:mod:`alertcast.web.twilio_status`: same validators, same signed URL,
   same ``public_url`` rule). A forged or unsigned request is answered 403,
   logged as an error and written to the audit trail (``webhook.rejected``,
   actor ``provider:twilio``): without this check anyone could unsubscribe a
   whole town by posting ``STOP`` with their numbers.
2. **Reads the sender** (``From``: ``+52...`` for SMS, ``whatsapp:+52...``
   for WhatsApp) as E.164 with :func:`alertcast.subscribers.phones.normalize_phone`,
   the spelling the store keys people by, so an opt-out always finds the
   opt-in. An unreadable sender is logged, audited
   (``webhook.invalid_sender``, the number masked) and answered 200 with no
   message: there is nobody to answer, and a 5xx would only make Twilio
   report an error for a message that cannot be acted on.
3. **Acts on the keyword** (:func:`alertcast.subscribers.keywords.parse_keyword`):
   subscribe (with the area the catalogue finds best for the text after the
   keyword, if any), unsubscribe (the person's data is erased), help. The
   store audits every opt-in and opt-out with the confirmation sent as the
   consent text and ``sms-keyword`` / ``whatsapp-keyword`` as the source.
4. **Answers** with TwiML ``<Response><Message>...</Message></Response>``:
   every text gets an answer, unknown ones a short help. SMS answers lose the
   accents GSM-7 lacks when that saves a segment.

Twilio's own opt-out handling (on by default for long codes) also answers
``STOP`` and then blocks messages to that number; the TwiML answer to a
``STOP`` is delivered only where that handling is off or set to let the
application answer (Advanced Opt-Out). The person is erased here either way.

The channel is named by the ``channel`` query parameter, covered by the
signature; ``channel_kinds`` says whether it is an ``sms`` or a ``whatsapp``
channel (the kind picks the consent source and the answer's alphabet).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape

import structlog
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.areas import Area, AreaCatalogue
from alertcast.channels.twilio_common import mask
from alertcast.errors import StoreError
from alertcast.sms import choose_sms_text
from alertcast.subscribers import keyword_texts as texts
from alertcast.subscribers.keywords import Command, parse_keyword
from alertcast.subscribers.model import Subscriber
from alertcast.subscribers.phones import InvalidAddress, normalize_phone
from alertcast.subscribers.store import SubscriberStore

# The signature check is the status route's, shared: one reading of Twilio's scheme.
from alertcast.web.twilio_status import TwilioStatusRoute, audit_webhook

log = structlog.get_logger(__name__)

INBOUND_PATH = "/webhooks/twilio/inbound"
INVALID_SENDER_ACTION = "webhook.invalid_sender"
WHATSAPP_PREFIX = "whatsapp:"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
AREA_SEARCH_LIMIT = 1
"""Only the best match is used: a text message cannot offer a list to choose from."""
MAX_DROPPED_WORDS = 4
"""Trailing words dropped at most when searching the area (one search each)."""


def twiml(text: str | None) -> web.Response:
    """TwiML answering with ``text`` as one message (none when ``text`` is None)."""
    if text is None:
        body = EMPTY_TWIML
    else:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<Response><Message>{escape(text)}</Message></Response>"
        )
    return web.Response(text=body, content_type="text/xml")


class TwilioInboundRoute:
    """The handler: checks Twilio's signature, then turns the keyword into a store action."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        store: SubscriberStore,
        catalogue: AreaCatalogue,
        auth_tokens: Mapping[str, str],
        public_url: str | None,
        channel_kinds: Mapping[str, str],
    ) -> None:
        self.engine = engine
        self.store = store
        self.catalogue = catalogue
        self.channel_kinds = dict(channel_kinds)
        self._signatures = TwilioStatusRoute(engine, auth_tokens, public_url)

    def __repr__(self) -> str:  # the tokens never appear in a repr or a log
        return f"TwilioInboundRoute(channels={sorted(self.channel_kinds)!r})"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        channel, params = await self._signatures.signed_form(request, INBOUND_PATH)
        sender = params.get("From", "")
        kind = self._kind(channel, sender)
        try:
            address = normalize_phone(sender.strip().removeprefix(WHATSAPP_PREFIX))
        except InvalidAddress as exc:
            await self._invalid_sender(channel, params, str(exc))
            return twiml(None)
        command = parse_keyword(params.get("Body", ""))
        try:
            answer = await self._act(channel, kind, address, command)
        except StoreError as exc:
            log.error(
                "twilio.inbound_not_recorded",
                channel=channel,
                action=command.action,
                sender=mask(address),
                error=str(exc),
            )
            answer = _answer(kind, texts.TRY_AGAIN, command.language or "es")
        return twiml(answer)

    def _kind(self, channel: str, sender: str) -> str:
        """``sms`` or ``whatsapp``: the configured kind, else what the sender's spelling says."""
        whatsapp_sender = sender.strip().lower().startswith(WHATSAPP_PREFIX)
        kind = self.channel_kinds.get(channel)
        if kind is None:
            return "whatsapp" if whatsapp_sender else "sms"
        if whatsapp_sender != (kind == "whatsapp"):
            log.warning(
                "twilio.inbound_kind_mismatch",
                channel=channel,
                kind=kind,
                hint="the number's inbound webhook names a channel of another kind",
            )
        return kind

    async def _act(self, channel: str, kind: str, address: str, command: Command) -> str:
        """Apply ``command`` for ``address`` on ``channel``; the answer to send back."""
        source = f"{kind}-keyword"
        existing = await self.store.get(channel, address)
        language = command.language or (existing.language if existing else "es")
        if command.action == "unsubscribe":
            answer = _answer(kind, texts.UNSUBSCRIBED, language)
            erased = await self.store.unsubscribe(
                channel, address, consent_text=answer, source=source
            )
            log.info("twilio.inbound_opt_out", channel=channel, erased=erased)
            return answer
        if command.action == "subscribe":
            return await self._subscribe(channel, kind, address, command, language, existing)
        if existing is not None:
            await self.store.touch(existing.id)
        return _answer(kind, texts.HELP if command.action == "help" else texts.UNKNOWN, language)

    async def _subscribe(
        self,
        channel: str,
        kind: str,
        address: str,
        command: Command,
        language: str,
        existing: Subscriber | None,
    ) -> str:
        """Subscribe (or re-subscribe, keeping topics and point); the area replaced when found."""
        areas: tuple[str, ...] = existing.areas if existing else ()
        matched: str | None = None
        if not command.area:
            answer = _answer(kind, texts.SUBSCRIBED, language)
        else:
            found = await self._find_area(command.area)
            if found is not None:
                matched = found.code
                areas = (matched,)
                answer = _answer(kind, texts.SUBSCRIBED_AREA, language, area=found.name)
            else:
                answer = _answer(kind, texts.AREA_NOT_FOUND, language)
        subscriber = await self.store.subscribe(
            channel,
            address,
            language=language,
            topics=existing.topics if existing else (),
            areas=areas,
            point=existing.point if existing else None,
            consent_text=answer,
            source=f"{kind}-keyword",
        )
        log.info(
            "twilio.inbound_opt_in",
            channel=channel,
            subscriber_id=subscriber.id,
            area_asked=bool(command.area),
            area=matched,
        )
        return answer

    async def _find_area(self, text: str) -> Area | None:
        """The catalogue's best match for ``text``, forgiving words added after the name.

        People append the state or city (``Iztapalapa CDMX``, ``Coyoacán, Ciudad
        de México``) and the catalogue wants every word in the name, so when
        the whole text finds nothing, words are dropped from the end. What is
        left after dropping must then name one area only: ``San Juann del Río``
        must not end up as the first of the many ``San ...``.
        """
        words = text.split()
        for count in range(len(words), max(len(words) - MAX_DROPPED_WORDS, 1) - 1, -1):
            found, total = await self.catalogue.search(
                " ".join(words[:count]), limit=AREA_SEARCH_LIMIT
            )
            if found and (count == len(words) or total == 1):
                return found[0]
            if found:
                return None  # ambiguous once shortened: better no area than a wrong one
        return None

    async def _invalid_sender(self, channel: str, params: Mapping[str, str], reason: str) -> None:
        raw = params.get("From", "").strip().removeprefix(WHATSAPP_PREFIX)
        masked = mask(raw)
        data: dict[str, Any] = {
            "channel": channel[:100],
            "sender": masked[:40],
            "reason": (reason.replace(raw, masked) if raw else reason)[:200],
            "message_sid": params.get("MessageSid", "")[:64],
        }
        log.error(
            "twilio.inbound_invalid_sender",
            hint="Twilio posted a message whose From is not a phone number; nothing was done",
            **data,
        )
        await audit_webhook(
            self.engine,
            action=INVALID_SENDER_ACTION,
            path=INBOUND_PATH,
            data=data,
            failure_event="twilio.invalid_sender_not_audited",
        )


def _answer(kind: str, name: str, language: str, **values: str) -> str:
    """The answer as sent: SMS in GSM-7 when dropping accents saves a segment, WhatsApp as is."""
    text = texts.keyword_text(name, language, **values)
    if kind == "whatsapp":
        return text
    return choose_sms_text(text, transliterate=True)[0]


def add_twilio_inbound_routes(
    app: web.Application,
    *,
    engine: AsyncEngine,
    store: SubscriberStore,
    catalogue: AreaCatalogue,
    auth_tokens: Mapping[str, str],
    public_url: str | None,
    channel_kinds: Mapping[str, str],
) -> TwilioInboundRoute:
    """Add ``POST /webhooks/twilio/inbound`` to ``app``.

    ``engine`` receives the audit records of refused requests (opt-ins and
    opt-outs are audited by ``store``); ``auth_tokens``: channel name → auth
    token (as for the status route); ``channel_kinds``: channel name → ``sms``
    or ``whatsapp``.
    """
    route = TwilioInboundRoute(
        engine=engine,
        store=store,
        catalogue=catalogue,
        auth_tokens=auth_tokens,
        public_url=public_url,
        channel_kinds=channel_kinds,
    )
    app.router.add_post(INBOUND_PATH, route.handle)
    return route
