"""The planner's audience source for subscribers: who on a channel an alert reaches, streamed.

:class:`SubscriberAudience` answers the two questions of
:class:`alertcast.dispatch.planner.AudienceSource`:

* ``languages``: which languages to render. Each subscriber reads the
  alert's info in their language (exact tag, then the same primary subtag:
  ``es`` reads ``es-MX``); when the alert has no info in it, the alert's first
  language. The routed infos (``delivery.languages``) are what is offered
  when routing named them, else every info of the alert.
* ``targets``: the decrypted addresses of the audience that reads one of those
  languages, in batches as the store streams candidates, so a million
  subscribers never sit in memory at once and addresses are decrypted only for
  people chosen.

Who is in the audience: subscribers of the route's topics (or, when the route
names none, of the alert's topics: :func:`alertcast.targeting.topics_for`) whose
places lie in the route's areas: ``alert`` (the alert's own area, the
default), ``anywhere``, or named areas of the rules file. During a person's
quiet hours only Extreme alerts reach them; the others are not sent to them
later either (a warning that arrives after it matters only adds noise).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

import structlog
from shapely.geometry.base import BaseGeometry

from alertcast.domain import Alert, Severity
from alertcast.rules_model import Delivery, NamedArea
from alertcast.store.alerts import StoredAlert
from alertcast.subscribers.model import Candidate, QuietHours, subscriber_target
from alertcast.targeting import Footprint, PlaceSpec, select, topics_for
from alertcast.timezones import UnknownTimeZone, zone

log = structlog.get_logger(__name__)

ALERT_AREA = "alert"
ANYWHERE = "anywhere"


class CandidateStore(Protocol):
    """What the audience needs of :class:`alertcast.subscribers.store.SubscriberStore`."""

    def candidates(self, channel: str) -> AsyncIterator[list[Candidate]]: ...

    async def addresses_of(self, subscriber_ids: Sequence[int]) -> dict[int, str]: ...


class GeometrySource(Protocol):
    """What the audience needs of :class:`alertcast.areas.AreaCatalogue`."""

    async def geometries(self) -> Mapping[str, BaseGeometry]: ...


def resolve_language(wanted: str, offered: Sequence[str]) -> str:
    """The offered language a person reading ``wanted`` gets: exact, same primary, else first."""
    if not offered:
        return wanted
    tag = wanted.lower()
    for language in offered:
        if language.lower() == tag:
            return language
    primary = tag.split("-")[0]
    for language in offered:
        if language.lower().split("-")[0] == primary:
            return language
    return offered[0]


def in_quiet_hours(quiet: QuietHours, now: datetime) -> bool:
    """True when ``now`` falls in the quiet hours (local time; ``22:00-07:00`` spans midnight).

    An unknown time zone is logged and counts as not quiet: better an alert
    at night than a missed one.
    """
    try:
        local = now.astimezone(zone(quiet.timezone)).time().replace(tzinfo=None)
    except UnknownTimeZone:
        log.warning("subscribers.unknown_quiet_timezone", timezone=quiet.timezone)
        return False
    if quiet.start == quiet.end:
        return False
    if quiet.start < quiet.end:
        return quiet.start <= local < quiet.end
    return local >= quiet.start or local < quiet.end


def is_extreme(alert: Alert) -> bool:
    """True when any info of the alert is Extreme."""
    return any(info.severity is Severity.EXTREME for info in alert.infos)


class SubscriberAudience:
    """Subscribers as the planner's audience (``alertcast.dispatch.planner.AudienceSource``)."""

    def __init__(
        self,
        store: CandidateStore,
        catalogue: GeometrySource,
        *,
        named_areas: Mapping[str, NamedArea] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self.catalogue = catalogue
        self.named_areas = dict(named_areas or {})
        self.clock = clock or (lambda: datetime.now(UTC))

    async def languages(self, delivery: Delivery, alert: StoredAlert) -> Sequence[str]:
        """The languages the audience will read, the alert's first language first."""
        footprints = await self._footprints(delivery, alert.alert)
        if not footprints:
            return ()
        offered = _offered(delivery, alert.alert)
        topics = _topics(delivery, alert.alert)
        now = self.clock()
        extreme = is_extreme(alert.alert)
        found: set[str] = set()
        async for batch in self.store.candidates(delivery.channel):
            awake = _awake(batch, now, extreme)
            chosen = set(select(footprints, awake, topics=topics))
            found.update(resolve_language(c.language, offered) for c in awake if c.id in chosen)
        order = {language: i for i, language in enumerate(offered)}
        return sorted(found, key=lambda language: (order.get(language, len(order)), language))

    async def targets(
        self, delivery: Delivery, alert: StoredAlert, language: str
    ) -> AsyncIterator[str]:
        """The audience that reads ``language``, as ledger targets (``sub:ID``), batch by batch.

        Addresses are not decrypted here: the ledger names subscribers by id and
        the worker looks their addresses up right before sending, so a phone
        number is never written to the ledger (nor kept after a person leaves).
        """
        footprints = await self._footprints(delivery, alert.alert)
        if not footprints:
            return
        offered = _offered(delivery, alert.alert)
        topics = _topics(delivery, alert.alert)
        now = self.clock()
        extreme = is_extreme(alert.alert)
        reads: dict[str, bool] = {}
        total = 0
        async for batch in self.store.candidates(delivery.channel):
            readers = []
            for candidate in _awake(batch, now, extreme):
                wanted = candidate.language
                if wanted not in reads:
                    reads[wanted] = resolve_language(wanted, offered) == language
                if reads[wanted]:
                    readers.append(candidate)
            ids = select(footprints, readers, topics=topics)
            if not ids:
                continue
            for subscriber_id in ids:
                total += 1
                yield subscriber_target(subscriber_id)
        log.info(
            "subscribers.audience",
            alert_id=alert.id,
            channel=delivery.channel,
            route=delivery.route,
            language=language,
            targets=total,
        )

    async def _footprints(self, delivery: Delivery, alert: Alert) -> list[Footprint]:
        names = delivery.audience.areas or (ALERT_AREA,)
        if ANYWHERE in names:
            return [Footprint.everywhere()]
        specs: list[PlaceSpec] = []
        for name in names:
            if name == ALERT_AREA:
                spec = PlaceSpec.of_alert(alert)
            else:
                named = self.named_areas.get(name)
                if named is None:
                    log.warning("subscribers.unknown_area", area=name, route=delivery.route)
                    continue
                spec = PlaceSpec(polygons=named.polygons, circles=named.circles)
            if not spec.is_empty:
                specs.append(spec)
        if not specs:
            return []
        geoms = await self.catalogue.geometries()
        return [Footprint.compile(spec, geoms) for spec in specs]


def _offered(delivery: Delivery, alert: Alert) -> tuple[str, ...]:
    return delivery.languages or alert.languages()


def _topics(delivery: Delivery, alert: Alert) -> frozenset[str] | None:
    return frozenset(delivery.audience.topics) or topics_for(alert) or None


def _awake(batch: Iterable[Candidate], now: datetime, extreme: bool) -> list[Candidate]:
    """The candidates an alert may reach now: everyone for an Extreme one."""
    if extreme:
        return list(batch)
    quiet: dict[QuietHours, bool] = {}
    awake: list[Candidate] = []
    for candidate in batch:
        hours = candidate.quiet_hours
        if hours is not None:
            if hours not in quiet:
                quiet[hours] = in_quiet_hours(hours, now)
            if quiet[hours]:
                continue
        awake.append(candidate)
    return awake
