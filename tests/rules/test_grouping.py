"""Grouping: reports on the same thing within the window become an update of the first message."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from alertcast.domain import Alert, Category, NamedValue, Status
from alertcast.rules import ActiveAlert, GroupState, RoutingDecision, replay_groups
from tests.rules.support import NOW, alert, area, decide, info, rules

ROADS = """
[route]
channels = ["telegram", "sms"]
[[route.routes]]
name = "roads"
category = "Transport"
group_by = ["feed", "thread"]
group_window_s = 1800
"""

ROAD_INFO = info(categories=(Category.TRANSPORT,), event="Cierre de carretera")


def road(identifier: str, **changes: Any) -> Alert:
    return alert(ROAD_INFO, identifier=identifier, **changes)


def remember(decision: RoutingDecision) -> dict[str, GroupState]:
    return {g.key: g for g in decision.groups}


def test_the_first_report_starts_a_group_on_every_channel() -> None:
    tree = rules(ROADS)
    first = decide(tree, road("R-1"), feed="capufe", thread="mex-cuernavaca-km45")
    assert [d.group_update_of for d in first.deliveries] == [None, None]
    (group,) = first.groups
    assert group.key == "route.routes[0]|actual|feed=capufe|thread=mex-cuernavaca-km45"
    assert group.first == str(road("R-1").key)
    assert all(d.group_key == group.key for d in first.deliveries)
    assert [n.code for n in first.deliveries[0].notes][-1] == "group.new"


def test_a_second_report_within_the_window_updates_the_first_message() -> None:
    tree = rules(ROADS)
    first = decide(tree, road("R-1"), feed="capufe", thread="km45")
    later = NOW + timedelta(minutes=20)
    second = decide(
        tree, road("R-2"), feed="capufe", thread="km45", now=later, groups=remember(first)
    )
    first_key = str(road("R-1").key)
    assert [d.group_update_of for d in second.deliveries] == [first_key, first_key]
    assert second.grouped == second.deliveries
    (group,) = second.groups
    assert (group.first, group.last_at) == (first_key, later)  # the window slides
    note = next(n for n in second.deliveries[0].notes if n.code == "group.update")
    assert "1200s after the last" in note.text("en")


def test_a_report_after_the_window_starts_a_new_group() -> None:
    tree = rules(ROADS)
    first = decide(tree, road("R-1"), feed="capufe", thread="km45")
    late = decide(
        tree,
        road("R-2"),
        feed="capufe",
        thread="km45",
        now=NOW + timedelta(minutes=31),
        groups=remember(first),
    )
    assert [d.group_update_of for d in late.deliveries] == [None, None]
    (group,) = late.groups
    assert group.first == str(road("R-2").key)
    assert "group.expired" in [n.code for n in late.deliveries[0].notes]


def test_other_segments_and_other_feeds_are_other_groups() -> None:
    tree = rules(ROADS)
    state = remember(decide(tree, road("R-1"), feed="capufe", thread="km45"))
    other_segment = decide(tree, road("R-2"), feed="capufe", thread="km71", groups=state)
    other_feed = decide(tree, road("R-3"), feed="sct", thread="km45", groups=state)
    assert other_segment.grouped == () and other_feed.grouped == ()


def test_an_alert_missing_a_grouping_label_is_never_grouped() -> None:
    tree = rules(ROADS)
    state = remember(decide(tree, road("R-1"), feed="capufe"))
    assert state == {}
    again = decide(tree, road("R-2"), feed="capufe", groups=state)
    assert again.grouped == ()
    assert "group.missing" in [n.code for n in again.deliveries[0].notes]


def test_a_drill_never_updates_a_real_message() -> None:
    tree = rules(
        ROADS
        + """
[[route.routes]]
name = "road-drills"
exercise = true
channels = ["drill-group"]
test_audience = "channel-post"
group_by = ["feed", "thread"]
"""
    )
    state = remember(decide(tree, road("R-1"), feed="capufe", thread="km45"))
    drill = decide(
        tree, road("D-1", status=Status.EXERCISE), feed="capufe", thread="km45", groups=state
    )
    assert drill.grouped == ()
    assert "|exercise|" in drill.groups[0].key


def test_grouping_by_event_and_area_uses_geocodes() -> None:
    tree = rules(
        """
[route]
channels = ["sms"]
group_by = ["event", "area"]
"""
    )
    here = info(
        event="Lluvias", areas=(area("CDMX", geocodes=(NamedValue("INEGI_CVEGEO", "09"),)),)
    )
    there = info(
        event="Lluvias", areas=(area("Edomex", geocodes=(NamedValue("INEGI_CVEGEO", "15"),)),)
    )
    state = remember(decide(tree, alert(here, identifier="A")))
    assert list(state) == ["route|actual|event=lluvias|area=inegi_cvegeo:09"]
    same = decide(tree, alert(here, identifier="B"), groups=state, now=NOW + timedelta(minutes=5))
    other = decide(tree, alert(there, identifier="C"), groups=state, now=NOW + timedelta(minutes=5))
    assert same.deliveries[0].group_update_of is not None
    assert other.deliveries[0].group_update_of is None
    # Without group_window_s the window is the default hour.
    late = decide(tree, alert(here, identifier="D"), groups=state, now=NOW + timedelta(minutes=61))
    assert late.deliveries[0].group_update_of is None


def test_replaying_history_rebuilds_the_group_state() -> None:
    tree = rules(ROADS)
    history = [
        (ActiveAlert(road("R-1"), feed="capufe", thread="km45"), NOW),
        (ActiveAlert(road("R-2"), feed="capufe", thread="km45"), NOW + timedelta(minutes=10)),
    ]
    state = replay_groups(tree, history)
    (group,) = state.values()
    assert group.first == str(road("R-1").key)
    assert group.last_at == NOW + timedelta(minutes=10)
    third = decide(
        tree,
        road("R-3"),
        feed="capufe",
        thread="km45",
        now=NOW + timedelta(minutes=30),
        groups=state,
    )
    assert third.deliveries[0].group_update_of == group.first
