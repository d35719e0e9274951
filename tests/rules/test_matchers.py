"""Every matcher, on its own and together: what matches, what does not, and the reason given."""

from __future__ import annotations

import pytest

from alertcast.domain import (
    Category,
    Certainty,
    Circle,
    MsgType,
    NamedValue,
    Severity,
    Status,
    Urgency,
)
from tests.rules.support import (
    CDMX_GEOCODE,
    CDMX_SQUARE,
    GUERRERO_COAST,
    alert,
    area,
    codes,
    decide,
    info,
    outcome,
    rules,
)


def one_route(matchers: str, areas: str = "") -> str:
    return f"""
{areas}
[route]
channels = ["console"]
[[route.routes]]
name = "r"
{matchers}
"""


def handles(matchers: str, subject: object, *, areas: str = "", **context: object) -> bool:
    tree = rules(one_route(matchers, areas))
    decision = decide(tree, subject, **context)  # type: ignore[arg-type]
    return outcome(decision)["r"] == "handled"


def test_feeds_by_name_and_glob() -> None:
    assert handles('feeds = ["capufe-*"]', alert(), feed="capufe-carreteras")
    assert not handles('feeds = ["capufe-*"]', alert(), feed="smn-avisos")
    tree = rules(one_route('feeds = ["capufe-*"]'))
    decision = decide(tree, alert())
    assert codes(decision, "r") == ["feed.none"]  # composed by an officer: no feed at all


def test_sender() -> None:
    assert handles('sender = "*@smn.conagua.gob.mx"', alert())
    assert not handles('sender = "*@sasmex.net"', alert())


def test_status_and_msg_type() -> None:
    assert handles('msg_type = ["Update", "Cancel"]', alert(msg_type=MsgType.UPDATE))
    assert not handles('msg_type = ["Update", "Cancel"]', alert())
    assert handles('status = "actual"', alert())  # CAP words are read case-insensitively


def test_category() -> None:
    assert handles('category = ["Geo", "Met"]', alert())
    assert not handles('category = "Transport"', alert())
    two = info(categories=(Category.SAFETY, Category.TRANSPORT))
    assert handles('category = "Transport"', alert(two))


@pytest.mark.parametrize(
    ("pattern", "event", "matches"),
    [
        ("Sismo*", "Sismo fuerte", True),
        ("sismo*", "SISMO FUERTE", True),  # case-insensitive
        ("Sismo", "Sismo fuerte", False),  # a glob matches the whole text
        ("*carretera*", "Cierre de carretera", True),
        ("re:sismo|terremoto", "Alerta por terremoto", True),  # a regex searches
        ("re:^sismo$", "Sismo fuerte", False),
        ("re:tsunami", "Sismo", False),
    ],
)
def test_event_glob_and_regex(pattern: str, event: str, matches: bool) -> None:
    assert handles(f'event = "{pattern}"', alert(info(event=event))) is matches


@pytest.mark.parametrize(
    ("field", "threshold", "value", "matches"),
    [
        ("severity", "Severe", Severity.EXTREME, True),
        ("severity", "Severe", Severity.SEVERE, True),
        ("severity", "Severe", Severity.MODERATE, False),
        ("severity", "Minor", Severity.UNKNOWN, False),  # Unknown passes no threshold...
        ("severity", "Unknown", Severity.UNKNOWN, True),  # ...but Unknown itself
        ("urgency", "Expected", Urgency.IMMEDIATE, True),
        ("urgency", "Expected", Urgency.FUTURE, False),
        ("certainty", "Likely", Certainty.OBSERVED, True),
        ("certainty", "Likely", Certainty.POSSIBLE, False),
    ],
)
def test_thresholds(field: str, threshold: str, value: object, matches: bool) -> None:
    subject = alert(info(**{field: value}))
    assert handles(f'{field}_at_least = "{threshold}"', subject) is matches


def test_a_threshold_miss_says_what_was_below_what() -> None:
    tree = rules(one_route('severity_at_least = "Severe"'))
    decision = decide(tree, alert(info(severity=Severity.MINOR)))
    (step,) = [s for s in decision.trace if s.name == "r"]
    assert step.outcome == "no-match"
    assert step.reasons[0].text("en") == "[es-MX] severity Minor is below Severe"


def test_geocode_prefix_per_scheme() -> None:
    municipality = info(areas=(area("Coyoacán", geocodes=(NamedValue("INEGI_CVEGEO", "09003"),)),))
    other_scheme = info(areas=(area("x", geocodes=(NamedValue("FIPS6", "09003"),)),))
    state_of_mexico = info(areas=(area("Toluca", geocodes=(NamedValue("INEGI_CVEGEO", "15106"),)),))
    matcher = 'geocode = { scheme = "INEGI_CVEGEO", prefix = ["09", "17"] }'
    assert handles(matcher, alert(municipality))
    assert not handles(matcher, alert(other_scheme))
    assert not handles(matcher, alert(state_of_mexico))
    several = 'geocode = [{ scheme = "FIPS6", prefix = "09" }, { scheme = "SAME", prefix = "0" }]'
    assert handles(several, alert(other_scheme))
    lowercase_scheme = info(areas=(area("x", geocodes=(NamedValue("inegi_cvegeo", " 09 "),)),))
    assert handles(matcher, alert(lowercase_scheme))


AREAS = """
[areas.cdmx]
polygon = [[19.6, -99.4], [19.6, -98.9], [19.0, -98.9], [19.0, -99.4]]
[areas.acapulco]
circle = { lat = 16.85, lon = -99.88, radius_km = 25 }
"""


def test_named_area_by_polygon_intersection() -> None:
    inside = info(areas=(area("Centro", polygons=(CDMX_SQUARE,)),))
    coast = info(areas=(area("Costa", polygons=(GUERRERO_COAST,)),))
    assert handles('area = "cdmx"', alert(inside), areas=AREAS)
    assert not handles('area = "cdmx"', alert(coast), areas=AREAS)
    assert handles('area = "acapulco"', alert(coast), areas=AREAS)  # circle vs polygon


def test_named_area_by_circle() -> None:
    quake = info(areas=(area("Epicentro", circles=(Circle(16.9, -99.9, 5.0),)),))
    far = info(areas=(area("Lejos", circles=(Circle(25.0, -100.0, 5.0),)),))
    assert handles('area = ["cdmx", "acapulco"]', alert(quake), areas=AREAS)
    assert not handles('area = ["cdmx", "acapulco"]', alert(far), areas=AREAS)


def test_a_geocode_only_alert_never_matches_a_named_area_by_itself() -> None:
    geocode_only = alert(info(areas=(area("CDMX", geocodes=(CDMX_GEOCODE,)),)))
    tree = rules(one_route('area = "cdmx"', AREAS))
    decision = decide(tree, geocode_only)
    assert outcome(decision)["r"] == "no-match"
    assert codes(decision, "r") == ["area.geocode_only"]
    # With a geocode matcher beside it, either one places the alert.
    both = 'area = "cdmx"\ngeocode = { scheme = "INEGI_CVEGEO", prefix = "09" }'
    assert handles(both, geocode_only, areas=AREAS)
    shapes_only = alert(info(areas=(area("Centro", polygons=(CDMX_SQUARE,)),)))
    assert handles(both, shapes_only, areas=AREAS)


def test_language_tag_and_primary_subtag() -> None:
    assert handles('language = "es"', alert(info(language="es-419")))
    assert handles('language = "es-MX"', alert(info(language="es-mx")))
    assert not handles('language = "es-ES"', alert(info(language="es-MX")))
    assert not handles('language = "en"', alert(info(language="es-MX")))


def test_info_level_conditions_must_hold_in_the_same_info() -> None:
    severe_english = info(language="en-US", severity=Severity.SEVERE)
    minor_spanish = info(language="es-MX", severity=Severity.MINOR)
    subject = alert(severe_english, minor_spanish)
    matcher = 'language = "es"\nseverity_at_least = "Severe"'
    assert not handles(matcher, subject)
    assert handles('language = "en"\nseverity_at_least = "Severe"', subject)


def test_a_cancel_without_info_cannot_match_info_conditions() -> None:
    cancel = alert(msg_type=MsgType.CANCEL, infos=())
    tree = rules(one_route('event = "*"'))
    decision = decide(tree, cancel)
    assert codes(decision, "r") == ["info.none"]
    assert handles('msg_type = "Cancel"', cancel)


def test_every_condition_given_must_hold() -> None:
    matcher = """
feeds = "smn-*"
status = "Actual"
category = "Met"
event = "Tormenta*"
severity_at_least = "Moderate"
urgency_at_least = "Expected"
certainty_at_least = "Likely"
language = "es"
geocode = { scheme = "INEGI_CVEGEO", prefix = "09" }
"""
    assert handles(matcher, alert(), feed="smn-avisos")
    assert not handles(matcher, alert(status=Status.ACTUAL), feed="other")
    assert not handles(matcher, alert(info(certainty=Certainty.POSSIBLE)), feed="smn-avisos")
