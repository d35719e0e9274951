"""Who among the subscribers an alert is for: by topic and by place, a batch at a time.

Targeting reads :class:`~alertcast.subscribers.model.Candidate` batches (no
addresses) and answers with ids. It is pure computation, vectorised so that a
million subscribers take about a second: shared points are tested all at once
with shapely 2 (``intersects_xy``) and numpy (haversine distances), and the
places people chose are decided once per distinct area code, not once per
person.

**Topics** (:func:`topics_for`) come from the CAP category, and from the event
where the category says too little:

======================  ==============
Met                     ``clima``
Geo                     ``sismos``
Health                  ``salud``
Transport               ``carreteras``
any other category      ``avisos``
tsunami / earthquake    ``sismos`` (whatever the category: "Tsunami" is often Met or Safety)
severity Extreme        ``avisos`` too
======================  ==============

The last line is a choice: "Avisos generales" is the topic of people who
want to hear of anything grave, so every Extreme alert reaches them as well
as the people of its own topic. A subscriber who chose no topic at all is
treated as having chosen every topic: an empty choice should never make a
person miss a warning.

**Places.** The alert's area is the union of its ``<area>`` blocks (of all its
infos). In each block:

* Polygons and circles, when present, are the area: precise shapes win over
  the coarse geocodes next to them (an NWS storm polygon over three counties
  is not those three counties). Boundaries belong to the area.
* A block with geocodes only (``INEGI_CVEGEO=09``, ``SAME=006037``) is the
  catalogue's areas for those codes: the areas *within* a geocode (the
  municipalities of state 09), or, when the catalogue has none, the areas
  that overlap it (the state that holds a municipality), so that a
  geocode-only alert still reaches the points inside it.

A subscriber is in the area when their shared point is, or when one of their
chosen areas is:

* an area whose code overlaps one of the alert's geocodes (any block), by the
  scheme rules of :func:`alertcast.areas.codes_overlap` (state ``09`` and
  municipality ``09015`` overlap both ways: the person subscribed to the
  state hears of the municipality, and the reverse); or
* an area whose catalogue geometry shares ground with the alert's polygons
  or circles: at least 0.5 % of the smaller of the two, so that a neighbour
  that only touches the border, or overlaps it by a sliver where borders were
  drawn differently, does not count.

Circles are tested by great-circle distance for points; against catalogue
areas they are drawn as a 64-sided polygon around the circle (never smaller
than it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import shapely
import structlog
from shapely.geometry import MultiPolygon
from shapely.geometry import Polygon as ShapelyPolygon
from shapely.geometry.base import BaseGeometry

from alertcast.areas import codes_overlap, scheme_family, split_code
from alertcast.domain import Alert, Category, Circle, Polygon, Severity
from alertcast.geo import EARTH_RADIUS_KM, unwrap_lon
from alertcast.subscribers.model import Candidate

log = structlog.get_logger(__name__)

GENERAL_TOPIC = "avisos"

TOPIC_BY_CATEGORY: dict[Category, str] = {
    Category.MET: "clima",
    Category.GEO: "sismos",
    Category.HEALTH: "salud",
    Category.TRANSPORT: "carreteras",
}
"""Every other category (Safety, Security, Rescue, Fire, Infra, Env, CBRNE, Other) → avisos."""

_SEISMIC_EVENT = re.compile(
    r"tsunami|maremoto|earthquake|quake|seism|sismo|s[ií]smic|terremoto|temblor", re.IGNORECASE
)

MIN_OVERLAP = 0.005
"""Share of the smaller shape two areas must have in common to count as overlapping."""

CIRCLE_SIDES = 64
"""Sides of the polygon drawn around a circle to compare it with catalogue areas."""

_FloatArray = npt.NDArray[np.float64]
_BoolArray = npt.NDArray[np.bool_]


def topics_for(alert: Alert) -> frozenset[str]:
    """The subscriber topics an alert belongs to (see the module's table); empty without info."""
    topics: set[str] = set()
    for info in alert.infos:
        for category in info.categories:
            topics.add(TOPIC_BY_CATEGORY.get(category, GENERAL_TOPIC))
        if _SEISMIC_EVENT.search(info.event):
            topics.add("sismos")
        if info.severity is Severity.EXTREME:
            topics.add(GENERAL_TOPIC)
    return frozenset(topics)


# --------------------------------------------------------------------------- shapes


def polygon_shape(polygon: Polygon) -> BaseGeometry | None:
    """A CAP polygon as a valid shapely (lon, lat) polygon; None when it encloses nothing.

    Longitudes are unwrapped point by point (:func:`alertcast.geo.unwrap_lon`),
    so a ring across the antimeridian may run past 180°; point tests account
    for that.
    """
    if len(polygon.points) < 3:
        return None
    ring: list[tuple[float, float]] = []
    previous = polygon.points[0][1]
    for lat, lon in polygon.points:
        # only across the antimeridian: arithmetic on ordinary longitudes would jitter them
        x = lon if abs(lon - previous) <= 180.0 else unwrap_lon(lon, previous)
        ring.append((x, lat))
        previous = x
    try:
        shape: BaseGeometry = ShapelyPolygon(ring)
    except (ValueError, shapely.errors.GEOSException):
        return None
    if not shape.is_valid:
        shape = shapely.make_valid(shape)
    parts = [p for p in shapely.get_parts(shape) if isinstance(p, ShapelyPolygon | MultiPolygon)]
    parts = [p for p in parts if not p.is_empty and p.area > 0]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else shapely.union_all(parts)


def circle_shape(circle: Circle, sides: int = CIRCLE_SIDES) -> BaseGeometry:
    """A polygon around a CAP circle (vertices on the circumscribed circle), in (lon, lat)."""
    radius = max(circle.radius_km, 0.0) / math.cos(math.pi / sides)
    if radius == 0:
        point: BaseGeometry = shapely.points(circle.lon, circle.lat)
        return point
    angular = radius / EARTH_RADIUS_KM
    lat0, lon0 = math.radians(circle.lat), math.radians(circle.lon)
    bearings = np.linspace(0.0, 2 * math.pi, sides, endpoint=False)
    lat = np.arcsin(
        math.sin(lat0) * math.cos(angular) + math.cos(lat0) * math.sin(angular) * np.cos(bearings)
    )
    lon = lon0 + np.arctan2(
        np.sin(bearings) * math.sin(angular) * math.cos(lat0),
        math.cos(angular) - math.sin(lat0) * np.sin(lat),
    )
    xs = [unwrap_lon(math.degrees(x), circle.lon) for x in lon]
    ys = [math.degrees(y) for y in lat]
    return ShapelyPolygon(list(zip(xs, ys, strict=True)))


def haversine_km(lat: _FloatArray, lon: _FloatArray, lat0: float, lon0: float) -> _FloatArray:
    """Great-circle distances from (lat0, lon0) to every point, in kilometres."""
    phi = np.radians(lat)
    phi0 = math.radians(lat0)
    dphi = phi - phi0
    dlam = np.radians(lon - lon0)
    h = np.sin(dphi / 2) ** 2 + math.cos(phi0) * np.cos(phi) * np.sin(dlam / 2) ** 2
    result: _FloatArray = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.minimum(h, 1.0)))
    return result


def points_in_shape(shape: BaseGeometry, lat: _FloatArray, lon: _FloatArray) -> _BoolArray:
    """Which points lie in ``shape`` (boundary included), box-filtered first.

    A shape unwrapped past ±180° is tested again with the points moved by a
    whole turn, so both sides of the antimeridian are found.
    """
    hit = np.zeros(lat.shape, dtype=bool)
    if shape.is_empty or lat.size == 0:
        return hit
    shapely.prepare(shape)
    min_x, min_y, max_x, max_y = shape.bounds
    shifts = [0.0]
    if max_x > 180.0:
        shifts.append(360.0)
    if min_x < -180.0:
        shifts.append(-360.0)
    for shift in shifts:
        x = lon + shift if shift else lon
        inside_box = (lat >= min_y) & (lat <= max_y) & (x >= min_x) & (x <= max_x) & ~hit
        index = np.flatnonzero(inside_box)
        if index.size:
            hit[index] = shapely.intersects_xy(shape, x[index], lat[index])
    return hit


def points_in_circle(circle: Circle, lat: _FloatArray, lon: _FloatArray) -> _BoolArray:
    """Which points lie within the circle's radius (great-circle distance)."""
    radius = max(circle.radius_km, 0.0)
    hit = np.zeros(lat.shape, dtype=bool)
    if lat.size == 0:
        return hit
    # One degree of latitude is at least 110.5 km: a cheap band before the trigonometry.
    band = np.flatnonzero(np.abs(lat - circle.lat) <= radius / 110.0 + 1e-9)
    if band.size:
        hit[band] = haversine_km(lat[band], lon[band], circle.lat, circle.lon) <= radius
    return hit


# --------------------------------------------------------------------------- the footprint


@dataclass(frozen=True, slots=True)
class PlaceSpec:
    """Where an audience lies, before the catalogue is consulted.

    ``polygons`` and ``circles`` are precise shapes; ``geocodes`` match
    subscribers' chosen areas by code; ``geocoded`` are geocodes of blocks
    without shapes, whose catalogue areas become shapes for shared points.
    """

    polygons: tuple[Polygon, ...] = ()
    circles: tuple[Circle, ...] = ()
    geocodes: tuple[tuple[str, str], ...] = ()
    geocoded: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of_alert(cls, alert: Alert) -> PlaceSpec:
        polygons: list[Polygon] = []
        circles: list[Circle] = []
        geocodes: list[tuple[str, str]] = []
        geocoded: list[tuple[str, str]] = []
        for info in alert.infos:
            for area in info.areas:
                codes = [(g.name.strip(), g.value.strip()) for g in area.geocodes]
                codes = [(s, v) for s, v in codes if s and v]
                geocodes.extend(codes)
                usable = [p for p in area.polygons if len(p.points) >= 3]
                if usable or area.circles:
                    polygons.extend(usable)
                    circles.extend(area.circles)
                else:
                    geocoded.extend(codes)
        return cls(
            polygons=tuple(dict.fromkeys(polygons)),
            circles=tuple(dict.fromkeys(circles)),
            geocodes=tuple(dict.fromkeys(geocodes)),
            geocoded=tuple(dict.fromkeys(geocoded)),
        )

    @property
    def is_empty(self) -> bool:
        return not (self.polygons or self.circles or self.geocodes)


def _catalogue_arrays(
    catalogue_geoms: Mapping[str, BaseGeometry],
) -> tuple[list[str], npt.NDArray[np.object_]]:
    codes = list(catalogue_geoms)
    geoms = np.empty(len(codes), dtype=object)
    geoms[:] = [catalogue_geoms[code] for code in codes]
    return codes, geoms


@dataclass
class Footprint:
    """An audience's place, compiled once per alert and applied to every batch.

    ``anywhere`` reaches every candidate of the topics. Otherwise a candidate
    is in when their point lies in ``point_region`` or a circle, or when one
    of their area codes is a hit (decided once per code and remembered).
    """

    anywhere: bool = False
    point_region: BaseGeometry | None = None
    circles: tuple[Circle, ...] = ()
    geocodes: tuple[tuple[str, str], ...] = ()
    area_hits: frozenset[str] = frozenset()
    """Catalogue codes whose geometry shares interior with the alert's shapes."""
    catalogue: frozenset[str] = frozenset()
    _memo: dict[str, bool] = field(default_factory=dict, repr=False)

    @classmethod
    def everywhere(cls) -> Footprint:
        return cls(anywhere=True)

    @classmethod
    def compile(cls, spec: PlaceSpec, catalogue_geoms: Mapping[str, BaseGeometry]) -> Footprint:
        """Turn a place into what batches are tested against (shapes unioned and prepared)."""
        own = [s for s in map(polygon_shape, spec.polygons) if s is not None]
        circle_shapes = [circle_shape(c) for c in spec.circles]
        codes, geoms = _catalogue_arrays(catalogue_geoms)
        hits: frozenset[str] = frozenset()
        alert_shapes = own + [s for s in circle_shapes if not s.is_empty]
        if alert_shapes and codes:
            together = shapely.union_all(alert_shapes)
            shapely.prepare(together)
            hits = frozenset(codes[i] for i in _overlapping(geoms, together))
        geocoded = _geocoded_geoms(spec.geocoded, catalogue_geoms)
        region_parts = own + geocoded
        region = _union(region_parts) if region_parts else None
        if spec.geocoded and not geocoded:
            log.info(
                "targeting.geocodes_not_in_catalogue",
                geocodes=[f"{s}={v}" for s, v in spec.geocoded[:10]],
            )
        return cls(
            point_region=region,
            circles=spec.circles,
            geocodes=spec.geocodes,
            area_hits=hits,
            catalogue=frozenset(codes),
        )

    # ------------------------------------------------------------------ per code

    def area_hit(self, code: str) -> bool:
        """Whether a subscriber who chose ``code`` is in this footprint (remembered)."""
        known = self._memo.get(code)
        if known is None:
            known = self._decide(code)
            self._memo[code] = known
        return known

    def _decide(self, code: str) -> bool:
        if self.anywhere or code in self.area_hits:
            return True
        try:
            scheme, value = split_code(code)
        except ValueError:
            return False
        normalized = f"{scheme}:{value}"
        if normalized != code and normalized in self.area_hits:
            return True
        return any(codes_overlap(s, v, scheme, value) for s, v in self.geocodes)

    # ------------------------------------------------------------------ per point

    def points_hit(self, lat: _FloatArray, lon: _FloatArray) -> _BoolArray:
        """Which points lie in the footprint."""
        if self.anywhere:
            return np.ones(lat.shape, dtype=bool)
        hit = np.zeros(lat.shape, dtype=bool)
        if self.point_region is not None:
            hit |= points_in_shape(self.point_region, lat, lon)
        for circle in self.circles:
            rest = np.flatnonzero(~hit)
            if rest.size == 0:
                break
            hit[rest] = points_in_circle(circle, lat[rest], lon[rest])
        return hit


def _overlapping(geoms: npt.NDArray[np.object_], shape: BaseGeometry) -> list[int]:
    """Indexes of catalogue areas sharing more than a sliver of ground with ``shape``.

    Borders drawn by different hands never coincide: an alert polygon traced
    along a municipality's edge overlaps its neighbours by thin slivers. An
    area counts when the shared ground is at least :data:`MIN_OVERLAP` of the
    smaller of the two (the area, or the alert's shape), so a small circle
    inside a large municipality still counts.
    """
    touching = np.flatnonzero(shapely.intersects(geoms, shape) & ~shapely.touches(geoms, shape))
    if touching.size == 0:
        return []
    parts = geoms[touching]
    shared = shapely.area(shapely.intersection(parts, shape))
    smaller = np.minimum(shapely.area(parts), shape.area)
    keep = shared >= MIN_OVERLAP * smaller
    return [int(i) for i in touching[keep]]


def _union(parts: Sequence[BaseGeometry]) -> BaseGeometry:
    if len(parts) == 1:
        return parts[0]
    try:
        return shapely.union_all(parts)
    except shapely.errors.GEOSException:
        return shapely.GeometryCollection(list(parts))


def _geocoded_geoms(
    geocodes: Sequence[tuple[str, str]], catalogue_geoms: Mapping[str, BaseGeometry]
) -> list[BaseGeometry]:
    """Catalogue shapes for geocode-only blocks: the areas within each code, else overlapping."""
    if not geocodes or not catalogue_geoms:
        return []
    entries: list[tuple[str, str, str]] = []
    for code in catalogue_geoms:
        try:
            scheme, value = split_code(code)
        except ValueError:
            continue
        entries.append((code, scheme, value))
    chosen: dict[str, BaseGeometry] = {}
    for g_scheme, g_value in geocodes:
        family = scheme_family(g_scheme)
        overlapping = [
            (code, scheme, value)
            for code, scheme, value in entries
            if scheme_family(scheme) == family and codes_overlap(g_scheme, g_value, scheme, value)
        ]
        within = [e for e in overlapping if _within(e[1], e[2], g_scheme, g_value)]
        for code, _scheme, _value in within or overlapping:
            chosen[code] = catalogue_geoms[code]
    return list(chosen.values())


def _within(scheme: str, value: str, outer_scheme: str, outer_value: str) -> bool:
    """True when catalogue code (scheme, value) lies wholly inside the geocode (outer)."""
    if not codes_overlap(scheme, value, outer_scheme, outer_value):
        return False
    inner = value.upper()
    outer = outer_value.strip().upper()
    family = scheme_family(scheme)
    if inner == outer:
        return True
    if family in ("INEGI_CVEGEO", "NUTS"):
        return inner.startswith(outer)
    if family == "FIPS":
        # inside when the outer code is the whole county (part 0) or the whole state (000)
        o = outer.zfill(6) if len(outer) == 5 else outer
        if len(o) == 2:
            return True
        return len(o) == 6 and (o[0] == "0" or o[3:] == "000")
    if family == "UGC":
        return outer[3:] in ("000", "ALL")
    return False


# --------------------------------------------------------------------------- selection


def select(
    footprints: Sequence[Footprint],
    candidates: Iterable[Candidate],
    *,
    topics: frozenset[str] | None,
) -> list[int]:
    """Ids of the candidates of ``topics`` (None: any) inside any of ``footprints``.

    Area codes are decided per code (remembered by each footprint); points
    are collected and tested in one vectorised pass per footprint.
    """
    if not footprints:
        return []
    chosen: list[int] = []
    point_ids: list[int] = []
    lats: list[float] = []
    lons: list[float] = []
    for candidate in candidates:
        if topics is not None and candidate.topics and candidate.topics.isdisjoint(topics):
            continue
        if candidate.areas and any(
            f.area_hit(code) for f in footprints for code in candidate.areas
        ):
            chosen.append(candidate.id)
            continue
        if candidate.point is not None:
            point_ids.append(candidate.id)
            lats.append(candidate.point[0])
            lons.append(candidate.point[1])
        elif any(f.anywhere for f in footprints):
            chosen.append(candidate.id)
    if point_ids:
        lat = np.asarray(lats, dtype=np.float64)
        lon = np.asarray(lons, dtype=np.float64)
        hit = np.zeros(lat.shape, dtype=bool)
        for footprint in footprints:
            rest = np.flatnonzero(~hit)
            if rest.size == 0:
                break
            hit[rest] = footprint.points_hit(lat[rest], lon[rest])
        ids = np.asarray(point_ids, dtype=np.int64)
        chosen.extend(ids[hit].tolist())
    return chosen


def audience(
    alert: Alert,
    candidates: Iterable[Candidate],
    catalogue_geoms: Mapping[str, BaseGeometry],
    *,
    topics_of_alert: frozenset[str] | None,
) -> list[int]:
    """Ids of the candidates in the alert's own area and of ``topics_of_alert`` (None: any).

    Compiles the alert's footprint each call; code planning many batches
    compiles once with :meth:`Footprint.compile` and calls :func:`select`.
    """
    spec = PlaceSpec.of_alert(alert)
    if spec.is_empty:
        return []
    return select([Footprint.compile(spec, catalogue_geoms)], candidates, topics=topics_of_alert)
