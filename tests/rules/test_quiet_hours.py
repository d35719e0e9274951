"""Quiet hours: deferred to the end of the window, across midnight and time zones, unless grave."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any

import pytest

from alertcast.domain import Severity, Status, Urgency
from alertcast.rules import Delivery, QuietHours
from tests.rules.support import alert, decide, info, rules

MEXICO_CITY = {"quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "America/Mexico_City"}}
MADRID_SIESTA = {"quiet_hours": {"start": "14:00", "end": "16:30", "timezone": "Europe/Madrid"}}
TREE = '[route]\nchannels = ["sms", "telegram"]\n'
CDMX = timezone(timedelta(hours=-6))  # Mexico City has kept UTC-6 all year since 2022


def local(hour: int, minute: int = 0, day: int = 19) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=CDMX)


def sms(now: datetime, severity: Severity = Severity.MODERATE, **changes: Any) -> Delivery:
    tree = rules(TREE, options={"sms": MEXICO_CITY})
    subject = alert(info(severity=severity, **changes))
    decision = decide(tree, subject, now=now)
    return {d.channel: d for d in decision.deliveries}["sms"]


@pytest.mark.parametrize(
    ("now", "until"),
    [
        (local(22, 0), local(7, 0, day=20)),  # the window starts at 22:00 sharp
        (local(23, 30), local(7, 0, day=20)),  # before midnight: until tomorrow morning
        (local(2, 15), local(7, 0)),  # after midnight: until this morning
        (local(6, 59), local(7, 0)),
        (local(7, 0), None),  # the window ends at 07:00 sharp
        (local(12, 0), None),
        (local(21, 59), None),
    ],
)
def test_deferred_to_the_end_of_the_window_across_midnight(
    now: datetime, until: datetime | None
) -> None:
    delivery = sms(now)
    assert delivery.deferred_until == until


def test_the_deferral_says_why() -> None:
    delivery = sms(local(23, 0))
    note = delivery.notes[-1]
    assert note.code == "quiet.deferred"
    assert "22:00-07:00 (America/Mexico_City) on sms" in note.text("en")


def test_only_the_quiet_channel_waits() -> None:
    tree = rules(TREE, options={"sms": MEXICO_CITY})
    decision = decide(tree, alert(), now=local(23, 0))
    deferred = {d.channel: d.deferred_until for d in decision.deliveries}
    assert deferred == {"sms": local(7, 0, day=20), "telegram": None}
    assert decision.deferred == (decision.deliveries[0],)


@pytest.mark.parametrize(
    ("severity", "urgency", "why"),
    [
        (Severity.EXTREME, Urgency.FUTURE, "Extreme severity"),
        (Severity.MINOR, Urgency.IMMEDIATE, "Immediate urgency"),
        (Severity.EXTREME, Urgency.IMMEDIATE, "Extreme severity"),
    ],
)
def test_extreme_or_immediate_real_alerts_override_quiet_hours(
    severity: Severity, urgency: Urgency, why: str
) -> None:
    delivery = sms(local(3, 0), severity, urgency=urgency)
    assert delivery.deferred_until is None
    note = delivery.notes[-1]
    assert note.code == "quiet.override" and why in note.text("en")


def test_severe_but_expected_still_waits() -> None:
    assert sms(local(3, 0), Severity.SEVERE, urgency=Urgency.EXPECTED).deferred_until == local(7, 0)


def test_drills_always_wait_even_when_extreme_and_immediate() -> None:
    tree = rules(
        """
[route]
[[route.routes]]
name = "drills"
exercise = true
channels = ["drill-group"]
test_audience = "channel-post"
""",
        options={"drill-group": {"test_only": True, **MEXICO_CITY}},
    )
    drill = alert(
        info(severity=Severity.EXTREME, urgency=Urgency.IMMEDIATE), status=Status.EXERCISE
    )
    (delivery,) = decide(tree, drill, now=local(3, 0)).deliveries
    assert delivery.deferred_until == local(7, 0)


def test_the_same_instant_is_quiet_in_one_zone_and_not_in_another() -> None:
    tree = rules(TREE, options={"sms": MEXICO_CITY, "telegram": MADRID_SIESTA})
    # 14:30 in Madrid (CET, UTC+1) is 07:30 in Mexico City.
    decision = decide(tree, alert(), now=datetime(2026, 1, 19, 13, 30, tzinfo=UTC))
    deferred = {d.channel: d.deferred_until for d in decision.deliveries}
    assert deferred == {"sms": None, "telegram": datetime(2026, 1, 19, 15, 30, tzinfo=UTC)}


def test_the_end_is_the_local_clock_time_across_daylight_saving_changes() -> None:
    night = QuietHours.make(time(22, 0), time(7, 0), "America/New_York")
    # Spring forward, 8 March 2026: 01:30 EST; the window ends at 07:00 EDT (UTC-4).
    assert night.window_end(datetime(2026, 3, 8, 6, 30, tzinfo=UTC)) == datetime(
        2026, 3, 8, 11, 0, tzinfo=UTC
    )
    # Fall back, 1 November 2026: 23:00 EDT on the 31st; the window ends at 07:00 EST (UTC-5).
    assert night.window_end(datetime(2026, 11, 1, 3, 0, tzinfo=UTC)) == datetime(
        2026, 11, 1, 12, 0, tzinfo=UTC
    )


def test_the_context_may_carry_its_own_quiet_hours() -> None:
    tree = rules(TREE)
    hours = QuietHours.make(time(0, 0), time(23, 59), "UTC")
    decision = decide(tree, alert(), quiet_hours={"telegram": hours})
    assert {d.channel: d.deferred_until is not None for d in decision.deliveries} == {
        "sms": False,
        "telegram": True,
    }
