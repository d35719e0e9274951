"""The routing tree: first match, continue, fallback to the parent, inheritance, merging."""

from __future__ import annotations

from alertcast.domain import Category, Severity, Urgency
from alertcast.rules import Approval, Audience, derived_priority
from tests.rules.support import alert, codes, decide, info, outcome, rules, sent_to

TREE = """
[route]
channels = ["console"]

[[route.routes]]
name = "quakes"
category = "Geo"
channels = ["sms"]
approval = "auto"

  [[route.routes.routes]]
  name = "grave-quakes"
  severity_at_least = "Severe"
  channels = ["telegram"]

[[route.routes]]
name = "weather"
category = "Met"
channels = ["telegram"]
continue = true

[[route.routes]]
name = "severe-anything"
severity_at_least = "Severe"
channels = ["sms"]

[[route.routes]]
name = "catch-all"
channels = ["telegram"]
"""


def test_first_match_wins_and_later_siblings_are_not_tried() -> None:
    decision = decide(rules(TREE), alert(info(categories=(Category.GEO,), event="Sismo")))
    assert outcome(decision) == {
        "root": "matched",
        "quakes": "handled",
        "grave-quakes": "no-match",
        "weather": "not-tried",
        "severe-anything": "not-tried",
        "catch-all": "not-tried",
    }
    assert sent_to(decision) == [("sms", "quakes")]
    assert codes(decision, "weather") == ["route.not_tried"]


def test_the_deepest_matching_route_handles_the_alert() -> None:
    grave = alert(info(categories=(Category.GEO,), severity=Severity.SEVERE))
    decision = decide(rules(TREE), grave)
    assert outcome(decision)["quakes"] == "matched"
    assert outcome(decision)["grave-quakes"] == "handled"
    assert sent_to(decision) == [("telegram", "grave-quakes")]
    # Outputs are inherited: the child did not set approval, its parent did.
    (delivery,) = decision.deliveries
    assert delivery.approval == Approval.AUTO
    assert any(n.code == "approval.route" and "quakes" in n.text("en") for n in delivery.notes)


def test_continue_lets_the_next_siblings_match_too() -> None:
    stormy = alert(info(severity=Severity.SEVERE))  # Met
    decision = decide(rules(TREE), stormy)
    assert outcome(decision)["weather"] == "handled"
    assert outcome(decision)["severe-anything"] == "handled"
    assert outcome(decision)["catch-all"] == "not-tried"
    assert sent_to(decision) == [("telegram", "weather"), ("sms", "severe-anything")]


def test_continue_without_a_later_match_falls_to_the_next_catch_all() -> None:
    mild = alert(info(severity=Severity.MINOR))  # Met, not severe
    decision = decide(rules(TREE), mild)
    assert outcome(decision)["weather"] == "handled"
    assert outcome(decision)["severe-anything"] == "no-match"
    assert outcome(decision)["catch-all"] == "handled"
    assert sent_to(decision) == [("telegram", "weather")]  # the same pair is sent once


def test_an_alert_no_child_takes_is_handled_by_the_root() -> None:
    tree = rules(
        '[route]\nchannels = ["console"]\n[[route.routes]]\nname = "geo"\ncategory = "Geo"\n'
    )
    decision = decide(tree, alert())
    assert outcome(decision) == {"root": "handled", "geo": "no-match"}
    assert sent_to(decision) == [("console", "root")]


def test_without_rules_nothing_is_sent_and_the_decision_says_so() -> None:
    decision = decide(rules(""), alert())
    assert decision.deliveries == ()
    assert [n.code for n in decision.notes] == ["route.no_channels"]


def test_duplicates_from_continue_routes_merge_with_the_stricter_approval() -> None:
    tree = rules(
        """
[route]
channels = ["sms"]
[[route.routes]]
name = "relay"
approval = "auto"
priority = 10
continue = true
[[route.routes]]
name = "careful"
approval = "two"
priority = 90
"""
    )
    decision = decide(tree, alert())
    (delivery,) = decision.deliveries
    assert delivery.route == "relay"
    assert delivery.approval == Approval.TWO
    assert delivery.priority == 90
    assert "route.merged" in [n.code for n in delivery.notes]


def test_public_routes_need_two_people_unless_they_say_otherwise() -> None:
    tree = rules('[route]\nchannels = ["sms"]\naudience = { topics = ["avisos"] }\n')
    (delivery,) = decide(tree, alert()).deliveries
    assert delivery.approval == Approval.TWO
    assert next(n.code for n in delivery.notes) == "approval.default_public"
    assert delivery.audience == Audience("subscribers", ("avisos",), ("alert",))


def test_priority_is_derived_from_the_gravest_matching_info() -> None:
    tree = rules('[route]\nchannels = ["sms"]\n')
    grave = alert(
        info(severity=Severity.MINOR, urgency=Urgency.FUTURE),
        info(severity=Severity.EXTREME, urgency=Urgency.IMMEDIATE, language="en-US"),
    )
    (delivery,) = decide(tree, grave).deliveries
    assert delivery.priority == 100
    assert delivery.languages == ("es-MX", "en-US")
    assert derived_priority((info(),), actual=True)[0] == 100 - 20 * 2 - 4 * 1
    assert derived_priority((), actual=True)[0] == 4
    assert derived_priority((info(),), actual=False)[0] == 56 - 100


def test_explicit_priority_and_template_are_inherited() -> None:
    tree = rules(
        """
[route]
channels = ["sms"]
template = "weather"
priority = 70
[[route.routes]]
name = "child"
"""
    )
    (delivery,) = decide(tree, alert()).deliveries
    assert (delivery.route, delivery.template, delivery.priority) == ("child", "weather", 70)


def test_the_trace_and_decision_serialise_to_json() -> None:
    import json

    decision = decide(rules(TREE), alert(info(severity=Severity.SEVERE)))
    record = decision.to_json()
    text = json.dumps(record)
    assert record["handled_by"] == ["weather", "severe-anything"]
    assert record["deliveries"][0]["channel"] == "telegram"
    assert "is at least" in text


def test_every_reason_reads_in_both_languages_with_the_same_values() -> None:
    import string

    from alertcast.rules_text import REASONS

    for code, texts in REASONS.items():
        assert set(texts) == {"en", "es"}, code
        fields = [
            {name for _, name, _, _ in string.Formatter().parse(text) if name}
            for text in texts.values()
        ]
        assert fields[0] == fields[1], code
