"""Silences: matchers, time boxes, the Extreme+Immediate rule, the audited store on both DBs."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit
from alertcast.domain import Category, Severity, Status, Urgency
from alertcast.rules import LabelMatcher, Silence
from alertcast.store.silences import SilenceNotFoundError, SilenceRepository
from tests.rules.support import NOW, alert, decide, info, rules

TREE = """
[route]
channels = ["telegram", "sms"]
[[route.routes]]
name = "roads"
category = "Transport"
group_by = ["feed"]
"""


def silence(*matchers: str, **changes: Any) -> Silence:
    fields: dict[str, Any] = {
        "id": 7,
        "matchers": tuple(LabelMatcher.parse(m) for m in matchers),
        "starts_at": NOW - timedelta(hours=1),
        "ends_at": NOW + timedelta(hours=1),
        "author": "ana.lopez",
        "reason": "Mantenimiento del canal SMS",
        "created_at": NOW - timedelta(hours=1),
    }
    fields.update(changes)
    return Silence(**fields)


# Matchers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "values", "matches"),
    [
        ("event=Sismo*", ["Sismo fuerte"], True),
        ("event=sismo", ["Sismo"], True),  # case-insensitive
        ("event=Sismo", ["Sismo fuerte"], False),  # a glob is the whole value
        ("severity!=Extreme", ["Minor"], True),
        ("severity!=Extreme", ["Minor", "Extreme"], False),  # != holds only if no value matches
        ("event=~sismo|tsunami", ["Alerta de tsunami"], True),
        ("channel!~^sms$", ["sms"], False),
        ("thread=", [], True),  # label="" matches an absent label
        ("thread=", ["km45"], False),
        ("feed = capufe ", ["capufe"], True),
    ],
)
def test_label_matchers(text: str, values: list[str], matches: bool) -> None:
    assert LabelMatcher.parse(text).matches(values) is matches


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour=red", "unknown label 'colour'"),
        ("event=~(", "invalid regular expression"),
        ("no operator here", "is not label=value"),
    ],
)
def test_bad_matchers_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LabelMatcher.parse(text)


# Routing ----------------------------------------------------------------------------


def test_a_silence_mutes_what_it_matches_and_says_who_and_why() -> None:
    decision = decide(rules(TREE), alert(), silences=(silence("event=Tormenta*"),))
    assert decision.deliveries == ()
    assert [(s.cause, s.silence_id) for s in decision.suppressed] == [
        ("silenced", 7),
        ("silenced", 7),
    ]
    text = decision.silenced[0].reason.text("en")
    assert "#7" in text and "ana.lopez" in text and "Mantenimiento" in text


def test_a_silence_can_mute_one_channel_or_one_route() -> None:
    decision = decide(rules(TREE), alert(), silences=(silence("channel=sms"),))
    assert [d.channel for d in decision.deliveries] == ["telegram"]
    assert [s.delivery.channel for s in decision.silenced] == ["sms"]
    road = alert(info(categories=(Category.TRANSPORT,)))
    muted_route = decide(rules(TREE), road, silences=(silence("route=roads"),))
    assert muted_route.deliveries == ()
    assert decide(rules(TREE), alert(), silences=(silence("route=roads"),)).silenced == ()


@pytest.mark.parametrize(
    ("changes", "active"),
    [
        ({}, True),
        ({"starts_at": NOW + timedelta(minutes=1)}, False),  # not started
        ({"ends_at": NOW}, False),  # ends exactly now
        ({"expired_at": NOW - timedelta(minutes=5)}, False),  # ended early
        ({"expired_at": NOW + timedelta(minutes=5)}, True),  # to be ended later
    ],
)
def test_only_active_silences_mute(changes: dict[str, Any], active: bool) -> None:
    decision = decide(rules(TREE), alert(), silences=(silence("event=*", **changes),))
    assert bool(decision.silenced) is active


def test_every_info_must_match_so_no_language_mutes_the_others() -> None:
    bilingual = alert(info(event="Sismo"), info(event="Earthquake", language="en-US"))
    assert not decide(rules(TREE), bilingual, silences=(silence("event=Sismo*"),)).silenced
    both = silence("event=~sismo|earthquake")
    assert decide(rules(TREE), bilingual, silences=(both,)).silenced


def test_a_silence_without_matchers_mutes_nothing() -> None:
    assert not decide(rules(TREE), alert(), silences=(silence(),)).silenced


EXTREME_NOW = info(severity=Severity.EXTREME, urgency=Urgency.IMMEDIATE, event="Tsunami")


def test_a_real_extreme_immediate_alert_is_not_muted_by_an_ordinary_silence() -> None:
    decision = decide(rules(TREE), alert(EXTREME_NOW), silences=(silence("event=*"),))
    assert len(decision.deliveries) == 2 and decision.silenced == ()
    assert "silence.extreme" in [n.code for n in decision.deliveries[0].notes]


def test_only_a_silence_that_says_include_extreme_mutes_it() -> None:
    explicit = silence("event=Tsunami", include_extreme=True)
    assert decide(rules(TREE), alert(EXTREME_NOW), silences=(explicit,)).deliveries == ()


def test_extreme_but_not_immediate_is_muted_like_any_other() -> None:
    later = info(severity=Severity.EXTREME, urgency=Urgency.EXPECTED)
    assert decide(rules(TREE), alert(later), silences=(silence("event=*"),)).deliveries == ()


def test_a_muted_alert_starts_no_group() -> None:
    road = alert(info(categories=(Category.TRANSPORT,)))
    decision = decide(rules(TREE), road, feed="capufe", silences=(silence("feed=capufe"),))
    assert decision.groups == ()


def test_a_drill_can_be_silenced_even_when_extreme_and_immediate() -> None:
    tree = rules(
        """
[route]
[[route.routes]]
name = "drills"
exercise = true
channels = ["drill-group"]
test_audience = "channel-post"
"""
    )
    drill = alert(EXTREME_NOW, status=Status.EXERCISE)
    assert decide(tree, drill, silences=(silence("status=Exercise"),)).deliveries == ()


# The store --------------------------------------------------------------------------


def matchers(*texts: str) -> list[LabelMatcher]:
    return [LabelMatcher.parse(t) for t in texts]


async def test_a_silence_is_stored_and_audited_together(engine: AsyncEngine) -> None:
    repository = SilenceRepository(engine)
    created = await repository.add(
        matchers=matchers("event=Cierre*", "feed=capufe"),
        starts_at=NOW,
        ends_at=NOW + timedelta(hours=2),
        author="ana.lopez",
        reason="Reportes duplicados de la autopista",
        now=NOW,
    )
    stored = await repository.get(created.id)
    assert stored == created
    assert [str(m) for m in stored.matchers] == ["event=Cierre*", "feed=capufe"]
    assert stored.starts_at == NOW and stored.ends_at.tzinfo is not None
    (record,) = await audit.tail(engine, 5)
    assert (record.actor, record.action, record.subject) == (
        "ana.lopez",
        "silence.created",
        f"silence:{created.id}",
    )
    assert record.data == {
        "matchers": ["event=Cierre*", "feed=capufe"],
        "starts_at": "2026-01-19T18:00:00+00:00",
        "ends_at": "2026-01-19T20:00:00+00:00",
        "reason": "Reportes duplicados de la autopista",
        "include_extreme": False,
    }
    assert await audit.verify_chain(engine) == 1


async def test_active_silences_at_a_time(engine: AsyncEngine) -> None:
    repository = SilenceRepository(engine)
    now_one = await repository.add(
        matchers=matchers("event=*"),
        starts_at=NOW,
        ends_at=NOW + timedelta(hours=1),
        author="a",
        reason="r",
        now=NOW,
    )
    later_one = await repository.add(
        matchers=matchers("channel=sms"),
        starts_at=NOW + timedelta(hours=3),
        ends_at=NOW + timedelta(hours=4),
        author="b",
        reason="r",
        include_extreme=True,
        now=NOW,
    )
    assert [s.id for s in await repository.active(NOW)] == [now_one.id]
    assert [s.id for s in await repository.active(NOW + timedelta(hours=3, minutes=5))] == [
        later_one.id
    ]
    assert await repository.active(NOW + timedelta(hours=5)) == []
    (found,) = await repository.active(NOW + timedelta(hours=3))
    assert found.include_extreme is True
    upcoming = await repository.recent(NOW + timedelta(hours=2))
    assert [s.id for s in upcoming] == [later_one.id]
    everything = await repository.recent(NOW + timedelta(hours=2), include_ended=True)
    assert [s.id for s in everything] == [later_one.id, now_one.id]


async def test_expiring_ends_it_once_and_is_audited(engine: AsyncEngine) -> None:
    repository = SilenceRepository(engine)
    created = await repository.add(
        matchers=matchers("event=*"),
        starts_at=NOW,
        ends_at=NOW + timedelta(hours=8),
        author="ana.lopez",
        reason="Simulacro regional",
        now=NOW,
    )
    at = NOW + timedelta(minutes=30)
    result = await repository.expire(created.id, actor="jefe.guardia", at=at)
    assert result.expired_now and result.silence.expired_at == at
    assert await repository.active(at + timedelta(seconds=1)) == []
    assert [s.id for s in await repository.active(at - timedelta(seconds=1))] == [created.id]
    record = (await audit.tail(engine, 1))[0]
    assert (record.actor, record.action) == ("jefe.guardia", "silence.expired")
    assert record.data["reason"] == "Simulacro regional"

    again = await repository.expire(created.id, actor="jefe.guardia", at=at + timedelta(hours=1))
    assert not again.expired_now and again.silence.expired_at == at
    assert await audit.count(engine) == 2
    assert await audit.verify_chain(engine) == 2


async def test_expiring_an_unknown_silence_is_an_error(engine: AsyncEngine) -> None:
    with pytest.raises(SilenceNotFoundError, match="#999"):
        await SilenceRepository(engine).expire(999, actor="x")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"matchers": []}, "at least one matcher"),
        ({"ends_at": NOW - timedelta(minutes=1)}, "end after it starts"),
        ({"starts_at": NOW - timedelta(hours=2), "ends_at": NOW - timedelta(hours=1)}, "already"),
        ({"reason": "  "}, "needs a reason"),
        ({"author": ""}, "needs an author"),
        ({"starts_at": datetime(2026, 1, 19, 12, 0)}, "time zone"),
    ],
)
async def test_a_bad_silence_is_refused_and_nothing_is_written(
    engine: AsyncEngine, changes: dict[str, Any], message: str
) -> None:
    fields: dict[str, Any] = {
        "matchers": matchers("event=*"),
        "starts_at": NOW,
        "ends_at": NOW + timedelta(hours=1),
        "author": "ana",
        "reason": "r",
        "now": NOW,
    }
    fields.update(changes)
    repository = SilenceRepository(engine)
    with pytest.raises(ValueError, match=message):
        await repository.add(**fields)
    assert await repository.recent(NOW, include_ended=True) == []
    assert await audit.count(engine) == 0


async def test_stored_silences_route_as_built_ones(engine: AsyncEngine) -> None:
    repository = SilenceRepository(engine)
    await repository.add(
        matchers=matchers("channel=sms", "severity!=Extreme"),
        starts_at=NOW,
        ends_at=NOW + timedelta(hours=1),
        author="ana",
        reason="Proveedor SMS caído",
        now=NOW,
    )
    active = tuple(await repository.active(NOW + timedelta(minutes=1)))
    decision = decide(rules(TREE), alert(), now=NOW + timedelta(minutes=1), silences=active)
    assert [d.channel for d in decision.deliveries] == ["telegram"]
    assert [s.delivery.channel for s in decision.silenced] == ["sms"]
