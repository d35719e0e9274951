"""Reading CAP: versions, envelopes, vocabularies, lenient repairs and strict refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from alertcast.cap import CapValidationError, ParsedAlert, parse_cap, parse_cap_all
from alertcast.domain import (
    AlertKey,
    Area,
    Category,
    Certainty,
    Circle,
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
from alertcast.errors import CapError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "cap"
CAP12 = "urn:oasis:names:tc:emergency:cap:1.2"
CAP11 = "urn:oasis:names:tc:emergency:cap:1.1"
CAP10 = "http://www.incident.com/cap/1.0"
DSIG = "http://www.w3.org/2000/09/xmldsig#"

HEAD = {
    "identifier": "ID-1",
    "sender": "sender@example.org",
    "sent": "2024-03-01T10:00:00+01:00",
    "status": "Actual",
    "msgType": "Alert",
    "scope": "Public",
}
INFO = {
    "category": "Met",
    "event": "Storm",
    "urgency": "Immediate",
    "severity": "Severe",
    "certainty": "Observed",
}


def elements(values: dict[str, str | None]) -> str:
    return "".join(f"<{k}>{v}</{k}>" for k, v in values.items() if v is not None)


def cap(
    after_head: str = "",
    *,
    info: str | None = None,
    ns: str = CAP12,
    prolog: str = '<?xml version="1.0" encoding="UTF-8"?>\n',
    **head: str | None,
) -> bytes:
    """A CAP document: the six required alert elements (overridable), then ``after_head``."""
    body = elements({**HEAD, **head}) + after_head
    if info is not None:
        body += f"<info>{info}</info>"
    return f'{prolog}<alert xmlns="{ns}">{body}</alert>'.encode()


def info_xml(after: str = "", before: str = "", **fields: str | None) -> str:
    """The required info elements (overridable), with ``before`` first and ``after`` last."""
    values = {**INFO, **fields}
    return before + elements(values) + after


def lenient(data: bytes) -> ParsedAlert:
    return parse_cap(data)


def strict_problems(data: bytes) -> tuple[str, ...]:
    with pytest.raises(CapValidationError) as caught:
        parse_cap(data, strict=True)
    return caught.value.problems


# --------------------------------------------------------------------------- full fixtures


def test_full_fixture_reads_every_field() -> None:
    parsed = parse_cap((FIXTURES / "full_12.xml").read_bytes(), strict=True)
    alert = parsed.alert
    plus_one = timezone(timedelta(hours=1))
    assert parsed.cap_version == "1.2"
    assert not parsed.signed
    assert parsed.warnings == parsed.notices == ()
    assert alert.identifier == "ALERTCAST-TEST-0001"
    assert alert.sender == "duty@civil-protection.example"
    assert alert.sent == datetime(2024, 3, 1, 10, 15, tzinfo=plus_one)
    assert (alert.status, alert.msg_type, alert.scope) == (
        Status.EXERCISE,
        MsgType.UPDATE,
        Scope.PRIVATE,
    )
    assert alert.source == "Regional duty office"
    assert alert.restriction == "Emergency services only"
    assert alert.addresses == ("ops@example.org", "Mayor's Office", "fire-brigade")
    assert alert.codes == ("profile:test:1.0", "drill")
    assert alert.note == "Exercise only."
    assert alert.references == (
        AlertKey(
            "duty@civil-protection.example",
            "ALERTCAST-TEST-0000",
            datetime(2024, 3, 1, 9, tzinfo=plus_one),
        ),
        AlertKey("other@example.org", "X-1", datetime(2024, 2, 29, 23, tzinfo=UTC)),
    )
    assert alert.incidents == ("flood-2024-03", "river Aa")
    info = alert.infos[0]
    assert info.language == "en-GB"
    assert info.categories == (Category.MET, Category.SAFETY)
    assert info.event == "River flooding"
    assert info.response_types == (ResponseType.EVACUATE, ResponseType.MONITOR)
    assert (info.urgency, info.severity, info.certainty) == (
        Urgency.EXPECTED,
        Severity.SEVERE,
        Certainty.LIKELY,
    )
    assert info.audience == "Residents of the lower town"
    assert info.event_codes == (NamedValue("SAME", "FLW"),)
    assert info.effective == datetime(2024, 3, 1, 10, 15, tzinfo=plus_one)
    assert info.onset == datetime(2024, 3, 1, 14, tzinfo=plus_one)
    assert info.expires == datetime(2024, 3, 2, 10, tzinfo=plus_one)
    assert info.sender_name == "Civil Protection Office"
    assert info.headline == "Flood warning for the lower town"
    assert info.description == "The river is expected to overflow this afternoon."
    assert info.instruction == "Move to higher ground."
    assert info.web == "https://civil-protection.example/alerts/0001"
    assert info.contact == "+00 000 000"
    assert info.parameters == (
        NamedValue("level", "3"),
        NamedValue("colour", "orange"),
        NamedValue("level", "4"),
    )
    assert info.resources == (
        Resource(
            "Map",
            "image/png",
            12345,
            "https://civil-protection.example/maps/0001.png",
            "iVBORw0KGgo=",
            "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
        ),
    )
    assert info.areas == (
        Area(
            "Lower town",
            polygons=(Polygon(((45.1, 7.1), (45.2, 7.1), (45.2, 7.3), (45.1, 7.3), (45.1, 7.1))),),
            circles=(Circle(45.15, 7.2, 2.5),),
            geocodes=(NamedValue("NUTS3", "ITC11"),),
            altitude=100.0,
            ceiling=1500.5,
        ),
    )
    assert alert.infos[1].language == "fr-FR"
    assert alert.info_for("fr-CA") is alert.infos[1]
    assert alert.expires == datetime(2024, 3, 2, 12, tzinfo=plus_one)
    assert alert.is_expired(datetime(2024, 3, 2, 11, 0, tzinfo=UTC))
    assert not alert.is_expired(datetime(2024, 3, 2, 10, 59, tzinfo=UTC))


def test_cap_1_0_flat_parameters_and_old_vocabulary() -> None:
    parsed = parse_cap((FIXTURES / "cap10_flat.xml").read_bytes(), strict=True)
    info = parsed.alert.infos[0]
    assert parsed.cap_version == "1.0"
    assert parsed.warnings == ()
    assert info.parameters == (NamedValue("HSAS", "ORANGE"), NamedValue("", "no equals sign"))
    assert info.event_codes == (NamedValue("SAME", "CEM"),)
    assert info.areas[0].geocodes == (NamedValue("FIPS6", "006109"),)
    assert info.certainty is Certainty.LIKELY
    assert info.categories == (Category.OTHER,)
    assert info.resources[0].mime_type == ""
    assert parsed.alert.scope is Scope.PUBLIC
    notices = "\n".join(parsed.notices)
    assert "/alert/password: CAP 1.0 <password> is not kept" in notices
    assert "/alert/info[1]/certainty: CAP 1.0 'Very Likely' read as Likely" in notices
    assert "/alert/scope: absent (optional in CAP 1.0)" in notices
    assert "secret" not in repr(parsed)


def test_cap_1_1_optional_mime_type_and_free_text_altitude() -> None:
    parsed = parse_cap((FIXTURES / "cap11_minimal_info.xml").read_bytes(), strict=True)
    assert parsed.cap_version == "1.1"
    info = parsed.alert.infos[0]
    assert info.resources[0] == Resource("Radar", "")
    assert info.areas[0].altitude is None
    assert parsed.notices == (
        "/alert/info[1]/area[1]/altitude: 'about 100' is not a number of feet; ignored",
    )


def test_cap_1_1_rejects_what_only_1_2_added() -> None:
    data = cap(info=info_xml(before="", responseType="AllClear"), ns=CAP11)
    data = data.replace(b"<responseType>AllClear</responseType>", b"")
    data = data.replace(b"<urgency>", b"<responseType>AllClear</responseType><urgency>")
    parsed = lenient(data)
    assert parsed.alert.infos[0].response_types == (ResponseType.ALL_CLEAR,)
    assert parsed.warnings == (
        "/alert/info[1]/responseType[1]: 'AllClear' is not part of CAP 1.1; read anyway",
    )


def test_prefixed_namespace() -> None:
    body = "".join(f"<cap:{k}>{v}</cap:{k}>" for k, v in HEAD.items())
    data = f'<cap:alert xmlns:cap="{CAP12}">{body}</cap:alert>'.encode()
    parsed = parse_cap(data, strict=True)
    assert parsed.alert.identifier == "ID-1"
    assert parsed.alert.infos == ()


def test_utf8_bom_and_chinese_text() -> None:
    parsed = parse_cap((FIXTURES / "bom_utf8.xml").read_bytes(), strict=True)
    assert parsed.alert.infos[0].language == "zh-TW"
    assert parsed.alert.infos[0].event == "水庫放水"


def test_declared_latin_1_is_decoded() -> None:
    raw = (FIXTURES / "latin1.xml").read_bytes()
    assert b"Usulut\xe1n" in raw
    parsed = parse_cap(raw, strict=True)
    assert parsed.alert.infos[0].areas[0].area_desc == "Usulután, El Salvador"


@pytest.mark.parametrize(
    "prolog",
    [
        "",
        "<?xml version = '1.0' encoding = 'UTF-8' standalone = 'yes'?>",
        '<?xml version="1.0"?>\n<?xml-stylesheet href="http://example.org/cap.xsl"?>\n<!-- c -->',
    ],
)
def test_declarations_pis_and_comments(prolog: str) -> None:
    parsed = parse_cap(cap(prolog=prolog, info=info_xml(event="Fl<!-- x -->ood")), strict=True)
    assert parsed.alert.infos[0].event == "Flood"


def test_whitespace_around_the_document_is_tolerated_with_a_notice() -> None:
    data = b"\r\n  \t" + cap() + b"\n\n"
    parsed = parse_cap(data, strict=True)
    assert parsed.alert.identifier == "ID-1"
    assert parsed.notices == ("/: whitespace before the XML declaration was removed",)


# --------------------------------------------------------------------------- vocabularies


@pytest.mark.parametrize(
    ("element", "member"),
    [("status", m) for m in Status]
    + [("msgType", m) for m in MsgType]
    + [("scope", m) for m in Scope],
)
def test_every_alert_vocabulary_value(element: str, member: Status | MsgType | Scope) -> None:
    alert = parse_cap(cap(**{element: member.value}), strict=True).alert
    assert getattr(alert, {"msgType": "msg_type"}.get(element, element)) is member


@pytest.mark.parametrize(
    ("element", "attribute", "member"),
    [("category", "categories", m) for m in Category]
    + [("responseType", "response_types", m) for m in ResponseType]
    + [("urgency", "urgency", m) for m in Urgency]
    + [("severity", "severity", m) for m in Severity]
    + [("certainty", "certainty", m) for m in Certainty],
)
def test_every_info_vocabulary_value(element: str, attribute: str, member: object) -> None:
    fields = {"category": "Met", "responseType": None, **{element: member.value}}  # type: ignore[attr-defined]
    ordered = {k: fields.get(k, INFO.get(k)) for k in ["category", "event", "responseType"]}
    ordered |= {k: fields.get(k, INFO[k]) for k in ["urgency", "severity", "certainty"]}
    info = parse_cap(cap(info=elements(ordered)), strict=True).alert.infos[0]
    value = getattr(info, attribute)
    assert value == (member,) if isinstance(value, tuple) else value is member


@pytest.mark.parametrize(
    ("data", "path", "check"),
    [
        (cap(status="actual"), "/alert/status", lambda a: a.status is Status.ACTUAL),
        (cap(msgType=" Update "), "/alert/msgType", lambda a: a.msg_type is MsgType.UPDATE),
        (cap(scope="PUBLIC"), "/alert/scope", lambda a: a.scope is Scope.PUBLIC),
        (
            cap(info=info_xml(severity="severe")),
            "/alert/info[1]/severity",
            lambda a: a.infos[0].severity is Severity.SEVERE,
        ),
        (
            cap(info=info_xml(category="met")),
            "/alert/info[1]/category[1]",
            lambda a: a.infos[0].categories == (Category.MET,),
        ),
        (
            cap(info=info_xml(certainty="Very Likely")),
            "/alert/info[1]/certainty",
            lambda a: a.infos[0].certainty is Certainty.LIKELY,
        ),
    ],
)
def test_wrong_case_is_understood_leniently_and_refused_strictly(
    data: bytes, path: str, check: object
) -> None:
    parsed = lenient(data)
    assert check(parsed.alert)  # type: ignore[operator]
    assert len(parsed.warnings) == 1
    assert parsed.warnings[0].startswith(f"{path}: ")
    assert strict_problems(data) == parsed.warnings


def test_unknown_urgency_severity_certainty_read_as_unknown() -> None:
    parsed = lenient(cap(info=info_xml(urgency="Soon", severity="", certainty="High")))
    info = parsed.alert.infos[0]
    assert (info.urgency, info.severity, info.certainty) == (
        Urgency.UNKNOWN,
        Severity.UNKNOWN,
        Certainty.UNKNOWN,
    )
    assert [w.split(":")[0] for w in parsed.warnings] == [
        "/alert/info[1]/urgency",
        "/alert/info[1]/severity",
        "/alert/info[1]/certainty",
    ]
    assert "'Soon' is not one of Immediate, Expected, Future, Past, Unknown" in parsed.warnings[0]


def test_unknown_categories_and_response_types_are_dropped() -> None:
    info = info_xml(category="Weather")
    info = info.replace("<event>", "<category>Fire</category><event>")
    info = info.replace("<urgency>", "<responseType>Run</responseType><urgency>")
    parsed = lenient(cap(info=info))
    assert parsed.alert.infos[0].categories == (Category.FIRE,)
    assert parsed.alert.infos[0].response_types == ()
    assert len(parsed.warnings) == 2


def test_an_info_left_without_category_gets_other() -> None:
    parsed = lenient(cap(info=info_xml(category=None)))
    assert parsed.alert.infos[0].categories == (Category.OTHER,)
    assert parsed.warnings == ("/alert/info[1]/category: required but missing; read as Other",)


# --------------------------------------------------------------------------- what stays fatal


@pytest.mark.parametrize(
    ("data", "path", "words"),
    [
        (cap(status="Live"), "/alert/status", "'Live' is not one of Actual, Exercise"),
        (cap(status=None), "/alert/status", "required but missing"),
        (cap(msgType="Replace"), "/alert/msgType", "'Replace' is not one of Alert, Update"),
        (cap(msgType=None), "/alert/msgType", "required but missing"),
        (cap(identifier=None), "/alert/identifier", "required but missing"),
        (cap(identifier="  "), "/alert/identifier", "missing or empty"),
        (cap(sender=None), "/alert/sender", "required but missing"),
        (cap(sent=None), "/alert/sent", "required but missing"),
        (cap(sent="yesterday"), "/alert/sent", "cannot be read"),
        (cap(sent="2024-02-30T10:00:00+00:00"), "/alert/sent", "not a real date"),
    ],
)
def test_identity_status_and_msg_type_are_never_guessed(data: bytes, path: str, words: str) -> None:
    for strict in (False, True):
        with pytest.raises(CapError) as caught:
            parse_cap(data, strict=strict)
        assert caught.value.path == path
        assert words in caught.value.reason


@pytest.mark.parametrize(
    ("data", "path", "words"),
    [
        (b'<alert xmlns="urn:oasis:names:tc:emergency:alerts:1.2"/>', "/alert", "not a CAP"),
        (b"<rss><channel/></rss>", "/rss", "not a CAP document"),
        (b"<feed xmlns='http://www.w3.org/2005/Atom'/>", "/feed", "namespace"),
        (b"not xml at all", "/", "not well-formed"),
        (b"", "/", "empty"),
        (b"   \n ", "/", "empty"),
    ],
)
def test_documents_that_are_not_cap(data: bytes, path: str, words: str) -> None:
    with pytest.raises(CapError) as caught:
        parse_cap(data)
    assert caught.value.path == path
    assert words in caught.value.reason


# --------------------------------------------------------------------------- scope repairs


@pytest.mark.parametrize(
    ("extra", "scope"),
    [
        ("", Scope.PUBLIC),
        ("<restriction>Police only</restriction>", Scope.RESTRICTED),
        ("<addresses>ops@example.org</addresses>", Scope.PRIVATE),
    ],
)
def test_missing_scope_never_widens_the_audience(extra: str, scope: Scope) -> None:
    parsed = lenient(cap(extra, scope=None))
    assert parsed.alert.scope is scope
    assert parsed.warnings[0].startswith("/alert/scope: required but missing")
    with pytest.raises(CapValidationError):
        parse_cap(cap(extra, scope=None), strict=True)


def test_unknown_scope_value_is_assumed_with_a_warning() -> None:
    parsed = lenient(cap("<addresses>a b</addresses>", scope="Internal"))
    assert parsed.alert.scope is Scope.PRIVATE
    assert "'Internal' is not one of Public, Restricted, Private" in parsed.warnings[0]


# --------------------------------------------------------------------------- date-times


def test_minus_zero_offset_is_utc_and_valid() -> None:
    parsed = parse_cap(cap(sent="2012-05-02T23:21:04-00:00"), strict=True)
    assert parsed.alert.sent == datetime(2012, 5, 2, 23, 21, 4, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected", "words"),
    [
        ("2024-03-01T10:00:00Z", datetime(2024, 3, 1, 10, tzinfo=UTC), "not in the CAP"),
        ("2024-03-01T10:00:00", datetime(2024, 3, 1, 10, tzinfo=UTC), "read as UTC"),
        (
            "2024-03-01T10:00:00.75+02:00",
            datetime(2024, 3, 1, 8, tzinfo=UTC),
            "fraction of a second was dropped",
        ),
        ("2024-03-01 10:00:00+00:00", datetime(2024, 3, 1, 10, tzinfo=UTC), "not in the CAP"),
    ],
)
def test_date_times_outside_the_cap_form(text: str, expected: datetime, words: str) -> None:
    parsed = lenient(cap(sent=text))
    assert parsed.alert.sent == expected
    assert parsed.alert.sent.microsecond == 0
    assert parsed.warnings[0].startswith("/alert/sent: ")
    assert words in parsed.warnings[0]
    with pytest.raises(CapValidationError):
        parse_cap(cap(sent=text), strict=True)


def test_unreadable_info_date_is_dropped_with_a_warning() -> None:
    parsed = lenient(cap(info=info_xml(expires="next tuesday")))
    assert parsed.alert.infos[0].expires is None
    assert parsed.warnings[0].startswith("/alert/info[1]/expires: 'next tuesday'")
    assert parsed.warnings[0].endswith("ignored")


def test_offsets_beyond_fourteen_hours_are_refused_strictly() -> None:
    parsed = lenient(cap(sent="2024-03-01T10:00:00+15:00"))
    assert parsed.alert.sent.utcoffset() == timedelta(hours=15)
    assert "beyond ±14:00" in parsed.warnings[0]


def test_cap_1_1_dates_must_also_carry_an_offset_in_strict_mode() -> None:
    data = cap(ns=CAP11, sent="2011-01-01T00:00:00")
    assert lenient(data).alert.sent == datetime(2011, 1, 1, tzinfo=UTC)
    assert "no UTC offset" in strict_problems(data)[0]


def test_expiry_before_effect_is_a_notice() -> None:
    info = info_xml(after="")
    info = info.replace(
        "</certainty>",
        "</certainty><effective>2024-03-01T10:00:00+00:00</effective>"
        "<expires>2024-03-01T09:00:00+00:00</expires>",
    )
    parsed = parse_cap(cap(info=info), strict=True)
    assert parsed.notices == (
        "/alert/info[1]/expires: earlier than the time the info takes effect",
    )


# --------------------------------------------------------------------------- references


def test_empty_references_is_a_notice_not_a_warning() -> None:
    parsed = parse_cap(cap("<references/>", msgType="Update"), strict=True)
    assert parsed.alert.references == ()
    assert parsed.notices == (
        "/alert/references: empty; it references nothing",
        "/alert/references: an Update should name the messages it replaces; it names none",
    )


def test_cancel_without_references_is_a_notice() -> None:
    parsed = parse_cap(cap(msgType="Cancel"), strict=True)
    assert parsed.notices == (
        "/alert/references: a Cancel should name the messages it replaces; it names none",
    )


def test_malformed_references_are_dropped_with_a_warning() -> None:
    text = "a,b a,ID,2024-01-01T00:00:00Z b,ID2,2024-01-01T00:00:00+00:00 c,d,never"
    parsed = lenient(cap(f"<references>{text}</references>", msgType="Update"))
    assert parsed.alert.references == (
        AlertKey("a", "ID", datetime(2024, 1, 1, tzinfo=UTC)),
        AlertKey("b", "ID2", datetime(2024, 1, 1, tzinfo=UTC)),
    )
    assert [w.split(": ", 1)[1][:16] for w in parsed.warnings] == [
        "reference 'a,b' ",
        "reference 'a,ID,",
        "reference 'c,d,n",
    ]


# --------------------------------------------------------------------------- lenient structure


def test_extra_elements_are_ignored_with_a_warning() -> None:
    info = info_xml(after="<area><areaDesc>x</areaDesc><Type>County</Type></area>")
    parsed = lenient(cap("<x-extra>1</x-extra>", info=info))
    assert parsed.alert.infos[0].areas == (Area("x"),)
    assert parsed.warnings == (
        "/alert/x-extra: <x-extra> is not a CAP 1.2 element here; ignored",
        "/alert/info[1]/area[1]/Type: <Type> is not a CAP 1.2 element here; ignored",
    )


def test_wrong_order_is_read_with_a_warning() -> None:
    info = info_xml(after="<headline>H</headline><senderName>S</senderName>")
    parsed = lenient(cap(info=info))
    assert parsed.alert.infos[0].sender_name == "S"
    assert parsed.alert.infos[0].headline == "H"
    assert parsed.warnings == (
        "/alert/info[1]/senderName: out of order: CAP 1.2 puts <senderName> before <headline>",
    )


def test_a_single_element_given_twice_keeps_the_first() -> None:
    parsed = lenient(cap(info=info_xml(after="<headline>one</headline><headline>two</headline>")))
    assert parsed.alert.infos[0].headline == "one"
    assert parsed.warnings == (
        "/alert/info[1]/headline[2]: <headline> may appear only once; ignored",
    )


def test_missing_required_info_elements_are_filled_and_reported() -> None:
    parsed = lenient(cap(info=info_xml(event=None, certainty=None)))
    info = parsed.alert.infos[0]
    assert info.event == ""
    assert info.certainty is Certainty.UNKNOWN
    assert parsed.warnings == (
        "/alert/info[1]/event: required but missing; left empty",
        "/alert/info[1]/certainty: required but missing; read as Unknown",
    )


def test_attributes_and_stray_text_are_reported() -> None:
    data = cap(info=info_xml(), identifier="ID-1").replace(
        b"<info>", b'<info lang="en">stray words'
    )
    parsed = lenient(data)
    assert parsed.warnings == (
        "/alert/info[1]/@lang: CAP elements have no attributes; ignored",
        "/alert/info[1]: text directly inside this element is not CAP; ignored",
    )


def test_markup_inside_text_keeps_the_words() -> None:
    parsed = lenient(cap(info=info_xml(after="<description>Go <b>now</b>!</description>")))
    assert parsed.alert.infos[0].description == "Go now!"
    assert parsed.warnings == (
        "/alert/info[1]/description: must hold text only; the text of the elements inside was kept",
    )


def test_missing_or_empty_language_is_the_schema_default_en_us() -> None:
    assert parse_cap(cap(info=info_xml()), strict=True).alert.infos[0].language == "en-US"
    parsed = parse_cap(cap(info=info_xml(before="<language></language>")), strict=True)
    assert parsed.alert.infos[0].language == "en-US"
    assert parsed.notices == ("/alert/info[1]/language: empty; the schema's default en-US applies",)


def test_a_language_that_is_not_a_tag_is_kept_with_a_warning() -> None:
    parsed = lenient(cap(info=info_xml(before="<language>English (US)</language>")))
    assert parsed.alert.infos[0].language == "English (US)"
    assert "is not a language tag like en-US" in parsed.warnings[0]


def test_alert_without_namespace_is_read_as_cap_1_2_with_a_warning() -> None:
    data = cap().replace(f' xmlns="{CAP12}"'.encode(), b"")
    parsed = lenient(data)
    assert parsed.cap_version == "1.2"
    assert parsed.alert.identifier == "ID-1"
    assert parsed.warnings[0].startswith("/alert: no namespace")
    with pytest.raises(CapValidationError):
        parse_cap(data, strict=True)


def test_invalid_uri_is_reported_from_the_schema() -> None:
    data = cap(info=info_xml(after="<web>http://example.org/%zz</web>"))
    parsed = lenient(data)
    assert parsed.alert.infos[0].web == "http://example.org/%zz"
    assert parsed.warnings == (
        "/alert/info[1]/web: 'http://example.org/%zz' is not a valid URI. (CAP 1.2 schema)",
    )
    assert strict_problems(data) == parsed.warnings


def test_strict_error_lists_every_problem() -> None:
    data = cap(info=info_xml(urgency="soon", severity="bad"), scope=None)
    with pytest.raises(CapValidationError) as caught:
        parse_cap(data, strict=True)
    error = caught.value
    assert len(error.problems) == 3
    assert error.path == "/alert/scope"
    assert "(and 2 more problem(s))" in error.reason
    assert str(error).startswith("/alert/scope: required but missing")


# --------------------------------------------------------------------------- geometry


def _area(*inner: str) -> str:
    return info_xml(after="<area><areaDesc>A</areaDesc>" + "".join(inner) + "</area>")


def test_empty_polygon_is_dropped_with_a_notice() -> None:
    parsed = parse_cap(cap(info=_area("<polygon></polygon>")), strict=True)
    assert parsed.alert.infos[0].areas[0].polygons == ()
    assert parsed.notices == ("/alert/info[1]/area[1]/polygon[1]: empty; ignored",)


def test_open_or_short_polygons_are_kept_with_notices() -> None:
    parsed = parse_cap(cap(info=_area("<polygon>1,2 3,4 5,6</polygon>")), strict=True)
    assert parsed.alert.infos[0].areas[0].polygons == (Polygon(((1, 2), (3, 4), (5, 6))),)
    assert parsed.notices == (
        "/alert/info[1]/area[1]/polygon[1]: only 3 point(s); CAP requires at least 4",
        "/alert/info[1]/area[1]/polygon[1]: not closed: the first and last points differ",
    )


@pytest.mark.parametrize(
    "text",
    [
        "38.47,-120.14 38.34",
        "1,2,3 4,5 1,2",
        "north,south",
        "95,0 1,1 2,2 95,0",
        "1,200 1,1 2,2 1,200",
        "nan,1 1,1 2,2 nan,1",
    ],
)
def test_unreadable_polygons_are_dropped_with_a_warning(text: str) -> None:
    data = cap(info=_area(f"<polygon>{text}</polygon>"))
    parsed = lenient(data)
    assert parsed.alert.infos[0].areas[0].polygons == ()
    assert parsed.warnings[0].startswith("/alert/info[1]/area[1]/polygon[1]: not a list")
    with pytest.raises(CapValidationError):
        parse_cap(data, strict=True)


def test_spaces_after_commas_are_read_with_a_warning() -> None:
    parsed = lenient(cap(info=_area("<polygon>1, 2 3 ,4 5 , 6 1,2</polygon>")))
    points = ((1.0, 2.0), (3.0, 4.0), (5.0, 6.0), (1.0, 2.0))
    assert parsed.alert.infos[0].areas[0].polygons[0].points == points
    assert "spaces around the commas" in parsed.warnings[0]


def test_circles() -> None:
    parsed = parse_cap(cap(info=_area("<circle>43.686188,-79.434665 3.87</circle>")), strict=True)
    assert parsed.alert.infos[0].areas[0].circles == (Circle(43.686188, -79.434665, 3.87),)
    bad = lenient(cap(info=_area("<circle>43.6 3.87</circle>")))
    assert bad.alert.infos[0].areas[0].circles == ()
    assert "not 'lat,lon radius'" in bad.warnings[0]


def test_altitude_must_be_a_decimal_in_cap_1_2() -> None:
    parsed = lenient(cap(info=_area("<altitude>1e3</altitude>", "<ceiling>-12.5</ceiling>")))
    area = parsed.alert.infos[0].areas[0]
    assert (area.altitude, area.ceiling) == (None, -12.5)
    assert parsed.warnings[0].startswith("/alert/info[1]/area[1]/altitude: '1e3'")


# --------------------------------------------------------------------------- signatures


def _signature(prefix: str = "ds", declare: str | None = None) -> str:
    declare = declare or f'xmlns:{prefix}="{DSIG}"'
    return f"<{prefix}:Signature {declare}><{prefix}:SignedInfo/></{prefix}:Signature>"


@pytest.mark.parametrize(
    "signature",
    [
        _signature(),
        _signature("capsig"),
        f'<Signature:Signature xmlns="{DSIG}" xmlns:Signature="{DSIG}"><SignedInfo/>'
        "</Signature:Signature>",
        f'<Signature xmlns="{DSIG}"/>',
    ],
)
def test_signatures_are_detected_and_allowed_at_the_end_in_cap_1_2(signature: str) -> None:
    data = cap(info=info_xml()).replace(b"</alert>", signature.encode() + b"</alert>")
    parsed = parse_cap(data, strict=True)
    assert parsed.signed
    assert parsed.warnings == ()


def test_signature_before_the_info_breaks_the_order() -> None:
    data = cap(_signature(), info=info_xml())
    parsed = lenient(data)
    assert parsed.signed
    assert parsed.warnings == ("/alert/info[1]: CAP elements must come before the signature",)


def test_cap_1_1_has_no_place_for_a_signature() -> None:
    data = cap(info=info_xml(), ns=CAP11).replace(b"</alert>", _signature().encode() + b"</alert>")
    parsed = lenient(data)
    assert parsed.signed
    assert parsed.warnings[0].startswith("/alert/Signature: CAP 1.1 has no place")


def test_unsigned_alert() -> None:
    assert not parse_cap(cap(), strict=True).signed


# --------------------------------------------------------------------------- envelopes


def test_edxl_de_envelope_yields_every_alert() -> None:
    data = (FIXTURES / "edxl_two_alerts.xml").read_bytes()
    parsed = parse_cap_all(data, strict=True)
    assert [(p.alert.identifier, p.cap_version) for p in parsed] == [
        ("EDXL-A", "1.2"),
        ("EDXL-B", "1.1"),
    ]
    assert parsed[1].alert.status is Status.TEST
    assert parsed[0].notices == (
        "/EDXLDistribution/contentObject[2]: content other than a CAP alert was not read",
    )
    with pytest.raises(CapError, match="holds 2 alerts; read it with parse_cap_all"):
        parse_cap(data)


def test_edxl_warnings_carry_the_path_inside_the_envelope() -> None:
    data = (FIXTURES / "edxl_two_alerts.xml").read_bytes().replace(b"Test<", b"test<")
    second = parse_cap_all(data)[1]
    assert second.warnings == (
        "/EDXLDistribution/contentObject[3]/xmlContent/embeddedXMLContent/alert/status:"
        " 'test' is not spelt as CAP 1.1 requires; read as Test",
    )


def test_edxl_without_cap_is_an_error() -> None:
    data = (
        b'<EDXLDistribution xmlns="urn:oasis:names:tc:emergency:EDXL:DE:1.0">'
        b"<distributionID>x</distributionID></EDXLDistribution>"
    )
    with pytest.raises(CapError, match="carries no CAP alert"):
        parse_cap_all(data)


def test_a_list_of_alerts_is_read_leniently_and_refused_strictly() -> None:
    one = cap().split(b"?>\n", 1)[1].replace(f' xmlns="{CAP12}"'.encode(), b"")
    data = f'<alerts xmlns="{CAP12}">'.encode() + one + one.replace(b"ID-1", b"ID-2") + b"</alerts>"
    parsed = parse_cap_all(data)
    assert [p.alert.identifier for p in parsed] == ["ID-1", "ID-2"]
    assert parsed[1].warnings[0].startswith("/alerts: several alerts")
    with pytest.raises(CapValidationError):
        parse_cap_all(data, strict=True)
    with pytest.raises(CapError, match="holds 2 alerts"):
        parse_cap(data)


def test_bare_alert_is_one_parsed_alert() -> None:
    assert [p.alert.identifier for p in parse_cap_all(cap())] == ["ID-1"]


def test_parsed_alert_is_immutable() -> None:
    parsed = parse_cap(cap())
    with pytest.raises(AttributeError):
        parsed.signed = True  # type: ignore[misc]
