"""Inhibition: an active, graver alert on the same thing and place hides lesser ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alertcast.domain import Alert, Category, MsgType, NamedValue, Polygon, Severity, Status
from alertcast.rules import ActiveAlert
from tests.rules.support import CDMX_SQUARE, GUERRERO_COAST, alert, area, decide, info, rules

TREE = """
[route]
channels = ["telegram", "sms"]

[[inhibit]]
name = "closure-hides-minor"
source = { category = "Transport", severity_at_least = "Severe" }
target = { category = "Transport" }
equal = ["event", "area"]
"""

SEGMENT = Polygon(((19.10, -99.20), (19.10, -99.10), (19.00, -99.10), (19.00, -99.20)))
NEARBY = Polygon(((19.05, -99.15), (19.05, -99.05), (18.95, -99.05), (18.95, -99.15)))


def report(
    identifier: str, severity: Severity, *, where: Polygon = SEGMENT, **changes: Any
) -> Alert:
    details = info(
        categories=(Category.TRANSPORT,),
        event="Cierre de carretera",
        severity=severity,
        areas=(area("México-Cuernavaca", polygons=(where,)),),
    )
    return alert(details, identifier=identifier, **changes)


CLOSURE = report("CLOSE-1", Severity.SEVERE)


def inhibited(subject: Alert, *active: Alert) -> bool:
    decision = decide(rules(TREE), subject, active_alerts=tuple(ActiveAlert(a) for a in active))
    return bool(decision.inhibited) and not decision.deliveries


def test_a_minor_report_under_an_active_closure_is_inhibited() -> None:
    decision = decide(
        rules(TREE),
        report("MINOR-1", Severity.MINOR, where=NEARBY),
        active_alerts=(ActiveAlert(CLOSURE, feed="capufe"),),
    )
    assert decision.deliveries == ()
    assert [(s.cause, s.delivery.channel) for s in decision.suppressed] == [
        ("inhibited", "telegram"),
        ("inhibited", "sms"),
    ]
    held = decision.inhibited[0]
    assert held.inhibited_by == str(CLOSURE.key)
    text = held.reason.text("en")
    assert "closure-hides-minor" in text and "Severe" in text and str(CLOSURE.key) in text


def test_elsewhere_it_is_not_inhibited() -> None:
    assert not inhibited(report("M", Severity.MINOR, where=GUERRERO_COAST), CLOSURE)


def test_another_kind_of_event_is_not_inhibited() -> None:
    other = alert(
        info(
            categories=(Category.TRANSPORT,),
            event="Accidente",
            severity=Severity.MINOR,
            areas=(area("x", polygons=(SEGMENT,)),),
        )
    )
    assert not inhibited(other, CLOSURE)


def test_only_a_strictly_graver_alert_inhibits() -> None:
    assert not inhibited(report("S", Severity.SEVERE), CLOSURE)
    assert not inhibited(report("E", Severity.EXTREME), CLOSURE)
    assert inhibited(report("M", Severity.MODERATE), CLOSURE)


@pytest.mark.parametrize(
    "source",
    [
        report("OLD", Severity.SEVERE, infos=()),  # no info: nothing to compare
        alert(
            info(
                categories=(Category.TRANSPORT,),
                event="Cierre de carretera",
                severity=Severity.SEVERE,
                expires=datetime(2026, 1, 19, 12, 0, tzinfo=UTC),  # before NOW
                areas=(area("x", polygons=(SEGMENT,)),),
            ),
            identifier="EXPIRED",
        ),
        report("CANCELLED", Severity.SEVERE, msg_type=MsgType.CANCEL),
        report("DRILL", Severity.SEVERE, status=Status.EXERCISE),
    ],
    ids=["no-info", "expired", "cancel", "exercise"],
)
def test_what_never_inhibits(source: Alert) -> None:
    assert not inhibited(report("M", Severity.MINOR), source)


def test_a_drill_is_not_inhibited_by_a_real_alert() -> None:
    tree = rules(
        TREE
        + """
[[route.routes]]
name = "drills"
exercise = true
channels = ["drill-group"]
test_audience = "channel-post"
"""
    )
    drill = report("D", Severity.MINOR, status=Status.EXERCISE)
    decision = decide(tree, drill, active_alerts=(ActiveAlert(CLOSURE),))
    assert decision.inhibited == () and len(decision.deliveries) == 1


def test_an_update_is_not_inhibited_by_the_alert_it_replaces() -> None:
    downgrade = report(
        "CLOSE-2", Severity.MINOR, msg_type=MsgType.UPDATE, references=(CLOSURE.key,)
    )
    assert not inhibited(downgrade, CLOSURE)


def test_a_cancel_is_never_inhibited() -> None:
    all_clear = report("CLEAR-1", Severity.MINOR, msg_type=MsgType.CANCEL)
    assert not inhibited(all_clear, CLOSURE)


def test_an_alert_does_not_inhibit_itself() -> None:
    assert not inhibited(CLOSURE, CLOSURE)


def test_geocodes_overlap_by_hierarchy() -> None:
    tree = rules(
        """
[route]
channels = ["sms"]
[[inhibit]]
source = { severity_at_least = "Extreme" }
target = { event = "*" }
"""
    )
    state_wide = alert(
        info(
            severity=Severity.EXTREME,
            areas=(area("CDMX", geocodes=(NamedValue("INEGI_CVEGEO", "09"),)),),
        ),
        identifier="STATE",
    )
    municipal = alert(
        info(areas=(area("Coyoacán", geocodes=(NamedValue("INEGI_CVEGEO", "09003"),)),)),
        identifier="TOWN",
    )
    elsewhere = alert(
        info(areas=(area("Toluca", geocodes=(NamedValue("INEGI_CVEGEO", "15106"),)),)),
        identifier="TOLUCA",
    )
    nowhere = alert(info(areas=()), identifier="NOWHERE")
    active = (ActiveAlert(state_wide),)
    assert decide(tree, municipal, active_alerts=active).inhibited
    assert not decide(tree, elsewhere, active_alerts=active).inhibited
    assert not decide(tree, nowhere, active_alerts=active).inhibited  # no evidence of overlap


def test_shapes_overlap_across_polygon_and_circle() -> None:
    from alertcast.domain import Circle

    tree = rules(
        """
[route]
channels = ["sms"]
[[inhibit]]
source = { severity_at_least = "Severe" }
target = { severity_at_least = "Minor" }
equal = ["category"]
"""
    )
    big = alert(
        info(severity=Severity.SEVERE, areas=(area("CDMX", polygons=(CDMX_SQUARE,)),)),
        identifier="BIG",
    )
    small = alert(
        info(
            severity=Severity.MINOR, areas=(area("Centro", circles=(Circle(19.43, -99.13, 2.0),)),)
        ),
        identifier="SMALL",
    )
    other_category = alert(
        info(
            categories=(Category.HEALTH,),
            severity=Severity.MINOR,
            areas=(area("Centro", circles=(Circle(19.43, -99.13, 2.0),)),),
        ),
        identifier="HEALTH",
    )
    later = datetime(2026, 1, 19, 18, 0, tzinfo=UTC) + timedelta(minutes=1)
    assert decide(tree, small, now=later, active_alerts=(ActiveAlert(big),)).inhibited
    assert not decide(tree, other_category, now=later, active_alerts=(ActiveAlert(big),)).inhibited
