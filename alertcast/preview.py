"""What an alert would do before anyone approves it: texts, audiences, time and cost per channel.

A duty officer composing a warning must see, while typing, exactly what every
channel will show in every language, how many people each reaches, how long
the fan-out will take and what the SMS will cost. :class:`Previewer` answers
with the code that will do the real work, never a copy of it:

* **Routing** is a dry run of ``config.routes.route`` with the context the
  planner would use (:func:`alertcast.preview_context.routing_context`), plus
  the routes an Update or Cancel inherits from the alerts it references.
  Deliveries held back by a silence, an inhibition or the exercise boundary
  are shown too, with ``held`` saying why; quiet hours give ``deferred``.
* **Rendering** is :func:`alertcast.render.render` with the planner's
  template set, channel and language choice: a channel post in the route's
  first language (else the channel's), a subscriber audience in each
  language the alert offers. A rendering that fails becomes a ``problems``
  entry of that rendering, never an exception; the render's own warnings
  (shortened fields, transliteration) are listed there too.
* **SMS** figures are the ones :mod:`alertcast.sms` gave the rendering.
* **Audience** is counted through the planner's audience source
  (:mod:`alertcast.preview_audience`); a channel post's audience is None
  (its followers are not known; it is one message to send). A route an
  Update or Cancel inherits reaches the targets the earlier alert reached on
  that channel, and that count is its audience (1 for a post, to be edited
  or answered); earlier recipients an own route also tells again are not
  added to its count (the ledger removes the duplicates).
* **ETA** is the rate-limit tokens the audience needs over the channel's
  rate limit (:func:`alertcast.dispatch.progress.channel_rate_limits`): one
  token per message, per SMS segment, per Telegram part, as the worker takes
  them; the language that needs most is assumed, so the ETA is an upper bound.
* **Cost** is ``segments × options.cost_per_segment × audience`` on ``sms``
  and ``whatsapp`` channels that set ``cost_per_segment`` (and ``currency``).

``approvals_required`` is the most approvals any routed delivery needs
(``Approval.people``: auto 0, one 1, two 2); policy on top of it (a person's
alert needs at least one) is the caller's. A preview only reads: no row is
written, and the routing context is read once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.config import ChannelConfig, Config
from alertcast.dispatch.planner import AudienceSource, unique_deliveries
from alertcast.domain import Alert, Status
from alertcast.errors import AlertcastError
from alertcast.i18n import language as default_language
from alertcast.preview_audience import AudienceCount, AudienceCounter, offered_languages
from alertcast.preview_context import inherited_routes, routing_context
from alertcast.preview_model import (
    Cost,
    Preview,
    RenderingPreview,
    RoutePreview,
    rendering_preview,
)
from alertcast.render import render
from alertcast.rules_model import CHANNEL_POST, Delivery
from alertcast.store.alerts import StoredAlert
from alertcast.templates import TemplateSet, template_set

__all__ = ["Cost", "Preview", "Previewer", "RenderingPreview", "RoutePreview"]

log = structlog.get_logger(__name__)

COSTED_KINDS = ("sms", "whatsapp")

MESSAGES: dict[str, dict[str, str]] = {
    "disabled": {
        "en": "channel {channel!r} is not configured or not enabled",
        "es": "el canal {channel!r} no está configurado o no está activo",
    },
    "capped": {
        "en": "{channel}: at least {count} recipients (counting stopped there)",
        "es": "{channel}: al menos {count} destinatarios (el conteo se detuvo ahí)",
    },
    "held": {
        "en": "route {route} on {channel} would not send: {cause}",
        "es": "la ruta {route} en {channel} no enviaría: {cause}",
    },
    "deferred": {
        "en": "route {route} on {channel} waits for quiet hours to end ({until})",
        "es": "la ruta {route} en {channel} espera al fin del horario silencioso ({until})",
    },
    "inherited": {
        "en": "route {route} on {channel} follows alert {alert_id}: it reaches who was told then",
        "es": "la ruta {route} en {channel} sigue a la alerta {alert_id}: llega a quien se avisó",
    },
    "no_currency": {
        "en": "{channel}: cost_per_segment is set without a currency",
        "es": "{channel}: cost_per_segment está definido sin moneda (currency)",
    },
    "no_routes": {
        "en": "no route matches this alert: nothing would be sent",
        "es": "ninguna ruta coincide con esta alerta: no se enviaría nada",
    },
}


def _t(lang: str, key: str, **values: object) -> str:
    entry = MESSAGES[key]
    return entry.get(lang, entry["en"]).format(**values)


def _per_segment(channel: ChannelConfig) -> float | None:
    value = channel.options.get("cost_per_segment")
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return float(value)


class Previewer:
    """Previews alerts for one configuration; one instance serves every request."""

    def __init__(
        self,
        engine: AsyncEngine,
        config: Config,
        *,
        audience: AudienceSource | None,
        templates: TemplateSet | None = None,
        limits: Mapping[str, float],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        counter: AudienceCounter | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        self.templates = templates or template_set(
            config.templates_dir if config.templates_dir.is_dir() else None
        )
        self.limits = dict(limits)
        self.clock = clock
        self.counter = counter or AudienceCounter(audience)
        self._channels = {c.name: c for c in config.channels if c.enabled}

    async def preview(
        self,
        alert: Alert,
        *,
        feed: str | None = None,
        thread: str | None = None,
        language: str | None = None,
    ) -> Preview:
        """Route, render, count and price ``alert`` without sending or storing anything.

        ``feed`` and ``thread`` route it as if it came from that feed (a
        composed alert has none); ``language`` is that of the warnings
        (default: :func:`alertcast.i18n.language`).
        """
        lang = language or default_language()
        now = self.clock()
        context = await routing_context(self.engine, alert, now=now, feed=feed, thread=thread)
        decision = self.config.routes.route(alert, context=context)
        stored = StoredAlert(
            id=0,
            alert=alert,
            raw=None,
            source="preview",
            cap_version="1.2",
            warnings=(),
            received_at=now,
            feed=feed,
            thread=thread,
            expires_at=alert.expires,
        )
        warnings: list[str] = []
        routes: list[RoutePreview] = []
        own = unique_deliveries(decision.deliveries)
        for delivery in own:
            held = None
            if delivery.deferred_until is not None and delivery.deferred_until > now:
                held = "deferred"
                until = delivery.deferred_until.isoformat()
                warnings.append(
                    _t(
                        lang,
                        "deferred",
                        route=delivery.route,
                        channel=delivery.channel,
                        until=until,
                    )
                )
            count = await self.counter.count(delivery, stored)
            routes.append(self._route(alert, delivery, held, count, lang, warnings))
        for suppressed in decision.suppressed:
            d = suppressed.delivery
            warnings.append(
                _t(lang, "held", route=d.route, channel=d.channel, cause=suppressed.cause)
            )
            routes.append(self._route(alert, d, suppressed.cause, None, lang, warnings))
        inherited = await inherited_routes(self.engine, alert, own)
        for item in inherited:
            d = item.delivery
            warnings.append(
                _t(
                    lang,
                    "inherited",
                    route=d.route,
                    channel=d.channel,
                    alert_id=item.inherited_from,
                )
            )
            count = AudienceCount(item.reached)
            routes.append(self._route(alert, d, None, count, lang, warnings, inherited=True))
        if not routes:
            warnings.append(_t(lang, "no_routes"))
        sending = [*own, *(i.delivery for i in inherited)]
        return Preview(
            routes=tuple(routes),
            approvals_required=max((d.approval.people for d in sending), default=0),
            exercise=alert.status is not Status.ACTUAL,
            warnings=tuple(warnings),
        )

    # ------------------------------------------------------------------ one route

    def _route(
        self,
        alert: Alert,
        delivery: Delivery,
        held: str | None,
        count: AudienceCount | None,
        lang: str,
        warnings: list[str],
        *,
        inherited: bool = False,
    ) -> RoutePreview:
        """One route's preview; ``count`` None: held back, nothing is counted or priced."""
        channel = self._channels.get(delivery.channel)
        if channel is None:
            problem = _t(lang, "disabled", channel=delivery.channel)
            return RoutePreview(
                route=delivery.route,
                channel=delivery.channel,
                kind="unknown",
                approval=delivery.approval.value,
                held=held,
                audience=None,
                eta_s=None,
                cost=None,
                renderings=(
                    RenderingPreview(language="", text="", length=0, parts=0, problems=(problem,)),
                ),
            )
        wanted = self._languages(alert, delivery, inherited=inherited)
        renderings = tuple(self._render(alert, channel, delivery, w) for w in wanted)
        audience = count.targets if count is not None else None
        if count is not None and count.capped:
            warnings.append(_t(lang, "capped", channel=channel.name, count=count.targets))
        eta_s: float | None = None
        cost: Cost | None = None
        if count is not None:
            tokens = _tokens(count, wanted, renderings)
            eta_s = self._eta(channel, tokens)
            if audience is not None:
                cost = self._cost(channel, tokens, renderings, lang, warnings)
        return RoutePreview(
            route=delivery.route,
            channel=delivery.channel,
            kind=channel.kind,
            approval=delivery.approval.value,
            held=held,
            audience=audience,
            eta_s=eta_s,
            cost=cost,
            renderings=renderings,
        )

    @staticmethod
    def _languages(alert: Alert, delivery: Delivery, *, inherited: bool) -> Sequence[str | None]:
        """The languages the planner renders this delivery in (None: the channel's own)."""
        if inherited:
            return [None]  # told in the channel's language, like the earlier recipients
        if delivery.audience.kind == CHANNEL_POST:
            return [delivery.languages[0] if delivery.languages else None]
        return offered_languages(delivery, alert) or [None]

    def _render(
        self, alert: Alert, channel: ChannelConfig, delivery: Delivery, wanted: str | None
    ) -> RenderingPreview:
        try:
            rendering = render(
                alert,
                channel,
                language=wanted,
                template=delivery.template,
                templates=self.templates,
            )
        except (AlertcastError, ValueError) as exc:  # a broken template or channel option
            log.warning(
                "preview.render_failed",
                channel=channel.name,
                route=delivery.route,
                language=wanted,
                error=f"{type(exc).__name__}: {exc}",
            )
            shown = wanted or str(channel.options.get("language", ""))
            return RenderingPreview(
                language=shown, text="", length=0, parts=0, problems=(str(exc),)
            )
        return rendering_preview(rendering)

    def _eta(self, channel: ChannelConfig, tokens: int) -> float | None:
        rate = self.limits.get(channel.name)
        if rate is None or rate <= 0:
            return None
        return round(tokens / rate, 1)

    @staticmethod
    def _cost(
        channel: ChannelConfig,
        tokens: int,
        renderings: Sequence[RenderingPreview],
        lang: str,
        warnings: list[str],
    ) -> Cost | None:
        if channel.kind not in COSTED_KINDS:
            return None
        per_segment = _per_segment(channel)
        if per_segment is None:
            return None
        currency = channel.options.get("currency")
        if not isinstance(currency, str) or not currency.strip():
            warnings.append(_t(lang, "no_currency", channel=channel.name))
            currency = ""
        segments = max((r.tokens for r in renderings if r.parts), default=1)
        return Cost(segments, per_segment, currency.strip(), round(tokens * per_segment, 6))


def _tokens(
    count: AudienceCount, wanted: Sequence[str | None], renderings: Sequence[RenderingPreview]
) -> int:
    """Rate-limit tokens (SMS: segments) the whole delivery takes.

    Each language's readers times what one message in that language takes;
    where the counts cannot be told apart by language (a channel post, an
    alert without info, a count stopped at its cap), everyone is assumed to
    get the language that takes most.
    """
    if count.targets is None:
        return max((r.tokens for r in renderings if r.parts), default=1)  # one post
    per_message = {w: r.tokens for w, r in zip(wanted, renderings, strict=True) if r.parts}
    by_language = dict(count.by_language)
    if not count.capped and by_language and set(by_language) <= set(per_message):
        return sum(n * per_message[language] for language, n in by_language.items())
    return count.targets * max(per_message.values(), default=1)
