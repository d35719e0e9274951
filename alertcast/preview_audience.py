"""How many targets a routed delivery would reach, counted fast enough for a live preview.

The count comes from the planner's own audience source
(:class:`alertcast.dispatch.planner.AudienceSource`, in production
:class:`alertcast.subscribers.audience.SubscriberAudience`): its ``targets``
are streamed for each language the alert offers and counted, so the preview
and the fan-out never disagree on who is in the audience. Every subscriber
reads exactly one offered language, so the per-language counts add up to the
audience without counting anyone twice.

Two things keep it fast while the officer types:

* **A cap.** Counting stops at ``cap`` targets; the count is then reported
  as the cap and flagged, so the preview says "at least".
* **A short-lived cache.** The audience depends only on the route, the
  channel and what targeting reads of the alert (languages, categories,
  event, severity, areas), never on the headline or the description. Counts
  are kept for ``ttl_s`` seconds under that key, so editing the text does not
  count the subscribers again. Quiet hours depend on the time, hence the
  short life.

A channel post (Telegram channel, Mastodon, the CAP feed) reaches the
channel's followers, whom alertcast does not know: its audience is None
(unknown), and it is one message to send.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import structlog

from alertcast.dispatch.planner import AudienceSource
from alertcast.domain import Alert
from alertcast.rules_model import CHANNEL_POST, Delivery
from alertcast.store.alerts import StoredAlert

__all__ = ["DEFAULT_COUNT_CAP", "DEFAULT_COUNT_TTL_S", "AudienceCount", "AudienceCounter"]

log = structlog.get_logger(__name__)

DEFAULT_COUNT_CAP = 200_000
"""Targets counted at most per delivery; beyond it the preview says "at least"."""

DEFAULT_COUNT_TTL_S = 30.0
"""How long a count is reused while only the alert's text changes."""

_CACHE_SIZE = 256


@dataclass(frozen=True, slots=True)
class AudienceCount:
    """A delivery's audience: how many targets, and whether counting stopped at the cap."""

    targets: int | None
    """None: unknown (a channel post, or no audience source)."""
    capped: bool = False
    by_language: tuple[tuple[str, int], ...] = ()
    """Targets per language read (complete unless ``capped``)."""


def offered_languages(delivery: Delivery, alert: Alert) -> tuple[str, ...]:
    """The languages a subscriber audience may read: the routed ones, else the alert's."""
    return delivery.languages or alert.languages()


def _key(delivery: Delivery, alert: Alert) -> Hashable:
    """What the audience depends on: never the alert's free text."""
    return (
        delivery.route,
        delivery.channel,
        delivery.audience,
        delivery.languages,
        alert.status,
        tuple(
            (info.language, info.categories, info.event, info.severity, info.areas)
            for info in alert.infos
        ),
    )


class AudienceCounter:
    """Counts a delivery's targets through an audience source, capped and briefly cached."""

    def __init__(
        self,
        source: AudienceSource | None,
        *,
        cap: int = DEFAULT_COUNT_CAP,
        ttl_s: float = DEFAULT_COUNT_TTL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if cap < 1:
            raise ValueError(f"the audience count cap must be at least 1, not {cap}")
        self.source = source
        self.cap = cap
        self.ttl_s = ttl_s
        self._monotonic = monotonic
        self._cache: OrderedDict[Hashable, tuple[float, AudienceCount]] = OrderedDict()

    async def count(self, delivery: Delivery, stored: StoredAlert) -> AudienceCount:
        """The targets ``delivery`` reaches for ``stored`` (a channel post: unknown)."""
        if delivery.audience.kind == CHANNEL_POST or self.source is None:
            return AudienceCount(None)
        key = _key(delivery, stored.alert)
        now = self._monotonic()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self.ttl_s:
            self._cache.move_to_end(key)
            return cached[1]
        counted = await self._count(delivery, stored, offered_languages(delivery, stored.alert))
        self._cache[key] = (now, counted)
        self._cache.move_to_end(key)
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return counted

    async def _count(
        self, delivery: Delivery, stored: StoredAlert, languages: Sequence[str]
    ) -> AudienceCount:
        source = self.source
        assert source is not None
        if not languages:
            # An alert without info (a Cancel) is read in every subscriber's own language.
            languages = await source.languages(delivery, stored)
        total = 0
        counts: dict[str, int] = {}
        for language in languages:
            targets = source.targets(delivery, stored, language)
            try:
                async for _target in targets:
                    total += 1
                    counts[language] = counts.get(language, 0) + 1
                    if total >= self.cap:
                        log.info(
                            "preview.audience_capped",
                            route=delivery.route,
                            channel=delivery.channel,
                            cap=self.cap,
                        )
                        return AudienceCount(total, True, tuple(counts.items()))
            finally:
                # Stopping early must release the store's stream (a database cursor).
                close = getattr(targets, "aclose", None)
                if close is not None:
                    await close()
        return AudienceCount(total, False, tuple(counts.items()))
