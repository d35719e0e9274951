"""Does an alert satisfy a matcher, and what are its labels: the facts routing works from."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from alertcast import geo
from alertcast.domain import Alert, Info, Severity, Status
from alertcast.rules_model import GeocodeMatcher, Matcher, NamedArea, TextPattern
from alertcast.rules_text import Reason


@dataclass(frozen=True, slots=True)
class AlertFacts:
    """An alert with what is known about where it came from."""

    alert: Alert
    feed: str | None = None
    thread: str | None = None

    @property
    def actual(self) -> bool:
        return self.alert.status == Status.ACTUAL


@dataclass(frozen=True, slots=True)
class MatchResult:
    """Whether a matcher held, why, and which infos satisfied its info-level conditions.

    ``infos`` is every info when the matcher has no info-level condition.
    """

    matched: bool
    reasons: tuple[Reason, ...]
    infos: tuple[Info, ...] = ()


def _first_hit(patterns: Sequence[TextPattern], value: str) -> TextPattern | None:
    return next((p for p in patterns if p.matches(value)), None)


def _texts(patterns: Iterable[object]) -> str:
    return ", ".join(str(p) for p in patterns)


def _alert_level(matcher: Matcher, facts: AlertFacts) -> tuple[list[Reason], list[Reason]]:
    hits: list[Reason] = []
    misses: list[Reason] = []
    alert = facts.alert
    if matcher.feeds:
        if facts.feed is None:
            misses.append(Reason.of("feed.none", patterns=_texts(matcher.feeds)))
        elif (hit := _first_hit(matcher.feeds, facts.feed)) is not None:
            hits.append(Reason.of("feed.match", feed=facts.feed, pattern=hit))
        else:
            misses.append(Reason.of("feed.miss", feed=facts.feed, patterns=_texts(matcher.feeds)))
    if matcher.senders:
        if (hit := _first_hit(matcher.senders, alert.sender)) is not None:
            hits.append(Reason.of("sender.match", sender=alert.sender, pattern=hit))
        else:
            misses.append(
                Reason.of("sender.miss", sender=alert.sender, patterns=_texts(matcher.senders))
            )
    if matcher.statuses is not None:
        allowed = sorted(s.value for s in matcher.statuses)
        code = "status.match" if alert.status in matcher.statuses else "status.miss"
        (hits if code == "status.match" else misses).append(
            Reason.of(code, value=alert.status.value, allowed=allowed)
        )
    if matcher.msg_types is not None:
        allowed = sorted(m.value for m in matcher.msg_types)
        code = "msg_type.match" if alert.msg_type in matcher.msg_types else "msg_type.miss"
        (hits if code == "msg_type.match" else misses).append(
            Reason.of(code, value=alert.msg_type.value, allowed=allowed)
        )
    return hits, misses


def _language_hit(patterns: Sequence[str], tag: str) -> str | None:
    value = tag.lower()
    for pattern in patterns:
        wanted = pattern.lower()
        if value == wanted or value.startswith(wanted + "-"):
            return pattern
    return None


def geocode_hit(matchers: Sequence[GeocodeMatcher], info: Info) -> Reason | None:
    """The first geocode of ``info`` some matcher accepts, as a reason; None when none does."""
    for area in info.areas:
        for code in area.geocodes:
            for matcher in matchers:
                if code.name.strip().casefold() != matcher.scheme.casefold():
                    continue
                value = code.value.strip()
                prefix = next((p for p in matcher.prefixes if value.startswith(p)), None)
                if prefix is not None:
                    return Reason.of(
                        "geocode.match",
                        lang=info.language,
                        scheme=code.name,
                        value=value,
                        prefix=prefix,
                    )
    return None


def info_shapes(infos: Iterable[Info]) -> list[geo.Shape]:
    """Every polygon and circle of every area of ``infos``."""
    shapes: list[geo.Shape] = []
    for info in infos:
        for area in info.areas:
            shapes.extend(area.polygons)
            shapes.extend(area.circles)
    return shapes


def area_hit(areas: Sequence[NamedArea], info: Info) -> Reason | None:
    """The first alert area that intersects a named area, as a reason; None when none does."""
    for area in info.areas:
        own: list[geo.Shape] = [*area.polygons, *area.circles]
        if not own:
            continue
        for named in areas:
            if geo.any_intersect(own, named.shapes):
                return Reason.of(
                    "area.match", lang=info.language, value=area.area_desc, name=named.name
                )
    return None


def _spatial(matcher: Matcher, info: Info) -> tuple[list[Reason], list[Reason]]:
    if not matcher.geocodes and not matcher.areas:
        return [], []
    hit = (geocode_hit(matcher.geocodes, info) if matcher.geocodes else None) or (
        area_hit(matcher.areas, info) if matcher.areas else None
    )
    if hit is not None:
        return [hit], []
    misses: list[Reason] = []
    if matcher.geocodes:
        wanted = "; ".join(g.describe() for g in matcher.geocodes)
        misses.append(Reason.of("geocode.miss", lang=info.language, wanted=wanted))
    if matcher.areas:
        names = ", ".join(a.name for a in matcher.areas)
        has_shapes = bool(info_shapes([info]))
        code = "area.miss" if has_shapes or not info.areas else "area.geocode_only"
        misses.append(Reason.of(code, lang=info.language, names=names))
    return [], misses


def _info_level(matcher: Matcher, info: Info) -> tuple[list[Reason], list[Reason]]:
    hits: list[Reason] = []
    misses: list[Reason] = []
    lang = info.language
    if matcher.categories is not None:
        allowed = sorted(c.value for c in matcher.categories)
        found = next((c for c in info.categories if c in matcher.categories), None)
        if found is not None:
            hits.append(Reason.of("category.match", lang=lang, value=found.value, allowed=allowed))
        else:
            values = [c.value for c in info.categories]
            misses.append(Reason.of("category.miss", lang=lang, value=values, allowed=allowed))
    if matcher.events:
        if (hit := _first_hit(matcher.events, info.event)) is not None:
            hits.append(Reason.of("event.match", lang=lang, value=info.event, pattern=hit))
        else:
            misses.append(
                Reason.of(
                    "event.miss", lang=lang, value=info.event, patterns=_texts(matcher.events)
                )
            )
    thresholds = (
        ("urgency", info.urgency, matcher.urgency_at_least),
        ("severity", info.severity, matcher.severity_at_least),
        ("certainty", info.certainty, matcher.certainty_at_least),
    )
    for name, value, threshold in thresholds:
        if threshold is None:
            continue
        code = "threshold.match" if value.rank <= threshold.rank else "threshold.miss"
        (hits if code == "threshold.match" else misses).append(
            Reason.of(code, lang=lang, field=name, value=value.value, threshold=threshold.value)
        )
    spatial_hits, spatial_misses = _spatial(matcher, info)
    hits.extend(spatial_hits)
    misses.extend(spatial_misses)
    if matcher.languages:
        if (found_lang := _language_hit(matcher.languages, lang)) is not None:
            hits.append(Reason.of("language.match", lang=lang, value=lang, pattern=found_lang))
        else:
            misses.append(
                Reason.of("language.miss", lang=lang, value=lang, patterns=matcher.languages)
            )
    return hits, misses


def evaluate(matcher: Matcher, facts: AlertFacts) -> MatchResult:
    """Check ``matcher`` against the alert; the reasons say what held or, if not, what did not."""
    alert_hits, alert_misses = _alert_level(matcher, facts)
    infos = facts.alert.infos
    if not matcher.info_fields:
        if alert_misses:
            return MatchResult(False, tuple(alert_misses))
        return MatchResult(True, tuple(alert_hits), infos)
    if not infos:
        missing = Reason.of("info.none", fields=matcher.info_fields)
        return MatchResult(False, (*alert_misses, missing))
    results = [(info, *_info_level(matcher, info)) for info in infos]
    matching = [(info, hits) for info, hits, misses in results if not misses]
    if alert_misses:
        return MatchResult(False, tuple(alert_misses))
    if not matching:
        # Show the info that came closest: its misses are the most useful to read.
        _, _, misses = min(results, key=lambda item: len(item[2]))
        return MatchResult(False, tuple(misses))
    first_hits = matching[0][1]
    return MatchResult(True, (*alert_hits, *first_hits), tuple(info for info, _ in matching))


def alert_labels(facts: AlertFacts) -> dict[str, tuple[str, ...]]:
    """The alert-level labels silences, grouping and inhibition compare."""
    alert = facts.alert
    return {
        "feed": (facts.feed,) if facts.feed else (),
        "thread": (facts.thread,) if facts.thread else (),
        "sender": (alert.sender,),
        "identifier": (alert.identifier,),
        "status": (alert.status.value,),
        "msg_type": (alert.msg_type.value,),
        "scope": (alert.scope.value,),
        "incident": alert.incidents,
    }


def info_labels(infos: Iterable[Info]) -> dict[str, tuple[str, ...]]:
    """The info-level labels of ``infos``, each label holding every distinct value."""
    labels: dict[str, dict[str, None]] = {
        name: {}
        for name in (
            "category",
            "event",
            "urgency",
            "severity",
            "certainty",
            "language",
            "area",
            "geocode",
        )
    }
    for info in infos:
        for category in info.categories:
            labels["category"][category.value] = None
        labels["event"][info.event] = None
        labels["urgency"][info.urgency.value] = None
        labels["severity"][info.severity.value] = None
        labels["certainty"][info.certainty.value] = None
        labels["language"][info.language] = None
        for area in info.areas:
            labels["area"][area.area_desc] = None
            for code in area.geocodes:
                labels["geocode"][f"{code.name.strip()}:{code.value.strip()}"] = None
    return {name: tuple(values) for name, values in labels.items()}


def gravest_severity(infos: Iterable[Info]) -> Severity:
    """The most severe severity among ``infos`` (Unknown when there are none)."""
    return min((info.severity for info in infos), key=lambda s: s.rank, default=Severity.UNKNOWN)


def _geocodes(infos: Iterable[Info]) -> list[tuple[str, str]]:
    return [
        (code.name.strip().casefold(), code.value.strip())
        for info in infos
        for area in info.areas
        for code in area.geocodes
        if code.value.strip()
    ]


def areas_overlap(first: Sequence[Info], second: Sequence[Info]) -> bool:
    """True when the two sets of infos describe places that share ground.

    Shapes are intersected; geocodes of the same scheme overlap when one value
    starts with the other, which is containment in hierarchical schemes such as
    INEGI's CVEGEO (``09`` contains ``09015``) or NUTS, and equality in the
    fixed-length ones (SAME, UGC). Without shapes or geocodes on both sides
    there is no evidence of overlap, and the answer is no.
    """
    if geo.any_intersect(info_shapes(first), info_shapes(second)):
        return True
    theirs = _geocodes(second)
    return any(
        scheme == other_scheme and (value.startswith(other) or other.startswith(value))
        for scheme, value in _geocodes(first)
        for other_scheme, other in theirs
    )
