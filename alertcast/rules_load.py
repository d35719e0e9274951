"""Reading the rules file into a validated :class:`~alertcast.rules_model.RouteTree`.

Like the rest of the configuration, the rules fail fast and all at once: every
problem is collected with its file and key (``route.routes[1].event``), so an
operator fixes the whole file in one pass at ``alertcast check`` time, never
at three in the morning when the first alert of a kind arrives.

Beyond types and vocabularies, the loader refuses every configuration that
could let a drill reach the public or a real alert reach a drill audience:
see :func:`parse_rules`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import time
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from alertcast.domain import (
    Category,
    Certainty,
    Circle,
    MsgType,
    Polygon,
    Severity,
    Status,
    Urgency,
)
from alertcast.errors import ConfigError, ConfigProblem
from alertcast.rules_model import (
    CHANNEL_POST,
    EXERCISE_STATUSES,
    GROUP_LABELS,
    SUBSCRIBERS,
    Approval,
    Audience,
    GeocodeMatcher,
    InhibitRule,
    Matcher,
    NamedArea,
    QuietHours,
    Route,
    RouteTree,
    TextPattern,
)
from alertcast.timezones import UnknownTimeZone

if TYPE_CHECKING:
    from alertcast.config import ChannelConfig

DEFAULT_GROUP_WINDOW_S = 3600.0
"""How long a group stays open after its last alert when ``group_by`` gives no window:
an hour covers the update rhythm of road operators' closure reports."""

SPECIAL_AUDIENCE_AREAS = ("alert", "anywhere")
"""``alert``: subscribers inside the alert's own area; ``anywhere``: wherever they are."""

_TOP_KEYS = frozenset({"route", "inhibit", "areas"})
_MATCHER_KEYS = frozenset(
    {
        "feeds",
        "sender",
        "status",
        "msg_type",
        "category",
        "event",
        "urgency_at_least",
        "severity_at_least",
        "certainty_at_least",
        "geocode",
        "area",
        "language",
    }
)
_OUTPUT_KEYS = frozenset(
    {
        "name",
        "description",
        "channels",
        "audience",
        "test_audience",
        "template",
        "approval",
        "priority",
        "exercise",
        "continue",
        "group_by",
        "group_window_s",
        "routes",
    }
)
_INHIBIT_KEYS = frozenset({"name", "description", "source", "target", "equal"})
_AREA_KEYS = frozenset({"polygon", "circle", "description"})
_CIRCLE_KEYS = frozenset({"lat", "lon", "radius_km"})
_GEOCODE_KEYS = frozenset({"scheme", "prefix"})
_AUDIENCE_KEYS = frozenset({"topics", "areas"})
_QUIET_KEYS = frozenset({"start", "end", "timezone"})

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
_TOPIC = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_TEMPLATE = re.compile(r"^[a-z0-9_-]+$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_GLOB_CHARS = re.compile(r"[*?\[]")

_E = TypeVar("_E", bound=Enum)


def _hint(value: str, choices: Iterable[str]) -> str:
    options = list(choices)
    lowered = {c.lower(): c for c in options}
    close = difflib.get_close_matches(value.lower(), list(lowered), n=1)
    return f"; did you mean '{lowered[close[0]]}'?" if close else ""


class _Problems:
    """Collects problems for one file (or, for channel options, another one)."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[ConfigProblem] = []

    def add(self, key: str, message: str, file: str | None = None) -> None:
        self.items.append(ConfigProblem(file or self.file, key, message))

    def unknown_keys(
        self,
        prefix: str,
        table: Mapping[str, Any],
        allowed: frozenset[str],
        file: str | None = None,
    ) -> None:
        for key in table:
            if key not in allowed:
                hint = difflib.get_close_matches(key, sorted(allowed), n=1)
                suffix = f"; did you mean '{hint[0]}'?" if hint else ""
                self.add(f"{prefix}{key}", f"unknown key{suffix}", file)


@dataclass(slots=True)
class _Inherited:
    """Outputs a child route takes from its parent unless it sets them."""

    channels: tuple[str, ...] = ()
    audience: Audience = field(default_factory=Audience)
    test_audience: Audience | None = None
    template: str | None = None
    approval: Approval | None = None
    approval_from: str | None = None
    priority: int | None = None
    priority_from: str | None = None
    exercise: bool = False
    group_by: tuple[str, ...] = ()
    group_window_s: float = 0.0


@dataclass(frozen=True, slots=True)
class _ChannelUse:
    channel: str
    route_path: str
    exercise: bool
    audience: Audience


class _Loader:
    def __init__(
        self,
        file: str,
        channels: Sequence[ChannelConfig],
        feeds: Collection[str] | None,
    ) -> None:
        self.problems = _Problems(file)
        self.file = file
        self.channels = {c.name: c for c in channels}
        self.feeds = feeds
        self.areas: dict[str, NamedArea] = {}
        self.route_names: dict[str, str] = {}
        self.public_topics: dict[str, str] = {}
        self.test_topics: list[tuple[str, str]] = []
        self.uses: list[_ChannelUse] = []

    # Small typed readers ----------------------------------------------------

    def string_list(self, value: Any, key: str) -> list[str] | None:
        """A string or a list of strings; None (and a problem) otherwise."""
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return cast(list[str], value)
        self.problems.add(key, "must be a string or a list of strings")
        return None

    def vocabulary(self, enum: type[_E], value: Any, key: str) -> frozenset[_E] | None:
        names = self.string_list(value, key)
        if names is None:
            return None
        found: set[_E] = set()
        for name in names:
            member = self.word(enum, name, key)
            if member is not None:
                found.add(member)
        if not names:
            self.problems.add(key, "must not be empty")
        return frozenset(found)

    def word(self, enum: type[_E], value: Any, key: str) -> _E | None:
        if not isinstance(value, str):
            self.problems.add(key, "must be a string")
            return None
        by_lower = {str(m.value).lower(): m for m in enum}
        member = by_lower.get(value.strip().lower())
        if member is None:
            choices = [str(m.value) for m in enum]
            self.problems.add(
                key,
                f"unknown value '{value}'{_hint(value, choices)} (one of: {', '.join(choices)})",
            )
        return member

    def patterns(self, value: Any, key: str) -> tuple[TextPattern, ...]:
        texts = self.string_list(value, key) or []
        compiled: list[TextPattern] = []
        for text in texts:
            if not text.strip() or text == "re:":
                self.problems.add(key, "an empty pattern matches nothing; remove it")
                continue
            try:
                compiled.append(TextPattern.compile(text))
            except re.error as exc:
                self.problems.add(key, f"invalid regular expression '{text[3:]}': {exc}")
        return tuple(compiled)

    def boolean(self, table: Mapping[str, Any], name: str, key: str, default: bool) -> bool:
        value = table.get(name, default)
        if not isinstance(value, bool):
            self.problems.add(key, f"must be true or false, not {type(value).__name__}")
            return default
        return value

    # Named areas --------------------------------------------------------------

    def load_areas(self, value: Any) -> None:
        if not isinstance(value, dict):
            self.problems.add("areas", "must be a table of [areas.NAME] tables")
            return
        for name, table in value.items():
            key = f"areas.{name}"
            if not _NAME.match(name):
                self.problems.add(key, "area names are letters, digits, '-', '_', '.' or ':'")
            if not isinstance(table, dict):
                self.problems.add(key, "must be a table with polygon and/or circle")
                continue
            self.problems.unknown_keys(f"{key}.", table, _AREA_KEYS)
            polygons: list[Polygon] = []
            circles: list[Circle] = []
            if "polygon" in table:
                polygon = self.polygon(table["polygon"], f"{key}.polygon")
                if polygon is not None:
                    polygons.append(polygon)
            if "circle" in table:
                circle = self.circle(table["circle"], f"{key}.circle")
                if circle is not None:
                    circles.append(circle)
            if "polygon" not in table and "circle" not in table:
                self.problems.add(key, "needs a polygon or a circle")
            description = table.get("description")
            self.areas[name] = NamedArea(
                name,
                tuple(polygons),
                tuple(circles),
                description if isinstance(description, str) else None,
            )

    def coordinate(self, value: Any, key: str) -> tuple[float, float] | None:
        if (
            isinstance(value, list)
            and len(value) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        ):
            lat, lon = float(value[0]), float(value[1])
            if -90 <= lat <= 90 and -180 <= lon <= 180:
                return lat, lon
            self.problems.add(key, f"[{lat}, {lon}] is not [lat, lon] in degrees")
            return None
        self.problems.add(key, "points are [lat, lon] pairs of numbers")
        return None

    def polygon(self, value: Any, key: str) -> Polygon | None:
        if not isinstance(value, list):
            self.problems.add(key, "must be a list of [lat, lon] points")
            return None
        points = [self.coordinate(p, f"{key}[{i}]") for i, p in enumerate(value)]
        if any(p is None for p in points):
            return None
        ring = [p for p in points if p is not None]
        if len(set(ring)) < 3:
            self.problems.add(key, "needs at least 3 distinct points")
            return None
        if ring[0] != ring[-1]:
            ring.append(ring[0])  # CAP rings are closed; accept an open one and close it
        return Polygon(tuple(ring))

    def circle(self, value: Any, key: str) -> Circle | None:
        if not isinstance(value, dict):
            self.problems.add(key, "must be a table {lat, lon, radius_km}")
            return None
        self.problems.unknown_keys(f"{key}.", value, _CIRCLE_KEYS)
        numbers: dict[str, float] = {}
        for name in ("lat", "lon", "radius_km"):
            number = value.get(name)
            if not isinstance(number, int | float) or isinstance(number, bool):
                self.problems.add(f"{key}.{name}", "is required and must be a number")
                return None
            numbers[name] = float(number)
        if not (-90 <= numbers["lat"] <= 90 and -180 <= numbers["lon"] <= 180):
            self.problems.add(key, "lat and lon must be degrees")
            return None
        if numbers["radius_km"] <= 0:
            self.problems.add(f"{key}.radius_km", "must be greater than 0")
            return None
        return Circle(numbers["lat"], numbers["lon"], numbers["radius_km"])

    # Matchers -----------------------------------------------------------------

    def matcher(self, table: Mapping[str, Any], prefix: str) -> Matcher:
        feeds = self.patterns(table["feeds"], f"{prefix}feeds") if "feeds" in table else ()
        self.check_feed_names(feeds, f"{prefix}feeds")

        def threshold(name: str, enum: type[_E]) -> _E | None:
            return self.word(enum, table[name], prefix + name) if name in table else None

        return Matcher(
            feeds=feeds,
            senders=self.patterns(table["sender"], f"{prefix}sender") if "sender" in table else (),
            statuses=(
                self.vocabulary(Status, table["status"], f"{prefix}status")
                if "status" in table
                else None
            ),
            msg_types=(
                self.vocabulary(MsgType, table["msg_type"], f"{prefix}msg_type")
                if "msg_type" in table
                else None
            ),
            categories=(
                self.vocabulary(Category, table["category"], f"{prefix}category")
                if "category" in table
                else None
            ),
            events=self.patterns(table["event"], f"{prefix}event") if "event" in table else (),
            urgency_at_least=threshold("urgency_at_least", Urgency),
            severity_at_least=threshold("severity_at_least", Severity),
            certainty_at_least=threshold("certainty_at_least", Certainty),
            geocodes=self.geocodes(table["geocode"], f"{prefix}geocode")
            if "geocode" in table
            else (),
            areas=self.area_refs(table["area"], f"{prefix}area") if "area" in table else (),
            languages=(
                self.languages(table["language"], f"{prefix}language")
                if "language" in table
                else ()
            ),
        )

    def check_feed_names(self, patterns: Sequence[TextPattern], key: str) -> None:
        if self.feeds is None:
            return
        for pattern in patterns:
            if pattern.is_regex or _GLOB_CHARS.search(pattern.text):
                continue
            if pattern.text not in self.feeds:
                self.problems.add(
                    key,
                    f"unknown feed '{pattern.text}'{_hint(pattern.text, self.feeds)} "
                    "(feeds are the files in feeds/)",
                )

    def geocodes(self, value: Any, key: str) -> tuple[GeocodeMatcher, ...]:
        tables = value if isinstance(value, list) else [value]
        found: list[GeocodeMatcher] = []
        for index, table in enumerate(tables):
            where = f"{key}[{index}]" if isinstance(value, list) else key
            if not isinstance(table, dict):
                self.problems.add(where, 'must be a table {scheme = "...", prefix = [...]}')
                continue
            self.problems.unknown_keys(f"{where}.", table, _GEOCODE_KEYS)
            scheme = table.get("scheme")
            if not isinstance(scheme, str) or not scheme.strip():
                self.problems.add(f"{where}.scheme", "is required (the geocode valueName)")
                continue
            prefixes = self.string_list(table.get("prefix"), f"{where}.prefix")
            if not prefixes or any(not p.strip() for p in prefixes):
                if prefixes is not None:
                    self.problems.add(f"{where}.prefix", "needs at least one non-empty prefix")
                continue
            found.append(GeocodeMatcher(scheme.strip(), tuple(p.strip() for p in prefixes)))
        return tuple(found)

    def area_refs(self, value: Any, key: str) -> tuple[NamedArea, ...]:
        names = self.string_list(value, key) or []
        found: list[NamedArea] = []
        for name in names:
            area = self.areas.get(name)
            if area is None:
                self.problems.add(
                    key,
                    f"unknown area '{name}'{_hint(name, self.areas)} "
                    f"(define it under [areas.{name}])",
                )
                continue
            found.append(area)
        return tuple(found)

    def languages(self, value: Any, key: str) -> tuple[str, ...]:
        tags = self.string_list(value, key) or []
        for tag in tags:
            if not _LANGUAGE.match(tag):
                self.problems.add(key, f"'{tag}' is not a language tag like 'es' or 'es-MX'")
        return tuple(t for t in tags if _LANGUAGE.match(t))

    # Outputs --------------------------------------------------------------------

    def audience(self, value: Any, key: str, *, test: bool) -> Audience | None:
        if value == CHANNEL_POST:
            return Audience(kind=CHANNEL_POST, test=test)
        if not isinstance(value, dict):
            self.problems.add(
                key, 'must be "channel-post" or a table {topics = [...], areas = [...]}'
            )
            return None
        self.problems.unknown_keys(f"{key}.", value, _AUDIENCE_KEYS)
        topics = self.string_list(value.get("topics"), f"{key}.topics") or []
        if not topics:
            self.problems.add(f"{key}.topics", "is required: the subscriber topics to reach")
        for topic in topics:
            if not _TOPIC.match(topic):
                self.problems.add(
                    f"{key}.topics", f"'{topic}' is not a topic name (lowercase, digits, '-_.')"
                )
        areas = self.string_list(value.get("areas", ["alert"]), f"{key}.areas") or []
        if "areas" in value and not areas:
            self.problems.add(f"{key}.areas", 'must not be empty (use ["anywhere"] for everyone)')
        for area in areas:
            if area not in SPECIAL_AUDIENCE_AREAS and area not in self.areas:
                self.problems.add(
                    f"{key}.areas",
                    f"unknown area '{area}'{_hint(area, [*self.areas, *SPECIAL_AUDIENCE_AREAS])} "
                    "(use 'alert', 'anywhere' or an [areas.NAME])",
                )
        return Audience(kind=SUBSCRIBERS, topics=tuple(topics), areas=tuple(areas), test=test)

    def channel_names(self, value: Any, key: str) -> tuple[str, ...] | None:
        names = self.string_list(value, key)
        if names is None:
            return None
        for name in names:
            if name not in self.channels:
                self.problems.add(
                    key,
                    f"unknown channel '{name}'{_hint(name, self.channels)} "
                    "(channels are the files in channels/)",
                )
        return tuple(dict.fromkeys(names))

    # Routes -----------------------------------------------------------------------

    def route(self, table: Any, path: str, inherited: _Inherited) -> Route:
        is_root = path == "route"
        prefix = f"{path}."
        if not isinstance(table, dict):
            self.problems.add(path, "must be a table")
            return Route(name=path, path=path)
        self.problems.unknown_keys(prefix, table, _MATCHER_KEYS | _OUTPUT_KEYS)
        name = self.route_name(table, path, is_root)

        matcher_keys = sorted(k for k in table if k in _MATCHER_KEYS)
        if is_root and matcher_keys:
            for key in matcher_keys:
                self.problems.add(
                    prefix + key,
                    "the root route matches every alert; put matchers on a [[route.routes]] child",
                )
        matcher = self.matcher(table, prefix)

        exercise = self.boolean(table, "exercise", prefix + "exercise", inherited.exercise)
        if inherited.exercise and not exercise:
            self.problems.add(
                prefix + "exercise", "a route under an exercise route is an exercise route too"
            )
            exercise = True
        if exercise and "exercise" in table and matcher.statuses is None:
            matcher = replace(matcher, statuses=EXERCISE_STATUSES)
        if exercise and matcher.statuses and Status.ACTUAL in matcher.statuses:
            self.problems.add(prefix + "status", "an exercise route never follows Actual alerts")

        channels = inherited.channels
        if "channels" in table:
            channels = self.channel_names(table["channels"], prefix + "channels") or ()

        audience, test_audience = self.route_audiences(table, prefix, exercise, inherited)
        effective = test_audience if exercise else audience
        if exercise and channels and test_audience is None:
            self.problems.add(
                prefix + "test_audience",
                "is required on exercise routes: the test group that receives the drill",
            )

        template = inherited.template
        if "template" in table:
            value = table["template"]
            if isinstance(value, str) and _TEMPLATE.match(value):
                template = value
            else:
                self.problems.add(prefix + "template", "must be a template name like 'earthquake'")

        approval, approval_from = inherited.approval, inherited.approval_from
        if "approval" in table:
            approval = self.word(Approval, table["approval"], prefix + "approval")
            approval_from = name

        priority, priority_from = inherited.priority, inherited.priority_from
        if "priority" in table:
            value = table["priority"]
            if isinstance(value, int) and not isinstance(value, bool):
                priority, priority_from = value, name
            else:
                self.problems.add(prefix + "priority", "must be an integer")
        if exercise and priority is not None and priority > 0 and "priority" in table:
            self.problems.add(
                prefix + "priority",
                "exercise routes take a priority of 0 or less: "
                "a drill never overtakes a real alert",
            )

        continue_ = self.boolean(table, "continue", prefix + "continue", False)
        if is_root and "continue" in table:
            self.problems.add(prefix + "continue", "the root route has no siblings to continue to")

        group_by, group_window_s = self.grouping(table, prefix, inherited)

        if effective is not None:
            for channel in channels:
                self.uses.append(_ChannelUse(channel, path, exercise, effective))

        child_state = _Inherited(
            channels=channels,
            audience=audience,
            test_audience=test_audience,
            template=template,
            approval=approval,
            approval_from=approval_from,
            priority=priority,
            priority_from=priority_from,
            exercise=exercise,
            group_by=group_by,
            group_window_s=group_window_s,
        )
        children: list[Route] = []
        raw_children = table.get("routes", [])
        if not isinstance(raw_children, list):
            self.problems.add(prefix + "routes", "must be a list of tables ([[...routes]])")
            raw_children = []
        for index, child in enumerate(raw_children):
            children.append(self.route(child, f"{path}.routes[{index}]", child_state))

        has_exercise_descendant = any(r.exercise for child in children for r in child.walk())
        if (
            not exercise
            and matcher.statuses
            and any(s != Status.ACTUAL for s in matcher.statuses)
            and not has_exercise_descendant
        ):
            others = ", ".join(sorted(s.value for s in matcher.statuses if s != Status.ACTUAL))
            self.problems.add(
                prefix + "status",
                f"{others} alerts only follow routes marked exercise = true; "
                "mark this route exercise = true with a test_audience",
            )

        return Route(
            name=name,
            path=path,
            matcher=matcher,
            channels=channels,
            # An exercise route missing its test_audience is refused above; should the
            # tree be used anyway, a plain audience makes the exercise boundary block it.
            audience=effective if effective is not None else Audience(),
            template=template,
            approval=approval,
            approval_from=approval_from,
            priority=priority,
            priority_from=priority_from,
            exercise=exercise,
            continue_=continue_,
            group_by=group_by,
            group_window_s=group_window_s,
            routes=tuple(children),
        )

    def route_name(self, table: Mapping[str, Any], path: str, is_root: bool) -> str:
        default = "root" if is_root else path
        name = table.get("name", default)
        if not isinstance(name, str) or ("name" in table and not _NAME.match(name)):
            self.problems.add(
                f"{path}.name", "must be letters, digits, '-', '_', '.' or ':' (no spaces)"
            )
            return default
        if name in self.route_names:
            self.problems.add(
                f"{path}.name", f"'{name}' is already used by {self.route_names[name]}"
            )
        self.route_names[name] = path
        return name

    def route_audiences(
        self, table: Mapping[str, Any], prefix: str, exercise: bool, inherited: _Inherited
    ) -> tuple[Audience, Audience | None]:
        audience = inherited.audience
        test_audience = inherited.test_audience
        if exercise:
            if "audience" in table:
                self.problems.add(
                    prefix + "audience",
                    "exercise routes reach only their test_audience; remove audience",
                )
            if "test_audience" in table:
                test_audience = self.audience(
                    table["test_audience"], prefix + "test_audience", test=True
                )
                for topic in test_audience.topics if test_audience else ():
                    self.test_topics.append((topic, prefix + "test_audience.topics"))
        else:
            if "test_audience" in table:
                self.problems.add(
                    prefix + "test_audience",
                    "only exercise routes (exercise = true) have a test_audience",
                )
            if "audience" in table:
                parsed = self.audience(table["audience"], prefix + "audience", test=False)
                if parsed is not None:
                    audience = parsed
                    for topic in parsed.topics:
                        self.public_topics.setdefault(topic, prefix + "audience.topics")
        return audience, test_audience

    def grouping(
        self, table: Mapping[str, Any], prefix: str, inherited: _Inherited
    ) -> tuple[tuple[str, ...], float]:
        group_by, window = inherited.group_by, inherited.group_window_s
        if "group_by" in table:
            labels = self.string_list(table["group_by"], prefix + "group_by") or []
            for label in labels:
                if label not in GROUP_LABELS:
                    self.problems.add(
                        prefix + "group_by",
                        f"unknown label '{label}'{_hint(label, GROUP_LABELS)} "
                        f"(one of: {', '.join(GROUP_LABELS)})",
                    )
            group_by = tuple(label for label in labels if label in GROUP_LABELS)
            window = window or DEFAULT_GROUP_WINDOW_S
        if "group_window_s" in table:
            value = table["group_window_s"]
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                self.problems.add(prefix + "group_window_s", "must be a number of seconds above 0")
            else:
                window = float(value)
            if not group_by:
                self.problems.add(prefix + "group_window_s", "needs group_by to say what groups")
        return group_by, window if group_by else 0.0

    # Inhibit rules ------------------------------------------------------------------

    def inhibit_rules(self, value: Any) -> tuple[InhibitRule, ...]:
        if not isinstance(value, list):
            self.problems.add("inhibit", "must be a list of tables ([[inhibit]])")
            return ()
        rules: list[InhibitRule] = []
        for index, table in enumerate(value):
            key = f"inhibit[{index}]"
            if not isinstance(table, dict):
                self.problems.add(key, "must be a table")
                continue
            self.problems.unknown_keys(f"{key}.", table, _INHIBIT_KEYS)
            name = table.get("name", key)
            if "name" in table and (not isinstance(name, str) or not _NAME.match(name)):
                self.problems.add(f"{key}.name", "must be letters, digits, '-', '_', '.' or ':'")
                name = key
            sides: dict[str, Matcher] = {}
            for side in ("source", "target"):
                side_table = table.get(side)
                if not isinstance(side_table, dict) or not side_table:
                    self.problems.add(
                        f"{key}.{side}",
                        "is required: a table of matchers (an empty one would match every alert)",
                    )
                    continue
                self.problems.unknown_keys(f"{key}.{side}.", side_table, _MATCHER_KEYS)
                sides[side] = self.matcher(side_table, f"{key}.{side}.")
            equal: tuple[str, ...] = ("event",)
            if "equal" in table:
                labels = self.string_list(table["equal"], f"{key}.equal") or []
                for label in labels:
                    if label not in GROUP_LABELS:
                        self.problems.add(
                            f"{key}.equal", f"unknown label '{label}'{_hint(label, GROUP_LABELS)}"
                        )
                equal = tuple(label for label in labels if label in GROUP_LABELS)
            if len(sides) == 2:
                rules.append(InhibitRule(name, sides["source"], sides["target"], equal))
        return tuple(rules)

    # Channel options ------------------------------------------------------------------

    def channel_options(self) -> tuple[dict[str, QuietHours], set[str]]:
        quiet: dict[str, QuietHours] = {}
        test_only: set[str] = set()
        for channel in self.channels.values():
            file = str(channel.file)
            options = channel.options
            if "test_only" in options:
                if isinstance(options["test_only"], bool):
                    if options["test_only"]:
                        test_only.add(channel.name)
                else:
                    self.problems.add("options.test_only", "must be true or false", file)
            if "quiet_hours" in options:
                hours = self.quiet_hours(options["quiet_hours"], file)
                if hours is not None:
                    quiet[channel.name] = hours
        return quiet, test_only

    def quiet_hours(self, value: Any, file: str) -> QuietHours | None:
        key = "options.quiet_hours"
        if not isinstance(value, dict):
            self.problems.add(
                key, 'must be a table {start = "22:00", end = "07:00", timezone}', file
            )
            return None
        self.problems.unknown_keys(f"{key}.", value, _QUIET_KEYS, file)
        clocks: dict[str, time] = {}
        for name in ("start", "end"):
            text = value.get(name)
            found = _CLOCK.match(text) if isinstance(text, str) else None
            if found is None:
                self.problems.add(f"{key}.{name}", 'must be a 24-hour time like "22:00"', file)
                continue
            clocks[name] = time(int(found.group(1)), int(found.group(2)))
        zone = value.get("timezone")
        if not isinstance(zone, str) or not zone:
            self.problems.add(f"{key}.timezone", 'is required, e.g. "America/Mexico_City"', file)
            return None
        if len(clocks) < 2:
            return None
        if clocks["start"] == clocks["end"]:
            self.problems.add(key, "start and end are the same time", file)
            return None
        try:
            return QuietHours.make(clocks["start"], clocks["end"], zone)
        except UnknownTimeZone:
            self.problems.add(f"{key}.timezone", f"unknown time zone '{zone}'", file)
            return None

    # Whole-tree checks ---------------------------------------------------------------

    def check_exercise_separation(self, test_only: set[str]) -> None:
        """Refuse every configuration in which a drill could be taken for the real thing."""
        for topic, key in self.test_topics:
            if topic in self.public_topics:
                self.problems.add(
                    key,
                    f"topic '{topic}' is also a public audience ({self.public_topics[topic]}); "
                    "a drill audience must be a group of its own",
                )
        for use in self.uses:
            if use.exercise and use.audience.kind == CHANNEL_POST and use.channel not in test_only:
                self.problems.add(
                    f"{use.route_path}.test_audience",
                    f"a drill posted on channel '{use.channel}' would be seen by its public "
                    "followers; post drills only on channels with options.test_only = true, "
                    "or send them to test topics",
                )
            if not use.exercise and use.channel in test_only:
                self.problems.add(
                    f"{use.route_path}.channels",
                    f"channel '{use.channel}' is a test channel (options.test_only = true); "
                    "real alerts never go to it",
                )


def parse_rules(
    data: Mapping[str, Any],
    file: str | Path,
    *,
    channels: Sequence[ChannelConfig] = (),
    feeds: Collection[str] | None = None,
) -> tuple[RouteTree, list[ConfigProblem]]:
    """Read the rules file's ``data``; return the tree and every problem found.

    ``channels`` are the configured channels (routes may name only those, and
    their ``options.quiet_hours`` and ``options.test_only`` are read here);
    ``feeds``, when given, are the configured feed names that ``feeds``
    matchers without wildcards must name.

    Besides types and vocabularies, these are refused, so that a drill can
    never be taken for the real thing: a non-exercise route following
    non-Actual alerts; an exercise route following Actual alerts, setting an
    ``audience``, lacking a ``test_audience``, or outranking real alerts; a
    test topic that is also a public topic; a drill posted on a channel not
    marked ``options.test_only``; a real alert routed to such a channel.
    """
    loader = _Loader(str(file), channels, feeds)
    loader.problems.unknown_keys("", data, _TOP_KEYS)
    if "areas" in data:
        loader.load_areas(data["areas"])
    quiet, test_only = loader.channel_options()
    root_table = data.get("route", {})
    root = loader.route(root_table, "route", _Inherited())
    inhibit = loader.inhibit_rules(data["inhibit"]) if "inhibit" in data else ()
    loader.check_exercise_separation(test_only)
    tree = RouteTree(
        root=root,
        inhibit=inhibit,
        areas=dict(loader.areas),
        quiet_hours=quiet,
        file=str(file),
    )
    return tree, loader.problems.items


def load_rules(
    data: Mapping[str, Any],
    file: str | Path,
    *,
    channels: Sequence[ChannelConfig] = (),
    feeds: Collection[str] | None = None,
) -> RouteTree:
    """Like :func:`parse_rules`, but raise ``ConfigError`` listing every problem."""
    tree, problems = parse_rules(data, file, channels=channels, feeds=feeds)
    if problems:
        raise ConfigError(problems)
    return tree
