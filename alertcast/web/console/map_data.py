"""The dashboard map's shapes: every active alert's areas as GeoJSON features.

Polygons and circles come from the alert itself. Geocodes (``INEGI_CVEGEO:09015``)
carry no shape, so they are looked up in the area catalogue when there is
one; a code the catalogue does not hold is listed by name under the map
instead of being drawn somewhere wrong. Catalogue shapes are simplified
(about 500 m) because the map only needs to show where, not the exact
boundary, and a page with a hundred municipalities must stay small.

Coordinates follow GeoJSON (``[lon, lat]``); circles are points with a
``radius_m`` property, which ``static/map.js`` draws as circles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import structlog
from shapely.geometry import mapping

from alertcast.areas import AreaCatalogue, make_code
from alertcast.domain import Alert, Area, Status
from alertcast.errors import StoreError

log = structlog.get_logger(__name__)

MAX_LOOKUPS: Final = 300
"""Catalogue look-ups per page at most: the map stays quick with many large alerts."""
SIMPLIFY_DEGREES: Final = 0.005


@dataclass(slots=True)
class MapData:
    """Features to draw and the geocodes that could not be drawn."""

    features: list[dict[str, Any]] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"type": "FeatureCollection", "features": self.features}


@dataclass(frozen=True, slots=True)
class MapAlert:
    """An alert on the map: its id, title and the areas of the info shown."""

    alert_id: int
    alert: Alert
    title: str


def _areas(alert: Alert) -> list[Area]:
    """Every distinct area of the alert (infos in other languages usually repeat them)."""
    seen: dict[Area, None] = {}
    for info in alert.infos:
        for area in info.areas:
            seen.setdefault(area, None)
    return list(seen)


def _properties(item: MapAlert, area: Area) -> dict[str, Any]:
    return {
        "alert_id": item.alert_id,
        "title": item.title,
        "area": area.area_desc,
        "exercise": item.alert.status is not Status.ACTUAL,
        "url": f"/console/alerts/{item.alert_id}",
    }


async def map_data(items: Sequence[MapAlert], catalogue: AreaCatalogue | None) -> MapData:
    """The features of ``items``' areas (see the module's notes)."""
    data = MapData()
    lookups = 0
    for item in items:
        for area in _areas(item.alert):
            props = _properties(item, area)
            for polygon in area.polygons:
                ring = [[lon, lat] for lat, lon in polygon.points]
                data.features.append(
                    {
                        "type": "Feature",
                        "geometry": {"type": "Polygon", "coordinates": [ring]},
                        "properties": props,
                    }
                )
            for circle in area.circles:
                data.features.append(
                    {
                        "type": "Feature",
                        "geometry": {"type": "Point", "coordinates": [circle.lon, circle.lat]},
                        "properties": {**props, "radius_m": circle.radius_km * 1000.0},
                    }
                )
            for geocode in area.geocodes:
                code = make_code(geocode.name, geocode.value)
                shape = None
                if catalogue is not None and lookups < MAX_LOOKUPS:
                    lookups += 1
                    try:
                        found = await catalogue.get(code)
                    except StoreError as exc:
                        log.warning("console.map_lookup_failed", code=code, reason=str(exc))
                        found = None
                    if found is not None:
                        shape = found.geometry.simplify(SIMPLIFY_DEGREES, preserve_topology=True)
                if shape is None or shape.is_empty:
                    data.unresolved.append(f"{code} ({area.area_desc})")
                    continue
                data.features.append(
                    {"type": "Feature", "geometry": mapping(shape), "properties": props}
                )
    return data
