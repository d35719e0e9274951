"""Targeting: who an alert reaches, by topic, place, language and quiet hours.

The shapes come from the public corpus (a polygon, a circle, FIPS/SAME, UGC
and NUTS geocodes) and from the demo catalogue (INEGI municipalities); the
audience is read through :class:`SubscriberAudience` from the real subscriber
store on both databases.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, time
from pathlib import Path

import pytest
import shapely
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.areas import AreaCatalogue
from alertcast.cap import parse_cap
from alertcast.domain import (
    Alert,
    Area,
    Category,
    Certainty,
    Circle,
    Info,
    MsgType,
    NamedValue,
    Polygon,
    Scope,
    Severity,
    Status,
    Urgency,
)
from alertcast.rules_model import SUBSCRIBERS, Approval, Audience, Delivery, NamedArea
from alertcast.store.alerts import StoredAlert
from alertcast.subscribers.audience import (
    SubscriberAudience,
    in_quiet_hours,
    resolve_language,
)
from alertcast.subscribers.crypto import SubscriberKeys
from alertcast.subscribers.model import Candidate, QuietHours
from alertcast.subscribers.store import SubscriberStore
from alertcast.targeting import (
    Footprint,
    PlaceSpec,
    audience,
    polygon_shape,
    select,
    topics_for,
)
from tests.targeting.conftest import TEST_SECRET

CHANNEL = "telegram"
ALL_TOPICS = frozenset({"clima", "sismos", "salud", "carreteras", "avisos"})
NOON_UTC = datetime(2026, 6, 1, 18, 0, tzinfo=UTC)  # 12:00 in Mexico City


def _corpus_alert(corpus_dir: Path, name: str) -> Alert:
    path = corpus_dir / "cap" / name
    if not path.is_file():
        pytest.skip(f"{name} is not in the corpus at {corpus_dir}")
    return parse_cap(path.read_bytes()).alert


def _alert(
    *areas: Area,
    category: Category = Category.SAFETY,
    event: str = "Aviso",
    severity: Severity = Severity.SEVERE,
    languages: Sequence[str] = ("es-MX",),
) -> Alert:
    infos = tuple(
        Info(
            categories=(category,),
            event=event,
            urgency=Urgency.IMMEDIATE,
            severity=severity,
            certainty=Certainty.OBSERVED,
            language=language,
            headline=f"{event} ({language})",
            areas=areas,
        )
        for language in languages
    )
    return Alert(
        identifier="T-1",
        sender="proteccion.civil@example.mx",
        sent=NOON_UTC,
        status=Status.ACTUAL,
        msg_type=MsgType.ALERT,
        scope=Scope.PUBLIC,
        infos=infos,
    )


def _geocoded(*codes: tuple[str, str], **kwargs: object) -> Alert:
    area = Area("por clave", geocodes=tuple(NamedValue(s, v) for s, v in codes))
    return _alert(area, **kwargs)  # type: ignore[arg-type]


def _ids(alert: Alert, candidates: Sequence[Candidate], geoms: object = None) -> set[int]:
    return set(audience(alert, candidates, geoms or {}, topics_of_alert=topics_for(alert)))  # type: ignore[arg-type]


def _inside_and_just_outside(polygon: Polygon) -> tuple[tuple[float, float], tuple[float, float]]:
    """A point well inside the polygon, and one 0.001° (about 110 m) north of its top vertex."""
    shape = polygon_shape(polygon)
    assert shape is not None
    inside = shape.representative_point()
    top_lat, top_lon = max(polygon.points)
    return (inside.y, inside.x), (top_lat + 0.001, top_lon)


def _north_of(lat: float, lon: float, km: float) -> tuple[float, float]:
    return lat + km / 111.195, lon


# --------------------------------------------------------------------------- topics


def test_topics_follow_category_and_event() -> None:
    assert topics_for(_alert(category=Category.MET)) == {"clima"}
    assert topics_for(_alert(category=Category.GEO)) == {"sismos"}
    assert topics_for(_alert(category=Category.HEALTH)) == {"salud"}
    assert topics_for(_alert(category=Category.TRANSPORT)) == {"carreteras"}
    for other in (Category.SAFETY, Category.FIRE, Category.CBRNE, Category.INFRA, Category.ENV):
        assert topics_for(_alert(category=other)) == {"avisos"}
    assert topics_for(_alert(category=Category.MET, event="Tsunami Warning")) == {
        "clima",
        "sismos",
    }
    assert topics_for(_alert(category=Category.SAFETY, event="Sismo fuerte")) == {
        "avisos",
        "sismos",
    }
    assert topics_for(_alert(category=Category.MET, severity=Severity.EXTREME)) == {
        "clima",
        "avisos",
    }
    assert topics_for(replace(_alert(), infos=())) == frozenset()


def test_topics_filter_but_an_empty_choice_means_every_topic() -> None:
    alert = _geocoded(("INEGI_CVEGEO", "09"), category=Category.MET)
    here = ("INEGI_CVEGEO:09015",)
    people = [
        Candidate(1, topics=frozenset({"clima"}), areas=here),
        Candidate(2, topics=frozenset({"salud"}), areas=here),
        Candidate(3, topics=frozenset(), areas=here),
    ]
    assert _ids(alert, people) == {1, 3}


# --------------------------------------------------------------------------- corpus shapes


@pytest.mark.parametrize("name", ["oasis-cap12-appendixA2.xml", "mexico.xml"])
def test_a_polygon_reaches_inside_and_not_just_outside(corpus_dir: Path, name: str) -> None:
    alert = _corpus_alert(corpus_dir, name)
    (polygon,) = alert.infos[0].areas[0].polygons
    inside, outside = _inside_and_just_outside(polygon)
    people = [
        Candidate(1, topics=ALL_TOPICS, point=inside),
        Candidate(2, topics=ALL_TOPICS, point=outside),
        Candidate(3, topics=ALL_TOPICS, point=polygon.points[1]),  # on the boundary
    ]
    assert _ids(alert, people) == {1, 3}


def test_a_circle_reaches_within_its_radius(corpus_dir: Path) -> None:
    alert = _corpus_alert(corpus_dir, "naad_pelmorex_Sample7_CAPCP_with_free_drawn_circle.xml")
    (circle,) = alert.infos[0].areas[0].circles
    assert circle.radius_km == pytest.approx(3.87)
    people = [
        Candidate(1, point=_north_of(circle.lat, circle.lon, 3.7)),
        Candidate(2, point=_north_of(circle.lat, circle.lon, 4.05)),
        Candidate(3, point=(circle.lat, circle.lon + 3.7 / (111.195 * math.cos(0.7625)))),
    ]
    assert _ids(alert, people) == {1, 3}


def test_fips_and_ugc_geocodes_reach_the_counties_and_zones_chosen(corpus_dir: Path) -> None:
    alert = _corpus_alert(corpus_dir, "weather.cap")  # FIPS6 030049, UGC MTZ014
    people = [
        Candidate(1, areas=("FIPS:30049",)),
        Candidate(2, areas=("SAME:030049",)),
        Candidate(3, areas=("UGC:MTZ014",)),
        Candidate(4, areas=("FIPS:30051",)),
        Candidate(5, areas=("UGC:MTZ015",)),
        Candidate(6, areas=("INEGI_CVEGEO:09015",)),
        Candidate(7, areas=("FIPS:30051", "UGC:MTZ014")),
    ]
    assert _ids(alert, people) == {1, 2, 3, 7}


def test_same_codes_with_a_county_part_reach_the_whole_county(corpus_dir: Path) -> None:
    alert = _corpus_alert(corpus_dir, "nws_weather_2014.cap")  # 50 FIPS6 and UGC codes
    fips6 = [g.value for a in alert.infos[0].areas for g in a.geocodes if g.name == "FIPS6"]
    assert "072001" in fips6 and "072002" not in fips6
    people = [Candidate(1, areas=("FIPS:72001",)), Candidate(2, areas=("FIPS:72002",))]
    assert _ids(alert, people) == {1}


def test_nuts_geocodes_match_up_and_down_the_hierarchy(corpus_dir: Path) -> None:
    alert = _corpus_alert(corpus_dir, "meteoalarm_france_detail.xml")  # NUTS3 FR821...
    people = [
        Candidate(1, areas=("NUTS3:FR821",)),
        Candidate(2, areas=("NUTS:FR82",)),  # the region holding it
        Candidate(3, areas=("NUTS3:FR825",)),
        Candidate(4, areas=("NUTS:FR1",)),
    ]
    assert _ids(alert, people) == {1, 2}


# --------------------------------------------------------------------------- the catalogue


async def test_a_geocode_only_alert_reaches_points_inside_the_catalogue_areas(
    catalogue: AreaCatalogue,
) -> None:
    geoms = await catalogue.geometries()
    zocalo = (19.4326, -99.1332)  # Cuauhtémoc, CDMX (09)
    ecatepec = (19.60, -99.02)  # Ecatepec, Estado de México (15)
    people = [
        Candidate(1, point=zocalo),
        Candidate(2, point=ecatepec),
        Candidate(3, areas=("INEGI_CVEGEO:09015",)),
        Candidate(4, areas=("INEGI_CVEGEO:15033",)),
        Candidate(5, areas=("INEGI_CVEGEO:09",)),
    ]
    state = _geocoded(("INEGI_CVEGEO", "09"))
    assert _ids(state, people, geoms) == {1, 3, 5}

    municipality = _geocoded(("CVEGEO", "15033"))
    assert _ids(municipality, people, geoms) == {2, 4}

    # a code the catalogue only holds within: state 15 as a whole reaches Ecatepec's point
    assert _ids(_geocoded(("INEGI_CVEGEO", "15")), people, geoms) == {2, 4}


async def test_a_polygon_reaches_the_areas_it_covers_but_not_a_neighbour_it_touches(
    catalogue: AreaCatalogue,
) -> None:
    geoms = await catalogue.geometries()
    cuauhtemoc = geoms["INEGI_CVEGEO:09015"]
    ring = tuple((lat, lon) for lon, lat in cuauhtemoc.exterior.coords)  # type: ignore[attr-defined]
    alert = _alert(Area("Cuauhtémoc", polygons=(Polygon(ring),)))
    people = [
        Candidate(1, areas=("INEGI_CVEGEO:09015",)),
        Candidate(2, areas=("INEGI_CVEGEO:09014",)),  # Benito Juárez shares a border
        Candidate(3, areas=("INEGI_CVEGEO:09007",)),
        Candidate(4, areas=("INEGI_CVEGEO:99999",)),  # not in the catalogue
    ]
    assert _ids(alert, people, geoms) == {1}

    # a circle around the Zócalo, 6 km: Cuauhtémoc, Benito Juárez and Gustavo A. Madero
    circle = _alert(Area("Centro", circles=(Circle(19.4326, -99.1332, 6.0),)))
    reached = set(
        audience(
            circle,
            [Candidate(i, areas=(code,)) for i, code in enumerate(sorted(geoms))],
            geoms,
            topics_of_alert=None,
        )
    )
    names = {sorted(geoms)[i] for i in reached}
    assert {"INEGI_CVEGEO:09015", "INEGI_CVEGEO:09014"} <= names
    assert "INEGI_CVEGEO:15057" not in names and "INEGI_CVEGEO:15033" not in names


def test_a_polygon_across_the_antimeridian_reaches_both_sides() -> None:
    ring = ((-17.0, 179.0), (-17.0, -179.0), (-19.0, -179.0), (-19.0, 179.0))
    alert = _alert(Area("Fiji", polygons=(Polygon(ring),)))
    people = [
        Candidate(1, point=(-18.0, 179.5)),
        Candidate(2, point=(-18.0, -179.5)),
        Candidate(3, point=(-18.0, 178.0)),
    ]
    assert _ids(alert, people) == {1, 2}


def test_named_areas_and_anywhere_footprints() -> None:
    box = ((19.5, -99.3), (19.5, -99.0), (19.3, -99.0), (19.3, -99.3))
    named = Footprint.compile(PlaceSpec(polygons=(Polygon(box),)), {})
    people = [Candidate(1, point=(19.4, -99.1)), Candidate(2, point=(20.0, -99.1)), Candidate(3)]
    assert set(select([named], people, topics=None)) == {1}
    assert set(select([Footprint.everywhere()], people, topics=None)) == {1, 2, 3}
    assert select([], people, topics=None) == []


def test_quiet_hours_and_languages() -> None:
    night = QuietHours(time(22, 0), time(7, 0), "America/Mexico_City")
    assert in_quiet_hours(night, datetime(2026, 6, 1, 5, 0, tzinfo=UTC))  # 23:00 local
    assert in_quiet_hours(night, datetime(2026, 6, 1, 12, 30, tzinfo=UTC))  # 06:30 local
    assert not in_quiet_hours(night, NOON_UTC)
    day = QuietHours(time(9, 0), time(17, 0), "America/Mexico_City")
    assert in_quiet_hours(day, NOON_UTC)
    assert not in_quiet_hours(QuietHours(time(9, 0), time(17, 0), "Nowhere/Atlantis"), NOON_UTC)

    assert resolve_language("es", ("es-MX", "en-US")) == "es-MX"
    assert resolve_language("en", ("es-MX", "en-US")) == "en-US"
    assert resolve_language("en-us", ("es-MX", "en-US")) == "en-US"
    assert resolve_language("fr", ("es-MX", "en-US")) == "es-MX"
    assert resolve_language("es", ()) == "es"


# --------------------------------------------------------------------------- through the store


def _stored(alert: Alert) -> StoredAlert:
    return StoredAlert(
        id=1,
        alert=alert,
        raw=None,
        source="test",
        cap_version="1.2",
        warnings=(),
        received_at=NOON_UTC,
    )


def _delivery(
    alert: Alert, *, topics: Sequence[str] = (), areas: Sequence[str] = ("alert",)
) -> Delivery:
    return Delivery(
        route="test",
        channel=CHANNEL,
        audience=Audience(kind=SUBSCRIBERS, topics=tuple(topics), areas=tuple(areas)),
        template=None,
        approval=Approval.AUTO,
        priority=0,
        exercise=False,
        languages=alert.languages(),
    )


async def _messages(source: SubscriberAudience, delivery: Delivery, alert: Alert) -> list[str]:
    """Every (language, address) the planner would plan: one message per pair."""
    stored = _stored(alert)
    sent: list[str] = []
    resolve = getattr(source.store, "resolve_targets", None)
    for language in await source.languages(delivery, stored):
        targets: AsyncIterator[str] = source.targets(delivery, stored, language)
        planned = [target async for target in targets]
        # what the worker sends to: the ledger holds sub:ID, the address is looked up last
        addresses = await resolve(planned) if resolve is not None else {}
        sent.extend(f"{language}:{addresses.get(target, target)}" for target in planned)
    return sent


@pytest.fixture
def store(engine: AsyncEngine) -> SubscriberStore:
    return SubscriberStore(engine, SubscriberKeys(TEST_SECRET), kinds={CHANNEL: "telegram"})


async def _subscribe(store: SubscriberStore, chat: str, **choices: object) -> int:
    subscriber = await store.subscribe(
        CHANNEL,
        chat,
        consent_text="Acepto recibir alertas",
        source="telegram-bot",
        **choices,  # type: ignore[arg-type]
    )
    return subscriber.id


async def test_through_the_store_inside_gets_exactly_one_message_outside_none(
    corpus_dir: Path, store: SubscriberStore, catalogue: AreaCatalogue
) -> None:
    alert = _corpus_alert(corpus_dir, "mexico.xml")
    (polygon,) = alert.infos[0].areas[0].polygons
    inside, outside = _inside_and_just_outside(polygon)
    await _subscribe(store, "1001", topics=["clima"], point=inside)
    await _subscribe(store, "1002", topics=["clima"], point=outside)
    await _subscribe(store, "1003", topics=["salud"], point=inside)
    await _subscribe(store, "1004", language="en", topics=["clima"], point=inside)
    await store.subscribe("sms", "5512345678", topics=["clima"], point=inside,
                          consent_text="ALTA", source="sms-keyword")  # fmt: skip

    source = SubscriberAudience(store, catalogue, clock=lambda: NOON_UTC)
    sent = await _messages(source, _delivery(alert), alert)
    # the alert is only in es-419: the English reader gets it too, once
    assert sorted(sent) == ["es-419:1001", "es-419:1004"]


async def test_through_the_store_languages_quiet_hours_and_route_areas(
    store: SubscriberStore, catalogue: AreaCatalogue
) -> None:
    zocalo = (19.4326, -99.1332)
    ecatepec = (19.60, -99.02)
    es = await _subscribe(store, "2001", language="es", topics=["avisos"], point=zocalo)
    await _subscribe(store, "2002", language="en", areas=["INEGI_CVEGEO:09015"])
    sleeper = await _subscribe(store, "2003", point=zocalo)
    await store.update(
        sleeper, quiet_hours=QuietHours(time(9, 0), time(17, 0)), actor="test"
    )  # noon in Mexico City: asleep
    await _subscribe(store, "2004", point=ecatepec)
    assert es > 0

    alert = _geocoded(("INEGI_CVEGEO", "09"), languages=("es-MX", "en-US"))
    source = SubscriberAudience(store, catalogue, clock=lambda: NOON_UTC)
    assert await source.languages(_delivery(alert), _stored(alert)) == ["es-MX", "en-US"]
    assert sorted(await _messages(source, _delivery(alert), alert)) == [
        "en-US:2002",
        "es-MX:2001",
    ]

    extreme = _geocoded(
        ("INEGI_CVEGEO", "09"), severity=Severity.EXTREME, languages=("es-MX", "en-US")
    )
    assert sorted(await _messages(source, _delivery(extreme), extreme)) == [
        "en-US:2002",
        "es-MX:2001",
        "es-MX:2003",
    ]

    everyone = await _messages(source, _delivery(alert, areas=["anywhere"]), alert)
    assert sorted(everyone) == ["en-US:2002", "es-MX:2001", "es-MX:2004"]

    box = ((19.7, -99.1), (19.7, -98.9), (19.5, -98.9), (19.5, -99.1))
    named = SubscriberAudience(
        store,
        catalogue,
        named_areas={"norte": NamedArea("norte", polygons=(Polygon(box),))},
        clock=lambda: NOON_UTC,
    )
    assert await _messages(named, _delivery(alert, areas=["norte"]), alert) == ["es-MX:2004"]
    assert await _messages(named, _delivery(alert, areas=["unknown"]), alert) == []
    # the route's topics choose; who chose no topic hears of every topic
    assert await _messages(source, _delivery(alert, topics=["salud"]), alert) == ["en-US:2002"]


async def test_a_point_inside_a_geocoded_catalogue_area_is_found_in_a_big_batch() -> None:
    box = ((19.5, -99.3), (19.5, -99.0), (19.3, -99.0), (19.3, -99.3))
    shape = polygon_shape(Polygon(box))
    assert shape is not None
    geoms = {"INEGI_CVEGEO:09999": shape}
    alert = _geocoded(("INEGI_CVEGEO", "09"))
    lat = [19.25 + 0.01 * i for i in range(30)]
    people = [Candidate(i, point=(la, -99.1)) for i, la in enumerate(lat)]
    expected = {i for i, la in enumerate(lat) if shapely.intersects_xy(shape, -99.1, la)}
    assert expected and _ids(alert, people, geoms) == expected
