"""Exercises never reach a non-exercise audience, and real alerts never reach a drill audience."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alertcast.domain import Category, Severity, Status
from alertcast.errors import ConfigError
from alertcast.rules import Audience, Route, RouteTree
from tests.rules.support import alert, codes, decide, info, outcome, rules, rules_from, sent_to

TREE = """
[route]
channels = ["sms", "telegram"]
audience = { topics = ["avisos"] }

[[route.routes]]
name = "everything-public"
channels = ["telegram"]
audience = "channel-post"
continue = true

[[route.routes]]
name = "drills"
exercise = true
channels = ["sms", "drill-group"]
test_audience = { topics = ["simulacros"] }

  [[route.routes.routes]]
  name = "drill-posts"
  channels = ["drill-group"]
  test_audience = "channel-post"
  category = "Geo"
"""


def test_an_exercise_skips_public_routes_and_reaches_only_the_drill_audience() -> None:
    drill = alert(status=Status.EXERCISE)
    decision = decide(rules(TREE), drill)
    assert outcome(decision) == {
        "root": "matched",
        "everything-public": "skipped",
        "drills": "handled",
        "drill-posts": "no-match",
    }
    assert codes(decision, "everything-public")[-1] == "exercise.not_exercise"
    assert sent_to(decision) == [("sms", "drills"), ("drill-group", "drills")]
    assert all(d.exercise and d.audience.test for d in decision.deliveries)
    assert all(d.priority <= 0 for d in decision.deliveries)


def test_a_drill_may_be_posted_on_a_test_only_channel() -> None:
    drill = alert(info(categories=(Category.GEO,)), status=Status.TEST)
    decision = decide(rules(TREE), drill)
    assert sent_to(decision) == [("drill-group", "drill-posts")]
    assert decision.deliveries[0].audience == Audience("channel-post", test=True)


def test_a_real_alert_never_enters_an_exercise_route() -> None:
    decision = decide(rules(TREE), alert(info(categories=(Category.GEO,))))
    assert outcome(decision)["drills"] == "skipped"
    assert codes(decision, "drills") == ["exercise.actual"]
    assert "drill-posts" not in outcome(decision)  # its subtree is never entered
    assert sent_to(decision) == [("telegram", "everything-public")]
    assert not any(d.audience.test for d in decision.deliveries)


def test_an_exercise_with_no_exercise_route_goes_nowhere() -> None:
    tree = rules('[route]\nchannels = ["sms"]\n[[route.routes]]\nname = "all"\n')
    decision = decide(tree, alert(status=Status.EXERCISE))
    assert decision.deliveries == ()
    assert outcome(decision) == {"root": "skipped", "all": "skipped"}


def test_system_and_draft_messages_follow_only_routes_that_list_them() -> None:
    tree = rules(TREE)
    assert decide(tree, alert(status=Status.SYSTEM)).deliveries == ()
    assert decide(tree, alert(status=Status.DRAFT)).deliveries == ()
    listing = rules(
        """
[route]
[[route.routes]]
name = "plumbing"
exercise = true
status = ["System"]
channels = ["drill-group"]
test_audience = "channel-post"
"""
    )
    assert sent_to(decide(listing, alert(status=Status.SYSTEM))) == [("drill-group", "plumbing")]
    assert decide(listing, alert(status=Status.EXERCISE)).deliveries == ()


def test_an_exercise_route_may_sit_under_a_public_container() -> None:
    tree = rules(
        """
[route]
channels = ["sms"]
[[route.routes]]
name = "quakes"
category = "Geo"
  [[route.routes.routes]]
  name = "quake-drills"
  exercise = true
  test_audience = { topics = ["simulacro-sismo"] }
"""
    )
    drill = alert(info(categories=(Category.GEO,)), status=Status.EXERCISE)
    decision = decide(tree, drill)
    assert outcome(decision) == {"root": "matched", "quakes": "matched", "quake-drills": "handled"}
    real = decide(tree, alert(info(categories=(Category.GEO,))))
    assert outcome(real) == {"root": "matched", "quakes": "handled", "quake-drills": "skipped"}


def test_the_final_check_blocks_a_drill_even_from_a_hand_built_tree() -> None:
    """Trees are built by the loader, which refuses these; the last check holds regardless."""
    leaky = Route(
        name="leaky",
        path="route.routes[0]",
        channels=("sms",),
        audience=Audience("subscribers", ("avisos",), ("alert",)),
        exercise=True,
    )
    mislabelled = Route(
        name="mislabelled",
        path="route.routes[1]",
        channels=("sms",),
        audience=Audience("subscribers", ("simulacros",), ("alert",), test=True),
    )
    tree = RouteTree(root=Route(name="root", path="route", routes=(leaky,)))
    drill = decide(tree, alert(status=Status.EXERCISE))
    assert drill.deliveries == ()
    assert [s.cause for s in drill.suppressed] == ["exercise-boundary"]
    tree = RouteTree(root=Route(name="root", path="route", routes=(mislabelled,)))
    real = decide(tree, alert())
    assert real.deliveries == ()
    assert [s.reason.code for s in real.suppressed] == ["exercise.blocked_actual"]


# Property: whatever the (valid) rules, the wall holds. ------------------------------

CATEGORIES = ["Geo", "Met", "Transport"]
SEVERITIES = ["Extreme", "Severe", "Moderate", "Minor"]


@st.composite
def route_tables(draw: st.DrawFn, depth: int = 0, exercise_parent: bool = False) -> dict[str, Any]:
    """One route table with random matchers, outputs and children, as the loader reads it."""
    exercise = exercise_parent or draw(st.booleans())
    table: dict[str, Any] = {}
    if draw(st.booleans()):
        table["category"] = draw(st.sampled_from(CATEGORIES))
    if draw(st.booleans()):
        table["severity_at_least"] = draw(st.sampled_from(SEVERITIES))
    if draw(st.booleans()):
        table["continue"] = True
    if exercise:
        if not exercise_parent:
            table["exercise"] = True
            statuses = draw(st.sets(st.sampled_from(["Exercise", "Test", "System", "Draft"])))
            if statuses:
                table["status"] = sorted(statuses)
        if draw(st.booleans()):
            table["channels"] = ["drill-group"]
            table["test_audience"] = "channel-post"
        elif draw(st.booleans()):
            table["channels"] = [draw(st.sampled_from(["sms", "telegram"]))]
            table["test_audience"] = {"topics": [f"drill-{draw(st.integers(0, 3))}"]}
    else:
        if draw(st.booleans()):
            table["status"] = ["Actual"]
        if draw(st.booleans()):
            table["channels"] = [draw(st.sampled_from(["sms", "telegram", "console"]))]
        if draw(st.booleans()):
            table["audience"] = {"topics": [f"public-{draw(st.integers(0, 3))}"]}
    if depth < 2:
        children = draw(st.lists(route_tables(depth + 1, exercise), max_size=2))
        if children:
            table["routes"] = children
    return table


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    children=st.lists(route_tables(), min_size=1, max_size=4),
    status=st.sampled_from(list(Status)),
    category=st.sampled_from([Category.GEO, Category.MET, Category.TRANSPORT]),
    severity=st.sampled_from(list(Severity)),
)
def test_no_rules_let_a_drill_out_or_a_real_alert_in(
    children: list[dict[str, Any]], status: Status, category: Category, severity: Severity
) -> None:
    data = {"route": {"channels": ["console"], "routes": children}}
    try:
        tree = rules_from(data)
    except ConfigError:
        return  # the loader refused it; a refused file is never used
    subject = alert(info(categories=(category,), severity=severity), status=status)
    decision = decide(tree, subject, now=datetime(2026, 1, 19, 18, 0, tzinfo=UTC))
    for delivery in decision.deliveries:
        if status == Status.ACTUAL:
            assert not delivery.exercise and not delivery.audience.test
            assert not any(t.startswith("drill-") for t in delivery.audience.topics)
            assert delivery.channel != "drill-group"
        else:
            assert delivery.exercise and delivery.audience.test
            assert all(t.startswith("drill-") for t in delivery.audience.topics)
            assert delivery.audience.kind == "subscribers" or delivery.channel == "drill-group"
            assert delivery.priority <= 0
    # The walk itself keeps the wall; the final check never has to step in.
    assert not [s for s in decision.suppressed if s.cause == "exercise-boundary"]


def test_the_property_explores_trees_that_load() -> None:
    """Guard against a strategy whose trees the loader always refuses (a vacuous property)."""
    data = {
        "route": {
            "channels": ["console"],
            "routes": [
                {"exercise": True, "channels": ["drill-group"], "test_audience": "channel-post"},
                {"category": "Geo", "audience": {"topics": ["public-1"]}},
            ],
        }
    }
    tree = rules_from(data)
    assert sent_to(decide(tree, alert(status=Status.TEST))) == [("drill-group", "route.routes[0]")]
