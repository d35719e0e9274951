"""Targeting benchmark: a polygon, a circle and a geocode-only alert over a million subscribers.

    .venv/bin/python bench/targeting.py [--quick]

Prints one JSON object::

    {"subscribers", "polygon_ms", "circle_ms", "geocode_ms", "peak_rss_mb", ...}

The workload is in memory, to measure targeting alone (the store's streaming
of candidates from the database is separate): 1,000,000 synthetic
:class:`~alertcast.subscribers.model.Candidate` (``--quick``: 100,000), half
with a shared point scattered over central Mexico, half with one or two
catalogue area codes. The catalogue is a synthetic grid of 2,464 square
"municipalities" over Mexico (about the number INEGI lists), 77 to a state,
coded ``INEGI_CVEGEO:SSMMM``.

``polygon_ms``
    a 48-vertex irregular polygon about 120 km across, around Mexico City.
``circle_ms``
    a 50 km CAP circle on the Zócalo.
``geocode_ms``
    a geocode-only alert for two states (``INEGI_CVEGEO`` 09 and 15): points
    are tested against the union of their 154 catalogue squares.

Each time is one call of :func:`alertcast.targeting.audience` on the whole
list, compiling the alert's footprint included, with topic filtering (every
subscriber has one to three topics). Aims: under 2,000 ms each, peak RSS
under 1 GB.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import sys
import time
from datetime import UTC, datetime
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

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
from alertcast.subscribers.model import TOPICS, Candidate
from alertcast.targeting import audience, topics_for

STATES = 32
PER_STATE = 77
CENTRE = (19.4326, -99.1332)


def _catalogue() -> dict[str, BaseGeometry]:
    """2,464 squares over Mexico's bounding box, row by row, 77 to a state."""
    lat0, lat1, lon0, lon1 = 14.5, 32.7, -118.4, -86.7
    cells = STATES * PER_STATE
    columns = 60
    rows = math.ceil(cells / columns)
    dlat, dlon = (lat1 - lat0) / rows, (lon1 - lon0) / columns
    # the states holding Mexico City's cells get codes 09 and 15, as in INEGI
    geoms: dict[str, BaseGeometry] = {}
    for index in range(cells):
        r, c = divmod(index, columns)
        box = shapely.box(
            lon0 + c * dlon, lat0 + r * dlat, lon0 + (c + 1) * dlon, lat0 + (r + 1) * dlat
        )
        state, municipality = divmod(index, PER_STATE)
        geoms[f"INEGI_CVEGEO:{state + 1:02d}{municipality + 1:03d}"] = box
    return geoms


def _renumber_around_centre(geoms: dict[str, BaseGeometry]) -> dict[str, BaseGeometry]:
    """Give the states around Mexico City the codes 09 and 15, so the geocode alert is local."""
    point = shapely.Point(CENTRE[1], CENTRE[0])
    (code,) = [c for c, g in geoms.items() if g.intersects(point)]
    home = code.split(":")[1][:2]
    neighbour = f"{int(home) + 1:02d}"
    swap = {home: "09", "09": home, neighbour: "15", "15": neighbour}
    renamed: dict[str, BaseGeometry] = {}
    for code, geom in geoms.items():
        value = code.split(":")[1]
        state = swap.get(value[:2], value[:2])
        renamed[f"INEGI_CVEGEO:{state}{value[2:]}"] = geom
    return renamed


def _candidates(count: int, codes: list[str], rng: random.Random) -> list[Candidate]:
    topic_sets = [
        frozenset(rng.sample(TOPICS, rng.randint(1, 3))) for _ in range(64)
    ]  # shared objects, as a store's decoder would intern them
    local = [c for c in codes if c.split(":")[1][:2] in ("09", "15")]
    people: list[Candidate] = []
    for i in range(count):
        topics = topic_sets[i % len(topic_sets)]
        if i % 2 == 0:
            lat = CENTRE[0] + rng.uniform(-3.0, 3.0)
            lon = CENTRE[1] + rng.uniform(-3.5, 3.5)
            people.append(Candidate(i + 1, topics=topics, point=(lat, lon)))
        else:
            pool = local if i % 10 == 1 else codes
            chosen = tuple(rng.sample(pool, 1 if i % 3 else 2))
            people.append(Candidate(i + 1, topics=topics, areas=chosen))
    return people


def _alert(area: Area) -> Alert:
    info = Info(
        categories=(Category.MET,),
        event="Lluvias intensas",
        urgency=Urgency.IMMEDIATE,
        severity=Severity.EXTREME,
        certainty=Certainty.OBSERVED,
        language="es-MX",
        areas=(area,),
    )
    return Alert(
        identifier="BENCH",
        sender="bench@example.mx",
        sent=datetime(2026, 1, 1, tzinfo=UTC),
        status=Status.ACTUAL,
        msg_type=MsgType.ALERT,
        scope=Scope.PUBLIC,
        infos=(info,),
    )


def _polygon(rng: random.Random) -> Polygon:
    points: list[tuple[float, float]] = []
    for k in range(48):
        angle = 2 * math.pi * k / 48
        radius = 0.55 * (0.8 + 0.4 * rng.random())
        points.append((CENTRE[0] + radius * math.sin(angle), CENTRE[1] + radius * math.cos(angle)))
    points.append(points[0])
    return Polygon(tuple(points))


def _timed(
    alert: Alert, people: list[Candidate], geoms: dict[str, BaseGeometry]
) -> tuple[float, int]:
    started = time.perf_counter()
    ids = audience(alert, people, geoms, topics_of_alert=topics_for(alert))
    return (time.perf_counter() - started) * 1000.0, len(ids)


def run(count: int) -> dict[str, Any]:
    rng = random.Random(20261206)
    geoms = _renumber_around_centre(_catalogue())
    people = _candidates(count, sorted(geoms), rng)
    polygon = _alert(Area("poligono", polygons=(_polygon(rng),)))
    circle = _alert(Area("circulo", circles=(Circle(CENTRE[0], CENTRE[1], 50.0),)))
    geocode = _alert(
        Area(
            "CDMX y Edomex",
            geocodes=(NamedValue("INEGI_CVEGEO", "09"), NamedValue("INEGI_CVEGEO", "15")),
        )
    )
    polygon_ms, polygon_n = _timed(polygon, people, geoms)
    circle_ms, circle_n = _timed(circle, people, geoms)
    geocode_ms, geocode_n = _timed(geocode, people, geoms)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "subscribers": count,
        "polygon_ms": round(polygon_ms, 1),
        "circle_ms": round(circle_ms, 1),
        "geocode_ms": round(geocode_ms, 1),
        "peak_rss_mb": round(peak_kb / 1024.0, 1),
        "reached": {"polygon": polygon_n, "circle": circle_n, "geocode": geocode_n},
        "catalogue_areas": len(geoms),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 subscribers")
    args = parser.parse_args()
    count = 100_000 if args.quick else 1_000_000
    print(f"targeting {count:,} subscribers...", file=sys.stderr)
    print(json.dumps(run(count)))


if __name__ == "__main__":
    main()
