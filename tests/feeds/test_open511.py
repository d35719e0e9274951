"""The ``open511`` kind: Open511 events in JSON and XML become Transport alerts.

The corpus files have their own tests in ``test_corpus_road.py``; these pin
the mappings one by one (status, severity, schedule, geography, roads,
extensions, languages), identity and threads, and the handling of bad events
and of documents that are not Open511 events.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from alertcast.cap import parse_cap, to_cap_xml
from alertcast.config import FeedConfig
from alertcast.domain import (
    Category,
    Certainty,
    Circle,
    MsgType,
    NamedValue,
    ResponseType,
    Severity,
    Urgency,
)
from alertcast.errors import FeedError
from alertcast.feeds import geometry
from alertcast.feeds.base import FeedBatch, FeedItem
from alertcast.feeds.open511 import Open511Parser, looks_like

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "road"
REPO = Path(__file__).resolve().parents[2]
XSD_12 = etree.XMLSchema(etree.parse(str(REPO / "alertcast" / "schemas" / "CAP-v1.2.xsd")))


def feed(**mapping: Any) -> FeedConfig:
    return FeedConfig(name="roads", kind="open511", file=Path("feeds/roads.toml"), mapping=mapping)


def parse(data: bytes, **mapping: Any) -> FeedBatch:
    return Open511Parser().parse(data, feed(**mapping))


def event(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "roads.example.org/1",
        "status": "ACTIVE",
        "created": "2024-05-01T08:00:00-07:00",
        "updated": "2024-05-01T08:00:00-07:00",
        "headline": "Collision on Highway 1",
        "event_type": "INCIDENT",
        "severity": "MODERATE",
    }
    base.update(fields)
    return {key: value for key, value in base.items() if value is not None}


def one(data: dict[str, Any], **mapping: Any) -> FeedItem:
    batch = parse(json.dumps({"events": [data]}).encode(), **mapping)
    assert batch.errors == ()
    (item,) = batch.items
    assert_writes_valid_cap(item)
    return item


def assert_writes_valid_cap(item: FeedItem) -> None:
    document = to_cap_xml(item.alert)
    assert XSD_12.validate(etree.fromstring(document)), XSD_12.error_log
    assert parse_cap(document).alert == item.alert


# --------------------------------------------------------------------------- lifecycle


@pytest.mark.parametrize(
    ("status", "updated", "msg_type", "urgency", "responses"),
    [
        ("ACTIVE", "2024-05-01T08:00:00-07:00", MsgType.ALERT, Urgency.IMMEDIATE, "Monitor"),
        ("ACTIVE", "2024-05-01T09:30:00-07:00", MsgType.UPDATE, Urgency.IMMEDIATE, "Monitor"),
        ("active", None, MsgType.ALERT, Urgency.IMMEDIATE, "Monitor"),
        ("ARCHIVED", "2024-05-01T10:00:00-07:00", MsgType.CANCEL, Urgency.PAST, "AllClear"),
    ],
)
def test_status_gives_the_message_type(
    status: str, updated: str | None, msg_type: MsgType, urgency: Urgency, responses: str
) -> None:
    item = one(event(status=status, updated=updated))
    assert item.alert.msg_type is msg_type
    assert item.alert.references == ()
    assert item.thread == "open511:roads.example.org/1"
    info = item.alert.infos[0]
    assert info.urgency is urgency
    assert [r.value for r in info.response_types] == [responses]
    assert info.categories == (Category.TRANSPORT,)


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        ("MINOR", Severity.MINOR),
        ("MODERATE", Severity.MODERATE),
        ("MAJOR", Severity.SEVERE),
        ("UNKNOWN", Severity.UNKNOWN),
    ],
)
def test_severity(severity: str, expected: Severity) -> None:
    item = one(event(severity=severity))
    assert item.alert.infos[0].severity is expected
    assert item.warnings == ()


def test_a_severity_outside_open511_is_unknown_with_a_warning() -> None:
    item = one(event(severity="CATASTROPHIC"))
    assert item.alert.infos[0].severity is Severity.UNKNOWN
    assert "severity 'CATASTROPHIC' is not MINOR, MODERATE or MAJOR" in item.warnings[0]


def test_identity_follows_the_event_version() -> None:
    first = one(event()).alert
    again = one(event()).alert
    assert first.key == again.key
    assert first.identifier == "open511-roads.example.org/1-20240501T150000Z"
    assert first.sent == datetime(2024, 5, 1, 8, 0, tzinfo=timezone(timedelta(hours=-7)))
    newer = one(event(updated="2024-05-01T09:00:00-07:00")).alert
    assert newer.identifier == "open511-roads.example.org/1-20240501T160000Z"
    assert first.sender == "roads.example.org"


def test_an_id_with_characters_cap_forbids_is_hashed() -> None:
    alert = one(event(id="city gov/7, east & west")).alert
    assert alert.identifier.startswith("open511-h")
    assert not any(c in alert.identifier for c in " ,<&")


def test_an_id_without_jurisdiction_takes_it_from_the_mapping_or_the_url() -> None:
    from_url = one(event(id="77", jurisdiction_url="https://open511.example.net/jurisdiction"))
    assert from_url.thread == "open511:open511.example.net/77"
    from_mapping = one(event(id="77"), jurisdiction="my.city.gov", sender="city-roads")
    assert from_mapping.thread == "open511:my.city.gov/77"
    assert from_mapping.alert.sender == "city-roads"


def test_sent_is_updated_else_created() -> None:
    alert = one(event(updated=None, created="2024-05-01T08:00:00Z")).alert
    assert alert.sent == datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- schedule


def test_bounded_intervals_give_effective_and_expires() -> None:
    item = one(
        event(
            schedule={
                "intervals": [
                    "2024-05-01T18:00:00-07:00/2024-05-01T23:00:00-07:00",
                    "2024-05-01T06:00:00-07:00/2024-05-01T09:00:00-07:00",
                ]
            }
        )
    )
    info = item.alert.infos[0]
    pacific = timezone(timedelta(hours=-7))
    assert info.effective == datetime(2024, 5, 1, 6, 0, tzinfo=pacific)
    assert info.expires == datetime(2024, 5, 1, 23, 0, tzinfo=pacific)
    assert item.alert.note is None


def test_an_open_ended_interval_means_no_expiry_and_says_so() -> None:
    item = one(event(schedule={"intervals": ["2024-05-01T15:19:00+00:00/"]}))
    info = item.alert.infos[0]
    assert info.effective == datetime(2024, 5, 1, 15, 19, tzinfo=UTC)
    assert info.expires is None
    assert item.alert.note is not None and "no end" in item.alert.note
    assert info.parameter("schedule") == "2024-05-01T15:19:00+00:00/"


def test_zoneless_times_are_read_in_the_configured_zone() -> None:
    item = one(
        event(schedule={"intervals": ["2024-05-01T15:19/2024-05-01T17:00"]}),
        timezone="America/Vancouver",
    )
    info = item.alert.infos[0]
    pacific = timezone(timedelta(hours=-7))
    assert info.effective == datetime(2024, 5, 1, 15, 19, tzinfo=pacific)
    assert info.expires == datetime(2024, 5, 1, 17, 0, tzinfo=pacific)
    assert item.warnings == ()


def test_zoneless_times_without_a_configured_zone_are_utc_with_a_warning() -> None:
    item = one(event(schedule={"intervals": ["2024-05-01T15:19/"]}))
    assert item.alert.infos[0].effective == datetime(2024, 5, 1, 15, 19, tzinfo=UTC)
    assert item.warnings == (
        "event 1 (roads.example.org/1): times without a zone were read as UTC; set"
        " mapping.timezone to the jurisdiction's time zone",
    )


def test_recurring_schedules_bound_the_alert() -> None:
    schedule = {
        "recurring_schedules": [
            {
                "start_date": "2024-06-01",
                "end_date": "2024-06-30",
                "days": [1, 2, 3, 4, 5],
                "daily_start_time": "09:00",
                "daily_end_time": "17:00",
            },
            {
                "start_date": "2024-07-01",
                "end_date": "2024-07-02",
                "daily_start_time": "22:00",
                "daily_end_time": "04:00",
            },
        ],
        "exceptions": ["2024-06-24"],
    }
    item = one(event(schedule=schedule), timezone="America/Toronto")
    info = item.alert.infos[0]
    eastern = timezone(timedelta(hours=-4))
    assert info.effective == datetime(2024, 6, 1, 9, 0, tzinfo=eastern)
    assert info.expires == datetime(2024, 7, 3, 4, 0, tzinfo=eastern)  # overnight window
    assert info.urgency is Urgency.FUTURE and info.certainty is Certainty.LIKELY
    assert info.parameter("schedule") == (
        "2024-06-01..2024-06-30 09:00-17:00 days [1,2,3,4,5]; 2024-07-01..2024-07-02 22:00-04:00;"
        " except 2024-06-24"
    )


def test_a_recurring_schedule_without_end_date_is_open_ended() -> None:
    item = one(
        event(schedule={"recurring_schedules": [{"start_date": "2024-06-01"}]}), timezone="UTC"
    )
    assert item.alert.infos[0].expires is None
    assert item.alert.note is not None


@pytest.mark.parametrize(
    ("schedule", "reason"),
    [
        ({"intervals": ["tomorrow"]}, "schedule interval 'tomorrow' is not 'start/end'"),
        ({"intervals": ["2024-05-01T08:00/soon"]}, "schedule interval end 'soon' is not"),
        ({"recurring_schedules": [{"end_date": "2024-06-01"}]}, "has no start_date"),
        ({"recurring_schedules": [{"start_date": "June"}]}, "start_date 'June' is not"),
        (
            {"recurring_schedules": [{"start_date": "2024-06-01", "daily_start_time": "9am"}]},
            "daily_start_time '9am' is not a HH:MM time",
        ),
    ],
)
def test_a_bad_schedule_is_an_error_line(schedule: dict[str, Any], reason: str) -> None:
    batch = parse(json.dumps({"events": [event(schedule=schedule), event(id="x/2")]}).encode())
    assert len(batch.items) == 1
    assert batch.errors[0].startswith("event 1 (roads.example.org/1): ")
    assert reason in batch.errors[0]


# --------------------------------------------------------------------------- geography


def test_a_point_is_a_small_circle() -> None:
    item = one(event(geography={"type": "Point", "coordinates": [-123.1, 49.25]}))
    (area,) = item.alert.infos[0].areas
    assert area.circles == (Circle(49.25, -123.1, geometry.POINT_RADIUS_KM),)


def test_a_line_is_a_corridor_of_rectangles_around_it() -> None:
    line = [[-71.17, 47.33], [-71.15, 47.36], [-71.1, 47.35], [-71.2, 47.4]]
    item = one(event(geography={"type": "LineString", "coordinates": line}))
    (area,) = item.alert.infos[0].areas
    assert len(area.polygons) == 3
    for polygon, (start, end) in zip(area.polygons, itertools.pairwise(line), strict=True):
        assert len(polygon.points) == 5 and polygon.points[0] == polygon.points[-1]
        lats = [p[0] for p in polygon.points]
        lons = [p[1] for p in polygon.points]
        for lon, lat in (start, end):  # each segment's ends lie inside its rectangle
            assert min(lats) < lat < max(lats) and min(lons) < lon < max(lons)


def test_corridor_width_is_the_documented_one() -> None:
    (rectangle,), _ = geometry.line_corridor([(47.33, -71.17), (47.36, -71.15)])
    a, b = rectangle.points[0], rectangle.points[3]  # the two corners at the start
    dy = (a[0] - b[0]) * 110.574
    dx = (a[1] - b[1]) * 111.320 * math.cos(math.radians(47.33))
    assert math.hypot(dx, dy) == pytest.approx(2 * geometry.LINE_HALF_WIDTH_KM, rel=1e-3)


def test_a_long_line_is_simplified() -> None:
    points = [(49.0 + i * 0.001, -123.0 + 0.0005 * math.sin(i / 3)) for i in range(400)]
    polygons, circles = geometry.line_corridor(points)
    assert 1 <= len(polygons) <= geometry.MAX_SEGMENTS
    assert circles == ()


def test_a_line_of_one_repeated_point_is_a_circle() -> None:
    polygons, circles = geometry.line_corridor([(49.0, -123.0), (49.0, -123.0)])
    assert polygons == () and len(circles) == 1


def test_a_polygon_is_kept_and_closed() -> None:
    ring = [[-73.6, 45.5], [-73.5, 45.5], [-73.5, 45.6]]
    item = one(event(geography={"type": "Polygon", "coordinates": [ring]}))
    (polygon,) = item.alert.infos[0].areas[0].polygons
    assert polygon.points == ((45.5, -73.6), (45.5, -73.5), (45.6, -73.5), (45.5, -73.6))


def test_bad_geography_is_dropped_with_a_warning_and_the_alert_kept() -> None:
    item = one(event(geography={"type": "Point", "coordinates": [49.25, -123.1]}))
    assert item.alert.infos[0].areas == ()
    assert "latitude -123.1 is outside -90..90" in item.warnings[0]
    item = one(event(geography={"type": "Curve", "coordinates": []}))
    assert "geography type 'Curve' is not one this kind reads" in item.warnings[0]


# --------------------------------------------------------------------------- roads, extensions


def test_roads_areas_extensions_detour_and_attachments() -> None:
    item = one(
        event(
            roads=[
                {
                    "name": "Broadway",
                    "from": "1st",
                    "to": "4th",
                    "direction": "E",
                    "state": "SOME_LANES_CLOSED",
                    "lanes_open": 1,
                    "restrictions": [{"restriction_type": "SPEED", "value": 35}],
                },
                {"name": "Broadway", "direction": "W", "state": "CLOSED"},
            ],
            areas=[{"name": "A City", "id": "geonames.org/123456", "url": "http://geonames.org/1"}],
            detour="Take Sherbrooke.",
            attachments=[
                {
                    "url": "http://my.city.gov/map.pdf",
                    "length": "200345",
                    "type": "application/pdf",
                    "title": "Detour map",
                },
                {"url": "/relative/ignored.pdf"},
            ],
            event_subtypes=["EMERGENCY_MAINTENANCE"],
            **{
                "+ivr_message": "Broadway closed.",
                "+linear_reference_km": -1,
                "+flag": False,
                "+shape": {"a": [1, 2]},
            },
        )
    )
    info = item.alert.infos[0]
    assert list(info.parameters) == [
        NamedValue("road", "Broadway"),
        NamedValue("from", "1st"),
        NamedValue("to", "4th"),
        NamedValue("direction", "E"),
        NamedValue("state", "SOME_LANES_CLOSED"),
        NamedValue("lanes_open", "1"),
        NamedValue("restriction", "SPEED 35"),
        NamedValue("road", "Broadway"),
        NamedValue("direction", "W"),
        NamedValue("state", "CLOSED"),
        NamedValue("+ivr_message", "Broadway closed."),
        NamedValue("+linear_reference_km", "-1"),
        NamedValue("+flag", "false"),
        NamedValue("+shape", '{"a":[1,2]}'),
    ]
    assert info.response_types == (ResponseType.AVOID,)  # a road is CLOSED
    assert info.instruction == "Take Sherbrooke."
    assert info.event_codes == (
        NamedValue("open511_event_type", "INCIDENT"),
        NamedValue("open511_event_subtype", "EMERGENCY_MAINTENANCE"),
    )
    (area,) = info.areas
    assert area.area_desc == "Broadway (1st – 4th); Broadway; A City"
    assert area.geocodes == (NamedValue("open511_area", "geonames.org/123456"),)
    (resource,) = info.resources
    assert (resource.resource_desc, resource.mime_type, resource.size) == (
        "Detour map",
        "application/pdf",
        200345,
    )


def test_a_headline_that_is_only_the_event_type_is_made_readable() -> None:
    item = one(
        event(
            headline="INCIDENT",
            description="Quesnel-Hixon Road, in both directions. Landslide. Road closed.",
        )
    )
    assert item.alert.infos[0].headline == "Incident: Quesnel-Hixon Road, in both directions"


def test_text_xml_cannot_carry_is_an_error_line_not_a_crash() -> None:
    batch = parse(
        json.dumps({"events": [event(headline="bad \x01 byte"), event(id="x/2")]}).encode()
    )
    assert len(batch.items) == 1
    assert "cannot be written as CAP" in batch.errors[0]


# --------------------------------------------------------------------------- XML


def test_xml_languages_geometry_and_extension_elements() -> None:
    batch = parse((FIXTURES / "open511_archived_point.xml").read_bytes())
    (item,) = batch.items
    assert batch.errors == (
        "event 2 (no id; headline 'Sans identifiant'): the event has no id;"
        " an Open511 event must have one",
    )
    alert = item.alert
    assert alert.msg_type is MsgType.CANCEL
    assert [(i.language, i.event, i.headline) for i in alert.infos] == [
        ("fr", "Incident", "Pont Champlain rouvert"),
        ("en", "Incident", "Champlain Bridge reopened"),
    ]
    assert alert.infos[1].description == "Toutes les voies sont rouvertes."  # no English text
    assert alert.infos[0].web == "https://roads.example.org/api/events/roads.example.org/41/"
    assert alert.infos[0].areas[0].circles == (Circle(45.4652, -73.536, 0.1),)
    assert alert.infos[0].parameters == (NamedValue("camera_id", "CAM-12"),)
    assert_writes_valid_cap(item)


def test_xml_single_event_document() -> None:
    data = (
        b'<event xmlns:gml="http://www.opengis.net/gml"><id>x.org/9</id><status>ACTIVE</status>'
        b"<headline>Works</headline><event_type>CONSTRUCTION</event_type><severity>MINOR"
        b"</severity><created>2024-01-01T00:00:00Z</created><geography><gml:LineString>"
        b"<gml:posList>45.0 -73.0 45.01 -73.01</gml:posList></gml:LineString></geography>"
        b"<schedule><intervals><interval>2024-01-02T08:00/2024-01-02T17:00</interval>"
        b"</intervals></schedule></event>"
    )
    item = parse(data, timezone="America/Montreal").items[0]
    info = item.alert.infos[0]
    assert info.event == "Construction"
    assert len(info.areas[0].polygons) == 1
    assert info.expires == datetime(2024, 1, 2, 17, 0, tzinfo=timezone(timedelta(hours=-5)))


def test_xml_entities_are_refused() -> None:
    data = (
        b'<?xml version="1.0"?><!DOCTYPE open511 [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<open511><events><event><id>&x;</id></event></events></open511>"
    )
    with pytest.raises(FeedError, match="entities"):
        parse(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the document is empty"),
        (b"<open511><events>", "not well-formed|truncated"),
        (b"{", "not valid JSON"),
        (b"[1, 2]", 'a JSON list; an Open511 feed is an object with an "events" list'),
        (b'{"events": {"id": 1}}', '"events" is not a list'),
        (b'{"hello": "world"}', 'a JSON object without an "events" list'),
        (b'"schedule": {"intervals": []}', 'JSON fragment \\("schedule": ...\\)'),
        (b"<rss/>", "its root element is <rss>"),
        (b"<open511><services/></open511>", "a discovery document"),
        (b"<open511/>", "has no <events>"),
        (b"[" * 100_000, "nested too deeply"),
    ],
)
def test_documents_that_are_not_open511_events(data: bytes, message: str) -> None:
    with pytest.raises(FeedError, match=message):
        parse(data)


def test_own_quirks_fixture_gives_good_events_and_one_error_line_per_bad_one() -> None:
    batch = parse((FIXTURES / "open511_quirks.json").read_bytes())
    assert [item.alert.identifier for item in batch.items] == [
        "open511-roads.example.org/1-20240501T173000Z",
        "open511-roads.example.org/2-20240502T060000Z",
        "open511-roads.example.org/6-20240503T080000Z",
        "open511-local-8-20240504T080000Z",
    ]
    assert batch.errors == (
        "event 3: an event must be a JSON object, not str",
        "event 4 (roads.example.org/4): status 'PLANNED' is neither ACTIVE nor ARCHIVED",
        "event 5 (roads.example.org/5): the event has neither updated nor created time; it was"
        " not used, because stamping it with the time of reading would make every poll a new"
        " alert",
        "event 7 (roads.example.org/7): schedule interval 'tomorrow morning' is not 'start/end'"
        " or 'start/'",
    )
    archived, black_ice, swapped, parade = batch.items
    assert archived.alert.msg_type is MsgType.CANCEL
    assert len(black_ice.alert.infos[0].areas[0].polygons) == 3  # two lines, three segments
    assert black_ice.alert.infos[0].parameter("+lanes") == '{"open":1,"total":2}'
    assert swapped.alert.infos[0].areas == ()
    assert parade.thread == "open511:roads.example.org/local-8"
    assert parade.alert.infos[0].severity is Severity.UNKNOWN
    for item in batch.items:
        assert_writes_valid_cap(item)


def test_the_size_limit_and_bad_mapping() -> None:
    with pytest.raises(FeedError, match="more than the limit"):
        Open511Parser().parse(b'{"events": []}', replace(feed(), max_bytes=5))
    with pytest.raises(FeedError, match=r"mapping\.timezone 'Pacific' is not a time zone name"):
        parse(b'{"events": []}', timezone="Pacific")
    with pytest.raises(FeedError, match=r"mapping\.sender"):
        parse(b'{"events": []}', sender="a b")


# --------------------------------------------------------------------------- sniffing


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'<open511 version="v1"><events/></open511>', True),
        (b'\xef\xbb\xbf {"events": [{"id": "x/1", "event_type": "INCIDENT"}]}', True),
        (b'{"events": [{"name": "concert"}]}', False),
        (b"<rss/>", False),
        (b'{"text": "Autopista A - B, km 1", "header": "CIERRE"}', False),
        (b"", False),
    ],
)
def test_looks_like(data: bytes, expected: bool) -> None:
    assert looks_like(data) is expected


# --------------------------------------------------------------------------- properties

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.text(max_size=20), _JSON),
        "status": st.sampled_from(["ACTIVE", "ARCHIVED", "x"]) | _JSON,
        "created": st.sampled_from(
            ["2024-05-01T08:00:00Z", "2024-05-01T08:00", "0001-01-01T00:00:00+14:00"]
        )
        | _JSON,
        "updated": st.sampled_from(["2024-05-01T09:00:00-07:00", "bad"]) | _JSON,
        "headline": st.text(max_size=40) | _JSON,
        "severity": st.sampled_from(["MINOR", "MAJOR"]) | _JSON,
        "geography": st.fixed_dictionaries(
            {
                "type": st.sampled_from(["Point", "LineString", "Polygon", "MultiLineString"]),
                "coordinates": _JSON,
            }
        )
        | _JSON,
        "schedule": st.fixed_dictionaries(
            {},
            optional={
                "intervals": st.lists(st.text(max_size=30)) | _JSON,
                "recurring_schedules": st.lists(
                    st.dictionaries(
                        st.sampled_from(
                            ["start_date", "end_date", "daily_start_time", "daily_end_time"]
                        ),
                        st.text(max_size=12),
                    )
                )
                | _JSON,
            },
        )
        | _JSON,
        "roads": _JSON,
        "areas": _JSON,
        "+extra": _JSON,
    },
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_FIELDS | _JSON, max_size=4))
def test_any_event_gives_an_alert_or_an_error_line(events: list[Any]) -> None:
    batch = parse(json.dumps({"events": events}).encode())
    assert len(batch.items) + len(batch.errors) == len(events)
    for item in batch.items:
        to_cap_xml(item.alert)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_give_a_batch_or_a_feed_error(data: bytes) -> None:
    with contextlib.suppress(FeedError):
        parse(data)


def test_a_polygon_too_small_is_dropped_with_a_warning() -> None:
    item = one(
        event(geography={"type": "Polygon", "coordinates": [[[-73.6, 45.5], [-73.5, 45.5]]]})
    )
    assert item.alert.infos[0].areas == ()
    assert "geography ignored: a polygon needs at least 3 distinct corners" in item.warnings[0]


def test_a_reader_bug_on_one_event_does_not_hide_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import alertcast.feeds.open511 as module

    real = module._area

    def fragile(found: Any) -> Any:
        if found.id == "x/2":
            raise RuntimeError("boom")
        return real(found)

    monkeypatch.setattr(module, "_area", fragile)
    batch = parse(json.dumps({"events": [event(id=f"x/{n}") for n in (1, 2, 3)]}).encode())
    assert [item.thread for item in batch.items] == ["open511:x/1", "open511:x/3"]
    assert batch.errors == ("event 2 (x/2): could not be read (RuntimeError: boom)",)
