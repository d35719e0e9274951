"""The ``road-text`` kind: CAPUFE-style posts read by named rules, then written as CAP.

The corpus posts have their own table in ``test_corpus_road.py``; these tests
pin each rule on its own, the three input forms (JSON lines, RSS, Atom), the
identity of alerts (stable for the same post, new for a changed one), the
thread keys that let the lifecycle link updates and reopenings, time zones,
and what happens to bad entries.
"""

from __future__ import annotations

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
from alertcast.domain import Category, Certainty, MsgType, ResponseType, Severity, Urgency
from alertcast.errors import FeedError
from alertcast.feeds.base import FeedBatch, FeedItem
from alertcast.feeds.road_text import RoadTextParser, looks_like
from alertcast.feeds.road_text_rules import (
    BOTH_DIRECTIONS,
    CLEANING,
    Condition,
    clean,
    extract,
    segment_key,
    split_header,
    split_sentences,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "road"
REPO = Path(__file__).resolve().parents[2]
XSD_12 = etree.XMLSchema(etree.parse(str(REPO / "alertcast" / "schemas" / "CAP-v1.2.xsd")))
MEXICO = timezone(timedelta(hours=-6))


def feed(**mapping: Any) -> FeedConfig:
    return FeedConfig(
        name="capufe", kind="road-text", file=Path("feeds/capufe.toml"), mapping=mapping
    )


def parse(data: bytes, **mapping: Any) -> FeedBatch:
    return RoadTextParser().parse(data, feed(**mapping))


def assert_writes_valid_cap(item: FeedItem) -> None:
    document = to_cap_xml(item.alert)
    assert XSD_12.validate(etree.fromstring(document)), XSD_12.error_log
    assert parse_cap(document).alert == item.alert


def post_line(**fields: Any) -> bytes:
    import json

    return json.dumps(fields, ensure_ascii=False).encode("utf-8") + b"\n"


# --------------------------------------------------------------------------- cleaning


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("Para más información llama al 0⃣7⃣4⃣.", "Para más información llama al 074."),
        ("llama al 0️⃣7️⃣4️⃣", "llama al 074"),
        ("?? CARGA VEHICULAR ??", "CARGA VEHICULAR"),
        ("?? CIERRE PARCIAL DE CIRCULACIÓN??", "CIERRE PARCIAL DE CIRCULACIÓN"),
        ("¿Viajas hoy??", "¿Viajas hoy??"),
        ("🔴 CIERRE DE CIRCULACIÓN 🔴", "CIERRE DE CIRCULACIÓN"),
        ("☑️ ACTUALIZACIÓN.", "ACTUALIZACIÓN."),
        ("Se realizarán trabajos. pic.twitter.com/4XcSwc4OOI", "Se realizarán trabajos."),
        (
            "Circulación restablecida https://t.co/abc #CAPUFE #Precaución",
            "Circulación restablecida",
        ),
        ("#AVISO a las personas usuarias", "AVISO a las personas usuarias"),
        ("de la autopista #CuernavacaAcapulco.", "de la autopista Cuernavaca - Acapulco."),
        ("Buenas tardes. Autopista Córdoba - Veracruz", "Autopista Córdoba - Veracruz"),
        ("@CAPUFE CARGA VEHICULAR Aut. Córdoba", "CARGA VEHICULAR Aut. Córdoba"),
        ("bacheo. [...] estos cierres", "bacheo. estos cierres"),
        ("México-Querétaro , kilómetro 89", "México-Querétaro, kilómetro 89"),
        (
            "Maneja con precaución. — CAPUFE (@CAPUFE) March 12, 2026",
            "Maneja con precaución.",
        ),
        ("Temperatura de 5 °C en la zona", "Temperatura de 5 °C en la zona"),
    ],
)
def test_cleaning_repairs_what_transports_do_to_posts(raw: str, cleaned: str) -> None:
    assert clean(raw) == cleaned


def test_cleaning_steps_have_distinct_names() -> None:
    names = [step.name for step in CLEANING]
    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    ("text", "header", "rest"),
    [
        ("CARGA VEHICULAR Aut. Córdoba - Veracruz", "CARGA VEHICULAR", "Aut. Córdoba - Veracruz"),
        ("ACTUALIZACIÓN.\n\nAutopista X - Y", "ACTUALIZACIÓN", "Autopista X - Y"),
        ("AVISO a las personas usuarias", None, "AVISO a las personas usuarias"),
        ("A partir de este martes", None, "A partir de este martes"),
    ],
)
def test_an_all_capitals_opening_is_a_header(text: str, header: str | None, rest: str) -> None:
    assert split_header(text) == (header, rest)


def test_sentences_are_not_cut_after_abbreviations() -> None:
    text = "Aut. La Tinaja - Isla, km 69. Continúa la fila en dir. Isla. Toma tus precauciones."
    assert split_sentences(text) == [
        "Aut. La Tinaja - Isla, km 69.",
        "Continúa la fila en dir. Isla.",
        "Toma tus precauciones.",
    ]


# --------------------------------------------------------------------------- field rules


@pytest.mark.parametrize(
    ("text", "road", "km"),
    [
        ("Autopista La Tinaja - Isla, km 69.", "La Tinaja - Isla", "69"),
        (
            "Aut. Nuevo Teapa - Cosoleacaque, del km 16 al 17.",
            "Nuevo Teapa - Cosoleacaque",
            "16-17",
        ),
        ("Aut. Córdoba - Veracruz, del km 39 al km 42.", "Córdoba - Veracruz", "39-42"),
        (
            "Autopista México-Querétaro , kilómetro 89, en dirección a X.",
            "México - Querétaro",
            "89",
        ),
        ("Carretera Federal 57, km 12+500, dirección Norte.", "Federal 57", "12+500"),
        ("Autopista del Sol km 95-97 dirección Acapulco.", "del Sol", "95-97"),
        ("Entre el kilómetro 71 al 73 habrá cierres.", None, "71-73"),
        ("Se registran 13 km de fila.", None, None),
    ],
)
def test_road_and_km(text: str, road: str | None, km: str | None) -> None:
    report = extract(text)
    assert (report.road, report.km) == (road, km)


@pytest.mark.parametrize(
    ("text", "direction"),
    [
        ("Autopista A - B, km 1, dirección Isla. Cierre a la circulación.", "Isla"),
        ("Autopista A - B, km 1, dir. Veracruz. Cierre a la circulación.", "Veracruz"),
        ("Autopista A - B, km 1, en dirección a Ciudad de México.", "Ciudad de México"),
        ("Autopista A - B, en dirección al estado de Morelos, debido a obras.", "Morelos"),
        ("Autopista A - B, km 1, con dirección a la Ciudad de México.", "Ciudad de México"),
        ("Autopista A - B, km 1. Contraflujo en ambos sentidos.", BOTH_DIRECTIONS),
        # A queue's direction is not the event's:
        ("Aut. A - B, km 1. Contraflujo. Se registran 13 km de fila en dirección Isla.", None),
    ],
)
def test_direction(text: str, direction: str | None) -> None:
    assert extract(text).direction == direction


def test_queues_per_direction_and_the_longest() -> None:
    report = extract(
        "Aut. Córdoba - Veracruz, del km 39 al km 42. Contraflujo para ambos sentidos."
        " En la zona se registran 4 km de fila aproximadamente en dir. Veracruz y 7 km en"
        " dir. Córdoba."
    )
    assert [(q.km, q.direction) for q in report.queues] == [("4", "Veracruz"), ("7", "Córdoba")]
    assert report.queue_km == "7"
    assert report.direction == BOTH_DIRECTIONS


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        (
            "Reducción de carriles por atención de accidente (choque por alcance).",
            "atención de accidente (choque por alcance)",
        ),
        ("Contraflujo por labores de mantenimiento, sin incidentes.", "labores de mantenimiento"),
        ("Cierres parciales debido a trabajos de bacheo.", "trabajos de bacheo"),
        ("Se realizarán trabajos de mantenimiento en gazas.", "trabajos de mantenimiento"),
        ("Contraflujo para ambos sentidos.", None),
    ],
)
def test_cause(text: str, cause: str | None) -> None:
    assert extract(text).cause == cause


@pytest.mark.parametrize(
    ("header", "text", "condition"),
    [
        ("🔴 CIERRE DE CIRCULACIÓN 🔴", "Autopista A - B, km 1.", Condition.CLOSED),
        (None, "Continúa cierre a la circulación en ambos sentidos.", Condition.CLOSED),
        (None, "Cierre total por bloqueo de manifestantes.", Condition.CLOSED),
        ("🟠 CIERRE PARCIAL DE CIRCULACIÓN 🟠", "Autopista A - B.", Condition.PARTIALLY_CLOSED),
        (None, "Reducción de carriles por accidente.", Condition.PARTIALLY_CLOSED),
        ("?? CARGA VEHICULAR ??", "Circulación a contraflujo.", Condition.CONTRAFLOW),
        ("CARGA VEHICULAR", "Autopista A - B, km 1.", Condition.HEAVY_TRAFFIC),
        (None, "Tránsito lento por afluencia vehicular.", Condition.HEAVY_TRAFFIC),
        (None, "Se registran 5 km de fila.", Condition.HEAVY_TRAFFIC),
        ("CIRCULACIÓN RESTABLECIDA", "Autopista A - B, km 1.", Condition.REOPENED),
        (None, "Se restablece la circulación tras el cierre.", Condition.REOPENED),
        (
            None,
            "Se restablece la circulación con reducción de carriles.",
            Condition.PARTIALLY_CLOSED,
        ),
        ("#AVISO", "Se realizarán trabajos en gazas.", Condition.OTHER),
    ],
)
def test_condition(header: str | None, text: str, condition: Condition) -> None:
    assert extract(text, header).condition is condition


def test_update_planned_and_instruction() -> None:
    update = extract("Autopista A - B, km 1. Continúa cierre.", "☑️ ACTUALIZACIÓN.")
    assert update.is_update and not update.planned
    planned = extract("A partir de este martes habrá cierres parciales en la autopista A - B.")
    assert planned.planned
    told = extract("Autopista A - B, km 1. Cierre. Toma tus precauciones. Llama al 074.")
    assert told.instruction == "Toma tus precauciones."
    assert told.description == "Autopista A - B, km 1. Cierre. Llama al 074."


def test_each_field_says_which_rule_gave_it() -> None:
    report = extract("Aut. A - B, del km 1 al 2, dirección C. Cierre a la circulación por obras.")
    assert dict(report.rules) == {
        "road": "road_after_keyword",
        "km": "km_range_in_words",
        "direction": "stated_direction",
        "cause": "cause_after_por",
        "condition": "closed",
    }


# --------------------------------------------------------------------------- segment key


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (
            "Autopista La Tinaja - Isla, km 69, dirección Veracruz.",
            "road:la-tinaja-isla:km69:dir-veracruz",
        ),
        ("Aut. La Tinaja-Isla, km 69, dir. Veracruz.", "road:la-tinaja-isla:km69:dir-veracruz"),
        ("Autopista Córdoba - Veracruz, del km 39 al 42.", "road:cordoba-veracruz:km39-42"),
        (
            "Aut. Córdoba - Veracruz, del km 39 al km 42, ambos sentidos.",
            "road:cordoba-veracruz:km39-42",
        ),
        ("Aut. Córdoba - Veracruz, km 39-42.", "road:cordoba-veracruz:km39-42"),
        (
            "Autopista Barranca Larga - Ventanilla, Plaza de Cobro Ventanilla.",
            "road:barranca-larga-ventanilla:plaza-de-cobro-ventanilla",
        ),
        ("Habrá cierres del kilómetro 71 al 73, con dirección a la Ciudad de México.", None),
    ],
)
def test_segment_key_normalises_spelling(text: str, key: str | None) -> None:
    assert segment_key(extract(text)) == key


# --------------------------------------------------------------------------- JSON lines


def test_json_lines_with_ids_and_bad_lines() -> None:
    batch = parse((FIXTURES / "capufe_posts_with_ids.jsonl").read_bytes())
    assert [item.alert.msg_type for item in batch.items] == [
        MsgType.ALERT,
        MsgType.UPDATE,
        MsgType.CANCEL,
    ]
    assert {item.thread for item in batch.items} == {
        "road:cuernavaca-acapulco:km349:dir-cuernavaca"
    }
    assert all(not item.alert.references for item in batch.items)
    first, update, cancel = batch.items
    # A time without a zone is read in America/Mexico_City (UTC-6 in March 2026).
    assert first.alert.sent == datetime(2026, 3, 12, 7, 30, tzinfo=MEXICO)
    assert first.alert.identifier.startswith("road-1900000000000000010-20260312T133000Z-")
    assert update.alert.identifier.startswith("road-1900000000000000011-")  # a numeric id
    assert update.alert.infos[0].parameter("condition") == "partially_closed"
    assert cancel.alert.infos[0].urgency is Urgency.PAST
    assert cancel.alert.infos[0].response_types == (ResponseType.ALL_CLEAR,)
    assert batch.errors == (
        "line 4: not valid JSON (Unterminated string starting at at column 39)",
        "line 5: a post must be a JSON object, not list",
        "line 6: the post has no text (field 'text')",
        "line 8: its time 'the twelfth of March' is not a date or date-time this feed kind reads",
    )
    for item in batch.items:
        assert_writes_valid_cap(item)
        assert item.raw.startswith(b'{"id": ')


def test_a_post_read_twice_is_the_same_alert_and_a_changed_post_is_new() -> None:
    line = post_line(
        id="42",
        published="2026-03-12T10:00:00-06:00",
        text="Autopista A - B, km 1. Cierre a la circulación.",
    )
    once, twice = parse(line).items[0].alert, parse(line + line).items[1].alert
    assert once.key == twice.key
    edited = post_line(
        id="42",
        published="2026-03-12T10:00:00-06:00",
        text="Autopista A - B, km 2. Cierre a la circulación.",
    )
    assert parse(edited).items[0].alert.identifier != once.identifier
    later = post_line(
        id="42",
        updated="2026-03-12T10:05:00-06:00",
        text="Autopista A - B, km 1. Cierre a la circulación.",
    )
    assert parse(later).items[0].alert.identifier != once.identifier


def test_posts_without_id_are_identified_by_their_content_and_time() -> None:
    a = post_line(date="2026-03-12", text="Autopista A - B, km 1. Cierre a la circulación.")
    b = post_line(date="2026-03-12", text="Autopista A - B, km 1. Reducción de carriles.")
    first, second = parse(a + b).items
    assert first.alert.identifier != second.alert.identifier
    assert parse(a).items[0].alert.identifier == first.alert.identifier
    assert all(c not in first.alert.identifier for c in " ,<&")


def test_a_date_alone_is_midnight_in_the_configured_zone_with_a_warning() -> None:
    line = post_line(date="2024-09-08", text="Aut. La Tinaja - Isla, km 69. Contraflujo.")
    item = parse(line, timezone="America/Cancun").items[0]
    assert item.alert.sent == datetime(2024, 9, 8, tzinfo=timezone(timedelta(hours=-5)))
    assert item.warnings == (
        "line 1: the post gives only a date (2024-09-08); sent is 00:00 America/Cancun that day",
    )


def test_the_date_of_an_embedded_post_is_its_time() -> None:
    line = post_line(
        raw_embed="CARGA VEHICULAR\n— CAPUFE (@CAPUFE) September 8, 2024\nAut. La Tinaja - Isla,"
        " km 69. Contraflujo."
    )
    item = parse(line).items[0]
    assert item.alert.sent == datetime(2024, 9, 8, tzinfo=MEXICO)
    assert item.alert.infos[0].parameter("road") == "La Tinaja - Isla"


def test_a_post_without_time_is_an_error_not_now() -> None:
    batch = parse(post_line(text="Autopista A - B, km 1. Cierre a la circulación."))
    assert batch.items == ()
    assert batch.errors[0].startswith("line 1: the post has no date or time")


def test_a_json_array_of_posts() -> None:
    data = (
        b'[{"date": "2026-01-01", "text": "Autopista A - B, km 1. Cierre a la circulaci\\u00f3n."},'
        b' {"text": 5}]'
    )
    batch = parse(data)
    assert len(batch.items) == 1
    assert batch.errors == ("entry 2: the post has no text (field 'text')",)


def test_settings_from_the_mapping() -> None:
    line = post_line(
        id="7",
        published="2026-03-12T10:00:00Z",
        text="Autopista A - B, km 1. Cierre a la circulación.",
    )
    alert = parse(line, sender="capufe.gob.mx", language="es", sender_name="CAPUFE").items[0].alert
    assert alert.sender == "capufe.gob.mx"
    assert alert.infos[0].language == "es"
    assert alert.infos[0].sender_name == "CAPUFE"
    assert parse(line).items[0].alert.sender == "capufe"


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "mapping.timezone 'Mars/Olympus' is not a time zone name"),
        ({"sender": "CAPUFE Mexico"}, "mapping.sender 'CAPUFE Mexico' must not"),
        ({"language": "español!"}, "mapping.language 'español!' is not a tag"),
    ],
)
def test_bad_mapping_is_a_feed_error(mapping: dict[str, str], message: str) -> None:
    with pytest.raises(FeedError, match=message.replace("(", r"\(")):
        parse(post_line(date="2026-01-01", text="Autopista A - B."), **mapping)


# --------------------------------------------------------------------------- RSS and Atom


def test_rss_posts_become_a_thread_of_alert_update_cancel() -> None:
    batch = parse((FIXTURES / "capufe_posts.rss").read_bytes())
    closure, update, reopening, slow = batch.items
    thread = "road:mexico-puebla:km45:dir-puebla"
    assert [closure.thread, update.thread, reopening.thread] == [thread] * 3
    assert [i.alert.msg_type for i in (closure, update, reopening)] == [
        MsgType.ALERT,
        MsgType.UPDATE,
        MsgType.CANCEL,
    ]
    info = closure.alert.infos[0]
    assert info.event == "Cierre de circulación"
    assert info.severity is Severity.SEVERE
    assert info.urgency is Urgency.IMMEDIATE and info.certainty is Certainty.OBSERVED
    assert info.categories == (Category.TRANSPORT,)
    assert (
        info.headline
        == "CIERRE DE CIRCULACIÓN: Autopista México - Puebla, km 45, dirección Puebla."
    )
    assert info.description == (
        "Autopista México - Puebla, km 45, dirección Puebla. Cierre a la circulación por"
        " atención de accidente (volcadura de tractocamión)."
    )
    assert info.instruction == "Toma tus precauciones. Para más información llama al 074."
    assert info.web == "https://example.org/capufe/status/1900000000000000001"
    # A URL as guid is hashed into a CAP-legal identifier.
    assert closure.alert.identifier.startswith("road-h") and "/" not in closure.alert.identifier
    assert update.alert.identifier.startswith("road-1900000000000000002-20260312T154000Z-")
    # A pubDate without zone is read in America/Mexico_City.
    assert reopening.alert.sent == datetime(2026, 3, 12, 11, 5, tzinfo=MEXICO)
    assert reopening.alert.infos[0].severity is Severity.MINOR
    # Only a title: the text is the title, and the greeting is dropped.
    assert slow.alert.infos[0].description is not None
    assert slow.alert.infos[0].description.startswith("Autopista Córdoba - Veracruz")
    assert slow.alert.infos[0].parameter("condition") == "heavy_traffic"
    assert batch.errors == (
        "item 4: the post has no date or time (updated, published, date...); it was not used,"
        " because stamping it with the time of reading would make every poll a new alert",
    )
    for item in batch.items:
        assert_writes_valid_cap(item)


def test_atom_entries_and_a_reopening_that_keeps_lanes_closed() -> None:
    first, second = parse((FIXTURES / "capufe_posts.atom").read_bytes()).items
    assert (
        first.thread == second.thread == "road:nuevo-teapa-cosoleacaque:km16-17:dir-coatzacoalcos"
    )
    assert first.alert.sent == datetime(2026, 3, 12, 14, 0, tzinfo=UTC)
    assert second.alert.msg_type is MsgType.UPDATE
    assert second.alert.infos[0].parameter("condition") == "partially_closed"
    assert "pic.twitter.com" not in (first.alert.infos[0].description or "")
    for item in (first, second):
        assert_writes_valid_cap(item)


def test_entity_declarations_are_refused_before_feedparser_sees_them() -> None:
    data = (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<rss><channel><item><title>&x;</title></item></channel></rss>"
    )
    with pytest.raises(FeedError, match="declares XML entities"):
        parse(data)


def test_a_document_is_never_opened_as_a_file_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # feedparser tries bytes as a path before reading them; the parser hands it a stream.
    folder = tmp_path / "<rss"
    folder.mkdir()
    (folder / "posts.xml").write_bytes((FIXTURES / "capufe_posts.rss").read_bytes())
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FeedError, match=r"not an RSS or Atom feed|not a readable"):
        parse(b"<rss/posts.xml")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the document is empty"),
        (b"   \n", "the document is empty"),
        (b"Autopista A - B, km 1", "not a road-text document"),
        (b"<html><body>not a feed</body></html>", "not an RSS or Atom feed"),
        (b"\n\n", "the document is empty"),
        (b"[" * 100_000, "nested too deeply"),
    ],
)
def test_documents_that_are_not_road_posts(data: bytes, message: str) -> None:
    with pytest.raises(FeedError, match=message):
        parse(data)


def test_the_size_limit() -> None:
    small = replace(feed(), max_bytes=10)
    with pytest.raises(FeedError, match="more than the limit"):
        RoadTextParser().parse(post_line(date="2026-01-01", text="Autopista A - B."), small)


# --------------------------------------------------------------------------- sniffing


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("capufe_posts.rss", True),
        ("capufe_posts.atom", True),
        ("capufe_posts_with_ids.jsonl", True),
    ],
)
def test_looks_like_own_fixtures(name: str, expected: bool) -> None:
    assert looks_like((FIXTURES / name).read_bytes()) is expected


@pytest.mark.parametrize(
    "data",
    [
        b'<rss version="2.0"><channel><title>Noticias</title><item><title>Nueva autopista'
        b" inaugurada</title></item></channel></rss>",
        b'{"events": [{"id": "x/1", "event_type": "INCIDENT"}]}',
        b'<?xml version="1.0"?><alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"/>',
        b"",
    ],
)
def test_looks_like_refuses_other_documents(data: bytes) -> None:
    assert looks_like(data) is False


# --------------------------------------------------------------------------- properties


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400), st.one_of(st.none(), st.text(max_size=60)))
def test_extract_reads_any_text(text: str, header: str | None) -> None:
    report = extract(text, header)
    assert report.condition in Condition
    key = segment_key(report)
    assert key is None or (key.startswith("road:") and not any(c.isspace() for c in key))


_WORDS = st.sampled_from(
    [
        "Autopista",
        "Aut.",
        "La Tinaja - Isla,",
        "km 69,",
        "del km 16 al 17.",
        "dirección Isla.",
        "dir.",
        "Cierre a la circulación",
        "por atención de accidente (choque).",
        "Reducción de carriles",
        "contraflujo",
        "13 km de fila",
        "ambos sentidos",
        "ACTUALIZACIÓN",
        "Circulación restablecida.",
        "??",
        "0⃣7⃣4⃣",
        "#CAPUFE",
        "https://t.co/x",
        "Buenas tardes.",
        "\x00",
        "\ud7ff",
        "<&>",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_WORDS, max_size=25).map(" ".join), st.one_of(st.none(), _WORDS))
def test_any_post_gives_an_alert_or_an_error_line(text: str, header: str | None) -> None:
    fields: dict[str, Any] = {"id": "1", "published": "2026-03-12T10:00:00-06:00", "text": text}
    if header is not None:
        fields["header"] = header
    batch = parse(post_line(**fields))
    assert len(batch.items) + len(batch.errors) == 1
    for item in batch.items:
        to_cap_xml(item.alert)


def test_a_reader_bug_on_one_post_does_not_hide_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import alertcast.feeds.road_text as module

    real = module.extract

    def fragile(text: str, header: str | None = None) -> Any:
        if "km 2" in text:
            raise RuntimeError("boom")
        return real(text, header)

    monkeypatch.setattr(module, "extract", fragile)
    lines = b"".join(
        post_line(date="2026-01-01", text=f"Autopista A - B, km {n}. Cierre a la circulación.")
        for n in (1, 2, 3)
    )
    batch = parse(lines)
    assert [item.alert.infos[0].parameter("km") for item in batch.items] == ["1", "3"]
    assert batch.errors == ("line 2: could not be read (RuntimeError: boom)",)
