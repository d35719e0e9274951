"""Building blocks for the routing tests: alerts, rules files and contexts in a line each."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from alertcast.config import ChannelConfig
from alertcast.domain import (
    Alert,
    Area,
    Category,
    Certainty,
    Circle,
    Info,
    MsgType,
    NamedValue,
    Polygon,
    Scope,
    Severity,
    Status,
    Urgency,
)
from alertcast.rules import RouteTree, RoutingContext, RoutingDecision, load_rules

MEXICO = timezone(timedelta(hours=-6))
NOW = datetime(2026, 1, 19, 18, 0, tzinfo=UTC)  # 12:00 in Mexico City
REPO_ROOT = Path(__file__).resolve().parents[2]
CHANNELS = ("console", "sms", "telegram", "drill-group")

CDMX_GEOCODE = NamedValue("INEGI_CVEGEO", "09")
CDMX_SQUARE = Polygon(((19.6, -99.4), (19.6, -98.9), (19.0, -98.9), (19.0, -99.4), (19.6, -99.4)))
"""A box around Mexico City."""
GUERRERO_COAST = Polygon(((17.2, -101.0), (17.2, -99.5), (16.6, -99.5), (16.6, -101.0)))


def area(
    desc: str = "Ciudad de México",
    *,
    polygons: tuple[Polygon, ...] = (),
    circles: tuple[Circle, ...] = (),
    geocodes: tuple[NamedValue, ...] = (),
) -> Area:
    return Area(desc, polygons=polygons, circles=circles, geocodes=geocodes)


def info(**changes: Any) -> Info:
    fields: dict[str, Any] = {
        "categories": (Category.MET,),
        "event": "Tormenta",
        "urgency": Urgency.EXPECTED,
        "severity": Severity.MODERATE,
        "certainty": Certainty.LIKELY,
        "language": "es-MX",
        "headline": "Tormenta en la Ciudad de México",
        "areas": (area(polygons=(CDMX_SQUARE,), geocodes=(CDMX_GEOCODE,)),),
    }
    fields.update(changes)
    return Info(**fields)


def alert(*infos: Info, **changes: Any) -> Alert:
    fields: dict[str, Any] = {
        "identifier": "SMN-0001",
        "sender": "avisos@smn.conagua.gob.mx",
        "sent": datetime(2026, 1, 19, 11, 0, tzinfo=MEXICO),
        "status": Status.ACTUAL,
        "msg_type": MsgType.ALERT,
        "scope": Scope.PUBLIC,
        "infos": infos or (info(),),
    }
    fields.update(changes)
    return Alert(**fields)


def channel(name: str, **options: Any) -> ChannelConfig:
    return ChannelConfig(
        name=name, kind="console", file=Path(f"channels/{name}.toml"), options=options
    )


def rules(
    text: str,
    *,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    feeds: tuple[str, ...] | None = None,
) -> RouteTree:
    """Load a rules file from TOML text against the test channels (``drill-group`` is test-only)."""
    return rules_from(tomllib.loads(text), options=options, feeds=feeds)


def rules_from(
    data: Mapping[str, Any],
    *,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    feeds: tuple[str, ...] | None = None,
) -> RouteTree:
    """Load rules already read from TOML."""
    chosen = {"drill-group": {"test_only": True}, **(options or {})}
    channels = [channel(name, **chosen.get(name, {})) for name in CHANNELS]
    return load_rules(data, "rules.toml", channels=channels, feeds=feeds)


def decide(tree: RouteTree, subject: Alert, **context: Any) -> RoutingDecision:
    context.setdefault("now", NOW)
    return tree.route(subject, context=RoutingContext(**context))


def outcome(decision: RoutingDecision) -> dict[str, str]:
    """Route name → outcome, for asserting on the walk."""
    return {step.name: step.outcome for step in decision.trace}


def codes(decision: RoutingDecision, name: str) -> list[str]:
    """The reason codes of one route in the trace."""
    return [r.code for step in decision.trace if step.name == name for r in step.reasons]


def sent_to(decision: RoutingDecision) -> list[tuple[str, str]]:
    """(channel, route) of every delivery, in order."""
    return [(d.channel, d.route) for d in decision.deliveries]
