"""The road kinds against the public samples in ../shared/corpus/road (see its SOURCES.md).

Every file in the folder has an expectation here, so a new sample fails
until someone decides what it must give. The CAPUFE posts have a table of
what each one says (road, km, place, direction, condition, cause, queue);
the Open511 files are checked event by event; the files that are not Open511
events documents must be refused with a reason that says what they are.
Every alert produced must write as CAP 1.2 valid for the OASIS schema and
read back equal.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from lxml import etree

from alertcast.cap import parse_cap, to_cap_xml
from alertcast.config import FeedConfig
from alertcast.domain import Certainty, Circle, MsgType, NamedValue, Severity, Urgency
from alertcast.errors import FeedError
from alertcast.feeds import open511, road_text
from alertcast.feeds.base import FeedBatch, FeedItem
from alertcast.feeds.road_text_rules import BOTH_DIRECTIONS, Condition, extract, segment_key
from tests.conftest import REPO_ROOT, corpus_files

pytestmark = pytest.mark.corpus

ROAD_FILES = corpus_files("road")
CAPUFE = "capufe_road_reports_es-MX.jsonl"
XSD_12 = etree.XMLSchema(etree.parse(str(REPO_ROOT / "alertcast" / "schemas" / "CAP-v1.2.xsd")))
PACIFIC_DST = timezone(timedelta(hours=-7))
MEXICO = timezone(timedelta(hours=-6))

REJECTED: dict[str, str] = {
    "datex2_v2_SituationPublication_IT492_golden.xml": (
        "unsupported format (DATEX II SituationPublication): this is a European DATEX II"
        " publication, not Open511"
    ),
    "open511_server_fixture_five_montreal_fr.json": (
        "not an Open511 events document: it is an open511-server database fixture (5 records"
        " holding prototype, pre-v1 <RoadEvent> XML with no status and no created or updated time)"
    ),
    "open511_spec_v1_area.xml": "not an Open511 events document: it is a list of areas",
    "open511_spec_v1_jurisdiction.json": (
        "not an Open511 events document: it is a list of jurisdictions"
    ),
    "open511_spec_v1_jurisdiction.xml": (
        "not an Open511 events document: it is a list of jurisdictions"
    ),
    "open511_spec_v1_road.xml": "not an Open511 events document: it is a list of roads",
    "open511_spec_v1_root.xml": (
        "not an Open511 events document: it is a discovery document (services)"
    ),
    "open511_spec_v1_schedule_ex1.json": (
        'not an Open511 events document: it is a JSON fragment ("schedule": ...), not a complete'
        " JSON document"
    ),
    "open511_spec_v1_schedule_ex1.xml": (
        "not an Open511 events document: it is an Open511 <schedule> fragment"
    ),
    "open511_spec_v1_schedule_ex2.xml": (
        "not an Open511 events document: it is an Open511 <schedule> fragment"
    ),
    "open511_spec_v1_schedule_ex3.json": (
        'not an Open511 events document: it is a JSON fragment ("schedule": ...)'
    ),
    "open511_spec_v1_schedule_ex3.xml": (
        "not an Open511 events document: it is an Open511 <schedule> fragment"
    ),
}
"""Files the open511 kind must refuse, with the start of the reason it must give."""

READ: dict[str, tuple[str, int, int]] = {
    CAPUFE: ("road-text", 10, 4),
    "drivebc_open511_events_list_of_five.json": ("open511", 5, 0),
    "drivebc_open511_events_five_with_validation_error.json": ("open511", 4, 1),
    "open511_spec_v1_event.json": ("open511", 1, 0),
    "open511_spec_v1_event.xml": ("open511", 1, 0),
    "open511_tmdd-output-1.json": ("open511", 5, 0),
    "open511_tmdd-output-2.json": ("open511", 1, 0),
}
"""Files that are read: kind, alerts produced, error lines."""

PARSERS = {"road-text": road_text.RoadTextParser(), "open511": open511.Open511Parser()}


def _feed(kind: str, **mapping: Any) -> FeedConfig:
    return FeedConfig(name="corpus", kind=kind, file=Path("feeds/corpus.toml"), mapping=mapping)


def _read(corpus_dir: Path, name: str, kind: str, **mapping: Any) -> FeedBatch:
    return PARSERS[kind].parse((corpus_dir / "road" / name).read_bytes(), _feed(kind, **mapping))


def _assert_valid_cap(item: FeedItem) -> None:
    document = to_cap_xml(item.alert)
    assert XSD_12.validate(etree.fromstring(document)), XSD_12.error_log
    assert parse_cap(document).alert == item.alert


def _ids(paths: list[Path]) -> list[str]:
    return [path.name for path in paths]


def test_every_road_sample_has_an_expectation(corpus_dir: Path) -> None:
    present = {path.name for path in (corpus_dir / "road").iterdir()}
    assert present == set(REJECTED) | set(READ)


@pytest.mark.parametrize("path", ROAD_FILES, ids=_ids(ROAD_FILES))
def test_each_sample_is_read_or_clearly_refused(path: Path, corpus_dir: Path) -> None:
    name = path.name
    if name in REJECTED:
        with pytest.raises(FeedError) as caught:
            _read(corpus_dir, name, "open511")
        assert caught.value.reason.startswith(REJECTED[name])
        return
    kind, alerts, errors = READ[name]
    batch = _read(corpus_dir, name, kind)
    assert (len(batch.items), len(batch.errors)) == (alerts, errors)
    for item in batch.items:
        _assert_valid_cap(item)
        assert item.thread
        assert not any(c in item.alert.identifier for c in " ,<&")


@pytest.mark.parametrize("path", ROAD_FILES, ids=_ids(ROAD_FILES))
def test_sniffing_agrees_with_the_kind(path: Path, corpus_dir: Path) -> None:
    data = path.read_bytes()
    kind = READ.get(path.name, ("",))[0]
    assert road_text.looks_like(data) is (kind == "road-text")
    if kind == "open511":
        assert open511.looks_like(data)


# --------------------------------------------------------------------------- CAPUFE


class Post(NamedTuple):
    road: str | None
    km: str | None
    place: str | None
    direction: str | None
    condition: Condition
    cause: str | None
    queue_km: str | None = None
    is_update: bool = False
    planned: bool = False


BOTH = BOTH_DIRECTIONS
CAPUFE_POSTS: dict[int, Post] = {
    1: Post("La Tinaja - Isla", "69", None, BOTH, Condition.CONTRAFLOW,
            "labores de mantenimiento", "13"),
    2: Post("Nuevo Teapa - Cosoleacaque", "16-17", None, BOTH, Condition.CONTRAFLOW,
            "labores de mantenimiento", "6"),
    3: Post("Nuevo Teapa - Cosoleacaque", "26", None, "Nuevo Teapa", Condition.PARTIALLY_CLOSED,
            "atención del accidente (maniobras para el retiro de unidad siniestrada)"),
    4: Post("Barranca Larga - Ventanilla", None, "Plaza de Cobro Ventanilla", BOTH,
            Condition.CLOSED, "presencia de manifestantes", is_update=True),
    5: Post("La Tinaja - Isla", "46", None, "Isla", Condition.PARTIALLY_CLOSED,
            "atención de accidente (salida del camino a camellón central)"),
    6: Post("Córdoba - Veracruz", "81", None, "Veracruz", Condition.PARTIALLY_CLOSED,
            "atención de accidente (choque por alcance)"),
    7: Post("Cuernavaca - Acapulco", "349", None, "Cuernavaca", Condition.CLOSED,
            "atención de accidente (maniobras para el retiro de la unidad siniestrada)"),
    8: Post("Cuernavaca - Acapulco", None, "entronque Brisas", None, Condition.OTHER,
            "trabajos de mantenimiento", planned=True),
    9: Post("Córdoba - Veracruz", "87", None, "Córdoba", Condition.PARTIALLY_CLOSED,
            "atención de accidente (salida del camino y volcadura de automóvil)"),
    10: Post("Córdoba - Veracruz", "39-42", None, BOTH, Condition.CONTRAFLOW,
             "labores de mantenimiento", "7"),
    11: Post("Córdoba - Veracruz", "39-42", None, None, Condition.CONTRAFLOW,
             "labores de mantenimiento", "7"),
    12: Post("México - Querétaro", "89", None, "Ciudad de México", Condition.PARTIALLY_CLOSED,
             "atención de accidente (choque por alcance entre tractocamión y autobús)"),
    13: Post("México - Cuernavaca", "18-23", None, "Morelos", Condition.PARTIALLY_CLOSED,
             "trabajos de bacheo", planned=True),
    14: Post(None, "71-73", None, "Ciudad de México", Condition.PARTIALLY_CLOSED, None,
             planned=True),
}  # fmt: skip
"""What each line of the CAPUFE file says. Gaps are the post's, not the reader's:
8 gives no km (the news text around it says km 99) and no direction; 11 names no
direction for the contraflow (only for its queue); 14 is a news excerpt that never
names the road (SOURCES.md: México-Cuernavaca) and gives no cause."""

CAPUFE_THREADS = {
    1: "road:la-tinaja-isla:km69",
    2: "road:nuevo-teapa-cosoleacaque:km16-17",
    3: "road:nuevo-teapa-cosoleacaque:km26:dir-nuevo-teapa",
    4: "road:barranca-larga-ventanilla:plaza-de-cobro-ventanilla",
    5: "road:la-tinaja-isla:km46:dir-isla",
    6: "road:cordoba-veracruz:km81:dir-veracruz",
    7: "road:cuernavaca-acapulco:km349:dir-cuernavaca",
    8: "road:cuernavaca-acapulco:entronque-brisas",
    9: "road:cordoba-veracruz:km87:dir-cordoba",
    10: "road:cordoba-veracruz:km39-42",
    11: "road:cordoba-veracruz:km39-42",
    12: "road:mexico-queretaro:km89:dir-ciudad-de-mexico",
    13: "road:mexico-cuernavaca:km18-23:dir-morelos",
    14: None,
}
UNDATED = (9, 10, 11, 14)
"""Posts the file gives no date for: each is an error line, never stamped with "now"."""


def _capufe_lines(corpus_dir: Path) -> list[dict[str, Any]]:
    text = (corpus_dir / "road" / CAPUFE).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_the_table_covers_every_capufe_post(corpus_dir: Path) -> None:
    assert len(_capufe_lines(corpus_dir)) == len(CAPUFE_POSTS) == 14


@pytest.mark.parametrize("line", sorted(CAPUFE_POSTS))
def test_capufe_post_fields(line: int, corpus_dir: Path) -> None:
    post = _capufe_lines(corpus_dir)[line - 1]
    report = extract(post["text"], post["header"])
    assert (
        Post(
            report.road,
            report.km,
            report.place,
            report.direction,
            report.condition,
            report.cause,
            report.queue_km,
            report.is_update,
            report.planned,
        )
        == CAPUFE_POSTS[line]
    )
    assert segment_key(report) == CAPUFE_THREADS[line]


def test_capufe_queues_per_direction(corpus_dir: Path) -> None:
    lines = _capufe_lines(corpus_dir)
    queues = {n: [(q.km, q.direction) for q in extract(p["text"], p["header"]).queues]
              for n, p in enumerate(lines, 1)}  # fmt: skip
    assert queues[1] == [("13", "Isla")]
    assert queues[2] == [("6", "Nuevo Teapa")]
    assert queues[10] == [("4", "Veracruz"), ("7", "Córdoba")]
    assert queues[11] == [("7", "Veracruz")]
    assert all(not queues[n] for n in queues if n not in (1, 2, 10, 11))


def test_capufe_alerts(corpus_dir: Path) -> None:
    batch = _read(corpus_dir, CAPUFE, "road-text")
    assert batch.errors == tuple(
        f"line {n}: the post has no date or time (updated, published, date...); it was not used,"
        " because stamping it with the time of reading would make every poll a new alert"
        for n in UNDATED
    )
    dated = [n for n in sorted(CAPUFE_POSTS) if n not in UNDATED]
    assert len(batch.items) == len(dated)
    for line, item in zip(dated, batch.items, strict=True):
        expected = CAPUFE_POSTS[line]
        info = item.alert.infos[0]
        assert item.thread == CAPUFE_THREADS[line]
        assert item.alert.msg_type is (MsgType.UPDATE if expected.is_update else MsgType.ALERT)
        assert info.language == "es-MX"
        assert info.parameter("road") == expected.road
        assert info.parameter("km") == expected.km
        assert info.parameter("place") == expected.place
        assert info.parameter("direction") == expected.direction
        assert info.parameter("condition") == expected.condition.value
        assert info.parameter("cause") == expected.cause
        assert info.parameter("queue_km") == expected.queue_km
        assert info.urgency is (Urgency.FUTURE if expected.planned else Urgency.IMMEDIATE)
        assert info.certainty is (Certainty.LIKELY if expected.planned else Certainty.OBSERVED)
        assert item.alert.sent.tzinfo is not None
        assert item.alert.sent.utcoffset() == timedelta(hours=-6)
        assert item.warnings[0].startswith(f"line {line}: the post gives only a date")
        assert "??" not in (info.headline or "") + (info.description or "")
        assert "⃣" not in (info.instruction or "")


def test_capufe_texts(corpus_dir: Path) -> None:
    items = {
        line: item
        for line, item in zip(
            [n for n in sorted(CAPUFE_POSTS) if n not in UNDATED],
            _read(corpus_dir, CAPUFE, "road-text").items,
            strict=True,
        )
    }
    first = items[1].alert.infos[0]
    assert first.event == "Carril de contraflujo"
    assert first.severity is Severity.MODERATE
    assert first.headline == "CARGA VEHICULAR: Aut. La Tinaja - Isla, km 69."
    assert first.instruction == "Toma tus precauciones."
    assert first.parameter("queue") == "Isla: 13 km"
    assert first.areas[0].area_desc == "Autopista La Tinaja - Isla, km 69, ambos sentidos"
    assert items[1].alert.sent == datetime(2024, 9, 8, tzinfo=MEXICO)
    update = items[4].alert.infos[0]
    assert update.headline == (
        "ACTUALIZACIÓN: Autopista Barranca Larga - Ventanilla, Plaza de Cobro Ventanilla."
    )
    assert update.instruction == "Toma tus precauciones. Para más información llama al 074."
    assert update.severity is Severity.SEVERE and update.event == "Cierre de circulación"
    closure = items[7].alert.infos[0]
    assert closure.headline == (
        "CIERRE DE CIRCULACIÓN: Autopista Cuernavaca - Acapulco, km 349, dirección Cuernavaca."
    )
    notice = items[8].alert.infos[0]
    assert notice.headline == (
        "AVISO a las personas usuarias de la autopista Cuernavaca - Acapulco."
    )
    assert notice.description == (
        "AVISO a las personas usuarias de la autopista Cuernavaca - Acapulco. Se realizarán"
        " trabajos de mantenimiento en gazas del entronque Brisas."
    )
    paraphrase = items[12].alert.infos[0]
    assert paraphrase.areas[0].area_desc == (
        "Autopista México - Querétaro, km 89, dirección Ciudad de México"
    )
    assert items[13].alert.infos[0].headline is not None
    assert len(items[13].alert.infos[0].headline) <= road_text.HEADLINE_LIMIT


def test_capufe_reread_gives_the_same_alerts(corpus_dir: Path) -> None:
    once = _read(corpus_dir, CAPUFE, "road-text")
    again = _read(corpus_dir, CAPUFE, "road-text")
    assert [i.alert.key for i in once.items] == [i.alert.key for i in again.items]
    assert len({i.alert.identifier for i in once.items}) == len(once.items)


# --------------------------------------------------------------------------- Open511


def test_drivebc_list_of_five(corpus_dir: Path) -> None:
    batch = _read(
        corpus_dir, "drivebc_open511_events_list_of_five.json", "open511",
        timezone="America/Vancouver",
    )  # fmt: skip
    assert batch.warnings == ()
    by_id = {item.thread: item for item in batch.items}
    assert list(by_id) == [
        "open511:drivebc.ca/DBC-28386",
        "open511:drivebc.ca/DBC-46014",
        "open511:drivebc.ca/DBC-53145",
        "open511:drivebc.ca/DBC-52791",
        "open511:drivebc.ca/DBC-52446",
    ]
    for item in batch.items:
        assert item.alert.msg_type is MsgType.UPDATE  # every one updated after creation
        assert item.alert.sender == "drivebc.ca"
        assert item.warnings == ()
    landslide = by_id["open511:drivebc.ca/DBC-28386"].alert
    assert landslide.identifier == "open511-drivebc.ca/DBC-28386-20230413T173012Z"
    assert landslide.sent == datetime(2023, 4, 13, 10, 30, 12, tzinfo=PACIFIC_DST)
    info = landslide.infos[0]
    assert (info.event, info.severity) == ("Incident", Severity.SEVERE)
    assert info.headline == "Incident: Quesnel-Hixon Road, in both directions"
    assert info.effective == datetime(2021, 4, 26, 15, 19, tzinfo=UTC)
    assert info.expires is None and landslide.note is not None
    assert info.areas[0].circles == (Circle(53.155476, -122.479074, 0.1),)
    assert info.areas[0].geocodes == (NamedValue("open511_area", "drivebc.ca/7"),)
    assert info.parameter("+linear_reference_km") == "-1"
    assert (info.parameter("+ivr_message") or "").startswith("Quesnel-Hixon Road")
    assert info.parameter("direction") == "BOTH"
    assert NamedValue("open511_event_subtype", "HAZARD") in info.event_codes
    line = by_id["open511:drivebc.ca/DBC-46014"].alert.infos[0]
    assert (line.severity, line.event) == (Severity.MINOR, "Construction")
    assert 1 < len(line.areas[0].polygons) <= 50  # a 148-point line, simplified
    assert (
        line.areas[0].area_desc == "Highway 14 (Ludlow Rd – Kangaroo Rd); Vancouver Island District"
    )
    assert line.parameter("+linear_reference_km") == "78.35"
    recurring = by_id["open511:drivebc.ca/DBC-53145"].alert.infos[0]
    assert recurring.effective == datetime(2022, 10, 21, 15, 1, tzinfo=UTC)
    assert recurring.expires is None  # an open-ended interval beside the recurring schedule
    bounded = by_id["open511:drivebc.ca/DBC-52791"].alert.infos[0]
    assert bounded.effective == datetime(2023, 5, 24, 16, 0, tzinfo=UTC)
    assert bounded.expires == datetime(2023, 7, 27, 22, 0, tzinfo=UTC)
    assert by_id["open511:drivebc.ca/DBC-52791"].alert.note is None
    major = by_id["open511:drivebc.ca/DBC-52446"].alert.infos[0]
    assert major.severity is Severity.SEVERE
    assert major.expires == datetime(2023, 7, 22, 14, 0, tzinfo=UTC)
    assert major.parameter("direction") == "NONE"


def test_drivebc_without_timezone_warns_about_the_recurring_schedule(corpus_dir: Path) -> None:
    batch = _read(corpus_dir, "drivebc_open511_events_list_of_five.json", "open511")
    warned = [item.thread for item in batch.items if item.warnings]
    assert warned == ["open511:drivebc.ca/DBC-53145"]


def test_drivebc_malformed_event_is_one_error_line(corpus_dir: Path) -> None:
    batch = _read(
        corpus_dir, "drivebc_open511_events_five_with_validation_error.json", "open511",
        timezone="America/Vancouver",
    )  # fmt: skip
    assert batch.errors == (
        "event 2 (no id; headline 'CONSTRUCTION'): the event has no id; an Open511 event must"
        " have one",
    )
    assert [item.thread for item in batch.items] == [
        "open511:drivebc.ca/DBC-28386",
        "open511:drivebc.ca/DBC-53145",
        "open511:drivebc.ca/DBC-52791",
        "open511:drivebc.ca/DBC-52446",
    ]


@pytest.mark.parametrize("name", ["open511_spec_v1_event.json", "open511_spec_v1_event.xml"])
def test_spec_example_event(name: str, corpus_dir: Path) -> None:
    batch = _read(corpus_dir, name, "open511", timezone="America/New_York")
    assert batch.warnings == (
        "the document is one page of a longer list (next page: /api/events/?limit=20&offset=20);"
        " only this page was read",
    )
    (item,) = batch.items
    alert = item.alert
    assert item.thread == "open511:my.city.gov/23948"
    assert alert.msg_type is MsgType.UPDATE
    assert alert.identifier == "open511-my.city.gov/23948-20120524T100010Z"
    assert alert.sent == datetime(2012, 5, 24, 10, 0, 10, tzinfo=UTC)
    info = alert.infos[0]
    eastern = timezone(timedelta(hours=-4))
    assert (info.language, info.event, info.severity) == ("en", "Construction", Severity.MODERATE)
    assert info.headline == "Urgent rebuilding of sewer pipes"
    assert info.effective == datetime(2014, 9, 1, 12, 0, tzinfo=eastern)
    assert info.expires == datetime(2014, 9, 30, 15, 0, tzinfo=eastern)
    assert (info.urgency, info.certainty) == (Urgency.FUTURE, Certainty.LIKELY)
    assert info.instruction == "Take Sherbrooke travelling east, and Wellington travelling west."
    assert len(info.areas[0].polygons) == 3  # a 4-point LineString
    assert info.areas[0].area_desc == "Broadway (1st Avenue – 4th Avenue); A City; A County"
    assert [p.value for p in info.parameters if p.name == "state"] == [
        "SOME_LANES_CLOSED",
        "CLOSED",
    ]
    assert info.resources[0].uri == "http://my.city.gov/trafic/advisory/39473/com.pdf"
    assert info.resources[0].size == 200345
    if name.endswith(".xml"):
        assert [i.language for i in alert.infos] == ["en", "fr"]
        french = alert.infos[1]
        assert french.event == "Travaux"
        assert french.headline == "Réfection d'urgence d'une conduite d'égout"
        assert (french.description or "").startswith("La Ville de Montréal")
        assert info.web == "http://api.open511.info/events/my.city.gov/23948/"
        # The same LineString in GML (lat lon) and GeoJSON (lon lat) gives the same area.
        json_alert = _read(corpus_dir, "open511_spec_v1_event.json", "open511",
                           timezone="America/New_York").items[0].alert  # fmt: skip
        assert info.areas[0].polygons == json_alert.infos[0].areas[0].polygons
    else:
        assert len(alert.infos) == 1
        assert info.web is None  # the JSON gives only a relative URL


def test_tmdd_outputs_with_the_jurisdiction_timezone(corpus_dir: Path) -> None:
    batch = _read(corpus_dir, "open511_tmdd-output-1.json", "open511",
                  timezone="America/Los_Angeles")  # fmt: skip
    assert [item.thread for item in batch.items] == [
        "open511:example.jurisdiction/1681",
        "open511:example.jurisdiction/1690",
        "open511:example.jurisdiction/1699",
        "open511:example.jurisdiction/1486",
        "open511:example.jurisdiction/1006",
    ]
    for item in batch.items:
        assert item.alert.msg_type is MsgType.ALERT  # created == updated
        assert item.warnings == ()
        info = item.alert.infos[0]
        assert info.severity is Severity.MINOR
        assert len(info.areas[0].circles) == 1
        assert info.expires is None or info.expires > item.alert.sent
    special = batch.items[0].alert.infos[0]
    assert special.event == "Special event"
    assert special.effective == datetime(2012, 4, 16, 9, 7, tzinfo=PACIFIC_DST)
    assert special.expires is None
    incident = batch.items[1].alert.infos[0]
    assert incident.effective == datetime(2012, 4, 16, 8, 56, tzinfo=PACIFIC_DST)
    assert incident.expires == datetime(2012, 4, 16, 9, 41, tzinfo=PACIFIC_DST)
    assert incident.areas[0].area_desc == "SR-1 (GEORGE ST)"


def test_tmdd_without_timezone_reads_utc_and_says_so(corpus_dir: Path) -> None:
    batch = _read(corpus_dir, "open511_tmdd-output-1.json", "open511")
    for item in batch.items:
        assert any("read as UTC" in warning for warning in item.warnings)


def test_tmdd_output_two(corpus_dir: Path) -> None:
    (item,) = _read(corpus_dir, "open511_tmdd-output-2.json", "open511",
                    timezone="America/New_York").items  # fmt: skip
    info = item.alert.infos[0]
    assert info.severity is Severity.SEVERE
    assert info.headline == "Test Incident 1234"
    assert info.description == "Test -- accident on I-1"
    assert NamedValue("open511_event_subtype", "ACCIDENT") in info.event_codes
    assert info.areas[0].area_desc == "I-1 (Mile 1 – Mile 2)"
    assert info.expires == datetime(2010, 4, 21, 10, 20, tzinfo=timezone(timedelta(hours=-4)))
