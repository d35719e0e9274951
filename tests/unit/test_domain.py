"""The alert model: vocabularies, times, references, expiry and language choice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum

import pytest

from alertcast.domain import (
    Alert,
    AlertKey,
    Category,
    Certainty,
    Info,
    MsgType,
    NamedValue,
    ResponseType,
    Scope,
    Severity,
    Status,
    Urgency,
    format_cap_datetime,
    parse_datetime,
    parse_references,
)

SENT = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)


def make_info(language: str = "en-US", expires: datetime | None = None) -> Info:
    return Info(
        categories=(Category.MET,),
        event="Storm",
        urgency=Urgency.IMMEDIATE,
        severity=Severity.SEVERE,
        certainty=Certainty.OBSERVED,
        language=language,
        expires=expires,
    )


def make_alert(*infos: Info) -> Alert:
    return Alert(
        identifier="ID-1",
        sender="s@example.org",
        sent=SENT,
        status=Status.ACTUAL,
        msg_type=MsgType.ALERT,
        scope=Scope.PUBLIC,
        infos=infos,
    )


# --------------------------------------------------------------------------- vocabularies


@pytest.mark.parametrize(
    ("enum", "values"),
    [
        (Status, ["Actual", "Exercise", "System", "Test", "Draft"]),
        (MsgType, ["Alert", "Update", "Cancel", "Ack", "Error"]),
        (Scope, ["Public", "Restricted", "Private"]),
        (
            Category,
            [
                "Geo",
                "Met",
                "Safety",
                "Security",
                "Rescue",
                "Fire",
                "Health",
                "Env",
                "Transport",
                "Infra",
                "CBRNE",
                "Other",
            ],
        ),
        (
            ResponseType,
            [
                "Shelter",
                "Evacuate",
                "Prepare",
                "Execute",
                "Avoid",
                "Monitor",
                "Assess",
                "AllClear",
                "None",
            ],
        ),
        (Urgency, ["Immediate", "Expected", "Future", "Past", "Unknown"]),
        (Severity, ["Extreme", "Severe", "Moderate", "Minor", "Unknown"]),
        (Certainty, ["Observed", "Likely", "Possible", "Unlikely", "Unknown"]),
    ],
)
def test_each_vocabulary_is_exactly_the_cap_1_2_list(
    enum: type[StrEnum], values: list[str]
) -> None:
    assert [member.value for member in enum] == values
    assert all(enum(value).value == value for value in values)


@pytest.mark.parametrize("enum", [Urgency, Severity, Certainty])
def test_ranked_vocabularies_put_the_gravest_first_and_unknown_last(
    enum: type[Urgency] | type[Severity] | type[Certainty],
) -> None:
    members = list(enum)
    assert [m.rank for m in members] == list(range(len(members)))
    assert members[-1].value == "Unknown"


def test_rank_orders_gravity() -> None:
    assert Severity.EXTREME.rank < Severity.MINOR.rank < Severity.UNKNOWN.rank
    assert Urgency.IMMEDIATE.rank < Urgency.PAST.rank


# --------------------------------------------------------------------------- date-times


def test_parse_datetime_reads_minus_zero_as_utc() -> None:
    value = parse_datetime("2012-05-02T23:21:04-00:00")
    assert value == datetime(2012, 5, 2, 23, 21, 4, tzinfo=UTC)
    assert value.utcoffset() == timedelta(0)


def test_parse_datetime_accepts_z_and_offsets() -> None:
    assert parse_datetime("2024-01-01T00:00:00Z") == datetime(2024, 1, 1, tzinfo=UTC)
    value = parse_datetime(" 2024-01-01T02:00:00+02:00 ")
    assert value == datetime(2024, 1, 1, tzinfo=UTC)
    assert value.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2024-01-01T00:00:00", "no UTC offset"),
        ("", "empty"),
        ("   ", "empty"),
        ("yesterday", "not an ISO 8601"),
        ("2024-13-01T00:00:00+00:00", "not an ISO 8601"),
    ],
)
def test_parse_datetime_refuses_what_it_cannot_place_in_time(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_datetime(text)


def test_format_cap_datetime_writes_seconds_and_offset() -> None:
    plus_one = timezone(timedelta(hours=1))
    assert format_cap_datetime(datetime(2024, 3, 1, 10, 0, tzinfo=plus_one)) == (
        "2024-03-01T10:00:00+01:00"
    )
    assert format_cap_datetime(datetime(2024, 3, 1, tzinfo=UTC)) == "2024-03-01T00:00:00+00:00"


def test_format_cap_datetime_drops_microseconds_and_treats_naive_as_utc() -> None:
    assert format_cap_datetime(datetime(2024, 3, 1, 0, 0, 0, 999_999)) == (
        "2024-03-01T00:00:00+00:00"
    )


def test_alert_keys_compare_instants_not_spellings() -> None:
    minus_zero = AlertKey("s", "id", parse_datetime("2024-01-01T00:00:00-00:00"))
    plus_zero = AlertKey("s", "id", parse_datetime("2024-01-01T00:00:00+00:00"))
    assert minus_zero == plus_zero
    assert str(minus_zero) == "s,id,2024-01-01T00:00:00+00:00"


# --------------------------------------------------------------------------- references


def test_parse_references_reads_every_entry() -> None:
    keys, problems = parse_references(
        "a@x,ID-1,2024-01-01T00:00:00-05:00\n  b@y,ID-2,2024-01-02T00:00:00+00:00"
    )
    assert problems == []
    assert keys == (
        AlertKey("a@x", "ID-1", datetime(2024, 1, 1, 5, tzinfo=UTC)),
        AlertKey("b@y", "ID-2", datetime(2024, 1, 2, tzinfo=UTC)),
    )


def test_parse_references_keeps_commas_inside_the_identifier() -> None:
    keys, problems = parse_references("sender,part1,part2,2024-01-01T00:00:00+00:00")
    assert problems == []
    assert keys[0].sender == "sender"
    assert keys[0].identifier == "part1,part2"


def test_parse_references_reports_each_malformed_entry_and_keeps_the_rest() -> None:
    keys, problems = parse_references(
        "only,two a,b,2024-01-01T00:00:00 good,ID,2024-01-01T00:00:00+00:00"
    )
    assert [k.identifier for k in keys] == ["ID"]
    assert len(problems) == 2
    assert "only,two" in problems[0]
    assert "no UTC offset" in problems[1]


def test_parse_references_of_nothing_is_nothing() -> None:
    assert parse_references("") == ((), [])


# --------------------------------------------------------------------------- expiry


def test_alert_expires_at_the_latest_info_expiry() -> None:
    early, late = SENT + timedelta(hours=1), SENT + timedelta(hours=5)
    alert = make_alert(make_info(expires=late), make_info(expires=early))
    assert alert.expires == late


def test_alert_without_expiry_on_any_info_never_lapses() -> None:
    alert = make_alert(make_info(expires=SENT + timedelta(hours=1)), make_info(expires=None))
    assert alert.expires is None
    assert not alert.is_expired(SENT + timedelta(days=365))


def test_alert_without_info_never_lapses() -> None:
    assert make_alert().expires is None
    assert not make_alert().is_expired(SENT + timedelta(days=1))


def test_is_expired_from_the_expiry_instant_on() -> None:
    ends = SENT + timedelta(hours=2)
    alert = make_alert(make_info(expires=ends))
    assert not alert.is_expired(ends - timedelta(seconds=1))
    assert alert.is_expired(ends)
    assert alert.is_expired(ends.astimezone(timezone(timedelta(hours=-7))) + timedelta(seconds=1))


# --------------------------------------------------------------------------- languages


def test_languages_in_document_order_without_repeats() -> None:
    alert = make_alert(make_info("fr-CA"), make_info("en-CA"), make_info("fr-CA"))
    assert alert.languages() == ("fr-CA", "en-CA")


def test_info_for_prefers_the_exact_tag_ignoring_case() -> None:
    alert = make_alert(make_info("en-US"), make_info("es-US"), make_info("es-419"))
    assert alert.info_for("ES-419") is alert.infos[2]


def test_info_for_falls_back_to_the_primary_subtag() -> None:
    alert = make_alert(make_info("en-CA"), make_info("fr-CA"))
    assert alert.info_for("fr-FR") is alert.infos[1]
    assert alert.info_for("fr") is alert.infos[1]


def test_info_for_falls_back_to_the_first_info() -> None:
    alert = make_alert(make_info("de-DE"), make_info("en"))
    assert alert.info_for("ja-JP") is alert.infos[0]


def test_info_for_without_infos_is_none() -> None:
    assert make_alert().info_for("en-US") is None


def test_parameter_returns_the_first_value_of_a_name() -> None:
    info = Info(
        categories=(Category.MET,),
        event="e",
        urgency=Urgency.UNKNOWN,
        severity=Severity.UNKNOWN,
        certainty=Certainty.UNKNOWN,
        parameters=(NamedValue("a", "1"), NamedValue("b", "2"), NamedValue("a", "3")),
    )
    assert info.parameter("a") == "1"
    assert info.parameter("missing") is None


def test_key_is_sender_identifier_sent() -> None:
    assert make_alert().key == AlertKey("s@example.org", "ID-1", SENT)
