"""Writing CAP 1.2: valid for the OASIS schema, in order, and read back as the same alert."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from alertcast.cap import parse_cap, parse_cap_all, to_cap_xml
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

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "cap"
CAP12 = "urn:oasis:names:tc:emergency:cap:1.2"
XSD_12 = etree.XMLSchema(etree.parse(str(REPO / "alertcast" / "schemas" / "CAP-v1.2.xsd")))


def fixture_alert(name: str) -> Alert:
    return parse_cap((FIXTURES / name).read_bytes()).alert


def assert_valid_cap_12(data: bytes) -> etree._Element:
    root = etree.fromstring(data)
    assert XSD_12.validate(root), XSD_12.error_log
    return root


def simple_alert(**changes: Any) -> Alert:
    base = Alert(
        identifier="W-1",
        sender="w@example.org",
        sent=datetime(2024, 1, 1, 12, tzinfo=UTC),
        status=Status.ACTUAL,
        msg_type=MsgType.ALERT,
        scope=Scope.PUBLIC,
        infos=(
            Info(
                categories=(Category.MET,),
                event="Wind",
                urgency=Urgency.EXPECTED,
                severity=Severity.MODERATE,
                certainty=Certainty.LIKELY,
            ),
        ),
    )
    return replace(base, **changes)


def with_info(**changes: Any) -> Alert:
    alert = simple_alert()
    return replace(alert, infos=(replace(alert.infos[0], **changes),))


# --------------------------------------------------------------------------- shape


def test_declaration_encoding_and_default_namespace() -> None:
    data = to_cap_xml(simple_alert())
    assert data.startswith(
        b"<?xml version='1.0' encoding='UTF-8'?>\n<alert xmlns=\"" + CAP12.encode()
    )
    root = assert_valid_cap_12(data)
    assert root.nsmap == {None: CAP12}


@pytest.mark.parametrize(
    "fixture", ["full_12.xml", "cap11_minimal_info.xml", "cap10_flat.xml", "latin1.xml"]
)
def test_fixtures_become_valid_cap_1_2_and_read_back_equal(fixture: str) -> None:
    alert = fixture_alert(fixture)
    data = to_cap_xml(alert)
    assert_valid_cap_12(data)
    parsed = parse_cap(data, strict=True)
    assert parsed.cap_version == "1.2"
    assert parsed.alert == alert


def test_edxl_alerts_are_written_bare() -> None:
    for parsed in parse_cap_all((FIXTURES / "edxl_two_alerts.xml").read_bytes()):
        assert parse_cap(to_cap_xml(parsed.alert), strict=True).alert == parsed.alert


def test_elements_come_in_schema_order() -> None:
    root = assert_valid_cap_12(to_cap_xml(fixture_alert("full_12.xml")))
    names = [etree.QName(child).localname for child in root]
    assert names == [
        "identifier",
        "sender",
        "sent",
        "status",
        "msgType",
        "source",
        "scope",
        "restriction",
        "addresses",
        "code",
        "code",
        "note",
        "references",
        "incidents",
        "info",
        "info",
    ]
    info = [etree.QName(child).localname for child in root[14]]
    assert info[:4] == ["language", "category", "category", "event"]
    assert info[-3:] == ["parameter", "resource", "area"]


def test_values_are_written_the_cap_way() -> None:
    root = etree.fromstring(to_cap_xml(fixture_alert("full_12.xml")))

    def text(path: str) -> str | None:
        return root.findtext(path, namespaces={"c": CAP12})

    assert text("c:sent") == "2024-03-01T10:15:00+01:00"
    assert text("c:addresses") == 'ops@example.org "Mayor\'s Office" fire-brigade'
    assert text("c:incidents") == 'flood-2024-03 "river Aa"'
    assert text("c:references") == (
        "duty@civil-protection.example,ALERTCAST-TEST-0000,2024-03-01T09:00:00+01:00"
        " other@example.org,X-1,2024-02-29T23:00:00+00:00"
    )
    assert text("c:info/c:area/c:polygon") == "45.1,7.1 45.2,7.1 45.2,7.3 45.1,7.3 45.1,7.1"
    assert text("c:info/c:area/c:circle") == "45.15,7.2 2.5"
    assert text("c:info/c:area/c:ceiling") == "1500.5"


# --------------------------------------------------------------------------- filling gaps


def test_an_info_without_category_is_written_as_other() -> None:
    data = to_cap_xml(with_info(categories=()))
    assert_valid_cap_12(data)
    assert parse_cap(data, strict=True).alert.infos[0].categories == (Category.OTHER,)


def test_tiny_and_huge_numbers_are_written_without_exponent_and_read_back_exactly() -> None:
    area = Area(
        "A",
        polygons=(Polygon(((1e-7, -1e-9), (0.1, 0.2), (1.5e-5, 3.0), (1e-7, -1e-9))),),
        circles=(Circle(0.0, -0.0, 1e-5),),
        altitude=1e21,
        ceiling=-2.5e-8,
    )
    alert = with_info(areas=(area,))
    data = to_cap_xml(alert)
    assert b"e-" not in data and b"e+" not in data
    assert b"<altitude>1000000000000000000000</altitude>" in data
    assert b"<ceiling>-0.000000025</ceiling>" in data
    assert_valid_cap_12(data)
    assert parse_cap(data, strict=True).alert == alert


def test_offsets_cap_cannot_express_are_written_as_the_same_instant_in_utc() -> None:
    odd = timezone(timedelta(hours=5, minutes=30, seconds=15))
    sent = datetime(2024, 1, 1, 12, 0, 0, tzinfo=odd)
    data = to_cap_xml(simple_alert(sent=sent))
    assert b"<sent>2024-01-01T06:29:45+00:00</sent>" in data
    assert parse_cap(data, strict=True).alert.sent == sent


def test_naive_times_are_written_as_utc_and_microseconds_dropped() -> None:
    data = to_cap_xml(simple_alert(sent=datetime(2024, 1, 1, 12, 0, 0, 999)))
    assert b"<sent>2024-01-01T12:00:00+00:00</sent>" in data


def test_blank_optional_text_is_left_out() -> None:
    data = to_cap_xml(simple_alert(note="   ", source=""))
    assert b"<note>" not in data and b"<source>" not in data


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("alert", "words"),
    [
        (with_info(areas=(Area("A", circles=(Circle(math.nan, 0, 1),)),)), "cannot be written"),
        (with_info(areas=(Area("A", altitude=math.inf),)), "cannot be written"),
        (with_info(headline="bell \x07"), "characters XML cannot carry"),
        (with_info(language="English (US)"), "not a language tag"),
        (with_info(web="http://example.org/%zz"), "not a valid URI"),
        (simple_alert(addresses=('say "hi" there',)), "addresses"),
        (
            simple_alert(references=(AlertKey("a b", "c", datetime(2024, 1, 1, tzinfo=UTC)),)),
            "reference sender",
        ),
    ],
)
def test_what_cap_1_2_cannot_carry_is_refused(alert: Alert, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        to_cap_xml(alert)


# --------------------------------------------------------------------------- any alert


_XML_CHARS = st.characters(
    codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="\ufffe\uffff"
)
_FREE_TEXT = st.text(st.one_of(_XML_CHARS, st.sampled_from(" \t\n")), max_size=25).filter(
    lambda s: s.strip(" \t\n\r") != ""
)
_ANY_TEXT = st.text(st.one_of(_XML_CHARS, st.sampled_from(" \n")), max_size=15)
_TOKEN = st.text(
    st.characters(
        codec="utf-8",
        exclude_categories=("Cs", "Cc", "Z"),
        exclude_characters="\ufffe\uffff,<&\u0085\u180e\u200b\u2028\u2029",
    ),
    min_size=1,
    max_size=12,
).filter(lambda s: s == s.strip() and not any(c.isspace() for c in s))
_WORDS = st.lists(_TOKEN, min_size=1, max_size=3).map(" ".join)
_ENTRY = st.text(st.one_of(_XML_CHARS.filter(lambda c: c != '"'), st.just(" ")), max_size=10)
_ZONES = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
_TIMES = st.datetimes(
    min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30), timezones=_ZONES
).map(lambda d: d.replace(microsecond=0))
_LAT = st.floats(-90, 90)
_LON = st.floats(-180, 180)
_XML_TRIMMED = _ANY_TEXT.map(lambda s: s.strip(" \t\r\n"))
_PAIR = st.builds(NamedValue, _XML_TRIMMED, _XML_TRIMMED)
_URI = st.from_regex(r"https?://[a-z]{1,10}\.example(/[a-zA-Z0-9._~-]{0,8}){0,3}", fullmatch=True)


def _tuples(strategy: st.SearchStrategy[Any], max_size: int = 3) -> st.SearchStrategy[Any]:
    return st.lists(strategy, max_size=max_size).map(tuple)


_AREAS = st.builds(
    Area,
    area_desc=_ANY_TEXT,
    polygons=_tuples(st.builds(Polygon, st.lists(st.tuples(_LAT, _LON), min_size=1).map(tuple))),
    circles=_tuples(st.builds(Circle, _LAT, _LON, st.floats(0, 1e6))),
    geocodes=_tuples(_PAIR),
    altitude=st.none() | st.floats(allow_nan=False, allow_infinity=False),
    ceiling=st.none() | st.floats(allow_nan=False, allow_infinity=False),
)
_RESOURCES = st.builds(
    Resource,
    resource_desc=_ANY_TEXT,
    mime_type=st.just("") | _TOKEN,
    size=st.none() | st.integers(-(10**20), 10**20),
    uri=st.none() | _URI,
    deref_uri=st.none() | _FREE_TEXT,
    digest=st.none() | _TOKEN,
)
_INFOS = st.builds(
    Info,
    categories=_tuples(st.sampled_from(Category)).filter(bool),
    event=_ANY_TEXT,
    urgency=st.sampled_from(Urgency),
    severity=st.sampled_from(Severity),
    certainty=st.sampled_from(Certainty),
    language=st.from_regex(r"[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8}){0,2}", fullmatch=True),
    response_types=_tuples(st.sampled_from(ResponseType)),
    audience=st.none() | _FREE_TEXT,
    event_codes=_tuples(_PAIR),
    effective=st.none() | _TIMES,
    onset=st.none() | _TIMES,
    expires=st.none() | _TIMES,
    sender_name=st.none() | _FREE_TEXT,
    headline=st.none() | _FREE_TEXT,
    description=st.none() | _FREE_TEXT,
    instruction=st.none() | _FREE_TEXT,
    web=st.none() | _URI,
    contact=st.none() | _FREE_TEXT,
    parameters=_tuples(_PAIR),
    resources=_tuples(_RESOURCES, 2),
    areas=_tuples(_AREAS, 2),
)
XML_ALERTS = st.builds(
    Alert,
    identifier=_TOKEN,
    sender=_TOKEN,
    sent=_TIMES,
    status=st.sampled_from(Status),
    msg_type=st.sampled_from(MsgType),
    scope=st.sampled_from(Scope),
    source=st.none() | _FREE_TEXT,
    restriction=st.none() | _FREE_TEXT,
    addresses=_tuples(_ENTRY),
    codes=_tuples(_WORDS),
    note=st.none() | _FREE_TEXT,
    references=_tuples(st.builds(AlertKey, _TOKEN, _TOKEN, _TIMES)),
    incidents=_tuples(_ENTRY),
    infos=_tuples(_INFOS, 2),
)


@settings(max_examples=200, deadline=None)
@given(XML_ALERTS)
def test_any_alert_cap_can_carry_is_written_validly_and_read_back_equal(alert: Alert) -> None:
    data = to_cap_xml(alert)
    assert_valid_cap_12(data)
    parsed = parse_cap(data, strict=True)
    assert parsed.warnings == ()
    assert parsed.alert == alert
