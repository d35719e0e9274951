"""The routing model: what a rules file says, what routing needs, what it decides.

Everything here is immutable and free of I/O: the rules file is read once into
these records (``alertcast.rules_load``), evaluated against each alert
(``alertcast.rules_eval``), and the decision is a plain record a person can
read (``alertcast rules test``) and a dispatcher can act on.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo

from alertcast.domain import (
    Alert,
    AlertKey,
    Category,
    Certainty,
    Circle,
    MsgType,
    Polygon,
    Severity,
    Status,
    Urgency,
    format_cap_datetime,
)
from alertcast.rules_text import Reason
from alertcast.timezones import zone

ALERT_LABELS: tuple[str, ...] = (
    "feed",
    "thread",
    "sender",
    "identifier",
    "status",
    "msg_type",
    "scope",
    "incident",
)
"""Labels every alert has once (``incident`` may repeat)."""

INFO_LABELS: tuple[str, ...] = (
    "category",
    "event",
    "urgency",
    "severity",
    "certainty",
    "language",
    "area",
    "geocode",
)
"""Labels that belong to one ``<info>`` block of an alert."""

DELIVERY_LABELS: tuple[str, ...] = ("channel", "route")
"""Labels of one delivery: where routing sends the alert."""

GROUP_LABELS: tuple[str, ...] = ALERT_LABELS + INFO_LABELS
"""What ``group_by`` and an inhibit rule's ``equal`` may name."""

SILENCE_LABELS: tuple[str, ...] = GROUP_LABELS + DELIVERY_LABELS
"""What a silence matcher may name."""

EXERCISE_STATUSES: frozenset[Status] = frozenset({Status.EXERCISE, Status.TEST})
"""What an exercise route follows when it does not list ``status``.

System and Draft messages are network plumbing and unfinished work; an exercise
route follows them only when it names them.
"""


class Approval(StrEnum):
    """How many people must approve a delivery before it goes out."""

    AUTO = "auto"
    ONE = "one"
    TWO = "two"

    @property
    def people(self) -> int:
        return {"auto": 0, "one": 1, "two": 2}[self.value]

    def stricter(self, other: Approval) -> Approval:
        return self if self.people >= other.people else other


@dataclass(frozen=True, slots=True)
class TextPattern:
    """A case-insensitive pattern: a glob by default, a regular expression after ``re:``.

    Globs (``Sismo*``, ``*carretera*``) match the whole text. Regular
    expressions search anywhere in the text (``re:sismo|terremoto`` matches
    ``Sismo fuerte``); anchor them with ``^`` and ``$`` when needed.
    """

    text: str
    regex: re.Pattern[str] = field(compare=False, repr=False)
    is_regex: bool = False

    @classmethod
    def compile(cls, text: str) -> TextPattern:
        """Compile ``text``; raises ``re.error`` for a bad regular expression."""
        if text.startswith("re:"):
            return cls(text, re.compile(text[3:], re.IGNORECASE), is_regex=True)
        return cls(text, re.compile(fnmatch.translate(text), re.IGNORECASE))

    def matches(self, value: str) -> bool:
        found = self.regex.search(value) if self.is_regex else self.regex.match(value)
        return found is not None

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class GeocodeMatcher:
    """Geocodes of one scheme (``valueName``, case-insensitive) whose value starts with a prefix."""

    scheme: str
    prefixes: tuple[str, ...]

    def describe(self) -> str:
        return f"{self.scheme} {'|'.join(self.prefixes)}*"


@dataclass(frozen=True, slots=True)
class NamedArea:
    """A place defined in the rules file: polygons and circles, united."""

    name: str
    polygons: tuple[Polygon, ...] = ()
    circles: tuple[Circle, ...] = ()
    description: str | None = None

    @property
    def shapes(self) -> tuple[Polygon | Circle, ...]:
        return (*self.polygons, *self.circles)


@dataclass(frozen=True, slots=True)
class Matcher:
    """What a route (or an inhibit rule's side) requires of an alert.

    An empty field places no condition. Alert-level fields (``feeds``,
    ``senders``, ``statuses``, ``msg_types``) look at the whole alert; the others
    must all hold for one and the same ``<info>`` block, so that a Severe
    English info and a Minor Spanish one never combine into a match neither
    would make alone. When both ``geocodes`` and ``areas`` are given, the alert
    is in place if either matches: geocodes cover alerts that carry no shapes.
    """

    feeds: tuple[TextPattern, ...] = ()
    senders: tuple[TextPattern, ...] = ()
    statuses: frozenset[Status] | None = None
    msg_types: frozenset[MsgType] | None = None
    categories: frozenset[Category] | None = None
    events: tuple[TextPattern, ...] = ()
    urgency_at_least: Urgency | None = None
    severity_at_least: Severity | None = None
    certainty_at_least: Certainty | None = None
    geocodes: tuple[GeocodeMatcher, ...] = ()
    areas: tuple[NamedArea, ...] = ()
    languages: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return self == Matcher()

    @property
    def info_fields(self) -> tuple[str, ...]:
        """Names of the info-level conditions set, as written in the rules file."""
        fields = (
            ("category", self.categories is not None),
            ("event", bool(self.events)),
            ("urgency_at_least", self.urgency_at_least is not None),
            ("severity_at_least", self.severity_at_least is not None),
            ("certainty_at_least", self.certainty_at_least is not None),
            ("geocode", bool(self.geocodes)),
            ("area", bool(self.areas)),
            ("language", bool(self.languages)),
        )
        return tuple(name for name, present in fields if present)


AudienceKind = Literal["subscribers", "channel-post"]
SUBSCRIBERS: AudienceKind = "subscribers"
CHANNEL_POST: AudienceKind = "channel-post"


@dataclass(frozen=True, slots=True)
class Audience:
    """Who a delivery reaches on its channel.

    ``subscribers``: people subscribed to any of ``topics`` whose places lie in
    ``areas`` (``alert`` = the alert's own area, ``anywhere``, or named areas).
    ``channel-post``: a post on the channel itself (a Telegram channel, a
    Mastodon account), seen by whoever follows it. ``test`` marks the audience
    of an exercise route: the only audience a non-Actual alert may reach.
    """

    kind: AudienceKind = CHANNEL_POST
    topics: tuple[str, ...] = ()
    areas: tuple[str, ...] = ()
    test: bool = False

    def describe(self) -> str:
        prefix = "test " if self.test else ""
        if self.kind == CHANNEL_POST:
            return f"{prefix}channel post"
        return f"{prefix}subscribers topics={','.join(self.topics)} areas={','.join(self.areas)}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "topics": list(self.topics),
            "areas": list(self.areas),
            "test": self.test,
        }


@dataclass(frozen=True, slots=True)
class Route:
    """One node of the routing tree, with its outputs already inherited from its parents.

    ``approval`` and ``priority`` are None when neither this route nor a parent
    sets them: the defaults then depend on the route and the alert (see
    ``alertcast.rules``). ``path`` is where the route is written in the rules
    file (``route.routes[1]``), for messages.
    """

    name: str
    path: str
    matcher: Matcher = Matcher()
    channels: tuple[str, ...] = ()
    audience: Audience = Audience()
    template: str | None = None
    approval: Approval | None = None
    approval_from: str | None = None
    priority: int | None = None
    priority_from: str | None = None
    exercise: bool = False
    continue_: bool = False
    group_by: tuple[str, ...] = ()
    group_window_s: float = 0.0
    routes: tuple[Route, ...] = ()

    def walk(self) -> list[Route]:
        """This route and every descendant, depth first in file order."""
        found = [self]
        for child in self.routes:
            found.extend(child.walk())
        return found


@dataclass(frozen=True, slots=True)
class InhibitRule:
    """An active alert matching ``source`` suppresses a new one matching ``target``.

    Only when the two share every label in ``equal``, their areas overlap, the
    source is strictly more severe, and both are real or both are exercises.
    """

    name: str
    source: Matcher
    target: Matcher
    equal: tuple[str, ...] = ("event",)


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily window in a channel's local time when only grave alerts go out at once.

    ``start`` after ``end`` means the window crosses midnight (22:00-07:00).
    """

    start: time
    end: time
    timezone: str
    zone: ZoneInfo = field(compare=False, repr=False)

    @classmethod
    def make(cls, start: time, end: time, timezone: str) -> QuietHours:
        """Raises ``alertcast.timezones.UnknownTimeZone`` for an unknown zone."""
        return cls(start, end, timezone, zone(timezone))

    def window_end(self, at: datetime) -> datetime | None:
        """When the quiet window that ``at`` falls in ends (UTC); None outside quiet hours."""
        local = at.astimezone(self.zone)
        now = local.time()
        today = local.date()
        end_day: date | None = None
        if self.start < self.end:
            if self.start <= now < self.end:
                end_day = today
        elif now >= self.start:
            end_day = today + timedelta(days=1)
        elif now < self.end:
            end_day = today
        if end_day is None:
            return None
        return datetime.combine(end_day, self.end, tzinfo=self.zone).astimezone(UTC)

    def describe(self) -> tuple[str, str, str]:
        return self.start.strftime("%H:%M"), self.end.strftime("%H:%M"), self.timezone


_LABEL_MATCHER = re.compile(r"^\s*([a-z_]+)\s*(=~|!~|!=|=)(.*)$", re.DOTALL)
MatchOp = Literal["=", "!=", "=~", "!~"]


@dataclass(frozen=True, slots=True)
class LabelMatcher:
    """One condition of a silence, Alertmanager style: ``label=value``.

    ``=`` and ``!=`` take a glob (exact text when it has no ``*``, ``?`` or
    ``[``), ``=~`` and ``!~`` a regular expression searched in the value; all
    case-insensitive. A label with several values (an alert in two languages)
    satisfies ``=``/``=~`` when any value matches and ``!=``/``!~`` when none does.
    """

    label: str
    op: MatchOp
    value: str
    pattern: re.Pattern[str] = field(compare=False, repr=False)

    @classmethod
    def make(cls, label: str, op: str, value: str) -> LabelMatcher:
        """Build and check one matcher; raises ValueError naming what is wrong."""
        if label not in SILENCE_LABELS:
            raise ValueError(f"unknown label {label!r}; use one of {', '.join(SILENCE_LABELS)}")
        if op not in ("=", "!=", "=~", "!~"):
            raise ValueError(f"unknown operator {op!r}; use =, !=, =~ or !~")
        if op in ("=~", "!~"):
            try:
                pattern = re.compile(value, re.IGNORECASE)
            except re.error as exc:
                raise ValueError(f"{label}{op}{value}: invalid regular expression: {exc}") from None
        else:
            pattern = re.compile(fnmatch.translate(value), re.IGNORECASE)
        return cls(label, cast(MatchOp, op), value, pattern)

    @classmethod
    def parse(cls, text: str) -> LabelMatcher:
        """Read ``label=value`` (or ``!=``, ``=~``, ``!~``); raises ValueError."""
        found = _LABEL_MATCHER.match(text)
        if found is None:
            raise ValueError(f"{text!r} is not label=value (or !=, =~, !~)")
        label, op, value = found.groups()
        return cls.make(label, op, value.strip())

    def matches(self, values: Collection[str]) -> bool:
        if self.op in ("=~", "!~"):
            hit = any(self.pattern.search(v) is not None for v in values)
        elif self.value == "" and not values:
            hit = True  # label="" matches a label the alert does not have
        else:
            hit = any(self.pattern.match(v) is not None for v in values)
        return hit if self.op in ("=", "=~") else not hit

    def to_json(self) -> dict[str, str]:
        return {"label": self.label, "op": self.op, "value": self.value}

    def __str__(self) -> str:
        return f"{self.label}{self.op}{self.value}"


@dataclass(frozen=True, slots=True)
class Silence:
    """A time-boxed mute by matchers, with who set it and why.

    A silence mutes a delivery when, for every info of the alert, every
    matcher holds (so an alert is never muted because one of its languages
    happens to match). It never mutes a real Extreme and Immediate alert unless
    ``include_extreme`` says so explicitly: such an alert is a tsunami or an
    earthquake early warning, and a silence set last week for noisy road
    reports must not be the reason nobody heard it.
    """

    id: int
    matchers: tuple[LabelMatcher, ...]
    starts_at: datetime
    ends_at: datetime
    author: str
    reason: str
    created_at: datetime
    expired_at: datetime | None = None
    include_extreme: bool = False

    @property
    def effective_end(self) -> datetime:
        """When the silence stops muting: its end, or when it was expired early."""
        if self.expired_at is not None and self.expired_at < self.ends_at:
            return self.expired_at
        return self.ends_at

    def is_active(self, at: datetime) -> bool:
        return self.starts_at <= at < self.effective_end

    def describe_matchers(self) -> str:
        return ", ".join(str(m) for m in self.matchers)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "matchers": [m.to_json() for m in self.matchers],
            "starts_at": format_cap_datetime(self.starts_at),
            "ends_at": format_cap_datetime(self.ends_at),
            "author": self.author,
            "reason": self.reason,
            "created_at": format_cap_datetime(self.created_at),
            "expired_at": format_cap_datetime(self.expired_at) if self.expired_at else None,
            "include_extreme": self.include_extreme,
        }


@dataclass(frozen=True, slots=True)
class RouteTree:
    """Everything the rules file configures, validated and ready to evaluate."""

    root: Route
    inhibit: tuple[InhibitRule, ...] = ()
    areas: Mapping[str, NamedArea] = field(default_factory=dict)
    quiet_hours: Mapping[str, QuietHours] = field(default_factory=dict)
    file: str | None = None

    @classmethod
    def empty(cls, file: str | None = None) -> RouteTree:
        """No rules: every alert is handled by a root that sends nowhere."""
        return cls(root=Route(name="root", path="route"), file=file)

    @property
    def routes(self) -> list[Route]:
        return self.root.walk()

    def route(self, alert: Alert, *, context: RoutingContext) -> RoutingDecision:
        """Route ``alert``: see :func:`alertcast.rules_eval.route`."""
        from alertcast.rules_eval import route

        return route(self, alert, context=context)


@dataclass(frozen=True, slots=True)
class ActiveAlert:
    """An alert in force, with where it came from: a candidate source for inhibition."""

    alert: Alert
    feed: str | None = None
    thread: str | None = None


@dataclass(frozen=True, slots=True)
class GroupState:
    """The latest message of a group: its first alert's key and when it was last updated."""

    key: str
    first: str
    last_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "first": self.first, "last_at": format_cap_datetime(self.last_at)}


@dataclass(frozen=True, slots=True)
class RoutingContext:
    """What routing needs besides the alert and the rules; routing itself reads nothing.

    ``quiet_hours`` overrides the channels' configured quiet hours when given
    (None: use the tree's).
    """

    now: datetime
    feed: str | None = None
    thread: str | None = None
    active_alerts: tuple[ActiveAlert, ...] = ()
    groups: Mapping[str, GroupState] = field(default_factory=dict)
    silences: tuple[Silence, ...] = ()
    quiet_hours: Mapping[str, QuietHours] | None = None


RouteOutcome = Literal["handled", "matched", "no-match", "skipped", "not-tried"]


@dataclass(frozen=True, slots=True)
class RouteTrace:
    """How one route fared: for ``rules test`` and the audit of a decision."""

    path: str
    name: str
    depth: int
    outcome: RouteOutcome
    reasons: tuple[Reason, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "name": self.name,
            "depth": self.depth,
            "outcome": self.outcome,
            "reasons": [r.to_json() for r in self.reasons],
        }


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message to send: the alert on a channel to an audience, and how."""

    route: str
    channel: str
    audience: Audience
    template: str | None
    approval: Approval
    priority: int
    exercise: bool
    languages: tuple[str, ...] = ()
    group_key: str | None = None
    group_update_of: str | None = None
    deferred_until: datetime | None = None
    notes: tuple[Reason, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "channel": self.channel,
            "audience": self.audience.to_json(),
            "template": self.template,
            "approval": self.approval.value,
            "priority": self.priority,
            "exercise": self.exercise,
            "languages": list(self.languages),
            "group_key": self.group_key,
            "group_update_of": self.group_update_of,
            "deferred_until": (
                format_cap_datetime(self.deferred_until) if self.deferred_until else None
            ),
            "notes": [n.to_json() for n in self.notes],
        }


SuppressionCause = Literal["inhibited", "silenced", "exercise-boundary"]


@dataclass(frozen=True, slots=True)
class Suppressed:
    """A delivery routing found and then held back, with the reason."""

    delivery: Delivery
    cause: SuppressionCause
    reason: Reason
    silence_id: int | None = None
    inhibited_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "cause": self.cause,
            "reason": self.reason.to_json(),
            "silence_id": self.silence_id,
            "inhibited_by": self.inhibited_by,
            "delivery": self.delivery.to_json(),
        }


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    """Where an alert goes, and why; where it does not go, and why not.

    ``deliveries`` are to be sent (those with ``deferred_until`` after quiet
    hours); ``suppressed`` were held back by inhibition, a silence or the
    exercise boundary; ``groups`` are the group states the caller should
    record so that the next alert of the group becomes an update.
    """

    alert: AlertKey
    status: Status
    trace: tuple[RouteTrace, ...]
    deliveries: tuple[Delivery, ...] = ()
    suppressed: tuple[Suppressed, ...] = ()
    groups: tuple[GroupState, ...] = ()
    notes: tuple[Reason, ...] = ()

    @property
    def handled_by(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.trace if t.outcome == "handled")

    @property
    def inhibited(self) -> tuple[Suppressed, ...]:
        return tuple(s for s in self.suppressed if s.cause == "inhibited")

    @property
    def silenced(self) -> tuple[Suppressed, ...]:
        return tuple(s for s in self.suppressed if s.cause == "silenced")

    @property
    def deferred(self) -> tuple[Delivery, ...]:
        return tuple(d for d in self.deliveries if d.deferred_until is not None)

    @property
    def grouped(self) -> tuple[Delivery, ...]:
        return tuple(d for d in self.deliveries if d.group_update_of is not None)

    def to_json(self) -> dict[str, Any]:
        return {
            "alert": str(self.alert),
            "status": self.status.value,
            "handled_by": list(self.handled_by),
            "trace": [t.to_json() for t in self.trace],
            "deliveries": [d.to_json() for d in self.deliveries],
            "suppressed": [s.to_json() for s in self.suppressed],
            "groups": [g.to_json() for g in self.groups],
            "notes": [n.to_json() for n in self.notes],
        }
