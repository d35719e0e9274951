"""The JSON form of an alert: complete, exact both ways, and strict about what it accepts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alertcast.alert_json import alert_from_json, alert_to_json
from alertcast.cap import parse_cap
from alertcast.domain import (
    Alert,
    AlertKey,
    Area,
    Category,
    Certainty,
    Circle,
    Info,
    MsgType,
    NamedValue,
    Polygon,
    Resource,
    ResponseType,
    Scope,
    Severity,
    Status,
    Urgency,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "cap"


@pytest.fixture(scope="module")
def full_alert() -> Alert:
    return parse_cap((FIXTURES / "full_12.xml").read_bytes(), strict=True).alert


@pytest.fixture
def full_json(full_alert: Alert) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        json.dumps(alert_to_json(full_alert, source_file="full_12.xml"))
    )
    return data


# --------------------------------------------------------------------------- shape


def test_json_has_every_documented_key(full_json: dict[str, Any]) -> None:
    assert {
        "source_file",
        "identifier",
        "sender",
        "sent",
        "status",
        "msg_type",
        "scope",
        "source",
        "restriction",
        "addresses",
        "codes",
        "note",
        "references",
        "incidents",
        "warnings",
        "notices",
        "infos",
    } == set(full_json)
    info = full_json["infos"][0]
    assert {
        "language",
        "category",
        "event",
        "response_type",
        "urgency",
        "severity",
        "certainty",
        "audience",
        "event_codes",
        "effective",
        "onset",
        "expires",
        "sender_name",
        "headline",
        "description",
        "instruction",
        "web",
        "contact",
        "parameters",
        "parameter_list",
        "resources",
        "areas",
    } == set(info)
    assert {"area_desc", "polygons", "circles", "geocodes", "altitude", "ceiling"} == set(
        info["areas"][0]
    )


def test_json_values_of_the_full_fixture(full_json: dict[str, Any]) -> None:
    assert full_json["source_file"] == "full_12.xml"
    assert full_json["sent"] == "2024-03-01T10:15:00+01:00"
    assert full_json["status"] == "Exercise"
    assert full_json["msg_type"] == "Update"
    assert full_json["scope"] == "Private"
    assert full_json["addresses"] == ["ops@example.org", "Mayor's Office", "fire-brigade"]
    assert full_json["references"] == [
        "duty@civil-protection.example,ALERTCAST-TEST-0000,2024-03-01T09:00:00+01:00",
        "other@example.org,X-1,2024-02-29T23:00:00+00:00",
    ]
    assert full_json["incidents"] == ["flood-2024-03", "river Aa"]
    info = full_json["infos"][0]
    assert info["category"] == ["Met", "Safety"]
    assert info["response_type"] == ["Evacuate", "Monitor"]
    assert info["event_codes"] == [{"name": "SAME", "value": "FLW"}]
    area = info["areas"][0]
    assert area["polygons"] == [[[45.1, 7.1], [45.2, 7.1], [45.2, 7.3], [45.1, 7.3], [45.1, 7.1]]]
    assert area["circles"] == [{"lat": 45.15, "lon": 7.2, "radius_km": 2.5}]
    assert area["geocodes"] == [{"name": "NUTS3", "value": "ITC11"}]
    assert (area["altitude"], area["ceiling"]) == (100.0, 1500.5)
    assert info["resources"][0] == {
        "resource_desc": "Map",
        "mime_type": "image/png",
        "size": 12345,
        "uri": "https://civil-protection.example/maps/0001.png",
        "deref_uri": "iVBORw0KGgo=",
        "digest": "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
    }


def test_repeated_parameters_become_a_list_and_the_exact_order_is_kept(
    full_json: dict[str, Any],
) -> None:
    info = full_json["infos"][0]
    assert info["parameters"] == {"level": ["3", "4"], "colour": "orange"}
    assert info["parameter_list"] == [
        {"name": "level", "value": "3"},
        {"name": "colour", "value": "orange"},
        {"name": "level", "value": "4"},
    ]


def test_warnings_and_notices_are_carried_but_not_part_of_the_alert(full_alert: Alert) -> None:
    data = alert_to_json(full_alert, warnings=["/alert/x: w"], notices=["/alert/y: n"])
    assert data["warnings"] == ["/alert/x: w"]
    assert data["notices"] == ["/alert/y: n"]
    assert alert_from_json(data) == full_alert


# --------------------------------------------------------------------------- round trip


def test_round_trip_of_the_full_fixture_is_exact(
    full_alert: Alert, full_json: dict[str, Any]
) -> None:
    assert alert_from_json(full_json) == full_alert


def test_parameters_alone_are_read_in_key_order(full_json: dict[str, Any]) -> None:
    info = full_json["infos"][0]
    del info["parameter_list"]
    parameters = alert_from_json(full_json).infos[0].parameters
    assert parameters == (
        NamedValue("level", "3"),
        NamedValue("level", "4"),
        NamedValue("colour", "orange"),
    )


def test_parameter_list_alone_is_enough(full_json: dict[str, Any], full_alert: Alert) -> None:
    del full_json["infos"][0]["parameters"]
    assert alert_from_json(full_json) == full_alert


def test_parameters_disagreeing_with_the_list_are_refused(full_json: dict[str, Any]) -> None:
    full_json["infos"][0]["parameters"]["colour"] = "red"
    with pytest.raises(ValueError, match=r"^infos\[0\]\.parameters: disagrees"):
        alert_from_json(full_json)


_TEXT = st.text(max_size=20)
_ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]
)
_TIMES = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=_ZONES
)
_TOKEN = st.text(
    st.characters(exclude_categories=("Z", "Cc", "Cs"), exclude_characters=","),
    min_size=1,
    max_size=10,
)
_FLOAT = st.floats(allow_nan=False, allow_infinity=False)
_PAIRS = st.lists(st.builds(NamedValue, _TEXT, _TEXT), max_size=4).map(tuple)


def _tuples(strategy: st.SearchStrategy[Any], max_size: int = 3) -> st.SearchStrategy[Any]:
    return st.lists(strategy, max_size=max_size).map(tuple)


_AREAS = st.builds(
    Area,
    area_desc=_TEXT,
    polygons=_tuples(st.builds(Polygon, _tuples(st.tuples(_FLOAT, _FLOAT), 6))),
    circles=_tuples(st.builds(Circle, _FLOAT, _FLOAT, _FLOAT)),
    geocodes=_PAIRS,
    altitude=st.none() | _FLOAT,
    ceiling=st.none() | _FLOAT,
)
_RESOURCES = st.builds(
    Resource,
    resource_desc=_TEXT,
    mime_type=_TEXT,
    size=st.none() | st.integers(),
    uri=st.none() | _TEXT,
    deref_uri=st.none() | _TEXT,
    digest=st.none() | _TEXT,
)
_INFOS = st.builds(
    Info,
    categories=_tuples(st.sampled_from(Category)),
    event=_TEXT,
    urgency=st.sampled_from(Urgency),
    severity=st.sampled_from(Severity),
    certainty=st.sampled_from(Certainty),
    language=_TEXT,
    response_types=_tuples(st.sampled_from(ResponseType)),
    audience=st.none() | _TEXT,
    event_codes=_PAIRS,
    effective=st.none() | _TIMES,
    onset=st.none() | _TIMES,
    expires=st.none() | _TIMES,
    sender_name=st.none() | _TEXT,
    headline=st.none() | _TEXT,
    description=st.none() | _TEXT,
    instruction=st.none() | _TEXT,
    web=st.none() | _TEXT,
    contact=st.none() | _TEXT,
    parameters=_PAIRS,
    resources=_tuples(_RESOURCES, 2),
    areas=_tuples(_AREAS, 2),
)
ALERTS = st.builds(
    Alert,
    identifier=_TEXT,
    sender=_TEXT,
    sent=_TIMES,
    status=st.sampled_from(Status),
    msg_type=st.sampled_from(MsgType),
    scope=st.sampled_from(Scope),
    source=st.none() | _TEXT,
    restriction=st.none() | _TEXT,
    addresses=_tuples(_TEXT),
    codes=_tuples(_TEXT),
    note=st.none() | _TEXT,
    references=_tuples(st.builds(AlertKey, _TOKEN, _TOKEN, _TIMES)),
    incidents=_tuples(_TEXT),
    infos=_tuples(_INFOS, 2),
)


@settings(max_examples=150, deadline=None)
@given(ALERTS)
def test_any_alert_survives_json_exactly(alert: Alert) -> None:
    text = json.dumps(alert_to_json(alert))
    assert alert_from_json(json.loads(text)) == alert


# --------------------------------------------------------------------------- defaults


def test_identifier_and_sent_may_come_from_defaults(full_json: dict[str, Any]) -> None:
    del full_json["identifier"]
    full_json["sent"] = None
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    alert = alert_from_json(full_json, default_identifier="NEW-1", default_sent=now)
    assert (alert.identifier, alert.sent) == ("NEW-1", now)


def test_present_identifier_and_sent_win_over_defaults(full_json: dict[str, Any]) -> None:
    alert = alert_from_json(
        full_json, default_identifier="NEW-1", default_sent=datetime(2000, 1, 1, tzinfo=UTC)
    )
    assert alert.identifier == "ALERTCAST-TEST-0001"
    assert alert.sent == datetime(2024, 3, 1, 9, 15, tzinfo=UTC)


@pytest.mark.parametrize("key", ["identifier", "sent"])
def test_identifier_and_sent_are_required_without_defaults(
    full_json: dict[str, Any], key: str
) -> None:
    del full_json[key]
    with pytest.raises(ValueError, match=f"^{key}: missing"):
        alert_from_json(full_json)


def test_naive_default_sent_is_refused(full_json: dict[str, Any]) -> None:
    del full_json["sent"]
    with pytest.raises(ValueError, match=r"^sent: .*no UTC offset"):
        alert_from_json(full_json, default_sent=datetime(2024, 1, 1))


def test_minimal_json_fills_optional_fields() -> None:
    alert = alert_from_json(
        {
            "identifier": "X",
            "sender": "s",
            "sent": "2024-01-01T00:00:00+00:00",
            "status": "Actual",
            "msg_type": "Alert",
            "scope": "Public",
            "infos": [
                {
                    "category": ["Fire"],
                    "event": "Wildfire",
                    "urgency": "Immediate",
                    "severity": "Extreme",
                    "certainty": "Observed",
                    "areas": [{"area_desc": "Hills"}],
                }
            ],
        }
    )
    info = alert.infos[0]
    assert info.language == "en-US"
    assert info.parameters == ()
    assert info.areas[0] == Area("Hills")


# --------------------------------------------------------------------------- bad input


def _broken(data: dict[str, Any], path: list[str | int], value: Any) -> dict[str, Any]:
    target: Any = data
    for step in path[:-1]:
        target = target[step]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["status"], "Live", r"^status: 'Live' is not one of Actual, "),
        (["status"], "actual", r"^status: 'actual' is not one of"),
        (["sender"], _DELETE, r"^sender: missing"),
        (["sender"], 7, r"^sender: expected a string"),
        (["sent"], "2024-01-01T00:00:00", r"^sent: .*no UTC offset"),
        (["addresses"], "a b", r"^addresses: expected a list"),
        (["codes"], [1], r"^codes\[0\]: expected a string"),
        (["references"], ["a,b"], r"^references\[0\]: 'a,b' is not 'sender,identifier,sent'"),
        (["references"], ["a,b,yesterday"], r"^references\[0\]: .*not an ISO 8601"),
        (["infos"], {}, r"^infos: expected a list"),
        (["infos", 0, "urgency"], "Soon", r"^infos\[0\]\.urgency: 'Soon' is not one of"),
        (["infos", 0, "category"], ["Weather"], r"^infos\[0\]\.category\[0\]: 'Weather'"),
        (["infos", 0, "expires"], "tomorrow", r"^infos\[0\]\.expires: "),
        (["infos", 0, "event"], _DELETE, r"^infos\[0\]\.event: missing"),
        (["infos", 0, "headlne"], "typo", r"^infos\[0\]\.headlne: unknown key"),
        (["infos", 0, "parameters"], {"a": 1}, r"^infos\[0\]\.parameters\.a: expected a string"),
        (["infos", 0, "parameters"], [], r"^infos\[0\]\.parameters: expected an object"),
        (["infos", 0, "resources", 0, "size"], "12", r"^infos\[0\]\.resources\[0\]\.size: "),
        (["infos", 0, "resources", 0, "size"], True, r"^infos\[0\]\.resources\[0\]\.size: "),
        (
            ["infos", 0, "areas", 0, "polygons", 0, 2],
            [45.1],
            r"^infos\[0\]\.areas\[0\]\.polygons\[0\]\[2\]: expected \[lat, lon\]",
        ),
        (
            ["infos", 0, "areas", 0, "polygons", 0, 2],
            ["45.1", "7.1"],
            r"^infos\[0\]\.areas\[0\]\.polygons\[0\]\[2\]: expected \[lat, lon\]",
        ),
        (
            ["infos", 0, "areas", 0, "circles", 0, "radius_km"],
            None,
            r"^infos\[0\]\.areas\[0\]\.circles\[0\]\.radius_km: expected a number",
        ),
        (
            ["infos", 0, "areas", 0, "geocodes", 0],
            ["NUTS3", "ITC11"],
            r"^infos\[0\]\.areas\[0\]\.geocodes\[0\]: expected an object",
        ),
        (["color"], "red", r"^color: unknown key"),
    ],
)
def test_bad_input_names_the_key(
    full_json: dict[str, Any], path: list[str | int], value: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        alert_from_json(_broken(full_json, path, value))


def test_not_an_object_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^alert: expected an object"):
        alert_from_json([])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- what JSON cannot carry


def test_naive_datetimes_are_refused_on_output(full_alert: Alert) -> None:
    from dataclasses import replace

    with pytest.raises(ValueError, match=r"^sent: .*no UTC offset"):
        alert_to_json(replace(full_alert, sent=datetime(2024, 1, 1)))


@pytest.mark.parametrize(
    "key",
    [
        AlertKey("a b", "id", datetime(2024, 1, 1, tzinfo=UTC)),
        AlertKey("a,b", "id", datetime(2024, 1, 1, tzinfo=UTC)),
        AlertKey("a", "", datetime(2024, 1, 1, tzinfo=UTC)),
        AlertKey("a", "i d", datetime(2024, 1, 1, tzinfo=UTC)),
    ],
)
def test_references_that_would_be_ambiguous_are_refused(full_alert: Alert, key: AlertKey) -> None:
    from dataclasses import replace

    with pytest.raises(ValueError, match=r"^references\[0\]: "):
        alert_to_json(replace(full_alert, references=(key,)))


def test_reference_times_keep_their_fraction_of_a_second(full_alert: Alert) -> None:
    from dataclasses import replace

    sent = datetime(2024, 1, 1, 0, 0, 0, 500_000, tzinfo=UTC)
    alert = replace(full_alert, references=(AlertKey("a", "b", sent),))
    data = alert_to_json(alert)
    assert data["references"] == ["a,b,2024-01-01T00:00:00.500000+00:00"]
    assert alert_from_json(data) == alert
